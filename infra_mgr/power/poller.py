"""The power poller: reads every power device at its interval (critical ones every second),
folds each reading through the power service and publishes changes to live dashboards.

It runs inside the ``serve`` process (or ``infra-mgr power poll``) as asyncio tasks: one loop per
device, so a slow or dead device never delays another. Each loop keeps its connection to the device
open (:func:`infra_mgr.power.probe.open_session`) and what it knows of the device (status, state,
flags, last good reading) in memory (the service's :class:`~infra_mgr.power.service.Tracker`), so a
reading is judged once, without the database; only a reading that changes something (events, a new
status, state or flags, an outage's timeline) is handed to the service as that change
(:meth:`~infra_mgr.power.service.PowerService.record`), which writes it at once in a transaction of
its own, so detection is never delayed. Every reading's live message is built by the read side
(:func:`infra_mgr.power.views.live_message`), the same shape the dashboard and the API show.
Everything else — each device's latest readings and ``last_ok``, the lowest battery and kinetic
levels of an open outage, telemetry samples — is written for all devices once a second in one
transaction. Roll-up and pruning run every minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.common import utcnow
from infra_mgr.inventory.credentials import reveal
from infra_mgr.power import views
from infra_mgr.power.collectors.base import DeviceSession, redact_url
from infra_mgr.power.models import PowerDevice
from infra_mgr.power.probe import open_session
from infra_mgr.power.readings import PowerProblem, PowerReadings
from infra_mgr.power.service import PowerService, Tracker
from infra_mgr.power.sources import full_source

if TYPE_CHECKING:
    from infra_mgr.power.service import LiveRow

log = logging.getLogger("infra_mgr.power")
FLUSH_EVERY_S = 1.0  # the status view shows a device live while its last_ok is under 3 s old
RETRY_FIRST_S = 0.5  # first back-off after the device list could not be read


@dataclass(frozen=True)
class DeviceRef:
    """What a read needs: the device's address and (decrypted, in memory only) credential; a
    change of any of it restarts the device's loop."""

    id: int
    name: str
    kind: str
    source: str
    secrets: dict[str, Any]
    interval_s: float
    site_id: int | None = None
    poll_interval_s: float = 1.0


Reader = Callable[[DeviceRef, float], Awaitable[PowerReadings]]
SessionFactory = Callable[[DeviceRef, float], DeviceSession]


def default_session(dev: DeviceRef, timeout_s: float) -> DeviceSession:
    """A kept connection through the collectors' URL dispatch (``infra-mgr power probe`` reads
    the same URLs once, with :func:`infra_mgr.power.probe.read_url`)."""
    return open_session(dev.source, timeout_s=timeout_s, secrets=dev.secrets)


class _ReaderSession:
    """A plain read function (``reader=``) seen as a session: nothing kept between reads."""

    def __init__(self, reader: Reader, dev: DeviceRef, timeout_s: float) -> None:
        self.reader, self.dev, self.timeout_s, self.source = reader, dev, timeout_s, dev.source

    async def read(self) -> PowerReadings:
        return await self.reader(self.dev, self.timeout_s)

    async def close(self) -> None:
        return None


class _LazySession:
    """Opens the real session on the first read, and again after opening failed (a wrong URL or a
    broken register map becomes that read's error, so the device goes ``comm_lost`` as with any
    other failure, and a fixed map is picked up on the next read)."""

    def __init__(self, factory: SessionFactory, dev: DeviceRef, timeout_s: float) -> None:
        self.factory, self.dev, self.timeout_s, self.source = factory, dev, timeout_s, dev.source
        self.inner: DeviceSession | None = None

    async def read(self) -> PowerReadings:
        if self.inner is None:
            self.inner = self.factory(self.dev, self.timeout_s)
        return await self.inner.read()

    async def close(self) -> None:
        inner, self.inner = self.inner, None
        if inner is not None:
            await inner.close()


# What the hub carries: a device's live message (serialised once, by the stream) or an event's dict.
HubItem = views.LiveMessage | dict[str, Any]


