"""Configuration backup (service): choose the devices, build their SSH targets, run the collector,
and store what it returns — versions, each device's state, host keys, compliance findings, events.

Why it is shaped this way:

* The collector (``collector.backup``) knows SSH and no database; this module knows the database
  and no SSH. Secrets are revealed here, live only in the targets handed to the collector, and
  never reach a row, an event or a log: the collector returns configurations already masked.
* Each device's result is written in its own short transaction as soon as it arrives, so a run
  that breaks half-way keeps every device it finished (the run itself is then marked failed), and
  a slow device never holds the database.
* A version is stored only when the masked text's SHA-256 differs from the device's latest, with
  the next number. Two runs at once (a schedule and a trap, or two workers on PostgreSQL) cannot
  both store number N: the unique (device, number) constraint refuses the second and its
  transaction is retried, re-reading the latest version (which by then has the same hash).
* The comparison with the latest version (quadratic in the worst case) runs before the write
  transaction; inside it only the latest version's id is checked again (another run stored one
  meanwhile: compared again). A version is dated when its session opened, and a text read before
  the latest version was collected is not stored as newer than it: two overlapping runs (a trap
  and the schedule) cannot turn a stale read into the newest version. Within one process a device
  is backed up by one run at a time; a second run waits for it.
* A jump host's key is trusted on first use like a device's: recorded the first time, a different
  one refused (and kept as offered, with the same critical event) until an engineer accepts it.
* A device without a stored credential override tries the SSH credentials in their ``priority``
  order, moving on only after a refused login; the one that worked is remembered in its state and
  tried first the next time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.config import Settings, get_settings
from infra_mgr.db import is_sqlite, read_session, write_session
from infra_mgr.errors import NotFound
from infra_mgr.events.models import Severity
from infra_mgr.events.service import record
from infra_mgr.inventory.credentials import reveal
from infra_mgr.inventory.models import Credential, CredentialKind, Device, DeviceStatus, Site
from infra_mgr.network.models import DevicePoll
from infra_mgr.network.ssh import compliance, diff, hostkeys
from infra_mgr.network.ssh.facts import BackupResult, HostKey, JumpHost, SshFailure, SshProblem, SshTarget
from infra_mgr.network.ssh.models import (
    BackupRun,
    BackupStatus,
    BackupTrigger,
    ComplianceFinding,
    ConfigBackupState,
    ConfigVersion,
)
from infra_mgr.network.ssh.platforms import platform_table
from infra_mgr.network.ssh.views import BackupRunRow

log = logging.getLogger("infra_mgr.network.ssh.backup")

CollectFn = Callable[..., Awaitable[list[BackupResult]]]
ProgressFn = Callable[[str, int, int], None]
SSH_KINDS = (CredentialKind.ssh_password.value, CredentialKind.ssh_key.value)
STORE_ATTEMPTS = 5  # transactions retried after a concurrent writer won a unique key or a lock
REASON_MAX = 1000
T = TypeVar("T")


@dataclass
class _Job:
    """One device of a run and what is known about reaching it."""

    device_id: int
    hostname: str
    site_id: int
    site_code: str
    role: str
    address: str
    device_type: str = ""
    port_override: int | None = None
    credentials: list[int] = field(default_factory=list)  # to try, in order
    attempt: int = 0  # index into ``credentials``
    problem: SshProblem | None = None  # set when the device cannot even be tried
    jump: tuple[str, int] | None = None  # the jump host's endpoint of the current credential

    @property
    def credential_id(self) -> int | None:
        return self.credentials[self.attempt] if self.attempt < len(self.credentials) else None


@dataclass
class _Tally:
    devices: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    done: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


class _Stale(Exception):
    """Another run stored a version between the comparison and the write: compare again."""


@dataclass(frozen=True)
class _Prepared:
    """What storing a configuration needs from its comparison with the latest version, computed
    outside the write transaction."""

    latest_id: int | None
    digest: str
    lines: int
    added: int
    removed: int


_busy: set[int] = set()  # device ids a run in this process is backing up now
_busy_lock = threading.Lock()
BUSY_POLL_S = 0.2


def _claim(device_ids: Sequence[int]) -> list[int]:
    """Take the devices no other run holds; returns those taken (released by :func:`_release`)."""
    with _busy_lock:
        free = [d for d in device_ids if d not in _busy]
        _busy.update(free)
        return free


def _release(device_ids: Sequence[int]) -> None:
    with _busy_lock:
        _busy.difference_update(device_ids)


class ComplianceCheck(BaseModel):
    """What re-evaluating every latest configuration found (``infra-mgr config check``)."""

    devices: int
    findings: int
    opened: int
    resolved: int


# ----------------------------------------------------------------------------------- the run


async def run_backup(engine: Engine, master: bytes, *, site_code: str | None = None, device: str | int | None = None,
                     trigger: str = "manual", actor: str = "", concurrency: int | None = None,
                     progress: ProgressFn | None = None, collect: CollectFn | None = None,
                     settings: Settings | None = None,
                     on_start: Callable[[int], None] | None = None) -> BackupRunRow:
    """Back up the active devices (all, one site's, or one device by hostname or id) and return
    the run. ``collect`` is the collector's ``backup`` (injectable); ``progress(hostname, done,
    total)`` is called after each device is stored; ``on_start(run_id)`` once the run is recorded
    (an API call answers with the id while the run goes on)."""
    settings = settings or get_settings()
    trigger = BackupTrigger(trigger).value
    collect = collect or _default_collect
    scope = f"site {site_code}" if site_code else f"device {device}" if device is not None else "all"
    jobs = await asyncio.to_thread(_plan, engine, site_code, device)  # an unknown site/device: NotFound, no run
    run_id = await asyncio.to_thread(_start_run, engine, trigger, actor, scope)
    if on_start is not None:
        on_start(run_id)
    tally = _Tally(devices=len(jobs))
    started = time.monotonic()
    try:
        for job in [j for j in jobs if j.problem is not None]:
            assert job.problem is not None
            await _write(engine, job, BackupResult(job.address, 22, job.device_type, problem=job.problem),
                         trigger, actor, tally, progress)
        waiting = [j for j in jobs if j.problem is None]
        while waiting:  # a device another run is backing up waits for it (its read may be older)
            taken = set(_claim([j.device_id for j in waiting]))
            if not taken:
                await asyncio.sleep(BUSY_POLL_S)
                continue
            pending = [j for j in waiting if j.device_id in taken]
            waiting = [j for j in waiting if j.device_id not in taken]
            try:
                while pending:
                    pending = await _round(engine, master, pending, trigger, actor, tally, progress, collect,
                                           concurrency or settings.backup_concurrency, settings)
            finally:
                _release(list(taken))
    except BaseException as exc:
        try:  # synchronously: a cancelled run must still be marked failed before it unwinds
            _finish_run(engine, run_id, tally, time.monotonic() - started,
                        f"{type(exc).__name__}: {exc}"[:REASON_MAX])
        except Exception:  # noqa: BLE001 - the original failure is the one to raise
            log.exception("backup run %s: could not record its failure", run_id)
        raise
    return await asyncio.to_thread(_finish_run, engine, run_id, tally, time.monotonic() - started, None)


def start_in_background(engine: Engine, master: bytes, *, site_code: str | None = None, device: str | None = None,
                        trigger: str = "manual", actor: str = "", wait_s: float = 10.0) -> int | None:
    """Start a run in a thread of its own (its own event loop: the run outlives the request that
    asked for it) and return its id as soon as the run is recorded; None when it did not start
    within ``wait_s`` (the log says why)."""
    outcome: dict[str, int] = {}
    started = threading.Event()

    def on_start(run_id: int) -> None:
        outcome["run_id"] = run_id
        started.set()

    def work() -> None:
        try:
            asyncio.run(run_backup(engine, master, site_code=site_code, device=device, trigger=trigger, actor=actor,
                                   on_start=on_start))
        except BaseException:  # noqa: BLE001 - the run's row says it failed; the log says why
            log.exception("backup run failed")
        finally:
            started.set()

    threading.Thread(target=work, name="config-backup", daemon=True).start()
    started.wait(wait_s)
    return outcome.get("run_id")


async def backup_device(engine: Engine, master: bytes, device_id: int, trigger: str = "trap") -> BackupRunRow:
    """Back up one device now (a trap said its configuration changed)."""
    return await run_backup(engine, master, device=device_id, trigger=trigger, actor=trigger)


async def _default_collect(targets: Sequence[SshTarget], *, concurrency: int = 16,
                           on_done: Callable[..., Any] | None = None) -> list[BackupResult]:
    from infra_mgr.network.ssh.collector import backup

    return await backup(targets, concurrency=concurrency, on_done=on_done)


async def _round(engine: Engine, master: bytes, jobs: list[_Job], trigger: str, actor: str, tally: _Tally,
                 progress: ProgressFn | None, collect: CollectFn, concurrency: int,
                 settings: Settings) -> list[_Job]:
    """Run the collector once over ``jobs`` (each with its current credential), storing results as
    they arrive. Returns the jobs to try again with their next credential."""
    targets, problems = await asyncio.to_thread(_targets, engine, master, jobs, settings)
    by_endpoint: dict[tuple[str, int], _Job] = {}
    for job in jobs:
        if job.device_id in problems:
            await _write(engine, job, BackupResult(job.address, 22, job.device_type, problem=problems[job.device_id]),
                         trigger, actor, tally, progress)
    run_targets: list[SshTarget] = []
    for job in jobs:
        target = targets.get(job.device_id)
        if target is None:
            continue
        if (target.address, target.port) in by_endpoint:  # two inventory devices, one endpoint
            other = by_endpoint[(target.address, target.port)].hostname
            await _write(engine, job, BackupResult(job.address, target.port, job.device_type, problem=SshProblem(
                SshFailure.error, f"same SSH address as {other}; backed up once, as {other}")),
                trigger, actor, tally, progress)
            continue
        by_endpoint[(target.address, target.port)] = job
        run_targets.append(target)

    retry: list[_Job] = []
    handled: set[tuple[str, int]] = set()
    queue: asyncio.Queue[BackupResult] = asyncio.Queue()

    async def handle(result: BackupResult) -> None:
        key = (result.address, result.port)
        job = by_endpoint.get(key)
        if job is None or key in handled:
            return
        handled.add(key)
        problem = result.problem
        if problem is not None and problem.kind == SshFailure.auth and job.attempt + 1 < len(job.credentials):
            job.attempt += 1
            retry.append(job)
            return
        await _write(engine, job, result, trigger, actor, tally, progress)

    errors: list[BaseException] = []

    async def writer() -> None:
        while True:
            result = await queue.get()
            try:
                await handle(result)
            except Exception as exc:  # noqa: BLE001 - raised after the queue is drained
                errors.append(exc)
            finally:
                queue.task_done()

    async def drain() -> None:
        await asyncio.sleep(0)  # results handed over with call_soon_threadsafe land first
        await queue.join()

    loop = asyncio.get_running_loop()

    def on_done(*args: Any, **_kw: Any) -> None:  # may be called from the collector's worker threads
        for arg in args:
            if isinstance(arg, BackupResult):
                loop.call_soon_threadsafe(queue.put_nowait, arg)

    writer_task = asyncio.create_task(writer(), name="backup-writer")
    try:
        try:
            results = await collect(run_targets, concurrency=concurrency, on_done=on_done) if run_targets else []
        except Exception:
            await drain()  # the devices that finished before the collector broke are kept
            raise
        for result in results:
            queue.put_nowait(result)
        await drain()
    finally:
        writer_task.cancel()
        await asyncio.gather(writer_task, return_exceptions=True)
    if errors:
        raise errors[0]
    for key, job in by_endpoint.items():
        if key not in handled:
            handled.add(key)
            await _write(engine, job, BackupResult(key[0], key[1], job.device_type, problem=SshProblem(
                SshFailure.error, "the collector returned no result for this device")), trigger, actor, tally, progress)
    return retry


async def _write(engine: Engine, job: _Job, result: BackupResult, trigger: str, actor: str, tally: _Tally,
                 progress: ProgressFn | None) -> None:
    outcome, stored_problem = await asyncio.to_thread(store_result, engine, job, result, trigger, actor)
    tally.done += 1
    if outcome == "changed":
        tally.changed += 1
    elif outcome == "unchanged":
        tally.unchanged += 1
    else:
        tally.failed += 1
        problem = stored_problem or SshProblem(SshFailure.error, "no configuration returned")
        tally.failures.append({"device_id": job.device_id, "hostname": job.hostname, "address": job.address,
                               "kind": SshFailure(problem.kind).value, "message": problem.message[:REASON_MAX]})
    if progress is not None:
        progress(job.hostname, tally.done, tally.devices)


# ----------------------------------------------------------------------------------- planning


def _plan(engine: Engine, site_code: str | None, device: str | int | None) -> list[_Job]:
    """The devices in scope with their address, platform and credentials to try (no secrets yet)."""
    table = platform_table()
    with read_session(engine) as session:
        if site_code is not None and session.exec(select(Site.id).where(Site.code == site_code)).first() is None:
            raise NotFound(f"no site {site_code}")
        query = (select(Device, Site.code, DevicePoll.address, ConfigBackupState)
                 .join(Site, col(Site.id) == col(Device.site_id))
                 .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
                 .outerjoin(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id))
                 .where(Device.status == DeviceStatus.active.value))
        if site_code is not None:
            query = query.where(Site.code == site_code)
        if isinstance(device, int):
            query = query.where(Device.id == device)
        elif device is not None:
            query = query.where(Device.hostname == device)
        rows = session.exec(query.order_by(col(Device.hostname))).all()
        if device is not None and not rows:
            raise NotFound(f"no active device {device}")
        ssh_creds = sorted(session.exec(select(Credential).where(col(Credential.kind).in_(SSH_KINDS))).all(),
                           key=lambda c: (int(c.params.get("priority", 100)), c.id or 0))
        ssh_ids = [c.id for c in ssh_creds if c.id is not None]
        jobs: list[_Job] = []
        for dev, code, poll_address, state in rows:
            address = dev.management_address or poll_address or (state.address if state else "")
            if not address or dev.id is None:
                continue
            job = _Job(dev.id, dev.hostname, dev.site_id, code, dev.role, address)
            override = state.device_type if state and state.device_type else ""
            platform = table.get(override) if override else table.for_device(dev.platform, dev.vendor)
            if platform is None:
                job.device_type = override
                job.problem = SshProblem(SshFailure.unsupported, f"no SSH command set for platform "
                                         f"{override or dev.platform or dev.vendor or 'unknown'}")
                jobs.append(job)
                continue
            job.device_type = platform.device_type
            if state is not None and state.port and state.port != 22:
                job.port_override = state.port
            first = [state.credential_id] if state and state.credential_id in ssh_ids else []
            if dev.credential_id in ssh_ids and dev.credential_id not in first:
                first.append(dev.credential_id)
            job.credentials = [c for c in first if c is not None] + [c for c in ssh_ids if c not in first]
            if not job.credentials:
                job.problem = SshProblem(SshFailure.no_credential, "no SSH credential is stored")
            jobs.append(job)
        return jobs


def _targets(engine: Engine, master: bytes, jobs: list[_Job],
             settings: Settings) -> tuple[dict[int, SshTarget], dict[int, SshProblem]]:
    """Each job's target with its current credential's secrets (kept in memory only)."""
    targets: dict[int, SshTarget] = {}
    problems: dict[int, SshProblem] = {}
    secrets: dict[int, dict[str, Any]] = {}
    with read_session(engine) as session:
        keys = hostkeys.known_keys(session)

        def plain(credential_id: int) -> dict[str, Any]:
            if credential_id not in secrets:
                secrets[credential_id] = reveal(session, master, credential_id)
            return secrets[credential_id]

        for job in jobs:
            cid = job.credential_id
            try:
                cred = plain(cid) if cid is not None else {}
                if not cred or cred.get("kind") not in SSH_KINDS:
                    problems[job.device_id] = SshProblem(SshFailure.no_credential, "the SSH credential is gone")
                    continue
                jump = _jump(plain, cred, keys)
                job.jump = (jump.address, jump.port) if jump is not None else None
            except Exception as exc:  # noqa: BLE001 - an unreadable secret fails this device, not the run
                problems[job.device_id] = SshProblem(SshFailure.no_credential,
                                                     f"the stored credential cannot be read ({type(exc).__name__})")
                continue
            port = job.port_override or int(cred.get("port") or 22)
            targets[job.device_id] = SshTarget(
                address=job.address, device_type=job.device_type, username=str(cred.get("username", "")), port=port,
                password=cred.get("password"), private_key=cred.get("private_key"),
                passphrase=cred.get("passphrase"), enable_secret=cred.get("enable_secret"), jump=jump,
                known_key=keys.get((job.address, port)), credential_id=cid,
                connect_timeout_s=settings.backup_connect_timeout_s, auth_timeout_s=settings.backup_auth_timeout_s,
                command_timeout_s=settings.backup_command_timeout_s,
                banner_timeout_s=settings.backup_banner_timeout_s)
    return targets, problems


def _jump(plain: Callable[[int], dict[str, Any]], cred: dict[str, Any],
          keys: dict[tuple[str, int], HostKey]) -> JumpHost | None:
    """The credential's jump host with its recorded key: the jump's credentials go only to the
    host that answered the first time."""
    host = cred.get("jump_host")
    if not host:
        return None
    jump_cred = plain(int(cred["jump_credential_id"])) if cred.get("jump_credential_id") else cred
    port = int(cred.get("jump_port") or 22)
    return JumpHost(address=str(host), port=port,
                    username=str(jump_cred.get("username", "")), password=jump_cred.get("password"),
                    private_key=jump_cred.get("private_key"), passphrase=jump_cred.get("passphrase"),
                    known_key=keys.get((str(host), port)))


# ----------------------------------------------------------------------------------- storing


def _retrying(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction, again when a concurrent writer took the same unique key
    (or, on PostgreSQL, a lock wait timed out): the retry re-reads what the other one stored."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            with write_session(engine) as session:
                return work(session)
        except (IntegrityError, OperationalError):
            if attempt == STORE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _lock_state(session: Session, device_id: int) -> ConfigBackupState:
    """The device's state row, locked for this transaction on PostgreSQL (SQLite's write
    transaction already holds the whole database)."""
    query = select(ConfigBackupState).where(ConfigBackupState.device_id == device_id)
    if session.bind is not None and not is_sqlite(session.bind):  # type: ignore[arg-type]
        query = query.with_for_update()
    state = session.exec(query).first()
    if state is None:
        state = ConfigBackupState(device_id=device_id)
        session.add(state)
        session.flush()  # a concurrent first backup of the same device fails here and is retried
    return state


def store_result(engine: Engine, job: _Job, result: BackupResult, trigger: str,
                 actor: str) -> tuple[str, SshProblem | None]:
    """Write one device's result; returns ``changed`` | ``unchanged`` | ``failed`` and, when
    failed, the problem as stored."""
    for _attempt in range(STORE_ATTEMPTS):
        prepared = _prepare(engine, job, result)

        def work(session: Session, prepared: _Prepared | None = prepared) -> tuple[str, SshProblem | None]:
            return _store(session, job, result, trigger, actor, prepared)

        try:
            return _retrying(engine, work)
        except _Stale:
            continue
    raise RuntimeError(f"{job.hostname}: other runs kept storing versions; this result was not stored")


def _prepare(engine: Engine, job: _Job, result: BackupResult) -> _Prepared | None:
    """Compare the result with the device's latest version before any write transaction: the
    comparison may take long on a large configuration, and other writers must not wait for it."""
    if not result.ok or result.config is None or not result.config.strip():
        return None
    text = result.config
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with read_session(engine) as session:
        latest = session.exec(select(ConfigVersion.id, ConfigVersion.sha256, ConfigVersion.lines)
                              .where(ConfigVersion.device_id == job.device_id)
                              .order_by(col(ConfigVersion.number).desc()).limit(1)).first()
        if latest is not None and latest[1] == digest:
            return _Prepared(latest[0], digest, latest[2], 0, 0)
        old_text = session.get(ConfigVersion, latest[0]).text if latest is not None else ""  # type: ignore[union-attr]
    comparison = diff.compare(old_text, text)
    return _Prepared(latest[0] if latest is not None else None, digest, len(comparison.new), comparison.added,
                     comparison.removed)


def _naive(when: dt.datetime) -> dt.datetime:
    """UTC without tzinfo: SQLite hands stored times back naive."""
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo is not None else when


def _record_jump_key(session: Session, job: _Job, result: BackupResult) -> None:
    """The jump host's key: recorded on first contact, kept as offered (refused) when different."""
    if job.jump is None or result.jump_key is None:
        return
    address, port = job.jump
    known = hostkeys.known_key(session, address, port)
    if known is None or known.fingerprint == result.jump_key.fingerprint:
        hostkeys.record_seen(session, address, port, result.jump_key, None)
    else:
        hostkeys.record_offered(session, address, port, result.jump_key, device_id=None, site_id=job.site_id,
                                hostname=f"jump host {address}")


