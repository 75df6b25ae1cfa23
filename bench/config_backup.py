"""Configuration backup's figures: backing up the lab city and 1,000 simulated devices over SSH beside
netmiko driven the simplest way, and reading 1,000 stored versions (list, diff, search) beside git,
which is what Oxidized's git backend and RANCID keep.

1. **Lab backup** — the lab's SSH simulator (``infra_mgr/lab/ssh_lab.py``) serving the city's
   devices on their loopback addresses; a fresh SQLite database holding those devices with their
   addresses, platforms and one SSH credential, as discovery leaves them; ``run_backup`` of them all
   (concurrency 16) timed, a fresh database per round. Baseline: netmiko's ``ConnectHandler`` and the
   same backup commands from ``platforms.yaml``, one device after another (Oxidized/RANCID-style
   serial, once: it takes minutes), and the same in 16 threads; same devices, credential and
   timeouts (the service's settings). Devices read and failed are counted on both sides (the lab's
   hanging and password-refusing devices fail on both).
2. **1,000 simulated devices** — the simulator's synthetic fleet (``--fleet 1000``), ``run_backup``
   timed; baseline netmiko in a pool of 16 threads over the same devices (serial would take too
   long to run here: its figure is estimated from the lab's per-device serial time and said so).
3. **Versions list** — 1,000 stored versions of one device (``bench/_config_store.py``): the first
   page from ``views.versions``; baseline ``git log`` of the same 1,000 commits of one file.
4. **Diff** of two versions: ``views.diff``; baseline ``git diff A B -- file`` in the same repository.
5. **Search** across 1,000 latest configurations (~500 lines each): ``views.search`` of a regex;
   baseline ``git grep -E`` over the same files checked out.

    flock /tmp/bench.lock .venv/bin/python bench/config_backup.py     # everything (~30 min)
    .venv/bin/python bench/config_backup.py --smoke                     # tiny sizes, seconds: measures nothing

Ends with ``RESULT`` lines (see docs/benchmarks.md) and exits 0 even when a goal is missed.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _config_lab as cl  # noqa: E402
import _config_store as cs  # noqa: E402
from provenance import record  # noqa: E402
from sqlmodel import Session  # noqa: E402

GOAL_LAB_S = 30.0
GOAL_FLEET_S = 180.0
GOAL_LIST_MS = 100.0
GOAL_DIFF_MS = 100.0
GOAL_SEARCH_MS = 1000.0
PATTERN = r"snmp-server community (public|private)"
PAGE = 50


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: measures nothing")
    parser.add_argument("--rounds", type=int, default=3, help="timed lab backups (>= 3)")
    parser.add_argument("--fleet", type=int, default=1000, help="simulated devices for part 2")
    parser.add_argument("--fleet-rounds", type=int, default=2, help="timed backups of the fleet (>= 1)")
    parser.add_argument("--versions", type=int, default=1000, help="stored versions of one device")
    parser.add_argument("--configs", type=int, default=1000, help="latest configurations searched")
    parser.add_argument("--runs", type=int, default=30, help="timed view calls per figure (>= 20)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: lab, fleet, store")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: simulators stopped, temp files removed
    with record("config_backup", smoke=args.smoke, argv=argv):
        tmp = Path(tempfile.mkdtemp(prefix="bench-config-"))
        lines: list[str] = []
        t0 = time.perf_counter()
        try:
            per_device = 0.0
            if "lab" not in skip:
                lab = cl.lab_backups(tmp / "lab", rounds=1 if args.smoke else max(3, args.rounds), smoke=args.smoke)
                lines += lab_results(lab)
                if lab.serial and lab.serial[0].seconds_ok:
                    per_device = statistics.median(lab.serial[0].seconds_ok)
            if "fleet" not in skip:
                lines += fleet_results(cl.fleet_backups(tmp / "fleet", devices=6 if args.smoke else args.fleet,
                                                        rounds=1 if args.smoke else max(1, args.fleet_rounds),
                                                        smoke=args.smoke, serial_s_per_device=per_device),
                                       goal_devices=6 if args.smoke else args.fleet)
            if "store" not in skip:
                lines += store_results(tmp / "store", versions=12 if args.smoke else args.versions,
                                       configs=10 if args.smoke else args.configs,
                                       runs=3 if args.smoke else max(20, args.runs))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"total runtime: {time.perf_counter() - t0:.0f} s")
        for line in lines:
            print(line)
    return 0


# --- 1 and 2: backups over SSH ---------------------------------------------------------------------


def _missing(name: str, why: str, goal: str) -> str:
    return f"RESULT {name}: n/a ({why}); baseline none (not run) n/a; ratio n/a; goal {goal}: FAIL"


def _counts(p: cl.Pass) -> str:
    return f"{p.ok} ok, {p.failed} failed of {p.devices}"


def lab_results(r: cl.BackupRuns) -> list[str]:
    goal = f"<= {GOAL_LAB_S:g} s"
    if not r.ours:
        return [_missing("lab_backup_wall_worst", r.problem or "not measured", goal)]
    for p in r.ours + ([r.again] if r.again else []) + r.serial + r.pool:
        print(f"  {p.label:<42} {p.wall_s:7.2f} s  client CPU {p.cpu_s:6.2f} s  {_counts(p)}  {p.note}")
    worst = max(r.ours, key=lambda p: p.wall_s)
    enough = worst.devices >= 130
    size = f" ({_counts(worst)}, worst of {len(r.ours)} rounds{'' if enough else '; fewer than 130 devices'})"
    out = []
    for base_name, base in (("netmiko-serial", r.serial), ("netmiko-threads16", r.pool)):
        if not base:
            b = f"baseline {base_name} failed ({r.base_problem or 'not run'}) n/a; ratio n/a"
            ok = False
        else:
            bv = statistics.median(p.wall_s for p in base)
            b = (f"baseline {base_name} {bv:.2f} s ({_counts(base[0])}, median of {len(base)}); "
                 f"ratio {bv / worst.wall_s:.2f}x")
            ok = True
        name = "lab_backup_wall_worst" if base_name == "netmiko-serial" else "lab_backup_wall_worst_vs_threads"
        out.append(f"RESULT {name}: {worst.wall_s:.2f} s{size}; {b}; goal {goal}: "
                   f"{verdict(ok and enough and worst.wall_s <= GOAL_LAB_S)}")
    return out


def fleet_results(r: cl.BackupRuns, *, goal_devices: int) -> list[str]:
    goal = f"<= {GOAL_FLEET_S:g} s"
    name = f"fleet_{goal_devices}_backup_wall_worst"
    if not r.ours:
        return [_missing(name, r.problem or "not measured", goal)]
    for p in r.ours + r.pool:
        print(f"  {p.label:<42} {p.wall_s:7.2f} s  client CPU {p.cpu_s:6.2f} s  {_counts(p)}  {p.note}")
    worst = max(r.ours, key=lambda p: p.wall_s)
    enough = worst.devices >= goal_devices
    size = (f" ({_counts(worst)}, worst of {len(r.ours)} rounds"
            f"{'' if enough else f'; fewer than {goal_devices} devices, not the figure'})")
    if not r.pool:
        b = f"baseline netmiko-threads16 failed ({r.base_problem or 'not run'}) n/a; ratio n/a"
        ok = False
    else:
        bv = statistics.median(p.wall_s for p in r.pool)
        b = f"baseline netmiko-threads16 {bv:.2f} s ({_counts(r.pool[0])}); ratio {bv / worst.wall_s:.2f}x"
        ok = True
    if r.serial_estimate_s:
        print(f"netmiko one device after another is not run on the fleet (it would take about "
              f"{r.serial_estimate_s:.0f} s: the median seconds per device of the lab's serial pass x "
              f"{worst.devices})")
    return [f"RESULT {name}: {worst.wall_s:.2f} s{size}; {b}; goal {goal}: "
            f"{verdict(ok and enough and worst.ok > 0 and worst.wall_s <= GOAL_FLEET_S)}"]


# --- 3, 4 and 5: reading stored versions ------------------------------------------------------------


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Milliseconds of ``runs`` calls after one untimed warm-up call (a running server is warm)."""
    last = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t) * 1000)
    return times, last


