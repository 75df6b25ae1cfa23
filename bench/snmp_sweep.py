"""Benchmark: an SNMP discovery sweep with our poll engine against LibreNMS's method and pysnmp.

Agents: real net-snmp ``snmpd`` processes in network namespaces, each namespace a branch access
switch with 52 interfaces (48 veth "ports" ``Gi1-0-1`` … with English/Arabic ifAlias values, two
bridges, the uplink, ``lo``) — see ``bench/netns_agents.py``. net-snmp is C and serves a walk
for a few ms of CPU, so the client is what is measured.

Every method walks the same subtrees of every agent — system group ``1.3.6.1.2.1.1``, ifTable
``1.3.6.1.2.1.2.2``, ifXTable ``1.3.6.1.2.1.31.1.1`` (LLDP's remote table too with ``--lldp``;
net-snmp has none, so it adds one empty walk) — with SNMPv2c GETBULK and the same
max-repetitions (the engine's is an upper bound: it sizes answers to fit), timeout and retries
(pysnmp gets a 10 s timeout and 8 devices in flight, see below). Each sweep runs in a fresh Python
process, the methods taking
turns round by round (the machine may be shared: a busy minute then falls on all of them), and
its CPU (``getrusage`` of that process, plus its children for snmpbulkwalk) is taken around the
timed sweep only, after imports and a one-device warm-up:

* **engine** — ``infra_mgr.network.snmp.engine.SnmpEngine``: every device in ``engine.session``,
  its subtrees walked with ``GufoWalker.walk``, all devices gathered under the engine's global
  bound (``--concurrency``);
* **gufo-snmp raw** — the same walks straight on ``gufo.snmp.aio.SnmpSession.getbulk`` under an
  ``asyncio.Semaphore``: the library floor, which shows what the engine itself costs;
* **LibreNMS method** — one ``snmpbulkwalk`` process per subtree walked, with LibreNMS's flags
  (``-OQXUte``, plus ``-On`` since the IF-MIB files are not installed here), devices handed to a
  pool of ``--pool`` workers, each walking its device's subtrees one after the other as a
  LibreNMS poller worker does. Real LibreNMS also parses MIB files in every process and its output
  in PHP; neither is counted here, so this baseline is cheaper than the real thing;
* **pysnmp hlapi** — pysnmp 7 asyncio ``bulk_walk_cmd`` (``lexicographicMode=False``), one
  ``SnmpEngine``, 8 devices in flight and a 10 s timeout (it decodes 100-row answers so slowly on
  its event loop that with 64 in flight it gives up devices that did answer);
* **engine via probe_many** (a table row, not in the ratios) — the discovery getters' own sweep,
  ``getters.probe_many`` (facts by GET, ifTable/ifXTable column by column, LLDP/CDP): other OIDs
  than the walks, parsed into facts; shown so that the real discovery path is measured too.

Then, with the engine only (walks, and probe_many beside them): a sweep of every agent
(``--agents 1000`` for the scale goal; the agents share 50 namespaces, 20 ``snmpd`` per
namespace, each on its own address) and a sweep of the comparison set with 10% of its agents
``SIGSTOP``ped (their sockets stay bound; requests are queued and never answered) at
``--dead-timeout`` / ``--dead-retries``. Every method must read the same varbind count from every
device, and no sweep may lose a device but the frozen ones, or the benchmark is broken (exit 1).

Figures (``RESULT`` lines; the script exits 0 even when a goal is missed):

1. ``client_cpu_per_1000_varbinds`` — engine walks vs LibreNMS (its snmpbulkwalk processes only,
   the smaller and so stricter baseline); goal engine <= 1/3 of it;
2. ``client_cpu_per_1000_varbinds_pysnmp`` — informational ratio to pysnmp hlapi;
3. ``sweep_1000_agents_wall`` — 1,000 agents swept with the engine's walks, first sweep; goal
   <= 60 s (reported as not measured with fewer agents); ``…_probe_many`` beside it, informational;
4. ``sweep_10pct_dead`` — engine walks; goal <= timeout x retries + 2 s; ``…_probe_many`` beside
   it, informational;
5. ``lab_city_discovery_wall`` — placeholder until the discovery service is wired to this bench.

Usage: ``.venv/bin/python bench/snmp_sweep.py [--agents 50] [--rounds 3] [--no-pysnmp]``
(root: it creates network namespaces; everything is removed at exit, also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from netns_agents import Agent, AgentFleet  # noqa: E402

SUBTREES = {"system": "1.3.6.1.2.1.1", "ifTable": "1.3.6.1.2.1.2.2", "ifXTable": "1.3.6.1.2.1.31.1.1"}
LLDP_REMOTE = "1.0.8802.1.1.2.1.4.1"
SNMPBULKWALK = "/usr/bin/snmpbulkwalk"
LIBRENMS_FLAGS = "-OQXUte"  # LibreNMS NetSnmpQuery::DEFAULT_FLAGS

GOAL_CPU_FRACTION = 1 / 3
GOAL_SCALE_AGENTS = 1000
GOAL_SCALE_WALL_S = 60.0
GOAL_DISCOVERY_WALL_S = 10.0

METHOD_LABELS = {
    "engine": "engine (infra_mgr SnmpEngine + GufoWalker.walk)",
    "probe": "engine via getters.probe_many (discovery set)",
    "gufo": "gufo-snmp raw (SnmpSession.getbulk)",
    "librenms": "LibreNMS method (snmpbulkwalk per subtree, pool)",
    "pysnmp": "pysnmp 7.1 hlapi (asyncio bulk_walk_cmd)",
}


# =========================================================================== worker side
# A worker is this file run as ``--worker SPEC.json`` in a fresh interpreter: it sweeps the
# spec's targets with one method and prints one JSON line with its timings and counts.


@dataclass
class Sweep:
    """What one sweep of all targets by one method found."""

    wall_s: float = 0.0
    cpu_self_s: float = 0.0
    cpu_children_s: float = 0.0
    varbinds: int = 0
    per_device: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _cpu() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


Outcome = tuple[dict[str, int], list[str], list[str], int | None]  # per device, failed, problems, varbinds
Runner = Callable[[list[str]], Outcome]


def _measure(run: Callable[[], Outcome]) -> Sweep:
    self0, kids0 = _cpu()
    t0 = time.perf_counter()
    per_device, failed, problems, varbinds = run()
    wall = time.perf_counter() - t0
    self1, kids1 = _cpu()
    return Sweep(wall_s=wall, cpu_self_s=self1 - self0, cpu_children_s=kids1 - kids0,
                 varbinds=sum(per_device.values()) if varbinds is None else varbinds, per_device=per_device,
                 failed=failed, problems=problems[:5])


def _engine_runner(spec: dict[str, Any]) -> Runner:
    from infra_mgr.network.snmp.engine import PollAbort, SnmpEngine
    from infra_mgr.network.snmp.facts import SnmpTarget

    engine = SnmpEngine(max_concurrency=spec["concurrency"])
    oids: list[str] = spec["oids"]

    async def device(address: str) -> tuple[str, int, bool, list[str]]:
        target = SnmpTarget(address=address, port=161, version="2c", community=spec["community"],
                            timeout_s=spec["timeout"], retries=spec["retries"], max_repetitions=spec["max_rep"])
        count = 0
        async with engine.session(target) as walker:
            try:
                for oid in oids:
                    count += len(await walker.walk(oid))
            except PollAbort:
                pass
            problems = [f"{p.address} {p.operation} {p.kind}: {p.message}" for p in walker.problems]
            return address, count, walker.answered and not any(p.kind == "timeout" for p in walker.problems), problems

    async def sweep(addresses: list[str]) -> Outcome:
        results = await asyncio.gather(*(device(a) for a in addresses))
        return ({a: n for a, n, ok, _ in results if ok}, [a for a, _, ok, _ in results if not ok],
                [p for *_, ps in results for p in ps], None)

    return lambda addresses: asyncio.run(sweep(addresses))


def _gufo_runner(spec: dict[str, Any]) -> Runner:
    from gufo.snmp.aio import SnmpSession

    oids: list[str] = spec["oids"]

    async def device(address: str, sem: asyncio.Semaphore) -> tuple[str, int, bool]:
        async with sem:
            session = SnmpSession(addr=address, port=161, community=spec["community"], timeout=spec["timeout"],
                                  max_repetitions=spec["max_rep"])
            count = 0
            for oid in oids:
                for attempt in range(spec["retries"] + 1):
                    try:
                        n = 0
                        async for _ in session.getbulk(oid):
                            n += 1
                        count += n
                        break
                    except TimeoutError:
                        if attempt == spec["retries"]:
                            return address, count, False
            return address, count, True

    async def sweep(addresses: list[str]) -> Outcome:
        sem = asyncio.Semaphore(spec["concurrency"])
        results = await asyncio.gather(*(device(a, sem) for a in addresses))
        return {a: n for a, n, ok in results if ok}, [a for a, _, ok in results if not ok], [], None

    return lambda addresses: asyncio.run(sweep(addresses))


def _librenms_runner(spec: dict[str, Any]) -> Runner:
    oids: list[str] = spec["oids"]

    def device(address: str) -> tuple[str, int, bool, str]:
        count = 0
        for oid in oids:
            cmd = [SNMPBULKWALK, f"-Cr{spec['max_rep']}", "-v2c", "-c", spec["community"], LIBRENMS_FLAGS, "-On",
                   "-t", f"{spec['timeout']:g}", "-r", str(spec["retries"]), f"udp:{address}:161", oid]
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
            if proc.returncode != 0:
                return address, count, False, proc.stderr.strip()[:200]
            # one varbind per line that starts with a numeric OID (-On); wrapped Hex-STRING lines don't
            count += sum(1 for line in proc.stdout.splitlines() if line.startswith(".") and " = " in line
                         and "No Such Object" not in line)
        return address, count, True, ""

    def sweep(addresses: list[str]) -> Outcome:
        with ThreadPoolExecutor(spec["pool"]) as pool:
            results = list(pool.map(device, addresses))
        return ({a: n for a, n, ok, _ in results if ok}, [a for a, _, ok, _ in results if not ok],
                [f"{a}: {e}" for a, _, ok, e in results if not ok], None)

    return sweep


def _pysnmp_runner(spec: dict[str, Any]) -> Runner:
    from pysnmp.hlapi.v3arch.asyncio import (
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        bulk_walk_cmd,
    )

    oids: list[str] = spec["oids"]
    holder: dict[str, Any] = {}

    async def device(address: str, sem: asyncio.Semaphore) -> tuple[str, int, bool, str]:
        async with sem:
            engine = holder["engine"]
            # pysnmp decodes in Python on the event loop: with 64 devices in flight and 100-row
            # answers it falls behind its own timeouts and gives up devices that answered; it gets
            # 10 s and 8 devices in flight
            target = await UdpTransportTarget.create((address, 161), timeout=max(spec["timeout"], PYSNMP_TIMEOUT_S),
                                                     retries=spec["retries"])
            count = 0
            for oid in oids:
                async for err_ind, err_stat, _idx, var_binds in bulk_walk_cmd(
                        engine, CommunityData(spec["community"], mpModel=1), target, ContextData(), 0, spec["max_rep"],
                        ObjectType(ObjectIdentity(oid)), lexicographicMode=False):
                    if err_ind or err_stat:
                        return address, count, False, str(err_ind or err_stat)
                    count += len(var_binds)
            return address, count, True, ""

    async def sweep(addresses: list[str]) -> Outcome:
        holder.setdefault("engine", SnmpEngine())
        sem = asyncio.Semaphore(min(spec["concurrency"], PYSNMP_CONCURRENCY))
        results = await asyncio.gather(*(device(a, sem) for a in addresses))
        return ({a: n for a, n, ok, _ in results if ok}, [a for a, _, ok, _ in results if not ok],
                [f"{a}: {e}" for a, _, ok, e in results if not ok], None)

    loop = asyncio.new_event_loop()  # one loop for all rounds: pysnmp's engine is bound to it
    return lambda addresses: loop.run_until_complete(sweep(addresses))


PYSNMP_TIMEOUT_S = 10.0
PYSNMP_CONCURRENCY = 8


def _probe_runner(spec: dict[str, Any]) -> Runner:
    """The discovery getters' own sweep: ``probe_many`` (facts, interfaces, LLDP/CDP neighbours;
    IP addresses off). It reads other OIDs than the walks (scalars by GET, tables column by
    column) and parses them into facts; per device it reports the interfaces found."""
    from infra_mgr.network.snmp.engine import SnmpEngine
    from infra_mgr.network.snmp.facts import SnmpTarget
    from infra_mgr.network.snmp.getters import ProbeOptions, probe_many

    engine = SnmpEngine(max_concurrency=spec["concurrency"])
    options = ProbeOptions(neighbors=True, ip_addresses=False)

    async def sweep(addresses: list[str]) -> Outcome:
        targets = [SnmpTarget(address=a, port=161, version="2c", community=spec["community"], timeout_s=spec["timeout"],
                              retries=spec["retries"], max_repetitions=spec["max_rep"]) for a in addresses]
        before = engine.stats.varbinds
        results = await probe_many(targets, engine, options)
        problems = [f"{p.address} {p.operation} {p.kind}: {p.message}" for r in results for p in r.errors]
        return ({r.address: len(r.interfaces) for r in results if r.reachable},
                [r.address for r in results if not r.reachable], problems, engine.stats.varbinds - before)

    return lambda addresses: asyncio.run(sweep(addresses))


RUNNERS = {"engine": _engine_runner, "probe": _probe_runner, "gufo": _gufo_runner, "librenms": _librenms_runner,
           "pysnmp": _pysnmp_runner}


def worker(spec_path: str) -> int:
    """Run one method as the spec says; print {"warmup": ..., "rounds": [...]} as one JSON line."""
    spec = json.loads(Path(spec_path).read_text())
    sweep = RUNNERS[spec["method"]](spec)
    addresses: list[str] = spec["addresses"]
    out: dict[str, Any] = {"method": spec["method"], "rounds": []}
    if spec["warmup"]:
        out["warmup"] = _measure(lambda: sweep(addresses[:1])).__dict__
    for _ in range(spec["rounds"]):
        out["rounds"].append(_measure(lambda: sweep(addresses)).__dict__)
    print(json.dumps(out))
    return 0


# =========================================================================== main side


@dataclass
class MethodResult:
    """The timed sweeps of one method, summarised."""

    method: str
    devices: int
    rounds: list[Sweep]
    agent_cpu_s: float = 0.0  # all agents' CPU during the workers' whole runs (warm-ups included)
    load1: float = 0.0  # the machine's 1-minute load average when the (last) worker started
    warmups: int = 0  # one-device warm-up sweeps, one per worker

    def merge(self, other: MethodResult) -> MethodResult:
        """The rounds of two workers of the same method as one result."""
        return MethodResult(self.method, self.devices, self.rounds + other.rounds, self.agent_cpu_s + other.agent_cpu_s,
                            other.load1, self.warmups + other.warmups)

    @property
    def varbinds(self) -> int:
        return sum(r.varbinds for r in self.rounds)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.rounds)

    @property
    def devices_per_s(self) -> float:
        return self.devices / self.wall_s

    def cpu_ms_per_1000(self, part: str = "total") -> float:
        cpu = {"self": sum(r.cpu_self_s for r in self.rounds),
               "children": sum(r.cpu_children_s for r in self.rounds)}
        total = cpu["self"] + cpu["children"] if part == "total" else cpu[part]
        return total * 1e6 / max(1, self.varbinds)

    @property
    def agent_ms_per_device(self) -> float:
        return self.agent_cpu_s * 1000 / (len(self.rounds) * self.devices + self.warmups)


def run_method(method: str, fleet: AgentFleet, agents: Sequence[Agent], args: argparse.Namespace, *, rounds: int,
               timeout: float, retries: int, warmup: bool = True) -> MethodResult:
    """Run one method in a fresh interpreter over ``agents``; raise SystemExit if it broke."""
    oids = list(SUBTREES.values()) + ([LLDP_REMOTE] if args.lldp else [])
    spec = {"method": method, "addresses": [a.address for a in agents], "community": args.community, "oids": oids,
            "max_rep": args.max_repetitions, "timeout": timeout, "retries": retries,
            "concurrency": args.concurrency, "pool": args.pool, "rounds": rounds, "warmup": warmup}
    label = f"{METHOD_LABELS[method]}: {rounds} x {len(agents)} agents"
    print(f"[sweep] {label} (timeout {timeout:g} s, retries {retries}) ...", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    load1 = os.getloadavg()[0]
    agent0 = fleet.agent_cpu_s()
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", spec_path],
                              capture_output=True, text=True, cwd=ROOT)
    finally:
        os.unlink(spec_path)
    agent_cpu = fleet.agent_cpu_s() - agent0
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"FAIL {method} worker exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return MethodResult(method, len(agents), [Sweep(**r) for r in data["rounds"]], agent_cpu, load1, int(warmup))


def check_complete(r: MethodResult, expect_failed: frozenset[str] | set[str] = frozenset()) -> None:
    """Every device answered (but the frozen ones), or the benchmark is broken."""
    for sweep in r.rounds:
        if set(sweep.failed) != set(expect_failed):
            unexpected = sorted(set(sweep.failed) ^ set(expect_failed))
            raise SystemExit(f"FAIL {r.method}: devices failed {sorted(sweep.failed)[:5]}, expected "
                             f"{sorted(expect_failed)[:5]} (differ: {unexpected[:5]}); problems: {sweep.problems[:3]}")


def check_same(results: Sequence[MethodResult]) -> None:
    """Every method must have read the same number of varbinds from every device, or the
    comparison means nothing: then the benchmark is broken and says where."""
    ref = results[0]
    for r in results:
        check_complete(r)
    want = ref.rounds[-1].per_device
    for r in results[1:]:
        got = r.rounds[-1].per_device
        diff = {a: (want.get(a), got.get(a)) for a in set(want) | set(got) if want.get(a) != got.get(a)}
        if diff:
            sample = dict(list(diff.items())[:3])
            raise SystemExit(f"FAIL {r.method} read other varbind counts than {ref.method} on {len(diff)} devices "
                             f"({ref.method}, {r.method}): {sample}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    """Start the agents, measure, print; 0 even when a goal is missed (1 when the bench broke)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50, help="snmpd agents to start (default 50; 1000: scale goal)")
    ap.add_argument("--namespaces", type=int, default=None, help="network namespaces (default min(agents, 50))")
    ap.add_argument("--compare-agents", type=int, default=50,
                    help="agents swept by every method for the CPU comparison (default 50)")
    ap.add_argument("--rounds", type=int, default=3, help="timed sweeps per method (default 3)")
    ap.add_argument("--pysnmp-rounds", type=int, default=1, help="timed sweeps for pysnmp, the slow one (default 1)")
    ap.add_argument("--no-pysnmp", action="store_true", help="skip pysnmp hlapi")
    ap.add_argument("--concurrency", type=int, default=64, help="devices in flight, engine/gufo/pysnmp (default 64)")
    ap.add_argument("--pool", type=int, default=4, help="LibreNMS method: snmpbulkwalk worker pool (default 4)")
    ap.add_argument("--max-repetitions", type=int, default=100,
                    help="GETBULK max-repetitions, all methods (default 100, SnmpTarget's default; the engine "
                         "takes it as an upper bound and sizes each answer to fit gufo's buffer)")
    ap.add_argument("--timeout", type=float, default=2.0, help="per-request timeout, s (live sweeps; default 2)")
    ap.add_argument("--retries", type=int, default=1, help="retries (live sweeps; default 1)")
    ap.add_argument("--dead-timeout", type=float, default=1.0, help="per-request timeout, s (dead-agent sweep)")
    ap.add_argument("--dead-retries", type=int, default=1, help="retries (dead-agent sweep)")
    ap.add_argument("--dead-fraction", type=float, default=0.10, help="agents SIGSTOPped in the dead-agent sweep")
    ap.add_argument("--scale-rounds", type=int, default=2, help="sweeps of all agents per engine path (default 2)")
    ap.add_argument("--lldp", action="store_true", help="also walk lldpRemTable (empty on net-snmp)")
    ap.add_argument("--community", default="isb-bench")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    if args.agents < 1 or args.compare_agents < 1 or args.rounds < 1 or args.scale_rounds < 1:
        ap.error("--agents, --compare-agents, --rounds and --scale-rounds must be >= 1")
    if not 0 < args.dead_fraction < 1:
        ap.error("--dead-fraction must be between 0 and 1")

    t_start = time.perf_counter()
    # SIGTERM, like Ctrl-C, unwinds through the ``with`` below: agents and namespaces are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with AgentFleet(args.agents, community=args.community, namespaces=args.namespaces) as fleet:
        agents = fleet.start()
        report(fleet, agents, args, t_start)
    print(f"total runtime: {time.perf_counter() - t_start:.1f} s (agents set up in {fleet.setup_s:.1f} s, "
          "torn down)")
    return 0


