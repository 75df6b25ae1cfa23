"""The uplink poller against real agents: the lab city (64-bit counters that move), an snmpsim of
our own serving a 32-bit-only agent and two agents publishing optical levels (ENTITY-SENSOR-MIB
and a Juniper DOM table), a silent address and an agent answering garbage."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from peers import start_peer

from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.peers import SnmpAgent, SnmpsimDevice, snmp_agents, snmpsim_spec
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType
from infra_mgr.lab.supervisor import Lab, PeerSpec
from infra_mgr.network.counters import rates
from infra_mgr.network.linkfacts import CounterRow, CounterSnapshot, InterfacePoll
from infra_mgr.network.snmp.ifpoll import poll_interfaces, poll_many
from infra_mgr.snmp.engine import SnmpEngine
from infra_mgr.snmp.target import SnmpTarget

STR, OBJ, INT, GAUGE, C32, C64, TT = (SnmpType.OCTET_STRING, SnmpType.OID, SnmpType.INTEGER, SnmpType.GAUGE32,
                                      SnmpType.COUNTER32, SnmpType.COUNTER64, SnmpType.TIMETICKS)
IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
ENT = "1.3.6.1.2.1.47.1.1.1.1"
SENSOR = "1.3.6.1.2.1.99.1.1.1"
ALIAS = "1.3.6.1.2.1.47.1.3.2.1.2"
DOM = "1.3.6.1.4.1.2636.3.60.1.1.1.1"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def snapshot(poll: InterfacePoll, row: CounterRow) -> CounterSnapshot:
    names = ("in_octets", "out_octets", "in_pkts", "out_pkts", "in_errors", "out_errors", "in_discards", "out_discards")
    return CounterSnapshot(poll.ts_ms, poll.uptime_cs, row.hc, {n: getattr(row, n) for n in names})


def system(name: str, sys_object_id: str) -> list[SnmpRecord]:
    return [SnmpRecord("1.3.6.1.2.1.1.1.0", STR, f"{name} test agent"),
            SnmpRecord("1.3.6.1.2.1.1.2.0", OBJ, sys_object_id),
            SnmpRecord("1.3.6.1.2.1.1.3.0", TT, 123_456),
            SnmpRecord("1.3.6.1.2.1.1.5.0", STR, name)]


def if_rows(index: int, *, in_octets: int, out_octets: int, oper: int = 1,
            speed: int = 100_000_000) -> list[SnmpRecord]:
    """An ifTable row with 32-bit counters only."""
    return [SnmpRecord(f"{IF}.1.{index}", INT, index), SnmpRecord(f"{IF}.2.{index}", STR, f"port{index}"),
            SnmpRecord(f"{IF}.5.{index}", GAUGE, speed), SnmpRecord(f"{IF}.8.{index}", INT, oper),
            SnmpRecord(f"{IF}.9.{index}", TT, 4_200), SnmpRecord(f"{IF}.10.{index}", C32, in_octets),
            SnmpRecord(f"{IF}.11.{index}", C32, 1_000), SnmpRecord(f"{IF}.12.{index}", C32, 20),
            SnmpRecord(f"{IF}.13.{index}", C32, 3), SnmpRecord(f"{IF}.14.{index}", C32, 7),
            SnmpRecord(f"{IF}.16.{index}", C32, out_octets), SnmpRecord(f"{IF}.17.{index}", C32, 900),
            SnmpRecord(f"{IF}.18.{index}", C32, 10), SnmpRecord(f"{IF}.19.{index}", C32, 0),
            SnmpRecord(f"{IF}.20.{index}", C32, 1)]


def hc_rows(index: int, *, in_octets: int, speed_mbps: int) -> list[SnmpRecord]:
    return [*if_rows(index, in_octets=in_octets % 2**32, out_octets=5, speed=min(speed_mbps * 10**6, 2**32 - 1)),
            SnmpRecord(f"{IFX}.1.{index}", STR, f"xe-0/0/{index}"), SnmpRecord(f"{IFX}.6.{index}", C64, in_octets),
            SnmpRecord(f"{IFX}.7.{index}", C64, 77), SnmpRecord(f"{IFX}.10.{index}", C64, 5),
            SnmpRecord(f"{IFX}.11.{index}", C64, 66), SnmpRecord(f"{IFX}.15.{index}", GAUGE, speed_mbps)]


def entity_sensor_device() -> list[SnmpRecord]:
    """A switch whose port ifIndex 2 (entity 1002) holds a transceiver (2002) with a receive sensor
    (-3.5 dBm: units, precision 1) and a transmit sensor (-2.15 dBm: milli·10⁻⁰, precision 0 is
    -2150 mdBm), plus a temperature sensor that is not optical; ifIndex 1 has no transceiver."""
    records = [*system("optic-es", "1.3.6.1.4.1.30065.1.3011.7050"),
               *hc_rows(1, in_octets=10, speed_mbps=10_000), *hc_rows(2, in_octets=2**40, speed_mbps=10_000)]
    entities = {1: ("Chassis", 0), 1001: ("Ethernet1", 1), 1002: ("Ethernet2", 1),
                2002: ("Ethernet2 transceiver", 1002), 3001: ("Ethernet2 Rx Power Sensor", 2002),
                3002: ("Ethernet2 Tx Power Sensor", 2002), 3003: ("Ethernet2 temperature sensor", 2002)}
    for entity, (descr, parent) in entities.items():
        records += [SnmpRecord(f"{ENT}.2.{entity}", STR, descr), SnmpRecord(f"{ENT}.4.{entity}", INT, parent),
                    SnmpRecord(f"{ENT}.7.{entity}", STR, descr)]
    records += [SnmpRecord(f"{ALIAS}.1001.0", OBJ, f"{IF}.1.1"), SnmpRecord(f"{ALIAS}.1002.0", OBJ, f"{IF}.1.2")]
    for entity, kind, scale, precision, value in ((3001, 14, 9, 1, -35), (3002, 14, 8, 0, -2150), (3003, 8, 9, 0, 41)):
        records += [SnmpRecord(f"{SENSOR}.1.{entity}", INT, kind), SnmpRecord(f"{SENSOR}.2.{entity}", INT, scale),
                    SnmpRecord(f"{SENSOR}.3.{entity}", INT, precision), SnmpRecord(f"{SENSOR}.4.{entity}", INT, value),
                    SnmpRecord(f"{SENSOR}.5.{entity}", INT, 1)]
    return records


def juniper_device() -> list[SnmpRecord]:
    records = [*system("optic-jnx", "1.3.6.1.4.1.2636.1.1.1.2.29"), *hc_rows(510, in_octets=99, speed_mbps=1000)]
    return [*records, SnmpRecord(f"{DOM}.5.510", INT, -725), SnmpRecord(f"{DOM}.7.510", INT, -198)]


def legacy_device() -> list[SnmpRecord]:
    return [*system("legacy32", "1.3.6.1.4.1.11.2.3.7.11.50"),
            *if_rows(1, in_octets=4_000_000_000, out_octets=12_345, oper=1),
            *if_rows(2, in_octets=17, out_octets=18, oper=2)]


def _agents_spec(lab_dir: Any) -> PeerSpec:
    devices = [SnmpsimDevice("legacy32", legacy_device()), SnmpsimDevice("optic-es", entity_sensor_device()),
               SnmpsimDevice("optic-jnx", juniper_device())]
    return snmpsim_spec(lab_dir, devices, name="ifpoll-agents")


@pytest.fixture(scope="module")
def agents(peer_lab: Lab) -> Iterator[dict[str, SnmpAgent]]:
    record = start_peer(peer_lab, _agents_spec)
    yield {a.name: a for a in snmp_agents(record)}
    peer_lab.stop(record.name)


def target_of(agent: SnmpAgent, **kw: Any) -> SnmpTarget:
    return SnmpTarget(agent.host, agent.port, community=agent.community, **kw)


# --- the lab city -------------------------------------------------------------------------------


def _branch_router(city: RunningCity) -> dict[str, Any]:
    """A healthy branch router served by snmpsim over SNMPv2c, with at least two interfaces up."""
    for device in city.devices:
        if (device["role"] == "wan-router" and device["fault"] is None and device["served_by"] == "snmpsim"
                and device["snmp"]["version"] == "2c"
                and sum(1 for i in device["interfaces"] if i["oper"] == "up") >= 2):
            return device
    raise AssertionError("the city has no healthy SNMPv2c branch router")


def test_city_uplinks_give_64_bit_rows_that_move(city: RunningCity) -> None:
    device = _branch_router(city)
    up = [i for i in device["interfaces"] if i["oper"] == "up"][:2]
    down = [i for i in device["interfaces"] if i["oper"] != "up"][:1]
    wanted = [i["index"] for i in up + down]
    target = SnmpTarget(device["address"], city.port, community=device["snmp"]["community"], timeout_s=2.0)
    engine = SnmpEngine()

    async def twice() -> tuple[InterfacePoll, InterfacePoll, int]:
        first = await poll_interfaces(engine, target, wanted)
        await asyncio.sleep(2.5)
        before = engine.stats.requests
        second = await poll_interfaces(engine, target, wanted)
        return first, second, engine.stats.requests - before

    first, second, requests = run(twice())
    assert first.error_kind is None and second.error_kind is None, (first.error, second.error)
    assert sorted(second.rows) == sorted(wanted)
    # the steady state is one round trip for a handful of interfaces
    assert requests == 1
    assert first.rtt_ms is not None and first.rtt_ms > 0
    assert second.uptime_cs is not None and first.uptime_cs is not None and second.uptime_cs > first.uptime_cs
    for iface in up + down:
        row = second.rows[iface["index"]]
        assert row.hc is True
        assert row.oper_status == iface["oper"]
        assert row.speed_bps == iface["speed_mbps"] * 1_000_000
        assert row.last_change_cs is not None and row.in_errors is not None
    moved = 0
    for iface in up:
        a, b = first.rows[iface["index"]], second.rows[iface["index"]]
        assert a.in_octets is not None and b.in_octets is not None and a.in_pkts is not None
        if b.in_octets > a.in_octets:
            moved += 1
            got = rates(snapshot(first, a), snapshot(second, b), b.speed_bps)
            assert got.note is None
            assert got.interval_s is not None and 1.5 < got.interval_s < 10
            assert got.in_bps is not None and 0 < got.in_bps <= (b.speed_bps or 0) * 1.05
            assert got.util_pct is not None and 0 < got.util_pct <= 105
    assert moved >= 1, "no uplink counter advanced between two polls 2.5 s apart"


def test_poll_many_keeps_order_and_isolates_failures(city: RunningCity) -> None:
    device = _branch_router(city)
    good = SnmpTarget(device["address"], city.port, community=device["snmp"]["community"])
    silent = _silent_socket()
    try:
        bad = SnmpTarget("127.0.0.1", silent.getsockname()[1], timeout_s=0.3, retries=0)
        polls = run(poll_many(SnmpEngine(), [(bad, [1]), (good, [1]), (bad, [2])], concurrency=2))
    finally:
        silent.close()
    assert [p.address for p in polls] == ["127.0.0.1", device["address"], "127.0.0.1"]
    assert [p.error_kind for p in polls] == ["timeout", None, "timeout"]
    assert 1 in polls[1].rows


# --- agents of our own --------------------------------------------------------------------------


def test_32_bit_only_agent_gives_legacy_rows(agents: dict[str, SnmpAgent]) -> None:
    engine = SnmpEngine()
    target = target_of(agents["legacy32"])

    async def twice() -> tuple[InterfacePoll, InterfacePoll, int]:
        first = await poll_interfaces(engine, target, [1, 2, 9])
        before = engine.stats.requests
        second = await poll_interfaces(engine, target, [1, 2, 9])
        return first, second, engine.stats.requests - before

    first, second, requests = run(twice())
    assert first.error_kind is None, first.error
    assert sorted(first.rows) == [1, 2]  # ifIndex 9 does not exist: no row, no invented zeros
    row = first.rows[1]
    assert row.hc is False
    assert (row.in_octets, row.out_octets) == (4_000_000_000, 12_345)
    assert (row.in_pkts, row.out_pkts) == (1_020, 910)  # unicast + non-unicast
    assert (row.in_errors, row.out_errors, row.in_discards, row.out_discards) == (7, 1, 3, 0)
    assert row.speed_bps == 100_000_000 and row.oper_status == "up" and row.last_change_cs == 4_200
    assert first.rows[2].oper_status == "down"
    assert first.uptime_cs is not None and first.uptime_cs >= 123_456
    assert second.rows[1].hc is False and second.rows[1].in_octets == 4_000_000_000
    assert requests == 1  # remembered: 32-bit counters asked directly
    assert row.rx_dbm is None and row.tx_dbm is None


def test_entity_sensor_optics(agents: dict[str, SnmpAgent]) -> None:
    engine = SnmpEngine()
    target = target_of(agents["optic-es"])

    async def twice() -> tuple[InterfacePoll, InterfacePoll, int]:
        first = await poll_interfaces(engine, target, [1, 2])
        before = engine.stats.requests
        second = await poll_interfaces(engine, target, [1, 2])
        return first, second, engine.stats.requests - before

    first, second, requests = run(twice())
    assert first.error_kind is None, first.error
    for poll in (first, second):
        port = poll.rows[2]
        assert port.hc is True and port.in_octets == 2**40 and port.speed_bps == 10_000_000_000
        assert port.rx_dbm == pytest.approx(-3.5)
        assert port.tx_dbm == pytest.approx(-2.15)
        assert poll.rows[1].rx_dbm is None and poll.rows[1].tx_dbm is None
    assert requests == 1  # sensors learned once, then read with the counters


def test_optics_can_be_left_out(agents: dict[str, SnmpAgent]) -> None:
    poll = run(poll_interfaces(SnmpEngine(), target_of(agents["optic-es"]), [2], optics=False))
    assert poll.rows[2].in_octets == 2**40 and poll.rows[2].rx_dbm is None


def test_vendor_dom_optics(agents: dict[str, SnmpAgent]) -> None:
    engine = SnmpEngine()
    target = target_of(agents["optic-jnx"])
    first = run(poll_interfaces(engine, target, [510]))
    second = run(poll_interfaces(engine, target, [510]))
    for poll in (first, second):
        assert poll.error_kind is None, poll.error
        assert poll.rows[510].rx_dbm == pytest.approx(-7.25)
        assert poll.rows[510].tx_dbm == pytest.approx(-1.98)


def test_wrong_community_is_a_timeout_not_an_exception(agents: dict[str, SnmpAgent]) -> None:
    agent = agents["legacy32"]
    poll = run(poll_interfaces(SnmpEngine(), SnmpTarget(agent.host, agent.port, community="wrong",
                                                       timeout_s=0.3, retries=0), [1]))
    assert poll.error_kind == "timeout" and poll.rows == {} and poll.uptime_cs is None


# --- silence and garbage ------------------------------------------------------------------------


def _silent_socket() -> socket.socket:
    """A UDP port that receives and never answers (no ICMP refusal either): a dead agent."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_silent_address_times_out_without_raising() -> None:
    sock = _silent_socket()
    try:
        target = SnmpTarget("127.0.0.1", sock.getsockname()[1], timeout_s=0.3, retries=1)
        started = time.monotonic()
        poll = run(poll_interfaces(SnmpEngine(), target, [1, 2]))
        elapsed = time.monotonic() - started
    finally:
        sock.close()
    assert poll.error_kind == "timeout"
    assert "no answer" in poll.error
    assert poll.rows == {} and poll.rtt_ms is None and poll.uptime_cs is None
    assert elapsed < 10  # given up after its retries, not after the device deadline


def test_garbage_answer_is_an_error_kind() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def answer_garbage() -> None:
        while not stop.is_set():
            try:
                _, peer = sock.recvfrom(4096)
            except OSError:
                continue
            sock.sendto(b"\x30\x03\x02\x01\x05", peer)  # a sequence holding only a version

    thread = threading.Thread(target=answer_garbage, daemon=True)
    thread.start()
    try:
        poll = run(poll_interfaces(SnmpEngine(), SnmpTarget("127.0.0.1", sock.getsockname()[1], timeout_s=0.5,
                                                            retries=0), [1]))
    finally:
        stop.set()
        thread.join(2)
        sock.close()
    assert poll.error_kind == "decode"
    assert poll.rows == {} and poll.error
