"""The power poller against the lab's real peers (NUT upsd + dummy-ups, the pymodbus DRUPS, the
snmpsim APC UPS): readings classified in memory, one batched write a second for readings and
``last_ok``, a transaction of its own only for a reading that changes something, kept connections
that survive a restart of their peer, and events still produced by the first read after a change.

Nothing here asserts a duration: waits have generous deadlines and the assertions count reads,
writes and messages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import peer_unavailable
from sqlalchemy import Engine, event
from sqlmodel import Session, select

from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Site
from infra_mgr.lab.power_peers import ModbusEndpoint, NutEndpoint, OutageControl, SnmpUpsAgents, modbus_spec, nut_spec
from infra_mgr.lab.supervisor import Lab, PeerUnavailable
from infra_mgr.power.collectors.modbus import ModbusSession
from infra_mgr.power.collectors.nut import NutEndpoint as NutTarget
from infra_mgr.power.collectors.nut import NutSession
from infra_mgr.power.models import Outage, PowerDevice
from infra_mgr.power.poller import LiveHub, PowerPoller
from infra_mgr.telemetry.models import MetricSample, MetricSeries

pytestmark = pytest.mark.timeout(120)
OPENERS = {"power.mains_failed", "power.on_battery", "power.on_kinetic"}


def _devices(engine: Engine, nut: NutEndpoint, drups: ModbusEndpoint, snmp: SnmpUpsAgents) -> dict[str, int]:
    with Session(engine) as s:
        site = Site(code="JED-DC", name_en="Data Centre", kind="datacenter")
        s.add(site)
        s.flush()
        apc = snmp.apc
        devices = [
            PowerDevice(name="dc-ups1", kind="ups", site_id=site.id,
                        source=f"nut://{nut.user}:{nut.password}@{nut.host}:{nut.port}/{nut.ups}"),
            PowerDevice(name="dc-drups1", kind="drups", site_id=site.id,
                        source=f"modbus://{drups.host}:{drups.port}/{drups.unit}?map=drups-eurodiesel"),
            PowerDevice(name="dc-ups2", kind="ups", site_id=site.id,
                        source=f"snmp://{apc.community}@{apc.host}:{apc.port}"),
        ]
        for d in devices:
            s.add(d)
        s.commit()
        return {d.name: d.id or 0 for d in devices}


class Watch:
    """The poller running in the test's event loop, with every hub message and database commit
    counted (a commit is a write transaction: reads here never commit)."""

    def __init__(self, engine: Engine) -> None:
        self.hub = LiveHub(maxsize=100_000)
        self.poller = PowerPoller(engine, b"k" * 32, hub=self.hub)
        self.messages: list[dict[str, Any]] = []
        self.commits = 0
        event.listen(engine, "commit", self._commit)
        self.engine = engine

    def _commit(self, _conn: Any) -> None:
        self.commits += 1

    def device_messages(self, name: str, since: int = 0) -> list[dict[str, Any]]:
        return [m for m in self.messages[since:] if m["type"] == "device" and m["name"] == name]

    async def until(self, what: str, check: Callable[[], bool], deadline_s: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while not check():
            if loop.time() > end:
                raise AssertionError(f"not reached: {what} (reads {self.poller.reads}, "
                                     f"flushes {self.poller.flushes}, changes {self.poller.changes})")
            await asyncio.sleep(0.02)

    async def run(self, body: Callable[[Watch], Any]) -> None:
        async with self.hub.subscribe() as queue:
            async def collect() -> None:
                while True:
                    item = await queue.get()  # a device's message is a model, an event a dict
                    self.messages.append(item if isinstance(item, dict) else item.model_dump(mode="json"))

            collector = asyncio.create_task(collect())
            runner = asyncio.create_task(self.poller.run(refresh_s=0.5))
            try:
                await body(self)
            finally:
                self.poller.stop()
                await runner
                await asyncio.sleep(0)  # let the collector take what the last reads published
                collector.cancel()
                event.remove(self.engine, "commit", self._commit)


def test_readings_batched_and_no_transaction_without_change(
        engine: Engine, nut_server: NutEndpoint, modbus_drups: ModbusEndpoint, snmp_ups: SnmpUpsAgents,
        outage: OutageControl) -> None:
    outage.reset()
    ids = _devices(engine, nut_server, modbus_drups, snmp_ups)
    started = dt.datetime.now(dt.UTC)
    counts: dict[str, int] = {}

    async def body(w: Watch) -> None:
        # every device read and live, every telemetry series created, at least two batches written
        await w.until("every device read twice and two batches written",
                      lambda: all(len(w.device_messages(n)) >= 2 for n in ids) and w.poller.flushes >= 2)
        await w.until("all live", lambda: all(w.device_messages(n)[-1]["live"] for n in ids))
        # steady state: no outage, so no reading changes state, flags or status
        flushes, commits, changes, reads = w.poller.flushes, w.commits, w.poller.changes, w.poller.reads
        await w.until("three more reads of each device and two more batches",
                      lambda: w.poller.reads >= reads + 3 * len(ids) and w.poller.flushes >= flushes + 2)
        counts.update(reads=w.poller.reads - reads, changes=w.poller.changes - changes,
                      flushes=w.poller.flushes - flushes, commits=w.commits - commits)

    asyncio.run(Watch(engine).run(body))

    assert counts["changes"] == 0
    # one write transaction per batch (one more may be in flight at either end), none per read
    assert counts["commits"] <= counts["flushes"] + 1 < counts["reads"]
    with Session(engine) as s:
        for name, dev_id in ids.items():
            dev = s.get(PowerDevice, dev_id)
            assert dev is not None and dev.status == "ok", name
            assert dev.last_ok is not None and dev.last_ok >= started, name
            assert dev.readings and dev.state == "mains", (name, dev.state, dev.readings)
        assert s.exec(select(Event).where(Event.kind.in_(OPENERS))).first() is None  # type: ignore[attr-defined]
        series = s.exec(select(MetricSeries).where(MetricSeries.source_kind == "power_device",
                                                   MetricSeries.source_id == ids["dc-ups1"],
                                                   MetricSeries.name == "battery.charge")).one()
        assert s.exec(select(MetricSample).where(MetricSample.series_id == series.id)).first() is not None


def test_first_read_after_a_mains_failure_makes_the_events(
        engine: Engine, nut_server: NutEndpoint, modbus_drups: ModbusEndpoint, snmp_ups: SnmpUpsAgents,
        outage: OutageControl) -> None:
    outage.reset()
    ids = _devices(engine, nut_server, modbus_drups, snmp_ups)
    marks: dict[str, int] = {}

    async def body(w: Watch) -> None:
        await w.until("all live", lambda: all(w.device_messages(n) and w.device_messages(n)[-1]["live"]
                                              and w.device_messages(n)[-1]["state"] == "mains" for n in ids))
        marks["start"] = len(w.messages)
        outage.start()
        # the Modbus and SNMP peers answer from the outage file at once: the second read after
        # the start (the first may have been in flight) must carry the events
        for name in ("dc-drups1", "dc-ups2"):
            await w.until(f"two reads of {name}", lambda n=name: len(w.device_messages(n, marks["start"])) >= 2)
        marks["seen"] = len(w.messages)
        await w.until("two more batches", lambda f=w.poller.flushes: w.poller.flushes >= f + 2)

    try:
        asyncio.run((watch := Watch(engine)).run(body))
    finally:
        outage.reset()

    after_start = watch.messages[marks["start"]:marks["seen"]]
    published = {(m["device"], m["kind"]) for m in after_start if m["type"] == "event"}
    assert ("dc-drups1", "power.mains_failed") in published and ("dc-drups1", "power.on_kinetic") in published
    assert ("dc-ups2", "power.mains_failed") in published and ("dc-ups2", "power.on_battery") in published
    with Session(engine) as s:
        rows = s.exec(select(Event).where(Event.kind.in_(OPENERS))).all()  # type: ignore[attr-defined]
        assert {(e.data["power_device"], e.kind) for e in rows} >= {
            ("dc-drups1", "power.mains_failed"), ("dc-drups1", "power.on_kinetic"),
            ("dc-ups2", "power.mains_failed"), ("dc-ups2", "power.on_battery")}
        everything = s.exec(select(Outage)).all()
        # an outage left over from the peers' previous scenario may have opened and closed before
        # the reset reached them; the one this test starts must be the only open one
        outages = [o for o in everything if o.status == "open"]
        assert len(outages) == 1, [(o.status, o.started_at, o.ended_at, o.timeline) for o in everything]
        record = outages[0]
        assert {"power.mains_failed", "power.on_kinetic"} <= {t["kind"] for t in record.timeline}
        drups = s.get(PowerDevice, ids["dc-drups1"])
        assert drups is not None and drups.state in ("kinetic", "diesel") and "mains_failed" in drups.flags
    # the lowest kinetic level: every reading after the record opened counts (through the change's
    # own transaction or the batched write); none from before the mains failed
    drups_live = [m for m in watch.device_messages("dc-drups1", marks["start"]) if m["live"]]
    opened = next(i for i, m in enumerate(drups_live) if "mains_failed" in m["flags"])
    levels = [float(m["readings"]["kinetic.level"]) for m in drups_live]
    assert record.min_kinetic_level is not None
    assert min(levels) <= record.min_kinetic_level <= min(levels[opened:])
    assert record.min_kinetic_level < 100


# --- kept connections ------------------------------------------------------------------------------


@pytest.fixture
def private_lab(tmp_path: Path) -> Iterator[Lab]:
    """A lab of this test's own, so its peers can be restarted without disturbing the others."""
    lab = Lab(tmp_path / "lab")
    OutageControl(lab.lab_dir).reset()
    yield lab
    lab.stop_all()


