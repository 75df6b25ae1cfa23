"""What discovery asks of each agent, recorded, and the same requests replayed by net-snmp processes.

A like-for-like baseline must read exactly what discovery reads: the same OIDs, by the same kind
of request, with the same max-repetitions. Discovery decides that at run time (ifNumber sizes the
ifTable walk, further columns are fetched by GET for the rows the first column gave, ifHighSpeed
only where ifSpeed saturates, LLDP local ports only where a neighbour is), so rather than guess
it, :class:`Trace` records every request the engine sends — each GET (``get_many``: the system
scalars, and the per-row cells of further columns) and each walk (base OID, GETBULK
max-repetitions) — per device, with the varbinds it got.

:func:`replay` then reads the same per device the way LibreNMS does: one net-snmp process per
request (``snmpget`` with the same OIDs in one PDU, ``snmpbulkwalk -Cr<same>`` of the same
column), a pool of workers each taking a device and running its requests in turn. It counts the
varbinds the processes printed, so a run can check that both sides read the same data.
"""

from __future__ import annotations

import functools
import resource
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from infra_mgr.snmp import engine as snmp_engine


@dataclass(frozen=True)
class Request:
    """One request as discovery sent it: ``get`` of ``oids``, or ``walk`` of ``oids[0]`` with
    GETBULK ``repetitions`` (None: GETNEXT); ``varbinds`` it received."""

    kind: str
    oids: tuple[str, ...]
    repetitions: int | None
    varbinds: int
    retried: bool = False  # a walk whose answer overflowed gufo's buffer and was asked again smaller


@dataclass
class Trace:
    """Requests per (address, port, community); only SNMPv2c sessions are recorded (the baseline
    speaks v2c; an SNMPv3 device is left out of both counts)."""

    requests: dict[tuple[str, int, str], list[Request]] = field(default_factory=lambda: defaultdict(list))

    def varbinds(self) -> int:
        return sum(r.varbinds for reqs in self.requests.values() for r in reqs)

    def count(self) -> int:
        return sum(len(reqs) for reqs in self.requests.values())

    def answering(self) -> dict[tuple[str, int, str], list[Request]]:
        """Devices that answered something (a device that timed out costs the baseline nothing),
        without the walks discovery had to ask again smaller (net-snmp takes the bigger answer,
        so the baseline is spared that request)."""
        return {k: [r for r in v if not r.retried] for k, v in self.requests.items() if any(r.varbinds for r in v)}


@contextmanager
def tracing() -> Iterator[Trace]:
    """Record every GET and walk the engine's walkers send while the block runs."""
    trace = Trace()
    walker = snmp_engine.GufoWalker
    original_open, original_walk = walker._open, walker._walk_once

    def key(self: Any) -> tuple[str, int, str] | None:
        t = self.target
        return (t.address, t.port, t.community or "") if t.version == "2c" else None

    async def open_(self: Any) -> Any:
        """Every session the walker makes (at open, or again after a failure) has its GETs traced."""
        session = await original_open(self)
        k = key(self)
        if k is None or getattr(session.get_many, "traced", False):
            return session
        get_many = session.get_many

        async def traced_get_many(oids: Sequence[str]) -> dict[str, Any]:
            values = await get_many(oids)
            trace.requests[k].append(Request("get", tuple(oids), None, len(values)))
            return values

        traced_get_many.traced = True  # type: ignore[attr-defined]
        session.get_many = traced_get_many
        return session

    async def walk_once(self: Any, base: str, bulk: bool, limit: int, operation: str, *, quiet: bool = False,
                        repetitions: int = 1) -> tuple[list[Any], tuple[str, str] | None]:
        rows, failure = await original_walk(self, base, bulk, limit, operation, quiet=quiet, repetitions=repetitions)
        k = key(self)
        if k is not None:
            trace.requests[k].append(Request("walk", (base,), repetitions if bulk else None, len(rows),
                                             bool(failure and failure[0] == "truncated" and repetitions > 1)))
        return rows, failure

    walker._open = functools.wraps(original_open)(open_)  # type: ignore[method-assign]
    walker._walk_once = functools.wraps(original_walk)(walk_once)  # type: ignore[method-assign]
    try:
        yield trace
    finally:
        walker._open = original_open  # type: ignore[method-assign]
        walker._walk_once = original_walk  # type: ignore[method-assign]


def _argv(request: Request, address: str, port: int, community: str, timeout_s: float, retries: int) -> list[str]:
    common = ["-v2c", "-c", community, "-On", "-t", f"{timeout_s:g}", "-r", str(retries), f"{address}:{port}"]
    if request.kind == "get":
        return ["snmpget", *common, *request.oids]
    if request.repetitions is None:
        return ["snmpwalk", "-CI", *common, request.oids[0]]
    # snmpbulkwalk sends no extra GET of the base OID when the walk is empty (snmpwalk needs -CI)
    return ["snmpbulkwalk", f"-Cr{request.repetitions}", *common, request.oids[0]]


def _varbinds(stdout: str) -> int:
    """Varbinds a net-snmp tool printed with a value (noSuchObject/Instance are not values)."""
    return sum(1 for line in stdout.splitlines()
               if line.startswith(".") and "No Such " not in line and "No more variables" not in line)


@dataclass
class Replay:
    wall_s: float
    processes: int
    varbinds: int
    client_cpu_s: float  # the net-snmp processes and the Python pool that drove them
    per_device: dict[tuple[str, int, str], int]


def replay(requests: dict[tuple[str, int, str], list[Request]], *, workers: int = 4, timeout_s: float = 2.0,
           retries: int = 1) -> Replay:
    """Send the recorded requests again, one net-snmp process each, ``workers`` devices at a time."""
    def device(item: tuple[tuple[str, int, str], list[Request]]) -> tuple[tuple[str, int, str], int]:
        (address, port, community), reqs = item
        got = 0
        for request in reqs:
            out = subprocess.run(_argv(request, address, port, community, timeout_s, retries),
                                 capture_output=True, text=True, check=False)
            got += _varbinds(out.stdout)
        return (address, port, community), got

    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    self0 = time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        per_device = dict(pool.map(device, requests.items()))
    wall = time.perf_counter() - start
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ch1.ru_utime - ch0.ru_utime) + (ch1.ru_stime - ch0.ru_stime) + (time.process_time() - self0)
    return Replay(wall, sum(len(r) for r in requests.values()), sum(per_device.values()), cpu, per_device)


def mismatches(requests: dict[tuple[str, int, str], list[Request]], got: dict[tuple[str, int, str], int]
               ) -> list[str]:
    """Devices where the baseline read another number of varbinds than discovery did."""
    out = []
    for k, reqs in requests.items():
        ours = sum(r.varbinds for r in reqs)
        if got.get(k) != ours:
            out.append(f"{k[0]}: discovery {ours}, baseline {got.get(k)}")
    return out
