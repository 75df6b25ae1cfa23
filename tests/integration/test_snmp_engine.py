"""The SNMP poll engine and getters against real agents: snmpsim serving generated recordings
(a core switch with LLDP/CDP neighbours, branch switches, an SNMPv3 firewall) and the lying agent
(``infra_mgr.lab.liar``), whose every bad habit must end as the right problem, fast."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from peers import start_peer

from infra_mgr.lab.peers import (
    IF_ENTRY,
    IFX_ENTRY,
    SnmpAgent,
    SnmpsimDevice,
    SwitchProfile,
    cisco_ios_switch_records,
    liar_spec,
    snmp_agents,
    snmpsim_spec,
)
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, read_snmprec, write_snmprec
from infra_mgr.lab.supervisor import Lab, PeerSpec
from infra_mgr.network.snmp.facts import NeighborFacts, ProbeResult
from infra_mgr.network.snmp.getters import (
    ProbeOptions,
    get_interfaces,
    get_ip_addresses,
    get_lldp_neighbors,
    probe,
    probe_many,
)
from infra_mgr.snmp.engine import SnmpEngine
from infra_mgr.snmp.target import SnmpTarget

STR, OBJ, INT, GAUGE, C64, IPA = (SnmpType.OCTET_STRING, SnmpType.OID, SnmpType.INTEGER, SnmpType.GAUGE32,
                                  SnmpType.COUNTER64, SnmpType.IP_ADDRESS)
LLDP_LOC = "1.0.8802.1.1.2.1.3"
LLDP_REM = "1.0.8802.1.1.2.1.4.1.1"
LLDP_MAN = "1.0.8802.1.1.2.1.4.2.1"
CDP = "1.3.6.1.4.1.9.9.23.1.2.1.1"

CORE = SwitchProfile(
    name="jed-hq-core2",
    location="أمانة جدة - المبنى الرئيسي - غرفة الخوادم",
    serial="FOC2418L9ZZ",
    model="C9500-48Y4C",
    sys_object_id="1.3.6.1.4.1.9.1.2571",
    software_version="17.9.4",
    ports=24,
    aliases={1: "وصلة إلى فرع البلد", 23: "uplink jed-dc-core1 Te1/1/1", 24: "وصلة صاعدة - مركز البيانات"},
    admin_down=frozenset({20}),
)
CORE_MAC = bytes.fromhex("00a3d1aa0000")
BAD_UTF8_ALIAS = b"caf\xe9 uplink \xff"
HUNDRED_G = 101  # an interface whose ifSpeed saturates: its speed is ifHighSpeed x 10^6


def core_records() -> list[SnmpRecord]:
    """The core switch: the lab's Cisco generator plus LLDP (local ports numbered apart from
    ifIndex, so names must do the mapping), CDP, addresses, ARP and a forwarding table."""
    r = cisco_ios_switch_records(CORE)
    n = HUNDRED_G
    r += [
        SnmpRecord(f"{IF_ENTRY}.1.{n}", INT, n), SnmpRecord(f"{IF_ENTRY}.2.{n}", STR, "HundredGigE1/1/1"),
        SnmpRecord(f"{IF_ENTRY}.3.{n}", INT, 6), SnmpRecord(f"{IF_ENTRY}.5.{n}", GAUGE, 4_294_967_295),
        SnmpRecord(f"{IF_ENTRY}.7.{n}", INT, 1), SnmpRecord(f"{IF_ENTRY}.8.{n}", INT, 7),
        SnmpRecord(f"{IF_ENTRY}.10.{n}", SnmpType.COUNTER32, 5), SnmpRecord(f"{IFX_ENTRY}.1.{n}", STR, "Hu1/1/1"),
        SnmpRecord(f"{IFX_ENTRY}.6.{n}", C64, 2**63 + 5), SnmpRecord(f"{IFX_ENTRY}.15.{n}", GAUGE, 100_000),
        SnmpRecord(f"{IFX_ENTRY}.18.{n}", STR, BAD_UTF8_ALIAS),
        # LLDP local: chassis MAC; ports 501..524 are Gi1/0/1..24 by name (interfaceName subtype)
        SnmpRecord(f"{LLDP_LOC}.1.0", INT, 4), SnmpRecord(f"{LLDP_LOC}.2.0", STR, CORE_MAC),
        SnmpRecord(f"{LLDP_LOC}.3.0", STR, CORE.name),
    ]
    for port in range(1, 25):
        r += [SnmpRecord(f"{LLDP_LOC}.7.1.2.{500 + port}", INT, 5),
              SnmpRecord(f"{LLDP_LOC}.7.1.3.{500 + port}", STR, f"Gi1/0/{port}"),
              SnmpRecord(f"{LLDP_LOC}.7.1.4.{500 + port}", STR, f"GigabitEthernet1/0/{port}")]
    # neighbour 1 on Gi1/0/23: MAC chassis id, named port, management address 10.0.0.2
    r += _lldp_rem(523, 1, chassis=(4, bytes.fromhex("0011223344ff")), port=(5, b"Te1/1/1"), name="jed-dc-core1",
                   descr="Cisco IOS Software, Catalyst L3 Switch", port_desc="TenGigabitEthernet1/1/1")
    r.append(SnmpRecord(f"{LLDP_MAN}.3.0.523.1.1.4.10.0.0.2", INT, 2))
    # neighbour 2 on Gi1/0/24: network-address chassis id, MAC port id with a description
    r += _lldp_rem(524, 2, chassis=(5, bytes.fromhex("010a000003")), port=(3, bytes.fromhex("52540012ab01")),
                   name="jed-fs1", descr="Linux jed-fs1 6.1.0-18-amd64", port_desc="eth0")
    # CDP on Gi1/0/1 (ifIndex 1): a branch switch at 10.1.1.5
    r += [SnmpRecord(f"{CDP}.3.1.5", INT, 1), SnmpRecord(f"{CDP}.4.1.5", STR, bytes([10, 1, 1, 5])),
          SnmpRecord(f"{CDP}.5.1.5", STR, "Cisco IOS Software, C1000 Software, Version 15.2(7)E8"),
          SnmpRecord(f"{CDP}.6.1.5", STR, "jed-b01-sw.jeddah.example"),
          SnmpRecord(f"{CDP}.7.1.5", STR, "GigabitEthernet0/1"),
          SnmpRecord(f"{CDP}.8.1.5", STR, "cisco C1000-24T-4G-L")]
    # addresses: IPv4 in ipAddrTable, IPv6 in ipAddressTable (prefix length = last arc of the pointer)
    r += [SnmpRecord("1.3.6.1.2.1.4.20.1.1.10.10.0.1", IPA, "10.10.0.1"),
          SnmpRecord("1.3.6.1.2.1.4.20.1.2.10.10.0.1", INT, 25),
          SnmpRecord("1.3.6.1.2.1.4.20.1.3.10.10.0.1", IPA, "255.255.255.0")]
    v6 = ".".join(str(b) for b in bytes.fromhex("20010db8000000000000000000000001"))
    r += [SnmpRecord(f"1.3.6.1.2.1.4.34.1.3.2.16.{v6}", INT, 25), SnmpRecord(f"1.3.6.1.2.1.4.34.1.4.2.16.{v6}", INT, 1),
          SnmpRecord(f"1.3.6.1.2.1.4.34.1.5.2.16.{v6}", OBJ, f"1.3.6.1.2.1.4.32.1.5.25.2.16.{v6}.64")]
    # ARP: ipNetToPhysical (ifIndex 25, IPv4 10.10.0.20)
    r += [SnmpRecord("1.3.6.1.2.1.4.35.1.4.25.1.4.10.10.0.20", STR, bytes.fromhex("3c5282aabbcc")),
          SnmpRecord("1.3.6.1.2.1.4.35.1.6.25.1.4.10.10.0.20", INT, 3)]
    # Q-BRIDGE forwarding table: VLAN 10, MAC 3c:52:82:aa:bb:cc on bridge port 2 = ifIndex 2
    mac = ".".join(str(b) for b in bytes.fromhex("3c5282aabbcc"))
    r += [SnmpRecord(f"1.3.6.1.2.1.17.7.1.2.2.1.2.10.{mac}", INT, 2),
          SnmpRecord(f"1.3.6.1.2.1.17.7.1.2.2.1.3.10.{mac}", INT, 3),
          SnmpRecord("1.3.6.1.2.1.17.1.4.1.2.2", INT, 2)]
    return r


def _lldp_rem(local_port: int, index: int, *, chassis: tuple[int, bytes], port: tuple[int, bytes], name: str,
              descr: str, port_desc: str) -> list[SnmpRecord]:
    row = f"0.{local_port}.{index}"
    return [SnmpRecord(f"{LLDP_REM}.4.{row}", INT, chassis[0]), SnmpRecord(f"{LLDP_REM}.5.{row}", STR, chassis[1]),
            SnmpRecord(f"{LLDP_REM}.6.{row}", INT, port[0]), SnmpRecord(f"{LLDP_REM}.7.{row}", STR, port[1]),
            SnmpRecord(f"{LLDP_REM}.8.{row}", STR, port_desc), SnmpRecord(f"{LLDP_REM}.9.{row}", STR, name),
            SnmpRecord(f"{LLDP_REM}.10.{row}", STR, descr)]


AGG = SwitchProfile(name="jed-dc-agg1", location="مركز البيانات - صف التجميع", ports=48, serial="FOC2400AGG1")
LONG_DESCR = "Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4, " \
             "RELEASE SOFTWARE (fc3) Technical Support: http://www.cisco.com/techsupport Copyright (c) 1986-2023 " \
             "by Cisco Systems, Inc. Compiled Tue 01-Aug-23 10:00 by mcpre"


def agg_records() -> list[SnmpRecord]:
    """An aggregation switch with 40 access switches on LLDP, each with a long system description:
    25 rows of them (~6.5 KB) do not fit gufo-snmp's 4080-byte receive buffer."""
    r = cisco_ios_switch_records(AGG)
    for port in range(1, 41):  # no lldpLocPortTable: local port numbers are taken as ifIndex
        r += _lldp_rem(port, 1, chassis=(4, bytes([0, 0x11, 0x22, 0, 0, port])), port=(5, b"Gi1/0/48"),
                       name=f"jed-b{port:02d}-sw", descr=LONG_DESCR, port_desc="GigabitEthernet1/0/48")
    return r


