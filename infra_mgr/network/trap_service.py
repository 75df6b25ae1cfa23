"""Notifications into the event log (service side): :class:`TrapFacts` in, ``event`` rows out.

The receiver (``traps.py``) knows SNMP and no database; this module knows the database and no
SNMP. Each notification becomes one event through ``events.service.record`` — kind and severity
from the data tables of ``trap_kinds`` — attached to the device whose management address sent it
(and that device's site). A notification from an address no device has is still recorded, with no
device and ``data.source``, so an unknown sender is visible rather than lost.

Database work runs in a worker thread (``asyncio.to_thread``) in short transactions, so the event
loop keeps receiving while SQLite or PostgreSQL commits; notifications that queue up meanwhile are
written together in one transaction. After the commit, events whose trap kind asks for it call
``repoll(device_id)`` — the discovery service's "poll this device now" — coalesced per device so a
flapping link does not start a poll per trap. A notification saying a device's configuration
changed calls ``backup(device_id)`` (the configuration backup of that device) once
``backup_debounce_s`` have passed without another such notification from it (at most
``backup_max_delay_s`` after the first), so a burst of changes costs one backup of the end state,
not one per change. Backups started by notifications share one limit (``backup_concurrency``): a
storm of changes across the city opens at most that many SSH sessions at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import col, select

from infra_mgr.db import read_session
from infra_mgr.events.models import Event, EventRead
from infra_mgr.events.service import record
from infra_mgr.inventory.models import Device
from infra_mgr.network import trap_kinds
from infra_mgr.network.traps import ReceiverConfig, ReceiverStats, TrapFacts, TrapReceiver

log = logging.getLogger("infra_mgr.network.trap_service")

RepollFn = Callable[[int], Awaitable[None] | None]
EventCallback = Callable[[EventRead], None]


@dataclass(frozen=True)
class _DeviceRef:
    id: int
    site_id: int | None
    hostname: str


class _PerDevice:
    """At most one run of ``action`` per device at a time: asked again while it runs, it runs once
    more after (not once per ask), so a burst of traps costs one or two runs, never a pile-up.
    ``before`` is awaited ahead of each run (the backups' quiet time); ``slots`` bounds the runs of
    all devices together. A failing run is logged, never raised into trap handling."""

    def __init__(self, action: RepollFn, what: str, *, before: Callable[[int], Awaitable[None]] | None = None,
                 slots: asyncio.Semaphore | None = None) -> None:
        self.action = action
        self.what = what
        self.before = before
        self.slots = slots
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.again: set[int] = set()

    def ask(self, device_id: int) -> None:
        running = self.tasks.get(device_id)
        if running is not None and not running.done():
            self.again.add(device_id)
            return
        self.tasks[device_id] = asyncio.create_task(self._run(device_id), name=f"trap-{self.what}-{device_id}")

    async def _run(self, device_id: int) -> None:
        try:
            while True:
                if self.before is not None:
                    await self.before(device_id)
                self.again.discard(device_id)
                try:
                    async with self.slots if self.slots is not None else contextlib.nullcontext():
                        result = self.action(device_id)
                        if inspect.isawaitable(result):
                            await result
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - a failing run must not stop trap handling
                    log.exception("%s of device %s after a trap failed", self.what, device_id)
                if device_id not in self.again:
                    return
        finally:
            if self.tasks.get(device_id) is asyncio.current_task():
                del self.tasks[device_id]


class TrapHandler:
    """Writes notifications as events and asks for re-polls.

    ``repoll`` may be a coroutine function or a plain function (called in the event loop, so it
    must be quick — e.g. enqueue a job). Its failures are logged, never raised into the handler.
    """

    def __init__(self, engine: Engine, repoll: RepollFn | None = None, *, backup: RepollFn | None = None,
                 backup_debounce_s: float = 30.0, backup_max_delay_s: float | None = None,
                 backup_concurrency: int = 16) -> None:
        self.engine = engine
        self._backup_debounce_s = backup_debounce_s
        # a device that never stops changing is still backed up, this long after its first change
        self._backup_max_delay_s = backup_max_delay_s if backup_max_delay_s is not None else 10 * backup_debounce_s
        self._backup_last: dict[int, float] = {}  # device -> loop time of its latest change notification
        self._repolls = _PerDevice(repoll, "re-poll") if repoll is not None else None
        self._backups = (_PerDevice(backup, "backup", before=self._quiet,
                                    slots=asyncio.Semaphore(max(1, backup_concurrency)))
                         if backup is not None else None)

    async def handle(self, facts: TrapFacts) -> EventRead:
        """Record one notification; returns the stored event."""
        return (await self.handle_batch([facts]))[0]

    async def handle_batch(self, batch: Sequence[TrapFacts]) -> list[EventRead]:
        """Record several notifications in one transaction (off the event loop), then re-poll."""
        if not batch:
            return []
        stored = await asyncio.to_thread(self._store, batch)
        for event, repoll, backup in stored:
            if repoll and event.device_id is not None:
                self._schedule_repoll(event.device_id)
            if backup and event.device_id is not None:
                self._schedule_backup(event.device_id)
        return [event for event, _, _ in stored]

    def store(self, batch: Sequence[TrapFacts]) -> list[tuple[EventRead, bool]]:
        """Synchronous core: one short transaction for the whole batch. Returns each stored event
        with whether its trap kind asks for a re-poll."""
        return [(event, repoll) for event, repoll, _ in self._store(batch)]

    def _store(self, batch: Sequence[TrapFacts]) -> list[tuple[EventRead, bool, bool]]:
        addresses = {f.source_address for f in batch} | {f.agent_address for f in batch if f.agent_address}
        pending: list[tuple[Event, bool, bool]] = []
        with read_session(self.engine) as session:
            rows = session.exec(
                select(col(Device.id), col(Device.site_id), col(Device.hostname), col(Device.management_address))
                .where(col(Device.management_address).in_(sorted(addresses)))
            ).all()
            devices = {addr: _DeviceRef(int(did), site_id, hostname)
                       for did, site_id, hostname, addr in rows if did is not None}
            for facts in batch:
                # The sender's address first; a v1 agent-addr covers traps relayed by a proxy.
                device = devices.get(facts.source_address) or (
                    devices.get(facts.agent_address) if facts.agent_address else None)
                spec = trap_kinds.describe(facts, who=device.hostname if device else facts.source_address)
                event = record(session, spec.kind, spec.message, severity=spec.severity,
                               site_id=device.site_id if device else None,
                               device_id=device.id if device else None, data=spec.data)
                event.time = facts.received_at  # when it happened, not when the batch committed
                pending.append((event, spec.repoll, spec.backup))
            session.flush()
        return [(EventRead.model_validate(ev), repoll, backup) for ev, repoll, backup in pending]

    # ..................................................................... re-polls, backups

    def _schedule_repoll(self, device_id: int) -> None:
        if self._repolls is not None:
            self._repolls.ask(device_id)

    def _schedule_backup(self, device_id: int) -> None:
        if self._backups is not None:
            self._backup_last[device_id] = asyncio.get_running_loop().time()
            self._backups.ask(device_id)  # traps while it waits for quiet join this backup

    async def _quiet(self, device_id: int) -> None:
        """Wait until ``backup_debounce_s`` passed since the device's latest change notification,
        or ``backup_max_delay_s`` since this wait began, whichever comes first."""
        loop = asyncio.get_running_loop()
        limit = loop.time() + self._backup_max_delay_s
        while True:
            due = min(self._backup_last.get(device_id, loop.time()) + self._backup_debounce_s, limit)
            if loop.time() >= due:
                return
            await asyncio.sleep(due - loop.time())

    async def aclose(self, timeout: float = 5.0) -> None:
        """Let running re-polls and backups finish (up to ``timeout``), then cancel what is left."""
        tasks = [t for runs in (self._repolls, self._backups) if runs is not None
                 for t in runs.tasks.values() if not t.done()]
        if not tasks:
            return
        _, still = await asyncio.wait(tasks, timeout=timeout)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)


@dataclass
class PipelineStats:
    """Counters of the receiver and of the path into the database."""

    receiver: ReceiverStats
    events_written: int = 0
    queue_overflows: int = 0  # notifications dropped because the database fell too far behind
    store_failures: int = 0  # notifications lost after the database refused them repeatedly
    by_kind: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"receiver": self.receiver.to_json(), "events_written": self.events_written,
                "queue_overflows": self.queue_overflows, "store_failures": self.store_failures,
                "by_kind": dict(self.by_kind)}


class TrapPipeline:
    """Receiver → bounded queue → :class:`TrapHandler`, started and stopped as one.

    ``async with TrapPipeline(engine, cfg) as pipe:`` listens on ``pipe.address`` until the block
    ends; leaving it stops the socket first, then writes what is still queued, then waits for
    re-polls. The queue is bounded so a trap storm against a stalled database costs memory only up
    to ``queue_size`` (the overflow is counted, and the socket's receive buffer absorbs bursts).
    """

    def __init__(self, engine: Engine, config: ReceiverConfig, *, repoll: RepollFn | None = None,
                 on_event: EventCallback | None = None, queue_size: int = 10_000, batch_size: int = 200,
                 store_attempts: int = 3, drain_timeout: float = 10.0, backup: RepollFn | None = None,
                 backup_debounce_s: float = 30.0, backup_concurrency: int = 16) -> None:
        self.handler = TrapHandler(engine, repoll, backup=backup, backup_debounce_s=backup_debounce_s,
                                   backup_concurrency=backup_concurrency)
        self.receiver = TrapReceiver(config, self._enqueue)
        self.stats = PipelineStats(self.receiver.stats)
        self._on_event = on_event
        self._queue: asyncio.Queue[TrapFacts] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._store_attempts = max(1, store_attempts)
        self._drain_timeout = drain_timeout
        self._consumer: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.receiver.address

    async def __aenter__(self) -> TrapPipeline:
        self._consumer = asyncio.create_task(self._consume(), name="trap-consumer")
        try:
            await self.receiver.start()
        except BaseException:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.receiver.stop()
        if self._consumer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout=self._drain_timeout)
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        await self.handler.aclose()

    def _enqueue(self, facts: TrapFacts) -> None:
        try:
            self._queue.put_nowait(facts)
        except asyncio.QueueFull:
            self.stats.queue_overflows += 1
            log.warning("trap queue full: dropped a notification from %s", facts.source_address)

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                events = await self._store(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()
            for event in events:
                self.stats.events_written += 1
                self.stats.by_kind[event.kind] = self.stats.by_kind.get(event.kind, 0) + 1
                if self._on_event is not None:
                    try:
                        self._on_event(event)
                    except Exception:  # noqa: BLE001
                        log.exception("trap pipeline: on_event callback failed")

    async def _store(self, batch: list[TrapFacts]) -> list[EventRead]:
        """Write a batch, retrying a few times (a locked SQLite file, a PostgreSQL failover)."""
        for attempt in range(1, self._store_attempts + 1):
            try:
                return await self.handler.handle_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                if attempt == self._store_attempts:
                    self.stats.store_failures += len(batch)
                    log.exception("trap pipeline: %d notification(s) could not be stored", len(batch))
                    return []
                log.warning("trap pipeline: storing %d notification(s) failed, retrying", len(batch), exc_info=True)
                await asyncio.sleep(0.5 * attempt)
        return []


async def run_trap_receiver(engine: Engine, config: ReceiverConfig, *, repoll: RepollFn | None = None,
                            on_event: EventCallback | None = None, stop: asyncio.Event | None = None,
                            on_ready: Callable[[TrapPipeline], None] | None = None,
                            backup: RepollFn | None = None, backup_debounce_s: float = 30.0,
                            backup_concurrency: int = 16) -> PipelineStats:
    """Receive notifications into the event log until ``stop`` is set (or the task is cancelled).

    Shutdown is clean either way: the socket closes, queued notifications are written, re-polls
    finish or are cancelled. ``backup(device_id)`` backs a device up after a configuration-changed
    notification (debounced by ``backup_debounce_s``; at most ``backup_concurrency`` at a time).
    ``on_ready`` is called once listening (it gets the pipeline, whose ``address`` is the bound
    port). Returns the final counters.
    """
    pipeline = TrapPipeline(engine, config, repoll=repoll, on_event=on_event, backup=backup,
                            backup_debounce_s=backup_debounce_s, backup_concurrency=backup_concurrency)
    async with pipeline:
        if on_ready is not None:
            on_ready(pipeline)
        await (stop.wait() if stop is not None else asyncio.Event().wait())
    return pipeline.stats
