"""The power service folding readings into state, events, outage records and telemetry.

Readings are built by hand here to pin the rules down exactly; the same path is driven by the
real peers (NUT, Modbus, snmpsim) during a lab outage in ``test_power_outage.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Site
from infra_mgr.power import views
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerNode
from infra_mgr.power.readings import PowerProblem, PowerReadings
from infra_mgr.power.service import PowerService

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _setup(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        site = Site(code="JED-DC", name_en="Data Centre", kind="datacenter")
        s.add(site)
        s.flush()
        ups = PowerDevice(name="dc-ups1", kind="ups", source="nut://127.0.0.1:3493/dc-ups1", site_id=site.id,
                          capacity_kw=200)
        drups = PowerDevice(name="dc-drups1", kind="drups", source="modbus://127.0.0.1:5020/1?map=drups-eurodiesel",
                            site_id=site.id, capacity_kw=500)
        meter = PowerDevice(name="dc-intake", kind="meter", source="modbus://127.0.0.1:5021/1?map=power-meter",
                            site_id=site.id)
        s.add(ups)
        s.add(drups)
        s.add(meter)
        s.flush()
        s.add(FuelTank(name="dc-day-tank", power_device_id=drups.id or 0, capacity_l=2000, rated_kw=500,
                       level_reading="fuel.day.level", curve={"25": 42, "50": 70, "75": 100, "100": 135}))
        s.add(PowerNode(name="intake", kind="meter", power_device_id=meter.id, pue_role="facility"))
        s.add(PowerNode(name="ups-out", kind="ups", power_device_id=ups.id, pue_role="it", it_category=1,
                        capacity_kw=200))
        s.commit()
        return ups.id or 0, drups.id or 0, meter.id or 0


def _r(**values: object) -> PowerReadings:
    return PowerReadings(source="test", readings={k.replace("_", "."): v for k, v in values.items()})


def _status(engine: Engine, now: dt.datetime) -> list[dict[str, Any]]:
    """Every device's live state as the read side reports it (``/api/v1/power/status``)."""
    with Session(engine) as s:
        return views.status(s, now).model_dump()["devices"]


