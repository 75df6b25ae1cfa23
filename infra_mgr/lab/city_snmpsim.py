"""How one process gives 130 devices their own IPs, fast
-----------------------------------------------------
One SNMP engine per device costs ~0.15 s of CPU each (pysnmp loads its MIB modules per engine):
measured here for 134 devices, 20–41 s in one process and 13–27 s split over two processes on
the two cores (depending on what else runs). snmpsim's own
answer — pick the recording by transport endpoint, ``<data>/<md5(community)>/<transport-id>.snmprec``
— is broken in snmpsim 1.2.2 with pysnmp 7: snmpsim overrides ``handleMgmtOperation`` (the old
pysnmp name), which pysnmp 7 never calls, so every endpoint answers with the plain community's
recording. ``python -m infra_mgr.lab.city serve …`` runs snmpsim's responder with that selection
put back on pysnmp 7's ``handle_management_operation``: candidates come from snmpsim's own
``datafile.probe_context`` and only those naming the request's transport endpoint are accepted,
so an endpoint without a recording for the community (or for SNMPv3) stays silent like a real
agent given a wrong community. One engine, one endpoint per device. snmpsim is single-threaded,
so ``serve`` runs one such snmpsim worker per CPU (at least two), each holding a round-robin share
of the endpoints and loading only their recordings, and answers reads from an in-memory copy of
each recording (snmpsim's own evaluation and variation modules, without its per-call file
index work): ~0.2 ms of agent CPU per varbind instead of ~0.32, spread over the cores; the city
is up in ~4–5 s. Details at "snmpsim with per-endpoint recordings" below. The layout::

    <lab>/city/data/public.snmprec                              registers the community (never served)
    <lab>/city/data/<md5(public)>/1.3.6.1.6.1.1.<i>.snmprec     device on endpoint i, v2c "public"
    <lab>/city/data/<md5(other)>/1.3.6.1.6.1.1.<i>.snmprec      the wrong-community device
    <lab>/city/data/1.3.6.1.6.1.1.<i>.snmprec                   the SNMPv3-only device (empty context)
    <lab>/city/expected.json

All devices share the engine; its snmpEngineID is the v3 device's, and every recording also
carries its device's own snmpEngineID (RFC 3411 format 3: enterprise + MAC) for v2c readers.

Lossy agents: ``--loss-file=F`` names a JSON object ``{address: percent}`` (re-read when it
changes, at most twice a second). What a lossy branch link costs a monitoring system is the
requests of its pollers: a GET that reads ``sysUpTime`` or an interface object (IF-MIB ifTable /
ifXTable: the reachability probe and the uplink poller) to such an address is dropped evenly —
one in every ``round(100 / percent)`` of them to that endpoint (15 % drops every 7th), never two in
a row: a poller that retries once always gets its answer (a flaky agent shows as loss, never as
down), one that does not retry sees the loss. Even, not random, so a short test sees the same
share every time. Identity GETs
and walks are answered, so discovery and identity checks of those devices stay deterministic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --- snmpsim with per-endpoint recordings (python -m infra_mgr.lab.city serve …) ----------------
#
# ``serve`` is a small supervisor: it splits the ``--agent-udpv4-endpoint``s round-robin over
# ``--workers`` snmpsim processes (default one per CPU, at least two: snmpsim is single-threaded
# and was the whole wall time of a city discovery), each started as
# ``serve --worker-positions=…`` in the same process group (the lab supervisor stops the city by
# group) and killed by the kernel if the supervisor dies (PR_SET_PDEATHSIG). A worker loads only
# the recordings of its own endpoints. Measured with the LibreNMS-way walk of
# ``bench/city_discovery.py`` (84,933 varbinds), before these hooks: 0.32 ms of snmpsim CPU per
# varbind; the profile was ~40 % snmpsim's data-file path (per GETBULK repetition it formats
# log messages it then drops, stat()s the file, builds a call context with pyasn1 objects, and
# re-parses the record line), ~4 % our endpoint selection, the rest pysnmp/pyasn1 message work.

UDP_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # pysnmp's UDP/IPv4 transport domain; endpoint i is UDP_DOMAIN + (i,)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_PARENT_ENV = "INFRA_MGR_CITY_PARENT"  # a worker exits at once if its parent is already gone
STATS_FILE = "{pid}.json"


def default_workers() -> int:
    """One snmpsim process per CPU this process may run on, and never fewer than two."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(2, cpus)


