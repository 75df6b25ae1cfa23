"""The power state machine over canonical readings, and the autonomy/PUE arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra_mgr.power.autonomy import (
    battery_autonomy_h,
    fuel_autonomy_h,
    litres_per_hour,
    pue,
    pue_category,
    usable_litres,
)
from infra_mgr.power.state import DeviceState, classify, transitions

CURVE = {"25": 42, "50": 70, "75": 100, "100": 135}


def kinds(ts: list) -> list[str]:  # type: ignore[type-arg]
    return [t.kind for t in ts]


def test_ups_outage_sequence() -> None:
    online = classify("ups", {"ups.status": "OL CHRG", "battery.charge": 100})
    on_batt = classify("ups", {"ups.status": "OB DISCHRG", "battery.charge": 80, "battery.runtime": 1200})
    low = classify("ups", {"ups.status": "OB DISCHRG LB", "battery.charge": 12})
    assert online == DeviceState("mains", frozenset())
    assert on_batt.state == "battery" and "mains_failed" in on_batt.flags
    assert kinds(transitions("ups1", online, on_batt)) == ["power.mains_failed", "power.on_battery"]
    assert kinds(transitions("ups1", on_batt, low)) == ["power.low_battery"]
    assert kinds(transitions("ups1", low, online)) == ["power.mains_restored", "power.retransfer"]
    assert transitions("ups1", online, online) == []


def test_drups_kinetic_then_diesel() -> None:
    mains = classify("drups", {"drups.mode": "mains", "mains.status": "ok", "engine.state": "stopped",
                               "kinetic.level": 100})
    kinetic = classify("drups", {"drups.mode": "kinetic", "mains.status": "failed", "engine.state": "cranking",
                                 "kinetic.level": 70})
    diesel = classify("drups", {"drups.mode": "diesel", "mains.status": "failed", "engine.state": "on_load",
                                "fuel.day.level": 60})
    assert kinds(transitions("drups", mains, kinetic)) == ["power.mains_failed", "power.on_kinetic",
                                                          "power.diesel_cranking"]
    assert kinds(transitions("drups", kinetic, diesel)) == ["power.diesel_on_load"]
    back = classify("drups", {"drups.mode": "mains", "mains.status": "ok", "engine.state": "cooling"})
    assert kinds(transitions("drups", diesel, back)) == ["power.mains_restored", "power.retransfer"]


def test_other_alarms() -> None:
    assert "on_bypass" in classify("ups", {"ups.status": "BYPASS OL"}).flags
    assert "overload" in classify("ups", {"ups.status": "OL", "ups.load": 104}).flags
    assert "low_fuel" in classify("genset", {"engine.state": "stopped", "fuel.level": 12}).flags
    gen = classify("genset", {"engine.state": "on_load", "output.power": 310})
    assert gen.state == "diesel" and "on_load" in gen.flags
    assert classify("meter", {"meter.voltage": 0, "meter.power": 0}).flags == {"mains_failed"}
    assert classify("ups", {}).state == "unknown"


@given(st.dictionaries(st.sampled_from(["ups.status", "battery.charge", "drups.mode", "engine.state", "fuel.level",
                                        "meter.voltage", "ups.load", "output.power", "mains.status"]),
                       st.one_of(st.none(), st.text(), st.floats(allow_nan=True), st.integers(), st.booleans())),
       st.sampled_from(["ups", "drups", "genset", "meter", "pdu"]))
def test_classify_never_raises(readings: dict, kind: str) -> None:  # type: ignore[type-arg]
    result = classify(kind, readings)
    assert isinstance(result, DeviceState)


def test_fuel_and_battery_autonomy() -> None:
    assert litres_per_hour(CURVE, 50) == 70
    assert litres_per_hour(CURVE, 62.5) == pytest.approx(85)
    assert usable_litres(1000, 100, 0.85) == pytest.approx(850)
    assert usable_litres(1000, 10, 0.85) == 0.0
    # 2,000 L tank at 60 %, 85 % usable → 900 L; at 50 % load 70 L/h → 12.86 h
    assert fuel_autonomy_h(2000, 60, 0.85, CURVE, 50) == pytest.approx(900 / 70)
    assert battery_autonomy_h(1800) == 0.5
    assert battery_autonomy_h(65535) is None and battery_autonomy_h(-1) is None
    assert pue(600, 400) == 1.5 and pue(600, 0) is None and pue(None, 400) is None
    assert pue_category([2, None, 1]) == 1 and pue_category([None]) is None
