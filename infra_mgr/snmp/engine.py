"""The SNMP poll engine: gufo-snmp under asyncio, bounded, and hardened against agents that lie.

Why gufo-snmp: measured here (``bench/snmp_sweep.py``, docs/benchmarks.md) it walks ~35x cheaper in client
CPU than pysnmp's hlapi, so a city's sweep fits on one core. pysnmp stays for traps and SETs; the
:class:`Walker` protocol below is all the getters need, so another library can serve a walk.

What the engine adds on top of gufo (which is a fast codec and socket, and no more):

* **Bounds.** One :class:`SnmpEngine` holds a global semaphore over *devices* (``max_concurrency``)
  and one lock per device, and every :class:`GufoWalker` serialises its own requests: at most one
  request is in flight per device, whatever the caller gathers. A device poll also has a deadline.
* **Timeouts and retries** per device from :class:`SnmpTarget` (gufo has a timeout, no retries);
  a retry to a device that has answered before waits twice as long as the attempt before it.
  A device that times out after its retries, or fails SNMPv3 authentication, is given up at once
  (:class:`PollAbort`): the rest of its poll would only wait for the same silence.
* **GETBULK fallback.** Some agents mishandle GETBULK: an error status (gufo ignores error
  status, so that reads as an empty table), an empty PDU, garbage, or silence. While GETBULK is
  not yet proven on a device, an empty or failed bulk walk is checked with one GETNEXT; if GETNEXT
  finds rows, the device is remembered as "no bulk" (:class:`DeviceState`) and walked with GETNEXT
  from then on, and a ``no_bulk`` problem says so. Once a bulk walk has returned rows the agent is
  trusted and empty tables cost no extra request.
* **Answers that fit.** gufo reads each answer into a fixed 4080-byte buffer; a longer one (25
  rows of long LLDP descriptions, Arabic aliases…) reads as cut short. Max-repetitions is chosen
  per walk: as many rows as fit the buffer, from the size of that table's varbinds seen before
  (engine-wide; 25 for a table never seen), within the target's bound (100 by default); exactly
  the known rows plus one when the caller knows the row count (``expect_rows``: ifNumber for
  ifTable, the first column's rows for the others), so the answer holds the whole column and the
  walk ends without over-fetching; else the median row count of that table's last walks plus
  one (an agent computes every repetition asked for, even past the end of the column). A bulk
  walk cut short anyway is retried with half the max-repetitions, down to 1, and the value that
  worked is remembered for that device and table.
* **Cheap per varbind.** GETBULK answers are taken whole from gufo's request/decode calls (its
  iterator costs a coroutine step per varbind), and order is checked per answer: one ``int()``
  per varbind and a C-level comparison for column walks.
* **Walks that end.** gufo follows whatever OID the agent returns as long as it stays under the
  base, so an agent answering the same OID forever would loop forever. Here every walk requires
  strictly increasing OIDs (a repeat or a step back is a ``loop`` problem and ends the walk) and
  stops after ``max_rows`` varbinds (``too_big``), keeping what it has.
* **Problems, not exceptions.** Everything an agent does wrong becomes a :class:`PollProblem` on
  the walker (deduplicated per operation and kind); the sweep goes on with the next device.

Problem kinds: ``timeout`` (no answer after retries, or ICMP port unreachable), ``auth`` (SNMPv3
report: unknown user, wrong key, not in time window), ``decode`` (undecodable packet),
``truncated`` (a packet cut short), ``loop`` (non-increasing OIDs), ``too_big`` (row cap hit),
``no_bulk`` (GETBULK broken, GETNEXT used), ``no_such_object`` (the agent has none of the asked
scalars), ``end_of_mib`` (a table every agent has came back empty), ``bad_type`` (a value of the
wrong SNMP type; see getters), ``error`` (anything else, e.g. an address that does not resolve).

gufo-snmp 0.13 facts this module works around:

* ``SnmpSession`` lives in ``gufo.snmp.aio``, not the package root; it has no close (the socket
  goes with the object) and no retries;
* it receives into a fixed 4080-byte buffer: a longer answer raises ``SnmpDecodeError("incomplete")``;
* its Rust decoder can panic on garbage: ``PanicException``, a ``BaseException`` that ``except
  Exception`` misses, with a Rust backtrace printed on stderr;
* it follows any OID under the base, so an agent repeating an OID makes it loop forever;
* it has no SNMPv3 context name (always empty);
* it drops the response's error-status and -index: a GETBULK answered with genErr reads as an
  empty table, and on SNMPv1 a GET of several OIDs with one missing (noSuchName) reads as empty;
* noSuchObject, noSuchInstance and endOfMibView all read the same (absent, or end of walk);
* "connection refused" (ICMP port unreachable) is raised as ``TimeoutError``;
* values come back as Python types without their SNMP tag: OCTET STRING and Opaque are
  ``bytes``, OID and IpAddress are ``str``, every integer type is ``int``.

Why one file of ~750 lines: the walker, its per-device state and the engine's bounds are one
mechanism (request sizing, order checks, overflow halving and retries share state per device and
table); splitting them would put one request's path across files.
"""

