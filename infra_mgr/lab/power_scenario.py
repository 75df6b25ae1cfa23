"""The lab's data-centre power plant during a mains outage: one deterministic, time-driven model.

Every power peer of the lab (NUT, Modbus DSE/DRUPS/meters, SNMP UPS agents) runs in its own process
and computes what it serves from this module, the wall clock and one small file,
``<lab_dir>/outage.json``, so they all tell the same story at the same instant::

    {"started_at": 1717000000.0, "ended_at": null, "fuel_scale": 1.0, "totals": {...}}

``infra-mgr lab outage start`` writes ``started_at`` (mains fails now), ``stop`` writes
``ended_at`` (mains returns now); ``totals`` carries the counters of earlier outages (engine starts,
run time, fuel burnt, energy not drawn from the utility) so counters never go backwards.

The plant (see :class:`Plant`; times are compressed for the lab, loads are a plausible mid-size
municipal data centre on Saudi 60 Hz mains, so engines run at 1800 rpm):

* **Utility intake** with a facility power meter (``meter-facility``): IT + cooling + auxiliaries +
  losses while the intake feeds them, 0 kW on outage.
* **DRUPS** (Euro-Diesel NO-BREAK KS style, ``drups``) carrying the IT hall. Mains fails at ``t0``:
  the input breaker opens and the kinetic store carries the load (``drups.mode`` ``kinetic``,
  ``kinetic.level`` falls); the diesel cranks at ``t0+0.5 s`` (rpm ramps to 1800 by ``t0+2.5 s``)
  and clutches in at ``t0+3 s`` (mode ``diesel``; the kinetic store recharges). Mains returns at
  ``t1``: after ``retransfer_wait`` the load goes back to mains, the engine runs unloaded for
  ``cooldown`` and stops. No break for the IT load at any time.
* **Standby generator** with a DSE controller (``dse``), NFPA 110 Type 10: pre-start at ``t0+1 s``,
  cranks, reaches speed at ``t0+3 s``, warms up, and the ATS puts the panel (static UPSs, cooling,
  auxiliaries) on it at ``t0+8 s``; back to mains ``retransfer_wait`` after ``t1``, then cools
  down and stops.
* **Static UPSs** (``ups:dc-ups1`` NUT, ``ups:dc-ups2`` APC SNMP, ``ups:dc-ups3`` RFC 1628 SNMP)
  on that panel: ``OB DISCHRG`` from ``t0`` until the generator (or mains) feeds the panel, the
  battery charge falling with a runtime estimate, then ``OL CHRG`` while recharging, then ``OL``.
* An **IT meter** at the UPS outputs (``meter-it``): the sum of the DRUPS and static UPS outputs at
  the same instant, constant through the outage (no break). The UPS outputs themselves are the
  chain's IT side for PUE (category 1), so the PUE note adds up to the UPS cards, and the
  facility meter reads their inputs plus losses, cooling and auxiliaries.

Fuel consumption follows the engine's curve (L/h at 0/25/50/75/100 % load, e.g. 12/42/70/100/135
for a 500 kW set), multiplied by the outage's ``fuel_scale`` (1 = real; a demo or a test uses e.g.
120 to see the tanks fall within seconds). Readings use the canonical names of
:mod:`infra_mgr.power.readings` and their units.

Why one file of ~650 lines: it is one physical model (mains, UPS, DRUPS, generator, fuel, meters)
whose parts compute from each other at the same instant; every power peer reads it whole.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

OUTAGE_FILE = "outage.json"
ENERGY_EPOCH = 1_704_067_200.0  # 2024-01-01T00:00:00Z: energy counters count from here
INF = math.inf

Readings = dict[str, float | int | str | None]


# --- the plant -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EngineCurve:
    """Fuel consumption (L/h) of an engine at 0/25/50/75/100 % load."""

    points: tuple[tuple[float, float], ...] = ((0, 12.0), (25, 42.0), (50, 70.0), (75, 100.0), (100, 135.0))

    def litres_per_hour(self, load_percent: float) -> float:
        """Linear interpolation on the curve (clamped to its ends)."""
        pct = min(max(load_percent, self.points[0][0]), self.points[-1][0])
        for (x0, y0), (x1, y1) in zip(self.points, self.points[1:], strict=False):
            if pct <= x1:
                return y0 + (y1 - y0) * (pct - x0) / (x1 - x0)
        return self.points[-1][1]


@dataclass(frozen=True)
class UpsProfile:
    """One static UPS on the generator-backed panel."""

    name: str
    mfr: str
    model: str
    serial: str
    firmware: str
    capacity_w: float
    load_w: float
    full_runtime_s: float  # runtime on a full battery at ``load_w``
    recharge_s: float  # time to recharge from empty (the lab's, compressed)
    battery_nominal_v: float
    efficiency: float = 0.94


@dataclass(frozen=True)
class Plant:
    """Loads, capacities, tanks and the (lab-compressed) timeline of the data centre's power."""

    mains_voltage: float = 230.0
    mains_frequency: float = 60.0
    rated_rpm: float = 1800.0  # 4-pole synchronous machine at 60 Hz
    it_drups_kw: float = 300.0  # IT hall on the DRUPS
    cooling_kw: float = 140.0  # chillers/CRAHs on the generator-backed panel
    aux_kw: float = 12.0  # lighting, BMS, security
    drups_rated_kw: float = 500.0
    drups_loss_fixed_kw: float = 6.0  # flywheel/rotor losses
    drups_loss_ratio: float = 0.04
    genset_rated_kw: float = 500.0
    curve: EngineCurve = field(default_factory=EngineCurve)
    drups_day_tank_l: float = 600.0
    drups_day_fill_l: float = 540.0  # 90 % before any outage
    drups_main_tank_l: float = 10_000.0
    drups_main_fill_l: float = 8_200.0
    genset_tank_l: float = 1_000.0
    genset_fill_l: float = 850.0
    # timeline (seconds after mains fails, or after it returns)
    drups_crank_after: float = 0.5
    drups_ramp: float = 2.0
    drups_clutch_after: float = 3.0
    kinetic_drain_per_s: float = 7.0  # % per second while the store carries the load
    kinetic_recharge_per_s: float = 2.5
    genset_prestart_after: float = 1.0
    genset_crank_after: float = 1.5
    genset_ramp: float = 1.5
    genset_on_load_after: float = 8.0  # ATS transfer: NFPA 110 Type 10
    retransfer_wait: float = 5.0  # mains must be stable this long before retransfer
    cooldown: float = 10.0  # engine runs unloaded before it stops
    spin_down: float = 3.0
    # counters before the lab's first outage
    drups_run_hours: float = 1_412.0
    drups_starts: int = 212
    drups_transfers: int = 37
    genset_run_hours: float = 873.0
    genset_starts: int = 158
    genset_energy_kwh: float = 96_540.0