def _store(session: Session, job: _Job, result: BackupResult, trigger: str, actor: str,
           prepared: _Prepared | None = None) -> tuple[str, SshProblem | None]:
    now = utcnow()
    state = _lock_state(session, job.device_id)
    _record_jump_key(session, job, result)
    state.last_attempt = now
    state.duration_s = result.seconds or None
    state.address = job.address
    previous_status = state.status
    if result.ok and result.config is not None and not result.config.strip():
        # No device has an empty configuration: storing one would make two false "changes".
        result = BackupResult(result.address, result.port, result.device_type, host_key=result.host_key,
                              problem=SshProblem(SshFailure.error, "the backup command returned no configuration"),
                              seconds=result.seconds, prompt=result.prompt)
    if not result.ok or result.config is None:
        problem = result.problem or SshProblem(SshFailure.error, "no configuration returned")
        kind = SshFailure(problem.kind).value
        if problem.kind == SshFailure.hostkey_changed and result.host_key is not None:
            hostkeys.record_offered(session, result.address, result.port, result.host_key, device_id=job.device_id,
                                    site_id=job.site_id, hostname=job.hostname)
        state.status, state.reason_kind, state.reason = BackupStatus.failed.value, kind, problem.message[:REASON_MAX]
        if previous_status != BackupStatus.failed.value:
            state.since = now
            record(session, "config.backup_failed", f"{job.hostname}: configuration backup failed: "
                   f"{problem.message}"[:REASON_MAX], severity=Severity.warning, site_id=job.site_id,
                   device_id=job.device_id, data={"hostname": job.hostname, "address": job.address,
                                                  "kind": kind, "reason": problem.message[:REASON_MAX]})
        session.add(state)
        return "failed", problem

    if result.host_key is not None:
        hostkeys.record_seen(session, result.address, result.port, result.host_key, job.device_id)
    text = result.config
    if prepared is None:  # called directly (tests): compare here
        prepared = _prepare_text(session, job, text)
    digest = prepared.digest
    latest = session.exec(select(ConfigVersion).where(ConfigVersion.device_id == job.device_id)
                          .order_by(col(ConfigVersion.number).desc()).limit(1)).first()
    if (latest.id if latest is not None else None) != prepared.latest_id:
        raise _Stale()
    collected = result.started_at or now
    outcome = "unchanged"
    version = latest
    stale = latest is not None and _naive(latest.collected_at) > _naive(collected)
    if stale:  # read before the latest version was collected: that one is newer, whatever this says
        outcome = "stale"
        log.info("%s: a configuration read at %s is older than version %s; not stored", job.hostname,
                 collected.isoformat(), latest.number if latest else "")
    elif latest is None or latest.sha256 != digest:
        version = ConfigVersion(device_id=job.device_id, number=(latest.number + 1) if latest else 1, sha256=digest,
                                text=text, lines=prepared.lines, size=len(text.encode("utf-8")),
                                collected_at=collected, trigger=trigger, actor=actor, device_type=job.device_type,
                                changed_lines=(prepared.added + prepared.removed) if latest else 0)
        session.add(version)
        session.flush()  # a concurrent run that stored this number first makes this fail: retried
        state.last_change = now
        outcome = "changed"
        if latest is not None:
            record(session, "config.changed", f"{job.hostname}: configuration changed (version {version.number}, "
                   f"+{prepared.added} −{prepared.removed} lines)", severity=Severity.info, site_id=job.site_id,
                   device_id=job.device_id, data={"hostname": job.hostname, "version": version.number,
                                                  "previous": latest.number, "added": prepared.added,
                                                  "removed": prepared.removed, "trigger": trigger, "actor": actor})
    assert version is not None
    state.latest_version_id = version.id
    state.versions = version.number
    state.status, state.reason_kind, state.reason = BackupStatus.ok.value, "", ""
    state.last_success = now
    if job.credential_id is not None:
        state.credential_id = job.credential_id  # the one that worked is tried first next time
    if previous_status != BackupStatus.ok.value:
        state.since = now
    session.add(state)
    if outcome == "stale":
        return "unchanged", None  # the latest version and its findings stay as they are
    _replace_findings(session, job.device_id, job.site_id, job.hostname, version,
                      compliance.evaluate(text, job.device_type, job.role), now)
    return outcome, None


