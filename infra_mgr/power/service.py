"""Power service: fold each reading into device state, events, outage records and telemetry.

What a reading means is decided once, by a pure function, :func:`assess`, from what is known of the
device (its status, state, flags and the time of its last good reading). The poller keeps that
knowledge in memory (a :class:`Tracker` per device), so the judgement happens there, without the
database; a reading that changes something becomes a :class:`Change`, which :meth:`PowerService.record`
writes as judged in one transaction: the device's live state, the events its change means, and the
site's outage record (opened on the first sign of a mains failure, given a timeline as events
happen, closed at retransfer with its figures). ``apply`` judges one reading against the row, for
callers that keep nothing in memory. The rest of every reading (its values, ``last_ok``, the
outage's lowest battery and kinetic levels, telemetry samples) the poller writes once a second for
all devices in one transaction (:meth:`PowerService.flush`). A device that stops answering is
marked ``comm_lost`` and its last readings are kept but never shown as live (``stale``). What the
rows mean to a reader (live or stale, load, tone, PUE) is the read side's: ``power/views.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from sqlalchemy import JSON, Engine, bindparam, case, or_, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from infra_mgr.common import UTCDateTime, utcnow
from infra_mgr.db import write_connection, write_session
from infra_mgr.events.service import record
from infra_mgr.inventory.models import Site
from infra_mgr.power.models import FuelTank, Outage, PowerDevice
from infra_mgr.power.readings import CANONICAL, PowerReadings
from infra_mgr.power.state import DeviceState, Thresholds, Transition, classify, comm_grace_s, transitions
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


def assess(known: Known, reading: PowerReadings, now: dt.datetime, th: Thresholds | None = None) -> Verdict:
    """What ``reading`` means for a device known as ``known`` (pure: no database, no clock)."""
    got_data = bool(reading.readings) and not reading.stale
    if not got_data:
        before = DeviceState(known.state, known.flags)
        age = (now - known.last_ok).total_seconds() if known.last_ok else None
        if known.status != "comm_lost" and (age is None or age >= comm_grace_s(known.poll_interval_s)):
            why = "; ".join(e.message for e in reading.errors) or ("data stale" if reading.stale else "no data")
            lost = Transition("power.comm_lost", "critical", f"{known.name}: communication lost ({why})",
                              {"reason": why[:200]})
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


@dataclass(frozen=True)
class Change:
    """A reading that changes a device's row, as a :class:`Tracker` judged it: handed to
    :meth:`PowerService.record`, which writes it without judging it again."""

    device_id: int
    reading: PowerReadings
    verdict: Verdict
    now: dt.datetime


@dataclass(frozen=True)
class Observation:
    """What one reading means for a tracked device: the change to write at once (``None`` when
    only values moved) and its row for the once-a-second write (``None`` without fresh data)."""

    got_data: bool
    change: Change | None
    row: LiveRow | None


class Tracker:
    """What is known of one device between its readings (the poller keeps one per device loop):
    each reading is judged here once, without the database."""

    def __init__(self, device_id: int, site_id: int | None, known: Known, readings: dict[str, Any],
                 th: Thresholds | None = None) -> None:
        self.device_id, self.site_id, self.known, self.readings = device_id, site_id, known, readings
        self.th = th

    def observe(self, reading: PowerReadings, now: dt.datetime) -> Observation:
        verdict = assess(self.known, reading, now, self.th)
        change = Change(self.device_id, reading, verdict, now) if verdict.changes(self.known) else None
        row = None
        if verdict.got_data:
            if change is None:
                self.known = replace(self.known, last_ok=now)
            self.readings = reading.readings
            row = live_row(self.site_id, reading, verdict, now)
        return Observation(verdict.got_data, change, row)

    def settle(self, applied: Applied) -> None:
        """What the row says once a change is written."""
        self.known = replace(self.known, status=applied.status, state=applied.state,
                             flags=frozenset(applied.flags), last_ok=applied.last_ok)


def _is_number(value: Any) -> TypeGuard[int | float]:
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
        """Fold one reading in, in one transaction, judged against the device's row (for callers
        that keep nothing in memory); ``store=False`` leaves the samples to the caller."""
        now = now or utcnow()
        # Take the write lock first (SQLite), so readers-turned-writers in concurrent pollers never
        # hit "database is locked" upgrading their transaction.
        with write_session(self.engine) as s:
            dev = self._device(s, device_id)
            result = self._write(s, dev, assess(Known.of(dev), reading, now, self.th), reading, now)
        if store and reading.readings and not reading.stale:  # as judged: a good reading
            self.store.write(self.samples(device_id, reading.readings, now))
        return result

    def tracker(self, dev: PowerDevice) -> Tracker:
        """Where a poller starts from for ``dev``: what its row says."""
        return Tracker(dev.id or 0, dev.site_id, Known.of(dev), dict(dev.readings), self.th)

    def record(self, change: Change) -> Applied:
        """Write a change a :class:`Tracker` found, as it found it (no second judgement): the
        device's status, state, flags and readings, its events and the site's outage record."""
        with write_session(self.engine) as s:
            return self._write(s, self._device(s, change.device_id), change.verdict, change.reading, change.now)

    @staticmethod
    def _device(s: Session, device_id: int) -> PowerDevice:
        dev = s.get(PowerDevice, device_id)
        if dev is None:
            raise LookupError(f"power device {device_id} not found")
        return dev

    def _write(self, s: Session, dev: PowerDevice, verdict: Verdict, reading: PowerReadings, now: dt.datetime
               ) -> Applied:
        result = Applied(dev.id or 0, dev.name, dev.state, list(dev.flags), dict(dev.readings), status=dev.status,
                         last_ok=dev.last_ok)
        if not verdict.got_data:
            if verdict.status != dev.status:  # communication lost: the last readings are kept
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
        return result

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
            device = PowerDevice.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
            outage = Outage.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
            stamp = bindparam("b_last_ok", type_=UTCDateTime())
            built: dict[str, Any] = {
                # a row marked comm_lost since (by ``apply``) keeps its message and last good reading
                "device": update(device).where(device.c.id == bindparam("b_id"), device.c.status == "ok",
                                               or_(device.c.last_ok.is_(None), device.c.last_ok <= stamp))
                .values(readings=bindparam("b_readings", type_=JSON()), last_ok=stamp, message=bindparam("b_message")),
                "samples": (postgresql if self.engine.dialect.name == "postgresql" else sqlite).insert(
                    MetricSample.__table__).on_conflict_do_nothing(),  # type: ignore[attr-defined]  # no __table__ in SQLModel
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
                    data={**t.data, "power_device_id": dev.id, "power_device": dev.name, "state": dev.state})
        ev.time = now
        result.events.append({"kind": t.kind, "severity": t.severity, "message": t.message,
                              "time": now.isoformat(), "device": dev.name, "data": dict(t.data)})

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
        tanks = s.exec(select(FuelTank, PowerDevice)
                       .join(PowerDevice, col(PowerDevice.id) == col(FuelTank.power_device_id))
                       .where(col(PowerDevice.site_id) == site_id)).all()
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
            site = s.get(Site, dev.site_id) if dev.site_id else None
            ev = record(s, "power.outage_started", f"outage started ({dev.name}: {', '.join(sorted(kinds))})",
                        severity="critical", site_id=dev.site_id,
                        data={"outage_id": outage.id, "power_device": dev.name, "site": site.code if site else ""})
            ev.time = now
        timeline = list(outage.timeline)
        for e in events:
            timeline.append({"time": e["time"], "kind": e["kind"], "device": e["device"], "message": e["message"],
                             "data": e.get("data") or {}})
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