DC_UPS1 = UpsProfile("dc-ups1", "Eaton", "9PX 11000i", "GA21L43210", "02.14.0048", 10_000, 5_500, 1_080, 3_600, 240.0)
DC_UPS2 = UpsProfile(
    "dc-ups2", "APC", "Smart-UPS SRT 10000", "AS2219330871", "UPS 15.5", 10_000, 4_800, 1_260, 3_600, 192.0
)
DC_UPS3 = UpsProfile("dc-ups3", "PowerGuard", "PG-20K RT", "PG20K-1187", "3.2.1", 18_000, 7_200, 1_500, 3_600, 240.0)
UPS_PROFILES: dict[str, UpsProfile] = {u.name: u for u in (DC_UPS1, DC_UPS2, DC_UPS3)}

PLANT = Plant()


# --- the outage file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What earlier outages added to the plant's counters (folded in when a new outage starts)."""

    outages: int = 0
    drups_run_s: float = 0.0
    drups_fuel_l: float = 0.0
    drups_transfers: int = 0
    genset_run_s: float = 0.0
    genset_fuel_l: float = 0.0
    genset_energy_kwh: float = 0.0
    intake_missing_kwh: float = 0.0


@dataclass(frozen=True)
class Outage:
    """The contents of ``outage.json``: when mains failed and returned (epoch seconds)."""

    started_at: float | None = None
    ended_at: float | None = None
    fuel_scale: float = 1.0
    totals: Totals = field(default_factory=Totals)

    def active(self, now: float) -> bool:
        """Whether mains is failed at ``now``."""
        return self.started_at is not None and self.started_at <= now and (self.ended_at is None or now < self.ended_at)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outage:
        totals = Totals(**data.get("totals", {}))
        return cls(
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            fuel_scale=float(data.get("fuel_scale", 1.0)),
            totals=totals,
        )