def _prepare_text(session: Session, job: _Job, text: str) -> _Prepared:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    latest = session.exec(select(ConfigVersion).where(ConfigVersion.device_id == job.device_id)
                          .order_by(col(ConfigVersion.number).desc()).limit(1)).first()
    if latest is not None and latest.sha256 == digest:
        return _Prepared(latest.id, digest, latest.lines, 0, 0)
    comparison = diff.compare(latest.text if latest else "", text)
    return _Prepared(latest.id if latest else None, digest, len(comparison.new), comparison.added, comparison.removed)


def _replace_findings(session: Session, device_id: int, site_id: int | None, hostname: str,
                      version: ConfigVersion, findings: list[compliance.Finding],
                      now: Any) -> tuple[int, int]:
    """Make the device's findings those of ``findings``; a rule still failing keeps its
    ``first_seen``. Newly failing rules and resolved ones become events. Returns (opened, resolved)."""
    existing = {f.rule_id: f for f in session.exec(select(ComplianceFinding)
                                                    .where(ComplianceFinding.device_id == device_id)).all()}
    opened = 0
    for finding in findings:
        row = existing.pop(finding.rule_id, None)
        if row is None:
            row = ComplianceFinding(device_id=device_id, rule_id=finding.rule_id, severity=finding.severity,
                                    message=finding.message, lines=finding.lines, version_id=version.id,
                                    first_seen=now, last_seen=now)
            opened += 1
            record(session, "config.compliance", f"{hostname}: {finding.message}", severity=finding.severity,
                   site_id=site_id, device_id=device_id,
                   data={"hostname": hostname, "rule_id": finding.rule_id, "message": finding.message,
                         "lines": finding.lines[:5], "version": version.number})
        else:
            row.severity, row.message, row.lines = finding.severity, finding.message, list(finding.lines)
            row.version_id, row.last_seen = version.id, now
        session.add(row)
    for row in existing.values():
        record(session, "config.compliance_resolved", f"{hostname}: {row.message} — resolved",
               severity=Severity.info, site_id=site_id, device_id=device_id,
               data={"hostname": hostname, "rule_id": row.rule_id, "message": row.message,
                     "version": version.number})
        session.delete(row)
    session.flush()
    return opened, len(existing)