def _pue(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        return views.pue_now(s).model_dump()


def test_outage_record_from_readings(engine: Engine) -> None:
    ups, drups, meter = _setup(engine)
    svc = PowerService(engine)
    at = lambda s: T0 + dt.timedelta(seconds=s)  # noqa: E731
    svc.apply(ups, _r(ups_status="OL CHRG", battery_charge=100, battery_runtime=1800, ups_load=50), at(0))
    svc.apply(drups, _r(drups_mode="mains", mains_status="ok", engine_state="stopped", kinetic_level=100,
                        fuel_day_level=80, output_power=250), at(0))
    svc.apply(meter, _r(meter_power=150, meter_voltage=230), at(0))
    assert _pue(engine) == {"pue": 1.5, "facility_kw": 150.0, "it_kw": 100.0, "category": 1,
                            "grid_kw": 150.0, "generation_kw": None}

    svc.apply(drups, _r(drups_mode="kinetic", mains_status="failed", engine_state="cranking", kinetic_level=70,
                        fuel_day_level=80, output_power=250), at(1))
    svc.apply(ups, _r(ups_status="OB DISCHRG", battery_charge=97, battery_runtime=1700, ups_load=50), at(1.5))
    svc.apply(drups, _r(drups_mode="diesel", mains_status="failed", engine_state="on_load", kinetic_level=60,
                        fuel_day_level=78, output_power=250), at(3))
    svc.apply(ups, _r(ups_status="OL CHRG", battery_charge=96, ups_load=50), at(4))
    svc.apply(drups, _r(drups_mode="diesel", mains_status="failed", engine_state="on_load", kinetic_level=100,
                        fuel_day_level=75, output_power=250), at(600))
    svc.apply(drups, _r(drups_mode="mains", mains_status="ok", engine_state="cooling", kinetic_level=100,
                        fuel_day_level=75, output_power=250), at(610))
    with Session(engine) as s:
        outage = s.exec(select(Outage)).one()
        kinds = [e.kind for e in s.exec(select(Event).order_by(Event.id)).all()]
    assert outage.status == "closed"
    assert outage.started_at == at(1) and outage.diesel_cranking_at == at(1) and outage.diesel_on_load_at == at(3)
    assert outage.mains_restored_at == at(610) and outage.ended_at == at(610)
    assert outage.min_battery_charge == 97 and outage.min_kinetic_level == 60
    assert outage.diesel_run_s == 607 and outage.fuel_used_l == 100.0  # 5 % of 2,000 L
    assert [t["kind"] for t in outage.timeline][:3] == ["power.mains_failed", "power.on_kinetic",
                                                       "power.diesel_cranking"]
    assert outage.timeline[-1]["kind"] == "power.outage_ended"
    for k in ("power.outage_started", "power.on_battery", "power.diesel_on_load", "power.mains_restored",
              "power.retransfer", "power.outage_ended"):
        assert k in kinds, k

    status = {d["name"]: d for d in _status(engine, at(611))}
    assert status["dc-drups1"]["live"] and status["dc-drups1"]["state"] == "mains"
    # 75 % of 2,000 L = 1,500 L, minus the 15 % unusable (300 L) = 1,200 L at 50 % load (70 L/h)
    assert status["dc-drups1"]["fuel_autonomy_h"] == round(1200 / 70, 2)
    store_series = svc.store.series_of("power_device", drups)
    assert "kinetic.level" in store_series


def test_communication_loss_is_never_shown_live(engine: Engine) -> None:
    ups, _, _ = _setup(engine)
    svc = PowerService(engine)
    svc.apply(ups, _r(ups_status="OL", battery_charge=100), T0)
    dead = PowerReadings(source="test", errors=[PowerProblem("test", "read", "timeout", "no answer")])
    svc.apply(ups, dead, T0 + dt.timedelta(seconds=1))  # within the grace period: nothing yet
    with Session(engine) as s:
        assert s.get(PowerDevice, ups).status == "ok"  # type: ignore[union-attr]
    svc.apply(ups, dead, T0 + dt.timedelta(seconds=4))
    with Session(engine) as s:
        dev = s.get(PowerDevice, ups)
        assert dev is not None and dev.status == "comm_lost" and "no answer" in dev.message
        assert s.exec(select(Event).where(Event.kind == "power.comm_lost")).one().severity == "critical"
    status = {d["name"]: d for d in _status(engine, T0 + dt.timedelta(seconds=5))}
    assert status["dc-ups1"]["live"] is False and status["dc-ups1"]["state"] == "unknown"
    stale = PowerReadings(source="test", readings={"ups.status": "OL"}, stale=True)
    svc.apply(ups, stale, T0 + dt.timedelta(seconds=6))
    svc.apply(ups, _r(ups_status="OL", battery_charge=100), T0 + dt.timedelta(seconds=7))
    with Session(engine) as s:
        assert s.exec(select(Event).where(Event.kind == "power.comm_restored")).first() is not None


def test_live_stream_survives_quiet_periods(engine: Engine) -> None:
    """The SSE stream's keep-alive timeout must not end the subscription (items after it still arrive)."""
    import asyncio
    import contextlib

    from infra_mgr.power.poller import LiveHub

    async def scenario() -> list[dict[str, object]]:
        hub = LiveHub()
        got = []
        async with hub.subscribe() as queue:
            for _ in range(2):
                with contextlib.suppress(TimeoutError):  # a quiet period: the wait times out
                    await asyncio.wait_for(queue.get(), 0.05)
            hub.publish({"type": "event", "kind": "power.on_battery"})
            got.append(await asyncio.wait_for(queue.get(), 1))
        assert hub.subscribers == 0
        return got

    assert asyncio.run(scenario()) == [{"type": "event", "kind": "power.on_battery"}]


def test_live_stream_sends_events_at_once_and_gathers_device_messages() -> None:
    """Device messages queued together share a chunk; an event message closes the chunk at once
    (it is never held back waiting for more), and a lone device message still goes out."""
    import asyncio
    from types import SimpleNamespace

    from infra_mgr.power.api import stream
    from infra_mgr.power.poller import LiveHub

    async def scenario() -> list[str]:
        hub = LiveHub()
        request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(power_hub=hub)))
        response = await stream(request)  # type: ignore[arg-type]
        body = response.body_iterator
        chunks = [await anext(body)]  # retry: 2000
        pending = asyncio.ensure_future(anext(body))
        while hub.subscribers == 0:
            await asyncio.sleep(0)
        hub.publish({"type": "device", "name": "ups1"})
        hub.publish({"type": "device", "name": "ups2"})
        hub.publish({"type": "event", "kind": "power.on_battery"})
        chunks.append(await asyncio.wait_for(pending, 5))
        hub.publish({"type": "device", "name": "ups3"})
        chunks.append(await asyncio.wait_for(anext(body), 5))
        await body.aclose()  # type: ignore[attr-defined]
        return [c if isinstance(c, str) else bytes(c).decode() for c in chunks]

    retry, first, second = asyncio.run(scenario())
    assert retry == "retry: 2000\n\n"
    assert first.count("event: device\n") == 2 and first.endswith('"power.on_battery"}\n\n')
    assert second.count("event: device\n") == 1 and '"ups3"' in second