def outage_path(lab_dir: Path | str) -> Path:
    """Where a lab keeps its outage state."""
    return Path(lab_dir) / OUTAGE_FILE


def load_outage(lab_dir: Path | str) -> Outage:
    """The lab's outage state (no file, or an unreadable one: mains has never failed)."""
    try:
        return Outage.from_json(json.loads(outage_path(lab_dir).read_text()))
    except (OSError, ValueError, TypeError):
        return Outage()


class OutageReader:
    """Cached reader of ``outage.json`` for peers that compute a value at every request: the file
    is re-read only when its modification time or size changes."""

    def __init__(self, lab_dir: Path | str) -> None:
        self.path = outage_path(lab_dir)
        self._stamp: tuple[int, int] | None = None
        self._outage = Outage()

    def get(self) -> Outage:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            self._outage = load_outage(self.path.parent) if stamp else Outage()
        return self._outage


@contextlib.contextmanager
def _locked(lab_dir: Path) -> Any:
    lab_dir.mkdir(parents=True, exist_ok=True)
    with open(lab_dir / ".outage.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write(lab_dir: Path, outage: Outage) -> None:
    path = outage_path(lab_dir)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(outage.to_json(), indent=2) + "\n")
    os.replace(tmp, path)


def start_outage(lab_dir: Path | str, *, now: float | None = None, fuel_scale: float = 1.0) -> Outage:
    """Mains fails now. An outage already in progress is left as it is (and returned)."""
    lab = Path(lab_dir)
    now = time.time() if now is None else now
    if fuel_scale <= 0:
        raise ValueError("fuel_scale must be positive")
    with _locked(lab):
        current = load_outage(lab)
        if current.active(now):
            return current
        outage = Outage(started_at=now, ended_at=None, fuel_scale=fuel_scale, totals=fold_totals(current))
        _write(lab, outage)
        return outage


def stop_outage(lab_dir: Path | str, *, now: float | None = None) -> Outage:
    """Mains returns now (no-op when it is not failed)."""
    lab = Path(lab_dir)
    now = time.time() if now is None else now
    with _locked(lab):
        current = load_outage(lab)
        if not current.active(now):
            return current
        outage = replace(current, ended_at=max(now, current.started_at or now))
        _write(lab, outage)
        return outage


def reset_outage(lab_dir: Path | str) -> None:
    """Forget every outage: the plant is back to its initial state at once (tests, demos)."""
    lab = Path(lab_dir)
    with _locked(lab):
        outage_path(lab).unlink(missing_ok=True)


# --- the timeline --------------------------------------------------------------------------------


def _overlap(start: float, end: float, now: float) -> float:
    """Seconds of [start, end) that have elapsed by ``now``."""
    return max(0.0, min(end, now) - start)


def _ramp(now: float, start: float, duration: float) -> float:
    """0 → 1 linearly over [start, start + duration]."""
    return min(1.0, max(0.0, (now - start) / duration))


def wobble(now: float) -> float:
    """A small deterministic variation of the loads (±1.4 %), so dashboards look alive."""
    return 1.0 + 0.01 * math.sin(2 * math.pi * now / 97.0) + 0.004 * math.sin(2 * math.pi * now / 13.0)


