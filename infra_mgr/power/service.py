"""Power service: fold each reading into device state, events, outage records and telemetry.

What a reading means is decided by a pure function, :func:`assess`, from what is known of the
device (its status, state, flags and the time of its last good reading) — the same rules whether
the caller is ``apply`` (one reading, one transaction: the device's live state, the events its
change means, and the site's outage record, opened on the first sign of a mains failure, given a
timeline as events happen, closed at retransfer with its figures) or the poller, which keeps that
knowledge in memory and calls ``apply`` only for a reading that changes something. The rest of
every reading (its values, ``last_ok``, the outage's lowest battery and kinetic levels, telemetry
samples) the poller writes once a second for all devices in one transaction
(:meth:`PowerService.flush`). A device that stops answering is marked ``comm_lost`` and its last
readings are kept but never shown as live (``stale``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Engine, bindparam, case, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from infra_mgr.common import UTCDateTime, utcnow
from infra_mgr.db import write_connection, write_session
from infra_mgr.events.service import record
from infra_mgr.power import autonomy
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerNode
from infra_mgr.power.readings import CANONICAL, PowerReadings
from infra_mgr.power.state import DeviceState, Thresholds, Transition, classify, transitions
from infra_mgr.telemetry.models import MetricSample
from infra_mgr.telemetry.store import TelemetryStore

OUTAGE_OPENERS = {"power.mains_failed", "power.on_battery", "power.on_kinetic"}
ON_MAINS = {"mains", "standby", "off", "unknown"}
OUTAGE_LOCK = 0x504F5752  # "POWR": PostgreSQL advisory lock class of a site's outage record


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
    status: str = "ok"
    last_ok: dt.datetime | None = None


@dataclass(frozen=True)
class Known:
    """What is known of a device before a reading: its row's status, state and flags and the time
    of its last good reading (the poller keeps this in memory between readings)."""

    name: str
    kind: str
    status: str = "never"
    state: str = "unknown"
    flags: frozenset[str] = frozenset()
    last_ok: dt.datetime | None = None
    poll_interval_s: float = 1.0

    @classmethod
    def of(cls, dev: PowerDevice) -> Known:
        return cls(dev.name, dev.kind, dev.status, dev.state, frozenset(dev.flags), dev.last_ok, dev.poll_interval_s)


@dataclass(frozen=True)
class Verdict:
    """What a reading means for a device (:func:`assess`)."""

    got_data: bool  # fresh readings (not stale, not empty)
    status: str  # ok | comm_lost | the status it had (no data within the grace period)
    after: DeviceState  # the state and flags the readings give (the known ones without data)
    transitions: tuple[Transition, ...] = ()  # the events, in causal order
    message: str = ""  # the row's message: the reading's problems, or why communication is lost

    def changes(self, known: Known) -> bool:
        """True when the device's row must change in a transaction of its own: events to record,
        or a new status, state or flags (what an outage record and the status view depend on)."""
        return bool(self.transitions) or self.status != known.status or (
            self.got_data and (self.after.state != known.state or self.after.flags != known.flags))


def comm_grace_s(poll_interval_s: float) -> float:
    """How long a device may go without a good reading before it is ``comm_lost``: three poll
    intervals, at least 3 s (the status view shows data this old as live, no older)."""
    return max(3.0, poll_interval_s * 3)


def assess(known: Known, reading: PowerReadings, now: dt.datetime, th: Thresholds | None = None) -> Verdict:
    """What ``reading`` means for a device known as ``known`` (pure: no database, no clock)."""
    got_data = bool(reading.readings) and not reading.stale
    if not got_data:
        before = DeviceState(known.state, known.flags)
        age = (now - known.last_ok).total_seconds() if known.last_ok else None
        if known.status != "comm_lost" and (age is None or age >= comm_grace_s(known.poll_interval_s)):
            why = "; ".join(e.message for e in reading.errors) or ("data stale" if reading.stale else "no data")
            lost = Transition("power.comm_lost", "critical", f"{known.name}: communication lost ({why})")
            return Verdict(False, "comm_lost", before, (lost,), why[:500])
        return Verdict(False, known.status, before)
    after = classify(known.kind, reading.readings, th)
    events = transitions(known.name, DeviceState(known.state, known.flags), after)
    if known.status == "comm_lost":
        events.insert(0, Transition("power.comm_restored", "info", f"{known.name}: answering again"))
    return Verdict(True, "ok", after, tuple(events), "; ".join(e.message for e in reading.errors)[:500])


@dataclass
class LiveRow:
    """A device's latest good reading waiting for the once-a-second write (:meth:`PowerService.flush`),
    with the lowest levels seen since the last write for the site's open outage record, if any."""

    site_id: int | None
    readings: dict[str, Any]
    last_ok: dt.datetime
    message: str
    min_battery_charge: float | None = None
    min_kinetic_level: float | None = None

    def merge(self, newer: LiveRow) -> LiveRow:
        """The newer reading, keeping the lowest levels of both."""
        newer.min_battery_charge = _lowest(self.min_battery_charge, newer.min_battery_charge)
        newer.min_kinetic_level = _lowest(self.min_kinetic_level, newer.min_kinetic_level)
        return newer