@dataclass
class _Counters:
    """What a worker answered, dumped on SIGUSR1 so a benchmark can divide CPU by work."""

    requests: int = 0
    varbinds: int = 0


_COUNTERS = _Counters()


class _Loss:
    """Which requests a lossy endpoint drops (see the module docstring)."""

    RECHECK_S = 0.5

    def __init__(self, path: Path | None, endpoints: Sequence[str]) -> None:
        self.path = path
        self.hosts = [e.rsplit(":", 1)[0] for e in endpoints]  # local endpoint number -> address
        self.pct: dict[str, float] = {}
        self.mtime = -1
        self.checked = -1.0
        self.seen: dict[int, int] = {}  # local endpoint -> polled requests so far

    def _fresh(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self.checked < self.RECHECK_S:
            return
        self.checked = now
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            self.pct, self.mtime = {}, -1
            return
        if mtime != self.mtime:
            with contextlib.suppress(OSError, ValueError):
                self.pct = {str(k): float(v) for k, v in json.loads(Path(self.path).read_text()).items()}
                self.mtime = mtime

    LOSSY_PREFIXES = ((1, 3, 6, 1, 2, 1, 1, 3), (1, 3, 6, 1, 2, 1, 2, 2), (1, 3, 6, 1, 2, 1, 31, 1))

    def drop(self, local: int, client: Any, pdu: Any) -> bool:
        """Whether to drop this request (``pdu``) to local endpoint ``local`` from ``client``."""
        self._fresh()
        if not self.pct or not 0 <= local < len(self.hosts):
            return False
        pct = self.pct.get(self.hosts[local], 0.0)
        if pct <= 0 or not self._polled(pdu):
            return False
        every = max(2, round(100 / min(pct, 50.0)))  # never two in a row
        n = self.seen[local] = self.seen.get(local, 0) + 1
        return n % every == 0

    def _polled(self, pdu: Any) -> bool:
        """A GET of sysUpTime or of an IF-MIB interface object (what pollers ask)."""
        from pysnmp.proto.api import v2c

        if not pdu.isSameTypeWith(v2c.GetRequestPDU()):
            return False
        oids = [tuple(oid) for oid, _ in v2c.apiPDU.get_varbinds(pdu)]
        return any(oid[: len(prefix)] == prefix for oid in oids for prefix in self.LOSSY_PREFIXES)


def _install_endpoint_selection(positions: Sequence[int] | None = None, loss: _Loss | None = None) -> None:
    """Make snmpsim 1.2 pick the recording by transport endpoint again, on pysnmp 7.

    snmpsim's responder classes override ``handleMgmtOperation``; pysnmp 7 calls
    ``handle_management_operation``, so snmpsim's context probing never runs. This wraps pysnmp's
    method: candidates are snmpsim's own (``datafile.probe_context``), restricted to those naming
    the request's transport endpoint; when none has a recording the request is dropped (a real
    agent ignores a community it does not know). The answer depends only on the endpoint, the
    client address and the context, so it is computed once per such tuple (probing cost ~4 % of
    the agent's CPU when done per request). ``positions`` maps a worker's local endpoint number
    (snmpsim numbers its own endpoints from 0) to the city-wide one that names the recording.
    It also counts requests and response varbinds (:func:`city_counters`).
    """
    from pysnmp.entity.rfc3413 import cmdrsp
    from pysnmp.error import PySnmpError
    from snmpsim import datafile
    from snmpsim.commands import responder

    chosen: dict[tuple[Any, ...], bytes | None] = {}

    def probe(self: Any, engine: Any, ctx: dict[str, Any]) -> bytes | None:
        domain = tuple(ctx["transportDomain"])
        if positions is not None and domain[:-1] == UDP_DOMAIN:
            domain = UDP_DOMAIN + (positions[domain[-1]],)
        domain_text = ".".join(str(x) for x in domain)
        context_engine_id = ctx["contextEngineId"]
        label = datafile.SELF_LABEL if context_engine_id == engine.snmpEngineID else context_engine_id.prettyPrint()
        context_name = ctx["contextName"].prettyPrint()
        for candidate in datafile.probe_context(domain, ctx["transportAddress"], label, context_name):
            if domain_text not in candidate.decode(errors="replace").split("/"):
                continue
            key = hashlib.md5(candidate).hexdigest().encode() if len(candidate) > 32 else candidate
            try:
                self.snmpContext.get_mib_instrum(key)
            except PySnmpError:
                continue
            return key
        return None

    def select(self: Any, engine: Any) -> bytes | None:
        ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        memo = (
            tuple(ctx["transportDomain"]),
            ctx["transportAddress"][0],
            bytes(ctx["contextEngineId"]),
            bytes(ctx["contextName"]),
        )
        try:
            return chosen[memo]
        except KeyError:
            pass
        if len(chosen) > 10_000:  # v3 context engine IDs come from the wire: keep the memo bounded
            chosen.clear()
        key = chosen[memo] = probe(self, engine, ctx)
        return key

    def wrap(base: Any) -> Any:  # a pysnmp class: the library is untyped
        def handle_management_operation(self: Any, engine: Any, state_ref: Any, context_name: Any, pdu: Any) -> None:
            _COUNTERS.requests += 1
            if loss is not None:
                ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
                if loss.drop(int(ctx["transportDomain"][-1]), ctx["transportAddress"], pdu):
                    self.release_state_information(state_ref)
                    return
            key = select(self, engine)
            if key is None:
                self.release_state_information(state_ref)
                return
            base.handle_management_operation(self, engine, state_ref, key, pdu)

        return handle_management_operation

    def send_varbinds(self: Any, engine: Any, state_ref: Any, status: Any, index: Any, var_binds: Any) -> None:
        _COUNTERS.varbinds += len(var_binds)
        cmdrsp.CommandResponderBase.send_varbinds(self, engine, state_ref, status, index, var_binds)

    pairs = (
        (responder.GetCommandResponder, cmdrsp.GetCommandResponder),
        (responder.SetCommandResponder, cmdrsp.SetCommandResponder),
        (responder.NextCommandResponder, cmdrsp.NextCommandResponder),
        (responder.BulkCommandResponder, cmdrsp.BulkCommandResponder),
    )
    for ours, base in pairs:
        if "handle_management_operation" in vars(ours) or "send_varbinds" in vars(ours):
            raise RuntimeError(f"{ours.__name__} already defines handle_management_operation: re-check this shim")
        ours.handle_management_operation = wrap(base)
        ours.send_varbinds = send_varbinds


class _Unsupported(Exception):
    """A recording the in-memory table does not model (subtree lines, unsorted): snmpsim serves it."""


class _EvaluationFailed(Exception):
    """snmpsim could not evaluate a line (a bad value, a variation module not loaded): snmpsim
    answers the request's error status then, and does not move on to the next line."""


class _Recording:
    """One ``.snmprec`` held in memory, answering exactly as snmpsim's ``DataFile`` does.

    snmpsim's own path, per GETBULK *repetition* (25 per request), stat()s the text file, formats
    request and response log lines at any log level, builds a call context holding new pyasn1
    objects, looks the OID up in a dbm index, seeks and re-parses the text line and rebuilds the
    value. Here: a sorted list of OID tuples and ``bisect``; a line without a variation module is
    evaluated by snmpsim once and its (oid, value) reused; a line with one (``numeric``) goes
    through snmpsim's own ``evaluate_value`` on every read with the context keys snmpsim gives it,
    so moving values, faults and variation semantics are snmpsim's. What mirrors
    ``DataFile.process_var_binds``: GET of an absent OID answers noSuchInstance (unless the next
    line is varied: that line is asked, as snmpsim does), GETNEXT answers the next line, the end
    answers endOfMibView, a variation module answering endOfMib skips to the next line, and an
    evaluation error answers the error status. The file is re-read when its mtime changes (checked
    at most twice a second, to the nanosecond; snmpsim checks on every call, to the second); on a
    re-read the variation modules' per-line contexts for this file are dropped, or a module that
    keeps its parsed parameters there (``numeric``) would go on serving the old line.
    """

    RECHECK_S = 0.5

    def __init__(self, path: str, parser: Any, modules: Any) -> None:
        self.path, self.parser, self.modules = path, parser, modules
        self._load()

    def _load(self) -> None:
        import time

        self.mtime = os.stat(self.path).st_mtime_ns
        self.checked = time.monotonic()
        for _module, _agent_contexts, record_contexts in (self.modules or {}).values():
            record_contexts.pop(self.path, None)
        keys: list[tuple[int, ...]] = []
        entries: list[tuple[Any, str, str]] = []
        with self.parser.open(self.path) as text:
            for line in text:
                stripped = line.strip()
                if not stripped or stripped.startswith(b"#"):
                    continue
                oid_text, tag, value = self.parser.grammar.parse(line)
                if tag.startswith(":"):
                    raise _Unsupported(f"{self.path}: subtree record {oid_text}")
                oid = self.parser.evaluate_oid(oid_text)
                key = tuple(oid)
                if keys and key <= keys[-1]:
                    raise _Unsupported(f"{self.path}: not in OID order at {oid_text}")
                keys.append(key)
                entries.append((oid, tag, value))
        self.keys, self.entries = keys, entries
        self.static: dict[int, tuple[Any, Any]] = {}

    def fresh(self) -> None:
        """Re-read the file if it changed (snmpsim serves an edited recording without a restart)."""
        import time

        now = time.monotonic()
        if now - self.checked >= self.RECHECK_S:
            self.checked = now
            if os.stat(self.path).st_mtime_ns != self.mtime:
                self._load()

    def _evaluate(
        self, asked: Any, oid: Any, tag: str, text: str, context: dict[str, Any], error_status: Any
    ) -> tuple[Any, Any]:
        """snmpsim's evaluation of one line; any error raises :class:`_EvaluationFailed` (the caller
        answers the error status, as snmpsim does)."""
        from pysnmp.smi.error import MibOperationError
        from snmpsim import log
        from snmpsim.error import NoDataNotification

        try:
            got_oid, _, got = self.parser.evaluate_value(oid, tag, text, **context)
        except (NoDataNotification, MibOperationError):
            raise
        except Exception as exc:
            log.error(f"data error at {self.path} for {asked}: {exc}")
            raise _EvaluationFailed(str(exc)) from exc
        return got_oid, got

    def answer(self, oid: Any, value: Any, next_flag: bool, context: dict[str, Any]) -> tuple[Any, Any]:
        """The (oid, value) snmpsim would answer for one requested varbind."""
        from bisect import bisect_left

        from pysnmp.smi import exval

        error_status = exval.endOfMib if next_flag else exval.noSuchInstance
        key = tuple(oid)
        i = bisect_left(self.keys, key)
        exact = i < len(self.keys) and self.keys[i] == key
        if exact and next_flag:
            i += 1
        while i < len(self.entries):
            line_oid, tag, text = self.entries[i]
            varied = ":" in tag
            if not varied:
                if not next_flag and not exact:
                    return oid, error_status
                cached = self.static.get(i)
                if cached is None:
                    context = dict(context, nextFlag=True, exactMatch=True, setFlag=False)
                    try:
                        got = self._evaluate(oid, line_oid, tag, text, context, error_status)
                    except _EvaluationFailed:
                        return oid, error_status
                    cached = self.static[i] = got
                return cached
            call = dict(
                context,
                origOid=oid,
                origValue=value,
                dataFile=self.path,
                subtreeFlag=False,
                exactMatch=exact,
                errorStatus=error_status,
                variationModules=self.modules,
            )
            try:
                got_oid, got = self._evaluate(oid, line_oid, tag, text, call, error_status)
            except _EvaluationFailed:
                return oid, error_status
            if got is exval.endOfMib:  # the module declines this line: snmpsim moves on
                if next_flag:
                    exact, i = True, i + 1
                    continue
                if exact:
                    break
                exact = True  # snmpsim asks a GET's line once more as an exact match
                continue
            return got_oid, got
        return oid, error_status


def _fast_instrum_class() -> type:
    """snmpsim's per-recording instrumentation controller, answering reads from :class:`_Recording`.

    Installed as ``controller.MIB_CONTROLLERS["text"]`` (how snmpsim picks the class for a data
    file). Writes, and any recording the table does not model, go to snmpsim's own controller.
    The call context is built once per request (a GETBULK asks 25 times) with the keys snmpsim's
    ``MibInstrumController._get_call_context`` gives variation modules.
    """
    from pysnmp.carrier.asyncio.dgram import udp, udp6
    from pysnmp.proto import rfc1902
    from snmpsim import controller, log

    domains: dict[tuple[int, ...], Any] = {}

    class FastInstrumController(controller.MibInstrumController):
        def __init__(self, data_file: Any) -> None:
            super().__init__(data_file)
            self._last: tuple[Any, dict[str, Any]] | None = None
            try:
                self._table: _Recording | None = _Recording(
                    data_file._text_file, data_file._text_parser, data_file._variation_modules
                )
            except _Unsupported as exc:
                log.info(f"served by snmpsim's own index: {exc}")
                self._table = None

        def _context(self, context: dict[str, Any]) -> dict[str, Any]:
            engine = context["snmpEngine"]
            ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            if self._last is not None and self._last[0] is ctx:
                return self._last[1]
            domain = tuple(ctx["transportDomain"])
            if domain not in domains:
                domains[domain] = rfc1902.ObjectIdentifier(domain)
            address = ctx["transportAddress"]
            protocol = (
                "udpv4" if isinstance(address, udp.UdpTransportAddress)
                else "udpv6" if isinstance(address, udp6.Udp6TransportAddress) else "unknown"
            )
            built = {
                "snmpEngine": engine,
                "transportDomain": domains[domain],
                "transportAddress": address,
                "transportProtocol": protocol,
                "securityModel": ctx["securityModel"],
                "securityName": ctx["securityName"],
                "securityLevel": ctx["securityLevel"],
                "contextEngineId": ctx["contextEngineId"],
                "contextName": ctx["contextName"],
                "pduType": ctx["pdu"].__class__.__name__,
                "setFlag": False,
            }
            self._last = (ctx, built)  # holding ctx keeps its id from being reused by a later request
            return built

        def _read(self, var_binds: Sequence[Any], next_flag: bool, context: dict[str, Any]) -> list[tuple[Any, Any]]:
            table = self._table
            assert table is not None
            table.fresh()
            base = dict(self._context(context), nextFlag=next_flag, varsTotal=len(var_binds))
            answers = []
            for remaining, (oid, value) in enumerate(var_binds, start=1):
                base["varsRemaining"] = len(var_binds) - remaining
                answers.append(table.answer(oid, value, next_flag, base))
            return answers

        def read_variables(self, *var_binds: Any, **context: Any) -> Any:
            if self._table is None:
                return super().read_variables(*var_binds, **context)
            return self._read(var_binds, False, context)

        def read_next_variables(self, *var_binds: Any, **context: Any) -> Any:
            if self._table is None:
                return super().read_next_variables(*var_binds, **context)
            return self._read(var_binds, True, context)

    return FastInstrumController


def _install_fast_recordings(positions: Sequence[int] | None) -> None:
    """Serve reads from memory, and load only this worker's recordings.

    * ``controller.MIB_CONTROLLERS["text"]`` becomes :func:`_fast_instrum_class`'s controller.
    * ``DataFile.index_text`` (the dbm index snmpsim builds or checks for every file at start-up)
      is skipped: reads no longer use it, and snmpsim still builds it on first use if a SET comes.
    * ``datafile.get_data_files`` drops recordings named after another worker's endpoints
      (``…/1.3.6.1.6.1.1.<i>.snmprec``); community stubs and other files are kept.
    """
    from snmpsim import controller, datafile

    controller.MIB_CONTROLLERS[datafile.DataFile.layout] = _fast_instrum_class()
    datafile.DataFile.index_text = lambda self, *args, **kwargs: self
    if positions is None:
        return
    mine = set(positions)
    prefix = ".".join(map(str, UDP_DOMAIN)) + "."
    listed = datafile.get_data_files

    def get_data_files(tgt_dir: str, top_len: int | None = None) -> list[tuple[str, Any, str]]:
        kept = []
        for entry in listed(tgt_dir, top_len):
            last = entry[2].rsplit("/", 1)[-1]
            if last.startswith(prefix) and last[len(prefix):].isdigit() and int(last[len(prefix):]) not in mine:
                continue
            kept.append(entry)
        return kept

    datafile.get_data_files = get_data_files


def _dump_counters(stats_dir: Path) -> None:
    """Write this worker's counters to ``<stats_dir>/<pid>.json`` (atomically)."""
    stats_dir.mkdir(parents=True, exist_ok=True)
    path = stats_dir / STATS_FILE.format(pid=os.getpid())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **_COUNTERS.__dict__}))
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker when the ``serve`` supervisor dies, however it dies."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    expected = os.environ.get(WORKER_PARENT_ENV)
    if expected and os.getppid() != int(expected):  # the parent died before prctl took effect
        os._exit(1)


