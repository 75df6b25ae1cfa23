"""A small supervisor for the lab's real peer programs (SNMP agents, PostgreSQL, …).

Each peer runs as its own process in its own session, so its process group holds what it forks
and can be stopped as one: SIGTERM (or the peer's own stop signal) to the group, then SIGKILL
after a grace period — to the group and to every descendant seen at stop time, since some
programs (PostgreSQL) move their children into sessions of their own. Peers are started
detached, so a lab brought ``up`` by one CLI call survives it and is stopped by a later ``down``.

What runs is recorded in ``<lab_dir>/state.json``, guarded by a lock file, so several processes
(CLI, test sessions) can share a lab directory. A pid alone is not an identity — pids are
reused — so each record also keeps the kernel start time of the process; a recorded peer whose
pid is gone, a zombie, or another process now, is *dead* and is cleaned up by ``up``/``down``.

Adding a peer kind means describing it as a :class:`PeerSpec` (argv, env, ready check); nothing in
this module knows about any particular program.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

STATE_FILE = "state.json"
LOG_TAIL_LINES = 25


class LabError(RuntimeError):
    """A peer could not be started or stopped. ``summary`` is one line; ``log_tail`` says why."""

    def __init__(self, summary: str, log_tail: str = "", log_path: Path | None = None) -> None:
        self.summary = summary
        self.log_tail = log_tail
        self.log_path = log_path
        source = f"last lines of {log_path}" if log_path else "output"
        message = summary if not log_tail else f"{summary}\n--- {source} ---\n{log_tail}"
        super().__init__(message)


class PeerUnavailable(LabError):
    """The program a peer needs is not installed (tests skip on this, CI fails)."""


@dataclass
class PeerSpec:
    """Everything the supervisor needs to run one peer; built by a peer kind in ``peers.py``.

    ``ready`` is called repeatedly with the pid until it returns True (exceptions count as "not
    yet"). ``prepare`` runs just before the start (generate data, initdb) and ``after_ready`` once
    it answers (create a database); both are skipped when the peer is already running.
    ``info`` and ``cleanup`` paths are recorded in the state; ``cleanup`` is removed at stop.
    """

    name: str
    argv: list[str]
    ready: Callable[[int], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    ports: dict[str, int] = field(default_factory=dict)
    addresses: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None
    ready_timeout: float = 20.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_grace: float = 5.0
    cleanup: list[Path] = field(default_factory=list)


@dataclass
class PeerRecord:
    """What ``state.json`` keeps about one running peer."""

    name: str
    pid: int
    pgid: int
    start_ticks: int | None
    argv: list[str]
    ports: dict[str, int]
    addresses: list[str]
    started_at: str
    log: str
    stop_signal: str
    stop_grace: float
    user: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    cleanup: list[str] = field(default_factory=list)


@dataclass
class PeerStatus:
    """A recorded peer and whether its process is still the one we started."""

    name: str
    running: bool
    record: PeerRecord


# --- small helpers every peer kind can use -----------------------------------------------------


def free_port(host: str = "127.0.0.1", kind: Literal["tcp", "udp"] = "tcp") -> int:
    """A port the kernel says is free on ``host`` now (another process may still take it first)."""
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], start [19])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of live processes (one that has gone counts nothing): what the
    lab's peers cost, for benchmarks that report the simulator's share beside the client's."""
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def process_start_ticks(pid: int) -> int | None:
    """Kernel start time of a process: with the pid it identifies a process despite pid reuse."""
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def pid_running(pid: int, start_ticks: int | None = None) -> bool:
    """Whether pid is a live (not zombie) process, and the same one if start_ticks is given."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def _process_table() -> dict[int, tuple[int, int, int]]:
    """pid → (parent pid, process group, start ticks) of every live (non-zombie) process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields and fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in a process group."""
    return sorted(pid for pid, (_, group, _) in _process_table().items() if group == pgid)


def process_tree(pid: int) -> list[int]:
    """A live process and all its live descendants, including those that left its process group
    (PostgreSQL's children each call setsid(), so the group holds only the postmaster)."""
    table = _process_table()
    if pid not in table:
        return []
    children: dict[int, list[int]] = {}
    for child, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return sorted(tree)


def _socket_inodes(kind: Literal["tcp", "udp"], host: str, port: int) -> set[str]:
    """Inodes of IPv4 sockets bound to host:port (TCP ones only when listening)."""
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    inodes = set()
    with contextlib.suppress(OSError), open(f"/proc/net/{kind}") as table:
        next(table)
        for line in table:
            cols = line.split()
            if cols[1] == wanted and (kind == "udp" or cols[3] == "0A"):
                inodes.add(cols[9])
    return inodes


def owns_socket(pid: int, kind: Literal["tcp", "udp"], host: str, port: int) -> bool:
    """Whether process ``pid`` holds the socket bound to host:port.

    Checked in readiness because some programs (snmpsim) log "listening" and keep running when
    the bind failed, and another process would then answer in their place.
    """
    inodes = _socket_inodes(kind, host, port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                return True
    return False


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of a log file (empty if there is none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def run_as_user_kwargs(user: str | None) -> dict[str, Any]:
    """Popen keyword arguments that run a child as ``user`` (only meaningful when we are root)."""
    if user is None or os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _raise_open_files_limit() -> None:
    """Children inherit the hard open-files limit: snmpsim keeps data files open per device."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the supervisor ----------------------------------------------------------------------------

# Children this Python process started: reaped at stop so they do not linger as zombies.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _exit_on_signal(signum: int, _frame: Any) -> None:
    """SIGTERM as an ordinary exit, so ``finally`` blocks (stopping peers) run."""
    raise SystemExit(128 + signum)


class Lab:
    """The peers of one lab directory: start, record, report and stop them."""

    def __init__(self, lab_dir: Path | str) -> None:
        self.lab_dir = Path(lab_dir).absolute()
        self.state_path = self.lab_dir / STATE_FILE
        self.log_dir = self.lab_dir / "logs"

    # state file ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, PeerRecord]]:
        """The state under an exclusive lock; written back (atomically) when the block ends."""
        self.lab_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lab_dir / ".state.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self._read()
            try:
                yield state
            finally:
                self._write(state)

    def _read(self) -> dict[str, PeerRecord]:
        try:
            raw = json.loads(self.state_path.read_text())
            return {name: PeerRecord(**rec) for name, rec in raw.get("peers", {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise LabError(f"unreadable lab state {self.state_path}: {exc}") from exc

    def _write(self, state: dict[str, PeerRecord]) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        data = {"peers": {name: asdict(rec) for name, rec in sorted(state.items())}}
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, self.state_path)

    def records(self) -> dict[str, PeerRecord]:
        """The recorded peers, running or not (read without locking: a snapshot)."""
        return self._read()

    def record(self, name: str) -> PeerRecord | None:
        """One recorded peer, if any."""
        return self._read().get(name)

    # start -----------------------------------------------------------------------------------

    @staticmethod
    def _alive(rec: PeerRecord) -> bool:
        return pid_running(rec.pid, rec.start_ticks)

    def start(self, spec: PeerSpec) -> PeerRecord:
        """Start a peer and wait until it answers; if it already runs, return its record as is."""
        with self._locked() as state:
            existing = state.get(spec.name)
            if existing is not None:
                if self._alive(existing):
                    return existing
                self._terminate(existing)  # stale: clear leftovers of its group
                del state[spec.name]
            record = self._launch(spec)
            state[spec.name] = record
            return record

    def _launch(self, spec: PeerSpec) -> PeerRecord:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        if spec.prepare is not None:
            spec.prepare()
        with open(log_path, "ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- {stamp} starting: {' '.join(spec.argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    spec.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=spec.cwd,
                    env={**os.environ, **spec.env},
                    start_new_session=True,
                    preexec_fn=_raise_open_files_limit,
                    **run_as_user_kwargs(spec.user),
                )
            except OSError as exc:
                raise LabError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from exc
        _CHILDREN[proc.pid] = proc
        record = PeerRecord(
            name=spec.name,
            pid=proc.pid,
            pgid=proc.pid,  # start_new_session makes the child its own group leader
            start_ticks=process_start_ticks(proc.pid),
            argv=list(spec.argv),
            ports=dict(spec.ports),
            addresses=list(spec.addresses),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            log=str(log_path),
            stop_signal=spec.stop_signal.name,
            stop_grace=spec.stop_grace,
            user=spec.user,
            info=dict(spec.info),
            cleanup=[str(p) for p in spec.cleanup],
        )
        try:
            self._wait_ready(spec, proc, log_path)
            if spec.after_ready is not None:
                spec.after_ready()
        except BaseException:
            self._terminate(record)
            raise
        return record

    @staticmethod
    def _wait_ready(spec: PeerSpec, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        deadline = time.monotonic() + spec.ready_timeout
        while True:
            code = proc.poll()
            if code is not None:
                raise LabError(f"{spec.name} exited with code {code} before it was ready", log_tail(log_path), log_path)
            try:
                if spec.ready(proc.pid):
                    return
            except Exception:  # a probe that fails is a peer not ready yet
                pass
            if time.monotonic() > deadline:
                raise LabError(
                    f"{spec.name} did not become ready within {spec.ready_timeout:g} s",
                    log_tail(log_path),
                    log_path,
                )
            time.sleep(0.1)

    # stop ------------------------------------------------------------------------------------

    def _terminate(self, rec: PeerRecord) -> None:
        """Signal the peer's process group; after the grace period SIGKILL the group and every
        process that was in it or descended from the peer when we started stopping it."""
        reused = not self._alive(rec) and pid_running(rec.pid)
        if not reused:  # a reused pid belongs to another program: its group is not ours
            table = _process_table()
            targets = {pid: table[pid][2] for pid in {*process_tree(rec.pid), *group_members(rec.pgid)} if pid in table}
            self._signal_group(rec.pgid, signal.Signals[rec.stop_signal])
            if not self._wait_gone(rec, targets, rec.stop_grace):
                self._signal_group(rec.pgid, signal.SIGKILL)
                for pid, ticks in targets.items():
                    if pid_running(pid, ticks):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)
                if not self._wait_gone(rec, targets, 5.0):
                    raise LabError(f"{rec.name}: processes {group_members(rec.pgid)} survived SIGKILL")
        for path in rec.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    @staticmethod
    def _wait_gone(rec: PeerRecord, targets: dict[int, int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            child = _CHILDREN.get(rec.pid)
            if child is not None and child.poll() is not None:
                del _CHILDREN[rec.pid]
            running = [pid for pid, ticks in targets.items() if pid_running(pid, ticks)]
            if not running and not group_members(rec.pgid):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def stop(self, name: str) -> bool:
        """Stop one peer (its whole process group) and forget it; False if it was not recorded."""
        with self._locked() as state:
            rec = state.get(name)
            if rec is None:
                return False
            self._terminate(rec)
            del state[name]
            return True

    def stop_all(self) -> list[str]:
        """Stop every recorded peer, running or stale; returns the names that were recorded."""
        with self._locked() as state:
            names = sorted(state)
            for name in names:
                self._terminate(state[name])
                del state[name]
            return names

    @contextlib.contextmanager
    def stopped_at_exit(self) -> Iterator[None]:
        """Peers started while the block runs are stopped when it ends: normally, by an exception,
        by Ctrl-C (SIGINT) or by SIGTERM. Peers are detached (``lab up`` outlives its CLI call),
        so a foreground command that starts a lab for its own use (``demo``) must take them down
        itself. Peers that already ran before the block are left alone: they belong to someone
        else. Main thread only (signal handlers)."""
        before = {s.name: s.record.pid for s in self.status() if s.running}
        previous_term = signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            yield
        finally:
            # A second Ctrl-C while the peers stop would leave some of them running.
            previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                for st in self.status():
                    if before.get(st.name) != st.record.pid:
                        self.stop(st.name)
            finally:
                signal.signal(signal.SIGINT, previous_int)
                signal.signal(signal.SIGTERM, previous_term)

    # report ----------------------------------------------------------------------------------

    def status(self) -> list[PeerStatus]:
        """Each recorded peer and whether it still runs (the state is not changed)."""
        return [PeerStatus(name, self._alive(rec), rec) for name, rec in sorted(self._read().items())]
