"""What a power device is doing, derived from its canonical readings, and the events a change means.

Pure functions over ``PowerReadings.readings`` (NUT names), so the same rules hold whether the
values came over SNMP, NUT or Modbus. The vendor differences were already absorbed by the
collectors' maps; here only the meaning of the canonical names lives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATES = ("mains", "battery", "kinetic", "diesel", "bypass", "standby", "off", "unknown")


@dataclass(frozen=True)
class Thresholds:
    """Alert defaults from common practice (DOMAIN.md); per-site tuning can override them."""

    battery_low_pct: float = 15.0
    runtime_low_s: float = 300.0
    fuel_low_pct: float = 20.0
    overload_pct: float = 100.0
    mains_min_v: float = 100.0


@dataclass(frozen=True)
class DeviceState:
    state: str = "unknown"
    flags: frozenset[str] = field(default_factory=frozenset)


def _num(readings: dict[str, Any], name: str) -> float | None:
    value = readings.get(name)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(readings: dict[str, Any], name: str) -> str:
    value = readings.get(name)
    return str(value).strip().lower() if value is not None else ""


def classify(kind: str, readings: dict[str, Any], th: Thresholds | None = None) -> DeviceState:
    th = th or Thresholds()
    flags: set[str] = set()
    state = "unknown"
    status = set(str(readings.get("ups.status") or "").upper().split())
    if kind in ("ups", "pdu", "ats") and status:
        if "OFF" in status:
            state = "off"
        elif "BYPASS" in status:
            state = "bypass"
        elif "OB" in status:
            state = "battery"
        elif "OL" in status:
            state = "mains"
        if "OB" in status:
            flags.add("mains_failed")
        if "LB" in status:
            flags.add("low_battery")
        if "OVER" in status:
            flags.add("overload")
        if "RB" in status:
            flags.add("replace_battery")
    elif kind == "drups":
        mode = _text(readings, "drups.mode")
        state = {"mains": "mains", "kinetic": "kinetic", "diesel": "diesel", "bypass": "bypass",
                 "off": "off"}.get(mode, "unknown")
        if _text(readings, "mains.status") in ("failed", "fail", "lost", "off") or mode in ("kinetic", "diesel"):
            flags.add("mains_failed")
    elif kind == "genset":
        engine = _text(readings, "engine.state")
        power = _num(readings, "output.power") or 0.0
        if engine in ("running", "on_load", "warming") and power > 0:
            state = "diesel"
        elif engine:
            state = "standby"
        if engine == "fault":
            flags.add("engine_fault")
    elif kind == "meter":
        volts = _num(readings, "meter.voltage")
        meter_power = _num(readings, "meter.power")
        if volts is not None:
            state = "mains" if volts >= th.mains_min_v else "off"
        elif meter_power is not None:
            state = "mains" if meter_power > 0 else "off"
        if state == "off":
            flags.add("mains_failed")
    engine = _text(readings, "engine.state")
    if engine in ("cranking", "prestart"):
        flags.add("cranking")
    if engine in ("running", "on_load") and state == "diesel":
        flags.add("on_load")
    charge = _num(readings, "battery.charge")
    runtime = _num(readings, "battery.runtime")
    if state == "battery" and ((charge is not None and charge <= th.battery_low_pct)
                               or (runtime is not None and runtime <= th.runtime_low_s)):
        flags.add("low_battery")
    for name in ("fuel.level", "fuel.day.level"):
        level = _num(readings, name)
        if level is not None and level <= th.fuel_low_pct:
            flags.add("low_fuel")
    load = _num(readings, "ups.load") or _num(readings, "engine.load")
    if load is not None and load > th.overload_pct:
        flags.add("overload")
    if state == "bypass":
        flags.add("on_bypass")
    return DeviceState(state, frozenset(flags))


# (flag that appeared, event kind, severity); (flag that went away, …)
_FLAG_RISE = (
    ("mains_failed", "power.mains_failed", "critical"),
    ("cranking", "power.diesel_cranking", "warning"),
    ("on_load", "power.diesel_on_load", "warning"),
    ("low_battery", "power.low_battery", "critical"),
    ("low_fuel", "power.low_fuel", "critical"),
    ("overload", "power.overload", "critical"),
    ("engine_fault", "power.engine_fault", "critical"),
    ("replace_battery", "power.replace_battery", "warning"),
)
_FLAG_FALL = (("mains_failed", "power.mains_restored", "info"),)
_STATE_ENTER = {
    "battery": ("power.on_battery", "critical"),
    "kinetic": ("power.on_kinetic", "warning"),
    "bypass": ("power.on_bypass", "warning"),
}


@dataclass(frozen=True)
class Transition:
    kind: str
    severity: str
    message: str
    # What the event's sentence needs beyond the device's name (stored in the event's data, so a
    # page can say it in the reader's language: infra_mgr.events.messages).
    data: dict[str, str] = field(default_factory=dict)


def transitions(name: str, before: DeviceState, after: DeviceState) -> list[Transition]:
    """Events that the change ``before`` → ``after`` of device ``name`` means, in causal order."""
    out: list[Transition] = []
    for flag, kind, sev in _FLAG_RISE:
        if flag == "mains_failed" and flag in after.flags and flag not in before.flags:
            out.append(Transition(kind, sev, f"{name}: mains failed"))
    if after.state != before.state and after.state in _STATE_ENTER:
        kind, sev = _STATE_ENTER[after.state]
        out.append(Transition(kind, sev, f"{name}: {before.state} → {after.state}"))
    for flag, kind, sev in _FLAG_RISE:
        if flag != "mains_failed" and flag in after.flags and flag not in before.flags:
            out.append(Transition(kind, sev, f"{name}: {flag.replace('_', ' ')}"))
    for flag, kind, sev in _FLAG_FALL:
        if flag in before.flags and flag not in after.flags:
            out.append(Transition(kind, sev, f"{name}: mains restored"))
    if after.state == "mains" and before.state in ("battery", "kinetic", "diesel", "bypass"):
        out.append(Transition("power.retransfer", "info", f"{name}: back on mains from {before.state}",
                              {"from_state": before.state}))
    return out


def comm_grace_s(poll_interval_s: float) -> float:
    """How long a device may go without a good reading before it is ``comm_lost``: three poll
    intervals, at least 3 s (the read views show data this old as live, no older)."""
    return max(3.0, poll_interval_s * 3)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def load_of(readings: dict[str, Any], capacity_kw: float | None) -> tuple[float | None, float | None]:
    """(kW, load %) a device delivers, unrounded: the one rule behind PUE, the fuel curve's load,
    the dashboard's gauges and chain, and the live stream.

    kW from the first of ``meter.power``, ``output.power`` (kW) or ``ups.realpower`` (W). The load
    is what the device delivers over what it can deliver: kW ÷ ``capacity_kw`` whenever both are
    known, so a card's load and power always agree (a DRUPS on mains reports ``engine.load`` 0 —
    its engine is idle — while its output carries the hall). Only without one of them does the
    device's own ``ups.load`` or ``engine.load`` stand in, and give the kW through ``capacity_kw``."""
    kw = _number(readings.get("meter.power"))
    if kw is None:
        kw = _number(readings.get("output.power"))
    if kw is None and (watts := _number(readings.get("ups.realpower"))) is not None:
        kw = watts / 1000.0
    if kw is not None and capacity_kw:
        return kw, kw / capacity_kw * 100.0
    pct = _number(readings.get("ups.load"))
    if pct is None:
        pct = _number(readings.get("engine.load"))
    if kw is None and pct is not None and capacity_kw:
        kw = pct / 100.0 * capacity_kw
    return kw, pct
