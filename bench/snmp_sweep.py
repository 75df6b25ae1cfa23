"""Benchmark: an SNMP discovery sweep with our poll engine against LibreNMS's method and pysnmp.

Agents: real net-snmp ``snmpd`` processes in network namespaces, each namespace a branch access
switch (see ``bench/netns_agents.py``). The comparison set has 52 interfaces per agent (48 veth
"ports" ``Gi1-0-1`` … with English/Arabic ifAlias values, two bridges, the uplink, ``lo``); two
more sets have 8 and 500 (``--if-sizes``), so that a figure per varbind is seen not to hang on one
table size. net-snmp is C and serves a walk for a few ms of CPU, so the client is what is measured.

**Walks.** Every method walks the same subtrees of every agent — system group ``1.3.6.1.2.1.1``,
ifTable ``1.3.6.1.2.1.2.2``, ifXTable ``1.3.6.1.2.1.31.1.1`` (LLDP's remote table too with
``--lldp``; net-snmp has none, so it adds one empty walk) — with SNMPv2c GETBULK and the same
max-repetitions (the engine's is an upper bound: it sizes answers to fit), timeout and retries
(pysnmp gets a 10 s timeout and 8 devices in flight, see below):

* **engine** — ``infra_mgr.snmp.engine.SnmpEngine``: every device in ``engine.session``,
  its subtrees walked with ``GufoWalker.walk``, all devices gathered under the engine's global
  bound (``--concurrency``);
* **gufo-snmp raw** (52-row set) — the same walks straight on ``gufo.snmp.aio.SnmpSession.getbulk``
  under an ``asyncio.Semaphore``: the library floor, which shows what the engine itself costs;
* **LibreNMS method** — one ``snmpbulkwalk`` process per subtree walked, with LibreNMS's flags
  (``-OQXUte``, plus ``-On`` since the IF-MIB files are not installed here), devices handed to a
  pool of ``--pool`` workers, each walking its device's subtrees one after the other as a
  LibreNMS poller worker does. Real LibreNMS also parses MIB files in every process and its output
  in PHP; neither is counted here, so this baseline is cheaper than the real thing;
* **pysnmp hlapi** (52-row set) — pysnmp 7 asyncio ``bulk_walk_cmd`` (``lexicographicMode=False``),
  one ``SnmpEngine``, 8 devices in flight and a 10 s timeout (it decodes 100-row answers so slowly
  on its event loop that with 64 in flight it gives up devices that did answer).

**Discovery.** What discovery itself reads: ``getters.probe_many`` with the discovery service's
options (``ProbeOptions(neighbors=True, ip_addresses=False, counters=False)``): one GET of the
system, LLDP-local and ifNumber scalars; the first column of entPhysicalTable, cdpCacheTable and
ifTable walked (lldpRemTable as a whole entry); the other ifTable columns and ifName/ifAlias by
GET for the rows ifDescr gave; ifHighSpeed by GET for the rows whose ifSpeed is saturated. Which
requests those are is not written down here but recorded: a recording sweep (``plan``) wraps the
engine walker's ``get``/``get_rows``/``walk`` and notes every call with its OIDs and how many
varbinds came back. Then, timed:

* **probe_many** — the discovery getters, parsed into facts; CPU per device;
* **net-snmp, same reads** — per device, one ``snmpget`` per GET of scalars, ``snmpget`` for the
  table cells (at most 128 OIDs per command, net-snmp's limit; the engine puts up to 128 per GET
  too), one ``snmpbulkwalk -Cr<max-repetitions>`` per walk (on an empty subtree it sends one
  GET more, which the engine does not; snmpbulkwalk has no option to skip it), devices handed
  to a pool of ``--pool`` workers. ``snmpbulkget`` is not used for the cells: snmpd answers a GETBULK with at
  most 100 varbinds (``maxGetbulkResponses``), so it takes more processes than ``snmpget``.

Both sides must read the same varbind count from every device as the recording did (exit 1
otherwise).

**How.** Each sweep runs in a fresh Python process, the methods taking turns round by round (the
machine may be shared: a busy minute then falls on all of them), and its CPU (``getrusage`` of
that process, plus its children for the net-snmp processes) is taken around the timed sweep
only, after imports and a one-device warm-up. Our figure is the *worst* of its rounds, the
baseline's the median of its rounds.

Then, with the engine only (walks, and probe_many beside them): a sweep of every agent
(``--agents 1000`` for the scale goal; the agents share 50 namespaces, 20 ``snmpd`` per
namespace, each on its own address) and a sweep of the comparison set with 10% of its agents
``SIGSTOP``ped (their sockets stay bound; requests are queued and never answered) at
``--dead-timeout`` / ``--dead-retries``. No sweep may lose a device but the frozen ones, or the
benchmark is broken (exit 1).

Figures (``RESULT`` lines; the script exits 0 even when a goal is missed):

1. ``client_cpu_per_1000_varbinds`` — engine walks vs LibreNMS (its snmpbulkwalk processes only,
   the smaller and so stricter baseline) on the 52-row agents; goal engine <= 1/3 of it;
   ``…_if8``, ``…_if500``: the same on the other table sizes, same goal;
2. ``client_cpu_per_1000_varbinds_pysnmp`` — informational ratio to pysnmp hlapi;
3. ``discovery_client_cpu_per_device`` — probe_many vs net-snmp reading the same varbinds (its
   processes only), CPU per device, 52-row agents; ``…_if8``, ``…_if500`` beside it; goal <= 1/3;
4. ``sweep_1000_agents_wall`` — 1,000 agents swept with the engine's walks, worst of
   ``--scale-rounds`` sweeps; goal <= 60 s (reported as not measured with fewer agents);
   ``…_probe_many`` beside it, informational;
5. ``sweep_10pct_dead`` — engine walks; goal <= timeout x retries + 2 s; ``…_probe_many`` beside
   it, informational.

Usage (root: it creates network namespaces; everything is removed at exit, also on error or
Ctrl-C)::

    .venv/bin/python bench/snmp_sweep.py [--agents 50] [--rounds 3] [--no-pysnmp]
    .venv/bin/python bench/snmp_sweep.py --smoke     # every figure's path at tiny sizes, ~40 s

A smoke run uses its own namespace prefix and addresses (``isbs``, 10.87/16), so it can run while a
full run holds its fleet, and removes what an interrupted smoke run left.
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
from provenance import record, require_root  # noqa: E402

SUBTREES = {"system": "1.3.6.1.2.1.1", "ifTable": "1.3.6.1.2.1.2.2", "ifXTable": "1.3.6.1.2.1.31.1.1"}
LLDP_REMOTE = "1.0.8802.1.1.2.1.4.1"
SNMPBULKWALK = "/usr/bin/snmpbulkwalk"
SNMPGET = "/usr/bin/snmpget"
LIBRENMS_FLAGS = "-OQXUte"  # LibreNMS NetSnmpQuery::DEFAULT_FLAGS
SNMPGET_MAX_OIDS = 128  # net-snmp's snmpget takes at most 128 OIDs per command

GOAL_CPU_FRACTION = 1 / 3
GOAL_SCALE_AGENTS = 1000
GOAL_SCALE_WALL_S = 60.0
MAIN_INTERFACES = 52  # 48 ports of the comparison set's agents + 2 bridges + mgmt0 + lo

METHOD_LABELS = {
    "engine": "engine (infra_mgr SnmpEngine + GufoWalker.walk)",
    "probe": "engine via getters.probe_many (discovery)",
    "gufo": "gufo-snmp raw (SnmpSession.getbulk)",
    "librenms": "LibreNMS method (snmpbulkwalk per subtree, pool)",
    "pysnmp": "pysnmp 7.1 hlapi (asyncio bulk_walk_cmd)",
    "netsnmp": "net-snmp, discovery's reads (snmpget/snmpbulkwalk)",
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
    from infra_mgr.snmp.engine import PollAbort, SnmpEngine
    from infra_mgr.snmp.target import SnmpTarget

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
            count += _count_lines(proc.stdout)
        return address, count, True, ""

    return _pooled(device, spec["pool"])


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



DISCOVERY_OPTIONS = {"neighbors": True, "ip_addresses": False, "counters": False}  # as discovery.discover


def _target(spec: dict[str, Any], address: str) -> Any:
    from infra_mgr.snmp.target import SnmpTarget

    return SnmpTarget(address=address, port=161, version="2c", community=spec["community"], timeout_s=spec["timeout"],
                      retries=spec["retries"], max_repetitions=spec["max_rep"])


def _probe_runner(spec: dict[str, Any]) -> Runner:
    """The discovery getters' own sweep: ``probe_many`` with the discovery service's options.
    Per device it reports the interfaces found; the varbinds are the engine's count."""
    from infra_mgr.network.snmp.getters import ProbeOptions, probe_many
    from infra_mgr.snmp.engine import SnmpEngine

    engine = SnmpEngine(max_concurrency=spec["concurrency"])
    options = ProbeOptions(**DISCOVERY_OPTIONS)

    async def sweep(addresses: list[str]) -> Outcome:
        before = engine.stats.varbinds
        results = await probe_many([_target(spec, a) for a in addresses], engine, options)
        problems = [f"{p.address} {p.operation} {p.kind}: {p.message}" for r in results for p in r.errors]
        return ({r.address: len(r.interfaces) for r in results if r.reachable},
                [r.address for r in results if not r.reachable], problems, engine.stats.varbinds - before)

    return lambda addresses: asyncio.run(sweep(addresses))


