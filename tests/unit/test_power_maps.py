"""Unit tests of the power collectors' pure parts: register maps, decoding, the NUT text protocol,
probe URLs, the SNMP OID tables and the ``ups.status`` synthesis. No network, no peers."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from infra_mgr.power.collectors import maps as m
from infra_mgr.power.collectors import nut
from infra_mgr.power.collectors import snmp_ups as su
from infra_mgr.power.probe import (
    ModbusProbe,
    NutProbe,
    ProbeUrlError,
    SnmpProbe,
    parse_probe_url,
    redact_url,
    with_secrets,
)
from infra_mgr.power.readings import PowerReadings

# --- register maps: the shipped files ------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(m.available_maps()))
def test_shipped_maps_load(name: str) -> None:
    regmap = m.get_map(name)
    assert regmap.name == name
    assert regmap.kind in m.KINDS
    for block in m.plan_blocks([*regmap.identity, *regmap.registers]):
        assert 1 <= block.count <= m.MAX_REGISTERS_PER_READ


def test_the_three_lab_maps_exist() -> None:
    assert {"dse-gencomm", "drups-eurodiesel", "power-meter"} <= set(m.available_maps())


# --- register maps: validation names file and register -------------------------------------------


def _write(tmp_path: Path, body: str, name: str = "x.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


GOOD = """
name: test-map
kind: genset
registers:
  - {name: engine.rpm, address: 10, type: u16, unit: rpm}