BRANCHES = [SwitchProfile(name=f"jed-b{n:02d}-sw", location=f"أمانة جدة - فرع {n}", ports=8,
                          serial=f"FOC24B{n:02d}XYZ", model="C9200L-24T-4G") for n in range(1, 7)]
FIREWALL = SwitchProfile(name="jed-dc-fw1", location="مركز البيانات", ports=4, serial="FOC2400FW01")
V3 = {"user": "noc-ro", "auth_proto": "SHA-256", "auth_key": "jeddah-auth-2024", "priv_proto": "AES",
      "priv_key": "jeddah-priv-2024"}


def _engine_lab_spec(lab_dir: Path) -> PeerSpec:
    """One snmpsim with an engine per device; the firewall's engine also has an SNMPv3 user.

    gufo-snmp sends SNMPv3 requests with an empty context name, which snmpsim maps to the
    recording ``self.snmprec`` (its label for "this engine"), so the firewall gets a copy of its
    recording under that name besides ``public.snmprec``.
    """
    devices = [SnmpsimDevice(CORE.name, core_records())]
    devices += [SnmpsimDevice(p.name, cisco_ios_switch_records(p)) for p in BRANCHES]
    devices.append(SnmpsimDevice(FIREWALL.name, cisco_ios_switch_records(FIREWALL)))
    devices.append(SnmpsimDevice(AGG.name, agg_records()))
    spec = snmpsim_spec(lab_dir, devices, name="snmp-engine")
    data_dir = Path(spec.info["data_dir"])
    at = spec.argv.index(f"--data-dir={data_dir / FIREWALL.name}")
    spec.argv[at:at] = [f"--v3-user={V3['user']}", f"--v3-auth-key={V3['auth_key']}", "--v3-auth-proto=SHA256",
                        f"--v3-priv-key={V3['priv_key']}", "--v3-priv-proto=AES"]
    write_recordings = spec.prepare

    def prepare() -> None:
        assert write_recordings is not None
        write_recordings()
        recording = data_dir / FIREWALL.name
        write_snmprec(recording / "self.snmprec", read_snmprec(recording / "public.snmprec"))

    spec.prepare = prepare
    return spec