def git(repo: Path, *args: str) -> Callable[[], str]:
    def run() -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                              env=cs.GIT_ENV).stdout
    return run


def _pair(name: str, ours: list[float] | None, why: str, base: list[float], base_name: str, goal_ms: float,
          what: str) -> list[str]:
    out = []
    for pick in ("median", "worst"):
        bv = statistics.median(base) if pick == "median" else max(base)
        if ours is None:
            out.append(f"RESULT {name}_{pick}: n/a ({why}); baseline {base_name} {bv:.1f} ms; ratio n/a; "
                       f"goal <= {goal_ms:g} ms: FAIL")
            continue
        v = statistics.median(ours) if pick == "median" else max(ours)
        out.append(f"RESULT {name}_{pick}: {v:.1f} ms ({what}); baseline {base_name} {bv:.1f} ms; "
                   f"ratio {bv / max(v, 1e-6):.2f}x; goal <= {goal_ms:g} ms: {verdict(v <= goal_ms)}")
    return out


def store_results(tmp: Path, *, versions: int, configs: int, runs: int) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    st = cs.build(tmp, versions=versions, fleet=configs)
    print(f"\n== stored versions: {versions} versions of {st.hostname} ({st.config_lines} lines each, a few "
          f"changed per version) and {configs} latest configurations ({st.matching_devices} with a "
          f"public/private community), in SQLite and in git; built in {time.perf_counter() - t:.1f} s")
    try:
        from infra_mgr.network.ssh import views
    except ImportError as exc:  # the views module is part of the contract: its absence is a failure
        views = None  # type: ignore[assignment]
        problem = f"views not importable: {exc}"
    else:
        problem = ""
    out: list[str] = []
    engine = st.engine

    # 3. the versions list
    base, text = timed(git(st.history_repo, "log", f"-n{PAGE}", "--format=%H%x09%ct%x09%an%x09%s", "--",
                           st.history_file), runs)
    assert len(text.splitlines()) == min(PAGE, versions), "git log did not list a page of versions"
    full, _ = timed(git(st.history_repo, "log", "--format=%H%x09%ct%x09%an%x09%s", "--", st.history_file),
                    max(3, runs // 5))
    print(f"git log of all {versions} commits (Oxidized's version list reads them all): median "
          f"{statistics.median(full):.1f} ms")
    ours: list[float] | None = None
    why = problem
    if views is not None and hasattr(views, "versions"):
        def page() -> Any:
            with Session(engine) as s:
                return views.versions(s, st.device_id, 1, PAGE)

        ours, got = timed(page, runs)
        if got is None or len(got.versions) != min(PAGE, versions) or got.total != versions:
            why, ours = f"views.versions returned {getattr(got, 'total', None)} versions, not {versions}", None
    elif views is not None:
        why = "views.versions does not exist"
    out += _pair("versions_list_ms", ours, why, base, f"git-log-n{PAGE}", GOAL_LIST_MS,
                 f"first page of {PAGE} of {versions} versions")

    # 4. a diff of two versions (adjacent: the "what changed last night" question)
    a, b = versions // 2, versions // 2 + 1
    base, text = timed(git(st.history_repo, "diff", st.commits[a - 1], st.commits[b - 1], "--", st.history_file),
                       runs)
    assert text.startswith("diff --git"), "git diff found no change between the two versions"
    far, _ = timed(git(st.history_repo, "diff", st.commits[0], st.commits[-1], "--", st.history_file),
                   max(3, runs // 5))
    ours, why = None, problem
    if views is not None and hasattr(views, "diff"):
        def diff(x: int = a, y: int = b) -> Any:
            with Session(engine) as s:
                return views.diff(s, st.device_id, x, y)

        ours, got = timed(diff, runs)
        far_ours, got_far = timed(lambda: diff(1, versions), max(3, runs // 5))
        print(f"diff of versions 1 and {versions}: views.diff median {statistics.median(far_ours):.1f} ms "
              f"(+{got_far.added}/-{got_far.removed}); git diff median {statistics.median(far):.1f} ms")
        if got is None or got.added + got.removed == 0:
            why, ours = "views.diff found no change between two different versions", None
    elif views is not None:
        why = "views.diff does not exist"
    out += _pair("diff_ms", ours, why, base, "git-diff", GOAL_DIFF_MS,
                 f"versions {a} and {b} of {versions}, unified and side by side")

    # 5. search across the latest configurations
    base, text = timed(git(st.fleet_repo, "grep", "-n", "-E", PATTERN), runs)
    grep_files = len({ln.split(":", 1)[0] for ln in text.splitlines()})
    ours, why = None, problem
    note = f"{PATTERN!r} across {configs} latest configurations"
    if views is not None and hasattr(views, "search"):
        def search() -> Any:
            with Session(engine) as s:
                return views.search(s, PATTERN)

        ours, got = timed(search, runs)
        matched = getattr(got, "devices_matched", None)
        print(f"search: views.search matched {matched} devices ({'truncated' if got.truncated else 'complete'}); "
              f"git grep matched {grep_files} files; {st.matching_devices} configurations hold the pattern")
        if matched != st.matching_devices or grep_files != st.matching_devices:
            why = f"views.search matched {matched} devices, git grep {grep_files}, not {st.matching_devices}"
            ours = None
    elif views is not None:
        why = "views.search does not exist"
    out += _pair("search_ms", ours, why, base, "git-grep-E", GOAL_SEARCH_MS, note)
    engine.dispose()
    return out


if __name__ == "__main__":
    sys.exit(main())
