"""The one contract of the power collectors, and the table that finds a collector by URL scheme.

A power device is named by one URL (``snmp://``, ``nut://``, ``modbus://``; see
:mod:`infra_mgr.power.probe`). Each collector module owns its scheme completely: it parses its
URL into a :class:`DeviceSpec` (what to read and how, secrets applied later from the inventory's
credential) and its session class reads the device (:class:`DeviceSession`). Nothing outside the
module knows which kind it is: :data:`COLLECTORS` maps a scheme to its module, so adding a kind of
device is one module and one entry here. Modules are imported on first use, so that importing
the collectors costs nothing (and does not need pymodbus) until a protocol is used.

This module also holds what every scheme's URL parser shares: the error for a URL that cannot be
right (:class:`ProbeUrlError`) and the helpers that read host, port, query and time budget the
same way for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, urlsplit

from infra_mgr.power.readings import PowerReadings

DEFAULT_TIMEOUT_S = 3.0

# URL scheme -> the collector module that parses its URLs (``parse_url``) and reads its devices.
COLLECTORS: dict[str, str] = {
    "snmp": "infra_mgr.power.collectors.snmp_ups",
    "nut": "infra_mgr.power.collectors.nut",
    "modbus": "infra_mgr.power.collectors.modbus",
}
SCHEMES = tuple(COLLECTORS)


class ProbeUrlError(ValueError):
    """The URL cannot name a device (one readable line)."""


class DeviceSession(Protocol):
    """Repeated reads of one device over whatever its protocol can keep open between them (the
    poller's device loops; a one-off read is a session read once). ``read()`` never raises for
    device trouble: timeouts, refusals and garbage are problems in the result's ``errors``.
    ``close()`` releases what the session keeps open."""

    source: str

    async def read(self) -> PowerReadings: ...

    async def close(self) -> None: ...


class DeviceSpec(Protocol):
    """What one device URL names: where the device is and how to read it. ``source`` is the URL
    without password or community (what results and messages show)."""

    @property
    def source(self) -> str: ...

    def with_secrets(self, secrets: Mapping[str, Any], timeout_s: float | None) -> DeviceSpec:
        """The spec with a stored credential (what ``credentials.reveal`` returns: ``kind``,
        ``username``, ``community``, ``password``, SNMPv3 keys) and an overall time budget per read
        applied; what the URL itself says wins over the credential."""
        ...

    def open(self) -> DeviceSession:
        """A session on the device; nothing is opened yet, the first ``read()`` connects."""
        ...


def parse_device_url(url: str) -> DeviceSpec:
    """The spec of ``url``, parsed by the collector of its scheme; :class:`ProbeUrlError` (or a
    register map's ``MapError``) when the URL cannot be right."""
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError as exc:
        raise ProbeUrlError(f"not a URL: {exc}") from None
    module = COLLECTORS.get(scheme)
    if module is None:
        raise ProbeUrlError(f"{redact_url(url) or repr(url)}: the scheme must be one of "
                            f"{', '.join(s + '://' for s in SCHEMES)}")
    parse = cast(Callable[[str], DeviceSpec], import_module(module).parse_url)
    return parse(url)


# --- what every scheme's URL parser shares --------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without password or community (for messages and the ``source`` field)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:
        return "<unparsable URL>"
    if "@" not in netloc:
        return url
    userinfo, _, hostport = netloc.rpartition("@")
    if parts.scheme == "snmp":
        kept = ""
    else:
        user = userinfo.split(":", 1)[0]
        kept = f"{user}@" if user else ""
    return parts._replace(netloc=kept + hostport).geturl()


def host_port(url: str, default_port: int) -> tuple[str, int, str]:
    """(host, port, host as shown in a URL: IPv6 in brackets)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ProbeUrlError(f"{redact_url(url)}: no host")
    try:
        port = parts.port or default_port
    except ValueError:
        raise ProbeUrlError(f"{redact_url(url)}: the port must be a number between 1 and 65535") from None
    if not 0 < port < 65536:
        raise ProbeUrlError(f"{redact_url(url)}: the port must be a number between 1 and 65535")
    shown = f"[{host}]" if ":" in host else host
    return host, port, shown


def query_params(url: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters (the last of a repeated one); an unknown one is the caller's typo."""
    query = urlsplit(url).query
    try:
        raw = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ProbeUrlError(f"{redact_url(url)}: malformed query {query!r}") from None
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ProbeUrlError(f"{redact_url(url)}: unknown parameter(s) {', '.join(unknown)} "
                            f"(known: {', '.join(allowed)})")
    return {k: v[-1] for k, v in raw.items()}


def timeout_param(url: str, params: Mapping[str, str]) -> float:
    """``timeout=SECONDS``: the whole budget of a read of a dead device."""
    text = params.get("timeout")
    if text is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 300:
        raise ProbeUrlError(f"{redact_url(url)}: timeout must be a number of seconds in (0, 300], not {text!r}")
    return value


__all__ = ["COLLECTORS", "DEFAULT_TIMEOUT_S", "SCHEMES", "DeviceSession", "DeviceSpec", "ProbeUrlError",
           "host_port", "parse_device_url", "query_params", "redact_url", "timeout_param"]