@pytest.fixture(scope="session")
def agents(peer_lab: Lab) -> Iterator[dict[str, SnmpAgent]]:
    record = start_peer(peer_lab, _engine_lab_spec)
    yield {a.name: a for a in snmp_agents(record)}
    peer_lab.stop(record.name)


@pytest.fixture(scope="session")
def liar(peer_lab: Lab) -> Iterator[tuple[str, int]]:
    record = start_peer(peer_lab, liar_spec)
    yield record.info["host"], int(record.info["port"])
    peer_lab.stop(record.name)


def target(agent: SnmpAgent, **kw: Any) -> SnmpTarget:
    return SnmpTarget(agent.host, agent.port, **{"community": agent.community, "timeout_s": 2.0, **kw})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- snmpsim ------------------------------------------------------------------------------------


def test_facts_identify_a_cisco_core_switch(agents: dict[str, SnmpAgent]) -> None:
    result = run(probe(target(agents[CORE.name]), SnmpEngine()))
    assert result.reachable and result.errors == []
    f = result.facts
    assert (f.vendor, f.platform, f.model, f.serial, f.os_version) == ("Cisco", "ios-xe", "C9500-48Y4C",
                                                                       "FOC2418L9ZZ", "17.9.4")
    assert f.sys_name == CORE.name and f.sys_object_id == CORE.sys_object_id
    assert f.location == "أمانة جدة - المبنى الرئيسي - غرفة الخوادم"  # exact, Arabic
    assert f.uptime_s == CORE.uptime_ticks / 100
    assert f.chassis_id == "00:a3:d1:aa:00:00"