def plan(spec: dict[str, Any]) -> dict[str, Any]:
    """Record what discovery reads from every device: one untimed ``probe_many`` with the engine
    walker's ``get``, ``get_rows`` and ``walk`` wrapped, each call noted with its OIDs and the
    varbinds it returned. Calls made inside another recorded call (none today) are not noted
    twice."""
    from infra_mgr.network.snmp.getters import ProbeOptions, probe_many
    from infra_mgr.snmp.engine import GufoWalker, SnmpEngine

    ops: dict[str, list[dict[str, Any]]] = {a: [] for a in spec["addresses"]}
    depth: dict[str, int] = {}
    orig_get, orig_rows, orig_walk = GufoWalker.get, GufoWalker.get_rows, GufoWalker.walk

    def wrap(kind: str, orig: Callable[..., Any], note: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
        async def call(self: GufoWalker, *args: Any, **kwargs: Any) -> Any:
            depth[self.address] = depth.get(self.address, 0) + 1
            try:
                result = await orig(self, *args, **kwargs)
            finally:
                depth[self.address] -= 1
            if depth[self.address] == 0:
                ops[self.address].append({"op": kind, **note(*args), "n": len(result or ())})
            return result
        return call

    GufoWalker.get = wrap("get", orig_get, lambda oids, **_: {"oids": list(oids)})  # type: ignore[method-assign]
    GufoWalker.get_rows = wrap("cells", orig_rows,  # type: ignore[method-assign]
                               lambda bases, indexes, **_: {"bases": list(bases), "indexes": list(indexes)})
    GufoWalker.walk = wrap("walk", orig_walk, lambda base, **_: {"base": base})  # type: ignore[method-assign]
    engine = SnmpEngine(max_concurrency=spec["concurrency"])
    results = asyncio.run(probe_many([_target(spec, a) for a in spec["addresses"]], engine,
                                     ProbeOptions(**DISCOVERY_OPTIONS)))
    failed = [r.address for r in results if not r.reachable]
    problems = [f"{p.address} {p.operation} {p.kind}: {p.message}" for r in results for p in r.errors][:5]
    return {"ops": ops, "engine_varbinds": engine.stats.varbinds, "failed": failed, "problems": problems}


def _pooled(device: Callable[[str], tuple[str, int, bool, str]], workers: int) -> Runner:
    """A sweep that hands each address to ``device`` (one net-snmp process per request) in a pool of
    ``workers``, LibreNMS's way: varbinds per device that answered, and those that failed, with why."""

    def sweep(addresses: list[str]) -> Outcome:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(device, addresses))
        return ({a: n for a, n, ok, _ in results if ok}, [a for a, _, ok, _ in results if not ok],
                [f"{a}: {e}" for a, _, ok, e in results if not ok], None)

    return sweep


