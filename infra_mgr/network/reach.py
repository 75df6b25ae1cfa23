"""Reachability probes of branch devices: ICMP echo and single SNMP GETs, each as loss and round trip.

Why two methods: a branch router that stops answering SNMP but still answers ping is a different
problem (an agent or ACL fault: ``no_snmp``) from one that answers neither (the link or the box:
``unreachable``), and a lossy WAN link shows as a share of unanswered packets long before it is
down. The SNMP probe sends single GETs of sysUpTime *without retries* on purpose: a retry would
hide exactly the loss we want to measure.

ICMP uses icmplib: unprivileged datagram sockets where ``net.ipv4.ping_group_range`` admits one
of our groups, raw sockets when running as root (then one raw socket carries every IPv4 echo of a
probe: see :func:`_ping_all`). Where neither works (an unprivileged service on
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
import struct
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
    """The echoes of :func:`probe_icmp`, on the worker thread's own loop. With raw sockets (root)
    the IPv4 addresses share one socket (:func:`_ping_raw_v4`); otherwise icmplib's ``async_ping``
    per address under one bound, as its ``async_multiping`` does, but one address's error never
    voids the others.

    Why one raw socket: every raw ICMP socket receives a copy of every ICMP packet the host gets,
    so a socket per address makes each of N sockets read and discard the echoes of all the others
    (N² packets parsed in Python): past about 128 addresses the replies then wait longer than the
    timeout and show as loss on every device. Datagram (unprivileged) sockets are matched to their
    echoes by the kernel and need no such care."""
    from icmplib import async_ping
    from icmplib.exceptions import ICMPLibError

    out: dict[str, ReachResult] = {}
    if privileged:
        v4 = [a for a in wanted if ipaddress.ip_address(a).version == 4]
        out.update(await _ping_raw_v4(v4, count, interval_s, timeout_s))
        wanted = [a for a in wanted if a not in out]
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
    return {**out, **{r.address: r for r in results}}


ECHO_REQUEST, ECHO_REPLY = 8, 0
ECHO_PAYLOAD = bytes(range(56))  # ping's default size
RAW_RCVBUF = 4 << 20  # room for every echo and its reply while the loop is busy sending
SEND_BATCH = 16  # echoes sent before the reader gets its turn


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of an ICMP message."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo(ident: int, sequence: int) -> bytes:
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, sequence)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, _checksum(header + ECHO_PAYLOAD), ident, sequence) + ECHO_PAYLOAD


async def _ping_raw_v4(wanted: Sequence[str], count: int, interval_s: float,
                       timeout_s: float) -> dict[str, ReachResult]:
    """``count`` echoes to each IPv4 address through one raw socket: the k-th round leaves
    ``k × interval_s`` after the first, every reply is matched to its echo by source address,
    identifier and sequence, and an echo counts when answered within ``timeout_s`` of leaving.
    An echo that cannot be sent (no route) is lost; a socket that cannot be opened loses them all."""
    from icmplib.utils import unique_identifier

    if not wanted:
        return {}
    loop = asyncio.get_running_loop()
    ident = {a: unique_identifier() for a in wanted}
    rtts: dict[str, list[float]] = {a: [] for a in wanted}
    pending: dict[tuple[str, int, int], float] = {}  # (address, id, sequence) -> when it left
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except OSError:
        return {a: ReachResult(a, "icmp", count, 0, None) for a in wanted}
    sent_all = asyncio.Event()
    last_sent = time.monotonic()

    async def send() -> None:
        nonlocal last_sent
        start = time.monotonic()
        for k in range(count):
            if k:
                await asyncio.sleep(max(0.0, start + k * interval_s - time.monotonic()))
            for n, address in enumerate(wanted):
                if n and n % SEND_BATCH == 0:
                    await asyncio.sleep(0)  # let the reader drain the socket
                with contextlib.suppress(OSError):  # not sent: lost
                    pending[(address, ident[address], k)] = time.monotonic()
                    await loop.sock_sendto(sock, _echo(ident[address], k), (address, 0))
            last_sent = time.monotonic()
        sent_all.set()

    async def receive() -> None:
        while pending or not sent_all.is_set():
            left = (last_sent + timeout_s - time.monotonic()) if sent_all.is_set() else timeout_s
            if left <= 0:
                return
            try:
                packet, (source, _) = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), left)
            except TimeoutError:
                continue  # the loop's condition decides whether to wait more
            now = time.monotonic()
            ihl = (packet[0] & 0x0F) * 4 if packet else 0
            if len(packet) < ihl + 8 or packet[ihl] != ECHO_REPLY:
                continue  # an echo request seen on loopback, an error, another host's traffic
            got_id, got_seq = struct.unpack("!HH", packet[ihl + 4:ihl + 8])
            sent = pending.pop((source, got_id, got_seq), None)
            if sent is not None and now - sent <= timeout_s:
                rtts[source].append((now - sent) * 1000.0)

    with sock:
        sock.setblocking(False)
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, RAW_RCVBUF)
                    break
        await asyncio.gather(send(), receive())
    return {a: ReachResult(a, "icmp", count, len(r), round(sum(r) / len(r), 3) if r else None)
            for a, r in rtts.items()}


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