def _spec(builder: Callable[[], Any]) -> Any:
    try:
        return builder()
    except PeerUnavailable as exc:
        peer_unavailable(exc.summary)


def test_nut_session_reconnects_after_upsd_restarts(private_lab: Lab) -> None:
    spec = _spec(lambda: nut_spec(private_lab.lab_dir, name="nut-restart"))
    ep = NutEndpoint.from_record(private_lab.start(spec))
    session = NutSession(NutTarget(ep.host, ep.port, ep.user, ep.password), ep.ups, timeout_s=3.0)

    async def scenario() -> list[Any]:
        try:
            first = await session.read()
            second = await session.read()
            kept = session.connects
            private_lab.stop(spec.name)
            private_lab.start(spec)  # the same port: the spec chose it
            third = await session.read()
            return [first, second, kept, third, session.connects]
        finally:
            await session.close()

    first, second, kept, third, connects = asyncio.run(scenario())
    assert not first.errors and not second.errors and kept == 1  # two reads, one connection
    assert not third.errors and third.readings["ups.status"]  # the broken one replaced within the read
    assert connects == 2


def test_modbus_session_reconnects_after_the_device_restarts(private_lab: Lab) -> None:
    spec = _spec(lambda: modbus_spec(private_lab.lab_dir, "drups"))
    ep = ModbusEndpoint.from_record(private_lab.start(spec))
    session = ModbusSession(ep.host, ep.port, ep.unit, register_map="drups-eurodiesel", timeout_s=2.0)

    async def scenario() -> list[Any]:
        try:
            first = await session.read()
            second = await session.read()
            kept = session.connects
            private_lab.stop(spec.name)
            await asyncio.sleep(0.2)  # the closed connection is noticed (or not) by pymodbus
            down = await session.read()
            private_lab.start(spec)
            again = await session.read()
            return [first, second, kept, down, again, session.connects]
        finally:
            await session.close()

    first, second, kept, down, again, connects = asyncio.run(scenario())
    assert not first.errors and not second.errors and kept == 1
    assert first.vendor == second.vendor and second.readings == {**second.readings, **{"drups.mode": "mains"}}
    assert down.errors and down.errors[0].kind in ("refused", "timeout", "error")
    assert not again.errors and again.readings["drups.mode"] == "mains" and again.vendor == first.vendor
    assert connects >= 2