from __future__ import annotations

import asyncio
import ipaddress
import operator
import socket
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

from infra_mgr.snmp.target import PollProblem, SnmpTarget

if TYPE_CHECKING:  # gufo is imported when a session opens, not with this module
    from gufo.snmp import User
    from gufo.snmp.aio import SnmpSession

ValueType = None | bool | int | float | str | bytes
VarBind = tuple[str, ValueType]
T = TypeVar("T")

# Kinds after which a device is given up at once: waiting more would only repeat them.
FATAL_KINDS = frozenset({"timeout", "auth"})
# SNMPv3 engine time must be refreshed well inside the agent's 150 s window.
V3_REFRESH_S = 100.0


class PollAbort(Exception):
    """The device was given up (its problem is already recorded); getters let this propagate."""


# --- SNMPv3 protocol names -> gufo key classes (data, not code paths) ---------------------------


def _norm(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


def _auth_classes() -> dict[str, type]:
    from gufo.snmp import Md5Key, Sha1Key, Sha224Key, Sha256Key, Sha384Key, Sha512Key

    return {"MD5": Md5Key, "SHA": Sha1Key, "SHA1": Sha1Key, "SHA224": Sha224Key, "SHA256": Sha256Key,
            "SHA384": Sha384Key, "SHA512": Sha512Key}


def _priv_classes() -> dict[str, tuple[type, str]]:
    """Privacy protocol -> (key class, AES-192/256 key expansion). ``C`` suffix = Cisco/Reeder
    expansion (net-snmp's ``AES192C``); plain names use Blumenthal, as net-snmp and snmpsim do."""
    from gufo.snmp import Aes128Key, Aes192Key, Aes256Key, DesKey

    return {"DES": (DesKey, "Blumenthal"), "AES": (Aes128Key, "Blumenthal"), "AES128": (Aes128Key, "Blumenthal"),
            "AES192": (Aes192Key, "Blumenthal"), "AES256": (Aes256Key, "Blumenthal"),
            "AES192C": (Aes192Key, "Cisco"), "AES256C": (Aes256Key, "Cisco")}


AUTH_PROTOCOLS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
PRIV_PROTOCOLS = ("DES", "AES", "AES-192", "AES-256", "AES-192C", "AES-256C")


def validate_target(target: SnmpTarget) -> None:
    """Raise ``ValueError`` (one readable line) for a target no agent could ever answer."""
    if target.version not in ("1", "2c", "3"):
        raise ValueError(f"SNMP version must be 1, 2c or 3, not {target.version!r}")
    if not 0 < target.port < 65536:
        raise ValueError(f"port {target.port} out of range")
    if target.timeout_s <= 0 or target.retries < 0 or target.max_repetitions < 1:
        raise ValueError("timeout must be > 0, retries >= 0 and max-repetitions >= 1")
    if target.version != "3":
        return
    if not target.user:
        raise ValueError("SNMPv3 needs a user name")
    if target.auth_proto and _norm(target.auth_proto) not in _auth_classes():
        raise ValueError(f"unknown auth protocol {target.auth_proto!r} (known: {', '.join(AUTH_PROTOCOLS)})")
    if target.priv_proto and _norm(target.priv_proto) not in _priv_classes():
        raise ValueError(f"unknown privacy protocol {target.priv_proto!r} (known: {', '.join(PRIV_PROTOCOLS)})")
    if target.priv_proto and not target.auth_proto:
        raise ValueError("SNMPv3 privacy needs authentication too (authPriv)")
    if target.auth_proto and len(target.auth_key) < 8 or target.priv_proto and len(target.priv_key) < 8:
        raise ValueError("SNMPv3 keys must be at least 8 characters (RFC 3414)")


def _v3_user(target: SnmpTarget) -> User:
    from gufo.snmp import KeyExpansion, User

    auth = priv = None
    expansion = "Blumenthal"
    if target.auth_proto:
        auth = _auth_classes()[_norm(target.auth_proto)](target.auth_key.encode())
    if target.priv_proto:
        cls, expansion = _priv_classes()[_norm(target.priv_proto)]
        priv = cls(target.priv_key.encode())
    return User(target.user, auth_key=auth, priv_key=priv, key_expansion=KeyExpansion[expansion])


# --- the internal interface --------------------------------------------------------------------


class Walker(Protocol):
    """What getters need from an SNMP library: GET of scalars and walks of subtrees, with problems
    recorded on ``problems`` rather than raised (only :class:`PollAbort` escapes).

    ``get`` returns the OIDs the agent has (missing ones are absent); ``walk`` returns varbinds
    strictly under ``base`` in strictly increasing OID order. OCTET STRINGs are ``bytes``, OIDs
    and IpAddresses dotted ``str``, integer types ``int``.
    """

    target: SnmpTarget  # the agent it talks to (callers name it in what they report)
    address: str
    problems: list[PollProblem]
    answered: bool  # a valid response came back at least once (alive, whatever failed after)

    async def get(self, oids: Sequence[str], *, operation: str = "get") -> dict[str, ValueType]: ...

    async def walk(self, base: str, *, max_rows: int | None = None, operation: str | None = None,
                   expect_rows: int | None = None) -> list[VarBind]: ...

    def problem(self, operation: str, kind: str, message: str) -> None: ...


@dataclass
class DeviceState:
    """What the engine remembers about one agent between polls."""

    bulk: bool | None = None  # None: not proven yet; True: GETBULK returned rows; False: use GETNEXT
    # per walked base: the max-repetitions that fitted after an answer did not fit gufo's buffer
    ceilings: dict[str, int] = field(default_factory=dict)
    get_cells: int | None = None  # cells per GET, lowered when a long GET came back empty or cut short


# gufo reads an answer into 4080 bytes; the message header, community and PDU header take ~60.
# Answers are sized to this budget from the estimated encoded size of a varbind of the table.
ANSWER_BUDGET = 3400
# Max-repetitions for a table whose varbind size is not known yet (25 rows of ~130 bytes fit).
FIRST_REPETITIONS = 25
# GET of known rows (get_rows): at most this many cells per request, an unknown column's cell
# counted at this many bytes, and never fewer cells per request than this when an answer came
# back empty (below it an empty answer means the cells are absent).
MAX_GET_CELLS = 128
# Row counts kept per walked base to size walks of unknown length (their median is used).
ROWS_SEEN_KEPT = 15
UNKNOWN_CELL_BYTES = 80
MIN_GET_CELLS = 16


def varbind_size(oid: str, value: object) -> int:
    """Estimated BER size of one varbind: sequence, OID and value headers, one byte per OID arc
    below 128 (two up to 16383, three above), the value's own bytes. An estimate is enough: an
    answer that does not fit is retried smaller (and remembered)."""
    arcs = oid.split(".")
    size = 6 + len(arcs) - 1 + sum(1 for a in arcs if len(a) > 2) + sum(1 for a in arcs if len(a) > 4)
    if isinstance(value, bytes):
        return size + 2 + len(value)
    if isinstance(value, str):  # IpAddress (4 bytes) or OID (about one byte per arc)
        dots = value.count(".")
        return size + 2 + (4 if dots == 3 else dots + 1)
    return size + 11  # integers up to Counter64, with their header


@dataclass
class EngineStats:
    """Counters for tests and benchmarks (cheap: plain integer updates)."""

    devices_in_flight: int = 0
    peak_devices_in_flight: int = 0
    peak_requests_per_device: int = 0
    requests: int = 0
    varbinds: int = 0
    timeouts: int = 0
    devices_polled: int = 0


def _classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) of an exception raised by gufo while talking to an agent."""
    from gufo.snmp import SnmpAuthError, SnmpDecodeError, SnmpError

    if isinstance(exc, TimeoutError):
        text = str(exc)
        if "refused" in text:
            return "timeout", "port unreachable (ICMP connection refused)"
        return "timeout", "no answer"
    if isinstance(exc, SnmpAuthError):
        return "auth", "authentication failed (SNMPv3 report: unknown user, wrong key or time window)"
    if isinstance(exc, SnmpDecodeError):
        text = str(exc) or exc.__class__.__name__
        if "incomplete" in text:
            return "truncated", f"response cut short ({text})"
        return "decode", f"undecodable response ({text})"
    if isinstance(exc, SnmpError):
        return "error", f"{exc.__class__.__name__}: {exc}"
    if isinstance(exc, OSError):
        return "error", f"socket error: {exc}"
    return "error", f"{exc.__class__.__name__}: {exc}"


class _RequestFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class GufoWalker:
    """A :class:`Walker` over one gufo ``SnmpSession`` to one device (one request in flight)."""

    def __init__(self, target: SnmpTarget, *, state: DeviceState | None = None, stats: EngineStats | None = None,
                 max_rows: int = 20_000, max_errors: int = 5, varbind_bytes: dict[str, int] | None = None,
                 rows_seen: dict[str, list[int]] | None = None) -> None:
        self.target = target
        # estimated encoded size of a varbind, and the row counts of the last walks, per walked
        # base (shared engine-wide: a table is much alike from one device to the next)
        self.varbind_bytes = varbind_bytes if varbind_bytes is not None else {}
        self.rows_seen = rows_seen if rows_seen is not None else {}
        self.address = target.address
        self.problems: list[PollProblem] = []
        self.state = state or DeviceState()
        self.stats = stats or EngineStats()
        self.max_rows = max_rows
        self.max_errors = max_errors
        self.answered = False  # at least one valid response came back
        self._errors = 0
        self._seen: set[tuple[str, str]] = set()
        self._session: SnmpSession | None = None
        self._lock = asyncio.Lock()
        self._in_flight = 0
        self._refreshed_at = 0.0

    # problems ----------------------------------------------------------------------------------

    def problem(self, operation: str, kind: str, message: str) -> None:
        """Record a problem once per (operation, kind): a 50,000-row table of bad values is one
        problem, not 50,000."""
        if (operation, kind) in self._seen:
            return
        self._seen.add((operation, kind))
        self.problems.append(PollProblem(self.address, operation, kind, message))

    def _fail(self, operation: str, kind: str, message: str) -> None:
        """Record a request failure; raise PollAbort when the device is not worth more requests."""
        self.problem(operation, kind, message)
        if kind in FATAL_KINDS:
            raise PollAbort(f"{self.address}: {kind}")
        self._errors += 1
        if self._errors >= self.max_errors:
            self.problem("poll", "error", f"gave up after {self._errors} failed requests")
            raise PollAbort(f"{self.address}: too many errors")

    # session -----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Resolve the address, build the session and, for SNMPv3, discover the engine (with the
        target's retries): after this the device answered, or a problem says why not."""
        await self._open()

    async def _open(self) -> SnmpSession:
        """:meth:`open`, giving the session (or raising :class:`PollAbort`)."""
        from gufo.snmp import SnmpVersion
        from gufo.snmp.aio import SnmpSession

        target = self.target
        host = target.address
        try:
            ipaddress.ip_address(host)
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(host, target.port, type=socket.SOCK_DGRAM)
                host = str(infos[0][4][0])
            except (OSError, IndexError) as exc:
                self.problem("open", "error", f"cannot resolve {host!r}: {exc}")
                raise PollAbort(host) from None
        try:
            if target.version == "3":
                session = SnmpSession(host, target.port, user=_v3_user(target), version=SnmpVersion.v3,
                                      timeout=target.timeout_s, max_repetitions=target.max_repetitions)
            else:
                version = SnmpVersion.v1 if target.version == "1" else SnmpVersion.v2c
                session = SnmpSession(host, target.port, community=target.community, version=version,
                                      allow_bulk=version != SnmpVersion.v1, timeout=target.timeout_s,
                                      max_repetitions=target.max_repetitions)
        except (OSError, ValueError) as exc:
            self.problem("open", "error", f"cannot open a session: {exc}")
            raise PollAbort(self.address) from None
        self._session = session
        if target.version == "3":
            try:
                await self._request("open", session.refresh)
            except _RequestFailed as exc:
                self._fail("open", exc.kind, exc.message)
                raise PollAbort(self.address) from None
            self._refreshed_at = time.monotonic()
        return session

    async def _request(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        """One request with the target's retries, alone in flight on this device."""
        attempts = self.target.retries + 1
        async with self._lock:
            session = self._session
            if (session is not None and self.target.version == "3" and operation != "open"
                    and time.monotonic() - self._refreshed_at > V3_REFRESH_S):
                self._refreshed_at = time.monotonic()
                await self._request_unlocked("refresh", session.refresh, attempts)
            return await self._request_unlocked(operation, call, attempts)

    async def _request_unlocked(self, operation: str, call: Callable[[], Awaitable[T]], attempts: int) -> T:
        stats = self.stats
        session = self._session
        for attempt in range(attempts):
            if session is not None:
                # A device that has answered is alive: a late answer is load (its CPU, a busy
                # link), so each retry waits twice as long. One that never answered keeps the
                # plain timeout, so a dead device still costs only timeout x attempts.
                session._timeout = self.target.timeout_s * (2 ** attempt if self.answered else 1)
            self._in_flight += 1
            if self._in_flight > stats.peak_requests_per_device:
                stats.peak_requests_per_device = self._in_flight
            stats.requests += 1
            try:
                result = await call()
            except StopAsyncIteration:
                self.answered = True
                raise
            except Exception as exc:  # noqa: BLE001  # gufo raises its own, OSError and TimeoutError
                kind, message = _classify(exc)
            except BaseException as exc:
                # gufo's Rust decoder panics on some garbage (index out of bounds); pyo3 raises
                # that as PanicException, a BaseException. Everything else (cancellation,
                # KeyboardInterrupt) must go on up.
                if type(exc).__name__ != "PanicException":
                    raise
                kind, message = "decode", f"undecodable response (gufo-snmp decoder panicked: {exc})"
            else:
                self.answered = True
                return result
            finally:
                self._in_flight -= 1
            if kind == "timeout":
                stats.timeouts += 1
                if attempt + 1 < attempts and "refused" not in message:
                    continue
                message = f"{message} after {attempts} attempt(s) of {self.target.timeout_s:g} s"
            raise _RequestFailed(kind, message)
        raise _RequestFailed("timeout", "no answer")  # pragma: no cover  (attempts >= 1)

    # GET ---------------------------------------------------------------------------------------

    async def get(self, oids: Sequence[str], *, operation: str = "get") -> dict[str, ValueType]:
        """GET several scalars in one request; missing ones are absent from the result.

        SNMPv1 answers a GET with one unknown OID by an error for all of them (and gufo drops the
        error status, so the answer reads empty): on v1 an empty answer is asked again OID by OID.
        """
        session = self._session
        if session is None:
            session = await self._open()
        wanted = list(oids)
        try:
            values = await self._request(operation, lambda: session.get_many(wanted))
        except _RequestFailed as exc:
            self._fail(operation, exc.kind, exc.message)
            return {}
        if not values and self.target.version == "1" and len(wanted) > 1:
            for oid in wanted:
                values.update(await self.get([oid], operation=operation))
        self.stats.varbinds += len(values)
        return values

    async def get_rows(self, bases: Sequence[str], indexes: Sequence[str], *, operation: str = "get rows"
                       ) -> list[VarBind] | None:
        """The cells ``base.index`` of several table columns for rows already known (from the
        table's first column), by GET, in as few requests as fit one answer: a 10-port router's
        six interface columns are one request instead of six walks, which halves what discovery
        asks of every device (and of a branch's WAN link).

        Cells an agent lacks are absent (sparse columns). ``None`` means "walk instead": SNMPv1
        (one missing cell fails the whole GET) or an answer that came back empty even when
        asked small — gufo drops the error status, so tooBig or genErr read as empty. An answer
        that is empty only when asked big lowers this device's cap (agents with a small maximum
        message size, such as Cisco's default 1,500 bytes, answer tooBig to a long GET).
        """
        if self.target.version == "1":
            return None
        if not bases or not indexes:
            return []
        session = self._session
        if session is None:
            session = await self._open()
        cells = [(base, f"{base}.{index}") for base in bases for index in indexes]
        out: list[VarBind] = []
        position = 0
        while position < len(cells):
            cap = self.state.get_cells or MAX_GET_CELLS
            chunk: list[str] = []
            budget = ANSWER_BUDGET
            for base, oid in cells[position:position + cap]:
                budget -= self.varbind_bytes.get(base, UNKNOWN_CELL_BYTES)
                if chunk and budget < 0:
                    break
                chunk.append(oid)
            try:
                values = await self._request(operation, partial(session.get_many, chunk))
            except _RequestFailed as exc:
                if exc.kind == "truncated" and len(chunk) > 1:
                    self.state.get_cells = max(1, len(chunk) // 2)
                    continue
                self._fail(operation, exc.kind, exc.message)
                return out
            if not values:
                if len(chunk) > MIN_GET_CELLS:
                    self.state.get_cells = max(MIN_GET_CELLS, len(chunk) // 4)
                    continue  # perhaps tooBig: ask again, smaller
                if not out:
                    return None
            position += len(chunk)
            got = [(oid, values[oid]) for oid in chunk if oid in values]
            self._learn_sizes(got)
            out.extend(got)
        self.stats.varbinds += len(out)
        return out

    def _learn_sizes(self, varbinds: Sequence[VarBind]) -> None:
        sizes = self.varbind_bytes
        for oid, value in varbinds:
            base = oid.rpartition(".")[0]
            size = varbind_size(oid, value)
            if size > sizes.get(base, 0):
                sizes[base] = size

    # walks -------------------------------------------------------------------------------------

    def repetitions_for(self, base: str, expect_rows: int | None = None) -> int:
        """Max-repetitions for a GETBULK walk of ``base``: as many rows as fit one answer (from the
        table's varbind size seen before, else :data:`FIRST_REPETITIONS`), never above the
        target's bound or what this device's answers were seen to fit, and, when the caller knows
        how many rows the table has, just those rows and one more (that one is past the column,
        so the walk ends with that same answer instead of asking again and over-fetching)."""
        target = self.target
        size = self.varbind_bytes.get(base)
        reps = min(target.max_repetitions, max(1, ANSWER_BUDGET // size) if size else FIRST_REPETITIONS)
        reps = min(reps, self.state.ceilings.get(base, reps))
        if expect_rows is None:
            # Length unknown: an agent computes every repetition asked for, also past the end of
            # the column, so ask for what this table usually holds (the median of the last walks
            # of it, on any device) and let a longer one take more answers.
            seen = self.rows_seen.get(base)
            if seen:
                reps = min(reps, max(FIRST_REPETITIONS // 5, sorted(seen)[len(seen) // 2] + 1))
        else:
            reps = min(reps, expect_rows + 1)
        return max(1, reps)

    async def walk(self, base: str, *, max_rows: int | None = None, operation: str | None = None,
                   expect_rows: int | None = None) -> list[VarBind]:
        """All varbinds under ``base`` (see the module docstring for the GETBULK fallback).
        ``expect_rows``: how many rows the caller expects (e.g. the rows of a table's first
        column), to size the GETBULK answers; more or fewer rows are still walked correctly."""
        if self._session is None:
            await self._open()
        operation = operation or f"walk {base}"
        limit = max_rows or self.max_rows
        bulk_allowed = self.target.use_bulk and self.target.version != "1" and self.state.bulk is not False
        if not bulk_allowed:
            rows, failure = await self._walk_once(base, False, limit, operation)
            if failure:
                self._fail(operation, *failure)
            return rows
        repetitions = self.repetitions_for(base, expect_rows)
        while True:
            rows, failure = await self._walk_once(base, True, limit, operation, repetitions=repetitions)
            if not failure or failure[0] != "truncated" or repetitions == 1:
                break
            # gufo receives into a fixed 4080-byte buffer and reads a longer answer as cut short:
            # ask for fewer rows per answer, and remember it for this device and table
            repetitions = self.state.ceilings[base] = max(1, repetitions // 2)
        if self.state.bulk or (rows and not failure):
            if rows:
                self.state.bulk = True
            if failure:
                self._fail(operation, *failure)
            return rows
        if failure and failure[0] == "timeout" and not self.answered:
            # Nothing has ever answered: the device is silent, not a GETBULK mishandler.
            self._fail(operation, *failure)
            return rows
        # Bulk is unproven here and came back empty or broken: does GETNEXT see more?
        check, check_failure = await self._walk_once(base, False, 1, operation, quiet=True)
        if not check:
            problem = check_failure or failure
            if problem:
                self._fail(operation, *problem)
            return rows
        self.state.bulk = False
        why = f"{failure[0]}: {failure[1]}" if failure else "empty answer"
        self.problem(operation, "no_bulk", f"GETBULK mishandled ({why}); walking with GETNEXT from now on")
        rows, failure = await self._walk_once(base, False, limit, operation)
        if failure:
            self._fail(operation, *failure)
        return rows

    async def _walk_once(self, base: str, bulk: bool, limit: int, operation: str, *, quiet: bool = False,
                         repetitions: int = 1) -> tuple[list[VarBind], tuple[str, str] | None]:
        """One walk with one method: (rows, failure). Loop and row-cap problems are recorded here
        (``quiet``: the cap is a probe's own, not a problem) and end the walk with what it has; a
        request failure is returned for the caller to judge.

        GETBULK is driven one answer at a time (gufo's request/decode calls under its iterator),
        and every check runs over the whole answer at once: the per-varbind Python of an
        iterator costs more than gufo's own decoding.
        """
        from gufo.snmp._fast import GetIter

        session = self._session
        if session is None:  # walk() opened it; a direct call on a closed walker opens it here
            session = await self._open()
        sock = session._sock
        ctx = GetIter(base, repetitions if bulk else None)
        if bulk:
            send = partial(sock.send_get_bulk, ctx)
            recv_bulk = partial(sock.recv_get_bulk, ctx)

            async def exchange() -> list[VarBind | None]:
                await session._send(send)
                return await session._recv(recv_bulk)
        else:
            send = partial(sock.send_get_next, ctx)
            recv_next = partial(sock.recv_get_next, ctx)

            async def exchange() -> list[VarBind | None]:
                await session._send(send)
                return [await session._recv(recv_next)]

        rows: list[VarBind] = []
        prefix = base + "."
        last: tuple[int, ...] = ()
        size = 0
        stop = False
        while not stop:
            try:
                received = await self._request(operation, exchange)
            except StopAsyncIteration:
                break
            except _RequestFailed as exc:
                self.stats.varbinds += len(rows)
                return rows, (exc.kind, exc.message)
            if received and received[-1] is None:  # gufo: the answer left the subtree here
                received.pop()
                stop = True
            if not received:
                break
            answer = cast(list[VarBind], received)  # only the last item can be None: popped above
            size = max(size, varbind_size(*answer[-1]))
            kept, last, why = _ordered(answer, prefix, last)
            if kept < len(answer):
                stop = True
                if why == "outside":  # past the subtree (gufo normally stops first)
                    pass
                elif why == "malformed":
                    self.problem(operation, "decode", f"malformed OID {answer[kept][0]!r}")
                else:
                    after = answer[kept - 1][0] if kept else (rows[-1][0] if rows else base)
                    what = "the same OID again" if answer[kept][0] == after else "an OID smaller than the previous one"
                    self.problem(operation, "loop", f"agent returned {what} ({answer[kept][0]} after {after}); "
                                                    f"walk stopped after {len(rows) + kept} varbinds")
                del answer[kept:]
            if len(rows) + len(answer) > limit:
                rows.extend(answer[:limit - len(rows)])
                if not quiet:
                    self.problem(operation, "too_big", f"more than {limit} rows; kept the first {limit}")
                break
            rows.extend(answer)
        if bulk and size:
            known = self.varbind_bytes.get(base, 0)
            if size > known:
                self.varbind_bytes[base] = size
        if bulk and rows:
            seen = self.rows_seen.setdefault(base, [])
            seen.append(len(rows))
            del seen[:-ROWS_SEEN_KEPT]
        self.stats.varbinds += len(rows)
        return rows, None


def _ordered(answer: list[VarBind], prefix: str, last: tuple[int, ...]) -> tuple[int, tuple[int, ...], str]:
    """How many leading varbinds of an answer have strictly increasing OIDs (after ``last``), the
    key of the last of them, and why the rest do not count (``loop``, ``outside``, ``malformed``).

    The honest case is checked in bulk: the OIDs under ``prefix`` parsed in one comprehension
    (a bare ``int()`` for column walks, tuples of arcs for entry walks) and compared pairwise by
    C-level ``map``; only an answer that fails is walked varbind by varbind to say where and why.
    """
    cut = len(prefix)
    oids = [oid for oid, _ in answer]
    keys: list[tuple[int, ...]] = []
    if all(map(str.startswith, oids, repeat(prefix))):
        try:
            ints = [int(oid[cut:]) for oid in oids]
        except ValueError:
            with suppress(ValueError):
                keys = [tuple(map(int, oid[cut:].split("."))) for oid in oids]
        else:
            if (ints[0],) > last and all(map(operator.lt, ints, ints[1:])):
                return len(ints), (ints[-1],), ""
        if keys and keys[0] > last and all(map(operator.lt, keys, keys[1:])):
            return len(keys), keys[-1], ""
    for n, (oid, _) in enumerate(answer):
        suffix = oid[cut:]
        if not oid.startswith(prefix) or not suffix:
            return n, last, "outside"
        try:
            key = tuple(map(int, suffix.split(".")))
        except ValueError:
            return n, last, "malformed"
        if key <= last:
            return n, last, "loop"
        last = key
    return len(answer), last, ""


# --- the engine --------------------------------------------------------------------------------


@dataclass
class _LoopState:
    semaphore: asyncio.Semaphore
    locks: dict[tuple[str, int], asyncio.Lock] = field(default_factory=dict)


class SnmpEngine:
    """Polls many devices at once within bounds, remembering per-device quirks between polls.

    ``max_concurrency`` bounds devices polled at once (each has at most one request in flight);
    ``max_rows`` caps the varbinds kept per walked column; ``max_errors`` is how many failed
    requests a device may cost before it is given up; ``device_deadline_s`` bounds one device poll.
    """

    def __init__(self, *, max_concurrency: int = 64, max_rows: int = 20_000, max_errors: int = 5,
                 device_deadline_s: float = 300.0) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.max_concurrency = max_concurrency
        self.max_rows = max_rows
        self.max_errors = max_errors
        self.device_deadline_s = device_deadline_s
        self.stats = EngineStats()
        self.devices: dict[tuple[str, int], DeviceState] = {}
        self.varbind_bytes: dict[str, int] = {}
        self.rows_seen: dict[str, list[int]] = {}
        # asyncio primitives belong to one event loop; an engine may outlive several (CLI, tests)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            state = self._loops[loop] = _LoopState(asyncio.Semaphore(self.max_concurrency))
        return state

    def state_of(self, target: SnmpTarget) -> DeviceState:
        """What the engine remembers about this agent (created on first use)."""
        key = (target.address, target.port)
        state = self.devices.get(key)
        if state is None:
            state = self.devices[key] = DeviceState()
        return state

    @asynccontextmanager
    async def session(self, target: SnmpTarget) -> AsyncIterator[GufoWalker]:
        """A walker for one device, holding that device's lock and one of the global slots.

        The device lock is taken first so that a second poll of the same device waits without
        holding a global slot. The session opens lazily on the first request, so the caller
        decides how an unreachable device is reported (see ``getters.probe``).
        """
        loop_state = self._loop_state()
        lock = loop_state.locks.setdefault((target.address, target.port), asyncio.Lock())
        stats = self.stats
        async with lock, loop_state.semaphore:
            stats.devices_in_flight += 1
            stats.devices_polled += 1
            stats.peak_devices_in_flight = max(stats.peak_devices_in_flight, stats.devices_in_flight)
            try:
                yield GufoWalker(target, state=self.state_of(target), stats=stats, max_rows=self.max_rows,
                                 max_errors=self.max_errors, varbind_bytes=self.varbind_bytes,
                                 rows_seen=self.rows_seen)
            finally:
                stats.devices_in_flight -= 1


_default_engine: SnmpEngine | None = None


def default_engine() -> SnmpEngine:
    """The process-wide engine (one global bound for every caller that does not bring its own)."""
    global _default_engine
    if _default_engine is None:
        _default_engine = SnmpEngine()
    return _default_engine
