"""The pure SNMP parsers: fuzzed with whatever an agent could send (they must never raise and
always return the contract's dataclasses), then pinned on known answers — vendors, counters,
speeds, MACs, LLDP subtypes, CDP addresses, InetAddress indexes — and the text decoding rule."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra_mgr.network.snmp.facts import (
    DeviceFacts,
    InterfaceFacts,
    IpAddressFacts,
    NeighborFacts,
    ProbeResult,
)
from infra_mgr.network.snmp.identity import identify, parse_facts
from infra_mgr.network.snmp.parse import (
    decode_text,
    format_chassis_id,
    format_port_id,
    parse_cdp,
    parse_interfaces,
    parse_ip_addresses,
    parse_lldp,
)
from infra_mgr.network.snmp.schema import scalar_groups, tables
from infra_mgr.snmp.target import PollProblem

IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
SYSTEM = {s.name: s.oid for s in scalar_groups()["system"]}

# --- strategies: anything an agent (or a library) could hand us --------------------------------

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from([b"\xff\xfe", b"caf\xe9", "أمانة جدة".encode(), b"\x00\x11\x22\x33\x44\x55", b"Gi1/0/1\x00"]),
    st.sampled_from(["1.3.6.1.4.1.9.1.2494", "10.0.0.1", "", "1..2", "-1.3"]),
)
indexes = st.lists(st.integers(min_value=0, max_value=2**32), min_size=0, max_size=22).map(
    lambda parts: ".".join(map(str, parts)))
entries = st.sampled_from(sorted({t.entry for t in tables().values()}))
column_ids = st.one_of(st.sampled_from(sorted({c.id for t in tables().values() for c in t.columns})),
                       st.integers(min_value=0, max_value=40))
table_oids = st.builds(lambda e, c, i: f"{e}.{c}.{i}".rstrip("."), entries, column_ids, indexes)
odd_oids = st.one_of(st.text(max_size=20), st.sampled_from(["", ".", f"{IF}.", f"{IF}.x.1", f"{IF}.2.-1", f"{IF}.2"]))
oids = st.one_of(table_oids, table_oids, odd_oids)
varbinds = st.lists(st.tuples(oids, values), max_size=40)
system_maps = st.dictionaries(st.one_of(st.sampled_from(sorted(SYSTEM.values())), oids), values, max_size=12)
fuzz = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _problems_ok(problems: list[PollProblem]) -> None:
    assert all(isinstance(p, PollProblem) and isinstance(p.message, str) for p in problems)


def _json_ok(**parts: Any) -> None:
    """The result serialises as the probe command would print it."""
    json.dumps(ProbeResult("192.0.2.1", 161, **parts).to_json(), ensure_ascii=False)


@fuzz
@given(system_maps, varbinds, st.dictionaries(st.text(max_size=30), values, max_size=4))
def test_fuzz_facts(system: dict[str, Any], entity: list[tuple[str, Any]], vendor: dict[str, Any]) -> None:
    facts, problems = parse_facts(system, entity, vendor, address="192.0.2.1")
    assert isinstance(facts, DeviceFacts)
    for name, value in asdict(facts).items():
        assert value is None or isinstance(value, float if name == "uptime_s" else str), (name, value)
    _problems_ok(problems)
    _json_ok(facts=facts)


@fuzz
@given(varbinds, varbinds)
def test_fuzz_interfaces(if_table: list[tuple[str, Any]], ifx_table: list[tuple[str, Any]]) -> None:
    interfaces, problems = parse_interfaces(if_table, ifx_table)
    assert all(isinstance(i, InterfaceFacts) for i in interfaces)
    assert [i.index for i in interfaces] == sorted({i.index for i in interfaces})
    assert all(isinstance(i.index, int) and i.index > 0 for i in interfaces)
    for i in interfaces:
        for name in ("name", "descr", "alias", "type", "mac", "admin_status", "oper_status"):
            assert getattr(i, name) is None or isinstance(getattr(i, name), str)
        for name in ("speed_bps", "mtu", "in_octets", "out_octets", "in_errors", "out_errors"):
            value = getattr(i, name)
            assert value is None or (isinstance(value, int) and not isinstance(value, bool))
    _problems_ok(problems)
    _json_ok(interfaces=interfaces)


@fuzz
@given(varbinds, varbinds, varbinds, varbinds)
def test_fuzz_neighbours(remote: Any, man: Any, local: Any, cdp: Any) -> None:
    interfaces = [InterfaceFacts(1, name="Gi1/0/1", descr="GigabitEthernet1/0/1"), InterfaceFacts(2, alias="x")]
    lldp, p1 = parse_lldp(remote, man, local, interfaces)
    cdp_n, p2 = parse_cdp(cdp, interfaces)
    assert all(isinstance(n, NeighborFacts) for n in lldp + cdp_n)
    assert {n.protocol for n in lldp} <= {"lldp"} and {n.protocol for n in cdp_n} <= {"cdp"}
    _problems_ok(p1 + p2)
    _json_ok(neighbors=lldp + cdp_n)


@fuzz
@given(varbinds, varbinds)
def test_fuzz_addresses(a: Any, b: Any) -> None:
    addresses, p1 = parse_ip_addresses(a, b)
    assert all(isinstance(x, IpAddressFacts) for x in addresses)
    _problems_ok(p1)


@fuzz
@given(st.one_of(st.none(), st.text(max_size=30), st.sampled_from(["1.3.6.1.4.1.9", "1.3.6.1.4.1.2636.1.1"])),
       st.one_of(st.none(), st.text(max_size=200)))
def test_fuzz_identify(sys_object_id: str | None, sys_descr: str | None) -> None:
    ident = identify(sys_object_id, sys_descr)
    for value in (ident.vendor, ident.platform, ident.model, ident.serial, ident.os_version):
        assert value is None or isinstance(value, str)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_valid_utf8_is_kept_exactly(text: str) -> None:
    text = text.rstrip("\x00")
    assert decode_text(text.encode("utf-8")) == text


@settings(max_examples=300, deadline=None)
@given(st.binary())
def test_any_bytes_decode_to_json_safe_text(raw: bytes) -> None:
    text = decode_text(raw)
    text.encode("utf-8")  # no lone surrogates: always serialisable
    json.dumps(text)


# --- known answers -------------------------------------------------------------------------------


def test_text_rule() -> None:
    assert decode_text("أمانة جدة - فرع البلد".encode()) == "أمانة جدة - فرع البلد"
    assert decode_text(b"Gi1/0/1\x00\x00") == "Gi1/0/1"  # NUL padding dropped
    assert decode_text(b"caf\xe9") == "caf\\xe9"  # latin-1 is not guessed at
    assert decode_text("جدة".encode()[:-1]) == "جد\\xd8"  # a cut multi-byte character


@pytest.mark.parametrize(("oid", "descr", "expected"), [
    ("1.3.6.1.4.1.9.1.2494",
     "Cisco IOS Software [Cupertino], C9300 Software (CAT9K_IOSXE), Version 17.9.4, RELEASE SOFTWARE (fc3)",
     ("Cisco", "ios-xe", None, "17.9.4")),
    ("1.3.6.1.4.1.9.1.516", "Cisco IOS Software, C3750 Software (C3750-IPSERVICESK9-M), Version 12.2(55)SE12, RELEASE",
     ("Cisco", "ios", None, "12.2(55)SE12")),
    ("1.3.6.1.4.1.9.12.3.1.3.1812", "Cisco NX-OS(tm) n9000, Software (n9000-dk9), Version 9.3(8), RELEASE SOFTWARE",
     ("Cisco", "nxos", None, "9.3(8)")),
    ("1.3.6.1.4.1.2636.1.1.1.2.29",
     "Juniper Networks, Inc. mx480 internet router, kernel JUNOS 22.4R1.10, Build date: 2022-12-14 03:12:08 UTC",
     ("Juniper", "junos", "mx480", "22.4R1.10")),
    ("1.3.6.1.4.1.14988.1", "RouterOS 7.12 (stable)", ("MikroTik", "routeros", None, "7.12")),
    ("1.3.6.1.4.1.14988.1", "RouterOS RB4011iGS+5HacQ2HnD", ("MikroTik", "routeros", "RB4011iGS+5HacQ2HnD", None)),
    ("1.3.6.1.4.1.11.2.3.7.11.160", "HP J9773A 2530-24G-PoEP Switch, revision YA.16.10.0007, ROM YA.15.20",
     ("HPE", "arubaos-switch", "J9773A", "YA.16.10.0007")),
    ("1.3.6.1.4.1.47196.4.1.1.1.211", "Aruba JL658A 6300M 24SFP+ 4SFP56 Swch FL.10.13.1000",
     ("HPE Aruba", "aos-cx", "JL658A", "FL.10.13.1000")),
    ("1.3.6.1.4.1.25506.11.1.239", "HPE Comware Platform Software, Software Version 7.1.070, Release 3506P06\r\n"
     "HPE 5130 24G 4SFP+ EI Switch\r\nCopyright (c) 2010-2020 Hewlett Packard Enterprise",
     ("HPE", "comware", "5130 24G 4SFP+ EI Switch", "7.1.070 3506P06")),
    ("1.3.6.1.4.1.8072.3.2.10", "Linux jed-fs1 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64",
     ("net-snmp", "linux", None, "6.1.0-18-amd64")),
    ("1.3.6.1.4.1.318.1.3.27", "APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.9.6 PN:apc_hw05_aos_696.bin "
     "AF1:v6.9.6 AN1:apc_hw05_sumx_696.bin MN:SMT1500RMI2UC HR:05 SN: ZA2012345678 MD:03/21/2020)",
     ("APC", "apc-nmc", "SMT1500RMI2UC", "6.9.6")),
    ("1.3.6.1.4.1.311.1.1.3.1.2", "Hardware: Intel64 Family 6 - Software: Windows Version 6.3 (Build 17763 "
     "Multiprocessor Free)", ("Microsoft", "windows", None, "6.3.17763")),
    ("1.3.6.1.4.1.99999.1", "Linux appliance 5.10.0 #1 SMP", ("Linux", "linux", None, "5.10.0")),  # fallback rule
    ("1.3.6.1.4.1.99.1", "something", (None, None, None, None)),  # 99 is not 9: whole arcs only
    (None, None, (None, None, None, None)),
])
def test_identify(oid: str | None, descr: str | None, expected: tuple[str | None, ...]) -> None:
    ident = identify(oid, descr)
    assert (ident.vendor, ident.platform, ident.model, ident.os_version) == expected


def test_identify_extracts_apc_serial_and_printer_prefix_wins() -> None:
    assert identify("1.3.6.1.4.1.318.1.3.27", "APC (MN:SMT1500 SN: ZA2012345678 AF1:v6.9.6)").serial == "ZA2012345678"
    printer = identify("1.3.6.1.4.1.11.2.3.9.1", "HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153")
    assert (printer.vendor, printer.platform) == ("HP", "printer")


def test_facts_precedence_entity_then_vendor_scalars_then_descr() -> None:
    system = {SYSTEM["sys_object_id"]: "1.3.6.1.4.1.14988.1", SYSTEM["sys_descr"]: b"RouterOS RB5009UG+S+",
              SYSTEM["sys_uptime"]: 12345, SYSTEM["sys_name"]: b"jed-b12-rtr"}
    vendor = {"1.3.6.1.4.1.14988.1.1.4.4.0": b"7.12.1", "1.3.6.1.4.1.14988.1.1.7.3.0": b"HE708XYZ"}
    facts, problems = parse_facts(system, [], vendor)
    assert problems == []
    assert (facts.vendor, facts.model, facts.serial, facts.os_version, facts.uptime_s) == (
        "MikroTik", "RB5009UG+S+", "HE708XYZ", "7.12.1", 123.45)
    entity = [("1.3.6.1.2.1.47.1.1.1.1.5.1", 3), ("1.3.6.1.2.1.47.1.1.1.1.11.1", b"ENTSERIAL"),
              ("1.3.6.1.2.1.47.1.1.1.1.13.1", b"RB5009")]
    facts, _ = parse_facts(system, entity, vendor)
    assert (facts.model, facts.serial) == ("RB5009", "ENTSERIAL")


def test_interfaces_speed_counters_and_bad_types() -> None:
    if_table = [
        (f"{IF}.2.1", b"xe-0/0/0"), (f"{IF}.5.1", 4_294_967_295), (f"{IF}.10.1", 7), (f"{IF}.7.1", 1),
        (f"{IF}.8.1", 5), (f"{IF}.6.1", bytes.fromhex("0011AABBCCDD")), (f"{IF}.3.1", 6),
        (f"{IF}.2.2", b"ge-0/0/1"), (f"{IF}.5.2", b"fast"), (f"{IF}.3.2", 9999),
    ]
    ifx_table = [(f"{IFX}.15.1", 40_000), (f"{IFX}.6.1", 2**40), (f"{IFX}.18.1", "وصلة".encode()),
                 (f"{IFX}.15.2", 10_000)]
    interfaces, problems = parse_interfaces(if_table, ifx_table)
    one, two = interfaces
    assert (one.speed_bps, one.in_octets, one.oper_status, one.mac, one.alias, one.name) == (
        40_000_000_000, 2**40, "dormant", "00:11:aa:bb:cc:dd", "وصلة", "xe-0/0/0")
    assert (two.speed_bps, two.type, two.in_octets) == (10_000_000_000, "9999", None)
    assert [(p.kind, p.operation) for p in problems] == [("bad_type", "walk if_table")]
    assert "if_speed" in problems[0].message


@pytest.mark.parametrize(("subtype", "raw", "expected"), [
    (4, bytes.fromhex("001122aabbcc"), "00:11:22:aa:bb:cc"),
    (5, bytes.fromhex("010a000001"), "10.0.0.1"),
    (5, bytes.fromhex("02") + bytes(15) + b"\x01", "::1"),
    (7, b"jed-hq-core1", "jed-hq-core1"),
    (1, b"\x00\x01\xff", "00:01:ff"),  # binary text-typed id: hex, not mojibake
    (4, b"", None),
])
def test_lldp_chassis_ids(subtype: int, raw: bytes, expected: str | None) -> None:
    assert format_chassis_id(subtype, raw) == expected


def test_lldp_port_ids() -> None:
    assert format_port_id(3, bytes.fromhex("525400aabbcc")) == "52:54:00:aa:bb:cc"
    assert format_port_id(5, b"Gi1/0/1") == "Gi1/0/1"


def test_lldp_local_port_by_ifindex_and_management_address_without_length() -> None:
    rem = "1.0.8802.1.1.2.1.4.1.1"
    remote = [(f"{rem}.9.0.7.1", b"peer"), (f"{rem}.6.0.7.1", 7), (f"{rem}.7.0.7.1", b"17")]
    man = [("1.0.8802.1.1.2.1.4.2.1.3.0.7.1.1.192.0.2.9", 2)]  # no length octet (seen in the field)
    neighbors, problems = parse_lldp(remote, man, [], [InterfaceFacts(7, name="ge-0/0/7")])
    assert problems == []
    assert [(n.local_interface, n.local_if_index, n.remote_port, n.remote_address) for n in neighbors] == [
        ("ge-0/0/7", 7, "17", "192.0.2.9")]


def test_lldp_local_port_id_is_named_by_its_description() -> None:
    """Junos sends the port's ifIndex as a locally assigned port id (subtype 7): the description
    names it; a real interface name (subtype 5) stays as sent."""
    rem = "1.0.8802.1.1.2.1.4.1.1"
    remote = [(f"{rem}.6.0.3.1", 7), (f"{rem}.7.0.3.1", b"574"), (f"{rem}.8.0.3.1", b"ge-0/0/5"),
              (f"{rem}.6.0.4.2", 5), (f"{rem}.7.0.4.2", b"xe-0/0/1"), (f"{rem}.8.0.4.2", b"uplink to core")]
    neighbors, _ = parse_lldp(remote)
    assert [n.remote_port for n in neighbors] == ["ge-0/0/5", "xe-0/0/1"]


def test_lldp_remote_ports_of_a_recorded_junos_device() -> None:
    """The LLDP rows of a real Junos recording of the conformance corpus (read where it lies):
    every remote port is a name, never a bare number."""
    from pathlib import Path

    from tests.conformance.harness import corpus_dir

    corpus = corpus_dir()
    if corpus is None:
        if os.environ.get("CI") == "true":
            pytest.fail("conformance corpus not found")
        pytest.skip("conformance corpus not on this machine")
    rem = "1.0.8802.1.1.2.1.4.1.1."
    remote: list[tuple[str, Any]] = []
    for line in Path(corpus, "snmprec", "junos_mx5t-isis.snmprec").read_text(errors="replace").splitlines():
        oid, _, rest = line.partition("|")
        tag, _, value = rest.partition("|")
        if oid.startswith(rem) and tag:
            remote.append((oid, int(value) if tag == "2" else bytes.fromhex(value) if tag == "4x" else value.encode()))
    neighbors, _ = parse_lldp(remote)
    ports = [n.remote_port for n in neighbors]
    assert len(ports) >= 3 and all(p and not p.isdigit() for p in ports), ports


def test_cdp_address_forms_and_unknown_local_interface() -> None:
    cdp = "1.3.6.1.4.1.9.9.23.1.2.1.1"
    cache = [(f"{cdp}.3.9.1", 1), (f"{cdp}.4.9.1", bytes([192, 0, 2, 1])), (f"{cdp}.6.9.1", b"sw1"),
             (f"{cdp}.3.9.2", 1), (f"{cdp}.4.9.2", b"192.0.2.2"), (f"{cdp}.6.9.2", b"sw2"),
             (f"{cdp}.3.9.3", 1), (f"{cdp}.4.9.3", b"\x01"), (f"{cdp}.6.9.3", b"sw3")]
    neighbors, _ = parse_cdp(cache, [])
    assert [(n.local_interface, n.remote_system_name, n.remote_address) for n in neighbors] == [
        ("9", "sw1", "192.0.2.1"), ("9", "sw2", "192.0.2.2"), ("9", "sw3", None)]


def test_addresses() -> None:
    v4 = "1.4.10.0.0.1"
    addresses, _ = parse_ip_addresses(
        [(f"1.3.6.1.2.1.4.34.1.3.{v4}", 3), (f"1.3.6.1.2.1.4.34.1.5.{v4}", f"1.3.6.1.2.1.4.32.1.5.3.{v4}.22")],
        [("1.3.6.1.2.1.4.20.1.2.10.0.0.1", 4), ("1.3.6.1.2.1.4.20.1.3.10.0.0.1", "255.255.0.0"),
         ("1.3.6.1.2.1.4.20.1.2.10.9.9.9", 5), ("1.3.6.1.2.1.4.20.1.3.10.9.9.9", "255.0.255.0")])
    assert [(a.address, a.prefix_length, a.if_index) for a in addresses] == [("10.0.0.1", 22, 3),
                                                                              ("10.9.9.9", None, 5)]