def _row(label: str, r: MethodResult, ours: float, wall: float | None = None, note: str = "") -> str:
    """One line of the table."""
    wall = r.wall_s if wall is None else wall
    cpu = r.cpu_ms_per_1000()
    return (f"{label:<52} {len(r.rounds):>6} {wall:>7.2f}s {r.devices / wall:>8.1f} {cpu:>13.3f} "
            f"{cpu / ours:>6.1f}x {r.agent_ms_per_device:>9.1f} {r.load1:>5.1f}{note}")


def report(fleet: AgentFleet, agents: list[Agent], args: argparse.Namespace, t_start: float) -> None:
    """Run every measurement against the running fleet and print the table and RESULT lines."""
    compare = agents[:min(args.compare_agents, len(agents))]
    live = {"timeout": args.timeout, "retries": args.retries}
    methods = ["engine", "gufo", "librenms"] + ([] if args.no_pysnmp else ["pysnmp"])
    results: dict[str, MethodResult] = {}
    # Round-robin, one fresh worker per method and round: this machine is shared, and a busy
    # minute should fall on every method alike rather than on whichever ran then.
    for _ in range(args.rounds):
        for m in ("engine", "gufo", "librenms", "probe"):
            r = run_method(m, fleet, compare, args, rounds=1, **live)
            results[m] = results[m].merge(r) if m in results else r
    if not args.no_pysnmp:
        results["pysnmp"] = run_method("pysnmp", fleet, compare, args, rounds=args.pysnmp_rounds, **live)
    probe = results.pop("probe")
    check_same(list(results.values()))
    check_complete(probe)

    scale: dict[str, MethodResult] = {}
    scale_agents = agents[:GOAL_SCALE_AGENTS]
    if len(scale_agents) > len(compare):
        for m in ("engine", "probe"):
            scale[m] = run_method(m, fleet, scale_agents, args, rounds=args.scale_rounds, **live)
            check_complete(scale[m])

    n_dead = max(1, round(len(compare) * args.dead_fraction))
    dead = [compare[(i * len(compare)) // n_dead + len(compare) // n_dead - 1] for i in range(n_dead)]
    dead_addresses = {a.address for a in dead}
    dead_runs: dict[str, MethodResult] = {}
    print(f"[sweep] SIGSTOP {len(dead)} of {len(compare)} agents", flush=True)
    fleet.freeze(dead)
    try:
        for m in ("engine", "probe"):
            dead_runs[m] = run_method(m, fleet, compare, args, rounds=1, timeout=args.dead_timeout,
                                      retries=args.dead_retries, warmup=False)
            check_complete(dead_runs[m], dead_addresses)
    finally:
        fleet.thaw()
    want = results["engine"].rounds[-1].per_device
    short = [a for a, n in dead_runs["engine"].rounds[0].per_device.items() if n != want.get(a)]
    if short:
        raise SystemExit(f"FAIL dead-agent sweep: live agents read incompletely: {short[:5]}")

    # ------------------------------------------------------------------ table
    vb_per_device = statistics.median(results["engine"].rounds[-1].per_device.values())
    probe_vb = probe.rounds[-1].varbinds / len(compare)
    print()
    print(f"agents: {len(agents)} snmpd (net-snmp 5.9) in {fleet.n_namespaces} network namespaces, "
          f"{fleet.per_namespace} per namespace, {fleet.ports + 4} interfaces each; set up in {fleet.setup_s:.1f} s")
    print(f"walked per device: {', '.join(SUBTREES)}{' + lldpRemTable' if args.lldp else ''} = "
          f"{vb_per_device:.0f} varbinds (probe_many: {probe_vb:.0f}); GETBULK max-repetitions "
          f"{args.max_repetitions}; concurrency {args.concurrency}; LibreNMS pool {args.pool}")
    print()
    head = (f"{'method':<52} {'rounds':>6} {'wall':>8} {'dev/s':>8} {'CPU ms/1k vb':>13} {'ratio':>7} "
            f"{'agent ms/dev':>9} {'load1':>5}")
    print(head)
    print("-" * len(head))
    ours = results["engine"].cpu_ms_per_1000()
    base = results["librenms"].cpu_ms_per_1000("children")
    for m in methods:
        r = results[m]
        print(_row(METHOD_LABELS[m], r, ours))
        if m == "librenms":
            print(f"{'  of which snmpbulkwalk processes':<52} {'':>6} {'':>8} {'':>8} "
                  f"{r.cpu_ms_per_1000('children'):>13.3f} {r.cpu_ms_per_1000('children') / ours:>6.1f}x")
            print(f"{'  of which the Python pool driving them':<52} {'':>6} {'':>8} {'':>8} "
                  f"{r.cpu_ms_per_1000('self'):>13.3f}")
    print(_row(METHOD_LABELS["probe"], probe, ours))
    for m, r in scale.items():
        walls = ", ".join(f"{x.wall_s:.1f}" for x in r.rounds)
        print(_row(f"{'engine walks' if m == 'engine' else 'probe_many'}, all {len(scale_agents)} agents", r, ours,
                   wall=r.rounds[0].wall_s, note=f"  first sweep; all: {walls} s"))
    for m, r in dead_runs.items():
        print(_row(f"{'engine walks' if m == 'engine' else 'probe_many'}, {len(dead)} of {len(compare)} SIGSTOPped",
                   r, ours, note=f"  timeout {args.dead_timeout:g} s, retries {args.dead_retries}"))
    print("ratio: client CPU per 1,000 varbinds relative to the engine's walks; wall: median of the rounds;")
    print("agent ms/dev: CPU of all snmpd per device swept; load1: the machine's 1-min load average at the start")
    print(f"elapsed so far: {time.perf_counter() - t_start:.1f} s")
    print()

    # ------------------------------------------------------------------ RESULT lines
    print(f"RESULT client_cpu_per_1000_varbinds: {ours:.3f} ms; baseline librenms-snmpbulkwalk {base:.3f} ms; "
          f"ratio {base / ours:.1f}x less; goal <= 1/3 of baseline ({base * GOAL_CPU_FRACTION:.3f} ms): "
          f"{_verdict(ours <= base * GOAL_CPU_FRACTION)}")
    if "pysnmp" in results:
        py = results["pysnmp"].cpu_ms_per_1000()
        print(f"RESULT client_cpu_per_1000_varbinds_pysnmp: {ours:.3f} ms; baseline pysnmp-hlapi {py:.3f} ms; "
              f"ratio {py / ours:.1f}x less; goal informational: PASS")
    else:
        print("RESULT client_cpu_per_1000_varbinds_pysnmp: n/a (--no-pysnmp); baseline pysnmp-hlapi n/a; ratio n/a; "
              "goal informational: PASS")
    if len(scale_agents) >= GOAL_SCALE_AGENTS:
        for m, name in (("engine", "sweep_1000_agents_wall"), ("probe", "sweep_1000_agents_wall_probe_many")):
            wall = scale[m].rounds[0].wall_s
            goal = f"<= {GOAL_SCALE_WALL_S:.0f} s" if m == "engine" else "informational"
            verdict = _verdict(wall <= GOAL_SCALE_WALL_S) if m == "engine" else "PASS"
            print(f"RESULT {name}: {wall:.1f} s; baseline goal {GOAL_SCALE_WALL_S:.0f} s; "
                  f"ratio {GOAL_SCALE_WALL_S / wall:.1f}x under; goal {goal}: {verdict}")
    else:
        print(f"RESULT sweep_1000_agents_wall: n/a (this run had {len(agents)} agents; run with --agents 1000); "
              f"baseline goal {GOAL_SCALE_WALL_S:.0f} s; ratio n/a; goal <= {GOAL_SCALE_WALL_S:.0f} s: "
              "FAIL (not measured)")
    bound = args.dead_timeout * args.dead_retries + 2.0
    for m, name in (("engine", "sweep_10pct_dead"), ("probe", "sweep_10pct_dead_probe_many")):
        wall = dead_runs[m].rounds[0].wall_s
        alive = (results["engine"] if m == "engine" else probe).wall_s
        goal = f"<= timeout x retries + 2 s ({bound:g} s)" if m == "engine" else "informational"
        verdict = _verdict(wall <= bound) if m == "engine" else "PASS"
        print(f"RESULT {name}: {wall:.2f} s; baseline all-alive {alive:.2f} s; ratio {wall / alive:.1f}; "
              f"goal {goal}: {verdict}")
    print(f"RESULT lab_city_discovery_wall: n/a (discovery service not wired to this benchmark); "
          f"baseline goal {GOAL_DISCOVERY_WALL_S:.0f} s; ratio n/a; goal <= {GOAL_DISCOVERY_WALL_S:.0f} s: "
          "FAIL (not measured)")
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    sys.exit(main())