@dataclass(frozen=True)
class Timeline:
    """The instants (epoch seconds, ``inf`` = not (yet) happening) of one outage."""

    t0: float
    t1: float
    drups_crank: float
    drups_speed: float
    drups_clutch: float
    drups_retransfer: float
    drups_stop: float
    genset_prestart: float
    genset_crank: float
    genset_speed: float
    genset_on_load: float  # inf when mains came back before the ATS transferred
    genset_off_load: float
    genset_release: float  # end of the controller's return delay: cooling down from here
    genset_stop: float
    panel_back: float  # when the static UPSs' panel is fed again (generator or mains)

    @classmethod
    def of(cls, outage: Outage, plant: Plant = PLANT) -> Timeline | None:
        if outage.started_at is None:
            return None
        t0 = outage.started_at
        t1 = INF if outage.ended_at is None else outage.ended_at
        clutch = t0 + plant.drups_clutch_after
        retransfer = max(t1, clutch) + plant.retransfer_wait
        on_load_at = t0 + plant.genset_on_load_after
        on_load = on_load_at if t1 > on_load_at else INF
        off_load = t1 + plant.retransfer_wait if on_load < INF else INF
        genset_release = off_load if on_load < INF else t1 + plant.retransfer_wait
        return cls(
            t0=t0,
            t1=t1,
            drups_crank=t0 + plant.drups_crank_after,
            drups_speed=t0 + plant.drups_crank_after + plant.drups_ramp,
            drups_clutch=clutch,
            drups_retransfer=retransfer,
            drups_stop=retransfer + plant.cooldown,
            genset_prestart=t0 + plant.genset_prestart_after,
            genset_crank=t0 + plant.genset_crank_after,
            genset_speed=t0 + plant.genset_crank_after + plant.genset_ramp,
            genset_on_load=on_load,
            genset_off_load=off_load,
            genset_release=genset_release,
            genset_stop=max(genset_release, t0 + plant.genset_crank_after + plant.genset_ramp) + plant.cooldown,
            panel_back=min(on_load, t1),
        )


def _rpm(now: float, crank: float, speed: float, stop: float, plant: Plant) -> float:
    if now < crank:
        return 0.0
    if now < stop:
        return plant.rated_rpm * _ramp(now, crank, speed - crank)
    return plant.rated_rpm * (1.0 - _ramp(now, stop, plant.spin_down))


def _coolant(now: float, start: float, stop: float) -> float:
    """Coolant °C: 45 (jacket heater) rising towards 82 while the engine runs, falling back after."""
    if now < start:
        return 45.0
    at = min(now, stop)
    hot = 82.0 - 37.0 * math.exp(-(at - start) / 60.0)
    if now <= stop:
        return hot
    return 45.0 + (hot - 45.0) * math.exp(-(now - stop) / 300.0)


# --- the plant's loads ---------------------------------------------------------------------------


def ups_input_kw(plant: Plant = PLANT) -> float:
    """What the static UPSs draw from the panel in steady state."""
    return sum(u.load_w / u.efficiency for u in UPS_PROFILES.values()) / 1000.0


def panel_kw(plant: Plant = PLANT) -> float:
    """The generator-backed panel: static UPS inputs, cooling and auxiliaries."""
    return ups_input_kw(plant) + plant.cooling_kw + plant.aux_kw


def drups_input_kw(plant: Plant = PLANT) -> float:
    """What the DRUPS draws from mains: its IT load plus its losses."""
    return plant.it_drups_kw * (1 + plant.drups_loss_ratio) + plant.drups_loss_fixed_kw


def it_kw(plant: Plant = PLANT) -> float:
    """IT load at the UPS outputs (DRUPS and static UPSs): PUE category 1."""
    return plant.it_drups_kw + sum(u.load_w for u in UPS_PROFILES.values()) / 1000.0