def test_interfaces_prefer_hc_counters_and_keep_text_exact(agents: dict[str, SnmpAgent]) -> None:
    result = run(probe(target(agents[CORE.name]), SnmpEngine()))
    by_index = {i.index: i for i in result.interfaces}
    assert sorted(by_index) == [*range(1, 26), HUNDRED_G]
    records = {r.oid: r.value for r in core_records()}
    for index in range(1, 26):
        i = by_index[index]
        assert i.in_octets == records[f"{IFX_ENTRY}.6.{index}"]  # 64-bit, not the wrapped 32-bit value
        assert i.out_octets == records[f"{IFX_ENTRY}.10.{index}"]
    assert any(by_index[n].in_octets > 2**32 for n in range(1, 25))  # the test means something
    gi1 = by_index[1]
    assert (gi1.name, gi1.descr, gi1.type, gi1.speed_bps, gi1.mtu) == ("Gi1/0/1", "GigabitEthernet1/0/1",
                                                                       "ethernetCsmacd", 1_000_000_000, 1500)
    assert gi1.alias == "وصلة إلى فرع البلد"  # exact
    assert gi1.mac is not None and gi1.mac.startswith("00:a3:d1:") and len(gi1.mac) == 17
    assert (by_index[20].admin_status, by_index[20].oper_status) == ("down", "down")
    assert by_index[25].type == "propVirtual"
    hu = by_index[HUNDRED_G]
    assert hu.speed_bps == 100_000_000_000 and hu.oper_status == "lowerLayerDown" and hu.in_octets == 2**63 + 5
    assert hu.alias == "caf\\xe9 uplink \\xff"  # invalid UTF-8: bytes shown, nothing invented


