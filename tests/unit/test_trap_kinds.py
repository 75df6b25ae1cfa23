"""The trap → event table and the function that reads it (no network, no database)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from infra_mgr.events.models import Severity
from infra_mgr.network.trap_kinds import TRAP_KINDS, describe, extract_fields
from infra_mgr.network.traps import TrapFacts, decode_text


def facts(trap_oid: str, varbinds: dict[str, Any] | None = None, **kw: Any) -> TrapFacts:
    return TrapFacts(source_address="10.64.7.2", source_port=40000, received_at=dt.datetime.now(dt.UTC),
                     version="2c", pdu_type="trap", trap_oid=trap_oid, uptime_s=12.5, varbinds=varbinds or {}, **kw)


@pytest.mark.parametrize(("oid", "kind", "severity"), [
    ("1.3.6.1.6.3.1.1.5.3", "interface.down", "warning"),
    ("1.3.6.1.6.3.1.1.5.4", "interface.up", "info"),
    ("1.3.6.1.6.3.1.1.5.1", "device.restarted", "warning"),
    ("1.3.6.1.6.3.1.1.5.2", "device.restarted", "info"),
    ("1.3.6.1.6.3.1.1.5.5", "snmp.auth_failure", "warning"),
    ("1.3.6.1.2.1.33.2.1", "power.on_battery", "critical"),
    ("1.3.6.1.2.1.33.2.2", "power.test_completed", "info"),
    ("1.3.6.1.2.1.33.2.3", "power.alarm_raised", "warning"),
    ("1.3.6.1.2.1.33.2.4", "power.alarm_cleared", "info"),
    ("1.3.6.1.4.1.318.0.5", "power.on_battery", "critical"),
    ("1.3.6.1.4.1.318.0.9", "power.mains_restored", "info"),
    ("1.3.6.1.4.1.99999.0.1", "snmp.trap", "info"),
])
def test_each_trap_oid_maps_to_its_event(oid: str, kind: str, severity: str) -> None:
    ev = describe(facts(oid), who="jed-b07-sw01")
    assert (ev.kind, ev.severity.value) == (kind, severity)
    assert ev.data["trap_oid"] == oid and ev.data["source"] == "10.64.7.2"
    assert ev.message.startswith("jed-b07-sw01: ")


def test_every_row_has_a_valid_event_kind() -> None:
    for oid, row in TRAP_KINDS.items():
        assert oid.startswith("1.3.6.1.") and row.kind.replace("_", "").replace(".", "").isalnum()


def test_link_trap_names_the_interface_and_keeps_its_fields() -> None:
    ev = describe(facts("1.3.6.1.6.3.1.1.5.3", {
        "1.3.6.1.2.1.2.2.1.1.3": 3, "1.3.6.1.2.1.2.2.1.7.3": 1, "1.3.6.1.2.1.2.2.1.8.3": 2,
        "1.3.6.1.2.1.31.1.1.1.1.3": "Gi0/3", "1.3.6.1.2.1.31.1.1.1.18.3": "وصلة فرع البلد",
    }), who="jed-b07-sw01")
    assert ev.message == "jed-b07-sw01: interface Gi0/3 (وصلة فرع البلد) down (ifAdminStatus=up, ifOperStatus=down)"
    assert ev.data["ifIndex"] == 3 and ev.data["ifAlias"] == "وصلة فرع البلد" and ev.repoll


def test_operator_shutdown_is_not_a_warning() -> None:
    ev = describe(facts("1.3.6.1.6.3.1.1.5.3", {"1.3.6.1.2.1.2.2.1.1.5": 5, "1.3.6.1.2.1.2.2.1.7.5": 2}), "sw")
    assert ev.severity is Severity.info and ev.message == "sw: interface ifIndex 5 down (ifAdminStatus=down)"


def test_if_index_comes_from_the_instance_when_not_sent() -> None:
    assert extract_fields({"1.3.6.1.2.1.31.1.1.1.1.12": "Te1/0/12"}) == {"ifName": "Te1/0/12", "ifIndex": 12}


def test_ups_alarm_names_the_well_known_alarm() -> None:
    ev = describe(facts("1.3.6.1.2.1.33.2.3", {"1.3.6.1.2.1.33.1.6.2.1.1.4": 4,
                                               "1.3.6.1.2.1.33.1.6.2.1.2.4": "1.3.6.1.2.1.33.1.6.3.23"}), "ups")
    assert ev.data["upsAlarmDescr"] == "upsAlarmShutdownImminent" and ev.severity is Severity.critical


def test_unknown_trap_keeps_everything() -> None:
    ev = describe(facts("1.3.6.1.4.1.14988.0.7", {"1.3.6.1.4.1.14988.1.1.1.1": b"\x00\xff"}), "10.64.7.2")
    assert (ev.kind, ev.severity, ev.repoll) == ("snmp.trap", Severity.info, False)
    assert "1.3.6.1.4.1.14988.0.7" in ev.message and ev.data["trap_name"] is None
    assert ev.data["varbinds"] == {"1.3.6.1.4.1.14988.1.1.1.1": "0x00ff"}


def test_binary_alias_is_readable_in_the_message_and_exact_in_data() -> None:
    ev = describe(facts("1.3.6.1.6.3.1.1.5.4", {"1.3.6.1.2.1.31.1.1.1.18.1": b"caf\xe9"}), "sw")
    assert ev.message == "sw: interface ifIndex 1 (caf\ufffd) up" and ev.data["ifAlias"] == "0x636166e9"


def test_message_fits_the_column() -> None:
    ev = describe(facts("1.3.6.1.6.3.1.1.5.3", {"1.3.6.1.2.1.31.1.1.1.18.1": "x" * 5000}), "sw")
    assert len(ev.message) == 1000 and len(ev.data["ifAlias"]) == 5000


@pytest.mark.parametrize(("raw", "value"), [
    ("أمانة جدة".encode(), "أمانة جدة"),
    (b"uplink\x00", "uplink"),
    (b"\xd8\xa7\xff", b"\xd8\xa7\xff"),
    (b"\x00\x1a\x2b\x3c\x4d\x5e", b"\x00\x1a\x2b\x3c\x4d\x5e"),
    (b"", ""),
])
def test_decode_text(raw: bytes, value: str | bytes) -> None:
    assert decode_text(raw) == value