def drups_output_kw(now: float, plant: Plant = PLANT) -> float:
    """What the DRUPS delivers to the IT hall at ``now`` (the same with or without mains)."""
    return plant.it_drups_kw * wobble(now)


def ups_output_w(name: str, now: float) -> float:
    """What static UPS ``name`` delivers at ``now`` (W; each UPS wobbles in its own phase)."""
    ups = UPS_PROFILES[name]
    return ups.load_w * wobble(now + zlib.crc32(name.encode()) % 17)


def it_output_kw(now: float, plant: Plant = PLANT) -> float:
    """The IT load at ``now`` as the IT meter sees it: the sum of every UPS output (DRUPS and
    static UPSs) at that instant, so the meter and the UPS cards agree."""
    return drups_output_kw(now, plant) + sum(ups_output_w(n, now) for n in UPS_PROFILES) / 1000.0


def facility_kw(plant: Plant = PLANT) -> float:
    """Total facility power at the utility intake with mains healthy."""
    return drups_input_kw(plant) + panel_kw(plant)


# --- per outage: what was used ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Usage:
    drups_run_s: float
    drups_fuel_l: float
    drups_transfers: int
    genset_run_s: float
    genset_fuel_l: float
    genset_energy_kwh: float
    intake_missing_kwh: float


def _usage(outage: Outage, now: float, plant: Plant = PLANT) -> _Usage:
    """What the current outage has consumed/counted by ``now`` (zeros when there is none)."""
    tl = Timeline.of(outage, plant)
    if tl is None:
        return _Usage(0, 0, 0, 0, 0, 0, 0)
    idle = plant.curve.litres_per_hour(0)
    drups_load = plant.curve.litres_per_hour(100 * plant.it_drups_kw / plant.drups_rated_kw)
    drups_fuel = (
        idle * (_overlap(tl.drups_crank, tl.drups_clutch, now) + _overlap(tl.drups_retransfer, tl.drups_stop, now))
        + drups_load * _overlap(tl.drups_clutch, tl.drups_retransfer, now)
    ) / 3600.0
    gen_kw = panel_kw(plant)
    gen_load = plant.curve.litres_per_hour(100 * gen_kw / plant.genset_rated_kw)
    on_load_s = _overlap(tl.genset_on_load, tl.genset_off_load, now) if tl.genset_on_load < INF else 0.0
    gen_run_s = _overlap(tl.genset_crank, tl.genset_stop, now)
    gen_fuel = (idle * (gen_run_s - on_load_s) + gen_load * on_load_s) / 3600.0
    missing = (
        drups_input_kw(plant) * _overlap(tl.t0, tl.drups_retransfer, now)
        + panel_kw(plant) * _overlap(tl.t0, tl.genset_off_load if tl.genset_on_load < INF else tl.t1, now)
    ) / 3600.0
    return _Usage(
        drups_run_s=_overlap(tl.drups_crank, tl.drups_stop, now),
        drups_fuel_l=drups_fuel * outage.fuel_scale,
        drups_transfers=1 if now >= tl.drups_clutch else 0,
        genset_run_s=gen_run_s,
        genset_fuel_l=gen_fuel * outage.fuel_scale,
        genset_energy_kwh=gen_kw * on_load_s / 3600.0,
        intake_missing_kwh=missing,
    )


def fold_totals(outage: Outage, plant: Plant = PLANT) -> Totals:
    """Totals including everything the (finished) ``outage`` will ever add: the counters a new
    outage starts from."""
    if outage.started_at is None:
        return outage.totals
    end = outage.ended_at if outage.ended_at is not None else time.time()
    used = _usage(replace(outage, ended_at=end), INF, plant)
    t = outage.totals
    return Totals(
        outages=t.outages + 1,
        drups_run_s=t.drups_run_s + used.drups_run_s,
        drups_fuel_l=t.drups_fuel_l + used.drups_fuel_l,
        drups_transfers=t.drups_transfers + used.drups_transfers,
        genset_run_s=t.genset_run_s + used.genset_run_s,
        genset_fuel_l=t.genset_fuel_l + used.genset_fuel_l,
        genset_energy_kwh=t.genset_energy_kwh + used.genset_energy_kwh,
        intake_missing_kwh=t.intake_missing_kwh + used.intake_missing_kwh,
    )


