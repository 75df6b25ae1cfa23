"""``infra-mgr traps listen``: receive SNMP traps and informs into the event log.

Mounted by the main CLI with ``app.add_typer(traps_app, name="traps")``. Each stored event is
printed as one line (or one JSON object per line with ``--json``) so the command can feed a log
shipper or ``jq``; counters go to stderr at exit. Errors are one line on stderr, exit status 1.

Communities on the command line are visible to other local users in the process list; prefer
``--community-file`` / ``--users-file`` (YAML) outside a lab. Later the receiver will take them
from the stored credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from infra_mgr.events.models import EventRead
    from infra_mgr.network.traps import V3User

traps_app = typer.Typer(help="SNMP trap and inform receiver.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _read_lines(path: Path) -> list[str]:
    """One community per line; blank lines and ``#`` comments ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


def _read_users(path: Path) -> list[V3User]:
    """A YAML list of ``{name, auth_proto, auth_key, priv_proto, priv_key, engine_ids}``."""
    import yaml

    from infra_mgr.network.traps import V3User

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of users")
    users = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: user {i} is not a mapping")
        unknown = set(item) - {"name", "auth_proto", "auth_key", "priv_proto", "priv_key", "engine_ids"}
        if unknown:
            raise ValueError(f"{path}: user {i}: unknown key(s) {', '.join(sorted(unknown))}")
        users.append(V3User(name=str(item.get("name", "")), auth_proto=item.get("auth_proto", "SHA-256"),
                            auth_key=str(item.get("auth_key", "")), priv_proto=item.get("priv_proto", "AES"),
                            priv_key=str(item.get("priv_key", "")),
                            engine_ids=tuple(str(e) for e in item.get("engine_ids", ()) or ())))
    return users


def format_event(event: EventRead) -> str:
    """One human line: time, severity, kind, message, device."""
    where = f" device={event.device_id}" if event.device_id is not None else ""
    when = event.time.isoformat(timespec="seconds")
    return f"{when} {event.severity.value:<8} {event.kind:<20} {event.message}{where}"


@traps_app.callback()
def _traps() -> None:
    """SNMP trap and inform receiver."""  # a group even with one command: `traps listen` everywhere


@traps_app.command()
def listen(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="UDP port (162 needs root or CAP_NET_BIND_SERVICE)")] = 162,
    community: Annotated[list[str] | None, typer.Option("--community", "-c",
                                                        help="Accepted v1/v2c community (repeatable)")] = None,
    community_file: Annotated[Path | None, typer.Option(help="File of accepted communities, one per line")] = None,
    users_file: Annotated[Path | None, typer.Option(help="YAML list of SNMPv3 users (name, auth_proto, "
                                                         "auth_key, priv_proto, priv_key, engine_ids)")] = None,
    engine_id: Annotated[str | None, typer.Option(help="Our SNMPv3 engine ID (hex) for informs")] = None,
    learn_engine_ids: Annotated[bool, typer.Option(help="Accept v3 traps from engine IDs not listed, "
                                                        "once their keys authenticate")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print each event as a JSON line")] = False,
) -> None:
    """Receive traps and informs, write them to the event log, print each event."""
    from infra_mgr.db import ready_engine
    from infra_mgr.network.traps import ReceiverConfig

    try:
        communities = list(community or [])
        if community_file is not None:
            communities += _read_lines(community_file)
        users = _read_users(users_file) if users_file is not None else []
        config = ReceiverConfig(host=host, port=port, communities=tuple(communities), users=tuple(users),
                                engine_id=engine_id, learn_engine_ids=learn_engine_ids)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from None
    if not communities and not users:
        raise _fail("nothing would be accepted: give --community, --community-file or --users-file")

    engine = ready_engine()

    def show(event: EventRead) -> None:
        line = event.model_dump_json() if json_out else format_event(event)
        typer.echo(line)

    try:
        stats = asyncio.run(_listen(engine, config, show))
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    typer.echo(json.dumps(stats), err=True)


async def _listen(engine: Any, config: Any, show: Any) -> dict[str, Any]:
    from infra_mgr.network.trap_service import run_trap_receiver

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def ready(pipeline: Any) -> None:
        host, port = pipeline.address
        typer.echo(f"listening on {host}:{port}", err=True)

    from infra_mgr.config import get_settings
    from infra_mgr.network.discovery import repoll_device

    master = get_settings().secret()

    async def repoll(device_id: int) -> None:
        """A link or restart trap: read that device again now, without waiting for a schedule."""
        report = await repoll_device(engine, master, device_id)
        if report is not None:
            typer.echo(f"re-polled device {device_id}: {report.events} change events", err=True)

    async def backup(device_id: int) -> None:
        """A configuration-changed trap: back that device's configuration up now."""
        from infra_mgr.network.ssh.backup import backup_device

        run = await backup_device(engine, master, device_id)
        typer.echo(f"backed up device {device_id}: {run.changed} new version(s), {run.failed} failed", err=True)

    settings = get_settings()
    stats = await run_trap_receiver(engine, config, on_event=show, stop=stop, on_ready=ready, repoll=repoll,
                                    backup=backup, backup_debounce_s=settings.backup_trap_debounce_s,
                                    backup_concurrency=settings.backup_concurrency)
    return stats.to_json()