def _count_lines(stdout: str, wanted: set[str] | None = None) -> int:
    """Varbinds in net-snmp ``-On -OQ`` output: lines that start with a numeric OID and carry a
    value (wrapped Hex-STRING lines do not start with ``.``; exceptions are not values)."""
    n = 0
    for line in stdout.splitlines():
        if not line.startswith(".") or " = " not in line:
            continue
        oid, _, value = line.partition(" = ")
        if value.startswith(("No Such Object", "No Such Instance", "No more variables")):
            continue
        if wanted is None or oid[1:] in wanted:
            n += 1
    return n


def _netsnmp_runner(spec: dict[str, Any]) -> Runner:
    """net-snmp reading what the recording says discovery read, one process per request group."""
    plans: dict[str, list[dict[str, Any]]] = spec["plan"]

    def device(address: str) -> tuple[str, int, bool, str]:
        common = ["-v2c", "-c", spec["community"], LIBRENMS_FLAGS, "-On", "-t", f"{spec['timeout']:g}",
                  "-r", str(spec["retries"]), f"udp:{address}:161"]
        count = 0
        for op in plans[address]:
            if op["op"] == "walk":
                cmds = [[SNMPBULKWALK, f"-Cr{spec['max_rep']}", *common, op["base"]]]
            else:
                oids = op["oids"] if op["op"] == "get" else [f"{b}.{i}" for b in op["bases"] for i in op["indexes"]]
                cmds = [[SNMPGET, *common, *oids[k:k + SNMPGET_MAX_OIDS]]
                        for k in range(0, len(oids), SNMPGET_MAX_OIDS)]
            for cmd in cmds:
                proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
                if proc.returncode != 0:
                    return address, count, False, proc.stderr.strip()[:200]
                count += _count_lines(proc.stdout)
        return address, count, True, ""

    return _pooled(device, spec["pool"])