"""


def test_minimal_map(tmp_path: Path) -> None:
    regmap = m.load_map(_write(tmp_path, GOOD))
    assert regmap.registers[0].name == "engine.rpm" and regmap.function == "holding"
    assert regmap.path == tmp_path / "x.yaml"


@pytest.mark.parametrize(("register", "fragment"), [
    ("{name: engine.rpm, address: 10, typ: u16}", "unknown key(s) typ"),
    ("{name: engine.rmp, address: 10}", "'engine.rmp' is not a canonical reading name"),
    ("{name: engine.rpm}", "missing address"),
    ("{name: engine.rpm, address: ten}", "address must be an integer"),
    ("{name: engine.rpm, address: 70000}", "out of range"),
    ("{name: engine.rpm, address: 1, type: f32}", "type must be one of"),
    ("{name: engine.rpm, address: 1, scale: 0}", "scale must be a non-zero number"),
    ("{name: output.power, address: 1, type: s32, unit: W}", "output.power is in kW, not W"),
    ("{name: engine.mode, address: 1, type: enum, enum: {7: off}}", "must be text, not False"),
    ("{name: engine.mode, address: 1, type: enum, enum: {7: idle}}", "not one of stop | auto | manual | test | off"),
    ("{name: engine.mode, address: 1, type: enum}", "needs an enum mapping"),
    ("{name: engine.rpm, address: 1, sentinels: {70000: x}}", "does not fit in a u16"),
])
def test_bad_register_is_named(tmp_path: Path, register: str, fragment: str) -> None:
    path = _write(tmp_path, f"name: t\nregisters:\n  - {register}\n")
    with pytest.raises(m.MapError) as info:
        m.load_map(path)
    message = str(info.value)
    assert str(path) in message and "registers #1" in message and fragment in message


@pytest.mark.parametrize(("body", "fragment"), [
    ("name: t\nregisters: []\n", "registers must be a non-empty list"),
    ("registers: [{name: engine.rpm, address: 1}]\n", "missing name"),
    ("name: t\nkind: rocket\nregisters: [{name: engine.rpm, address: 1}]\n", "kind must be one of"),
    ("name: t\nfunction: coils\nregisters: [{name: engine.rpm, address: 1}]\n", "function must be holding or input"),
    ("name: t\nregister: []\n", "unknown key(s) register"),
    ("name: t\nregisters: [{name: engine.rpm, address: 1}, {name: engine.rpm, address: 2}]\n", "appears twice"),
    ("name: t\nregisters: [{name: engine.runtime, address: 1, type: u32, unit: s}, {name: engine.rpm, address: 2}]\n",
     "'engine.rpm' at 2 overlaps 'engine.runtime'"),
    ("name: t\nregisters: [{name: engine.rpm, address: 1\n", "invalid YAML"),
    ("- just a list\n", "must be a mapping"),
])
def test_bad_map_is_named(tmp_path: Path, body: str, fragment: str) -> None:
    path = _write(tmp_path, body)
    with pytest.raises(m.MapError) as info:
        m.load_map(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_unknown_map_lists_the_known(tmp_path: Path) -> None:
    _write(tmp_path, GOOD, "alpha.yaml")
    with pytest.raises(m.MapError, match=r"unknown register map 'beta' \(known: alpha\)"):
        m.get_map("beta", tmp_path)
    assert m.get_map("alpha", tmp_path).name == "test-map"


def test_per_phase_names_are_canonical() -> None:
    for name in ("generator.L1.current", "generator.L2-N.voltage", "mains.1.status", "output.L3.current"):
        assert m.is_canonical(name), name
    for name in ("generator.current", "engine.rmp", "L1.voltage", "foo.L1.bar"):
        assert not m.is_canonical(name), name
    assert m.vocabulary("mains.2.status") == ("ok", "failed")


# --- decoding --------------------------------------------------------------------------------------


def reg(rtype: str = "u16", *, scale: float = 1, sentinels: object = True, enum: dict[int, str] | None = None,
        unit: str = "") -> m.Register:
    return m.Register("engine.rpm", 100, rtype, scale=scale, unit=unit,  # type: ignore[arg-type]
                      sentinels=m._sentinels(sentinels, rtype, "t"), enum=enum)


@pytest.mark.parametrize(("rtype", "top"), [("u16", 0xFFFF), ("s16", 0x7FFF), ("u32", 0xFFFFFFFF),
                                            ("s32", 0x7FFFFFFF), ("enum", 0xFFFF)])
def test_sentinel_masks_per_type(rtype: str, top: int) -> None:
    sentinels = m.type_sentinels(rtype)
    assert sorted(sentinels) == list(range(top - 7, top + 1))
    assert sentinels[top] == "unimplemented" and sentinels[top - 1] == "over_range"
    width = m._WIDTH[rtype]
    for raw in (top, top - 7):
        words = [raw] if width == 1 else [raw >> 16, raw & 0xFFFF]
        decoded = m.decode(reg(rtype, enum={0: "x"} if rtype == "enum" else None), words)
        assert decoded.value is None and decoded.problem and decoded.problem[0] == "sentinel"
    below = top - 8
    words = [below] if width == 1 else [below >> 16, below & 0xFFFF]
    decoded = m.decode(reg(rtype), words) if rtype != "enum" else m.decode(reg(rtype, enum={below: "x"}), words)
    assert decoded.problem is None


def test_negative_sentinel_is_masked_to_the_type() -> None:
    assert m._sentinels({-1: "unimplemented"}, "s16", "t") == {0xFFFF: "unimplemented"}
    assert m._sentinels([-2], "s32", "t") == {0xFFFFFFFE: "not available"}
    decoded = m.decode(reg("s16", sentinels={-1: "unimplemented"}), [0xFFFF])
    assert decoded.value is None and "unimplemented" in decoded.problem[1]  # type: ignore[index]


@pytest.mark.parametrize(("rtype", "words", "value"), [
    ("u16", [0xFFF7], 0xFFF7),
    ("s16", [0xFFFF], -1),
    ("s16", [0x8000], -32768),
    ("u32", [0x0001, 0x0000], 65536),
    ("u32", [0x1234, 0x5678], 0x12345678),
    ("s32", [0xFFFF, 0xFFFE], -2),
    ("s32", [0xFFFE, 0x7960], -100_000),
    ("s32", [0x8000, 0x0000], -(2**31)),
])
def test_decode_high_word_first(rtype: str, words: list[int], value: int) -> None:
    assert m.decode(reg(rtype, sentinels=False), words) == m.Decoded(value)


def test_decode_little_word_order() -> None:
    assert m.decode(reg("u32", sentinels=False), [0x0000, 0x0001], "little").value == 65536
    assert m.decode(reg("s32", sentinels=False), [0xFFFE, 0xFFFF], "little").value == -2


def test_scale_and_text() -> None:
    assert m.decode(reg("u16", scale=0.1), [2301]).value == 230.1
    assert m.decode(reg("s32", scale=0.001, sentinels=False), [0xFFFF, 0xFC18]).value == -1.0
    assert m.decode(reg("u16", scale=60), [3]).value == 180
    assert m.decode(reg("u32", unit="text", sentinels=False), [0x6EFB, 0x5C41]).value == "1861966913"


def test_enum_and_unknown_code() -> None:
    r = reg("enum", enum={0: "stopped", 3: "running"}, sentinels={15: "not available", 0xFFFF: "unimplemented"})
    assert m.decode(r, [3]).value == "running"
    assert m.decode(r, [15]).problem[0] == "sentinel"  # type: ignore[index]
    decoded = m.decode(r, [9])
    assert decoded.value is None and decoded.problem == ("bad_value", "register 100 (engine.rpm): unknown code 9")


def test_decode_wrong_words() -> None:
    assert m.decode(reg("u32"), [1]).problem[0] == "decode"  # type: ignore[index]
    assert m.decode(reg("u16"), [70000]).problem[0] == "decode"  # type: ignore[index]


@settings(max_examples=400, deadline=None)
@given(rtype=st.sampled_from(["u16", "s16", "u32", "s32", "enum"]),
       words=st.lists(st.integers(min_value=-(2**20), max_value=2**20), max_size=3),
       scale=st.sampled_from([1, 0.1, 0.001, 60, -1]),
       sentinels=st.sampled_from([True, False, {15: "n/a"}]),
       order=st.sampled_from(["big", "little"]))
def test_decoder_never_raises(rtype: str, words: list[int], scale: float, sentinels: object, order: str) -> None:
    r = reg(rtype, scale=scale, sentinels=sentinels, enum={0: "a", 1: "b"} if rtype == "enum" else None)
    decoded = m.decode(r, words, order)
    assert decoded.value is not None or decoded.problem is not None


# --- block planning --------------------------------------------------------------------------------


def _r(address: int, rtype: str = "u16") -> m.Register:
    return m.Register(f"engine.rpm{address}", address, rtype)  # type: ignore[arg-type]


def test_contiguous_registers_share_a_read() -> None:
    blocks = m.plan_blocks([_r(1032, "u32"), _r(1024), _r(1025), _r(1027), _r(1034, "u32"), _r(1029)])
    assert [(b.start, b.count) for b in blocks] == [(1024, 2), (1027, 1), (1029, 1), (1032, 4)]
    assert [r.address for r in blocks[-1].registers] == [1032, 1034]


def test_blocks_respect_the_125_limit_and_gaps() -> None:
    regs = [_r(a) for a in range(0, 300)]
    blocks = m.plan_blocks(regs)
    assert [(b.start, b.count) for b in blocks] == [(0, 125), (125, 125), (250, 50)]
    assert sum(len(b.registers) for b in blocks) == 300
    gapped = m.plan_blocks([_r(0), _r(5), _r(20)], max_gap=5)
    assert [(b.start, b.count) for b in gapped] == [(0, 6), (20, 1)]
    # a 32-bit value is never split across two reads
    split = m.plan_blocks([_r(a) for a in range(124)] + [_r(124, "u32")])
    assert [(b.start, b.count) for b in split] == [(0, 124), (124, 2)]


# --- NUT text protocol ----------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "words"), [
    ('VAR ups1 ups.status "OL CHRG"\n', ["VAR", "ups1", "ups.status", "OL CHRG"]),
    ('VAR ups1 ups.model "Smart \\"X\\" 3000"', ["VAR", "ups1", "ups.model", 'Smart "X" 3000']),
    ('VAR u d "C:\\\\ups\\\\log"', ["VAR", "u", "d", "C:\\ups\\log"]),
    ('VAR u ups.alarm ""', ["VAR", "u", "ups.alarm", ""]),
    ("ERR UNKNOWN-UPS", ["ERR", "UNKNOWN-UPS"]),
    ('UPS dc-ups1 "أمانة جدة UPS"\r\n', ["UPS", "dc-ups1", "أمانة جدة UPS"]),
    ('VAR u x "unterminated', ["VAR", "u", "x", "unterminated"]),
    ("   spaced\t\tout  ", ["spaced", "out"]),
    ("", []),
])
def test_parse_line(line: str, words: list[str]) -> None:
    assert nut.parse_line(line) == words


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_parse_line_never_raises(line: str) -> None:
    assert isinstance(nut.parse_line(line), list)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")))
def test_quote_round_trips(word: str) -> None:
    assert nut.parse_line(f"PASSWORD {nut.quote(word)}") == ["PASSWORD", word]


def test_error_code() -> None:
    assert nut.error_code(["ERR", "DATA-STALE"]) == "DATA-STALE"
    assert nut.error_code(["ERR"]) == "UNKNOWN"
    assert nut.error_code(["VAR", "x"]) is None
    assert nut.NutError("UNKNOWN-UPS").kind == "unknown_ups"
    assert nut.NutError("DRIVER-NOT-CONNECTED").kind == "stale"
    assert nut.NutError("ACCESS-DENIED").kind == "auth"


def test_nut_values_typed_and_glitches() -> None:
    variables = {"ups.status": "OB DISCHRG", "battery.charge": "87", "battery.runtime": "65535",
                 "input.voltage": "0.0", "ups.serial": "0012", "device.model": "Smart-UPS 3000",
                 "driver.name": "dummy-ups", "ups.load": "n/a", "battery.voltage": "27.30"}
    readings, problems = nut.to_readings(variables, "nut://h:1/u")
    assert readings["battery.charge"] == 87 and isinstance(readings["battery.charge"], int)
    assert readings["input.voltage"] == 0.0 and isinstance(readings["input.voltage"], float)
    assert readings["battery.voltage"] == 27.3
    assert readings["ups.serial"] == "0012"
    assert readings["ups.model"] == "Smart-UPS 3000"
    assert readings["battery.runtime"] is None and readings["ups.load"] is None
    assert readings["output.source"] == "battery"
    assert "driver.name" not in readings
    assert sorted(p.kind for p in problems) == ["bad_value", "bad_value"]
    assert nut.to_readings({"battery.runtime": "-1"}, "s")[0]["battery.runtime"] is None
    assert nut.to_readings({"ups.load": "1e999"}, "s")[0]["ups.load"] is None
    assert nut.to_readings({"ups.load": "9" * 5000}, "s")[0]["ups.load"] is None
    assert nut.to_readings({"ups.load": "٣٠"}, "s")[0]["ups.load"] is None  # digits, but not ASCII ones


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["battery.runtime", "battery.charge", "ups.status", "ups.load", "x.y"]),
                       st.text(max_size=12)))
def test_nut_readings_never_raise(variables: dict[str, str]) -> None:
    nut.to_readings(variables, "s")


@pytest.mark.parametrize(("status", "source"), [
    ("OL", "normal"), ("OL CHRG", "normal"), ("OB DISCHRG LB", "battery"), ("OL BYPASS", "bypass"),
    ("OL BOOST", "booster"), ("OL TRIM", "reducer"), ("OFF", "none"), ("", None), ("WAIT", None),
])
def test_output_source_from_nut_status(status: str, source: str | None) -> None:
    assert nut.output_source_from_status(status) == source


# --- ups.status synthesis ------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "flags", "kwargs", "status"), [
    ("normal", (), {}, "OL"),
    ("normal", (), {"charge": 100}, "OL"),
    ("normal", (), {"charge": 64.5}, "OL CHRG"),
    ("normal", (), {"charge": 64.5, "charger": "floating"}, "OL"),
    ("normal", ("CHRG",), {"charger": "charging"}, "OL CHRG"),
    ("battery", (), {"charge": 80}, "OB DISCHRG"),
    ("battery", ("LB",), {}, "OB LB DISCHRG"),
    ("battery", ("CHRG",), {}, "OB DISCHRG"),
    ("bypass", (), {}, "OL BYPASS"),
    ("booster", (), {}, "OL BOOST"),
    ("reducer", (), {}, "OL TRIM"),
    ("none", (), {}, "OFF"),
    ("other", (), {}, None),
    (None, (), {}, None),
    (None, ("LB",), {}, "LB"),
    ("normal", ("RB",), {"load": 120}, "OL RB OVER"),
    ("normal", (), {"load": 100}, "OL"),
    ("battery", ("CAL",), {}, "OB DISCHRG CAL"),
    ("normal", ("OVER", "OVER"), {}, "OL OVER"),
])
def test_status_synthesis(source: str | None, flags: tuple[str, ...], kwargs: dict, status: str | None) -> None:
    assert su.synthesize_status(source, flags, **kwargs) == status


# --- SNMP OID tables --------------------------------------------------------------------------------

APC = "1.3.6.1.4.1.318.1.1.1."
UPSMIB = "1.3.6.1.2.1.33.1."
XUPS = "1.3.6.1.4.1.534.1."


def test_shipped_oid_tables() -> None:
    tables = su.load_oid_tables()
    assert {"apc-powernet", "eaton-xups", "rfc1628"} <= set(tables.families)
    assert su.family_for("1.3.6.1.4.1.318.1.3.27").name == "apc-powernet"  # type: ignore[union-attr]
    assert su.family_for(".1.3.6.1.4.1.705.1").name == "mge-ups"  # type: ignore[union-attr]  # MGE-UPS-MIB, UPS-MIB fill
    assert su.family_for("1.3.6.1.2.1.33").name == "rfc1628"  # type: ignore[union-attr]
    assert su.family_for("1.3.6.1.4.1.3180.1") is None  # whole arcs only
    assert su.family_for("1.3.6.1.4.1.9.1.1") is None and su.family_for(None) is None
    assert [f.name for f in tables.fallbacks] == ["rfc1628"]
    assert "1.3.6.1.4.1.9" in tables.never_probe


def _read(family: str, values: dict[str, object], alarms: list[str] | None = None) -> PowerReadings:
    result = PowerReadings(source="snmp://t:161")
    assert su.build_readings(su.load_oid_tables()[family], values, alarms or [], result.source, result)
    return result


def test_apc_prefers_high_precision_and_synthesises_status() -> None:
    r = _read("apc-powernet", {
        APC + "1.1.1.0": b"Smart-UPS SRT 5000", APC + "2.1.1.0": 2, APC + "2.3.1.0": 955, APC + "2.2.1.0": 95,
        APC + "2.2.3.0": 360000, APC + "3.3.1.0": 2301, APC + "3.2.1.0": 230, APC + "4.1.1.0": 2,
        APC + "4.3.3.0": -1, APC + "4.2.3.0": 41, APC + "2.2.4.0": 1, APC + "2.2.2.0": 255,
    })
    assert r.kind == "ups" and r.vendor == "APC" and r.model == "Smart-UPS SRT 5000"
    rd = r.readings
    assert rd["battery.charge"] == 95.5 and rd["input.voltage"] == 230.1
    assert rd["battery.runtime"] == 3600  # TimeTicks → seconds
    assert rd["ups.load"] == 41  # high precision said -1: the plain OID serves
    assert rd["output.source"] == "normal" and rd["ups.status"] == "OL CHRG"
    assert rd["battery.replace"] == "no" and rd["battery.status"] == "normal"
    assert rd["battery.temperature"] is None
    assert [e.kind for e in r.errors] == ["sentinel"]


@pytest.mark.parametrize(("code", "source", "status"), [
    (3, "battery", "OB DISCHRG"), (4, "booster", "OL BOOST"), (9, "bypass", "OL BYPASS"),
    (10, "bypass", "OL BYPASS"), (12, "reducer", "OL TRIM"), (7, "none", "OFF"), (15, "battery", "OB DISCHRG CAL"),
])
def test_apc_output_status(code: int, source: str, status: str) -> None:
    rd = _read("apc-powernet", {APC + "4.1.1.0": code, APC + "2.2.1.0": 100}).readings
    assert (rd["output.source"], rd["ups.status"]) == (source, status)


def test_apc_low_battery_and_replace() -> None:
    rd = _read("apc-powernet", {APC + "4.1.1.0": 3, APC + "2.1.1.0": 3, APC + "2.2.4.0": 2}).readings
    assert rd["ups.status"] == "OB LB RB DISCHRG"
    assert rd["battery.status"] == "low" and rd["battery.replace"] == "yes"


def test_rfc1628_minutes_scales_and_alarms() -> None:
    r = _read("rfc1628", {
        UPSMIB + "1.1.0": b"Riello", UPSMIB + "1.2.0": b"MST 80", UPSMIB + "2.1.0": 3, UPSMIB + "2.3.0": 12,
        UPSMIB + "2.4.0": 18, UPSMIB + "3.3.1.2.1": 600, UPSMIB + "4.1.0": 5, UPSMIB + "4.4.1.3.1": 125,
        UPSMIB + "6.1.0": 2,
    }, alarms=["1.3.6.1.2.1.33.1.6.3.2", "1.3.6.1.2.1.33.1.6.3.8"])
    rd = r.readings
    assert r.vendor == "Riello" and r.model == "MST 80"
    assert rd["battery.runtime"] == 720 and rd["input.frequency"] == 60.0 and rd["output.current"] == 12.5
    assert rd["battery.status"] == "low" and rd["output.source"] == "battery"
    assert rd["ups.status"] == "OB LB DISCHRG OVER"
    assert rd["ups.alarm"] == "on battery; output overload"


def test_eaton_charger_state_and_alarms() -> None:
    rd = _read("eaton-xups", {XUPS + "1.2.0": b"Eaton 9PX 2200i RT 3U", XUPS + "2.4.0": 100, XUPS + "2.5.0": 1,
                              XUPS + "3.1.0": 500, XUPS + "4.5.0": 3, XUPS + "7.1.0": 0}).readings
    assert rd["ups.status"] == "OL CHRG" and rd["input.frequency"] == 50.0 and rd["ups.alarm"] == ""
    assert "_charger" not in rd
    rd = _read("eaton-xups", {XUPS + "2.4.0": 60, XUPS + "2.5.0": 3, XUPS + "4.5.0": 3}).readings
    assert rd["ups.status"] == "OL"  # floating: the device said what its charger does
    rd = _read("eaton-xups", {XUPS + "4.5.0": 5, XUPS + "7.1.0": 1}, alarms=["1.3.6.1.4.1.534.1.7.4"]).readings
    assert rd["ups.status"] == "OB LB DISCHRG" and rd["ups.alarm"] == "low battery"


_SNMP_VALUES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**64),
                         st.floats(allow_nan=True), st.binary(max_size=8), st.text(max_size=8))


@settings(max_examples=200, deadline=None)
@given(family=st.sampled_from(["apc-powernet", "eaton-xups", "rfc1628"]), data=st.data())
def test_snmp_values_never_raise(family: str, data: st.DataObject) -> None:
    fam = su.load_oid_tables()[family]
    values = {oid: data.draw(_SNMP_VALUES) for oid in fam.oids() if data.draw(st.booleans())}
    alarms = data.draw(st.lists(st.sampled_from(["1.3.6.1.2.1.33.1.6.3.8", "9.9.9", ""]), max_size=3))
    su.build_readings(fam, values, alarms, "s", PowerReadings(source="s"))


def test_numbers_sent_as_text() -> None:
    rd = _read("rfc1628", {UPSMIB + "2.4.0": b"87", UPSMIB + "3.3.1.3.1": b"n/a"}).readings
    assert rd["battery.charge"] == 87 and rd["input.voltage"] is None


def test_not_this_family_and_unknown_codes() -> None:
    result = PowerReadings(source="s")
    assert not su.build_readings(su.load_oid_tables()["apc-powernet"], {}, [], "s", result)
    rd = _read("rfc1628", {UPSMIB + "4.1.0": 42}).readings
    assert rd["output.source"] is None and "ups.status" not in rd


def test_per_model_correction() -> None:
    data = yaml.safe_load(textwrap.dedent("""
        families:
          quirky:
            sys_object_ids: [1.3.6.1.4.1.99999]
            readings:
              ups.model: {oid: 1.1.0}
              input.frequency: {oid: 2.1.0, scale: 0.1}
            models:
              - {match: "^Q-1000", multiply: {input.frequency: 10}}
    """))
    family = su.parse_oid_tables(data)["quirky"]
    for model, hz in ((b"Q-1000 rev2", 60.0), (b"Q-2000", 6.0)):
        result = PowerReadings(source="s")
        su.build_readings(family, {"1.1.0": model, "2.1.0": 60}, [], "s", result)
        assert result.readings["input.frequency"] == hz


@pytest.mark.parametrize(("body", "fragment"), [
    ("families: {f: {readings: {ups.load: {oid: 1.2, flags: {1: OFF}}}}}", "not False (quote yes/no/on/off)"),
    ("families: {f: {readings: {ups.load: {oid: 1.2, flags: {1: NOPE}}}}}", "unknown ups.status flag(s) NOPE"),
    ("families: {f: {readings: {ups.lod: {oid: 1.2}}}}", "reading ups.lod: not a canonical reading name"),
    ("families: {f: {readings: {ups.load: {oid: abc}}}}", "is not a numeric OID"),
    ("families: {f: {readings: {output.source: {oid: 1.2, enum: {1: mains}}}}}", "enum values must be among"),
    ("families: {f: {readings: {battery.replace: {oid: 1.2, enum: {1: no}}}}}", "quote yes/no/on/off"),
    ("families: {f: {readings: {ups.load: {oid: 1.2, scael: 2}}}}", "unknown key(s) scael"),
    ("nothing: here", "needs a 'families' mapping"),
])
def test_bad_oid_table_is_named(body: str, fragment: str) -> None:
    with pytest.raises(su.OidTableError) as info:
        su.parse_oid_tables(yaml.safe_load(body), "oids.yaml")
    assert fragment in str(info.value) and "oids.yaml" in str(info.value)


# --- probe URLs --------------------------------------------------------------------------------------


def test_snmp_url() -> None:
    spec = parse_probe_url("snmp://s3cret@10.1.2.3:1161")
    assert isinstance(spec, SnmpProbe)
    assert (spec.target.address, spec.target.port, spec.target.community, spec.target.version) == \
        ("10.1.2.3", 1161, "s3cret", "2c")
    assert spec.source == "snmp://10.1.2.3:1161" and "s3cret" not in spec.source
    default = parse_probe_url("snmp://ups.example?version=1&timeout=0.5")
    assert isinstance(default, SnmpProbe)
    assert (default.target.port, default.target.community, default.target.version, default.target.timeout_s) == \
        (161, "public", "1", 0.25)  # two attempts within the budget
    v6 = parse_probe_url("snmp://public@[::1]:1161")
    assert isinstance(v6, SnmpProbe) and v6.target.address == "::1" and v6.source == "snmp://[::1]:1161"


def test_nut_url() -> None:
    spec = parse_probe_url("nut://monitor:p%40ss%20word@127.0.0.1:3493/dc-ups1")
    assert isinstance(spec, NutProbe)
    assert (spec.host, spec.port, spec.ups, spec.user, spec.password) == \
        ("127.0.0.1", 3493, "dc-ups1", "monitor", "p@ss word")
    assert spec.source == "nut://monitor@127.0.0.1:3493/dc-ups1"
    bare = parse_probe_url("nut://nas")
    assert isinstance(bare, NutProbe) and (bare.port, bare.ups, bare.user) == (3493, None, None)


def test_modbus_url() -> None:
    spec = parse_probe_url("modbus://10.0.0.9:1502/3?map=dse-gencomm")
    assert isinstance(spec, ModbusProbe)
    assert (spec.host, spec.port, spec.unit, spec.map_name) == ("10.0.0.9", 1502, 3, "dse-gencomm")
    assert spec.source == "modbus://10.0.0.9:1502/3?map=dse-gencomm"
    default = parse_probe_url("modbus://gw?map=power-meter")
    assert isinstance(default, ModbusProbe) and (default.port, default.unit) == (502, 1)


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://x", "the scheme must be one of snmp://, nut://, modbus://"),
    ("snmp://", "no host"),
    ("snmp://h:99999", "port must be a number"),
    ("snmp://h:abc", "port must be a number"),
    ("snmp://h?version=3", "version must be 1 or 2c"),
    ("snmp://h/x", "has no path"),
    ("snmp://h?comunity=x", "unknown parameter(s) comunity"),
    ("nut://h/a/b", "must be one UPS name"),
    ("nut://:pw@h/u", "a password needs a user"),
    ("nut://h/u?timeout=-1", "timeout must be"),
    ("modbus://h/1", "name the register map with ?map=NAME"),
    ("modbus://h/300?map=dse-gencomm", "unit id must be a number between 0 and 255"),
    ("modbus://h/x?map=dse-gencomm", "unit id must be a number"),
    ("modbus://u:p@h/1?map=dse-gencomm", "no user or password"),
])
def test_bad_urls(url: str, fragment: str) -> None:
    with pytest.raises(ProbeUrlError) as info:
        parse_probe_url(url)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_stored_credentials_fill_the_url() -> None:
    snmp = with_secrets(parse_probe_url("snmp://10.1.2.3"), {"kind": "snmp_v2c", "community": "s3cret"}, 2.0)
    assert isinstance(snmp, SnmpProbe) and snmp.target.community == "s3cret" and snmp.target.timeout_s == 1.0
    assert snmp.source == "snmp://10.1.2.3:161"
    v3 = with_secrets(parse_probe_url("snmp://10.1.2.3"), {"kind": "snmp_v3", "username": "pwr", "auth_proto": "SHA",
                                                           "auth_key": "authkey123", "priv_proto": "AES",
                                                           "priv_key": "privkey123"})
    assert isinstance(v3, SnmpProbe)
    assert (v3.target.version, v3.target.user, v3.target.priv_proto) == ("3", "pwr", "AES")
    nut_spec = with_secrets(parse_probe_url("nut://h/u"), {"username": "mon", "password": "pw"}, 1.5)
    assert isinstance(nut_spec, NutProbe)
    assert (nut_spec.user, nut_spec.password, nut_spec.timeout_s) == ("mon", "pw", 1.5)
    kept = with_secrets(parse_probe_url("nut://me:mine@h/u"), {"username": "mon", "password": "pw"})
    assert isinstance(kept, NutProbe) and (kept.user, kept.password) == ("me", "mine")


def test_unknown_map_in_url() -> None:
    with pytest.raises(m.MapError, match="unknown register map 'nope'"):
        parse_probe_url("modbus://h/1?map=nope")


def test_redact() -> None:
    assert redact_url("nut://u:secret@h:1/x") == "nut://u@h:1/x"
    assert redact_url("snmp://community@h:161") == "snmp://h:161"
    assert redact_url("modbus://h/1?map=x") == "modbus://h/1?map=x"


def test_readings_json_shape() -> None:
    r = PowerReadings(source="nut://h:1/u", kind="ups", readings={"ups.status": "OL", "ups.mfr": "أمانة"})
    doc = json.loads(json.dumps(r.to_json(), ensure_ascii=False))
    assert set(doc) == {"source", "kind", "vendor", "model", "readings", "errors"}


@given(st.sampled_from(["u16", "enum", "s16", "u32", "s32"]), st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=2),
       st.sampled_from(["big", "little"]))
def test_typed_value_is_pymodbus_conversion(rtype: str, words: list[int], order: str) -> None:
    """The decoder's own two's complement gives what pymodbus 3.16's converter gives."""
    from pymodbus.client import ModbusTcpClient

    dt = ModbusTcpClient.DATATYPE
    data_type = {"u16": dt.UINT16, "enum": dt.UINT16, "s16": dt.INT16, "u32": dt.UINT32, "s32": dt.INT32}[rtype]
    words = words if rtype.endswith("32") else words[:1]
    order = order if rtype.endswith("32") else "big"
    expected = int(ModbusTcpClient.convert_from_registers(words, data_type, word_order=order))  # type: ignore[arg-type]
    assert m.typed_value(rtype, words, order) == expected


@given(st.text(alphabet=' \t"\\abVR\r\n\x0b\x0cé', max_size=24))
@settings(max_examples=3000)
def test_parse_line_fast_path_is_the_general_rule(line: str) -> None:
    """The str-method split of ordinary lines gives exactly the character-by-character words."""
    assert nut.parse_line(line) == nut._parse_slow(line.rstrip("\r\n"))
