"""The scheduled configuration backup: when the next run is due, and that a serving process's
schedule really records a run with trigger "schedule" (no devices: nothing to reach)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from sqlmodel import Session, select

from infra_mgr.db import make_engine, upgrade
from infra_mgr.network.ssh.models import BackupRun
from infra_mgr.network.ssh.schedule import BackupSchedule, next_due

NOW = dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC)


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'schedule.db'}"
    upgrade(url)
    return make_engine(url)


def test_next_run_is_one_interval_after_the_last_scheduled_start(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    assert next_due(engine, 86400, 300, now=NOW) == NOW + dt.timedelta(seconds=300)  # never ran: after the delay
    with Session(engine) as s:
        s.add(BackupRun(started_at=NOW - dt.timedelta(hours=5), trigger="schedule", status="ok"))
        s.add(BackupRun(started_at=NOW - dt.timedelta(hours=1), trigger="manual", status="ok"))  # not counted
        s.commit()
    assert next_due(engine, 86400, 300, now=NOW) == NOW + dt.timedelta(hours=19)
    engine.dispose()


def test_the_schedule_records_a_scheduled_run_and_stops(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(tmp_path)
    monkeypatch.setenv("INFRA_MGR_DATA_DIR", str(tmp_path / "data"))

    async def scenario() -> None:
        schedule = BackupSchedule(engine, b"k" * 32, interval_s=3600, first_delay_s=0)
        task = asyncio.create_task(schedule.run())
        for _ in range(200):
            with Session(engine) as s:
                if s.exec(select(BackupRun).where(BackupRun.status != "running")).first():
                    break
            await asyncio.sleep(0.05)
        schedule.stop()
        await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
    with Session(engine) as s:
        runs = s.exec(select(BackupRun)).all()
    assert [(r.trigger, r.actor, r.devices) for r in runs] == [("schedule", "schedule", 0)]
    engine.dispose()
