"""Reachability probes against real peers: ICMP echo on loopback and inside private network
namespaces (a silent neighbour, an unrouted address, unprivileged and unusable ICMP), and single
SNMP GETs to a lab city device, a silent port and a refused one."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from peers import peer_unavailable

from infra_mgr.lab.city import RunningCity
from infra_mgr.network.reach import icmp_available, probe_icmp, probe_snmp
from infra_mgr.snmp.engine import SnmpEngine
from infra_mgr.snmp.target import SnmpTarget

ROOT = Path(__file__).parents[2]


def _need_root_icmp() -> None:
    if os.geteuid() != 0:
        peer_unavailable("ICMP tests need root (raw sockets, network namespaces)")


def _in_netns(setup: str, code: str, *, user: int | None = None) -> Any:
    """Run ``code`` (Python printing JSON) in a fresh network namespace prepared by ``setup``
    (shell commands), optionally as another uid; the namespace vanishes with the process."""
    _need_root_icmp()
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        peer_unavailable("unshare and ip (util-linux, iproute2) are needed for network namespaces")
    runner = [sys.executable, "-c", textwrap.dedent(code)]
    if user is not None:
        runner = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *runner]
    script = f"set -e; ip link set lo up; {setup}; exec {shlex.join(runner)}"
    done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


PROBE = """
    import asyncio, json
    from infra_mgr.network.reach import icmp_mode, probe_icmp
    got = asyncio.run(probe_icmp({addresses!r}, count=3, interval_s=0.05, timeout_s=0.5))
    print(json.dumps({{"mode": icmp_mode(), "results": {{a: [r.sent, r.received, r.rtt_ms] for a, r in got.items()}}}}))
"""


def test_icmp_to_loopback_is_answered() -> None:
    _need_root_icmp()
    assert icmp_available(), "ICMP is unusable even as root"
    got = asyncio.run(probe_icmp(["127.0.0.1", "127.0.0.1", "not-an-address"], count=3, interval_s=0.05))
    assert list(got) == ["127.0.0.1"]  # duplicates probed once; a name is not probed (unknown, not lost)
    result = got["127.0.0.1"]
    assert (result.method, result.sent, result.received, result.loss_pct) == ("icmp", 3, 3, 0.0)
    assert result.rtt_ms is not None and 0 < result.rtt_ms < 1000


def test_icmp_to_hundreds_of_addresses_loses_nothing() -> None:
    """A city's worth of branch devices at once (loopback answers every 127.x address): raw ICMP
    sockets each receive every echo and reply, so one socket per address drowned the replies in
    each other's traffic past about 128 addresses; nothing may be lost here."""
    _need_root_icmp()
    addresses = [f"127.77.{n // 200}.{n % 200 + 1}" for n in range(400)]
    got = asyncio.run(probe_icmp(addresses, count=3, interval_s=0.2, timeout_s=2.0))
    assert set(got) == set(addresses)
    lost = {a: r.received for a, r in got.items() if r.received != 3}
    assert not lost, f"{len(lost)} of {len(addresses)} addresses lost echoes"
    assert all(r.rtt_ms is not None for r in got.values())


BLOCK_S = 0.3  # how long each callback of the busy loop holds it


def test_icmp_round_trip_is_the_paths_on_a_busy_loop() -> None:
    """The poller's loop runs the SNMP polls while ICMP probes: an echo's round trip must not
    include the time the loop spent elsewhere before it could read the reply."""
    _need_root_icmp()

    async def main() -> tuple[float | None, int]:
        loop = asyncio.get_running_loop()
        blocks = {"n": 0, "on": True}

        def hog() -> None:  # CPU-bound work holding the loop, scheduled again and again
            until = time.perf_counter() + BLOCK_S
            while time.perf_counter() < until:
                pass
            blocks["n"] += 1
            if blocks["on"]:
                loop.call_soon(hog)

        loop.call_soon(hog)
        await asyncio.sleep(0)
        got = await probe_icmp(["127.0.0.1"], count=3, interval_s=0.05, timeout_s=2.0)
        blocks["on"] = False
        return got["127.0.0.1"].rtt_ms if "127.0.0.1" in got else None, blocks["n"]

    rtt, blocks = asyncio.run(main())
    assert blocks >= 2, "the loop was kept busy while probing"
    assert rtt is not None, "loopback answered"
    assert rtt < BLOCK_S * 1000 / 2, f"echo round trip {rtt} ms includes the busy loop ({BLOCK_S * 1000} ms blocks)"


