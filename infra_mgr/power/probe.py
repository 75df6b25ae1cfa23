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

Each scheme belongs to its collector module (parsing its URL, opening its session), found through
the table of :mod:`infra_mgr.power.collectors.base`; this module is the entry point for one read
(the CLI) and for kept sessions (the poller).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra_mgr.power.collectors.base import (
    SCHEMES,
    DeviceSession,
    DeviceSpec,
    ProbeUrlError,
    parse_device_url,
    redact_url,
)
from infra_mgr.power.collectors.maps import MapError
from infra_mgr.power.collectors.modbus import ModbusProbe
from infra_mgr.power.collectors.nut import NutProbe
from infra_mgr.power.collectors.snmp_ups import SnmpProbe
from infra_mgr.power.readings import PowerReadings

ProbeSpec = DeviceSpec


def parse_probe_url(url: str) -> DeviceSpec:
    """What to read and how, from a probe URL; :class:`ProbeUrlError` / :class:`MapError` when wrong."""
    return parse_device_url(url)


def with_secrets(spec: DeviceSpec, secrets: Mapping[str, Any] | None, timeout_s: float | None = None) -> DeviceSpec:
    """The spec with a stored credential applied (what ``credentials.reveal`` returns: ``kind``,
    ``username``, ``community``, ``password``, SNMPv3 ``auth_proto``/``auth_key``/``priv_proto``/
    ``priv_key``) and an overall time budget, so the inventory's URL needs no secret in it."""
    return spec.with_secrets(secrets or {}, timeout_s)


def open_session(url: str, *, timeout_s: float | None = None,
                 secrets: Mapping[str, Any] | None = None) -> DeviceSession:
    """A :class:`DeviceSession` on the device ``url`` names (with an optional stored credential and
    time budget per read). Nothing is opened yet: the first ``read()`` connects. Raises only for a
    wrong URL or map (ProbeUrlError, MapError), like :func:`read_url`."""
    return with_secrets(parse_probe_url(url), secrets, timeout_s).open()


async def read_url(url: str, *, timeout_s: float | None = None,
                   secrets: Mapping[str, Any] | None = None) -> PowerReadings:
    """Read the device ``url`` names once, with an optional stored credential and time budget.
    Raises only for a wrong URL or map (ProbeUrlError, MapError); device trouble is in the
    result's ``errors``."""
    session = open_session(url, timeout_s=timeout_s, secrets=secrets)
    try:
        return await session.read()
    finally:
        await session.close()


async def probe(url: str) -> PowerReadings:
    """Read the device a probe URL names (``infra-mgr power probe``): :func:`read_url` without a
    stored credential."""
    return await read_url(url)


__all__ = ["SCHEMES", "DeviceSession", "DeviceSpec", "MapError", "ModbusProbe", "NutProbe", "ProbeSpec",
           "ProbeUrlError", "SnmpProbe", "open_session", "parse_probe_url", "probe", "read_url", "redact_url",
           "with_secrets"]
