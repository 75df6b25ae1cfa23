"""``infra-mgr lab up|down|status``: run the real peer programs of the lab on loopback ports.

Mounted by the main CLI with ``app.add_typer(lab_app, name="lab")``. Errors are one line on
stderr and exit code 1: these commands are used from scripts and Makefiles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra_mgr.lab.registry import DEFAULT_PEERS, PEER_KINDS, build_spec
from infra_mgr.lab.supervisor import Lab, LabError, PeerRecord

lab_app = typer.Typer(help="Start, stop and inspect the lab's simulated peers.", no_args_is_help=True)

LabDirOption = Annotated[
    Path | None,
    typer.Option("--lab-dir", help="Lab directory (state, logs, data). Default: lab/ in the data directory "
                 "(INFRA_MGR_DATA_DIR, else ./var)"),
]
OnlyOption = Annotated[
    list[str] | None,
    typer.Option("--only", help=f"Only this peer (repeatable): {', '.join(sorted(PEER_KINDS))}"),
]


def default_lab_dir() -> Path:
    """Where the lab lives when ``--lab-dir`` is not given (one place to change it)."""
    from infra_mgr.config import get_settings

    return get_settings().lab_dir


@contextmanager
def _one_line_errors() -> Iterator[None]:
    try:
        yield
    except LabError as exc:
        where = f" (log: {exc.log_path})" if exc.log_path else ""
        typer.echo(f"error: {exc.summary}{where}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _details(rec: PeerRecord) -> str:
    """The one thing a user needs to reach the peer: a URL, or SNMP agents and communities."""
    if "url" in rec.info:
        return str(rec.info["url"])
    agents = rec.info.get("agents")
    if agents:
        shown = ", ".join(f"{a['name']} {a['host']}:{a['port']} community={a['community']}" for a in agents[:3])
        return shown + (f" (+{len(agents) - 3} more)" if len(agents) > 3 else "")
    return ""


def _addresses(rec: PeerRecord, shown: int = 3) -> str:
    """The peer's addresses, shortened for the city (one per device)."""
    more = f" (+{len(rec.addresses) - shown} more)" if len(rec.addresses) > shown else ""
    return " ".join(rec.addresses[:shown]) + more


@lab_app.command()
def up(only: OnlyOption = None, lab_dir: LabDirOption = None) -> None:
    """Start the peers (default: all of the default set) and wait until each answers."""
    with _one_line_errors():
        lab = Lab(lab_dir or default_lab_dir())
        for kind in only or DEFAULT_PEERS:
            running = {s.name: s for s in lab.status() if s.running}
            if kind in running:
                rec = running[kind].record
                verb = "running"
            else:
                rec = lab.start(build_spec(kind, lab.lab_dir))
                verb = "started"
            typer.echo(f"{verb} {rec.name} pid {rec.pid} {_addresses(rec)} {_details(rec)}".rstrip())


@lab_app.command()
def down(only: OnlyOption = None, lab_dir: LabDirOption = None) -> None:
    """Stop the peers (whole process groups) and clean stale state; fine when nothing runs."""
    with _one_line_errors():
        lab = Lab(lab_dir or default_lab_dir())
        stopped = [name for name in only if lab.stop(name)] if only else lab.stop_all()
        typer.echo(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@lab_app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON")] = False,
    lab_dir: LabDirOption = None,
) -> None:
    """Show each recorded peer and whether it still runs."""
    with _one_line_errors():
        statuses = Lab(lab_dir or default_lab_dir()).status()
        if as_json:
            peers = {s.name: {**asdict(s.record), "running": s.running} for s in statuses}
            typer.echo(json.dumps({"peers": peers}, indent=2, ensure_ascii=False))
            return
        if not statuses:
            typer.echo("no peers recorded")
            return
        table = Table()
        for column in ("peer", "state", "pid", "addresses", "details", "log"):
            table.add_column(column, overflow="fold")
        for s in statuses:
            state = "[green]running[/]" if s.running else "[red]dead[/]"
            rec = s.record
            table.add_row(rec.name, state, str(rec.pid), _addresses(rec).replace(" ", "\n", 2), _details(rec), rec.log)
        Console().print(table)