def test_poller_survives_a_database_error_and_polls_devices_added_afterwards(
        sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """The device list cannot be read for a while (its table is gone: a real error from the
    database, as a held lock or a lost server gives): the poller logs why, backs off, and once the
    database answers again polls a device added meanwhile, without a restart."""
    from sqlalchemy import text

    from infra_mgr.power.readings import PowerProblem, PowerReadings

    read: list[str] = []

    async def reader(dev: Any, _timeout: float) -> PowerReadings:
        read.append(dev.name)
        return PowerReadings(dev.source, errors=[PowerProblem(dev.source, "read", "error", "no device here")])

    def set_table(name: str, to: str) -> None:
        with sqlite_engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {name} RENAME TO {to}"))

    async def scenario() -> None:
        poller = PowerPoller(sqlite_engine, b"k" * 32, reader=reader)
        set_table("power_device", "power_device_away")
        task = asyncio.create_task(poller.run(refresh_s=0.2))
        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while sum("reading the device list failed" in r.getMessage() for r in caplog.records) < 2:
            assert not task.done(), f"the poller ended: {task.exception() if not task.cancelled() else 'cancelled'}"
            assert loop.time() < end, "the failed cycles were not logged"
            await asyncio.sleep(0.05)
        set_table("power_device_away", "power_device")
        with Session(sqlite_engine) as s:
            s.add(PowerDevice(name="added-later", kind="ups", source="nut://127.0.0.1:9/ups"))
            s.commit()
        try:
            while "added-later" not in read:
                assert not task.done(), "the poller ended"
                assert loop.time() < end + 30, "the device added after the error was never polled"
                await asyncio.sleep(0.05)
            while True:  # the reading's change (a status other than "never") reaches the database
                with Session(sqlite_engine) as s:
                    dev = s.exec(select(PowerDevice).where(PowerDevice.name == "added-later")).one()
                if dev.status != "never":
                    break
                assert loop.time() < end + 30, "the device stays 'never'"
                await asyncio.sleep(0.05)
        finally:
            poller.stop()
            await asyncio.wait_for(task, 30)

    with caplog.at_level("ERROR", logger="infra_mgr.power"):
        asyncio.run(scenario())
    failed = [r for r in caplog.records if "reading the device list failed" in r.getMessage()]
    assert failed and "no such table" in failed[0].getMessage()
