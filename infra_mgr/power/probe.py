"""``infra-mgr power probe URL``: read one power device now, like NUT's ``upsc``, without a database.

One URL names the protocol, the device and how to read it, so the same string works in the CLI,
in the inventory (a device's telemetry source) and in bug reports::

    snmp://COMMUNITY@HOST[:PORT][?version=1|2c]          (default port 161, community public)
    nut://[USER[:PASS]@]HOST[:PORT]/UPS                 (default port 3493; UPS optional if only one)
    modbus://HOST[:PORT]/UNIT?map=NAME                   (default port 502, unit 1)

Every scheme also takes ``timeout=SECONDS`` (the whole budget of a dead device; SNMP tries twice
within it). A URL that cannot be right (unknown scheme, bad
port, unknown map, an unknown parameter) raises :class:`ProbeUrlError` — the caller's mistake,
exit status 1 in the CLI — while anything the device does wrong comes back as problems inside the
:class:`PowerReadings`. The ``source`` of the result never carries a password or community.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from infra_mgr.network.snmp.facts import SnmpTarget
from infra_mgr.power.collectors.maps import MapError, available_maps, get_map
from infra_mgr.power.readings import PowerReadings

DEFAULT_TIMEOUT_S = 3.0
SCHEMES = ("snmp", "nut", "modbus")


class ProbeUrlError(ValueError):
    """The URL cannot name a device (one readable line)."""


@dataclass(frozen=True)
class SnmpProbe:
    target: SnmpTarget
    source: str


@dataclass(frozen=True)
class NutProbe:
    host: str
    port: int
    ups: str | None
    user: str | None
    password: str | None
    timeout_s: float
    source: str


@dataclass(frozen=True)
class ModbusProbe:
    host: str
    port: int
    unit: int
    map_name: str
    timeout_s: float
    source: str


ProbeSpec = SnmpProbe | NutProbe | ModbusProbe


def _host_port(url: str, default_port: int) -> tuple[str, int, str]:
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


def _params(url: str, allowed: tuple[str, ...]) -> dict[str, str]:
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


def _timeout(url: str, params: dict[str, str]) -> float:
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


def parse_probe_url(url: str) -> ProbeSpec:
    """What to read and how, from a probe URL; :class:`ProbeUrlError` / :class:`MapError` when wrong."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ProbeUrlError(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ProbeUrlError(f"{redact_url(url) or repr(url)}: the scheme must be one of "
                            f"{', '.join(s + '://' for s in SCHEMES)}")
    if scheme == "snmp":
        host, port, shown = _host_port(url, 161)
        params = _params(url, ("version", "timeout"))
        version = params.get("version", "2c")
        if version not in ("1", "2c"):
            raise ProbeUrlError(f"{redact_url(url)}: version must be 1 or 2c in a probe URL")
        if parts.path not in ("", "/"):
            raise ProbeUrlError(f"{redact_url(url)}: an snmp:// URL has no path")
        community = unquote(parts.username) if parts.username is not None else "public"
        if parts.password is not None:
            community = f"{community}:{unquote(parts.password)}"
        timeout = _timeout(url, params)
        target = SnmpTarget(address=host, port=port, version=version, community=community,  # type: ignore[arg-type]
                            timeout_s=_per_attempt(timeout), retries=1)
        return SnmpProbe(target, f"snmp://{shown}:{port}")
    if scheme == "nut":
        host, port, shown = _host_port(url, 3493)
        params = _params(url, ("timeout",))
        path = unquote(parts.path.strip("/"))
        if "/" in path or any(c.isspace() for c in path):
            raise ProbeUrlError(f"{redact_url(url)}: the path must be one UPS name")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if password is not None and not user:
            raise ProbeUrlError(f"{redact_url(url)}: a password needs a user")
        source = f"nut://{user + '@' if user else ''}{shown}:{port}/{path}"
        return NutProbe(host, port, path or None, user, password, _timeout(url, params), source)
    host, port, shown = _host_port(url, 502)
    params = _params(url, ("map", "timeout"))
    if parts.username or parts.password:
        raise ProbeUrlError(f"{redact_url(url)}: Modbus TCP has no user or password")
    path = parts.path.strip("/") or "1"
    if not path.isdigit() or not 0 <= int(path) <= 255:
        raise ProbeUrlError(f"{redact_url(url)}: the unit id must be a number between 0 and 255, not {path!r}")
    map_name = params.get("map")
    if not map_name:
        known = ", ".join(available_maps()) or "none installed"
        raise ProbeUrlError(f"{redact_url(url)}: name the register map with ?map=NAME (known: {known})")
    get_map(map_name)  # unknown or invalid map: the caller's mistake, raised now
    unit = int(path)
    return ModbusProbe(host, port, unit, map_name, _timeout(url, params),
                       f"modbus://{shown}:{port}/{unit}?map={map_name}")


