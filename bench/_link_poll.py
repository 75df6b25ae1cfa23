"""Poll cycles for ``bench/link_audit.py``: the lab city's uplinks through ``LinkPoller.cycle()``,
and 1,000 uplinks on net-snmp agents in network namespaces through the interface collector —
each beside net-snmp's ``snmpget`` sending the very requests our side sent (recorded per device by
``bench/_discovery_trace.py``), one process per request, as many devices at a time as our poller.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _discovery_trace import Request, mismatches, replay, tracing
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parents[1]
MASTER = b"bench-links-key"
CONCURRENCY = 64  # poll_many's default: the baseline gets as many devices at a time


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class LabRun:
    uplinks: int = 0
    devices: int = 0
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    read_walls: list[float] = field(default_factory=list)  # the cycle's interface reads alone
    base_walls: list[float] = field(default_factory=list)
    base_cpus: list[float] = field(default_factory=list)
    problem: str = ""
    base_problem: str = ""
    misses: list[str] = field(default_factory=list)  # cycles in which fewer devices answered us (the lossy lab)


@dataclass
class ScaleRun:
    agents: int = 0
    samples: int = 0
    goal_samples: int = 1000
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    base_walls: list[float] = field(default_factory=list)
    base_cpus: list[float] = field(default_factory=list)
    problem: str = ""
    base_problem: str = ""


def _baseline(requests: dict[tuple[str, int, str], list[Request]], walls: list[float], cpus: list[float],
              timeout_s: float) -> str:
    """One replay of the recorded GETs with net-snmp; '' or why it does not count."""
    got = replay(requests, workers=CONCURRENCY, timeout_s=timeout_s, retries=1)
    walls.append(got.wall_s)
    cpus.append(got.client_cpu_s)
    bad = mismatches(requests, got.per_device)
    return f"read other varbind counts on {len(bad)} devices, e.g. {bad[0]}" if bad else ""


def _only_gets(requests: dict[tuple[str, int, str], list[Request]]) -> str:
    kinds = {r.kind for reqs in requests.values() for r in reqs}
    return "" if kinds <= {"get"} else f"the poll also walked ({sorted(kinds)}): snmpget alone is not the same work"


# --- the lab ---------------------------------------------------------------------------------------


SYS_UPTIME = ("1.3.6.1.2.1.1.3.0",)


def _counter_requests(requests: dict[tuple[str, int, str], list[Request]]) -> dict[tuple[str, int, str], list[Request]]:
    """The interface reads only: the reachability probe's single sysUpTime GETs are left out (LibreNMS
    pings instead), so the baseline does less than our cycle, never more."""
    kept = {k: [r for r in reqs if r.oids != SYS_UPTIME] for k, reqs in requests.items()}
    return {k: v for k, v in kept.items() if v}


def lab_cycles(tmp: Path, *, cycles: int, smoke: bool, log: Callable[[str], None] = print) -> LabRun:
    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.inventory.importer import import_file
    from infra_mgr.lab.city import RunningCity, city_spec
    from infra_mgr.lab.setup import configure_discovery
    from infra_mgr.lab.supervisor import Lab
    from infra_mgr.network.discovery import discover
    from infra_mgr.network.models import Uplink
    from infra_mgr.telemetry.store import TelemetryStore

    out = LabRun()
    try:
        from infra_mgr.network import link_poller, uplinks
    except ImportError as exc:
        out.problem = f"{exc.name} not present"
        log(f"lab poll cycle: {out.problem}")
        return out
    lab = Lab(tmp / "lab")
    try:
        t0 = time.perf_counter()
        record = lab.start(city_spec(lab.lab_dir, prefer_standard_port=False))
        city = RunningCity.from_record(record)
        url = f"sqlite:///{tmp / 'lab.db'}"
        upgrade(url)
        db = make_engine(url)
        with Session(db) as s:
            import_file(s, ROOT / "examples" / "jeddah.yaml")
            configure_discovery(s, MASTER, city)
            s.commit()
        report = asyncio.run(discover(db, MASTER, all_sites=True, timeout_s=2.0, retries=1)).to_json()
        with Session(db) as s:
            uplinks.identify(s)
            s.commit()
            rows = list(s.exec(select(Uplink).where(col(Uplink.is_uplink))).all())
        out.uplinks, out.devices = len(rows), len({u.device_id for u in rows})
        log(f"lab: {len(city.devices)} devices served, discovery found {report['found']}, {out.uplinks} uplinks on "
            f"{out.devices} devices identified, in {time.perf_counter() - t0:.0f} s")
        if not rows:
            out.problem = "no uplink identified"
            return out
        poller = link_poller.LinkPoller(db, MASTER, store=TelemetryStore(db))
        first = asyncio.run(poller.cycle())  # the first cycle learns each agent (64/32-bit rows, optics)
        log(f"lab: first cycle {first.seconds:.2f} s (not timed): {first.uplinks} uplinks on {first.devices} devices, "
            f"{first.polled_ok} polled, {first.reach} devices probed, failed {first.failed}")
        out.uplinks, out.devices = first.uplinks, first.devices
        time.sleep(0 if smoke else 1.0)
        with tracing() as trace:  # a steady-state cycle, recorded for the baseline, not timed
            asyncio.run(poller.cycle())
        requests = _counter_requests(trace.answering())
        out.base_problem = _only_gets(requests)
        sent = sum(len(v) for v in requests.values())
        log(f"lab: a steady cycle sent {sent} interface requests to {len(requests)} devices "
            f"({sum(r.varbinds for v in requests.values() for r in v)} varbinds) besides the reachability probes; "
            f"timing {cycles} cycles (ICMP x3 + SNMP sysUpTime x3 per device, rates, one transaction, telemetry "
            f"and roll-up included), each followed by net-snmp reading the same interface cells")
        for k in range(cycles):
            time.sleep(0 if smoke else 1.0)  # a second between cycles: counters move, rates are not same_time
            c0, w0 = _cpu(), time.perf_counter()
            got = asyncio.run(poller.cycle())
            out.walls.append(time.perf_counter() - w0)
            out.cpus.append(_cpu() - c0)
            if got.polled_ok < first.polled_ok:  # ours, not the baseline's: said beside our figure
                out.misses.append(f"cycle {k + 1}: {got.polled_ok} of {first.polled_ok} devices answered")
            # The interface reads alone (the cycle's SNMP part, same engine and jobs): what the
            # baseline does, without reachability probes, rates and the database.
            plan = poller._plan(int(time.time() * 1000))
            r0 = time.perf_counter()
            asyncio.run(poller._poll(plan.jobs))
            out.read_walls.append(time.perf_counter() - r0)
            if not out.base_problem:
                wanted = dict(list(requests.items())[:5]) if smoke else requests
                out.base_problem = _baseline(wanted, out.base_walls, out.base_cpus, timeout_s=2.0)
            log(f"  cycle {k + 1}: ours {out.walls[-1]:.2f} s wall, {out.cpus[-1]:.2f} s CPU (interface reads "
                f"alone {out.read_walls[-1]:.2f} s); snmpget "
                f"{out.base_walls[-1] if out.base_walls else float('nan'):.2f} s wall, "
                f"{out.base_cpus[-1] if out.base_cpus else float('nan'):.2f} s CPU")
        db.dispose()
    except Exception as exc:  # a broken part says why in its RESULT lines; the other parts still run
        out.problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        log(f"lab poll cycle failed: {out.problem}")
        out.walls = []
    finally:
        lab.stop_all()
    return out


# --- 1,000 uplinks on netns agents -----------------------------------------------------------------


def _if_indexes(namespace: str) -> dict[str, int]:
    text = subprocess.run(["ip", "-n", namespace, "-j", "link", "show"], capture_output=True, text=True,
                          check=True).stdout
    return {i["ifname"]: int(i["ifindex"]) for i in json.loads(text)}


def _jobs(agents: list[Any], community: str) -> list[tuple[Any, list[int]]]:
    """Two uplink interfaces per agent: its management uplink and its first port."""
    from infra_mgr.snmp.target import SnmpTarget

    by_ns: dict[str, dict[str, int]] = {}
    jobs = []
    for a in agents:
        idx = by_ns.setdefault(a.namespace, _if_indexes(a.namespace))
        target = SnmpTarget(address=a.address, port=a.port, version="2c", community=community, timeout_s=2.0,
                            retries=1)
        jobs.append((target, [idx["mgmt0"], idx["Gi1-0-1"]]))
    return jobs


def _collector(jobs: list[tuple[Any, list[int]]]) -> Callable[[Any], list[Any]]:
    """One cycle of the interface collector over the jobs (target, uplink ifIndexes)."""
    from infra_mgr.network.snmp import ifpoll

    def go(engine: Any) -> list[Any]:
        return list(asyncio.run(ifpoll.poll_many(engine, jobs, concurrency=CONCURRENCY)))

    return go


def scale_cycles(*, agents: int, rounds: int, smoke: bool, log: Callable[[str], None] = print) -> ScaleRun:
    import os

    out = ScaleRun(goal_samples=1000)
    if os.geteuid() != 0:
        out.problem = "needs root (network namespaces): skipped"
        log(f"1,000 uplinks: {out.problem}")
        return out
    try:
        from infra_mgr.network.snmp import ifpoll  # noqa: F401
    except ImportError as exc:
        out.problem = f"{exc.name} not present"
        log(f"1,000 uplinks: {out.problem}")
        return out
    from netns_agents import AgentFleet

    from infra_mgr.snmp.engine import SnmpEngine

    community = "isb-links"
    # Own names and addresses, apart from snmp_sweep's fleets (a smoke run may run beside a full one).
    prefix, net = ("isbl", 97) if smoke else ("isbk", 67)
    try:
        with AgentFleet(agents, community=community, namespaces=min(agents, 50), ports=2, prefix=prefix,
                        net=net) as fleet:
            started = fleet.start()
            jobs = _jobs(started, community)
            out.agents, out.samples = len(started), sum(len(j[1]) for j in jobs)
            go = _collector(jobs)
            engine = SnmpEngine(max_concurrency=CONCURRENCY)
            polls = go(engine)  # the first cycle learns each agent (64/32-bit rows, optics): not timed
            with tracing() as trace:  # a steady-state cycle, recorded for the baseline, not timed
                polls = go(engine)
            failed = [p for p in polls if getattr(p, "error_kind", None)]
            if failed:
                raise RuntimeError(f"{len(failed)} agents gave no answer in the first cycle, e.g. "
                                   f"{failed[0].address}: {failed[0].error_kind} {failed[0].error}")
            requests = _counter_requests(trace.answering())
            out.base_problem = _only_gets(requests)
            log(f"1,000 uplinks: {out.samples} interfaces on {out.agents} agents; one cycle sent "
                f"{sum(len(v) for v in requests.values())} requests ({trace.varbinds()} varbinds)")
            for k in range(rounds):
                time.sleep(0 if smoke else 1.0)
                c0, w0 = _cpu(), time.perf_counter()
                polls = go(engine)
                out.walls.append(time.perf_counter() - w0)
                out.cpus.append(_cpu() - c0)
                lost = [p for p in polls if getattr(p, "error_kind", None)]
                if lost:
                    raise RuntimeError(f"{len(lost)} agents lost in round {k + 1}, e.g. {lost[0].address}")
                if not out.base_problem:
                    out.base_problem = _baseline(requests, out.base_walls, out.base_cpus, timeout_s=2.0)
                log(f"  round {k + 1}: ours {out.walls[-1]:.2f} s wall, {out.cpus[-1]:.3f} s CPU; snmpget "
                    f"{out.base_walls[-1] if out.base_walls else float('nan'):.2f} s wall, "
                    f"{out.base_cpus[-1] if out.base_cpus else float('nan'):.3f} s CPU (agents' CPU so far "
                    f"{fleet.agent_cpu_s():.1f} s)")
    except (Exception, SystemExit) as exc:
        out.problem = f"{type(exc).__name__}: {str(exc)[:200]}"
        log(f"1,000 uplinks failed: {out.problem}")
        out.walls = []
    return out