class LiveHub:
    """In-process publish/subscribe for server-sent events; a slow subscriber loses old items, not new."""

    def __init__(self, maxsize: int = 256) -> None:
        self._subs: set[asyncio.Queue[HubItem]] = set()
        self.maxsize = maxsize

    def publish(self, item: HubItem) -> None:
        for q in list(self._subs):
            if q.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(item)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[HubItem]]:
        """A queue that receives every item published while the context is open. Waiting on
        ``queue.get()`` may be cancelled (keep-alive timeouts) without losing the subscription."""
        q: asyncio.Queue[HubItem] = asyncio.Queue(self.maxsize)
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
                 service: PowerService | None = None, sessions: SessionFactory | None = None) -> None:
        self.engine = engine
        self.master = master
        self.hub = hub or LiveHub()
        if reader is not None:
            self.sessions: SessionFactory = lambda dev, timeout: _ReaderSession(reader, dev, timeout)
        else:
            self.sessions = sessions or default_session
        self.service = service or PowerService(engine)
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._live: dict[int, LiveRow] = {}  # latest good reading per device, until the next flush
        self._context = views.LiveContext()  # the chain and sites, as the live messages see them
        self._latest: dict[int, views.DeviceLive] = {}  # each device's last live state (its site's state)
        self._samples: list[tuple[int, str, int, float]] = []
        self._stop = asyncio.Event()
        self.reads = 0
        self.changes = 0  # readings that needed a transaction of their own (``PowerService.apply``)
        self.flushes = 0  # batched writes done

    def _devices(self) -> list[tuple[DeviceRef, Tracker]]:
        with Session(self.engine) as s:
            rows = s.exec(select(PowerDevice).where(PowerDevice.enabled == True)).all()  # noqa: E712
            devices = [(DeviceRef(d.id or 0, d.name, d.kind, full_source(self.master, d.source, d.source_secret),
                                  reveal(s, self.master, d.credential_id) if d.credential_id else {},
                                  d.poll_interval_s if d.critical else max(d.poll_interval_s, 5.0), d.site_id,
                                  d.poll_interval_s),
                        self.service.tracker(d)) for d in rows]
            self._context = views.live_context(s)
        return devices

    @staticmethod
    def _timeout(dev: DeviceRef) -> float:
        return max(0.5, min(dev.interval_s * 0.9, 3.0))

    async def _poll_one(self, dev: DeviceRef, memory: Tracker) -> None:
        loop = asyncio.get_running_loop()
        session = _LazySession(self.sessions, dev, self._timeout(dev))
        try:
            while not self._stop.is_set():
                started = loop.time()
                try:
                    if not await self._read_and_apply(dev, session, memory):
                        return  # the device was deleted meanwhile
                except Exception:  # noqa: BLE001 - one bad read or a busy database must not end the loop
                    log.exception("power: polling %s failed; trying again", dev.name)
                # a plain sleep (no waiter task per cycle): run() cancels the loops when it stops
                await asyncio.sleep(max(0.0, dev.interval_s - (loop.time() - started)))
        finally:
            with contextlib.suppress(Exception):
                await session.close()

    async def _read(self, dev: DeviceRef, session: DeviceSession) -> PowerReadings:
        timeout = self._timeout(dev)
        try:
            async with asyncio.timeout(timeout + 0.5):
                return await session.read()
        except TimeoutError:
            shown = redact_url(dev.source)
            return PowerReadings(shown, errors=[PowerProblem(shown, "read", "timeout",
                                                             f"no answer within {timeout:.1f} s")])
        except Exception as exc:  # noqa: BLE001 - a broken device is reported, the poller goes on
            shown = redact_url(dev.source)
            return PowerReadings(shown, errors=[PowerProblem(shown, "read", "error", str(exc))])

    async def _read_and_apply(self, dev: DeviceRef, session: DeviceSession, memory: Tracker) -> bool:
        """One reading: judged once in memory; a transaction (one worker-thread hop) only when it
        changes something, writing that change; the rest is queued for the next batched write."""
        reading = await self._read(dev, session)
        self.reads += 1
        now = utcnow()
        seen = memory.observe(reading, now)
        events: list[dict[str, Any]] = []
        if seen.change is not None:
            try:
                applied = await asyncio.to_thread(self.service.record, seen.change)
            except LookupError:
                return False
            self.changes += 1
            memory.settle(applied)
            events = applied.events
        if seen.row is not None:
            earlier = self._live.get(dev.id)
            self._live[dev.id] = earlier.merge(seen.row) if earlier else seen.row
        self._samples.extend(PowerService.named_samples(dev.id, reading.readings, now))
        message = self._latest[dev.id] = self._live_message(dev, memory, now)
        if self.hub.subscribers:  # serialised once, by the stream
            self.hub.publish(message)
        for ev in events:
            self.hub.publish({"type": "event", **ev})
        return True

    def _live_message(self, dev: DeviceRef, memory: Tracker, now: dt.datetime) -> views.LiveMessage:
        """The stream's message for this reading, by the read side's rule, from what is in memory
        (kept as the device's latest live state, for the site states of the others' messages)."""
        base = self._context.facts.get(dev.id) or views.DeviceFacts(
            dev.id, dev.name, dev.kind, dev.site_id, "never", "unknown", (), None, dev.poll_interval_s, {})
        known = memory.known
        facts = views.with_reading(base, status=known.status, state=known.state, flags=known.flags,
                                   last_ok=known.last_ok, readings=memory.readings)
        return views.live_message(self._context, facts, self._latest, now)

    async def flush(self) -> None:
        """Write what the device loops queued (latest readings and ``last_ok`` of every device,
        an open outage's lowest levels, telemetry) in one transaction in a worker thread. When it
        fails the rows are kept for the next try (unless a newer reading replaced them); the
        samples of that second are lost, as a telemetry gap rather than an ever-growing queue."""
        rows, self._live = self._live, {}
        samples, self._samples = self._samples, []
        if not rows and not samples:
            return
        try:
            await asyncio.to_thread(self.service.flush, rows, samples)
            self.flushes += 1
        except Exception:  # noqa: BLE001 - the next second tries again
            log.exception("power: writing %d device rows and %d telemetry samples failed", len(rows), len(samples))
            for dev_id, row in rows.items():
                newer = self._live.get(dev_id)
                self._live[dev_id] = row.merge(newer) if newer else row

    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_rollup = time.monotonic()
        due = loop.time() + FLUSH_EVERY_S
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, due - loop.time()))
            due = max(due + FLUSH_EVERY_S, loop.time() + FLUSH_EVERY_S / 4)  # a fixed cadence, never a burst
            await self.flush()
            if time.monotonic() - last_rollup >= 60:
                last_rollup = time.monotonic()
                try:
                    await asyncio.to_thread(self.service.store.rollup)
                    await asyncio.to_thread(self.service.store.prune)
                except Exception:  # noqa: BLE001 - tried again in a minute (roll-ups are idempotent)
                    log.exception("power: telemetry roll-up failed")
        await self.flush()  # what the loops read last, written before stopping

    async def run(self, refresh_s: float = 10.0) -> None:
        """Poll until ``stop()``; picks up added, changed and removed devices every ``refresh_s``."""
        flusher = asyncio.create_task(self._flush_loop())
        known: dict[int, DeviceRef] = {}
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    current = {d.id: (d, t) for d, t in await asyncio.to_thread(self._devices)}
                except Exception as exc:  # noqa: BLE001 - a locked or unreachable database must not end polling
                    # The device loops already running go on; the list is read again after a back-off
                    # (doubling up to ``refresh_s``), so devices added meanwhile are picked up once
                    # the database answers again.
                    failures += 1
                    wait = min(refresh_s, RETRY_FIRST_S * 2 ** min(failures - 1, 16))
                    log.error("power: reading the device list failed (%s: %s); trying again in %.1f s",
                              type(exc).__name__, exc, wait, exc_info=exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), wait)
                    continue
                if failures:
                    log.info("power: device list read again after %d failed attempts", failures)
                    failures = 0
                for dev_id, (dev, tracker) in current.items():
                    ended = dev_id in self._tasks and self._tasks[dev_id].done()
                    if known.get(dev_id) != dev or ended:
                        if dev_id in self._tasks:
                            self._tasks.pop(dev_id).cancel()
                        self._tasks[dev_id] = asyncio.create_task(self._poll_one(dev, tracker))
                for dev_id in set(self._tasks) - set(current):
                    self._tasks.pop(dev_id).cancel()
                known = {dev_id: dev for dev_id, (dev, _tracker) in current.items()}
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
