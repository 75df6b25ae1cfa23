"""The power poller: reads every power device at its interval (critical ones every second),
folds each reading through the power service and publishes changes to live dashboards.

It runs inside the ``serve`` process (or ``infra-mgr power poll``) as asyncio tasks: one loop per
device, so a slow or dead device never delays another. Samples from all devices are written to the
telemetry store in one batch per second; roll-up and pruning run every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.common import utcnow
from infra_mgr.inventory.credentials import reveal
from infra_mgr.power.models import PowerDevice
from infra_mgr.power.readings import PowerProblem, PowerReadings
from infra_mgr.power.service import PowerService

log = logging.getLogger("infra_mgr.power")


@dataclass(frozen=True)
class DeviceRef:
    """What a read needs: the device's address and (decrypted, in memory only) credential."""

    id: int
    name: str
    kind: str
    source: str
    secrets: dict[str, Any]
    interval_s: float


Reader = Callable[[DeviceRef, float], Awaitable[PowerReadings]]


async def default_reader(dev: DeviceRef, timeout_s: float) -> PowerReadings:
    """Read through the collectors' URL dispatch (``infra-mgr power probe`` uses the same)."""
    from infra_mgr.power.probe import read_url

    return await read_url(dev.source, timeout_s=timeout_s, secrets=dev.secrets)


class LiveHub:
    """In-process publish/subscribe for server-sent events; a slow subscriber loses old items, not new."""

    def __init__(self, maxsize: int = 256) -> None:
        self._subs: set[asyncio.Queue[dict[str, Any]]] = set()
        self.maxsize = maxsize

    def publish(self, item: dict[str, Any]) -> None:
        for q in list(self._subs):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(item)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue that receives every item published while the context is open. Waiting on
        ``queue.get()`` may be cancelled (keep-alive timeouts) without losing the subscription."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.maxsize)
        self._subs.add(q)
        try:
            yield q
        finally:
            self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        return len(self._subs)


class PowerPoller:
    def __init__(self, engine: Engine, master: bytes, hub: LiveHub | None = None, reader: Reader | None = None,
                 service: PowerService | None = None) -> None:
        self.engine = engine
        self.master = master
        self.hub = hub or LiveHub()
        self.reader = reader or default_reader
        self.service = service or PowerService(engine)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._pending: list[tuple[int, int, float]] = []
        self._stop = asyncio.Event()
        self.reads = 0

    def _devices(self) -> list[DeviceRef]:
        with Session(self.engine) as s:
            rows = s.exec(select(PowerDevice).where(PowerDevice.enabled == True)).all()  # noqa: E712
            return [DeviceRef(d.id or 0, d.name, d.kind, d.source,
                              reveal(s, self.master, d.credential_id) if d.credential_id else {},
                              d.poll_interval_s if d.critical else max(d.poll_interval_s, 5.0)) for d in rows]

    async def _poll_one(self, dev: DeviceRef) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            started = loop.time()
            try:
                if not await self._read_and_apply(dev):
                    return  # the device was deleted meanwhile
            except Exception:  # noqa: BLE001 - one bad read or a busy database must not end the loop
                log.exception("power: polling %s failed; trying again", dev.name)
            elapsed = loop.time() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, dev.interval_s - elapsed))

    async def _read_and_apply(self, dev: DeviceRef) -> bool:
        timeout = max(0.5, min(dev.interval_s * 0.9, 3.0))
        try:
            reading = await asyncio.wait_for(self.reader(dev, timeout), timeout + 0.5)
        except TimeoutError:
            reading = PowerReadings(dev.source, errors=[PowerProblem(dev.source, "read", "timeout",
                                                                     f"no answer within {timeout:.1f} s")])
        except Exception as exc:  # noqa: BLE001 - a broken device is reported, the poller goes on
            reading = PowerReadings(dev.source, errors=[PowerProblem(dev.source, "read", "error", str(exc))])
        self.reads += 1
        now = utcnow()
        try:
            applied = await asyncio.to_thread(self.service.apply, dev.id, reading, now, False)
        except LookupError:
            return False
        self._pending.extend(await asyncio.to_thread(self.service.samples, dev.id, reading.readings, now))
        self.hub.publish({"type": "device", "id": dev.id, "name": dev.name, "state": applied.state,
                          "flags": applied.flags, "readings": applied.readings,
                          "live": not reading.stale and bool(reading.readings), "time": now.isoformat()})
        for ev in applied.events:
            self.hub.publish({"type": "event", **ev})
        return True

    async def _flush_loop(self) -> None:
        last_rollup = time.monotonic()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
            batch, self._pending = self._pending, []
            try:
                if batch:
                    await asyncio.to_thread(self.service.store.write, batch)
                if time.monotonic() - last_rollup >= 60:
                    last_rollup = time.monotonic()
                    await asyncio.to_thread(self.service.store.rollup)
                    await asyncio.to_thread(self.service.store.prune)
            except Exception:  # noqa: BLE001 - samples of this second are lost; the next batch is tried
                log.exception("power: writing %d telemetry samples failed", len(batch))

    async def run(self, refresh_s: float = 10.0) -> None:
        """Poll until ``stop()``; picks up added, changed and removed devices every ``refresh_s``."""
        flusher = asyncio.create_task(self._flush_loop())
        known: dict[int, DeviceRef] = {}
        try:
            while not self._stop.is_set():
                current = {d.id: d for d in await asyncio.to_thread(self._devices)}
                for dev_id, dev in current.items():
                    ended = dev_id in self._tasks and self._tasks[dev_id].done()
                    if known.get(dev_id) != dev or ended:
                        if dev_id in self._tasks:
                            self._tasks.pop(dev_id).cancel()
                        self._tasks[dev_id] = asyncio.create_task(self._poll_one(dev))
                for dev_id in set(self._tasks) - set(current):
                    self._tasks.pop(dev_id).cancel()
                known = current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), refresh_s)
        finally:
            for t in self._tasks.values():
                t.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._tasks.clear()
            self._stop.set()
            await flusher

    def stop(self) -> None:
        self._stop.set()
