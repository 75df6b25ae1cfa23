"""The contract between power collectors and the power service: readings under canonical names.

Names follow NUT's (``ups.status``, ``battery.charge``, ``battery.runtime`` …) so anyone who knows
NUT knows ours; gensets, DRUPS and meters add ``engine.*``, ``fuel.*``, ``kinetic.*``, ``mains.*``,
``output.*`` and ``meter.*`` names, listed in ``CANONICAL`` with their unit and documented in
``docs/power.md``. A collector returns plain values in these units (after scaling), or ``None`` when a
source says "not available"; it never touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Value = float | int | str | None
DeviceKind = Literal["ups", "drups", "genset", "ats", "pdu", "meter"]

# name -> (unit, meaning). Units: V, A, Hz, %, s, W, VA, kW, kWh, °C, kPa, L, rpm, count, text.
# Rack PDUs and ATSs use NUT's device and input/outlet collections (device.model, input.realpower,
# input.source …); a per-phase or per-input variant (input.L1.current, input.2.voltage) shares its
# base name's unit (see power/collectors/maps.py: canonical_base).
CANONICAL: dict[str, tuple[str, str]] = {
    "ups.status": ("text", "NUT status flags: OL OB LB HB RB CHRG DISCHRG BYPASS CAL OFF OVER TRIM BOOST FSD"),
    "ups.load": ("%", "output load as a percentage of capacity"),
    "ups.alarm": ("text", "active alarms, separated by '; '"),
    "ups.model": ("text", "model name"),
    "ups.mfr": ("text", "manufacturer"),
    "ups.serial": ("text", "serial number"),
    "ups.realpower": ("W", "real output power"),
    "battery.charge": ("%", "battery state of charge"),
    "battery.runtime": ("s", "estimated runtime on battery at the present load"),
    "battery.voltage": ("V", "battery voltage"),
    "battery.temperature": ("°C", "battery temperature"),
    "battery.status": ("text", "normal | low | depleted | unknown"),
    "battery.replace": ("text", "yes when the battery needs replacing"),
    "input.voltage": ("V", "input (mains) voltage"),
    "input.frequency": ("Hz", "input frequency"),
    "input.transfer.reason": ("text", "cause of the last transfer to battery"),
    "input.current": ("A", "input current (PDU; per phase: input.L1.current …)"),
    "input.realpower": ("W", "real input power (PDU)"),
    "input.power": ("VA", "apparent input power (PDU)"),
    "input.energy": ("kWh", "energy counter of the input (PDU)"),
    "input.phases": ("count", "number of input phases"),
    "input.source": ("text", "A | B: the input an ATS feeds the load from"),
    "input.source.preferred": ("text", "A | B | none: the ATS's preferred input"),
    "ats.redundancy": ("text", "redundant | lost (lost: only one ATS input is usable)"),
    "outlet.count": ("count", "number of outlets (PDU)"),
    "device.model": ("text", "model name (PDU, ATS: NUT's device collection)"),
    "device.serial": ("text", "serial number (PDU, ATS)"),
    "output.voltage": ("V", "output voltage"),
    "output.current": ("A", "output current"),
    "output.frequency": ("Hz", "output frequency"),
    "output.source": ("text", "normal | battery | bypass | booster | reducer | none | other"),
    "output.power": ("kW", "output active power (DRUPS, genset)"),
    "output.realpower": ("W", "real output power (ATS)"),
    "mains.status": ("text", "ok | failed (per feed: mains.1.status, mains.2.status)"),
    "mains.voltage": ("V", "mains voltage at the intake"),
    "drups.mode": ("text", "mains | diesel | bypass | kinetic | off"),
    "kinetic.level": ("%", "kinetic energy store (rotor speed / energy) as a percentage"),
    "clutch.state": ("text", "engaged | disengaged"),
    "engine.state": ("text", "stopped | prestart | cranking | warming | running | on_load | cooling | fault"),
    "engine.rpm": ("rpm", "engine speed"),
    "engine.oil.pressure": ("kPa", "oil pressure"),
    "engine.coolant.temperature": ("°C", "coolant temperature"),
    "engine.oil.temperature": ("°C", "oil temperature"),
    "engine.battery.voltage": ("V", "starter battery voltage"),
    "engine.runtime": ("s", "total engine run time"),
    "engine.starts": ("count", "number of starts"),
    "engine.load": ("%", "engine load"),
    "engine.mode": ("text", "stop | auto | manual | test | off"),
    "engine.alarm": ("text", "active alarms"),
    "fuel.level": ("%", "fuel level of the (day) tank"),
    "fuel.day.level": ("%", "day tank level"),
    "fuel.main.level": ("%", "main tank level"),
    "generator.frequency": ("Hz", "generator output frequency"),
    "generator.voltage": ("V", "generator L1-N voltage"),
    "generator.energy": ("kWh", "energy delivered"),
    "transfer.count": ("count", "transfers to diesel/battery since reset"),
    "meter.power": ("kW", "active power at a meter (facility intake or IT)"),
    "meter.energy": ("kWh", "energy counter at a meter"),
    "meter.voltage": ("V", "voltage at a meter"),
}


@dataclass
class PowerProblem:
    source: str
    operation: str
    kind: str  # timeout | refused | auth | unknown_ups | stale | bad_value | sentinel | decode | error
    message: str


@dataclass
class PowerReadings:
    """One read of one power device (the shape of ``infra-mgr power probe --json``)."""

    source: str  # the URL read, with any password removed
    kind: DeviceKind | None = None
    vendor: str | None = None
    model: str | None = None
    readings: dict[str, Value] = field(default_factory=dict)
    errors: list[PowerProblem] = field(default_factory=list)
    stale: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "vendor": self.vendor, "model": self.model,
                "readings": dict(self.readings), "errors": [e.__dict__ for e in self.errors]}
