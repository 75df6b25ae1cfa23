"""Benchmark: how fast a mains failure in the power lab reaches the event table and a browser,
against NUT's own ``upsmon`` watching the same UPS through the same ``upsd``.

Set-up, all in a temporary directory removed at the end: a SQLite database (migrated, with
``examples/jeddah.yaml`` imported for site JED-DC), the lab's power peers started by the lab
supervisor (``nut``, ``modbus-drups``, ``modbus-dse``, ``modbus-meter``, ``snmp-ups``), their 7
devices written by ``infra_mgr.lab.setup.configure_power``, an admin user with an API token, and
``infra-mgr serve`` in a subprocess whose lifespan runs the power poller (every device every second).

Baselines, run side by side in the same run against the same ``upsd`` (the lab's ``nut`` peer, UPS
``dc-ups1``): two of NUT's own ``upsmon`` (Debian's 2.8.0 binary ``/lib/nut/upsmon``, a secondary
``MONITOR``, ``NOTIFYFLAG ONBATT SYSLOG+EXEC``), one at its default ``POLLFREQ 5``/``POLLFREQALERT
5`` and one tuned to ``POLLFREQ 1``/``POLLFREQALERT 1`` (the lowest it accepts, the same interval as
our poller), each with a NOTIFYCMD script that writes the time of each notice to its own file.
upsmon keeps its pid file in the compiled-in ``/run/nut``; each runs in a private mount namespace
(``unshare --mount``) with its own temporary directory over ``/run/nut``, so neither the system nor
the other upsmon is touched.

Like for like: upsmon watches one UPS, so the headline compares our ``power.on_battery`` event of
that UPS (``dc-ups1``, seen committed by a database reader) with upsmon's ONBATT notice, both
measured from the moment ``upsd`` shows ``OB`` (the bench polls ``GET VAR`` every 20 ms). That start
takes the lab's own path from the scenario file into upsd (its pusher and ``dummy-ups``) out of both
sides. The first event from any of the 7 devices (the Modbus and SNMP peers change the instant the
outage starts) is reported on its own line, from t0, without a baseline: upsmon has nothing to match.

Each run (``--runs``, default 20):

1. wait until everything is back to normal: upsd shows ``dc-ups1`` ``OL``, each upsmon's last
   notice (if any) is ``ONLINE``, every power device in the database is live with a mains-side
   state and no ``mains_failed`` flag, and no outage record is open; then pause a random 0-3 s so
   runs do not phase-lock with the 1 s and 5 s poll intervals;
2. ``start_outage(lab)`` writes ``outage.json``; its ``started_at`` is t0. The Modbus and SNMP peers
   compute every answer from that file (they change at t0); the NUT peer's pusher notices the file
   and sets the value through upsd and dummy-ups; the bench timestamps the moment upsd shows ``OB``;
3. timestamp (a) the first ``power.mains_failed``/``power.on_battery`` row in the event table, both
   its ``time`` column (when the poller's read finished) and when a reader polling the database
   every 20 ms first sees the committed row; (b) the first SSE ``event`` message of those kinds on a
   streaming httpx client of ``GET /api/v1/power/stream`` (what a browser's EventSource gets);
   (c) our ``power.on_battery`` of ``dc-ups1`` (row and SSE message); (d) each upsmon's ONBATT notice;
4. stop the outage (once all of the above are in, or 15 s after t0).

A run in which a upsmon sent no ONBATT notice within the deadline counts as a miss of that
baseline, and a baseline with any miss fails its line: a comparison against a baseline that did not
fire would pass by infinity.

CPU: utime+stime (from ``/proc``) of the serving process (and any children) over a 30 s window
with no outage, polling the 7 lab devices, then polling 20 (13 more devices added through the API,
copies of the lab's NUT, SNMP and Modbus sources under other names); the POLLFREQ 1 upsmon's
processes over the same window are the (informational) baseline. One SSE client stays connected
throughout (a dashboard open); the device messages it receives give the reads per second achieved
during the window. The bench's own 20 ms watchers of upsd and of the database pause during the
windows. The server's main (asyncio) thread is reported apart from the rest (its worker threads,
where the database work runs).

Percentiles are nearest-rank over the runs (p95 of 20 runs is the 19th value).

Usage: ``.venv/bin/python bench/power_detect.py [--runs N] [--cpu-window S] [--keep-dir] [--smoke]``
(as root: the NUT peer and upsmon run as root, upsmon in a mount namespace). ``--smoke`` does 2 runs
(pauses of at most 0.5 s) and 2 s CPU windows: it checks the whole path and measures nothing. The output goes to
``bench/results/power_detect-<UTC date>.txt`` (``bench/provenance.py``). Prints ``RESULT`` lines;
exits 0 even when a goal is missed (2 if not root or if the benchmark itself is broken: a peer, the
server or upsmon not starting, or the plant not returning to normal between runs).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.provenance import record, require_root  # noqa: E402
from infra_mgr.auth.models import UserCreate  # noqa: E402
from infra_mgr.auth.permissions import Role  # noqa: E402
from infra_mgr.auth.service import create_token, create_user  # noqa: E402
from infra_mgr.db import make_engine, upgrade, write_session  # noqa: E402
from infra_mgr.events.models import Event  # noqa: E402
from infra_mgr.inventory.history import acting_as  # noqa: E402
from infra_mgr.inventory.importer import import_file  # noqa: E402
from infra_mgr.lab.nut_sim import NutConnection  # noqa: E402
from infra_mgr.lab.power_peers import NutEndpoint  # noqa: E402
from infra_mgr.lab.power_scenario import reset_outage, start_outage, stop_outage  # noqa: E402
from infra_mgr.lab.registry import build_spec  # noqa: E402
from infra_mgr.lab.setup import configure_power  # noqa: E402
from infra_mgr.lab.supervisor import Lab, LabError, free_port, process_tree  # noqa: E402
from infra_mgr.power.models import Outage, PowerDevice  # noqa: E402
from infra_mgr.power.service import ON_MAINS  # noqa: E402

EXAMPLE = ROOT / "examples" / "jeddah.yaml"
PEERS = ("nut", "modbus-drups", "modbus-dse", "modbus-meter", "snmp-ups")
LAB_DEVICES = 7
CPU_DEVICES = 20
UPSMON_BIN = Path("/lib/nut/upsmon")  # /sbin/upsmon is Debian's wrapper that exits unless nut.conf enables it
UPSMON_PIDDIR = Path("/run/nut")  # upsmon 2.8.0's compiled-in pid path (no environment override)
UPSMON_POLLFREQS = (5, 1)  # NUT's default, and the lowest it accepts (the same interval as our poller)
DETECT_KINDS = ("power.mains_failed", "power.on_battery")
NUT_UPS_DEVICE = "dc-ups1"

GOAL_DETECT_S = 2.0
GOAL_CPU_PCT = 5.0
RUN_DEADLINE_S = 15.0  # dc-ups1 is OB for 8 s (until the generator takes the panel): upsmon sees it within ~5.5 s
NORMAL_TIMEOUT_S = 90.0
WATCH_S = 0.02  # the bench's own upsd and database polling period
MAX_PAUSE_S = 3.0

BENCH_USER = "bench_power"


class BenchBroken(RuntimeError):
    """The benchmark itself cannot go on (not a missed goal)."""


# --------------------------------------------------------------------------- helpers


def _pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``inf`` entries, i.e. misses, sort last)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def _fmt(value: float | None, digits: int = 2) -> str:
    """A figure for the tables: ``miss`` for nothing seen."""
    if value is None or math.isinf(value):
        return "miss"
    return f"{value:.{digits}f}"


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_s(path: str) -> float:
    """utime + stime (s) from a ``/proc/.../stat`` file (0 if the process or thread is gone).

    Read from ``/proc`` directly (fields 14 and 15, after the parenthesised command name, which may
    itself hold spaces) so the bench needs nothing beyond the project's own dependencies."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _tree_cpu_s(pid: int) -> float:
    """utime + stime (s) of a process and its live descendants."""
    return sum(_stat_cpu_s(f"/proc/{p}/stat") for p in process_tree(pid)) if pid > 0 else 0.0


