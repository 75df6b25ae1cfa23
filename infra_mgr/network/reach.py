"""Reachability probes of branch devices: ICMP echo and single SNMP GETs, each as loss and round trip.

Why two methods: a branch router that stops answering SNMP but still answers ping is a different
problem (an agent or ACL fault: ``no_snmp``) from one that answers neither (the link or the box:
``unreachable``), and a lossy WAN link shows as a share of unanswered packets long before it is
down. The SNMP probe sends single GETs of sysUpTime *without retries* on purpose: a retry would
hide exactly the loss we want to measure.

ICMP uses icmplib: unprivileged datagram sockets where ``net.ipv4.ping_group_range`` admits one
of our groups, raw sockets when running as root. Where neither works (an unprivileged service on
a host that forbids ICMP sockets) :func:`icmp_available` says so and the caller relies on SNMP
alone. Nothing here raises for anything the network does.

Round trips: the echoes are sent and received in a worker thread with an event loop of its own,
because the poller's loop is busy with hundreds of SNMP exchanges and an echo timed there would
include every callback that ran before its reply was read (on loopback that showed as ~200 ms).
The thread's loop does nothing but ICMP, so an echo's round trip is the path's. The SNMP probe's
round trip is measured on the caller's loop and says something else: the time from sending the
GET to that loop handing over the answer, congestion included. The poller therefore stores the
ICMP round trip where ICMP answered and the SNMP one only where it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import replace

from infra_mgr.network.linkfacts import ReachResult
from infra_mgr.snmp.engine import PollAbort, SnmpEngine
from infra_mgr.snmp.target import SnmpTarget

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
PING_GROUP_RANGE = "/proc/sys/net/ipv4/ping_group_range"
# ICMP sockets open at once (each probe holds one for its echoes)
ICMP_CONCURRENCY = 256


def _group_may_ping(path: str = PING_GROUP_RANGE) -> bool:
    """Whether the kernel lets one of our groups open unprivileged ICMP (datagram) sockets."""
    try:
        with open(path, encoding="ascii") as f:
            low, high = (int(v) for v in f.read().split()[:2])
    except (OSError, ValueError):
        return False
    return any(low <= gid <= high for gid in {os.getgid(), os.getegid(), *os.getgroups()})


def _can_open(kind: int) -> bool:
    try:
        socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
    except OSError:
        return False
    return True


def icmp_mode() -> bool | None:
    """How ICMP can be sent here: ``False`` unprivileged (preferred: no root power needed),
    ``True`` raw sockets (root), ``None`` not at all."""
    if _group_may_ping() and _can_open(socket.SOCK_DGRAM):
        return False
    if os.geteuid() == 0 and _can_open(socket.SOCK_RAW):
        return True
    return None


def icmp_available() -> bool:
    """Whether ICMP echo can be sent from this process (else probe with SNMP only)."""
    return icmp_mode() is not None


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


async def probe_icmp(addresses: Sequence[str], *, count: int = 3, interval_s: float = 0.2,
                     timeout_s: float = 1.0) -> dict[str, ReachResult]:
    """``count`` echoes to each address, all addresses at once: loss and mean round trip.

    An echo that could not even be sent (no route) counts as lost. Addresses that are not IP
    addresses, and every address when ICMP is unusable here, are left out of the result: not
    probed is unknown, not lost. The echoes run in a worker thread on an event loop of their own
    (see the module's notes on round trips), at most ``ICMP_CONCURRENCY`` addresses at a time;
    the caller's loop only waits for the thread.
    """
    privileged = icmp_mode()
    wanted = [a for a in dict.fromkeys(addresses) if _is_ip(a)]
    if privileged is None or not wanted or count < 1:
        return {}
    return await asyncio.to_thread(_ping_in_thread, wanted, count, interval_s, timeout_s, privileged)


def _ping_in_thread(wanted: Sequence[str], count: int, interval_s: float, timeout_s: float,
                    privileged: bool) -> dict[str, ReachResult]:
    """Run the echoes on a new event loop in this (worker) thread. A loop that cannot even be made
    (no descriptor left for its wake-up pipe) means no echo could be sent: every address lost,
    as for an echo that could not leave."""
    echoes = _ping_all(wanted, count, interval_s, timeout_s, privileged)
    try:
        return asyncio.run(echoes)
    except OSError:
        echoes.close()  # never started: no "never awaited" warning
        return {a: ReachResult(a, "icmp", count, 0, None) for a in wanted}


async def _ping_all(wanted: Sequence[str], count: int, interval_s: float, timeout_s: float,
                    privileged: bool) -> dict[str, ReachResult]:
    """The echoes of :func:`probe_icmp`, on the worker thread's own loop: icmplib's ``async_ping``
    per address under one bound, as its ``async_multiping`` does, but one address's error never
    voids the others."""
    from icmplib import async_ping
    from icmplib.exceptions import ICMPLibError

    gate = asyncio.Semaphore(ICMP_CONCURRENCY)

    async def one(address: str) -> ReachResult:
        async with gate:
            try:
                host = await async_ping(address, count=count, interval=interval_s, timeout=timeout_s,
                                        privileged=privileged)
            except (ICMPLibError, OSError):
                # The echoes could not be sent (no route, unreachable network, a socket error for
                # this address): lost, as ping itself reports them; the address is an IP address
                # and ICMP works here, so this is a finding about the path, not "not probed".
                return ReachResult(address, "icmp", count, 0, None)
        received = int(host.packets_received)
        return ReachResult(address, "icmp", count, received, round(float(host.avg_rtt), 3) if received else None)

    results = await asyncio.gather(*(one(a) for a in wanted))
    return {r.address: r for r in results}


async def _snmp_once(engine: SnmpEngine, target: SnmpTarget) -> float | None:
    """One GET of sysUpTime in a session of its own (a timeout gives the session up): the time in
    ms from sending the GET to the caller's event loop handing over the decoded answer, or
    ``None`` when unanswered (silence, refusal, authentication failure). On a busy loop that is
    more than the path's round trip (the wait for the loop is included): it shows when a device
    answers, and stands in for the round trip only where no ICMP echo was answered."""
    async with engine.session(target) as walker:
        try:
            if target.version == "3":
                await walker.open()  # engine discovery is not the probe's round trip
            started = time.monotonic()
            values = await walker.get([SYS_UPTIME], operation="reach")
            elapsed = (time.monotonic() - started) * 1000.0
        except PollAbort:
            return None
        except Exception:  # noqa: BLE001  # a probe never raises: unanswered is the finding
            return None
        if SYS_UPTIME not in values or any(p.kind == "auth" for p in walker.problems):
            return None
        return elapsed


async def probe_snmp(engine: SnmpEngine, targets: Sequence[SnmpTarget], *, count: int = 3, timeout_s: float = 1.0,
                     interval_s: float = 0.2) -> dict[str, ReachResult]:
    """``count`` single GETs of sysUpTime per target, no retries, targets probed concurrently:
    loss is the unanswered share, rtt the mean of the answered ones.

    Like ping's echoes, the GETs of one target overlap: the k-th leaves ``k × interval_s`` after
    the first whether or not an earlier one was answered, so a silent device costs one timeout,
    not ``count`` of them, and the cycle stays short. Each probe number uses an engine of its own
    (``engine`` gives only the bounds): one engine holds one request per device at a time, and a
    probe must not wait behind a poll of the same device either."""
    engines = [SnmpEngine(max_concurrency=engine.max_concurrency, device_deadline_s=timeout_s * 2 + 1)
               for _ in range(count)]
    for own in engines:
        own.stats = engine.stats  # the requests are counted where the caller looks

    async def probe(k: int, single: SnmpTarget) -> float | None:
        if k:
            await asyncio.sleep(k * interval_s)
        with contextlib.suppress(ValueError):  # a target no agent could answer: lost
            return await _snmp_once(engines[k], single)
        return None

    async def one(target: SnmpTarget) -> ReachResult:
        single = replace(target, retries=0, timeout_s=timeout_s)
        got = await asyncio.gather(*(probe(k, single) for k in range(count)))
        rtts = [r for r in got if r is not None]
        return ReachResult(target.address, "snmp", count, len(rtts), round(sum(rtts) / len(rtts), 3) if rtts else None)

    results = await asyncio.gather(*(one(t) for t in targets))
    return {r.address: r for r in results}