# --- readings per device ---------------------------------------------------------------------------


def drups_readings(outage: Outage, now: float, plant: Plant = PLANT) -> Readings:
    """The DRUPS (``drups``): mode, mains, kinetic store, clutch, engine, fuel, output."""
    tl = Timeline.of(outage, plant)
    used = _usage(outage, now, plant)
    totals = outage.totals
    mains_ok = not outage.active(now)
    if tl is None or now < tl.t0 or now >= tl.drups_retransfer:
        mode, clutch = "mains", "disengaged"
    elif now < tl.drups_clutch:
        mode, clutch = "kinetic", "disengaged"
    else:
        mode, clutch = "diesel", "engaged"
    if tl is None or now < tl.t0:
        kinetic = 100.0
    else:
        low = 100.0 - plant.kinetic_drain_per_s * (tl.drups_clutch - tl.t0)
        if now < tl.drups_clutch:
            kinetic = 100.0 - plant.kinetic_drain_per_s * (now - tl.t0)
        else:
            kinetic = min(100.0, low + plant.kinetic_recharge_per_s * (now - tl.drups_clutch))
    if tl is None:
        rpm, state = 0.0, "stopped"
    else:
        rpm = _rpm(now, tl.drups_crank, tl.drups_speed, tl.drups_stop, plant)
        if now < tl.drups_crank or now >= tl.drups_stop:
            state = "stopped"
        elif now < tl.drups_speed:
            state = "cranking"
        elif now < tl.drups_clutch:
            state = "running"
        elif now < tl.drups_retransfer:
            state = "on_load"
        else:
            state = "cooling"
    out_kw = drups_output_kw(now, plant)
    load_pct = 100.0 * out_kw / plant.drups_rated_kw if mode == "diesel" else 0.0  # the engine's load
    cranking = state == "cranking"
    running = rpm > 0 and not cranking
    coolant = _coolant(now, tl.drups_crank, tl.drups_stop) if tl else 45.0
    day_l = plant.drups_day_fill_l - totals.drups_fuel_l - used.drups_fuel_l
    return {
        "drups.mode": mode,
        "mains.status": "ok" if mains_ok else "failed",
        "mains.voltage": plant.mains_voltage * (1 + 0.004 * math.sin(now / 7.0)) if mains_ok else 0.0,
        "output.voltage": plant.mains_voltage,
        "output.frequency": plant.mains_frequency,
        "output.current": out_kw * 1000.0 / (3 * plant.mains_voltage * 0.95),
        "output.power": out_kw,
        "kinetic.level": kinetic,
        "clutch.state": clutch,
        "engine.state": state,
        "engine.rpm": rpm,
        "engine.oil.pressure": 420.0 * rpm / plant.rated_rpm,
        "engine.coolant.temperature": coolant,
        "engine.load": load_pct,
        "engine.battery.voltage": 23.6 if cranking else (28.1 if running else 27.3),
        "engine.runtime": plant.drups_run_hours * 3600 + totals.drups_run_s + used.drups_run_s,
        "engine.starts": plant.drups_starts + totals.outages + (1 if tl and now >= tl.drups_crank else 0),
        "transfer.count": plant.drups_transfers + totals.drups_transfers + used.drups_transfers,
        "fuel.day.level": max(0.0, 100.0 * day_l / plant.drups_day_tank_l),
        "fuel.main.level": 100.0 * plant.drups_main_fill_l / plant.drups_main_tank_l,
    }