def _thread_cpu_s(pid: int, tid: int) -> float:
    """utime + stime (s) of one thread of a process (0 if gone)."""
    return _stat_cpu_s(f"/proc/{pid}/task/{tid}/stat")


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group a ``start_new_session`` child leads, SIGKILL it after ``grace``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    # members of the group that outlive its leader (upsmon's unprivileged child does)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the server


class Server:
    """``python -m infra_mgr serve`` in its own session, its output in ``server.log``."""

    def __init__(self, work: Path, url: str, master: str) -> None:
        self.port = free_port("127.0.0.1", "tcp")
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = work / "server.log"
        env = dict(os.environ, INFRA_MGR_DATABASE_URL=url, INFRA_MGR_DATA_DIR=str(work),
                   INFRA_MGR_SECRET_KEY=master, INFRA_MGR_LOG_LEVEL="warning", INFRA_MGR_POWER_POLLER="true")
        env.pop("INFRA_MGR_CONFIG", None)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "infra_mgr", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--no-access-log"],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it ourselves
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchBroken(f"server exited early with code {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + "/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise BenchBroken(f"server did not answer /healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        _stop_group(self.proc, grace=10.0)


# --------------------------------------------------------------------------- upsmon


class Upsmon:
    """NUT's upsmon watching the lab's upsd at one POLLFREQ, its notices timestamped by a NOTIFYCMD
    script in its own directory."""

    def __init__(self, work: Path, nut: NutEndpoint, pollfreq: int) -> None:
        self.pollfreq = pollfreq
        self.name = f"upsmon POLLFREQ {pollfreq}"
        self.dir = work / f"upsmon-pollfreq{pollfreq}"
        self.dir.mkdir(mode=0o700)
        self.notices = self.dir / "notices.log"
        self.log_path = self.dir / "upsmon.log"
        notify = self.dir / "notify.sh"
        notify.write_text(textwrap.dedent(f"""\
            #!/bin/sh
            # upsmon runs this for each EXEC notice: time first (ns), then the type and the message
            echo "$(date +%s.%N) $NOTIFYTYPE $*" >> {self.notices}
            """))
        notify.chmod(0o755)
        conf = self.dir / "upsmon.conf"
        # POLLFREQALERT is the interval while on battery; set to the same value so the tuned
        # instance is tuned throughout (5 and 5 are upsmon's defaults).
        conf.write_text(textwrap.dedent(f"""\
            MONITOR {nut.ups}@{nut.host}:{nut.port} 1 {nut.user} {nut.password} secondary
            MINSUPPLIES 1
            POLLFREQ {pollfreq}
            POLLFREQALERT {pollfreq}
            SHUTDOWNCMD "/bin/true"
            NOTIFYCMD {notify}
            POWERDOWNFLAG {self.dir}/killpower
            NOTIFYFLAG ONBATT SYSLOG+EXEC
            NOTIFYFLAG ONLINE SYSLOG+EXEC
            """))
        conf.chmod(0o600)
        self.piddir = self.dir / "run"
        self.piddir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start upsmon in a private mount namespace with its own directory over ``/run/nut``: two
        upsmons (and the system's own, if any) would otherwise share one pid file."""
        if not UPSMON_BIN.exists():
            raise BenchBroken(f"{UPSMON_BIN} not found (apt-get install nut-client)")
        unshare = shutil.which("unshare")
        if unshare is None:
            raise BenchBroken("unshare (util-linux) not found: upsmon needs a private mount namespace")
        UPSMON_PIDDIR.mkdir(parents=True, exist_ok=True)  # nut-client's own run directory; only mounted over
        probe = subprocess.run([unshare, "--mount", "--propagation", "private", "true"], capture_output=True)
        if probe.returncode != 0:
            raise BenchBroken(f"unshare --mount failed: {probe.stderr.decode(errors='replace').strip()}")
        env = dict(os.environ, NUT_CONFPATH=str(self.dir), NUT_STATEPATH=str(self.dir), NUT_ALTPIDPATH=str(self.dir))
        script = f'mount --bind "{self.piddir}" "{UPSMON_PIDDIR}" && exec "$@"'
        argv = [unshare, "--mount", "--propagation", "private", "sh", "-c", script, "upsmon",
                str(UPSMON_BIN), "-F", "-u", "root"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def read(self) -> list[tuple[float, str]]:
        """Every notice so far: (epoch seconds, type)."""
        try:
            text = self.notices.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2:
                with contextlib.suppress(ValueError):
                    out.append((float(parts[0]), parts[1]))
        return out

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)


# --------------------------------------------------------------------------- watchers


class Watcher(threading.Thread):
    """A daemon thread that polls something until ``stop()``; failures are kept, not raised.

    ``paused`` (set during the CPU windows) makes it idle: its 50 Hz reads of upsd and of the
    database are the bench's, not the product's, and readers that never pause keep SQLite from
    resetting its write-ahead log."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._halt = threading.Event()
        self.paused = threading.Event()
        self.errors: list[str] = []

    def stop(self) -> None:
        self._halt.set()

    def tick(self) -> bool:
        """Wait one period; False when stopped. While paused, only waits."""
        while not self._halt.wait(WATCH_S):
            if not self.paused.is_set():
                return True
        return False


class NutWatcher(Watcher):
    """Polls upsd's ``ups.status`` every 20 ms over one connection; keeps each change with its time."""

    def __init__(self, nut: NutEndpoint) -> None:
        super().__init__("nut-watcher")
        self.nut = nut
        self.changes: list[tuple[float, str]] = []

    @property
    def status(self) -> str:
        return self.changes[-1][1] if self.changes else ""

    def run(self) -> None:
        conn: NutConnection | None = None
        while self.tick():
            try:
                if conn is None:
                    conn = NutConnection(self.nut.host, self.nut.port, timeout=2.0)
                answer = conn.command(f"GET VAR {self.nut.ups} ups.status")
                now = time.time()
                value = answer.split('"')[1] if answer.startswith("VAR ") and '"' in answer else answer
                if value != self.status:
                    self.changes.append((now, value))
            except (OSError, ConnectionError, IndexError) as exc:
                self.errors.append(f"{time.time():.3f} {exc}")
                if conn is not None:
                    conn.sock.close()
                conn = None
        if conn is not None:
            conn.close()

    def first(self, after: float, token: str = "OB") -> float | None:
        for t, value in list(self.changes):
            if t >= after and token in value.split():
                return t
        return None


@dataclass(frozen=True)
class SeenEvent:
    """An event row: when the bench first saw it committed, and what it says."""

    seen: float
    id: int
    time: float
    kind: str
    device: str


class EventWatcher(Watcher):
    """Polls the event table every 20 ms for new ``power.mains_failed``/``power.on_battery`` rows."""

    def __init__(self, engine: Engine) -> None:
        super().__init__("event-watcher")
        self.engine = engine
        self.seen: list[SeenEvent] = []
        table = Event.__table__  # type: ignore[attr-defined]
        self.table = table
        with engine.connect() as conn:
            self.last_id = conn.execute(select(table.c.id).order_by(table.c.id.desc()).limit(1)).scalar() or 0

    def run(self) -> None:
        t = self.table
        while self.tick():
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(select(t.c.id, t.c.time, t.c.kind, t.c.data).where(
                        t.c.id > self.last_id, t.c.kind.in_(DETECT_KINDS)).order_by(t.c.id)).all()
                now = time.time()
                for row in rows:
                    self.last_id = max(self.last_id, row.id)
                    device = str((row.data or {}).get("power_device", ""))
                    self.seen.append(SeenEvent(now, row.id, row.time.timestamp(), row.kind, device))
            except Exception as exc:  # noqa: BLE001 - a locked or busy read is retried
                self.errors.append(f"{time.time():.3f} {exc}")

    def after(self, index: int) -> list[SeenEvent]:
        return list(self.seen[index:])


class SseWatcher(Watcher):
    """A browser stand-in: one streaming connection to ``/api/v1/power/stream``, each message timestamped."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__("sse-watcher")
        self.url = base + "/api/v1/power/stream"
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.device_msgs: list[float] = []
        self.connected = threading.Event()
        self.connects = 0
        self._response: httpx.Response | None = None

    def run(self) -> None:
        timeout = httpx.Timeout(10.0, read=40.0)  # the server sends a keep-alive comment every 15 s
        with httpx.Client(headers=self.headers, timeout=timeout) as client:
            while not self._halt.is_set():
                try:
                    with client.stream("GET", self.url) as resp:
                        self._response = resp
                        if resp.status_code != 200:
                            raise httpx.HTTPStatusError(f"HTTP {resp.status_code}", request=resp.request,
                                                        response=resp)
                        self.connects += 1
                        self._read(resp)
                except Exception as exc:  # noqa: BLE001 - a dropped stream is reconnected and counted
                    if self._halt.is_set():
                        return
                    self.errors.append(f"{time.time():.3f} {type(exc).__name__}: {exc}")
                    self._halt.wait(0.5)
                finally:
                    self._response = None

    def _read(self, resp: httpx.Response) -> None:
        kind, data = "", ""
        for line in resp.iter_lines():
            if self._halt.is_set():
                return
            if line.startswith("retry:"):
                self.connected.set()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif line == "":
                if data:
                    now = time.time()
                    if kind == "event":
                        self.events.append((now, json.loads(data)))
                    elif kind == "device":
                        self.device_msgs.append(now)
                kind, data = "", ""

    def stop(self) -> None:
        super().stop()
        resp = self._response
        if resp is not None:
            with contextlib.suppress(Exception):
                resp.close()


# --------------------------------------------------------------------------- set-up


@dataclass
class Bench:
    """Everything the runs need, and what has to be torn down."""

    work: Path
    lab: Lab
    engine: Engine
    nut: NutEndpoint
    server: Server
    master: str
    token: str
    upsmons: list[Upsmon]
    nut_watch: NutWatcher
    events: EventWatcher
    sse: SseWatcher
    timings: dict[str, float] = field(default_factory=dict)


def make_admin_token(engine: Engine) -> str:
    with acting_as("bench"), write_session(engine) as session:
        user = create_user(session, UserCreate(username=BENCH_USER, password=secrets.token_urlsafe(16),
                                               role=Role.admin, full_name="power detection benchmark"))
        _tok, raw = create_token(session, user, name=f"bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}")
    return raw


def wait_live(client: httpx.Client, n: int, timeout: float = 60.0) -> float:
    """Poll ``GET /api/v1/power/status`` until ``n`` devices are live with a known state."""
    t0 = time.monotonic()
    last: Any = None
    while time.monotonic() - t0 < timeout:
        r = client.get("/api/v1/power/status")
        if r.status_code != 200:
            raise BenchBroken(f"GET /api/v1/power/status: HTTP {r.status_code}: {r.text[:300]}")
        devices = r.json()["devices"]
        last = [(d["name"], d["state"], d["live"]) for d in devices]
        if len(devices) == n and all(d["live"] and d["state"] != "unknown" for d in devices):
            return time.monotonic() - t0
        time.sleep(0.2)
    raise BenchBroken(f"power devices not all live within {timeout:.0f} s: {last}")


def not_normal(bench: Bench) -> list[str]:
    """Why the plant is not (yet) back to normal; empty when it is."""
    why = []
    status = bench.nut_watch.status.split()
    if "OL" not in status or "OB" in status:
        why.append(f"upsd dc-ups1 {bench.nut_watch.status!r}")
    for upsmon in bench.upsmons:
        notices = upsmon.read()
        if notices and notices[-1][1] != "ONLINE":
            why.append(f"{upsmon.name} last notice {notices[-1][1]}")
    now = dt.datetime.now(dt.UTC)
    with Session(bench.engine) as s:
        for d in s.execute(select(PowerDevice)).scalars():
            age = (now - d.last_ok).total_seconds() if d.last_ok else math.inf
            if d.status != "ok" or age > 3.0 or d.state not in ON_MAINS or "mains_failed" in d.flags:
                why.append(f"{d.name} {d.status}/{d.state}/{','.join(d.flags)}/age {age:.1f}s")
        if s.execute(select(Outage).where(Outage.status == "open")).first() is not None:
            why.append("an outage record is open")
    return why


def wait_normal(bench: Bench) -> float:
    t0 = time.monotonic()
    why: list[str] = []
    while time.monotonic() - t0 < NORMAL_TIMEOUT_S:
        why = not_normal(bench)
        if not why:
            return time.monotonic() - t0
        for upsmon in bench.upsmons:
            if not upsmon.alive():
                raise BenchBroken(f"{upsmon.name} exited:\n{upsmon.log_tail()}")
        if bench.server.proc.poll() is not None:
            raise BenchBroken(f"server exited:\n{bench.server.log_tail()}")
        time.sleep(0.2)
    raise BenchBroken(f"plant not back to normal within {NORMAL_TIMEOUT_S:.0f} s: {'; '.join(why)}")


# --------------------------------------------------------------------------- one run


@dataclass
class Run:
    """One outage: delays (s) from t0, ``inf`` when nothing came within the run's deadline."""

    n: int
    pause: float
    t0: float
    normal_wait: float
    nut_flip: float  # upsd shows dc-ups1 OB
    event_time: float  # first event of any device: the row's own time
    event_seen: float  # first event of any device: committed, seen by the database reader
    event_device: str
    sse: float  # first SSE event message of any device
    ups1_time: float  # our power.on_battery of dc-ups1: the row's own time
    ups1_seen: float  # ... committed, seen by the database reader
    ups1_sse: float  # ... its SSE message
    upsmon: dict[int, float]  # each upsmon's ONBATT notice, by POLLFREQ

    def from_flip(self, value: float) -> float:
        """A delay measured from the moment upsd showed OB instead of t0 (``inf`` if either is missing)."""
        return math.inf if math.isinf(self.nut_flip) or math.isinf(value) else value - self.nut_flip


def one_run(bench: Bench, n: int, pause: float, normal_wait: float) -> Run:
    """Fail mains, wait for every observer (or the deadline), restore mains; the delays of this run."""
    ev_i, sse_i = len(bench.events.seen), len(bench.sse.events)
    ups_i = {u.pollfreq: len(u.read()) for u in bench.upsmons}
    t0 = start_outage(bench.lab.lab_dir).started_at or time.time()
    deadline = t0 + RUN_DEADLINE_S
    inf = math.inf
    first_ev: SeenEvent | None = None
    first_time = inf
    ups1: SeenEvent | None = None
    sse_t = ups1_sse = flip_t = inf
    upsmon_t = {u.pollfreq: inf for u in bench.upsmons}
    while time.time() < deadline:
        evs = bench.events.after(ev_i)
        if evs and first_ev is None:
            first_ev = evs[0]  # kept in the order the watcher saw them
            first_time = min(e.time for e in evs)
        ups1 = ups1 or next((e for e in evs if e.kind == "power.on_battery" and e.device == NUT_UPS_DEVICE), None)
        messages = bench.sse.events[sse_i:]
        if math.isinf(sse_t):
            sse_t = next((t for t, item in messages if item.get("kind") in DETECT_KINDS), inf)
        if math.isinf(ups1_sse):
            ups1_sse = next((t for t, item in messages if item.get("kind") == "power.on_battery"
                             and item.get("device") == NUT_UPS_DEVICE), inf)
        for u in bench.upsmons:
            if math.isinf(upsmon_t[u.pollfreq]):
                upsmon_t[u.pollfreq] = next((t for t, kind in u.read()[ups_i[u.pollfreq]:] if kind == "ONBATT"), inf)
        if math.isinf(flip_t):
            flip_t = bench.nut_watch.first(t0) or inf
        if first_ev and ups1 and not any(math.isinf(x) for x in (sse_t, ups1_sse, flip_t, *upsmon_t.values())):
            break
        time.sleep(0.05)
    stop_outage(bench.lab.lab_dir)
    return Run(
        n=n, pause=pause, t0=t0, normal_wait=normal_wait, nut_flip=flip_t - t0,
        event_time=first_time - t0,
        event_seen=(first_ev.seen - t0) if first_ev else inf,
        event_device=f"{first_ev.device}:{first_ev.kind.removeprefix('power.')}" if first_ev else "-",
        sse=sse_t - t0,
        ups1_time=(ups1.time - t0) if ups1 else inf,
        ups1_seen=(ups1.seen - t0) if ups1 else inf,
        ups1_sse=ups1_sse - t0,
        upsmon={k: v - t0 for k, v in upsmon_t.items()},
    )


# --------------------------------------------------------------------------- CPU


@dataclass(frozen=True)
class CpuWindow:
    """CPU (% of one core) over one window, and the reads the poller made meanwhile."""

    devices: int
    window_s: float
    server_pct: float
    loop_pct: float  # the server's main thread: asyncio loop (collectors, SSE, HTTP)
    upsmon_pct: dict[int, float]  # by POLLFREQ
    reads_per_s: float

    @property
    def ms_per_read(self) -> float:
        """CPU milliseconds of the serving process per device read."""
        return 10 * self.server_pct / self.reads_per_s if self.reads_per_s else math.inf


def cpu_window(bench: Bench, devices: int, seconds: float) -> CpuWindow:
    """CPU of the serving process and of each upsmon over ``seconds`` (no HTTP request meanwhile)."""
    server_pid = bench.server.proc.pid
    upsmon_pids = {u.pollfreq: u.proc.pid if u.proc else 0 for u in bench.upsmons}

    def sample() -> tuple[float, float, float, dict[int, float]]:
        return (time.monotonic(), _tree_cpu_s(server_pid), _thread_cpu_s(server_pid, server_pid),
                {k: _tree_cpu_s(pid) for k, pid in upsmon_pids.items()})

    for w in (bench.nut_watch, bench.events):
        w.paused.set()
    time.sleep(1.0)
    msgs0 = len(bench.sse.device_msgs)
    w0, s0, l0, u0 = sample()
    time.sleep(seconds)
    w1, s1, l1, u1 = sample()
    for w in (bench.nut_watch, bench.events):
        w.paused.clear()
    wall = w1 - w0
    reads = (len(bench.sse.device_msgs) - msgs0) / wall
    return CpuWindow(devices, wall, 100 * (s1 - s0) / wall, 100 * (l1 - l0) / wall,
                     {k: 100 * (u1[k] - u0[k]) / wall for k in u0}, reads)


def add_copies(client: httpx.Client, engine: Engine, count: int) -> list[str]:
    """``count`` more power devices through the API: the lab devices' sources under other names."""
    with Session(engine) as s:
        lab_devices = list(s.execute(select(PowerDevice).order_by(PowerDevice.name)).scalars())
    names = []
    for i in range(count):
        src = lab_devices[i % len(lab_devices)]
        name = f"bench-copy-{i + 1:02d}-{src.name}"
        body = {"name": name, "kind": src.kind, "source": src.source, "credential_id": src.credential_id,
                "site_id": src.site_id, "capacity_kw": src.capacity_kw, "critical": True, "poll_interval_s": 1.0}
        r = client.post("/api/v1/power/devices", json=body)
        if r.status_code != 201:
            raise BenchBroken(f"POST /api/v1/power/devices {name}: HTTP {r.status_code}: {r.text[:300]}")
        names.append(name)
    return names


# --------------------------------------------------------------------------- report


def _misses(values: list[float]) -> int:
    return sum(1 for v in values if math.isinf(v))


def _row(label: str, values: list[float], unit: str = "s") -> str:
    """One table row: p50, p95, max, min of ``values`` and how many runs saw nothing."""
    misses = _misses(values)
    return (f"{label:<56} {_fmt(_pct(values, 50)):>7} {_fmt(_pct(values, 95)):>7} {_fmt(max(values)):>7} "
            f"{_fmt(min(values)):>7}  {unit}" + (f"  ({misses} missed)" if misses else ""))


def _secs(value: float) -> str:
    """A ``RESULT`` value: seconds, or ``missed`` when the percentile falls on a run that saw nothing."""
    return "missed" if math.isinf(value) else f"{value:.2f} s"


def compared(figure: str, ours: list[float], base_name: str, base: list[float], goal_s: float, note: str = "") -> str:
    """A ``RESULT`` line of our p95 against a baseline's p95 over the same runs.

    PASS needs our p95 within the goal, none of our runs missed, and the baseline seen in every run:
    a baseline that did not fire has no p95 to compare with, and a miss of ours is a detection lost."""
    ours95, base95 = _pct(ours, 95), _pct(base, 95)
    our_miss, base_miss = _misses(ours), _misses(base)
    if base_miss:
        ratio = f"n/a (baseline missed {base_miss} of {len(base)} runs)"
    elif our_miss or ours95 <= 0:
        ratio = "n/a"
    elif ours95 < base95:
        ratio = f"{base95 / ours95:.1f}x faster"
    else:
        ratio = f"{ours95 / base95:.1f}x slower"
    ok = ours95 <= goal_s and not our_miss and not base_miss
    return (f"RESULT {figure}: {_secs(ours95)}; baseline {base_name} {_secs(base95)}; ratio {ratio}; "
            f"goal p95 <= {goal_s:.0f} s{note}, no run missed on either side: {'PASS' if ok else 'FAIL'}")


def alone(figure: str, ours: list[float], goal_s: float) -> str:
    """A ``RESULT`` line for a figure that has no side-by-side baseline."""
    ours95, miss = _pct(ours, 95), _misses(ours)
    ok = ours95 <= goal_s and not miss
    return (f"RESULT {figure}: {_secs(ours95)}; baseline none (no side-by-side baseline) n/a; ratio n/a; "
            f"goal p95 <= {goal_s:.0f} s, no run missed: {'PASS' if ok else 'FAIL'}")


def report(runs: list[Run], cpu7: CpuWindow, cpu20: CpuWindow, bench: Bench, t_start: float,
           load: tuple[tuple[float, float, float], tuple[float, float, float]]) -> None:
    flips = [r.nut_flip for r in runs]
    ups1_seen_flip = [r.from_flip(r.ups1_seen) for r in runs]
    upsmon = {pf: [r.upsmon[pf] for r in runs] for pf in UPSMON_POLLFREQS}
    upsmon_flip = {pf: [r.from_flip(r.upsmon[pf]) for r in runs] for pf in UPSMON_POLLFREQS}
    ups1_seen = [r.ups1_seen for r in runs]

    print()
    print(f"{'dc-ups1, the UPS upsmon watches: delay after upsd shows OB':<56} {'p50':>7} {'p95':>7} "
          f"{'max':>7} {'min':>7}")
    print("-" * 92)
    print(_row("ours: power.on_battery row committed, seen by a DB reader", ups1_seen_flip))
    print(_row("ours: the row's own time (poller's read done)", [r.from_flip(r.ups1_time) for r in runs]))
    print(_row("ours: its SSE message at the client", [r.from_flip(r.ups1_sse) for r in runs]))
    for pf in UPSMON_POLLFREQS:
        print(_row(f"upsmon POLLFREQ {pf}: ONBATT notice (NOTIFYCMD)", upsmon_flip[pf]))
    print()
    print(f"{'delay after the mains failure (t0), ' + str(len(runs)) + ' runs':<56} {'p50':>7} {'p95':>7} "
          f"{'max':>7} {'min':>7}")
    print("-" * 92)
    print(_row("upsd shows dc-ups1 OB (the lab's path into upsd)", flips))
    print(_row("any device: first event row committed, seen by a DB reader", [r.event_seen for r in runs]))
    print(_row("any device: first event row's own time", [r.event_time for r in runs]))
    print(_row("any device: first SSE event message at the client", [r.sse for r in runs]))
    print(_row("dc-ups1: our power.on_battery row, seen by a DB reader", ups1_seen))
    for pf in UPSMON_POLLFREQS:
        print(_row(f"dc-ups1: upsmon POLLFREQ {pf} ONBATT notice", upsmon[pf]))
    firsts: dict[str, int] = {}
    for r in runs:
        firsts[r.event_device] = firsts.get(r.event_device, 0) + 1
    print("first event came from: " + ", ".join(f"{k} x{v}" for k, v in sorted(firsts.items(), key=lambda x: -x[1])))
    print()
    head = " ".join(f"{f'upsmon pf{pf}':>10}" for pf in UPSMON_POLLFREQS)
    print(f"{'CPU over a window, no outage':<30} {'devices':>7} {'reads/s':>7} {'server':>8} {'loop thr':>8} "
          f"{'ms/read':>7} {head}")
    print("-" * 92)
    for c in (cpu7, cpu20):
        ups = " ".join(f"{c.upsmon_pct[pf]:>9.2f}%" for pf in UPSMON_POLLFREQS)
        print(f"{f'{c.window_s:.0f} s window':<30} {c.devices:>7} {c.reads_per_s:>7.1f} {c.server_pct:>7.2f}% "
              f"{c.loop_pct:>7.2f}% {c.ms_per_read:>7.2f} {ups}")
    print(f"(CPU = utime+stime / wall time, % of one core; 'loop thr' = the server's asyncio thread (collectors, "
          f"SSE), the rest is worker threads (database); reads/s = SSE device messages; {os.cpu_count()} CPUs; "
          f"load average at start {load[0][0]:.1f}, at end {load[1][0]:.1f})")
    problems = [f"{w.name}: {len(w.errors)} errors (first: {w.errors[0]})"
                for w in (bench.nut_watch, bench.events, bench.sse) if w.errors]
    if bench.sse.connects != 1:
        problems.append(f"SSE stream connected {bench.sse.connects} times")
    if problems:
        print("watcher problems: " + "; ".join(problems))
    print(f"set-up: {', '.join(f'{k} {v:.1f} s' for k, v in bench.timings.items())}")
    print(f"total runtime: {time.perf_counter() - t_start:.1f} s")
    print()

    print(compared("detect_dc_ups1_from_ob_p95", ups1_seen_flip, "upsmon_pollfreq5_onbatt_from_ob_p95",
                   upsmon_flip[5], GOAL_DETECT_S))
    print(compared("detect_dc_ups1_from_ob_p95_vs_tuned", ups1_seen_flip, "upsmon_pollfreq1_onbatt_from_ob_p95",
                   upsmon_flip[1], GOAL_DETECT_S))
    print(compared("detect_dc_ups1_from_t0_p95", ups1_seen, "upsmon_pollfreq1_onbatt_from_t0_p95", upsmon[1],
                   GOAL_DETECT_S, note=" (t0 includes the lab's path into upsd)"))
    print(alone("detect_first_event_any_device_p95", [r.event_seen for r in runs], GOAL_DETECT_S))
    print(alone("detect_sse_any_device_p95", [r.sse for r in runs], GOAL_DETECT_S))
    base_cpu = cpu20.upsmon_pct[1]
    cpu_ratio = f"{cpu20.server_pct / base_cpu:.0f}x" if base_cpu > 0 else "n/a (upsmon under 1 tick)"
    print(f"RESULT poll_cpu_20_devices: {cpu20.server_pct:.2f} %; baseline upsmon_pollfreq1_cpu_1_ups "
          f"{base_cpu:.2f} %; ratio {cpu_ratio}; goal < {GOAL_CPU_PCT:.0f} % of one core: "
          f"{'PASS' if cpu20.server_pct < GOAL_CPU_PCT else 'FAIL'}")


# --------------------------------------------------------------------------- main


def wait_logins(nut: NutEndpoint, upsmons: list[Upsmon], timeout: float = 15.0) -> None:
    """Until upsd counts every upsmon logged in to the UPS (only upsmon sends ``LOGIN``)."""
    t = time.perf_counter()
    conn = NutConnection(nut.host, nut.port)
    try:
        while time.perf_counter() - t < timeout:
            answer = conn.command(f"GET NUMLOGINS {nut.ups}")
            if answer.startswith("NUMLOGINS") and int(answer.split()[-1]) >= len(upsmons):
                return
            for upsmon in upsmons:
                if not upsmon.alive():
                    raise BenchBroken(f"{upsmon.name} exited:\n{upsmon.log_tail()}")
            time.sleep(0.1)
    finally:
        conn.close()
    raise BenchBroken(f"upsmon did not log in to upsd within {timeout:.0f} s:\n"
                      + "\n".join(u.log_tail() for u in upsmons))


def setup(work: Path, stack: contextlib.ExitStack) -> Bench:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    url = f"sqlite:///{work / 'infra-mgr.db'}"
    upgrade(url)
    engine = make_engine(url)
    stack.callback(engine.dispose)
    with acting_as("bench"), write_session(engine) as session:
        import_file(session, EXAMPLE)
    timings["database"] = time.perf_counter() - t

    t = time.perf_counter()
    lab = Lab(work / "lab")
    stack.callback(lab.stop_all)
    reset_outage(lab.lab_dir)
    for kind in PEERS:
        lab.start(build_spec(kind, lab.lab_dir))
    timings["lab peers"] = time.perf_counter() - t
    nut_rec = lab.record("nut")
    if nut_rec is None:
        raise BenchBroken("the nut peer is not recorded after starting")
    nut = NutEndpoint.from_record(nut_rec)

    master = secrets.token_urlsafe(32)
    with acting_as("bench"), write_session(engine) as session:
        counts = configure_power(session, master.encode(), lab)
    if counts.get("devices") != LAB_DEVICES:
        raise BenchBroken(f"configure_power wrote {counts}, expected {LAB_DEVICES} devices")
    token = make_admin_token(engine)

    t = time.perf_counter()
    server = Server(work, url, master)
    stack.callback(server.stop)
    server.wait_ready()
    timings["server up"] = time.perf_counter() - t

    upsmons = [Upsmon(work, nut, pf) for pf in UPSMON_POLLFREQS]
    for upsmon in upsmons:
        stack.callback(upsmon.stop)
        upsmon.start()

    nut_watch = NutWatcher(nut)
    events = EventWatcher(engine)
    sse = SseWatcher(server.base, token)
    for w in (nut_watch, events, sse):
        w.start()
        stack.callback(w.stop)
    bench = Bench(work, lab, engine, nut, server, master, token, upsmons, nut_watch, events, sse, timings)

    t = time.perf_counter()
    with httpx.Client(base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        wait_live(client, LAB_DEVICES)
    timings["poller live"] = time.perf_counter() - t
    if not sse.connected.wait(10):
        raise BenchBroken(f"SSE stream did not connect: {sse.errors[-3:]}")
    t = time.perf_counter()
    wait_logins(nut, upsmons)
    timings["upsmon login"] = time.perf_counter() - t
    return bench


def measure(args: argparse.Namespace) -> None:
    """Set up, run the outages and the CPU windows, print the tables and the ``RESULT`` lines."""
    t_start = time.perf_counter()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    rng = random.Random(seed)
    settle = 0.5 if args.smoke else 5.0
    load0 = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="infra-mgr-power-detect-"))
    smoke = "; smoke: figures mean nothing" if args.smoke else ""
    # Flushed: a child forked by the set-up that inherits an unflushed buffer writes it to the results file again.
    print(f"work dir: {work} (removed at the end{'; kept: --keep-dir' if args.keep_dir else ''}); seed {seed}; "
          f"{args.runs} runs; CPU windows {args.cpu_window:.0f} s{smoke}", flush=True)
    with contextlib.ExitStack() as stack:
        if not args.keep_dir:
            stack.callback(shutil.rmtree, work, ignore_errors=True)
        try:
            bench = setup(work, stack)
        except LabError as exc:
            raise BenchBroken(f"lab peer: {exc}") from exc
        pids = ", ".join(f"{u.name} pid {u.proc.pid if u.proc else '-'}" for u in bench.upsmons)
        print(f"server: {bench.server.base} (pid {bench.server.proc.pid}); upsd {bench.nut.host}:{bench.nut.port} "
              f"UPS {bench.nut.ups}; {pids} (each in a private mount namespace over /run/nut)")
        print(f"set-up: {', '.join(f'{k} {v:.1f} s' for k, v in bench.timings.items())}", flush=True)

        wait_normal(bench)
        time.sleep(settle)  # past the first polls (series creation, first events) before measuring
        print(f"CPU window with the {LAB_DEVICES} lab devices ({args.cpu_window:.0f} s) ...", flush=True)
        cpu7 = cpu_window(bench, LAB_DEVICES, args.cpu_window)

        ups_head = " ".join(f"{f'pf{pf}':>6}" for pf in UPSMON_POLLFREQS)
        print(f"\n{'':>15} {'from t0':>40} | {'from upsd OB':>22}")
        print(f"{'run':>3} {'pause':>5} {'normal':>6} {'upsd OB':>7} {'any ev':>7} {'SSE':>6} {'ups1 ev':>7} "
              f"{ups_head} | {'ups1 ev':>7} {ups_head}  first event")
        runs: list[Run] = []
        for n in range(1, args.runs + 1):
            normal_wait = wait_normal(bench)
            pause = rng.uniform(0.0, 0.5 if args.smoke else MAX_PAUSE_S)
            time.sleep(pause)
            r = one_run(bench, n, pause, normal_wait)
            runs.append(r)
            t0_ups = " ".join(f"{_fmt(r.upsmon[pf]):>6}" for pf in UPSMON_POLLFREQS)
            ob_ups = " ".join(f"{_fmt(r.from_flip(r.upsmon[pf])):>6}" for pf in UPSMON_POLLFREQS)
            print(f"{n:>3} {pause:>5.2f} {normal_wait:>6.1f} {_fmt(r.nut_flip):>7} {_fmt(r.event_seen):>7} "
                  f"{_fmt(r.sse):>6} {_fmt(r.ups1_seen):>7} {t0_ups} | {_fmt(r.from_flip(r.ups1_seen)):>7} "
                  f"{ob_ups}  {r.event_device}", flush=True)
        wait_normal(bench)

        with httpx.Client(base_url=bench.server.base, headers={"Authorization": f"Bearer {bench.token}"},
                          timeout=10) as client:
            add_copies(client, bench.engine, CPU_DEVICES - LAB_DEVICES)
            wait_live(client, CPU_DEVICES, timeout=60)
        time.sleep(settle if args.smoke else 3.0)  # let the new loops settle before measuring
        print(f"CPU window with {CPU_DEVICES} devices ({args.cpu_window:.0f} s) ...", flush=True)
        cpu20 = cpu_window(bench, CPU_DEVICES, args.cpu_window)

        report(runs, cpu7, cpu20, bench, t_start, (load0, os.getloadavg()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="outages to measure (default 20; 2 with --smoke)")
    ap.add_argument("--cpu-window", type=float, default=None,
                    help="seconds of each CPU window (default 30; 2 with --smoke)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the random pauses (default: random)")
    ap.add_argument("--keep-dir", action="store_true", help="keep the temporary directory (logs, database)")
    ap.add_argument("--smoke", action="store_true",
                    help="2 runs and 2 s CPU windows: checks that the bench runs its whole path; measures nothing")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 2 if args.smoke else 20
    if args.cpu_window is None:
        args.cpu_window = 2.0 if args.smoke else 30.0
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.cpu_window < (1 if args.smoke else 5):
        ap.error("--cpu-window must be >= 5 (>= 1 with --smoke)")
    code = require_root("power_detect")
    if code is not None:
        return code

    # SIGTERM, like Ctrl-C, unwinds through the ExitStack so everything started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with record("power_detect", smoke=args.smoke, argv=argv):
        try:
            measure(args)
        except BenchBroken as exc:
            print(f"benchmark broken: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; server, upsmon and lab peers stopped", file=sys.stderr)
        sys.exit(130)