# ----------------------------------------------------------------------------------- runs


def _start_run(engine: Engine, trigger: str, actor: str, scope: str) -> int:
    with write_session(engine) as session:
        run = BackupRun(started_at=utcnow(), trigger=trigger, actor=actor, scope=scope[:255], status="running")
        session.add(run)
        session.flush()
        assert run.id is not None
        return run.id


def _finish_run(engine: Engine, run_id: int, tally: _Tally, seconds: float, error: str | None) -> BackupRunRow:
    with write_session(engine) as session:
        run = session.get(BackupRun, run_id)
        assert run is not None
        run.finished_at = utcnow()
        run.duration_s = round(seconds, 3)
        run.status = "failed" if error else "ok"
        run.error = error or ""
        run.devices, run.changed = tally.devices, tally.changed
        run.unchanged, run.failed = tally.unchanged, tally.failed
        run.failures = list(tally.failures)
        session.add(run)
        session.flush()
        return run_row(run)


def run_row(run: BackupRun) -> BackupRunRow:
    return BackupRunRow(id=run.id or 0, started_at=run.started_at, finished_at=run.finished_at,
                        duration_s=run.duration_s, trigger=run.trigger, actor=run.actor, scope=run.scope,
                        status=run.status, error=run.error, devices=run.devices, changed=run.changed,
                        unchanged=run.unchanged, failed=run.failed, failures=list(run.failures))