def genset_readings(outage: Outage, now: float, plant: Plant = PLANT) -> Readings:
    """The standby generator's DSE controller (``dse``)."""
    tl = Timeline.of(outage, plant)
    used = _usage(outage, now, plant)
    totals = outage.totals
    if tl is None:
        rpm, state, on_load, coolant = 0.0, "stopped", False, 45.0
    else:
        rpm = _rpm(now, tl.genset_crank, tl.genset_speed, tl.genset_stop, plant)
        on_load = tl.genset_on_load <= now < tl.genset_off_load
        if now < tl.genset_prestart or now >= tl.genset_stop:
            state = "stopped"
        elif now < tl.genset_speed:
            state = "prestart"
        elif on_load:
            state = "running"
        elif now < tl.genset_release:
            state = "warming"
        else:
            state = "cooling"
        coolant = _coolant(now, tl.genset_crank, tl.genset_stop)
    speed = rpm / plant.rated_rpm
    volts = plant.mains_voltage * min(1.0, speed / 0.95) if speed > 0.3 else 0.0
    total_kw = panel_kw(plant) * wobble(now) if on_load else 0.0
    phase_w = [total_kw * 1000.0 * share for share in (0.34, 0.33, 0.33)]
    cranking = tl is not None and tl.genset_crank <= now < tl.genset_speed
    fuel_l = plant.genset_fill_l - totals.genset_fuel_l - used.genset_fuel_l
    readings: Readings = {
        "engine.mode": "auto",
        "engine.state": state,
        "engine.rpm": rpm,
        "engine.oil.pressure": 380.0 * speed,
        "engine.coolant.temperature": coolant,
        "engine.oil.temperature": None,  # a failed sender: the controller says "over range"
        "engine.battery.voltage": 22.8 if cranking else (27.9 if rpm > 0 else 27.2),
        "fuel.level": max(0.0, 100.0 * fuel_l / plant.genset_tank_l),
        "generator.frequency": plant.mains_frequency * speed,
        "generator.voltage": volts,
        "generator.L2-N.voltage": volts * 1.002,
        "generator.L3-N.voltage": volts * 0.998,
        "output.power": total_kw,
        "engine.load": 100.0 * total_kw / plant.genset_rated_kw,
        "engine.runtime": plant.genset_run_hours * 3600 + totals.genset_run_s + used.genset_run_s,
        "generator.energy": plant.genset_energy_kwh + totals.genset_energy_kwh + used.genset_energy_kwh,
        "engine.starts": plant.genset_starts + totals.outages + (1 if tl and now >= tl.genset_crank else 0),
    }
    for phase, watts in enumerate(phase_w, start=1):
        readings[f"generator.L{phase}.realpower"] = watts
        readings[f"generator.L{phase}.current"] = watts / (volts * 0.92) if volts else 0.0
    return readings


def meter_readings(which: str, outage: Outage, now: float, plant: Plant = PLANT) -> Readings:
    """A power meter: ``facility`` at the utility intake, or ``it`` at the UPS outputs."""
    if which == "it":
        return {
            "meter.power": it_output_kw(now, plant),
            "meter.voltage": plant.mains_voltage,
            "input.frequency": plant.mains_frequency,
            "meter.energy": it_kw(plant) * (now - ENERGY_EPOCH) / 3600.0,
        }
    if which != "facility":
        raise ValueError(f"unknown meter {which!r} (facility | it)")
    tl = Timeline.of(outage, plant)
    mains_ok = not outage.active(now)
    kw = 0.0
    if mains_ok:
        drups_on_mains = tl is None or now < tl.t0 or now >= tl.drups_retransfer
        panel_on_mains = tl is None or now < tl.t0 or not (tl.genset_on_load <= now < tl.genset_off_load)
        kw = drups_input_kw(plant) * drups_on_mains + panel_kw(plant) * panel_on_mains
    missing = outage.totals.intake_missing_kwh + _usage(outage, now, plant).intake_missing_kwh
    return {
        "meter.power": kw * wobble(now),
        "meter.voltage": plant.mains_voltage if mains_ok else 0.0,
        "input.frequency": plant.mains_frequency if mains_ok else 0.0,
        "meter.energy": facility_kw(plant) * (now - ENERGY_EPOCH) / 3600.0 - missing,
    }