def test_icmp_to_silent_and_unrouted_addresses_is_lost() -> None:
    # a veth whose other end nobody listens on: 10.9.9.9 never answers ARP, so echoes vanish;
    # 192.0.2.55 has no route at all inside the namespace
    setup = ("ip link add v0 type veth peer name v1; ip addr add 10.9.9.1/24 dev v0; "
             "ip link set v0 up; ip link set v1 up")
    out = _in_netns(setup, PROBE.format(addresses=["127.0.0.1", "10.9.9.9", "192.0.2.55"]))
    assert out["mode"] is True  # root: raw sockets (ping_group_range is closed in a new namespace)
    assert out["results"]["127.0.0.1"][:2] == [3, 3]
    assert out["results"]["10.9.9.9"] == [3, 0, None]
    assert out["results"]["192.0.2.55"] == [3, 0, None]


def test_icmp_unprivileged_where_ping_group_range_allows() -> None:
    out = _in_netns('echo "0 0" > /proc/sys/net/ipv4/ping_group_range', PROBE.format(addresses=["127.0.0.1"]))
    assert out["mode"] is False  # datagram ICMP sockets preferred over raw ones
    assert out["results"]["127.0.0.1"][:2] == [3, 3]


def test_icmp_unusable_says_so_and_probes_nothing() -> None:
    code = """
        import asyncio, json
        from infra_mgr.network.reach import icmp_available, probe_icmp
        print(json.dumps([icmp_available(), len(asyncio.run(probe_icmp(["127.0.0.1"], timeout_s=0.3)))]))
    """
    # nobody, in a namespace whose ping_group_range admits no group: no ICMP socket of any kind
    assert _in_netns("true", code, user=65534) == [False, 0]


def _silent_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.3", 0))
        return int(sock.getsockname()[1])


def test_snmp_probe(city: RunningCity) -> None:
    device = next(d for d in city.devices if d["fault"] is None and d["served_by"] == "snmpsim"
                  and d["snmp"]["version"] == "2c")
    silent = _silent_port()
    engine = SnmpEngine()
    try:
        targets = [
            SnmpTarget(device["address"], city.port, community=device["snmp"]["community"], retries=3),
            SnmpTarget("127.0.0.1", silent.getsockname()[1], retries=3),
            SnmpTarget("127.0.0.3", _closed_port()),
            SnmpTarget(device["address"], city.port, community="not-the-community"),
        ]
        answered = asyncio.run(probe_snmp(engine, targets[:1], count=3, timeout_s=1.0, interval_s=0.05))
        before = engine.stats.requests
        lost = asyncio.run(probe_snmp(engine, targets[1:3], count=3, timeout_s=0.3, interval_s=0.05))
        requests = engine.stats.requests - before
        wrong = asyncio.run(probe_snmp(engine, targets[3:], count=2, timeout_s=0.3, interval_s=0.05))
    finally:
        silent.close()
    ok = answered[device["address"]]
    assert (ok.method, ok.sent, ok.received, ok.loss_pct) == ("snmp", 3, 3, 0.0)
    assert ok.rtt_ms is not None and 0 < ok.rtt_ms < 1000
    assert lost["127.0.0.1"].received == 0 and lost["127.0.0.1"].loss_pct == 100.0
    assert lost["127.0.0.1"].rtt_ms is None
    assert lost["127.0.0.3"].received == 0
    assert requests == 6  # single GETs: the target's retries are not used, loss is not hidden
    assert (wrong[device["address"]].sent, wrong[device["address"]].received) == (2, 0)


def test_icmp_echo_that_cannot_be_sent_is_lost() -> None:
    # The process may open exactly one more descriptor once the event loop runs: the first
    # address's ICMP socket takes it (its echoes then fail to leave), and the second address's
    # socket cannot be opened at all (EMFILE). Both were probed and nothing came back: lost, not
    # left out as "not probed".
    code = """
        import asyncio, json, os, resource
        from infra_mgr.network.reach import probe_icmp

        async def main():
            hold = []
            top = max(int(n) for n in os.listdir("/proc/self/fd"))
            while True:
                fd = os.open("/dev/null", os.O_RDONLY)
                if fd > top:
                    break
                hold.append(fd)
            os.close(fd)  # every descriptor below fd is taken; fd is the only one left
            resource.setrlimit(resource.RLIMIT_NOFILE, (fd + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            return await probe_icmp(["127.0.0.1", "127.0.0.2"], count=3, interval_s=0.05, timeout_s=0.5)

        got = asyncio.run(main())
        print(json.dumps({a: [r.sent, r.received, r.rtt_ms] for a, r in got.items()}))
    """
    out = _in_netns("true", code)
    assert out == {"127.0.0.1": [3, 0, None], "127.0.0.2": [3, 0, None]}