def test_lldp_and_cdp_neighbours(agents: dict[str, SnmpAgent]) -> None:
    result = run(probe(target(agents[CORE.name]), SnmpEngine()))
    assert result.neighbors == [
        NeighborFacts(local_interface="Gi1/0/23", protocol="lldp", remote_system_name="jed-dc-core1",
                      remote_port="Te1/1/1", remote_chassis_id="00:11:22:33:44:ff", remote_address="10.0.0.2",
                      remote_platform="Cisco IOS Software, Catalyst L3 Switch", local_if_index=23),
        NeighborFacts(local_interface="Gi1/0/24", protocol="lldp", remote_system_name="jed-fs1", remote_port="eth0",
                      remote_chassis_id="10.0.0.3", remote_address=None,
                      remote_platform="Linux jed-fs1 6.1.0-18-amd64", local_if_index=24),
        NeighborFacts(local_interface="Gi1/0/1", protocol="cdp", remote_system_name="jed-b01-sw.jeddah.example",
                      remote_port="GigabitEthernet0/1", remote_chassis_id=None, remote_address="10.1.1.5",
                      remote_platform="cisco C1000-24T-4G-L", local_if_index=1),
    ]


def test_addresses_and_neighbours(agents: dict[str, SnmpAgent]) -> None:
    async def read() -> tuple[Any, ...]:
        engine = SnmpEngine()
        async with engine.session(target(agents[CORE.name])) as walker:
            interfaces = await get_interfaces(walker)
            return (await get_ip_addresses(walker), await get_lldp_neighbors(walker, interfaces), walker.problems)

    addresses, lldp, problems = run(read())
    assert problems == []
    assert [(a.address, a.prefix_length, a.if_index) for a in addresses] == [("10.10.0.1", 24, 25),
                                                                              ("2001:db8::1", 64, 25)]
    assert len(lldp) == 2


COUNTER_FIELDS = ("in_octets", "out_octets", "in_errors", "out_errors", "in_discards", "out_discards")


@pytest.mark.parametrize("version", ["2c", "1"])
def test_discovery_read_matches_the_full_probe_with_fewer_requests(agents: dict[str, SnmpAgent], version: str
                                                                   ) -> None:
    """Discovery's light read (no counters: known rows by GET, ifHighSpeed only where ifSpeed
    saturates, LLDP local ports only where a neighbour is) must see what a full probe sees; on
    SNMPv1 (no multi-cell GET) the same through walks."""
    for agent in (CORE, AGG, BRANCHES[0]):
        full_engine, light_engine = SnmpEngine(), SnmpEngine()
        t = target(agents[agent.name], version=version)
        full = run(probe(t, full_engine))
        light = run(probe(t, light_engine, ProbeOptions(ip_addresses=False, counters=False)))
        assert full.errors == light.errors == [], (full.errors, light.errors)
        strip = [replace(i, **dict.fromkeys(f for f in COUNTER_FIELDS if hasattr(i, f))) for i in full.interfaces]
        assert light.interfaces == strip and light.neighbors == full.neighbors and light.facts == full.facts
        if version == "2c":
            assert light_engine.stats.requests < full_engine.stats.requests
        if agent is CORE:  # its 100G port: ifSpeed saturated, the speed came from ifHighSpeed
            assert any(i.index == HUNDRED_G and i.speed_bps == 100_000_000_000 for i in light.interfaces)


