"""Power service: fold each reading into device state, events, outage records and telemetry.

One call per reading (``apply``) does, in one transaction: the device's live state, the events its
change means, and the site's outage record (opened on the first sign of a mains failure, given a
timeline as events happen, closed at retransfer with its figures). Numeric readings go to the
telemetry store. A device that stops answering is marked ``comm_lost`` and its last readings are
kept but never shown as live (``stale``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.db import write_session
from infra_mgr.events.service import record
from infra_mgr.power import autonomy
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerNode
from infra_mgr.power.readings import CANONICAL, PowerReadings
from infra_mgr.power.state import DeviceState, Thresholds, Transition, classify, transitions
from infra_mgr.telemetry.store import TelemetryStore

OUTAGE_OPENERS = {"power.mains_failed", "power.on_battery", "power.on_kinetic"}
ON_MAINS = {"mains", "standby", "off", "unknown"}


@dataclass
class Applied:
    """What one reading changed (the poller publishes it to live dashboards)."""

    device_id: int
    name: str
    state: str
    flags: list[str]
    readings: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    outage_id: int | None = None


def _numeric(readings: dict[str, Any]) -> dict[str, float]:
    out = {}
    for k, v in readings.items():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float):
            out[k] = float(v)
    return out


class PowerService:
    def __init__(self, engine: Engine, store: TelemetryStore | None = None, thresholds: Thresholds | None = None
                 ) -> None:
        self.engine = engine
        self.store = store or TelemetryStore(engine)
        self.th = thresholds or Thresholds()

    # ------------------------------------------------------------------ readings

    def apply(self, device_id: int, reading: PowerReadings, now: dt.datetime | None = None, store: bool = True
              ) -> Applied:
        """Fold one reading in; ``store=False`` leaves the samples to the caller (the poller batches them)."""
        now = now or utcnow()
        # A reading always writes: take the write lock first (SQLite), so readers-turned-writers
        # in concurrent pollers never hit "database is locked" upgrading their transaction.
        with write_session(self.engine) as s:
            dev = s.get(PowerDevice, device_id)
            if dev is None:
                raise LookupError(f"power device {device_id} not found")
            before = DeviceState(dev.state, frozenset(dev.flags))
            got_data = bool(reading.readings) and not reading.stale
            result = Applied(device_id, dev.name, dev.state, list(dev.flags), dict(dev.readings))
            if not got_data:
                return self._lost(s, dev, reading, now, result)
            after = classify(dev.kind, reading.readings, self.th)
            if dev.status == "comm_lost":
                self._event(s, dev, Transition("power.comm_restored", "info", f"{dev.name}: answering again"),
                            now, result)
            dev.status = "ok"
            dev.state = after.state
            dev.flags = sorted(after.flags)
            dev.readings = dict(reading.readings)
            dev.message = "; ".join(e.message for e in reading.errors)[:500]
            dev.last_ok = now
            s.add(dev)
            for t in transitions(dev.name, before, after):
                self._event(s, dev, t, now, result)
            result.outage_id = self._track_outage(s, dev, after, result.events, now)
            s.commit()
            result.state, result.flags, result.readings = dev.state, list(dev.flags), dict(dev.readings)
        if store:
            self.store.write(self.samples(device_id, reading.readings, now))
        return result

    def _lost(self, s: Session, dev: PowerDevice, reading: PowerReadings, now: dt.datetime, result: Applied
              ) -> Applied:
        """No fresh data: after the grace period the device is comm_lost and its state unknown."""
        grace = max(3.0, dev.poll_interval_s * 3)
        age = (now - dev.last_ok).total_seconds() if dev.last_ok else None
        if dev.status != "comm_lost" and (age is None or age >= grace):
            why = "; ".join(e.message for e in reading.errors) or ("data stale" if reading.stale else "no data")
            dev.status = "comm_lost"
            dev.message = why[:500]
            s.add(dev)
            self._event(s, dev, Transition("power.comm_lost", "critical", f"{dev.name}: communication lost ({why})"),
                        now, result)
            s.commit()
        return result

    def _event(self, s: Session, dev: PowerDevice, t: Transition, now: dt.datetime, result: Applied) -> None:
        ev = record(s, t.kind, t.message, severity=t.severity, site_id=dev.site_id,
                    data={"power_device_id": dev.id, "power_device": dev.name, "state": dev.state})
        ev.time = now
        result.events.append({"kind": t.kind, "severity": t.severity, "message": t.message,
                              "time": now.isoformat(), "device": dev.name})

    def samples(self, device_id: int, readings: dict[str, Any], now: dt.datetime) -> list[tuple[int, int, float]]:
        """Telemetry samples (series id, ms, value) of the numeric readings."""
        ts = int(now.timestamp() * 1000)
        return [(self.store.series_id("power_device", device_id, name, CANONICAL.get(name, ("", ""))[0]), ts, value)
                for name, value in _numeric(readings).items()]

    # ------------------------------------------------------------------ outages

    def _fuel_pct(self, s: Session, site_id: int | None) -> tuple[float | None, float]:
        """Fuel level (%) of the site's first tank with a reading, and that tank's capacity."""
        tanks = s.exec(select(FuelTank, PowerDevice).join(PowerDevice, PowerDevice.id == FuelTank.power_device_id)
                       .where(PowerDevice.site_id == site_id)).all()
        for tank, dev in tanks:
            level = dev.readings.get(tank.level_reading)
            if isinstance(level, int | float):
                return float(level), tank.capacity_l
        return None, 0.0

    def _track_outage(self, s: Session, dev: PowerDevice, state: DeviceState, events: list[dict[str, Any]],
                      now: dt.datetime) -> int | None:
        outage = s.exec(select(Outage).where(Outage.site_id == dev.site_id, Outage.status == "open")).first()
        kinds = {e["kind"] for e in events}
        if outage is None:
            if not kinds & OUTAGE_OPENERS:
                return None
            fuel, _cap = self._fuel_pct(s, dev.site_id)
            outage = Outage(site_id=dev.site_id, started_at=now, fuel_start_pct=fuel, timeline=[])
            s.add(outage)
            s.flush()
            ev = record(s, "power.outage_started", f"outage started ({dev.name}: {', '.join(sorted(kinds))})",
                        severity="critical", site_id=dev.site_id, data={"outage_id": outage.id})
            ev.time = now
        timeline = list(outage.timeline)
        for e in events:
            timeline.append({"time": e["time"], "kind": e["kind"], "device": e["device"], "message": e["message"]})
            if e["kind"] == "power.diesel_cranking" and outage.diesel_cranking_at is None:
                outage.diesel_cranking_at = now
            if e["kind"] == "power.diesel_on_load" and outage.diesel_on_load_at is None:
                outage.diesel_on_load_at = now
        charge = dev.readings.get("battery.charge")
        if state.state == "battery" and isinstance(charge, int | float):
            outage.min_battery_charge = min(float(charge), outage.min_battery_charge or 100.0)
        kinetic = dev.readings.get("kinetic.level")
        if isinstance(kinetic, int | float):
            outage.min_kinetic_level = min(float(kinetic), outage.min_kinetic_level or 100.0)
        site_devices = s.exec(select(PowerDevice).where(PowerDevice.site_id == dev.site_id,
                                                        col(PowerDevice.enabled).is_(True))).all()
        any_failed = any("mains_failed" in d.flags for d in site_devices)
        if not any_failed and outage.mains_restored_at is None and "power.mains_restored" in kinds:
            outage.mains_restored_at = now
        if not any_failed and all(d.state in ON_MAINS for d in site_devices):
            outage.status = "closed"
            outage.ended_at = now
            outage.mains_restored_at = outage.mains_restored_at or now
            if outage.diesel_on_load_at:
                outage.diesel_run_s = (now - outage.diesel_on_load_at).total_seconds()
            fuel, cap = self._fuel_pct(s, dev.site_id)
            outage.fuel_end_pct = fuel
            if fuel is not None and outage.fuel_start_pct is not None and cap:
                outage.fuel_used_l = round(max(0.0, outage.fuel_start_pct - fuel) / 100.0 * cap, 1)
            timeline.append({"time": now.isoformat(), "kind": "power.outage_ended", "device": dev.name,
                             "message": "all power devices back on mains"})
            ev = record(s, "power.outage_ended", "outage ended: every device back on mains", severity="info",
                        site_id=dev.site_id, data={"outage_id": outage.id})
            ev.time = now
        outage.timeline = timeline
        s.add(outage)
        return outage.id

    # ------------------------------------------------------------------ views

    def status(self, now: dt.datetime | None = None) -> list[dict[str, Any]]:
        """Every power device with its state, key readings, autonomy and data age."""
        now = now or utcnow()
        with Session(self.engine) as s:
            devices = s.exec(select(PowerDevice).order_by(PowerDevice.name)).all()
            tanks = {t.power_device_id: t for t in s.exec(select(FuelTank)).all()}
        out = []
        for d in devices:
            age = (now - d.last_ok).total_seconds() if d.last_ok else None
            live = d.status == "ok" and age is not None and age <= max(3.0, d.poll_interval_s * 3)
            r = d.readings
            item: dict[str, Any] = {
                "id": d.id, "name": d.name, "kind": d.kind, "site_id": d.site_id, "status": d.status,
                "state": d.state if live else "unknown", "flags": d.flags, "live": live,
                "data_age_s": round(age, 1) if age is not None else None,
                "readings": {k: r.get(k) for k in KEY_READINGS.get(d.kind, ()) if k in r},
                "battery_autonomy_h": None, "fuel_autonomy_h": None,
            }
            if isinstance(r.get("battery.runtime"), int | float):
                item["battery_autonomy_h"] = _round(autonomy.battery_autonomy_h(float(r["battery.runtime"])))
            tank = tanks.get(d.id or 0)
            level = r.get(tank.level_reading) if tank else None
            if tank and isinstance(level, int | float):
                load = _load_pct(r, tank.rated_kw)
                item["fuel_autonomy_h"] = _round(autonomy.fuel_autonomy_h(
                    tank.capacity_l, float(level), tank.usable_fraction, tank.curve, load))
                item["fuel_load_pct"] = round(load, 1)
            out.append(item)
        return out

    def pue_now(self) -> dict[str, Any]:
        with Session(self.engine) as s:
            rows = s.exec(select(PowerNode, PowerDevice).join(PowerDevice, PowerDevice.id == PowerNode.power_device_id)
                          .where(PowerNode.pue_role != "none")).all()
        facility = it = 0.0
        have_f = have_i = False
        cats: list[int | None] = []
        for node, dev in rows:
            kw = _power_kw(dev.readings, node.capacity_kw)
            if kw is None or dev.status != "ok":
                continue
            if node.pue_role == "facility":
                facility += kw
                have_f = True
            else:
                it += kw
                have_i = True
                cats.append(node.it_category)
        value = autonomy.pue(facility if have_f else None, it if have_i else None)
        return {"pue": round(value, 3) if value else None, "facility_kw": round(facility, 2) if have_f else None,
                "it_kw": round(it, 2) if have_i else None, "category": autonomy.pue_category(cats)}


KEY_READINGS: dict[str, tuple[str, ...]] = {
    "ups": ("ups.status", "battery.charge", "battery.runtime", "input.voltage", "output.voltage", "ups.load"),
    "drups": ("drups.mode", "mains.status", "kinetic.level", "engine.state", "engine.rpm", "fuel.day.level",
              "fuel.main.level", "output.power"),
    "genset": ("engine.state", "engine.rpm", "fuel.level", "output.power", "engine.load", "engine.battery.voltage"),
    "meter": ("meter.power", "meter.voltage", "meter.energy"),
    "pdu": ("output.current", "output.power", "ups.load"),
    "ats": ("ups.status", "input.voltage"),
}


def _round(value: float | None) -> float | None:
    return round(value, 2) if value is not None else None


def _load_pct(r: dict[str, Any], rated_kw: float) -> float:
    for name in ("engine.load", "ups.load"):
        if isinstance(r.get(name), int | float):
            return float(r[name])
    power = r.get("output.power")
    if isinstance(power, int | float) and rated_kw:
        return float(power) / rated_kw * 100.0
    return 50.0


def _power_kw(r: dict[str, Any], capacity_kw: float | None) -> float | None:
    for name, factor in (("meter.power", 1.0), ("output.power", 1.0), ("ups.realpower", 0.001)):
        if isinstance(r.get(name), int | float):
            return float(r[name]) * factor
    if isinstance(r.get("ups.load"), int | float) and capacity_kw:
        return float(r["ups.load"]) / 100.0 * capacity_kw
    return None
