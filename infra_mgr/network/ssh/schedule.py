"""The scheduled configuration backup of a serving process: every device once per
``backup_interval_s`` (default a day), the run recorded with trigger "schedule".

The next run is due one interval after the last scheduled run *started* (read from the stored
runs), so a restart neither skips a day nor backs everything up again at once; a serving process
that finds no scheduled run yet waits ``first_delay_s`` before its first, leaving the start to
discovery. Runs never overlap: the loop awaits each run before it sleeps again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.network.ssh.models import BackupRun, BackupTrigger

log = logging.getLogger("infra_mgr.network.ssh")


def next_due(engine: Engine, interval_s: float, first_delay_s: float, now: dt.datetime | None = None) -> dt.datetime:
    """When the next scheduled backup is due: one interval after the last scheduled run started."""
    now = now or utcnow()
    with Session(engine) as session:
        last = session.exec(select(BackupRun.started_at).where(BackupRun.trigger == BackupTrigger.schedule.value)
                            .order_by(col(BackupRun.started_at).desc()).limit(1)).first()
    if last is None:
        return now + dt.timedelta(seconds=first_delay_s)
    return last + dt.timedelta(seconds=interval_s)


class BackupSchedule:
    def __init__(self, engine: Engine, master: bytes, interval_s: float, first_delay_s: float = 300.0) -> None:
        self.engine = engine
        self.master = master
        self.interval_s = interval_s
        self.first_delay_s = first_delay_s
        self._stop = asyncio.Event()

    async def run(self) -> None:
        from infra_mgr.network.ssh.backup import run_backup

        while not self._stop.is_set():
            due = await asyncio.to_thread(next_due, self.engine, self.interval_s, self.first_delay_s)
            wait = (due - utcnow()).total_seconds()
            if wait > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), wait)
                    return
                except TimeoutError:
                    pass
            try:
                await run_backup(self.engine, self.master, trigger=BackupTrigger.schedule.value, actor="schedule")
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - logged; the run is recorded as failed and the next is due as usual
                log.exception("scheduled configuration backup failed")
                try:
                    await asyncio.wait_for(self._stop.wait(), min(self.interval_s, 600.0))
                    return
                except TimeoutError:
                    pass

    def stop(self) -> None:
        self._stop.set()
