"""NUT collector: the ``upsd`` network protocol (TCP 3493) spoken over asyncio streams.

Why our own client: the protocol is a handful of text lines (``LIST UPS``, ``LIST VAR``, ``GET
VAR`` …, see NUT's ``docs/net-protocol.txt``), and a client of ours can turn every way it goes
wrong into a :class:`PowerProblem` under a deadline, which the blocking C ``upsclient`` and its
Python wrappers do not. NUT's variable names are our canonical names already, so values are
only typed (numbers for numeric names) and checked for the field's known glitches
(``battery.runtime`` of 65535 or −1 at low load).

``ERR DATA-STALE`` and ``ERR DRIVER-NOT-CONNECTED`` mean upsd has no fresh data from the driver:
the result is ``stale=True`` with a ``stale`` problem, never old values passed off as new.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from infra_mgr.power.collectors.base import ProbeUrlError, host_port, query_params, redact_url, timeout_param
from infra_mgr.power.readings import CANONICAL, PowerProblem, PowerReadings, Value

DEFAULT_PORT = 3493
MAX_LIST_LINES = 10_000  # a LIST longer than this is garbage, not a UPS
RUNTIME_GLITCHES = (65535, -1)
# upsd's ERR codes → our problem kinds (others are "error")
ERR_KINDS = {"ACCESS-DENIED": "auth", "INVALID-PASSWORD": "auth", "INVALID-USERNAME": "auth",
             "USERNAME-REQUIRED": "auth", "PASSWORD-REQUIRED": "auth", "UNKNOWN-UPS": "unknown_ups",
             "DATA-STALE": "stale", "DRIVER-NOT-CONNECTED": "stale", "VAR-NOT-SUPPORTED": "bad_value"}
# NUT names that carry the same meaning as a canonical ups.* name on newer drivers
ALIASES = {"device.mfr": "ups.mfr", "device.model": "ups.model", "device.serial": "ups.serial"}
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


class NutError(Exception):
    """upsd answered ``ERR <code>`` (or something that is not the protocol)."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or f"ERR {code}")
        self.code = code

    @property
    def kind(self) -> str:
        return ERR_KINDS.get(self.code, "decode" if self.code == "PROTOCOL" else "error")


# --- the text protocol (pure functions, fuzzed by the unit tests) --------------------------------


def parse_line(line: str) -> list[str]:
    """Split one protocol line into words the way upsd does: blanks separate words, double quotes
    group them, and a backslash takes the next character literally (``\\"`` and ``\\\\``).
    Never raises: an unterminated quote ends at the end of the line.

    Nearly every line upsd sends (``VAR ups name "value"``) has no backslash and at most one
    quoted word at its end; those are split with ``str`` methods (the poller parses ~45 lines per
    UPS every second), everything else character by character."""
    text = line.rstrip("\r\n")
    if "\\" not in text:
        head, quoted, tail = text.partition('"')
        if not quoted:
            return [w for w in head.replace("\t", " ").split(" ") if w]
        if tail.endswith('"') and '"' not in tail[:-1] and (not head or head[-1] in " \t"):
            return [w for w in head.replace("\t", " ").split(" ") if w] + [tail[:-1]]
    return _parse_slow(text)


def _parse_slow(text: str) -> list[str]:
    """The general case of :func:`parse_line` (escapes, quotes inside words)."""
    words: list[str] = []
    current: list[str] = []
    in_word = in_quotes = escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
            in_word = True
        elif ch == "\\":
            escaped = True
            in_word = True
        elif ch == '"':
            in_quotes = not in_quotes
            in_word = True
        elif ch in " \t" and not in_quotes:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        else:
            current.append(ch)
            in_word = True
    if in_word or escaped:
        words.append("".join(current))
    return words