RUNNERS = {"engine": _engine_runner, "probe": _probe_runner, "gufo": _gufo_runner, "librenms": _librenms_runner,
           "pysnmp": _pysnmp_runner, "netsnmp": _netsnmp_runner}


def worker(spec_path: str) -> int:
    """Run one method as the spec says; print {"warmup": ..., "rounds": [...]} as one JSON line
    (the ``plan`` method prints its recording instead)."""
    spec = json.loads(Path(spec_path).read_text())
    if spec["method"] == "plan":
        print(json.dumps(plan(spec)))
        return 0
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
    def wall_s(self) -> float:
        return statistics.median(r.wall_s for r in self.rounds)

    @property
    def worst_wall_s(self) -> float:
        return max(r.wall_s for r in self.rounds)

    @staticmethod
    def _cpu(r: Sweep, part: str) -> float:
        return {"self": r.cpu_self_s, "children": r.cpu_children_s}.get(part, r.cpu_self_s + r.cpu_children_s)

    def per_1000(self, part: str = "total") -> list[float]:
        """CPU ms per 1,000 varbinds, one value per round."""
        return [self._cpu(r, part) * 1e6 / max(1, r.varbinds) for r in self.rounds]

    def per_device(self, part: str = "total") -> list[float]:
        """CPU ms per device swept, one value per round."""
        return [self._cpu(r, part) * 1e3 / self.devices for r in self.rounds]

    @property
    def agent_ms_per_device(self) -> float:
        return self.agent_cpu_s * 1000 / (len(self.rounds) * self.devices + self.warmups)