def _run_worker(snmpsim_args: Sequence[str], positions: list[int] | None, stats_dir: Path | None,
                loss: _Loss | None = None) -> int:
    """One snmpsim responder with our hooks (a worker, or the only process with ``--workers=1``)."""
    import signal

    from snmpsim.commands import responder

    if positions is not None:
        _die_with_parent()
    _install_endpoint_selection(positions, loss)
    _install_fast_recordings(positions)
    if stats_dir is not None:
        signal.signal(signal.SIGUSR1, lambda *_: _dump_counters(stats_dir))
    sys.argv = ["snmpsim-command-responder", *snmpsim_args]
    return int(responder.main() or 0)


def _supervise(children: list[Any]) -> int:
    """Wait on the workers; a stop signal is passed on, and one worker dying stops the others
    (a city missing half its devices must fail loudly, not linger)."""
    import signal

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        signal.alarm(5)

    def kill(*_: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    signal.signal(signal.SIGALRM, kill)
    signal.signal(signal.SIGUSR1, forward)
    live = {child.pid for child in children}
    code = 0
    while live:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        live.discard(pid)
        if not stopping:
            code = os.waitstatus_to_exitcode(status) or 1
            print(f"city: worker {pid} exited ({code}); stopping the others", file=sys.stderr, flush=True)
            stop()
    return code


def _split_args(args: Sequence[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """(our options, snmpsim options without endpoints, the UDP/IPv4 endpoints in order)."""
    ours: dict[str, str] = {}
    rest: list[str] = []
    endpoints: list[str] = []
    items = list(args)
    while items:
        item = items.pop(0)
        name, eq, value = item.partition("=")
        if name in ("--workers", "--stats-dir", "--worker-positions", "--agent-udpv4-endpoint", "--loss-file"):
            if not eq:
                if not items:
                    raise SystemExit(f"serve: {name} needs a value")
                value = items.pop(0)
            if name == "--agent-udpv4-endpoint":
                endpoints.append(value)
            else:
                ours[name] = value
        else:
            rest.append(item)
    return ours, rest, endpoints


def serve(args: Sequence[str]) -> int:
    """Serve the city: ``--workers=N`` snmpsim processes (default :func:`default_workers`), each
    with a round-robin share of the ``--agent-udpv4-endpoint``s; ``--stats-dir=D`` makes each
    worker write its request/varbind counters to ``D/<pid>.json`` on SIGUSR1; every other option
    goes to snmpsim. ``--workers=1`` runs snmpsim in this process, as before."""
    import subprocess

    ours, rest, endpoints = _split_args(args)
    stats_dir = Path(ours["--stats-dir"]) if "--stats-dir" in ours else None
    loss_file = Path(ours["--loss-file"]) if "--loss-file" in ours else None
    if "--worker-positions" in ours:
        positions = [int(p) for p in ours["--worker-positions"].split(",") if p]
        return _run_worker([*rest, *(f"--agent-udpv4-endpoint={e}" for e in endpoints)], positions, stats_dir,
                           _Loss(loss_file, endpoints))
    workers = max(1, min(int(ours.get("--workers") or default_workers()), len(endpoints) or 1))
    if workers == 1:
        return _run_worker([*rest, *(f"--agent-udpv4-endpoint={e}" for e in endpoints)], None, stats_dir,
                           _Loss(loss_file, endpoints))
    children = []
    env = {**os.environ, WORKER_PARENT_ENV: str(os.getpid())}
    for worker in range(workers):
        positions = list(range(worker, len(endpoints), workers))
        argv = [sys.executable, "-m", "infra_mgr.lab.city", "serve"]
        argv.append(f"--worker-positions={','.join(map(str, positions))}")
        if stats_dir is not None:
            argv.append(f"--stats-dir={stats_dir}")
        if loss_file is not None:
            argv.append(f"--loss-file={loss_file}")
        argv += [*rest, *(f"--agent-udpv4-endpoint={endpoints[p]}" for p in positions)]
        children.append(subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL))  # same process group
    return _supervise(children)