def test_answers_too_big_for_gufo_lower_max_repetitions(agents: dict[str, SnmpAgent]) -> None:
    engine = SnmpEngine()
    t = target(agents[AGG.name])
    result = run(probe(t, engine))
    assert result.errors == []
    assert len(result.neighbors) == 40 and {n.remote_platform for n in result.neighbors} == {LONG_DESCR}
    assert [(n.local_interface, n.remote_system_name) for n in result.neighbors[:2]] == [
        ("Gi1/0/1", "jed-b01-sw"), ("Gi1/0/2", "jed-b02-sw")]
    # 25 rows did not fit, 12 did: remembered for this device and table
    assert engine.state_of(t).ceilings == {"1.0.8802.1.1.2.1.4.1.1": 12}


def test_snmpv1_falls_back_to_32_bit_counters(agents: dict[str, SnmpAgent]) -> None:
    result = run(probe(target(agents[BRANCHES[0].name], version="1"), SnmpEngine()))
    assert result.reachable and result.facts.sys_name == BRANCHES[0].name
    records = {r.oid: r.value for r in cisco_ios_switch_records(BRANCHES[0])}
    gi1 = next(i for i in result.interfaces if i.index == 1)
    assert gi1.in_octets == records[f"{IF_ENTRY}.10.1"]  # SNMPv1 has no Counter64
    assert gi1.name == "Gi1/0/1"


def test_snmpv3_authpriv_sha256_aes(agents: dict[str, SnmpAgent]) -> None:
    fw = agents[FIREWALL.name]
    good = SnmpTarget(fw.host, fw.port, version="3", **V3)
    result = run(probe(good, SnmpEngine()))
    assert result.reachable and result.errors == [], result.errors
    assert result.facts.sys_name == FIREWALL.name and result.facts.location == "مركز البيانات"
    assert len(result.interfaces) == 5
    bad = run(probe(replace(good, auth_key="not-the-auth-key", timeout_s=0.5), SnmpEngine()))
    assert not bad.reachable and [e.kind for e in bad.errors] == ["auth"]


def test_sweep_isolates_a_wrong_community_and_respects_the_bound(agents: dict[str, SnmpAgent]) -> None:
    engine = SnmpEngine(max_concurrency=3)
    branches = [target(agents[p.name]) for p in BRANCHES]
    wrong = target(agents[CORE.name], community="not-public", timeout_s=0.3, retries=1)
    results = run(probe_many([branches[0], wrong, *branches[1:]], engine))
    assert [r.address for r in results] == [t.address for t in [branches[0], wrong, *branches[1:]]]
    failed = results[1]
    assert not failed.reachable and [(e.kind, e.operation) for e in failed.errors] == [("timeout", "facts")]
    for result, profile in zip([results[0], *results[2:]], BRANCHES, strict=True):
        assert result.reachable and result.errors == [] and result.facts.sys_name == profile.name
        assert len(result.interfaces) == 9
    assert engine.stats.peak_devices_in_flight == 3  # bounded, and the bound was reached
    assert engine.stats.peak_requests_per_device == 1


def test_one_request_in_flight_per_device_even_when_getters_are_gathered(agents: dict[str, SnmpAgent]) -> None:
    async def both() -> tuple[Any, Any]:
        engine = SnmpEngine()
        async with engine.session(target(agents[CORE.name])) as walker:
            results = await asyncio.gather(get_interfaces(walker), get_ip_addresses(walker))
        assert engine.stats.peak_requests_per_device == 1
        return results

    interfaces, addresses = run(both())
    assert len(interfaces) == 26 and len(addresses) == 2


def test_refused_port_is_reported_quickly() -> None:
    from infra_mgr.lab.supervisor import free_port

    result = run(probe(SnmpTarget("127.0.0.1", free_port("127.0.0.1", "udp"), timeout_s=2, retries=3), SnmpEngine()))
    assert not result.reachable and result.errors[0].kind == "timeout"


