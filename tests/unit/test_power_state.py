"""The power state machine over canonical readings, and the autonomy/PUE arithmetic."""

from __future__ import annotations

import datetime as dt

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
from infra_mgr.power.readings import PowerProblem, PowerReadings
from infra_mgr.power.service import Known, assess, comm_grace_s, live_row
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


# --- what a reading means, without the database (the poller's in-memory classification) ----------

def _reading(**values: object) -> PowerReadings:
    return PowerReadings(source="test", readings={k.replace("_", "."): v for k, v in values.items()})


T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
ONLINE = Known("ups1", "ups", "ok", "mains", frozenset(), T0)


def test_an_unchanged_reading_needs_no_transaction() -> None:
    verdict = assess(ONLINE, _reading(ups_status="OL CHRG", battery_charge=99), T0 + dt.timedelta(seconds=1))
    assert verdict.got_data and not verdict.transitions and not verdict.changes(ONLINE)


def test_a_change_is_its_events_in_causal_order() -> None:
    verdict = assess(ONLINE, _reading(ups_status="OB DISCHRG", battery_charge=97), T0 + dt.timedelta(seconds=1))
    assert verdict.changes(ONLINE) and verdict.after.state == "battery"
    assert kinds(list(verdict.transitions)) == ["power.mains_failed", "power.on_battery"]
    first = Known("ups1", "ups")  # never read: the first good reading sets the status
    assert assess(first, _reading(ups_status="OL"), T0).changes(first)


def test_silence_is_comm_lost_only_after_the_grace_period() -> None:
    dead = PowerReadings(source="test", errors=[PowerProblem("test", "read", "timeout", "no answer")])
    within = assess(ONLINE, dead, T0 + dt.timedelta(seconds=2))
    assert not within.got_data and not within.changes(ONLINE) and within.status == "ok"
    lost = assess(ONLINE, dead, T0 + dt.timedelta(seconds=comm_grace_s(1.0)))
    assert lost.status == "comm_lost" and kinds(list(lost.transitions)) == ["power.comm_lost"]
    assert "no answer" in lost.message and lost.changes(ONLINE)
    gone = Known("ups1", "ups", "comm_lost", "mains", frozenset(), T0)
    stale = PowerReadings(source="test", readings={"ups.status": "OL"}, stale=True)
    assert not assess(gone, stale, T0 + dt.timedelta(seconds=60)).changes(gone)  # lost once, not again
    back = assess(gone, _reading(ups_status="OB"), T0 + dt.timedelta(seconds=61))
    assert kinds(list(back.transitions)) == ["power.comm_restored", "power.mains_failed", "power.on_battery"]


def test_live_row_counts_the_charge_only_on_battery() -> None:
    on_line = _reading(ups_status="OL", battery_charge=80, kinetic_level=90)
    row = live_row(1, on_line, assess(ONLINE, on_line, T0), T0)
    assert row.min_battery_charge is None and row.min_kinetic_level == 90
    on_batt = _reading(ups_status="OB", battery_charge=70)
    later = live_row(1, on_batt, assess(ONLINE, on_batt, T0), T0 + dt.timedelta(seconds=1))
    merged = row.merge(later)
    assert merged.min_battery_charge == 70 and merged.min_kinetic_level == 90 and merged.last_ok > T0