def quote(word: str) -> str:
    """A word as upsd reads it back (for UPS names, user names and passwords)."""
    if word and not re.search(r'[\s"\\]', word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def error_code(words: list[str]) -> str | None:
    """``ERR UNKNOWN-UPS`` → ``UNKNOWN-UPS``; None when the line is not an error."""
    if words and words[0] == "ERR":
        return words[1] if len(words) > 1 else "UNKNOWN"
    return None


def coerce(name: str, text: str) -> Value:
    """A NUT value as our type: numbers for numeric canonical names; text stays text (a serial
    number of "0012" must not become 12)."""
    unit = CANONICAL.get(name, ("text", ""))[0]
    stripped = text.strip()
    if unit == "text" or not _NUMBER.fullmatch(stripped):
        return text
    try:
        number = float(stripped)
        if not math.isfinite(number):
            return text  # 1e999: not a reading (JSON has no infinity either)
        if number.is_integer() and "." not in stripped and "e" not in stripped.lower():
            return int(stripped)
    except ValueError:  # e.g. an integer of more digits than Python converts
        return text
    return number


def to_readings(variables: dict[str, str], source: str) -> tuple[dict[str, Value], list[PowerProblem]]:
    """NUT variables → canonical readings and the problems found in their values."""
    out: dict[str, Value] = {}
    problems: list[PowerProblem] = []
    merged = dict(variables)
    for alias, name in ALIASES.items():
        if alias in variables and name not in variables:
            merged[name] = variables[alias]
    for name, text in merged.items():
        if name not in CANONICAL:
            continue
        value = coerce(name, text)
        unit = CANONICAL[name][0]
        if unit != "text" and isinstance(value, str):
            problems.append(PowerProblem(source, "list var", "bad_value", f"{name}: {text!r} is not a number"))
            value = None
        elif name == "battery.runtime" and value in RUNTIME_GLITCHES:
            problems.append(PowerProblem(source, "list var", "bad_value",
                                         f"battery.runtime: {value} is a known driver glitch, not a runtime"))
            value = None
        out[name] = value
    if "output.source" not in out and isinstance(out.get("ups.status"), str):
        source_of = output_source_from_status(str(out["ups.status"]))
        if source_of:
            out["output.source"] = source_of
    return out, problems


def output_source_from_status(status: str) -> str | None:
    """What feeds the load, read from NUT's status flags (the inverse of the SNMP synthesis)."""
    flags = set(status.upper().split())
    if "OFF" in flags:
        return "none"
    if "BYPASS" in flags:
        return "bypass"
    if "OB" in flags:
        return "battery"
    if "OL" in flags:
        return "booster" if "BOOST" in flags else "reducer" if "TRIM" in flags else "normal"
    return None


# --- the client ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NutEndpoint:
    host: str
    port: int = DEFAULT_PORT
    user: str | None = None
    password: str | None = None

    def source(self, ups: str | None) -> str:
        """The URL of a read without the password."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        return f"nut://{user}{shown}:{self.port}/{ups or ''}"


class NutClient:
    """One connection to upsd; several reads may share it (``async with NutClient(...) as c``)."""

    def __init__(self, endpoint: NutEndpoint, *, timeout_s: float = 3.0) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> NutClient:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def connect(self) -> None:
        """Open the connection and, when a user is given, introduce ourselves (upsd checks the
        password only for actions, but an ``ERR`` here is still an answer worth reporting)."""
        ep = self.endpoint
        self._reader, self._writer = await asyncio.wait_for(asyncio.open_connection(ep.host, ep.port),
                                                            self.timeout_s)
        if ep.user:
            await self._simple(f"USERNAME {quote(ep.user)}")
            if ep.password is not None:
                await self._simple(f"PASSWORD {quote(ep.password)}")

    async def close(self) -> None:
        writer = self._writer
        self._reader = self._writer = None
        if writer is None:
            return
        try:
            if not writer.is_closing():
                writer.write(b"LOGOUT\n")
                await asyncio.wait_for(writer.drain(), 0.5)
        except (OSError, TimeoutError):
            pass
        writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), 0.5)

    async def _send(self, command: str) -> None:
        """Write one command; the caller's deadline (``_command``) covers the drain."""
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.write(command.encode("utf-8") + b"\n")
        await self._writer.drain()

    async def _line(self) -> list[str]:
        """One reply line, without a deadline of its own: a whole command shares one
        (``asyncio.timeout`` in ``_simple``/``_list``) instead of a ``wait_for`` task per line."""
        if self._reader is None:
            raise ConnectionError("not connected")
        try:
            raw = await self._reader.readline()
        except (asyncio.LimitOverrunError, ValueError):
            raise NutError("PROTOCOL", "a line longer than the protocol allows") from None
        if not raw:
            raise ConnectionResetError("upsd closed the connection")
        return parse_line(raw.decode("utf-8", errors="replace"))

    async def _simple(self, command: str) -> list[str]:
        async with asyncio.timeout(self.timeout_s):
            await self._send(command)
            words = await self._line()
        code = error_code(words)
        if code:
            raise NutError(code)
        return words

    async def _list(self, what: str, *args: str) -> list[list[str]]:
        """``LIST <what> <args>``: the lines between ``BEGIN LIST`` and ``END LIST``, all within
        one deadline of ``timeout_s``."""
        async with asyncio.timeout(self.timeout_s):
            return await self._list_lines(what, *args)

    async def _list_lines(self, what: str, *args: str) -> list[list[str]]:
        head = " ".join([what, *args])
        await self._send(f"LIST {' '.join([what, *map(quote, args)])}")
        words = await self._line()
        code = error_code(words)
        if code:
            raise NutError(code)
        if words[:3] != ["BEGIN", "LIST", what]:
            raise NutError("PROTOCOL", f"expected BEGIN LIST {head}, got {' '.join(words)[:80]!r}")
        rows: list[list[str]] = []
        end = ["END", "LIST", what]
        for _ in range(MAX_LIST_LINES):
            words = await self._line()
            if words[:3] == end:
                return rows
            code = error_code(words)
            if code:
                raise NutError(code)
            rows.append(words)
        raise NutError("PROTOCOL", f"LIST {head} did not end after {MAX_LIST_LINES} lines")

    async def list_ups(self) -> dict[str, str]:
        """UPS name → description, as upsd serves them."""
        return {w[1]: (w[2] if len(w) > 2 else "") for w in await self._list("UPS") if len(w) >= 2 and w[0] == "UPS"}

    async def list_vars(self, ups: str) -> dict[str, str]:
        """Every variable of ``ups`` as text."""
        rows = await self._list("VAR", ups)
        out: dict[str, str] = {}
        for w in rows:
            if len(w) >= 4 and w[0] == "VAR" and w[1] == ups:
                out[w[2]] = w[3]
            else:
                raise NutError("PROTOCOL", f"unexpected line in LIST VAR {ups}: {' '.join(w)[:80]!r}")
        return out

    async def get_var(self, ups: str, name: str) -> str:
        """One variable as text (``GET VAR``)."""
        words = await self._simple(f"GET VAR {quote(ups)} {quote(name)}")
        if len(words) < 4 or words[:3] != ["VAR", ups, name]:
            raise NutError("PROTOCOL", f"unexpected answer to GET VAR: {' '.join(words)[:80]!r}")
        return words[3]

    async def read(self, ups: str | None = None) -> PowerReadings:
        """Canonical readings of ``ups`` (the only UPS served when None). Device trouble becomes
        problems; only a broken connection raises (``OSError`` / ``TimeoutError``)."""
        source = self.endpoint.source(ups)
        result = PowerReadings(source=source, kind="ups")
        try:
            if ups is None:
                names = list(await self.list_ups())
                if len(names) != 1:
                    what = f"several: {', '.join(names)}" if names else "none"
                    result.errors.append(PowerProblem(source, "list ups", "unknown_ups",
                                                      f"name the UPS in the URL (upsd serves {what})"))
                    return result
                ups = names[0]
                source = result.source = self.endpoint.source(ups)
            variables = await self.list_vars(ups)
        except NutError as exc:
            if exc.kind == "stale":
                result.stale = True
            detail = {"UNKNOWN-UPS": f"upsd does not serve a UPS named {ups!r}",
                      "DATA-STALE": f"{ups}: the driver's data is stale",
                      "DRIVER-NOT-CONNECTED": f"{ups}: upsd is not connected to its driver",
                      "ACCESS-DENIED": "upsd denied access (check LISTEN/ACL and the user)"}.get(exc.code)
            result.errors.append(PowerProblem(source, f"list var {ups or ''}".strip(), exc.kind,
                                              f"{exc}: {detail}" if detail else str(exc)))
            return result
        readings, problems = to_readings(variables, source)
        result.readings = readings
        result.errors.extend(problems)
        result.vendor = _text(readings.get("ups.mfr"))
        result.model = _text(readings.get("ups.model"))
        return result


def _text(value: Value) -> str | None:
    return str(value) if value not in (None, "") else None


class NutSession:
    """Reads of one UPS over a connection kept open between them (the poller reads every second:
    a connect, USERNAME/PASSWORD and LOGOUT per read cost more than the ``LIST VAR`` itself).

    A connection that broke since the last read (upsd restarted, the network dropped it) is
    replaced at once within the same read; one that timed out or answered something that is not
    the protocol is closed, since the next reply on it could belong to the previous command. The
    result is what :func:`read_nut` returns for the same device.
    """

    def __init__(self, endpoint: NutEndpoint, ups: str | None = None, *, timeout_s: float = 3.0,
                 source: str | None = None) -> None:
        self.endpoint = endpoint
        self.ups = ups
        self.timeout_s = timeout_s
        self.source = source or endpoint.source(ups)
        self.connects = 0  # connections opened so far (what the tests and the benchmark count)
        self._client: NutClient | None = None

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def read(self) -> PowerReadings:
        """Canonical readings of the UPS; never raises for device trouble."""
        client = self._client
        if client is not None:
            try:
                result = await client.read(self.ups)
            except TimeoutError:
                await self.close()
                return self._problem(f"list var {self.ups or ''}".strip(), "timeout",
                                     f"no answer from {self._where} within {self.timeout_s:g} s")
            except OSError:  # closed under us (ConnectionResetError, BrokenPipe…): a new one now
                await self.close()
            else:
                return await self._keep_if_in_step(client, result)
        client = NutClient(self.endpoint, timeout_s=self.timeout_s)
        self.connects += 1
        operation = "connect"
        try:
            await client.connect()
            operation = f"list var {self.ups or ''}".strip()
            result = await client.read(self.ups)
        except NutError as exc:  # during USERNAME/PASSWORD
            await client.close()
            return self._problem("login", exc.kind, str(exc))
        except TimeoutError:
            await client.close()
            return self._problem(operation, "timeout", f"no answer from {self._where} within {self.timeout_s:g} s")
        except ConnectionRefusedError:
            await client.close()
            return self._problem(operation, "refused", f"connection refused by {self._where}")
        except OSError as exc:
            await client.close()
            return self._problem(operation, "error", f"{self._where}: {exc.strerror or exc}")
        self._client = client
        return await self._keep_if_in_step(client, result)

    async def _keep_if_in_step(self, client: NutClient, result: PowerReadings) -> PowerReadings:
        """After a reply that was not the protocol the stream may be out of step: drop it."""
        if any(p.kind == "decode" for p in result.errors):
            self._client = None
            await client.close()
        return result

    @property
    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    def _problem(self, operation: str, kind: str, message: str) -> PowerReadings:
        source = self.endpoint.source(self.ups)
        return PowerReadings(source=source, kind="ups", errors=[PowerProblem(source, operation, kind, message)])

    async def close(self) -> None:
        """LOGOUT and close (also when the connection is already broken)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()


@dataclass(frozen=True)
class NutProbe:
    """What a ``nut://[USER[:PASS]@]HOST[:PORT]/UPS`` URL names (port 3493 by default; the UPS
    may be left out when upsd serves only one)."""

    host: str
    port: int
    ups: str | None
    user: str | None
    password: str | None
    timeout_s: float
    source: str

    def with_secrets(self, secrets: Mapping[str, Any], timeout_s: float | None) -> NutProbe:
        """A stored user and password fill what the URL leaves out."""
        user = self.user or (str(secrets["username"]) if secrets.get("username") else None)
        password = self.password if self.password is not None else secrets.get("password")
        return replace(self, user=user, password=None if password is None else str(password),
                       timeout_s=self.timeout_s if timeout_s is None else timeout_s)

    def open(self) -> NutSession:
        return NutSession(NutEndpoint(self.host, self.port, self.user, self.password), self.ups,
                          timeout_s=self.timeout_s, source=self.source)


def parse_url(url: str) -> NutProbe:
    """The :class:`NutProbe` of a ``nut://`` URL; :class:`ProbeUrlError` when it cannot be right."""
    parts = urlsplit(url)
    host, port, shown = host_port(url, DEFAULT_PORT)
    params = query_params(url, ("timeout",))
    path = unquote(parts.path.strip("/"))
    if "/" in path or any(c.isspace() for c in path):
        raise ProbeUrlError(f"{redact_url(url)}: the path must be one UPS name")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and not user:
        raise ProbeUrlError(f"{redact_url(url)}: a password needs a user")
    source = f"nut://{user + '@' if user else ''}{shown}:{port}/{path}"
    return NutProbe(host, port, path or None, user, password, timeout_param(url, params), source)


async def read_nut(host: str, port: int = DEFAULT_PORT, ups: str | None = None, *, user: str | None = None,
                   password: str | None = None, timeout_s: float = 3.0) -> PowerReadings:
    """Read one UPS from upsd, like ``upsc ups@host:port``. Never raises for device trouble."""
    session = NutSession(NutEndpoint(host, port, user, password), ups, timeout_s=timeout_s)
    try:
        return await session.read()
    finally:
        await session.close()