# --- the lying agent -----------------------------------------------------------------------------

Check = Callable[[ProbeResult, SnmpEngine, SnmpTarget], None]


def _interfaces(n: int) -> Check:
    def check(result: ProbeResult, engine: SnmpEngine, t: SnmpTarget) -> None:
        assert len(result.interfaces) == n

    return check


def _no_bulk(result: ProbeResult, engine: SnmpEngine, t: SnmpTarget) -> None:
    assert len(result.interfaces) == 5 and result.facts.sys_name == "liar-sw1"
    assert engine.state_of(t).bulk is False  # remembered for the next poll


def _wrong_types(result: ProbeResult, engine: SnmpEngine, t: SnmpTarget) -> None:
    messages = " ".join(e.message for e in result.errors)
    for field in ("sys_uptime", "sys_object_id", "if_speed", "if_phys_address", "if_admin_status", "if_hc_in_octets"):
        assert field in messages
    gi1 = result.interfaces[0]
    assert result.facts.uptime_s is None and gi1.speed_bps == 1_000_000_000  # from ifHighSpeed instead
    assert gi1.mac is None and gi1.admin_status is None and gi1.in_octets is not None  # 32-bit counter instead
    assert result.facts.location == "أمانة جدة - مختبر الاختبار"


LIES: list[tuple[str, set[str], bool, Check | None]] = [
    # community, problem kinds expected, reachable, extra check
    ("public", set(), True, _interfaces(5)),
    ("loop", {"loop"}, True, None),
    ("regress", {"loop"}, True, None),
    ("garbage", {"error"}, False, None),
    ("truncated", {"truncated", "error"}, False, None),
    ("wrongtype", {"bad_type"}, True, _wrong_types),
    ("nosuch", {"no_such_object"}, True, _interfaces(5)),
    ("endofmib", {"end_of_mib"}, True, _interfaces(0)),
    ("nobulk", {"no_bulk"}, True, _no_bulk),
    ("huge", {"too_big"}, True, _interfaces(300)),
    ("silent", {"timeout"}, False, None),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("community", "kinds", "reachable", "check"), LIES, ids=[lie[0] for lie in LIES])
def test_lying_agent(liar: tuple[str, int], community: str, kinds: set[str], reachable: bool,
                     check: Check | None) -> None:
    host, port = liar
    engine = SnmpEngine(max_rows=300)
    t = SnmpTarget(host, port, community=community, timeout_s=0.3, retries=1)
    result = run(probe(t, engine))  # every lie ends: the test's timeout bounds it
    seen = {e.kind for e in result.errors}
    if community == "garbage":
        # Random bytes (seeded by each request, whose id is random) read as undecodable or as cut
        # short, whichever each answer happens to look like: at least one of the two, nothing else.
        assert seen & {"decode", "truncated"} and seen <= kinds | {"decode", "truncated"}, result.errors
    else:
        assert seen == kinds, result.errors
    assert result.reachable is reachable
    json.dumps(result.to_json(), ensure_ascii=False)
    if check:
        check(result, engine, t)


def test_a_get_too_big_for_the_agent_is_asked_again_smaller(liar: tuple[str, int]) -> None:
    """An agent with a small maximum message size answers a long GET with tooBig (which gufo reads
    as an empty answer): the rows are asked for again in smaller GETs and nothing is lost."""
    host, port = liar
    light = ProbeOptions(ip_addresses=False, counters=False)
    honest = run(probe(SnmpTarget(host, port, community="public", timeout_s=0.5), SnmpEngine(), light))
    engine = SnmpEngine()
    t = SnmpTarget(host, port, community="smallmsg", timeout_s=0.5)
    small = run(probe(t, engine, light))
    assert small.errors == [] and len(small.interfaces) == 5
    assert small.interfaces == honest.interfaces and small.facts == honest.facts
    assert engine.state_of(t).get_cells == 16  # remembered for this device


