"""Full discovery of the lab city: our crawl + reconcile, beside LibreNMS's way of reading the same
agents (one ``snmpbulkwalk`` process per table, in a pool of 4), in one run.

Both read the same 129 answering devices of the simulated city (snmpsim); the agent's own CPU is
measured too, because against snmpsim the agent, not the client, is what takes the time. The city
is several snmpsim processes (``serve`` and its workers): their CPU is summed from ``/proc``, and
the workers' own counters give requests and varbinds answered, hence CPU per request/varbind.

    .venv/bin/python bench/city_discovery.py

Ends with ``RESULT`` lines (see docs/benchmarks.md) and exits 0 even when a goal is missed.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session  # noqa: E402

from infra_mgr.db import make_engine, upgrade  # noqa: E402
from infra_mgr.inventory.importer import import_file  # noqa: E402
from infra_mgr.lab.city import RunningCity, city_counters, city_liar_spec, city_pids, city_spec  # noqa: E402
from infra_mgr.lab.setup import configure_discovery  # noqa: E402
from infra_mgr.lab.supervisor import Lab  # noqa: E402
from infra_mgr.network.discovery import discover  # noqa: E402

GOAL_S = 10.0
TABLES = ("1.3.6.1.2.1.1", "1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1", "1.0.8802.1.1.2.1.4.1.1",
          "1.3.6.1.2.1.47.1.1.1.1")


def agent_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of the given live processes (the city's supervisor and workers)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def per_work(cpu_s: float, before: dict[str, int], after: dict[str, int]) -> str:
    """Agent CPU per request and per varbind answered between two counter readings."""
    requests, varbinds = after["requests"] - before["requests"], after["varbinds"] - before["varbinds"]
    return (f"{requests} requests, {varbinds} varbinds answered; "
            f"{1000 * cpu_s / max(requests, 1):.2f} ms/request, {1000 * cpu_s / max(varbinds, 1):.3f} ms/varbind")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def librenms_way(city: RunningCity, hosts: list[tuple[str, str, str]]) -> tuple[float, int]:
    """One snmpbulkwalk process per (device, table), four at a time: wall seconds and varbinds."""
    def walk(job: tuple[str, str, str]) -> int:
        address, community, table = job
        out = subprocess.run(["snmpbulkwalk", "-v2c", "-c", community, "-On", "-Cr25", "-t", "2", "-r", "1",
                              f"{address}:{city.port}", table], capture_output=True, text=True)
        return sum(1 for line in out.stdout.splitlines() if line.startswith("."))
    jobs = [(a, c, t) for _h, a, c in hosts for t in TABLES]
    start = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        varbinds = sum(pool.map(walk, jobs))
    return time.perf_counter() - start, varbinds


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench-city-"))
    lab = Lab(tmp / "lab")
    try:
        t0 = time.perf_counter()
        record = lab.start(city_spec(lab.lab_dir, prefer_standard_port=False))
        lab.start(city_liar_spec(lab.lab_dir))
        city = RunningCity.from_record(record)
        pids = city_pids(record)
        print(f"city up: {len(city.devices)} devices on port {city.port} in {time.perf_counter() - t0:.1f} s; "
              f"{len(pids)} processes ({record.info['workers']} snmpsim workers), "
              f"start-up CPU {agent_cpu(pids):.1f} s")
        url = f"sqlite:///{tmp / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        master = b"bench-city-key"
        with Session(engine) as s:
            import_file(s, ROOT / "examples" / "jeddah.yaml")
            configure_discovery(s, master, city)
            s.commit()

        work0, cpu0, own0 = city_counters(record), agent_cpu(pids), time.process_time()
        report = asyncio.run(discover(engine, master, all_sites=True, timeout_s=1.0, retries=1)).to_json()
        ours_agent, ours_client = agent_cpu(pids) - cpu0, time.process_time() - own0
        work1 = city_counters(record)
        print(f"ours: {report['found']} devices, {report['links']} links, wall {report['seconds']} s "
              f"(crawl {report['crawl_seconds']} s); client CPU {ours_client:.1f} s; agent CPU {ours_agent:.1f} s")
        print(f"  agent: {per_work(ours_agent, work0, work1)}")

        answering = [(d["hostname"], d["address"], d["snmp"]["community"]) for d in city.devices
                     if d["served_by"] == "snmpsim" and d["snmp"]["version"] == "2c" and d["fault"] is None]
        cpu0, ch0 = agent_cpu(pids), children_cpu()
        base_wall, base_vb = librenms_way(city, answering)
        base_agent, base_client = agent_cpu(pids) - cpu0, children_cpu() - ch0
        work2 = city_counters(record)
        print(f"LibreNMS way: {len(answering)} devices x {len(TABLES)} tables, {base_vb} varbinds, wall "
              f"{base_wall:.1f} s; client CPU {base_client:.1f} s; agent CPU {base_agent:.1f} s")
        print(f"  agent: {per_work(base_agent, work1, work2)}")
        wall = float(report["seconds"])
        verdict = "PASS" if wall <= GOAL_S else "FAIL"
        print(f"RESULT lab_city_discovery_wall: {wall:.1f} s; baseline librenms-snmpbulkwalk-pool4 {base_wall:.1f} s; "
              f"ratio {base_wall / wall:.2f}x; goal <= {GOAL_S:g} s: {verdict}")
        print(f"RESULT lab_city_agent_cpu: {ours_agent:.1f} s; "
              f"baseline librenms-snmpbulkwalk-pool4 {base_agent:.1f} s; "
              f"ratio {base_agent / max(ours_agent, 0.01):.2f}x; goal informational: PASS")
    finally:
        lab.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
