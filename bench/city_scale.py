"""City scale, the whole path: discovery of 1,000 switches of varied size (8 to 500 interfaces)
into a fresh database — crawl and reconcile — first run and re-discovery, on SQLite and PostgreSQL.

The fleet (``infra_mgr/lab/fleet.py``) is served over real SNMP on loopback by the city's snmpsim
machinery (one worker per core, every device on its own 127.20.x.y). Discovery is seeded at the
two cores and crawls the rest through LLDP, exactly as ``infra-mgr discover --all-sites`` does.
Each database runs in its own child process (so its peak RSS is its own): first discovery, then
re-discovery with nothing changed, in the same process (the scheduler's case: the SNMP engine keeps
what it learnt of each agent). Per pass: wall, our CPU, peak RSS (``ru_maxrss``), the agents' CPU
and requests/varbinds answered, the PostgreSQL server's CPU, and the database size after.

No side-by-side baseline runs here (``bench/city_discovery.py`` has the like-for-like one).

    .venv/bin/python bench/city_scale.py                        # 1,000 devices, SQLite + PostgreSQL
    .venv/bin/python bench/city_scale.py --smoke                # 20 devices, SQLite: measures nothing

Ends with ``RESULT`` lines (see docs/benchmarks.md) and exits 0 even when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from provenance import record  # noqa: E402

GOAL_WALL_S = 60.0
GOAL_RSS_MIB = 1024.0
MASTER = b"bench-scale-key"
CORES = os.cpu_count() or 1




# --- the child: one database, first discovery then re-discovery -----------------------------------


def configure(url: str, port: int, addresses: list[str], seeds: list[str]) -> Any:
    """A fresh database: one site per /24 of the fleet (placed by prefix), the v2c credential,
    the cores as seeds and the fleet's range as the allow-list."""
    from sqlmodel import Session

    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.inventory.credentials import CredentialCreate, build
    from infra_mgr.inventory.models import CredentialKind, Prefix, Site
    from infra_mgr.network.models import DiscoveryTarget, TargetRole

    upgrade(url)
    engine = make_engine(url)
    nets = sorted({a.rsplit(".", 1)[0] for a in addresses})
    with Session(engine) as s:
        for k, net in enumerate(nets):
            site = Site(code=f"SCALE-D{k:02d}", name_en=f"District {k}", kind="branch")
            s.add(site)
            s.flush()
            s.add(Prefix(prefix=f"{net}.0/24", site_id=site.id, description="fleet district"))
        s.add(build(MASTER, CredentialCreate(name="scale-v2c", kind=CredentialKind.snmp_v2c, community="public",
                                             port=port, priority=10)))
        for seed in seeds:
            s.add(DiscoveryTarget(cidr=f"{seed}/32", role=TargetRole.seed.value, description="core"))
        s.add(DiscoveryTarget(cidr="127.20.0.0/16", role=TargetRole.allow.value, description="fleet"))
        s.commit()
    return engine


def database_size(engine: Any, url: str) -> int:
    """Bytes on disk: SQLite file + WAL + shared memory; PostgreSQL ``pg_database_size``."""
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())
    from sqlalchemy import text

    with engine.connect() as c:
        return int(c.execute(text("select pg_database_size(current_database())")).scalar_one())


def child(spec: dict[str, Any]) -> int:
    """Run the passes for one database and print one ``PASS {json}`` line each."""
    from infra_mgr.lab.city import city_counters
    from infra_mgr.lab.supervisor import Lab, cpu_seconds, process_tree
    from infra_mgr.network.discovery import discover

    lab = Lab(spec["lab_dir"])
    fleet_record = lab.record("fleet")
    assert fleet_record is not None
    agent_pids, db_root = spec["agent_pids"], spec["db_root_pid"]

    def db_cpu() -> float:  # PostgreSQL forks a backend per connection: read its tree each time
        return cpu_seconds(process_tree(db_root)) if db_root else 0.0

    engine = configure(spec["url"], spec["port"], spec["addresses"], spec["seeds"])
    for name in spec["passes"]:
        c0, a0, d0 = city_counters(fleet_record), cpu_seconds(agent_pids), db_cpu()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        report = asyncio.run(discover(engine, MASTER, all_sites=True, timeout_s=2.0, retries=1)).to_json()
        wall = time.perf_counter() - start
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        a1, d1, c1 = cpu_seconds(agent_pids), db_cpu(), city_counters(fleet_record)
        out = {
            "pass": name, "wall_s": wall, "crawl_s": report["crawl_seconds"],
            "client_cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
            "peak_rss_mib": r1.ru_maxrss / 1024, "agent_cpu_s": a1 - a0, "db_cpu_s": d1 - d0,
            "requests": c1["requests"] - c0["requests"], "varbinds": c1["varbinds"] - c0["varbinds"],
            "found": report["found"], "new": len(report["new"]), "links": report["links"],
            "events": report["events"], "unreachable": len(report["unreachable"]),
            "problems": len(report["problems"]), "db_bytes": database_size(engine, spec["url"]),
        }
        print("PASS " + json.dumps(out), flush=True)
    return 0


# --- the parent ------------------------------------------------------------------------------------