def test_a_looping_walk_ends_with_what_it_had(liar: tuple[str, int]) -> None:
    host, port = liar

    async def walk() -> tuple[list[Any], list[Any], int]:
        engine = SnmpEngine()
        async with engine.session(SnmpTarget(host, port, community="loop", timeout_s=0.5)) as walker:
            rows = await walker.walk(f"{IF_ENTRY}.2")
            return rows, walker.problems, engine.stats.requests

    rows, problems, requests = run(walk())
    assert rows == [(f"{IF_ENTRY}.2.1", b"GigabitEthernet1/0/1")]
    assert [p.kind for p in problems] == ["loop"] and requests <= 2


# --- the probe command -----------------------------------------------------------------------------

FACT_KEYS = {"sys_name", "sys_descr", "sys_object_id", "vendor", "platform", "model", "serial", "os_version",
             "uptime_s", "location"}
INTERFACE_KEYS = {"index", "name", "descr", "alias", "type", "speed_bps", "mac", "admin_status", "oper_status",
                  "in_octets", "out_octets"}
NEIGHBOR_KEYS = {"local_interface", "protocol", "remote_system_name", "remote_port", "remote_chassis_id",
                 "remote_address"}


def probe_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra_mgr.network.cli", "probe", *args], capture_output=True,
                          text=True, timeout=60)


def test_probe_command_json_has_exactly_the_contract(agents: dict[str, SnmpAgent]) -> None:
    core = agents[CORE.name]
    done = probe_cli(f"{core.host}:{core.port}", "--community", core.community, "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {"address", "port", "facts", "interfaces", "neighbors", "errors", "power"}
    assert out["power"] is None  # a switch: the UPS case is in test_power_collectors.py
    assert set(out["facts"]) == FACT_KEYS and out["facts"]["location"] == CORE.location
    assert all(set(i) == INTERFACE_KEYS for i in out["interfaces"]) and len(out["interfaces"]) == 26
    assert all(set(n) == NEIGHBOR_KEYS for n in out["neighbors"]) and len(out["neighbors"]) == 3
    assert out["errors"] == [] and out["port"] == core.port
    assert "أمانة جدة" in done.stdout  # not \u-escaped


def test_probe_command_v3_and_summary(agents: dict[str, SnmpAgent]) -> None:
    fw = agents[FIREWALL.name]
    done = probe_cli(f"{fw.host}:{fw.port}", "--v3-user", V3["user"], "--auth-proto", V3["auth_proto"],
                     "--auth-key", V3["auth_key"], "--priv-proto", V3["priv_proto"], "--priv-key", V3["priv_key"])
    assert done.returncode == 0, done.stderr
    assert FIREWALL.name in done.stdout and "FOC2400FW01" in done.stdout


def test_probe_command_unreachable_is_json_and_exit_2(liar: tuple[str, int]) -> None:
    host, port = liar
    done = probe_cli(f"{host}:{port}", "-c", "silent", "--timeout", "0.2", "--retries", "0", "--json")
    assert done.returncode == 2
    out = json.loads(done.stdout)
    assert [e["kind"] for e in out["errors"]] == ["timeout"] and out["interfaces"] == []


@pytest.mark.parametrize("args", [
    ("no-such-host.invalid", "-c", "public"),
    ("127.0.0.1:99999", "-c", "public"),
    ("127.0.0.1", "--v3-user", "u", "--auth-proto", "SHA-999", "--auth-key", "12345678"),
    ("127.0.0.1", "--v3-user", "u", "--auth-proto", "SHA", "--auth-key", "12345678", "--priv-proto", "ROT13",
     "--priv-key", "12345678"),
    ("127.0.0.1",),
])
def test_probe_command_usage_errors_are_one_line_exit_1(args: tuple[str, ...]) -> None:
    done = probe_cli(*args)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