@lab_app.command()
def configure(lab_dir: LabDirOption = None) -> None:
    """Point the database at the running lab: discovery credentials and seeds (the HQ core and every
    branch gateway), power devices and chain.
    Import the example city first (``infra-mgr import examples/jeddah.yaml``): the lab's devices live
    in its sites."""
    from sqlmodel import Session

    from infra_mgr.config import get_settings
    from infra_mgr.db import ready_engine, writer
    from infra_mgr.inventory.history import acting_as
    from infra_mgr.lab.city import RunningCity
    from infra_mgr.lab.setup import configure_branch_seeds, configure_discovery, configure_power

    with _one_line_errors():
        settings = get_settings()
        engine = ready_engine(settings)
        lab = Lab(lab_dir or default_lab_dir())
        city = lab.record("city")
        if city is None:
            raise LabError("the lab city is not running: infra-mgr lab up")
        with acting_as("lab"), Session(writer(engine)) as session:
            running = RunningCity.from_record(city)
            disc = configure_discovery(session, settings.secret(), running)
            branches = configure_branch_seeds(session, running)
            power = configure_power(session, settings.secret(), lab)
            ssh_record = lab.record("city-ssh")
            ssh = None
            if ssh_record is not None:
                from infra_mgr.lab.ssh_lab import RunningSsh, configure_ssh_credential

                ssh = configure_ssh_credential(session, settings.secret(), RunningSsh.from_record(ssh_record))
            session.commit()
        typer.echo(f"discovery: seed {disc['seed']} (port {disc['port']}), allow {', '.join(disc['allow'])}"
                   + (f"; {len(branches)} branch gateways as seeds" if branches else ""))
        typer.echo("power: " + ", ".join(f"{v} {k}" for k, v in power.items()))
        if ssh is not None:
            typer.echo(f"ssh: credential {ssh['credential']} (user {ssh['user']}, port {ssh['port']})")


def _mount_outage() -> None:
    from infra_mgr.lab.power_cli import outage_app

    lab_app.add_typer(outage_app, name="outage", help="Fail and restore the lab data centre's mains.")


_mount_outage()


def _mount_link() -> None:
    from infra_mgr.lab.link_cli import link

    lab_app.command("link")(link)


_mount_link()


def _mount_ssh() -> None:
    """``lab ssh change HOST`` / ``rekey HOST`` / ``status``: the running SSH devices."""
    from infra_mgr.lab.ssh_lab import SshLabControl

    ssh_app = typer.Typer(help="Change the lab's SSH devices at run time.", no_args_is_help=True)

    def control(lab_dir: Path | None) -> SshLabControl:
        record = Lab(lab_dir or default_lab_dir()).record("city-ssh")
        if record is None:
            raise LabError("the lab's SSH devices are not running: infra-mgr lab up --only city-ssh")
        return SshLabControl(Path(record.info["root"]))

    @ssh_app.command("change")
    def change(host: Annotated[str, typer.Argument(help="Device hostname")], lab_dir: LabDirOption = None) -> None:
        """Give a device's running configuration a new generation (one line changes)."""
        with _one_line_errors():
            typer.echo(f"{host}: configuration change {control(lab_dir).change(host)}")

    @ssh_app.command("rekey")
    def rekey(host: Annotated[str, typer.Argument(help="Device hostname")], lab_dir: LabDirOption = None) -> None:
        """Give a device a new SSH host key (clients that recorded the old one must refuse it)."""
        with _one_line_errors():
            typer.echo(f"{host}: new host key {control(lab_dir).rekey(host)}")

    @ssh_app.command("status")
    def ssh_status(lab_dir: LabDirOption = None) -> None:
        """Sessions, configuration changes and host-key changes per device so far."""
        with _one_line_errors():
            data = control(lab_dir).status()
            typer.echo(f"port {data.get('port')}; devices with activity: {len(data.get('devices', {}))}")
            for host, row in sorted(data.get("devices", {}).items()):
                typer.echo(f"{host}: sessions {row['sessions']} generation {row['generation']} "
                           f"changes {row['changes']} rekeys {row['rekeys']}")

    lab_app.add_typer(ssh_app, name="ssh")


_mount_ssh()
