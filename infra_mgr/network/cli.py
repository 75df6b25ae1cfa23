"""``infra-mgr snmp probe``: ask one agent what it is, without touching the database.

Mounted by the main CLI with ``app.add_typer(snmp_app, name="snmp")``; also runnable on its own
as ``python -m infra_mgr.network.cli probe HOST …``.

Exit status: 0 when the agent answered (problems it had are listed, not fatal), 2 when it did
not answer at all (timeout, refused port, SNMPv3 authentication failure), 1 for a usage error
(bad host, unknown protocol name), printed as one line on stderr.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra_mgr.network.snmp.facts import ProbeResult
from infra_mgr.snmp.engine import Walker
from infra_mgr.snmp.target import SnmpTarget

snmp_app = typer.Typer(help="SNMP: probe agents (reads nothing from and writes nothing to the database).",
                       no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
console = Console()
err = Console(stderr=True, soft_wrap=True)

EXIT_UNREACHABLE = 2
# A probe is a person at a prompt waiting for an answer: an agent on a LAN answers in
# milliseconds, so one second and one retry say "no answer" in about two seconds instead of
# five. Both are printed with the verdict and can be raised for a slow link.
PROBE_TIMEOUT_S = 1.0
PROBE_RETRIES = 1


@snmp_app.callback()
def _group() -> None:
    """SNMP tools (a group even with one command, so ``probe`` is always spelled out)."""


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(1)


def split_host_port(text: str, default_port: int = 161) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad address {text!r} (use [IPv6]:PORT)")
        port_text = rest[1:] if rest else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"no host in {text!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port {port_text!r}")
        return host, int(port_text)
    return host, default_port


def _resolve(host: str, port: int) -> str:
    """An IP literal for the host (gufo-snmp takes addresses, not names)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"cannot resolve host {host!r}: {exc}") from None
    return str(infos[0][4][0])