def ups_readings(name: str, outage: Outage, now: float, plant: Plant = PLANT) -> Readings:
    """A static UPS on the generator-backed panel, in NUT's names (``ups.status`` …)."""
    ups = UPS_PROFILES[name]
    tl = Timeline.of(outage, plant)
    rate = 100.0 / ups.full_runtime_s  # % per second on battery
    recharge = 100.0 / ups.recharge_s
    on_battery = tl is not None and tl.t0 <= now < tl.panel_back
    if tl is None or now < tl.t0:
        charge = 100.0
    elif on_battery:
        charge = max(0.0, 100.0 - rate * (now - tl.t0))
    else:
        low = max(0.0, 100.0 - rate * (tl.panel_back - tl.t0))
        charge = min(100.0, low + recharge * (now - tl.panel_back))
    if on_battery:
        status = "OB DISCHRG" + (" LB" if charge < 20 else "")
    elif charge < 100.0:
        status = "OL CHRG"
    else:
        status = "OL"
    load_w = ups_output_w(name, now)
    on_generator = tl is not None and tl.genset_on_load <= now < tl.genset_off_load
    return {
        "ups.status": status,
        "ups.mfr": ups.mfr,
        "ups.model": ups.model,
        "ups.serial": ups.serial,
        "ups.load": 100.0 * load_w / ups.capacity_w,
        "ups.realpower": load_w,
        "ups.alarm": "OnBattery" if on_battery else "",
        "battery.charge": charge,
        "battery.runtime": ups.full_runtime_s * charge / 100.0,
        "battery.voltage": ups.battery_nominal_v * ((0.93 + 0.07 * charge / 100.0) if on_battery else 1.125),
        "battery.status": "low" if charge < 20 else "normal",
        "input.voltage": 0.0 if on_battery else plant.mains_voltage * (0.997 if on_generator else 1.0),
        "input.frequency": 0.0 if on_battery else plant.mains_frequency,
        "input.transfer.reason": "blackout" if tl is not None and now >= tl.t0 else "",
        "output.voltage": plant.mains_voltage,
        "output.frequency": plant.mains_frequency,
        "output.current": load_w / (plant.mains_voltage * 0.9),
        "output.source": "battery" if on_battery else "normal",
    }


DEVICES = ("drups", "dse", "meter-facility", "meter-it", *(f"ups:{n}" for n in UPS_PROFILES))


def device_readings(device: str, outage: Outage, now: float | None = None, plant: Plant = PLANT) -> Readings:
    """Readings of one device of the plant (a name of :data:`DEVICES`) at ``now``."""
    now = time.time() if now is None else now
    if device == "drups":
        return drups_readings(outage, now, plant)
    if device == "dse":
        return genset_readings(outage, now, plant)
    if device.startswith("meter-"):
        return meter_readings(device.removeprefix("meter-"), outage, now, plant)
    if device.startswith("ups:"):
        return ups_readings(device.removeprefix("ups:"), outage, now, plant)
    raise ValueError(f"unknown device {device!r} (known: {', '.join(DEVICES)})")


def phase(outage: Outage, now: float, plant: Plant = PLANT) -> str:
    """One word for where the plant is in the story (``infra-mgr lab outage status``)."""
    tl = Timeline.of(outage, plant)
    if tl is None or now < tl.t0:
        return "normal"
    if now < tl.drups_clutch:
        return "transfer"  # kinetic store carrying the IT load, engines starting
    if outage.active(now):
        return "outage"
    if now < max(tl.drups_retransfer, tl.genset_off_load if tl.genset_on_load < INF else 0):
        return "retransfer-wait"
    if now < max(tl.drups_stop, tl.genset_stop) + plant.spin_down:
        return "cooldown"
    return "normal"