def with_secrets(spec: ProbeSpec, secrets: Mapping[str, Any] | None, timeout_s: float | None = None) -> ProbeSpec:
    """The spec with a stored credential applied (what ``credentials.reveal`` returns: ``kind``,
    ``username``, ``community``, ``password``, SNMPv3 ``auth_proto``/``auth_key``/``priv_proto``/
    ``priv_key``) and an overall time budget, so the inventory's URL needs no secret in it."""
    secrets = secrets or {}
    if isinstance(spec, SnmpProbe):
        target = spec.target
        if timeout_s is not None:
            target = replace(target, timeout_s=_per_attempt(timeout_s))
        if secrets.get("kind") == "snmp_v3" or secrets.get("auth_key"):
            target = replace(target, version="3", user=str(secrets.get("username") or ""),
                             auth_proto=secrets.get("auth_proto"), auth_key=str(secrets.get("auth_key") or ""),
                             priv_proto=secrets.get("priv_proto"), priv_key=str(secrets.get("priv_key") or ""))
        elif secrets.get("community"):
            target = replace(target, community=str(secrets["community"]))
        return replace(spec, target=target)
    if isinstance(spec, NutProbe):
        user = spec.user or (str(secrets["username"]) if secrets.get("username") else None)
        password = spec.password if spec.password is not None else secrets.get("password")
        return replace(spec, user=user, password=None if password is None else str(password),
                       timeout_s=spec.timeout_s if timeout_s is None else timeout_s)
    return replace(spec, timeout_s=spec.timeout_s if timeout_s is None else timeout_s)


def _per_attempt(budget_s: float) -> float:
    """SNMP tries twice (one retry) within the budget."""
    return max(0.1, budget_s / 2)


async def read_url(url: str, *, timeout_s: float | None = None,
                   secrets: Mapping[str, Any] | None = None) -> PowerReadings:
    """Read the device ``url`` names, with an optional stored credential and time budget (the power
    poller's entry point). Raises only for a wrong URL or map (ProbeUrlError, MapError); device
    trouble is in the result's ``errors``."""
    return await _read(with_secrets(parse_probe_url(url), secrets, timeout_s))


async def probe(url: str) -> PowerReadings:
    """Read the device a probe URL names (``infra-mgr power probe``): :func:`read_url` without a
    stored credential."""
    return await read_url(url)


class DeviceSession(Protocol):
    """Repeated reads of one device over whatever the protocol can keep open between them (the
    poller's device loops); ``close()`` releases it."""

    source: str

    async def read(self) -> PowerReadings: ...

    async def close(self) -> None: ...


class _NutDeviceSession:
    def __init__(self, spec: NutProbe) -> None:
        from infra_mgr.power.collectors.nut import NutEndpoint, NutSession

        self.source = spec.source
        self.session = NutSession(NutEndpoint(spec.host, spec.port, spec.user, spec.password), spec.ups,
                                  timeout_s=spec.timeout_s)

    async def read(self) -> PowerReadings:
        return await self.session.read()

    async def close(self) -> None:
        await self.session.close()


class _ModbusDeviceSession:
    def __init__(self, spec: ModbusProbe) -> None:
        from infra_mgr.power.collectors.modbus import ModbusSession

        self.source = spec.source
        self.session = ModbusSession(spec.host, spec.port, spec.unit, register_map=spec.map_name,
                                     timeout_s=spec.timeout_s, source=spec.source)

    async def read(self) -> PowerReadings:
        return await self.session.read()

    async def close(self) -> None:
        self.session.close()


class _SnmpDeviceSession:
    def __init__(self, spec: SnmpProbe) -> None:
        from infra_mgr.power.collectors.snmp_ups import SnmpUpsSession

        self.source = spec.source
        self.session = SnmpUpsSession(spec.target, source=spec.source)

    async def read(self) -> PowerReadings:
        return await self.session.read()

    async def close(self) -> None:
        self.session.close()


def open_session(url: str, *, timeout_s: float | None = None,
                 secrets: Mapping[str, Any] | None = None) -> DeviceSession:
    """A :class:`DeviceSession` on the device ``url`` names (with an optional stored credential and
    time budget per read). Nothing is opened yet: the first ``read()`` connects. Raises only for a
    wrong URL or map (ProbeUrlError, MapError), like :func:`read_url`."""
    spec = with_secrets(parse_probe_url(url), secrets, timeout_s)
    if isinstance(spec, SnmpProbe):
        return _SnmpDeviceSession(spec)
    if isinstance(spec, NutProbe):
        return _NutDeviceSession(spec)
    return _ModbusDeviceSession(spec)


async def _read(spec: ProbeSpec) -> PowerReadings:
    if isinstance(spec, SnmpProbe):
        from infra_mgr.power.collectors.snmp_ups import read_snmp_ups

        return await read_snmp_ups(spec.target, source=spec.source)
    if isinstance(spec, NutProbe):
        from infra_mgr.power.collectors.nut import read_nut

        return await read_nut(spec.host, spec.port, spec.ups, user=spec.user, password=spec.password,
                              timeout_s=spec.timeout_s)
    from infra_mgr.power.collectors.modbus import read_modbus

    return await read_modbus(spec.host, spec.port, spec.unit, register_map=spec.map_name, timeout_s=spec.timeout_s,
                             source=spec.source)


__all__ = ["DeviceSession", "MapError", "ModbusProbe", "NutProbe", "ProbeSpec", "ProbeUrlError", "SnmpProbe",
           "open_session", "parse_probe_url", "probe", "read_url", "redact_url", "with_secrets"]