@snmp_app.command()
def probe(
    target: Annotated[str, typer.Argument(help="HOST, HOST:PORT or [IPv6]:PORT")],
    community: Annotated[str | None, typer.Option("--community", "-c", help="v1/v2c community")] = None,
    version: Annotated[str | None, typer.Option("--version", "-v", help="1 or 2c (3 with --v3-user)")] = None,
    v3_user: Annotated[str | None, typer.Option("--v3-user", help="SNMPv3 user (authPriv or authNoPriv)")] = None,
    auth_proto: Annotated[str | None, typer.Option("--auth-proto", help="MD5, SHA, SHA-224/256/384/512")] = None,
    auth_key: Annotated[str, typer.Option("--auth-key", help="SNMPv3 authentication passphrase")] = "",
    priv_proto: Annotated[str | None, typer.Option("--priv-proto", help="DES, AES, AES-192, AES-256")] = None,
    priv_key: Annotated[str, typer.Option("--priv-key", help="SNMPv3 privacy passphrase")] = "",
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request")] = PROBE_TIMEOUT_S,
    retries: Annotated[int, typer.Option("--retries", help="Retries per request")] = PROBE_RETRIES,
    max_repetitions: Annotated[int, typer.Option(
        "--max-repetitions", help="GETBULK max-repetitions, upper bound (answers are sized to fit)")] = 100,
    no_bulk: Annotated[bool, typer.Option("--no-bulk", help="Walk with GETNEXT only")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the probe result as JSON")] = False,
) -> None:
    """Read one agent's facts, interfaces, LLDP/CDP neighbours and addresses."""
    from infra_mgr.snmp.engine import validate_target

    if community is not None and v3_user is not None:
        raise _fail("give either --community (v1/v2c) or --v3-user (v3), not both")
    if community is None and v3_user is None:
        raise _fail("give --community (v1/v2c) or --v3-user (v3)")
    if v3_user is not None and version not in (None, "3"):
        raise _fail("--v3-user means SNMP version 3")
    if v3_user is None and version not in (None, "1", "2c"):
        raise _fail(f"--version must be 1 or 2c, not {version!r}")
    try:
        host, port = split_host_port(target)
        snmp_target = SnmpTarget(
            address=_resolve(host, port), port=port,
            version="3" if v3_user is not None else ("1" if version == "1" else "2c"),
            community=community or "", user=v3_user or "",
            auth_proto=auth_proto, auth_key=auth_key, priv_proto=priv_proto, priv_key=priv_key,
            timeout_s=timeout, retries=retries, max_repetitions=max_repetitions, use_bulk=not no_bulk,
        )
        validate_target(snmp_target)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    result, power = asyncio.run(_probe_with_power(snmp_target))
    if as_json:
        out = {**result.to_json(), "power": power.to_json() if power else None}
        sys.stdout.write(json.dumps(out, ensure_ascii=False, indent=2) + "\n")
    else:
        _summary(result)
        if power:
            console.print("power: " + ", ".join(f"{k}={v}" for k, v in power.readings.items()))
    if not result.reachable:
        for line in no_answer_hint(result, snmp_target):
            err.print(line, markup=False, highlight=False)
        raise typer.Exit(EXIT_UNREACHABLE)


def no_answer_hint(result: ProbeResult, target: SnmpTarget) -> list[str]:
    """What a silent agent may mean and which options change it. An SNMP agent drops a request
    with a community it does not know without a word, so on v1/v2c a timeout is either a host
    (or port) that cannot be reached or a wrong community, and nothing on the wire tells the two
    apart: both are named. A failed SNMPv3 authentication already says why."""
    kinds = {p.kind for p in result.errors}
    if "auth" in kinds:
        return [f"no answer: SNMPv3 authentication failed for user {target.user!r}: "
                "check --v3-user, --auth-proto/--auth-key and --priv-proto/--priv-key"]
    attempts = target.retries + 1
    waited = f"{attempts} attempt(s) of {target.timeout_s:g} s"
    if target.version in ("1", "2c"):
        lines = [f"no answer after {waited}: host unreachable or wrong community",
                 f"  - unreachable: check the address and port ({target.address}:{target.port}) and that a "
                 "firewall lets UDP through to the agent",
                 "  - wrong community: an agent ignores a community it does not know; try another with "
                 "--community (and --version 1 for an old agent)"]
    else:
        lines = [f"no answer after {waited}: host unreachable or the agent ignores this SNMPv3 request",
                 f"  - check the address and port ({target.address}:{target.port}), the firewall, and --v3-user"]
    lines.append("  - a slow or distant agent: raise --timeout and --retries")
    return lines


# What else a probe may read from a device once it answered, registered by the application (the
# power domain adds UPS/PDU/ATS readings): this module stays independent of the domains that
# build on the SNMP engine. Each reader gets the open walker and the sysObjectID and returns an
# object with ``readings`` and ``to_json()``, or None when the device is not of its kind.
ProbeExtra = Callable[[Walker, str | None], Awaitable[Any]]
PROBE_EXTRAS: list[ProbeExtra] = []


async def _probe_with_power(target: SnmpTarget) -> tuple[ProbeResult, Any]:
    """The probe, plus the first registered extra reading that recognises the device (else None)."""
    from infra_mgr.network.snmp.getters import probe as run_probe
    from infra_mgr.snmp.engine import SnmpEngine

    engine = SnmpEngine(max_concurrency=1)
    result = await run_probe(target, engine)
    power = None
    if result.reachable:
        async with engine.session(target) as walker:
            for extra in PROBE_EXTRAS:
                power = await extra(walker, result.facts.sys_object_id)
                if power is not None:
                    break
    return result, power


def _summary(result: ProbeResult) -> None:
    f = result.facts
    console.print(f"[bold]{f.sys_name or result.address}[/bold]  {result.address}:{result.port}"
                  + ("" if result.reachable else "  [red]no answer[/red]"))
    facts = Table(show_header=False, box=None, pad_edge=False)
    for label, value in (("vendor", f.vendor), ("platform", f.platform), ("model", f.model), ("serial", f.serial),
                         ("version", f.os_version), ("location", f.location), ("object id", f.sys_object_id),
                         ("uptime", f"{f.uptime_s / 86400:.1f} days" if f.uptime_s is not None else None)):
        if value:
            facts.add_row(f"[dim]{label}[/dim]", str(value))
    console.print(facts)
    if result.interfaces:
        table = Table(title=f"{len(result.interfaces)} interfaces", title_justify="left")
        for column in ("#", "name", "status", "speed", "mac", "alias"):
            table.add_column(column)
        for i in result.interfaces:
            speed = f"{i.speed_bps / 1e6:g}M" if i.speed_bps else ""
            table.add_row(str(i.index), i.name or "", f"{i.admin_status or '?'}/{i.oper_status or '?'}", speed,
                          i.mac or "", i.alias or "")
        console.print(table)
    if result.neighbors:
        table = Table(title=f"{len(result.neighbors)} neighbours", title_justify="left")
        for column in ("local", "proto", "remote", "port", "address"):
            table.add_column(column)
        for n in result.neighbors:
            table.add_row(n.local_interface or "", n.protocol, n.remote_system_name or n.remote_chassis_id or "",
                          n.remote_port or "", n.remote_address or "")
        console.print(table)
    if result.ip_addresses:
        shown = (f"{a.address}/{a.prefix_length}" if a.prefix_length is not None else a.address
                 for a in result.ip_addresses)
        console.print("addresses: " + ", ".join(shown))
    for p in result.errors:
        console.print(f"[yellow]{p.kind}[/yellow] {p.operation}: {p.message}", highlight=False)


if __name__ == "__main__":
    snmp_app()
