"""The branch link audit's figures: poll cycles of the lab's and of 1,000 simulated uplinks beside
net-snmp's ``snmpget`` reading the same OIDs, a year of link telemetry on SQLite beside LibreNMS's
RRD files, and the 30-day chart query beside ``rrdtool xport``.

1. **Lab poll cycle** — the lab city (snmpsim, ``infra_mgr/lab/city.py``) discovered into a fresh
   SQLite database, its uplinks identified (``uplinks.identify``), then ``LinkPoller.cycle()``
   timed: median and worst of the cycles. Baseline: every GET the cycle sent (recorded per device
   by ``bench/_discovery_trace.py``) sent again by one net-snmp ``snmpget`` process per request,
   as many devices at a time as the poller's concurrency — LibreNMS's way; wall and client CPU.
2. **1,000 simulated uplinks** (root: network namespaces) — real net-snmp ``snmpd`` agents
   (``bench/netns_agents.py``), two uplink interfaces each, polled by the interface collector
   (``ifpoll.poll_many``) and by ``snmpget`` of the same recorded requests, in the same run,
   rounds taking turns; wall and client CPU per sample (one sample = one interface read once).
3. **A year of samples** for the lab's ~130 uplinks and ~126 devices on SQLite (see
   ``bench/_link_storage.py`` for which part goes through the real write/roll-up/prune path and
   which is written directly as the roll-up rows it would have left); database bytes and rows per
   tier, and one ``rollup()`` after a cycle. Baseline: LibreNMS's RRD files for the same links and
   devices, created with ``rrdtool create`` and measured.
4. **30-day chart query** — ``link_views.link_series`` of one link on that database, median and
   p95; beside it ``rrdtool xport`` of the same 30 days from a port RRD holding a year of data.

    .venv/bin/python bench/link_audit.py            # everything (as root; ~15 min)
    .venv/bin/python bench/link_audit.py --smoke    # tiny sizes, seconds: measures nothing

Ends with ``RESULT`` lines (see docs/benchmarks.md) and exits 0 even when a goal is missed.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import _link_poll as lp  # noqa: E402
import _link_storage as ls  # noqa: E402
from provenance import record  # noqa: E402

GOAL_LAB_CYCLE_S = 5.0
GOAL_SCALE_CYCLE_S = 20.0
GOAL_DB_GIB = 1.5
GOAL_ROLLUP_MS = 1000.0
GOAL_CHART_MS = 100.0
NONE = "baseline none (no side-by-side baseline) n/a; ratio n/a"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds per part: measures nothing")
    parser.add_argument("--cycles", type=int, default=7, help="lab poll cycles timed (>= 5)")
    parser.add_argument("--agents", type=int, default=500, help="netns snmpd agents (2 uplinks each)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (ours, snmpget) on the netns agents")
    parser.add_argument("--links", type=int, default=130, help="uplinks with a year of samples (the lab's ~130)")
    parser.add_argument("--devices", type=int, default=126, help="branch devices with a year of samples")
    parser.add_argument("--chart-runs", type=int, default=30, help="chart queries timed (>= 20)")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: lab, scale, store")
    args = parser.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: agents, namespaces, lab peers removed
    with record("link_audit", smoke=args.smoke, argv=argv):
        tmp = Path(tempfile.mkdtemp(prefix="bench-links-"))
        lines: list[str] = []
        t0 = time.perf_counter()
        try:
            if "lab" not in skip:
                lines += lab_results(lp.lab_cycles(tmp, cycles=1 if args.smoke else max(5, args.cycles),
                                                   smoke=args.smoke))
            if "scale" not in skip:
                lines += scale_results(lp.scale_cycles(agents=4 if args.smoke else args.agents,
                                                       rounds=1 if args.smoke else max(1, args.rounds),
                                                       smoke=args.smoke))
            if "store" not in skip:
                links, devices = (5, 4) if args.smoke else (args.links, args.devices)
                lines += store_results(tmp, links=links, devices=devices, days=4 if args.smoke else 365,
                                       raw_days=2 if args.smoke else 8,
                                       runs=5 if args.smoke else max(20, args.chart_runs))
        finally:
            ls.remove(tmp)
        print(f"total runtime: {time.perf_counter() - t0:.0f} s")
        for line in lines:
            print(line)
    return 0


# --- 1. the lab ------------------------------------------------------------------------------------


def lab_results(r: lp.LabRun) -> list[str]:
    base = "librenms-snmpget-per-device"
    if not r.walls:
        why = r.problem or "not measured"
        return [f"RESULT lab_poll_cycle_wall_median: n/a ({why}); {NONE}; goal <= {GOAL_LAB_CYCLE_S:g} s: FAIL",
                f"RESULT lab_poll_cycle_wall_worst: n/a ({why}); {NONE}; goal <= {GOAL_LAB_CYCLE_S:g} s: FAIL"]
    med, worst = statistics.median(r.walls), max(r.walls)
    out = []
    # The whole cycle also probes every branch device (3 ICMP echoes, 3 single SNMP GETs) and writes
    # states and telemetry; the net-snmp replay reads only the interface cells. So the cycle has no
    # side-by-side baseline; its SNMP reads do (lab_interface_reads_wall_median, just below).
    unlike = ("baseline none (the snmpget replay does only the cycle's interface reads: see "
              "lab_interface_reads_wall_median) n/a; ratio n/a")
    for name, value in (("median", med), ("worst", worst)):
        b = unlike
        missed = f"; {', '.join(r.misses)}" if r.misses else ""
        out.append(f"RESULT lab_poll_cycle_wall_{name}: {value:.2f} s ({r.uplinks} uplinks on {r.devices} devices"
                   f"{missed}); "
                   f"{b}; goal <= {GOAL_LAB_CYCLE_S:g} s: {verdict(value <= GOAL_LAB_CYCLE_S)}")
    if r.read_walls:
        reads = statistics.median(r.read_walls)
        if r.base_problem or not r.base_walls:
            b = f"baseline {base} failed ({r.base_problem or 'not run'}) n/a; ratio n/a"
        else:
            bv = statistics.median(r.base_walls)
            b = f"baseline {base} {bv:.2f} s; ratio {bv / reads:.2f}x"
        ok = not r.base_problem and bool(r.base_walls) and reads <= statistics.median(r.base_walls)
        out.append(f"RESULT lab_interface_reads_wall_median: {reads:.2f} s (the cycle's SNMP interface reads alone); "
                   f"{b}; goal <= baseline: {verdict(ok)}")
    cpu = statistics.median(r.cpus)
    out.append(f"RESULT lab_poll_cycle_client_cpu_median: {cpu:.2f} s (whole cycle: SNMP, probes, rates, database, "
               f"telemetry); {unlike}; goal informational: PASS")
    return out


# --- 2. 1,000 uplinks ------------------------------------------------------------------------------


def scale_results(r: lp.ScaleRun) -> list[str]:
    base = "librenms-snmpget-same-requests"
    n = r.samples
    if not r.walls:
        why = r.problem or "not measured"
        return [f"RESULT scale_{r.goal_samples}_uplinks_cycle_wall: n/a ({why}); {NONE}; "
                f"goal <= {GOAL_SCALE_CYCLE_S:g} s: FAIL",
                f"RESULT scale_client_cpu_per_sample: n/a ({why}); {NONE}; goal <= baseline: FAIL"]
    worst = max(r.walls)
    measured = n >= r.goal_samples
    size = f" ({n} uplinks on {r.agents} agents{'' if measured else ': fewer than the goal, not the figure'})"
    if r.base_problem or not r.base_walls:
        bw = f"baseline {base} failed ({r.base_problem or 'not run'}) n/a; ratio n/a"
        bc_text = bw
        base_ok = False
        bc = 0.0
    else:
        bmed = statistics.median(r.base_walls)
        bw = f"baseline {base} {bmed:.2f} s; ratio {bmed / worst:.2f}x"
        bc = statistics.median(r.base_cpus) / n * 1000
        base_ok = True
    ours_cpu = max(r.cpus) / n * 1000
    if base_ok:
        bc_text = f"baseline {base} {bc:.3f} ms; ratio {bc / max(ours_cpu, 1e-9):.1f}x less"
    return [
        f"RESULT scale_{r.goal_samples}_uplinks_cycle_wall: {worst:.2f} s{size}; {bw}; "
        f"goal <= {GOAL_SCALE_CYCLE_S:g} s: {verdict(base_ok and measured and worst <= GOAL_SCALE_CYCLE_S)}",
        f"RESULT scale_client_cpu_per_sample: {ours_cpu:.3f} ms{size}; {bc_text}; goal <= baseline: "
        f"{verdict(base_ok and ours_cpu <= bc)}",
    ]


# --- 3 and 4. a year of samples, the chart ---------------------------------------------------------


def store_results(tmp: Path, *, links: int, devices: int, days: int, raw_days: int, runs: int) -> list[str]:
    print(f"\n== a year of samples: {links} uplinks x 8 series, {devices} devices x 3 series, 60-s cycles, "
          f"{days} days (smoke: fewer)")
    year, engine, store = ls.build_year(tmp, links=links, devices=devices, days=days, raw_days=raw_days)
    print(f"series {year.series}; rows raw {year.rows['raw']:,}, 5-minute {year.rows['5min']:,}, "
          f"hourly {year.rows['hourly']:,}; file {year.db_bytes / 2**20:.1f} MiB after checkpoint "
          f"({year.pages:,} pages of {year.page_size} B, {year.free_pages:,} free)")
    print("values: traffic, utilisation and RTT with a daily shape and noise (full 8-byte floats); errors, "
          "discards and loss zero except on one link/device in ten; oper_up 1. The older part is written "
          "directly as roll-up rows (see bench/_link_storage.py), the last days through the store.")
    rrd_total = rrd_one = 0
    rrd_problem = ""
    rrd_times: list[float] = []
    rrd_rows = 0
    if ls.rrd_available():
        try:
            end_s = year.now_ms // 1000
            rrd_total, rrd_one, first = ls.rrd_files(tmp / "rrd", links, devices, end_s - days * 86400)
            ls.rrd_fill_year(first, end_s - days * 86400, end_s)
            rrd_times, rrd_rows = ls.rrd_chart(first, int(time.time()), runs)
            print(f"LibreNMS RRDs (rrdtool create, default rrd_rra, step 300): {links} port RRDs of {rrd_one:,} B "
                  f"+ {devices} icmp-perf RRDs = {rrd_total / 2**20:.1f} MiB")
        except (RuntimeError, OSError) as exc:
            rrd_problem = str(exc)[:200]
    else:
        rrd_problem = "rrdtool not installed (apt-get install rrdtool)"
    out = []
    gib = year.db_bytes / 2**30
    ok_rows = year.rows["raw"] > 0 and year.rows["5min"] > 0 and year.rows["hourly"] > 0
    if rrd_problem:
        b = f"baseline librenms-rrd failed ({rrd_problem}) n/a; ratio n/a"
    else:
        b = f"baseline librenms-rrd {rrd_total / 2**20:.1f} MiB; ratio {year.db_bytes / rrd_total:.1f}x larger"
    out.append(f"RESULT year_of_samples_db_size: {year.db_bytes / 2**20:.1f} MiB ({links} uplinks, {devices} devices, "
               f"{days} days; rows raw {year.rows['raw']:,} / 5-min {year.rows['5min']:,} / hourly "
               f"{year.rows['hourly']:,}); {b}; goal <= {GOAL_DB_GIB:g} GiB: "
               f"{verdict(ok_rows and not rrd_problem and gib <= GOAL_DB_GIB)}")
    print(f"one cycle's write ({year.series} samples): median {statistics.median(year.write_ms):.0f} ms; "
          f"rollup() after it: median {statistics.median(year.rollup_ms):.0f} ms, worst {max(year.rollup_ms):.0f} ms")
    # the roll-up runs after every 60-s cycle and holds the write lock while it runs: it must stay
    # small whatever the store's size (worst of the runs, not the median)
    out.append(f"RESULT rollup_after_cycle_ms_worst: {max(year.rollup_ms):.0f} ms (median "
               f"{statistics.median(year.rollup_ms):.0f} ms of {len(year.rollup_ms)}); {NONE}; "
               f"goal <= {GOAL_ROLLUP_MS:g} ms: {verdict(ok_rows and max(year.rollup_ms) <= GOAL_ROLLUP_MS)}")
    engine.dispose()
    times, what, points = ls.chart_in_fresh_process(tmp / "telemetry-year.db", year.interface_ids[0], runs)
    med, p = statistics.median(times), ls.p95(times)
    print(f"chart: {what}, 30 days, {points} points; median {med:.1f} ms, p95 {p:.1f} ms over {len(times)} runs")
    if rrd_times:
        print(f"rrdtool xport (persistent rrdtool -): {rrd_rows} rows x {len(ls.CHART_DS) * 3} columns; median "
              f"{statistics.median(rrd_times):.1f} ms, p95 {ls.p95(rrd_times):.1f} ms over {len(rrd_times)} runs")
    real = what.startswith("link_views") and points > 0
    for name, value, base in (("median", med, statistics.median(rrd_times) if rrd_times else None),
                              ("p95", p, ls.p95(rrd_times) if rrd_times else None)):
        b = (f"baseline rrdtool-xport {base:.1f} ms; ratio {base / value:.2f}x" if base is not None
             else f"baseline rrdtool-xport failed ({rrd_problem or 'not run'}) n/a; ratio n/a")
        out.append(f"RESULT chart_30d_query_ms_{name}: {value:.1f} ms ({what}, {points} points); {b}; "
                   f"goal <= {GOAL_CHART_MS:g} ms: {verdict(real and base is not None and value <= GOAL_CHART_MS)}")
    return out


if __name__ == "__main__":
    sys.exit(main())