def run_child(spec: dict[str, Any]) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          check=False)
    passes = [json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith("PASS ")]
    if proc.returncode != 0 or len(passes) != len(spec["passes"]):
        print(f"child for {spec['label']} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n"
              f"{proc.stderr[-4000:]}")
    return passes


def fmt_bytes(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--child"]:
        return child(json.loads(args_list[1]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20 devices, SQLite only: measures nothing")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args(args_list)
    devices = 20 if args.smoke else args.devices
    databases = ["sqlite"] if args.smoke else [d.strip() for d in args.databases.split(",") if d.strip()]
    with record("city_scale", smoke=args.smoke, argv=args_list):
        return run(devices, databases)


def run(devices: int, databases: list[str]) -> int:
    from infra_mgr.lab.fleet import build_fleet, fleet_spec
    from infra_mgr.lab.peers import postgres_spec
    from infra_mgr.lab.supervisor import Lab, cpu_seconds, process_tree

    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    lab = Lab(tmp / "lab")
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        fleet = build_fleet(devices)
        sizes = sorted(len(s.ports) for s in fleet.switches)
        t0 = time.perf_counter()
        fleet_record = lab.start(fleet_spec(lab.lab_dir, fleet))
        agent_pids = process_tree(fleet_record.pid)
        print(f"fleet up: {devices} devices, {fleet.interfaces} interfaces (per device min {sizes[0]}, median "
              f"{sizes[len(sizes) // 2]}, max {sizes[-1]}), {len(fleet.links)} LLDP links; "
              f"{fleet_record.info['workers']} snmpsim workers; started and every device answered in "
              f"{time.perf_counter() - t0:.0f} s (agent CPU {cpu_seconds(agent_pids):.0f} s); {CORES} cores")
        addresses = [s.address for s in fleet.switches]
        seeds = [s.address for s in fleet.switches if s.kind.role == "core"]
        for db in databases:
            db_root = 0
            if db == "sqlite":
                url = f"sqlite:///{tmp / 'scale.db'}"
            else:
                pg = lab.start(postgres_spec(lab.lab_dir))
                url, db_root = pg.info["url"], pg.pid
            spec = {"label": db, "lab_dir": str(lab.lab_dir), "url": url, "port": fleet_record.info["port"],
                    "addresses": addresses, "seeds": seeds, "agent_pids": agent_pids, "db_root_pid": db_root,
                    "passes": ["first", "re"]}
            results[db] = run_child(spec)
            for p in results[db]:
                print(f"{db:<10} {p['pass']:<5} wall {p['wall_s']:6.1f} s (crawl {p['crawl_s']:.1f}); ours CPU "
                      f"{p['client_cpu_s']:5.1f} s, peak RSS {p['peak_rss_mib']:6.0f} MiB; agent CPU "
                      f"{p['agent_cpu_s']:5.1f} s ({p['agent_cpu_s'] / (p['wall_s'] * CORES):.0%} of {CORES} cores), "
                      f"{p['requests']} requests, {p['varbinds']} varbinds; db server CPU {p['db_cpu_s']:.1f} s; "
                      f"found {p['found']}, new {p['new']}, links {p['links']}, events {p['events']}, "
                      f"unreachable {p['unreachable']}, problems {p['problems']}; db {fmt_bytes(p['db_bytes'])}")
    finally:
        lab.stop_all()
    for db in databases:
        by = {p["pass"]: p for p in results.get(db, [])}
        short = "pg" if db == "postgresql" else db
        none = "baseline none (no side-by-side baseline) n/a; ratio n/a"
        for name in ("first", "re"):
            p = by.get(name)
            figure = f"city_scale_{devices}_{'rediscovery' if name == 're' else 'discovery'}_wall_{short}"
            goal = f"<= {GOAL_WALL_S:g} s" if name == "re" else "informational"
            if p is None or p["found"] != devices:
                got = "not measured" if p is None else f"found {p['found']} of {devices}"
                print(f"RESULT {figure}: n/a ({got}); {none}; goal {goal}: FAIL")
                continue
            ok = name == "first" or p["wall_s"] <= GOAL_WALL_S
            share = p["agent_cpu_s"] / (p["wall_s"] * CORES)
            print(f"RESULT {figure}: {p['wall_s']:.1f} s; {none}; goal {goal} (agent {share:.0%} of {CORES} "
                  f"cores): {'PASS' if ok else 'FAIL'}")
        peak = max((p["peak_rss_mib"] for p in by.values()), default=None)
        figure = f"city_scale_{devices}_peak_rss_{short}"
        if peak is None:
            print(f"RESULT {figure}: n/a (not measured); {none}; goal <= {GOAL_RSS_MIB:g} MiB: FAIL")
        else:
            print(f"RESULT {figure}: {peak:.0f} MiB; {none}; goal <= {GOAL_RSS_MIB:g} MiB: "
                  f"{'PASS' if peak <= GOAL_RSS_MIB else 'FAIL'}")
        last = by.get("re") or by.get("first")
        size = "n/a (not measured)" if last is None else f"{last['db_bytes'] / 2**20:.1f} MiB"
        print(f"RESULT city_scale_{devices}_db_size_{short}: {size}; {none}; goal informational: "
              f"{'PASS' if last else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