def live_row(site_id: int | None, reading: PowerReadings, verdict: Verdict, now: dt.datetime) -> LiveRow:
    """The row a good reading leaves for the batched write; the battery charge counts for an
    outage's minimum only while the device is on battery (as in ``apply``)."""
    r = reading.readings
    charge, kinetic = r.get("battery.charge"), r.get("kinetic.level")
    return LiveRow(site_id, dict(r), now, verdict.message,
                   float(charge) if verdict.after.state == "battery" and _is_number(charge) else None,
                   float(kinetic) if _is_number(kinetic) else None)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lowest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


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
        self._series: dict[tuple[int, str], int] = {}  # (device id, reading) → telemetry series id
        self._flush_statements: dict[str, Any] | None = None

    # ------------------------------------------------------------------ readings

    def apply(self, device_id: int, reading: PowerReadings, now: dt.datetime | None = None, store: bool = True
              ) -> Applied:
        """Fold one reading in, in one transaction; ``store=False`` leaves the samples to the caller
        (the poller batches them). The poller calls this only for readings that change something
        (:meth:`Verdict.changes`); for any other good reading it still writes readings and ``last_ok``."""
        now = now or utcnow()
        # Take the write lock first (SQLite), so readers-turned-writers in concurrent pollers never
        # hit "database is locked" upgrading their transaction.
        with write_session(self.engine) as s:
            dev = s.get(PowerDevice, device_id)
            if dev is None:
                raise LookupError(f"power device {device_id} not found")
            known = Known.of(dev)
            verdict = assess(known, reading, now, self.th)
            result = Applied(device_id, dev.name, dev.state, list(dev.flags), dict(dev.readings), status=dev.status,
                             last_ok=dev.last_ok)
            if not verdict.got_data:
                if verdict.status != known.status:  # communication lost: the last readings are kept
                    dev.status, dev.message = verdict.status, verdict.message
                    s.add(dev)
                    for t in verdict.transitions:
                        self._event(s, dev, t, now, result)
                    s.commit()
                    result.status = dev.status
                return result
            events = list(verdict.transitions)
            if events and events[0].kind == "power.comm_restored":  # recorded with the state it had
                self._event(s, dev, events.pop(0), now, result)
            dev.status = verdict.status
            dev.state = verdict.after.state
            dev.flags = sorted(verdict.after.flags)
            dev.readings = dict(reading.readings)
            dev.message = verdict.message
            dev.last_ok = now
            s.add(dev)
            for t in events:
                self._event(s, dev, t, now, result)
            result.outage_id = self._track_outage(s, dev, verdict.after, result.events, now)
            s.commit()
            result.state, result.flags, result.readings = dev.state, list(dev.flags), dict(dev.readings)
            result.status, result.last_ok = dev.status, dev.last_ok
        if store:
            self.store.write(self.samples(device_id, reading.readings, now))
        return result

    def known(self) -> dict[int, Known]:
        """What the rows say of every device (where a poller starts from)."""
        with Session(self.engine) as s:
            return {d.id or 0: Known.of(d) for d in s.exec(select(PowerDevice)).all()}

    def flush(self, rows: Mapping[int, LiveRow], samples: Iterable[tuple[int, str, int, float]]) -> int:
        """Write, in one transaction, the latest good reading of each device (``readings``,
        ``last_ok``, ``message``), the lowest battery and kinetic levels into the site's open outage
        record, and the telemetry samples (device id, reading name, ms, value). All or nothing, so
        after a crash the rows, the outage record and the telemetry agree with each other; a row
        already holding a newer reading (written by ``apply`` meanwhile), or marked ``comm_lost``
        since, is left alone.
        Returns the number of samples written."""
        samples = list(samples)
        series = self._series
        for dev_id, name, _ts, _v in samples:  # before the transaction: creating one takes its own
            if (dev_id, name) not in series:
                series[dev_id, name] = self.store.series_id("power_device", dev_id, name,
                                                            CANONICAL.get(name, ("", ""))[0])
        statements = self._statements()
        with write_connection(self.engine) as conn:
            if rows:
                conn.execute(statements["device"], [
                    {"b_id": dev_id, "b_readings": row.readings, "b_last_ok": row.last_ok, "b_message": row.message}
                    for dev_id, row in rows.items()])
            for attr in ("min_battery_charge", "min_kinetic_level"):
                lows = [{"b_site": row.site_id, "b_low": low, "b_first": min(low, 100.0)}
                        for row in rows.values() if (low := getattr(row, attr)) is not None]
                if lows:  # an UPDATE that finds no open outage costs an index lookup
                    conn.execute(statements[attr], lows)
            if samples:
                conn.execute(statements["samples"], [{"series_id": series[d, n], "ts_ms": ts, "value": float(v)}
                                                     for d, n, ts, v in samples])
        return len(samples)

    def _statements(self) -> dict[str, Any]:
        """The batched write's statements, built once (it runs every second)."""
        if self._flush_statements is None:
            device = PowerDevice.__table__  # type: ignore[attr-defined]
            outage = Outage.__table__  # type: ignore[attr-defined]
            stamp = bindparam("b_last_ok", type_=UTCDateTime())
            built: dict[str, Any] = {
                # a row marked comm_lost since (by ``apply``) keeps its message and last good reading
                "device": update(device).where(device.c.id == bindparam("b_id"), device.c.status == "ok",
                                               or_(device.c.last_ok.is_(None), device.c.last_ok <= stamp))
                .values(readings=bindparam("b_readings", type_=JSON()), last_ok=stamp, message=bindparam("b_message")),
                "samples": (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(
                    MetricSample.__table__).on_conflict_do_nothing(),  # type: ignore[attr-defined]
            }
            for attr in ("min_battery_charge", "min_kinetic_level"):
                column = outage.c[attr]
                built[attr] = (update(outage)
                               .where(outage.c.site_id.is_not_distinct_from(bindparam("b_site")),
                                      outage.c.status == "open")
                               .values({column: case((column.is_(None), bindparam("b_first")),
                                                     (column > bindparam("b_low"), bindparam("b_low")),
                                                     else_=column)}))
            self._flush_statements = built
        return self._flush_statements

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

    @staticmethod
    def named_samples(device_id: int, readings: dict[str, Any], now: dt.datetime) -> list[tuple[int, str, int, float]]:
        """Telemetry samples (device id, reading name, ms, value) of the numeric readings, for
        :meth:`flush`: no database work (series ids are looked up when the batch is written)."""
        ts = int(now.timestamp() * 1000)
        return [(device_id, name, ts, value) for name, value in _numeric(readings).items()]

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
        if s.get_bind().dialect.name == "postgresql":
            # Two devices of a site failing at once are applied in two transactions: on SQLite
            # BEGIN IMMEDIATE serialises them, here a lock per site does, so one outage is opened.
            s.execute(text("SELECT pg_advisory_xact_lock(:cls, :site)"), {"cls": OUTAGE_LOCK, "site": dev.site_id or 0})
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
            # the poller writes last_ok once a second, so a live device's is at most ~2 s old
            live = d.status == "ok" and age is not None and age <= comm_grace_s(d.poll_interval_s)
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
