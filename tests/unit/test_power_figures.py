"""The power figures add up: the lab's plant is physically consistent (what the UPS cards show
sums to the IT load, the facility meter reads the inputs plus losses), a DRUPS's load is its power
over its capacity, and the CLI prints those figures with units and sensible precision within 80
columns. Pure functions and, for PUE during an outage, the lab's chain in a SQLite file: no peers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.inventory.models import Site
from infra_mgr.lab import power_scenario as ps
from infra_mgr.power import views
from infra_mgr.power.cli_views import fmt_value, outages_table, status_lines
from infra_mgr.power.models import OutageRead, PowerDevice
from infra_mgr.power.state import classify

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
KINDS = {"drups": "drups", "dse": "genset", "meter-facility": "meter", "meter-it": "meter"}
# What the lab configures as each device's capacity (infra_mgr.lab.setup): the plant's own ratings.
CAPACITY = {"drups": ps.PLANT.drups_rated_kw, "dse": ps.PLANT.genset_rated_kw,
            **{f"ups:{n}": u.capacity_w / 1000 for n, u in ps.UPS_PROFILES.items()}}
UPS_OUTPUTS = ("drups", *(f"ups:{n}" for n in ps.UPS_PROFILES))  # the IT side of PUE (category 1)


def _cards(outage: ps.Outage, at: dt.datetime) -> dict[str, views.DeviceLive]:
    """Every lab device's card as the read side computes it from the scenario's readings."""
    out = {}
    for i, name in enumerate(ps.DEVICES, start=1):
        readings = ps.device_readings(name, outage, at.timestamp())
        facts = views.DeviceFacts(i, name, KINDS.get(name, "ups"), 1, "ok", "mains", (), at, 1.0, readings,
                                  CAPACITY.get(name))
        out[name] = views.device_live(facts, at)
    return out


OUTAGE_STAGES = [
    ("mains", ps.Outage()),
    ("kinetic ride-through", ps.Outage(started_at=NOW.timestamp() - 1)),
    ("on diesel", ps.Outage(started_at=NOW.timestamp() - 60)),
    ("after retransfer", ps.Outage(started_at=NOW.timestamp() - 600, ended_at=NOW.timestamp() - 300)),
]


@pytest.mark.parametrize(("stage", "outage"), OUTAGE_STAGES, ids=[s for s, _o in OUTAGE_STAGES])
def test_ups_outputs_add_up_to_the_it_meter(stage: str, outage: ps.Outage) -> None:
    cards = _cards(outage, NOW)
    ups_sum = sum(cards[n].kw or 0.0 for n in UPS_OUTPUTS)
    it_meter = cards["meter-it"].kw
    assert it_meter is not None and all(cards[n].kw for n in UPS_OUTPUTS)
    # measured at the UPS outputs: no losses between, only the cards' rounding to 0.1 kW
    assert ups_sum == pytest.approx(it_meter, abs=0.05 * len(UPS_OUTPUTS) + 0.05)


def test_facility_meter_is_the_inputs_plus_losses_and_the_rest_of_the_panel() -> None:
    cards = _cards(ps.Outage(), NOW)
    it = sum(cards[n].kw or 0.0 for n in UPS_OUTPUTS)
    facility = cards["meter-facility"].kw or 0.0
    plant = ps.PLANT
    losses = (plant.it_drups_kw * plant.drups_loss_ratio + plant.drups_loss_fixed_kw
              + sum(u.load_w * (1 / u.efficiency - 1) for u in ps.UPS_PROFILES.values()) / 1000)
    stated = it + losses + plant.cooling_kw + plant.aux_kw
    assert facility == pytest.approx(stated, rel=0.03)  # the loads wobble ±1.4 % each on its own phase
    assert 1.3 < facility / it < 1.8


@pytest.mark.parametrize(("stage", "outage"), OUTAGE_STAGES, ids=[s for s, _o in OUTAGE_STAGES])
def test_drups_load_is_its_power_over_its_capacity(stage: str, outage: ps.Outage) -> None:
    drups = _cards(outage, NOW)["drups"]
    assert drups.kw is not None and drups.kw > 250
    assert drups.load_pct == pytest.approx(drups.kw / ps.PLANT.drups_rated_kw * 100, abs=0.1)
    assert drups.gauges.load == drups.load_pct


def test_each_ups_card_agrees_with_its_own_load_reading() -> None:
    for name, card in _cards(ps.Outage(), NOW).items():
        if name.startswith("ups:"):
            assert card.load_pct == pytest.approx(card.readings["ups.load"], abs=0.1), name


# --------------------------------------------------------------------------- the CLI


@pytest.mark.parametrize(("value", "unit", "text"), [
    (12515990.700000001, "kWh", "12,515,991 kWh"),
    (298.4, "kW", "298.4 kW"),
    (230.0, "V", "230 V"),
    (0.4166, "h", "0.42 h"),
    (55.0, "%", "55 %"),
    (37.033173, "s", "37 s"),
    (1260.0, "s", "21 min 00 s"),
    ("on_load", "text", "on_load"),
    (None, "kW", "—"),
])
def test_cli_values_have_units_and_sensible_precision(value: object, unit: str, text: str) -> None:
    assert fmt_value(value, unit) == text


def test_cli_status_fits_80_columns_and_cuts_nothing() -> None:
    cards = list(_cards(ps.Outage(started_at=NOW.timestamp() - 60), NOW).values())
    report = views.PowerStatus(devices=cards, pue=views.PueNow(pue=None, facility_kw=None, it_kw=None, category=None),
                               time=NOW)
    lines = status_lines(report, 80)
    text = "\n".join(lines)
    assert max(len(line) for line in lines) <= 80
    assert "…" not in text and "0000000" not in text
    # labelled values, named as the page names them: no raw reading names
    assert "Mode: diesel" in text and "kW" in text and "Engine speed: 1,800 rpm" in text
    assert "Engine: On load" in text and "Kinetic store level: " in text
    assert "drups.mode" not in text and "engine.rpm" not in text and "ups.status" not in text


def test_cli_outages_fit_80_columns_with_durations() -> None:
    start = NOW - dt.timedelta(hours=1)
    none = dict.fromkeys(("diesel_cranking_at", "diesel_on_load_at", "mains_restored_at", "ended_at",
                           "min_battery_charge", "min_kinetic_level", "fuel_used_l", "diesel_run_s"))
    rows = [OutageRead(**{**none, "id": 7, "site_id": 1, "status": "closed", "started_at": start,
                          "ended_at": start + dt.timedelta(seconds=1380), "seconds_to_diesel": 37.033173,
                          "min_battery_charge": 96.63, "min_kinetic_level": 71.5, "diesel_run_s": 1372.2,
                          "fuel_used_l": 48.04, "timeline": []}),
            OutageRead(**{**none, "id": 8, "site_id": 1, "status": "open", "started_at": NOW, "timeline": []})]
    console = Console(width=80, record=True, color_system=None)
    console.print(outages_table(rows))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    assert "37 s" in text and "22 min 52 s" in text and "96.6 %" in text and "48 L" in text and "ongoing" in text
    assert "37.033173" not in text


# --------------------------------------------------------------------------- PUE during an outage

LAB_DEVICE = {"dc-drups1": "drups", "dc-gen1": "dse", "dc-intake-meter": "meter-facility",
              "dc-it-meter": "meter-it", "dc-ups1": "ups:dc-ups1"}


def _lab_chain(tmp_path: Path) -> Engine:
    """A database holding the lab's power chain exactly as ``lab setup`` configures it (its own
    :func:`power_yaml`, fed records of the Modbus and NUT peers)."""
    from types import SimpleNamespace

    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.lab.setup import power_yaml
    from infra_mgr.power.config import import_power_yaml

    modbus = {"host": "127.0.0.1", "port": 5020, "unit": 1, "units": {"meter-facility": 3, "meter-it": 4}}
    records = {"nut": {"host": "127.0.0.1", "port": 3493, "upses": ["dc-ups1"], "user": "u", "password": "p"},
               "modbus-drups": modbus, "modbus-dse": modbus, "modbus-meter": modbus}
    lab = SimpleNamespace(record=lambda name: SimpleNamespace(info=records[name]) if name in records else None)
    doc = power_yaml(lab)  # type: ignore[arg-type]
    for d in doc["devices"]:
        d.pop("credential", None)  # no credentials in this database: the readings are set below
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    upgrade(url)
    engine = make_engine(url)
    (tmp_path / "power.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    with Session(engine) as s:
        s.add(Site(code="JED-DC", name_en="Data centre", name_ar="مركز البيانات", kind="datacenter"))
        s.commit()
        import_power_yaml(s, tmp_path / "power.yaml", master=b"k" * 32)
        s.commit()
    return engine


def _play(engine: Engine, outage: ps.Outage, at: dt.datetime) -> views.PueNow:
    """Every lab device read at ``at`` (readings from the scenario, state as the service judges
    it), then PUE as the page shows it."""
    with Session(engine) as s:
        for dev in s.exec(select(PowerDevice)).all():
            readings = ps.device_readings(LAB_DEVICE[dev.name], outage, at.timestamp())
            dev.readings = {k: v for k, v in readings.items() if v is not None}
            dev.state, dev.status, dev.last_ok = classify(dev.kind, dev.readings).state, "ok", at
            s.add(dev)
        s.commit()
        return views.pue_now(s)


def test_pue_counts_on_site_generation_during_an_outage(tmp_path: Path) -> None:
    """Facility = grid intake + on-site generation: with mains failed the intake meter reads 0 kW,
    the DRUPS and the genset carry the site, and PUE still has a value that adds up."""
    engine = _lab_chain(tmp_path)
    try:
        before = _play(engine, ps.Outage(), NOW)
        assert before.pue and before.generation_kw is None and before.facility_kw == before.grid_kw
        during = _play(engine, ps.Outage(started_at=NOW.timestamp() - 60), NOW)
        with Session(engine) as s:
            cards = {d.name: d for d in views.status(s, NOW).devices}
    finally:
        engine.dispose()
    assert cards["dc-intake-meter"].kw == 0.0 and cards["dc-drups1"].state == "diesel"
    assert cards["dc-gen1"].state == "diesel"
    generated = (cards["dc-drups1"].kw or 0.0) + (cards["dc-gen1"].kw or 0.0)
    assert during.grid_kw == 0.0 and during.generation_kw == pytest.approx(generated, abs=0.05)
    assert during.facility_kw == pytest.approx(during.generation_kw, abs=0.05)
    assert during.pue is not None and 1.2 < during.pue < 1.8
    assert during.pue == pytest.approx(before.pue, rel=0.1)  # the same site, only the source changed


def test_pue_note_names_both_sources() -> None:
    """The note under PUE says where the facility's power comes from while a generator runs."""
    from infra_mgr.web.i18n import Translator

    for lang, grid, generation in (("en", "grid", "on-site generation"), ("ar", "الشبكة العامة", "التوليد في الموقع")):
        text = Translator(lang)("power.pue_detail_sources", facility="471 kW", grid="0 kW", generation="471 kW",
                                it="318 kW", dcie="67 %")
        assert grid in text and generation in text and "471 kW" in text and "318 kW" in text