def run_worker(method: str, agents: Sequence[Agent], args: argparse.Namespace, *, rounds: int = 1,
               timeout: float, retries: int, warmup: bool = True, extra: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Run this file as ``--worker`` in a fresh interpreter; its JSON answer, or SystemExit if it broke."""
    oids = list(SUBTREES.values()) + ([LLDP_REMOTE] if args.lldp else [])
    spec = {"method": method, "addresses": [a.address for a in agents], "community": args.community, "oids": oids,
            "max_rep": args.max_repetitions, "timeout": timeout, "retries": retries,
            "concurrency": args.concurrency, "pool": args.pool, "rounds": rounds, "warmup": warmup, **(extra or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
        spec_path = f.name
    try:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", spec_path],
                              capture_output=True, text=True, cwd=ROOT)
    finally:
        os.unlink(spec_path)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise SystemExit(f"FAIL {method} worker exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    answer: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return answer


def run_method(method: str, fleet: AgentFleet, agents: Sequence[Agent], args: argparse.Namespace, *, rounds: int,
               timeout: float, retries: int, warmup: bool = True, extra: dict[str, Any] | None = None) -> MethodResult:
    """Time one method over ``agents`` in a fresh interpreter; raise SystemExit if it broke."""
    print(f"[sweep] {METHOD_LABELS[method]}: {rounds} x {len(agents)} agents of {agents[0].interfaces} interfaces "
          f"(timeout {timeout:g} s, retries {retries}) ...", flush=True)
    load1 = os.getloadavg()[0]
    agent0 = fleet.agent_cpu_s()
    data = run_worker(method, agents, args, rounds=rounds, timeout=timeout, retries=retries, warmup=warmup,
                      extra=extra)
    agent_cpu = fleet.agent_cpu_s() - agent0
    return MethodResult(method, len(agents), [Sweep(**r) for r in data["rounds"]], agent_cpu, load1, int(warmup))


def check_complete(r: MethodResult, expect_failed: frozenset[str] | set[str] = frozenset()) -> None:
    """Every device answered (but the frozen ones), or the benchmark is broken."""
    for sweep in r.rounds:
        if set(sweep.failed) != set(expect_failed):
            unexpected = sorted(set(sweep.failed) ^ set(expect_failed))
            raise SystemExit(f"FAIL {r.method}: devices failed {sorted(sweep.failed)[:5]}, expected "
                             f"{sorted(expect_failed)[:5]} (differ: {unexpected[:5]}); problems: {sweep.problems[:3]}")


def check_same(results: Sequence[MethodResult], want: dict[str, int] | None = None, what: str = "") -> None:
    """Every method must have read the same number of varbinds from every device in every round
    (as the first method, or as ``want`` says), or the comparison means nothing: then the
    benchmark is broken and says where."""
    for r in results:
        check_complete(r)
    ref_name = what or results[0].method
    want = want if want is not None else results[0].rounds[-1].per_device
    for r in results:
        for sweep in r.rounds:
            got = sweep.per_device
            diff = {a: (want.get(a), got.get(a)) for a in set(want) | set(got) if want.get(a) != got.get(a)}
            if diff:
                sample = dict(list(diff.items())[:3])
                raise SystemExit(f"FAIL {r.method} read other varbind counts than {ref_name} on {len(diff)} devices "
                                 f"({ref_name}, {r.method}): {sample}")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    """Start the agents, measure, print; 0 even when a goal is missed (1 when the bench broke,
    2 when not root)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--agents", type=int, default=50, help="snmpd agents to start (default 50; 1000: scale goal)")
    ap.add_argument("--namespaces", type=int, default=None, help="network namespaces (default min(agents, 50))")
    ap.add_argument("--compare-agents", type=int, default=50,
                    help="agents swept by every method for the CPU comparison (default 50)")
    ap.add_argument("--if-sizes", default="8,500",
                    help="ifTable sizes of the extra agent sets, comma-separated, each >= 6 and even (default 8,500)")
    ap.add_argument("--size-agents", type=int, default=10, help="agents in each extra set (default 10)")
    ap.add_argument("--rounds", type=int, default=3, help="timed sweeps per method (default 3)")
    ap.add_argument("--pysnmp-rounds", type=int, default=1, help="timed sweeps for pysnmp, the slow one (default 1)")
    ap.add_argument("--no-pysnmp", action="store_true", help="skip pysnmp hlapi")
    ap.add_argument("--concurrency", type=int, default=64, help="devices in flight, engine/gufo/pysnmp (default 64)")
    ap.add_argument("--pool", type=int, default=4, help="net-snmp methods: worker pool of processes (default 4)")
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
    ap.add_argument("--smoke", action="store_true",
                    help="every figure's path at tiny sizes (3 agents, 1 round, 1 per extra set): measures nothing")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    try:
        sizes = [int(s) for s in args.if_sizes.split(",") if s.strip()]
    except ValueError:
        ap.error("--if-sizes: comma-separated integers")
    if any(s < 6 or s % 2 or s == MAIN_INTERFACES for s in sizes):
        ap.error(f"--if-sizes: each >= 6, even and not {MAIN_INTERFACES} (the comparison set's)")
    if args.smoke:
        args.agents, args.compare_agents, args.size_agents = 3, 3, 1
        args.rounds = args.pysnmp_rounds = args.scale_rounds = 1
    if args.agents < 1 or args.compare_agents < 1 or args.rounds < 1 or args.scale_rounds < 1 or args.size_agents < 1:
        ap.error("--agents, --compare-agents, --size-agents, --rounds and --scale-rounds must be >= 1")
    if not 0 < args.dead_fraction < 1:
        ap.error("--dead-fraction must be between 0 and 1")
    code = require_root("snmp_sweep")
    if code is not None:
        return code

    t_start = time.perf_counter()
    # SIGTERM, like Ctrl-C, unwinds through the ``with`` below: agents and namespaces are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # A smoke run has its own names and addresses: it may run beside a full run's fleet, and it
    # removes what an interrupted smoke run left (the fleet does that under its lock).
    naming = {"prefix": "isbs", "net": 87} if args.smoke else {}
    with record("snmp_sweep", smoke=args.smoke, argv=argv):
        try:
            with AgentFleet(args.agents, community=args.community, namespaces=args.namespaces,
                            groups=[(s - 4, args.size_agents) for s in sizes], **naming) as fleet:
                agents = fleet.start()
                report(fleet, agents, args, t_start)
        except SystemExit as exc:
            if isinstance(exc.code, str):  # a broken run says why in its results file too
                print(exc.code)
                return 1
            raise
        print(f"total runtime: {time.perf_counter() - t_start:.1f} s (agents set up in {fleet.setup_s:.1f} s, "
              "torn down)")
    return 0


HEAD = (f"{'method':<54} {'rounds':>6} {'wall':>8} {'dev/s':>8} {'CPU median':>11} {'worst':>8} {'ratio':>7} "
        f"{'agent ms/dev':>9} {'load1':>5}")


def _row(label: str, r: MethodResult, ours: float | None, values: list[float], wall: float | None = None,
         note: str = "") -> str:
    """One line of a table: ``values`` are the per-round figures (CPU per 1,000 varbinds or per device)."""
    wall = r.wall_s if wall is None else wall
    med = statistics.median(values)
    ratio = f"{med / ours:>6.1f}x" if ours else f"{'':>7}"
    return (f"{label:<54} {len(r.rounds):>6} {wall:>7.2f}s {r.devices / wall:>8.1f} {med:>11.3f} {max(values):>8.3f} "
            f"{ratio} {r.agent_ms_per_device:>9.1f} {r.load1:>5.1f}{note}")


def _cpu_result(name: str, ours: list[float], base: list[float], unit: str, baseline: str) -> str:
    """A RESULT line for a CPU goal: our worst round against the baseline's median round."""
    worst, med = max(ours), statistics.median(base)
    goal = med * GOAL_CPU_FRACTION
    return (f"RESULT {name}: {worst:.3f} {unit}; baseline {baseline} {med:.3f} {unit}; ratio {med / worst:.1f}x less; "
            f"goal <= 1/3 of baseline ({goal:.3f} {unit}): {_verdict(worst <= goal)}")


def _describe(op: dict[str, Any]) -> str:
    """One recorded discovery read, as the table shows it."""
    if op["op"] == "get":
        what = f"GET {' '.join(op['oids'])}"
    elif op["op"] == "walk":
        what = f"walk {op['base']}"
    else:
        what = f"GET of {len(op['indexes'])} rows of {' '.join(op['bases'])}"
    return f"{what} -> {op['n']} varbinds"


def _suffix(size: int) -> str:
    return "" if size == MAIN_INTERFACES else f"_if{size}"


def report(fleet: AgentFleet, agents: list[Agent], args: argparse.Namespace, t_start: float) -> None:
    """Run every measurement against the running fleet and print the tables and RESULT lines."""
    main_agents = [a for a in agents if a.interfaces == MAIN_INTERFACES]
    compare = main_agents[:min(args.compare_agents, len(main_agents))]
    sets: dict[int, list[Agent]] = {MAIN_INTERFACES: compare}
    for a in agents:
        if a.interfaces != MAIN_INTERFACES:
            sets.setdefault(a.interfaces, []).append(a)
    live = {"timeout": args.timeout, "retries": args.retries}

    # What discovery reads from each agent, recorded once (untimed) per set.
    plans: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for size, members in sets.items():
        print(f"[sweep] recording what discovery reads from {len(members)} agents of {size} interfaces ...",
              flush=True)
        rec = run_worker("plan", members, args, **live)
        if rec["failed"]:
            raise SystemExit(f"FAIL recording: devices unreachable {rec['failed'][:5]}: {rec['problems'][:3]}")
        if rec["problems"]:
            print(f"[sweep]   problems the agents caused (every round will have them too): {rec['problems'][:3]}")
        recorded = sum(op["n"] for ops in rec["ops"].values() for op in ops)
        if recorded != rec["engine_varbinds"]:
            raise SystemExit(f"FAIL recording: the calls returned {recorded} varbinds, the engine counted "
                             f"{rec['engine_varbinds']}: a read outside get/get_rows/walk")
        plans[size] = rec["ops"]

    walk_methods = {MAIN_INTERFACES: ["engine", "gufo", "librenms"]}
    results: dict[int, dict[str, MethodResult]] = {size: {} for size in sets}
    # Round-robin, one fresh worker per method and round: this machine is shared, and a busy
    # minute should fall on every method alike rather than on whichever ran then.
    for _ in range(args.rounds):
        for size, members in sets.items():
            for m in (*walk_methods.get(size, ["engine", "librenms"]), "probe", "netsnmp"):
                extra = {"plan": plans[size]} if m == "netsnmp" else None
                r = run_method(m, fleet, members, args, rounds=1, extra=extra, **live)
                results[size][m] = results[size][m].merge(r) if m in results[size] else r
    if not args.no_pysnmp:
        results[MAIN_INTERFACES]["pysnmp"] = run_method("pysnmp", fleet, compare, args, rounds=args.pysnmp_rounds,
                                                        **live)
    for size, res in results.items():
        check_same([r for m, r in res.items() if m not in ("probe", "netsnmp")])
        want = {a: sum(op["n"] for op in ops) for a, ops in plans[size].items()}
        check_same([res["netsnmp"]], want, "the recording")
        check_complete(res["probe"])
        for sweep in res["probe"].rounds:
            if sweep.varbinds != sum(want.values()):
                raise SystemExit(f"FAIL probe_many read {sweep.varbinds} varbinds, the recording "
                                 f"{sum(want.values())} ({size} interfaces)")

    scale: dict[str, MethodResult] = {}
    scale_agents = main_agents[:GOAL_SCALE_AGENTS]
    if len(scale_agents) > len(compare) or args.smoke:
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
    want = results[MAIN_INTERFACES]["engine"].rounds[-1].per_device
    short = [a for a, n in dead_runs["engine"].rounds[0].per_device.items() if n != want.get(a)]
    if short:
        raise SystemExit(f"FAIL dead-agent sweep: live agents read incompletely: {short[:5]}")

    # ------------------------------------------------------------------ tables
    print()
    print(f"agents: {len(agents)} snmpd (net-snmp 5.9) in {len(fleet.groups) + fleet.n_namespaces} network namespaces: "
          f"{len(main_agents)} with {MAIN_INTERFACES} interfaces ({fleet.per_namespace} per namespace)"
          + "".join(f", {n} with {p + 4}" for p, n in fleet.groups) + f"; set up in {fleet.setup_s:.1f} s")
    print(f"GETBULK max-repetitions {args.max_repetitions}; concurrency {args.concurrency}; net-snmp pool {args.pool}; "
          f"timeout {args.timeout:g} s, retries {args.retries}")
    print("CPU: client CPU ms (per 1,000 varbinds for walks, per device for discovery), median and worst round; "
          "ratio: median to our median")
    for size, res in results.items():
        engine = res["engine"]
        vb = statistics.median(engine.rounds[-1].per_device.values())
        print()
        print(f"walks, {len(sets[size])} agents of {size} interfaces: {', '.join(SUBTREES)}"
              f"{' + lldpRemTable' if args.lldp else ''} = {vb:.0f} varbinds per device; CPU per 1,000 varbinds")
        print(HEAD)
        print("-" * len(HEAD))
        ours = statistics.median(engine.per_1000())
        for m in (*walk_methods.get(size, ["engine", "librenms"]), *(["pysnmp"] if "pysnmp" in res else [])):
            r = res[m]
            print(_row(METHOD_LABELS[m], r, ours, r.per_1000()))
            if m == "librenms":
                print(_row("  of which snmpbulkwalk processes", r, ours, r.per_1000("children")))
                print(_row("  of which the Python pool driving them", r, None, r.per_1000("self")))
        want = {a: sum(op["n"] for op in ops) for a, ops in plans[size].items()}
        calls = [op for ops in plans[size].values() for op in ops]
        kinds = {k: sum(1 for op in calls if op["op"] == k) / len(sets[size]) for k in ("get", "cells", "walk")}
        print()
        print(f"discovery, {len(sets[size])} agents of {size} interfaces: {statistics.median(want.values()):.0f} "
              f"varbinds per device ({kinds['get']:.0f} GET of scalars, {kinds['cells']:.0f} reads of table cells "
              "by GET, "
              f"{kinds['walk']:.0f} walks); CPU per device")
        first = sets[size][0].address
        for op in plans[size][first]:
            print(f"  {_describe(op)}")
        print(HEAD)
        print("-" * len(HEAD))
        probe, net = res["probe"], res["netsnmp"]
        ours = statistics.median(probe.per_device())
        print(_row(METHOD_LABELS["probe"], probe, ours, probe.per_device()))
        print(_row(METHOD_LABELS["netsnmp"], net, ours, net.per_device()))
        print(_row("  of which snmpget/snmpbulkwalk processes", net, ours, net.per_device("children")))
        print(_row("  of which the Python pool driving them", net, None, net.per_device("self")))
    print()
    print(f"engine only, {len(scale_agents)} and {len(compare)} agents of {MAIN_INTERFACES} interfaces; wall: worst "
          "round; CPU per 1,000 varbinds")
    print(HEAD)
    print("-" * len(HEAD))
    ours = statistics.median(results[MAIN_INTERFACES]["engine"].per_1000())
    for m, r in scale.items():
        walls = ", ".join(f"{x.wall_s:.1f}" for x in r.rounds)
        print(_row(f"{'engine walks' if m == 'engine' else 'probe_many'}, all {len(scale_agents)} agents", r, ours,
                   r.per_1000(), wall=r.worst_wall_s, note=f"  all rounds: {walls} s"))
    for m, r in dead_runs.items():
        print(_row(f"{'engine walks' if m == 'engine' else 'probe_many'}, {len(dead)} of {len(compare)} SIGSTOPped",
                   r, ours, r.per_1000(), note=f"  timeout {args.dead_timeout:g} s, retries {args.dead_retries}"))
    print("agent ms/dev: CPU of all snmpd per device swept; load1: the machine's 1-min load average at the start")
    print(f"elapsed so far: {time.perf_counter() - t_start:.1f} s")
    print()

    # ------------------------------------------------------------------ RESULT lines
    for size, res in results.items():
        print(_cpu_result(f"client_cpu_per_1000_varbinds{_suffix(size)}", res["engine"].per_1000(),
                          res["librenms"].per_1000("children"), "ms", "librenms-snmpbulkwalk"))
    walks = results[MAIN_INTERFACES]
    if "pysnmp" in walks:
        worst, py = max(walks["engine"].per_1000()), statistics.median(walks["pysnmp"].per_1000())
        print(f"RESULT client_cpu_per_1000_varbinds_pysnmp: {worst:.3f} ms; baseline pysnmp-hlapi {py:.3f} ms; "
              f"ratio {py / worst:.1f}x less; goal informational: PASS")
    else:
        print("RESULT client_cpu_per_1000_varbinds_pysnmp: n/a (--no-pysnmp); baseline pysnmp-hlapi n/a; ratio n/a; "
              "goal informational: PASS")
    for size, res in results.items():
        print(_cpu_result(f"discovery_client_cpu_per_device{_suffix(size)}", res["probe"].per_device(),
                          res["netsnmp"].per_device("children"), "ms", "net-snmp-same-reads"))
    measured = len(scale_agents) >= GOAL_SCALE_AGENTS or args.smoke
    for m, name in (("engine", "sweep_1000_agents_wall"), ("probe", "sweep_1000_agents_wall_probe_many")):
        goal = f"<= {GOAL_SCALE_WALL_S:.0f} s" if m == "engine" else "informational"
        if measured:
            wall = scale[m].worst_wall_s
            verdict = _verdict(wall <= GOAL_SCALE_WALL_S) if m == "engine" else "PASS"
            what = f" ({len(scale_agents)} agents: smoke)" if len(scale_agents) < GOAL_SCALE_AGENTS else ""
            print(f"RESULT {name}: {wall:.1f} s{what}; baseline none (no side-by-side baseline) n/a; "
                  f"ratio n/a; goal {goal}: {verdict}")
        else:
            verdict = "FAIL (not measured)" if m == "engine" else "PASS"
            print(f"RESULT {name}: n/a (this run had {len(main_agents)} agents; run with --agents 1000); "
                  f"baseline none (no side-by-side baseline) n/a; ratio n/a; goal {goal}: {verdict}")
    bound = args.dead_timeout * args.dead_retries + 2.0
    for m, name in (("engine", "sweep_10pct_dead"), ("probe", "sweep_10pct_dead_probe_many")):
        wall = dead_runs[m].rounds[0].wall_s
        alive = results[MAIN_INTERFACES][m].wall_s
        goal = f"<= timeout x retries + 2 s ({bound:g} s)" if m == "engine" else "informational"
        verdict = _verdict(wall <= bound) if m == "engine" else "PASS"
        print(f"RESULT {name}: {wall:.2f} s; baseline all-alive {alive:.2f} s; ratio {wall / alive:.1f}; "
              f"goal {goal}: {verdict}")
    print(f"date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")


if __name__ == "__main__":
    sys.exit(main())