def test_batched_write_keeps_newer_rows_and_lowers_outage_levels(engine: Engine) -> None:
    """``flush`` writes readings and ``last_ok`` unless the row holds a newer reading or was marked
    comm_lost since, lowers the open outage's levels, and stores the samples — in one transaction."""
    from infra_mgr.power.service import LiveRow

    ups, drups, _meter = _setup(engine)
    svc = PowerService(engine)
    at = lambda s: T0 + dt.timedelta(seconds=s)  # noqa: E731
    svc.apply(drups, _r(drups_mode="mains", mains_status="ok", kinetic_level=100), at(0))
    svc.apply(drups, _r(drups_mode="kinetic", mains_status="failed", kinetic_level=90), at(1))  # opens the outage
    svc.apply(ups, _r(ups_status="OL", battery_charge=100), at(1))
    site = _status(engine, at(1))[0]["site_id"]
    kinetic = {"drups.mode": "kinetic", "mains.status": "failed", "kinetic.level": 70}
    written = svc.flush({drups: LiveRow(site, kinetic, at(2), "", min_kinetic_level=65),
                         ups: LiveRow(site, {"ups.status": "OL", "battery.charge": 99}, at(2), "a note")},
                        [(drups, "kinetic.level", int(at(2).timestamp() * 1000), 70.0)])
    assert written == 1
    with Session(engine) as s:
        dev = s.get(PowerDevice, drups)
        assert dev is not None and dev.readings["kinetic.level"] == 70 and dev.last_ok == at(2)
        assert s.get(PowerDevice, ups).message == "a note"  # type: ignore[union-attr]
        assert s.exec(select(Outage)).one().min_kinetic_level == 65
    assert svc.store.series_of("power_device", drups)["kinetic.level"]
    # an older row (apply wrote a newer reading meanwhile) and a row of a device lost since are skipped
    svc.apply(drups, _r(drups_mode="kinetic", mains_status="failed", kinetic_level=60), at(4))
    svc.apply(ups, PowerReadings(source="test", errors=[PowerProblem("test", "read", "timeout", "gone")]), at(9))
    svc.flush({drups: LiveRow(site, {**kinetic, "kinetic.level": 80}, at(3), "", min_kinetic_level=80),
               ups: LiveRow(site, {"ups.status": "OL", "battery.charge": 98}, at(8), "")}, [])
    with Session(engine) as s:
        dev = s.get(PowerDevice, drups)
        assert dev is not None and dev.readings["kinetic.level"] == 60 and dev.last_ok == at(4)
        lost = s.get(PowerDevice, ups)
        assert lost is not None and lost.status == "comm_lost" and "gone" in lost.message
        assert lost.readings["battery.charge"] == 99
        assert s.exec(select(Outage)).one().min_kinetic_level == 60  # 80 is not lower


def test_a_tracked_change_is_judged_once_and_written_as_judged(engine: Engine, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """The poller's path: a Tracker judges the reading in memory, the service writes that change
    (no second judgement against the row), and the tracker settles on what was written."""
    from infra_mgr.power import service as service_module

    ups, _, _ = _setup(engine)
    svc = PowerService(engine)
    with Session(engine) as s:
        dev = s.get(PowerDevice, ups)
        assert dev is not None
        tracker = svc.tracker(dev)
    calls: list[str] = []
    judge = service_module.assess
    monkeypatch.setattr(service_module, "assess", lambda *a, **k: calls.append("assess") or judge(*a, **k))
    seen = tracker.observe(_r(ups_status="OB DISCHRG", battery_charge=80), T0)
    assert seen.change is not None and seen.row is not None and calls == ["assess"]
    applied = svc.record(seen.change)
    assert calls == ["assess"]  # written as judged
    tracker.settle(applied)
    assert (tracker.known.status, tracker.known.state) == ("ok", "battery")
    assert {e["kind"] for e in applied.events} >= {"power.mains_failed", "power.on_battery"}
    with Session(engine) as s:
        row = s.get(PowerDevice, ups)
        assert row is not None and row.state == "battery" and "mains_failed" in row.flags
    again = tracker.observe(_r(ups_status="OB DISCHRG", battery_charge=79), T0 + dt.timedelta(seconds=1))
    assert again.change is None and again.row is not None  # only values moved: left to the batched write