def test_daily_pue_of_an_outage_day_follows_the_live_rule(tmp_path: Path) -> None:
    """A day with a two-hour outage: the day's PUE is the day's mean of what PUE now said at each
    reading (facility = grid intake + on-site generation), not the intake meter's mean alone,
    which misses the two hours the diesels carried the site."""
    from infra_mgr.power.models import Outage
    from infra_mgr.telemetry.store import TelemetryStore

    day = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    cut = day + dt.timedelta(hours=10, minutes=2)
    scenario = ps.Outage(started_at=cut.timestamp(), ended_at=(cut + dt.timedelta(hours=2)).timestamp())
    engine = _lab_chain(tmp_path)
    store = TelemetryStore(engine)
    facility: list[float] = []
    it: list[float] = []
    try:
        with Session(engine) as s:
            site = s.exec(select(Site)).one()
            s.add(Outage(site_id=site.id, status="closed", started_at=cut,
                         diesel_on_load_at=cut + dt.timedelta(seconds=5),
                         ended_at=cut + dt.timedelta(hours=2, seconds=30)))
            s.commit()
            devices = [(d.id or 0, d.name) for d in s.exec(select(PowerDevice)).all()]
        for minute in range(1, 24 * 60, 10):  # one reading in each 5-minute bucket it falls in
            at = day + dt.timedelta(minutes=minute)
            live = _play(engine, scenario, at)  # what PUE now says at this reading
            assert live.facility_kw is not None and live.it_kw is not None
            facility.append(live.facility_kw)
            it.append(live.it_kw)
            samples = []
            for dev_id, name in devices:
                for reading, value in ps.device_readings(LAB_DEVICE[name], scenario, at.timestamp()).items():
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        sid = store.series_id("power_device", dev_id, reading)
                        samples.append((sid, int(at.timestamp() * 1000), float(value)))
            store.write(samples)
        store.rollup()
        with Session(engine) as s:
            daily = views.pue_daily(s, store, 1, now=day + dt.timedelta(hours=23))
    finally:
        engine.dispose()
    (got,) = daily.days
    expected_facility = sum(facility) / len(facility)
    expected = expected_facility / (sum(it) / len(it))
    assert got.generation_kw_avg and got.grid_kw_avg and got.generation_kw_avg > 0.05 * got.grid_kw_avg
    assert got.facility_kw_avg == pytest.approx(expected_facility, rel=0.005)
    assert got.pue == pytest.approx(expected, rel=0.005)