# ----------------------------------------------------------------------------------- compliance


def check_all(engine: Engine, rules: compliance.RuleSet | None = None) -> ComplianceCheck:
    """Re-evaluate every device's latest configuration (after the rules changed), one short
    transaction per device."""
    with read_session(engine) as session:
        rows = [(state.device_id, state.device_type, state.latest_version_id, dev.hostname, dev.site_id, dev.role)
                for state, dev in session.exec(
                    select(ConfigBackupState, Device).join(Device, col(Device.id) == col(ConfigBackupState.device_id))
                    .where(col(ConfigBackupState.latest_version_id).is_not(None))).all()]
    summary = ComplianceCheck(devices=0, findings=0, opened=0, resolved=0)
    for device_id, override, version_id, hostname, site_id, role in rows:
        def work(session: Session, device_id: int = device_id, override: str = override,
                 version_id: int | None = version_id,
                 hostname: str = hostname, site_id: int = site_id, role: str = role) -> tuple[int, int, int]:
            version = session.get(ConfigVersion, version_id)
            if version is None:
                return 0, 0, 0
            findings = compliance.evaluate(version.text, override or version.device_type, role, rules)
            opened, resolved = _replace_findings(session, device_id, site_id, hostname, version, findings, utcnow())
            return len(findings), opened, resolved

        found, opened, resolved = _retrying(engine, work)
        summary.devices += 1
        summary.findings += found
        summary.opened += opened
        summary.resolved += resolved
    return summary

