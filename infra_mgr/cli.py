"""The ``infra-mgr`` command line: serve, database, users and tokens, import/export, sites, lab.

Every read command takes ``--json`` for scripts; errors are one line on stderr and a non-zero
exit status, never a traceback (``main`` catches what the commands raise).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlmodel import Session

from infra_mgr.common import cli_actor
from infra_mgr.config import get_settings
from infra_mgr.db import writer

app = typer.Typer(help="infra-mgr: the city's network, power and private cloud in one service.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
user_app = typer.Typer(help="Local users.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
sites_app = typer.Typer(help="Sites.", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(sites_app, name="sites")
app.add_typer(docs_app, name="docs")

console = Console()
err = Console(stderr=True, soft_wrap=True)
EXAMPLE_CITY = Path(__file__).resolve().parents[1] / "examples" / "jeddah.yaml"
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _ready_engine() -> Any:
    from infra_mgr.db import ready_engine

    return ready_engine()


# --------------------------------------------------------------------------- serve / db


@app.command()
def serve(host: Annotated[str | None, typer.Option(help="Listen address")] = None,
          port: Annotated[int | None, typer.Option(help="Listen port")] = None,
          access_log: Annotated[bool, typer.Option(help="Log every request")] = True) -> None:
    """Apply migrations and serve the API and dashboard."""
    import gc

    import uvicorn

    from infra_mgr.api.app import create_app

    settings = get_settings()
    _ready_engine()
    application = create_app(settings)
    # Everything alive now lives as long as the process: freezing it keeps the collector from
    # rescanning it on every full collection (seen as 80-95 ms pauses on large list responses).
    gc.collect()
    gc.freeze()
    uvicorn.run(application, host=host or settings.host, port=port or settings.port,
                log_level=settings.log_level, access_log=access_log, **proxy_options(settings))


def proxy_options(settings: Any) -> dict[str, Any]:
    """uvicorn's proxy-header settings. By default nothing is believed: uvicorn would otherwise
    trust ``X-Forwarded-For`` from 127.0.0.1, so any local process (or a proxy that passes the
    header through) could pick the client address the login throttle and audit log see. Only
    the proxies named in ``forwarded_allow_ips`` are trusted."""
    if not settings.forwarded_allow_ips:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}


@app.command()
def demo(host: Annotated[str | None, typer.Option(help="Listen address")] = None,
         port: Annotated[int | None, typer.Option(help="Listen port")] = None,
         example: Annotated[Path, typer.Option(help="City to import")] = EXAMPLE_CITY) -> None:
    """The main job on the lab city (``make demo``): start the lab, import the example city, point the
    database at the lab, make sure a demo admin exists, run a first discovery, and serve. The lab
    peers it started stop with it (Ctrl-C, SIGTERM or an error); ones already running stay."""
    from infra_mgr.lab.cli import default_lab_dir
    from infra_mgr.lab.supervisor import Lab

    settings = get_settings()
    engine = _ready_engine()
    # Everything below runs inside the lab's stop-at-exit guard: Ctrl-C or SIGTERM at any point
    # (starting peers, importing, serving) stops every peer this demo started.
    with Lab(default_lab_dir()).stopped_at_exit():
        _demo(settings, engine, host, port, example)


def _demo(settings: Any, engine: Any, host: str | None, port: int | None, example: Path) -> None:
    """The demo's steps, from the lab's start to the end of serving."""
    import asyncio
    import secrets as pysecrets
    import threading

    from infra_mgr.auth.permissions import Role
    from infra_mgr.auth.service import UserCreate, create_user, user_exists
    from infra_mgr.inventory.history import acting_as
    from infra_mgr.inventory.importer import import_file
    from infra_mgr.lab.cli import configure as lab_configure
    from infra_mgr.lab.cli import default_lab_dir
    from infra_mgr.lab.cli import up as lab_up
    from infra_mgr.network.discovery import discover as run_discovery

    lab_up(only=None, lab_dir=None)
    with acting_as("demo"), Session(writer(engine), expire_on_commit=False) as session:
        result = import_file(session, example)
        pw_file = settings.data_dir / "demo-password"
        if not user_exists(session, "admin"):
            password = pysecrets.token_urlsafe(12)
            create_user(session, UserCreate(username="admin", password=password, role=Role.admin,
                                            full_name="Demo administrator"))
            pw_file.write_text(password + "\n", encoding="utf-8")
            pw_file.chmod(0o600)
        session.commit()
    console.print(f"imported {example.name}: {result.created['site']} new sites, {result.unchanged['site']} unchanged")
    lab_configure(lab_dir=None)

    def first_discovery() -> None:
        """Runs beside the server, so the dashboard is up at once and fills in as devices are found."""
        report = asyncio.run(run_discovery(engine, settings.secret(), all_sites=True, actor="demo",
                                                   trigger="demo"))
        data = report.to_json()
        console.print(f"first discovery: {data['found']} devices, {data['links']} links in {data['seconds']} s; "
                      f"unreachable: {', '.join(u['name'] or u['address'] for u in data['unreachable']) or 'none'}; "
                      f"no working credential: "
                      f"{', '.join(u['name'] or u['address'] for u in data['wrong_credentials']) or 'none'}",
                      highlight=False)
        plan = default_lab_dir() / "city" / "uplinks.yaml"  # the lab city's uplink design file
        if plan.exists():
            from infra_mgr.db import write_session
            from infra_mgr.network.uplinks import import_plan

            with write_session(engine) as session:
                lines = import_plan(session, plan, actor="demo")
                session.commit()
            console.print(f"uplink design: {sum(1 for x in lines if x.action != 'skipped')} uplinks set from "
                          f"{plan.name}, {sum(1 for x in lines if x.action == 'skipped')} not in the inventory",
                          highlight=False)
        first_backup()

    def first_backup() -> None:
        """The configurations of what discovery found, over SSH: the Configs pages start with a version."""
        from infra_mgr.network.ssh.backup import run_backup

        run = asyncio.run(run_backup(engine, settings.secret(), trigger="manual", actor="demo"))
        console.print(f"first configuration backup: {run.devices} devices, {run.changed} new versions, "
                      f"{run.failed} failed in {run.duration_s or 0:.1f} s", highlight=False)

    threading.Thread(target=first_discovery, name="first-discovery", daemon=True).start()
    console.print("first discovery of the lab city running (results below when done)")
    password = pw_file.read_text().strip() if pw_file.exists() else "(set earlier; not stored)"
    url = f"http://{host or settings.host}:{port or settings.port}/"
    console.print(f"[bold]dashboard:[/bold] {url}   [bold]login:[/bold] admin / {password}", highlight=False)
    console.print("try: infra-mgr lab outage start   (and watch the Power page)", highlight=False)
    serve(host=host, port=port, access_log=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations."""
    from infra_mgr.db import upgrade

    url = get_settings().db_url
    upgrade(url)
    console.print(f"database at revision head ({_redact_url(url)})")


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --------------------------------------------------------------------------- users and tokens


@user_app.command("add")
def user_add(username: str,
             role: Annotated[str, typer.Option(help="admin|netops|sysadmin|facilities|viewer")] = "viewer",
             full_name: Annotated[str, typer.Option()] = "",
             password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin")] = False,
             password_env: Annotated[str | None, typer.Option(help="Read the password from this env var")] = None,
             ) -> None:
    """Create a local user (the password is prompted for unless given on stdin or in an env var)."""
    import os

    from pydantic import ValidationError

    from infra_mgr.auth.service import UserCreate, create_user

    if password_env:
        password = os.environ.get(password_env, "")
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        data = UserCreate(username=username, role=role, full_name=full_name, password=password)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise CliError(f"{'.'.join(map(str, e['loc']))}: {e['msg']}") from exc
    with Session(writer(_ready_engine()), expire_on_commit=False) as session:
        user = create_user(session, data)
        session.commit()
        console.print(f"user {user.username} created with role {user.role}")


@token_app.command("create")
def token_create(username: str, name: Annotated[str, typer.Option(help="What the token is for")] = "",
                 expires_in_days: Annotated[int | None, typer.Option()] = None, as_json: JsonOpt = False) -> None:
    """Create an API token for a user and print it (it is shown only once)."""
    from infra_mgr.auth.service import create_token, get_user

    with Session(writer(_ready_engine()), expire_on_commit=False) as session:
        tok, raw = create_token(session, get_user(session, username), name, expires_in_days)
        session.commit()
    if as_json:
        print(json.dumps({"id": tok.id, "name": tok.name, "token": raw, "username": username}))
    else:
        console.print(raw, highlight=False)


# --------------------------------------------------------------------------- import / export


@app.command("import")
def import_(file: Annotated[Path, typer.Argument(help="YAML or CSV file", exists=False)],
            move: Annotated[bool, typer.Option(
                "--move", help="Allow re-homing existing prefixes, devices and addresses (each move is listed)")
            ] = False,
            dry_run: Annotated[bool, typer.Option(
                "--dry-run", help="Do everything in a transaction that is rolled back; print what would change")
            ] = False,
            as_json: JsonOpt = False) -> None:
    """Import sites, prefixes and devices; a bad row is reported and nothing is written.

    An object that already belongs elsewhere (a prefix or device of another site, an address of
    another device) is refused unless ``--move`` is given: an import never re-homes silently.
    A file that is not a regular file, or is larger than ``import_max_bytes``, is refused
    before it is read (exit 2).
    """
    from infra_mgr.inventory.history import acting_as
    from infra_mgr.inventory.importer import FileRefused, import_rows, parse

    try:
        rows = parse(file, max_bytes=get_settings().import_max_bytes)
    except FileRefused as exc:
        err.print(f"error: {exc.message}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    engine = _ready_engine()
    with acting_as(cli_actor()), Session(writer(engine)) as session, \
            Progress(console=err, transient=True, disable=as_json) as progress:
        progress.add_task(f"importing {len(rows)} rows from {file.name}", total=None)
        result = import_rows(session, rows, str(file), move=move, dry_run=dry_run)
        if not dry_run:
            session.commit()
    totals = {"created": result.created, "updated": result.updated, "moved": result.moved,
              "unchanged": result.unchanged}
    if as_json:
        print(json.dumps({"dry_run": dry_run, **totals,
                          "changes": [c.as_json() for c in result.changes if c.action != "unchanged"]}))
        return
    if dry_run:
        console.print("dry run: nothing written", highlight=False, markup=False)
    for change in result.changes:
        if change.action != "unchanged":
            console.print(change.describe(), highlight=False, markup=False)
    for what, counts in totals.items():
        console.print(f"total {what}: " + ", ".join(f"{v} {_PLURAL[k]}" for k, v in counts.items()),
                      highlight=False, markup=False)


_PLURAL = {"site": "sites", "prefix": "prefixes", "device": "devices", "address": "addresses"}


@app.command("export")
def export(fmt: Annotated[str, typer.Option("--format", help="yaml or csv (sites only)")] = "yaml",
           output: Annotated[Path | None, typer.Option("--output", "-o", help="File (default stdout)")] = None
           ) -> None:
    """Export sites, prefixes and devices in the import format."""
    from infra_mgr.inventory.importer import export_csv, export_yaml

    if fmt not in ("yaml", "csv"):
        raise CliError(f"--format: must be yaml or csv, not {fmt!r}")
    with Session(_ready_engine(), expire_on_commit=False) as session:
        text = export_yaml(session) if fmt == "yaml" else export_csv(session)
    if output:
        output.write_text(text, encoding="utf-8")
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


# --------------------------------------------------------------------------- sites


@sites_app.command("list")
def sites_list(kind: Annotated[str | None, typer.Option(help="branch|hq|datacenter")] = None,
               as_json: JsonOpt = False) -> None:
    """List sites with their device counts and network health (the dashboard's sites list and map)."""
    from infra_mgr.inventory import views as inventory_views
    from infra_mgr.network import views as network_views

    with Session(_ready_engine(), expire_on_commit=False) as session:
        sites = inventory_views.sites(session, kind=kind or "", size=None).rows
        health = {h.id: h for h in network_views.sites_health(session, [s.id for s in sites])}
    if as_json:
        print(json.dumps([{**s.model_dump(mode="json"),
                           "health": health[s.id].model_dump(mode="json", include={"state", "states"})
                           if s.id in health else None} for s in sites], ensure_ascii=False))
        return
    table = Table("code", "name", "الاسم", "kind", "status", "devices", "health")
    for s in sites:
        h = health.get(s.id)
        table.add_row(s.code, s.name_en, s.name_ar, s.kind, s.status, str(s.device_count),
                      h.state if h else "")
    console.print(table)
    console.print(f"{len(sites)} sites")


@app.command()
def discover(site: Annotated[str | None, typer.Option(help="Site code (its discovery targets)")] = None,
             all_sites: Annotated[bool, typer.Option("--all", help="Every site's targets")] = False,
             seed: Annotated[list[str] | None, typer.Option(help="Extra seed address or range (repeatable)")] = None,
             timeout: Annotated[float, typer.Option(help="Seconds per SNMP request")] = 1.0,
             retries: Annotated[int, typer.Option(help="Retries per request")] = 1,
             as_json: JsonOpt = False) -> None:
    """Crawl from the seeds through LLDP/CDP neighbours (inside the allow-list) and update the inventory."""
    import asyncio

    from infra_mgr.network.discovery import discover as run_discovery

    if not site and not all_sites and not seed:
        raise CliError("say what to discover: --site CODE, --all, or --seed ADDRESS")
    if site and all_sites:
        raise CliError("--site and --all are exclusive")
    engine = _ready_engine()
    with Progress(console=err, transient=True, disable=as_json) as progress:
        task = progress.add_task("discovering", total=None)

        def tick(address: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=f"discovering {address}")

        report = asyncio.run(run_discovery(engine, get_settings().secret(), site_code=site, all_sites=all_sites,
                                           seeds=seed or [],
                                           timeout_s=timeout, retries=retries, progress=tick, actor=cli_actor(),
                                           trigger="cli"))
    data = report.to_json()
    if as_json:
        print(json.dumps(data, ensure_ascii=False))
        return
    console.print(f"found {data['found']} devices ({len(data['new'])} new), {data['links']} links "
                  f"({data['links_new']} new), {data['events']} events in {data['seconds']} s")
    for key, label in (("missing", "missing"), ("unplaced", "not placed in any site")):
        if data[key]:
            console.print(f"{label}: {', '.join(data[key])}")
    for key, label in (("unreachable", "unreachable"), ("wrong_credentials", "answers, but no credential works")):
        for u in data[key]:
            console.print(f"{label}: {u['address']} {u['name'] or ''}".rstrip())
    from infra_mgr.network import views as network_views

    with Session(engine) as session:
        run = network_views.discovery_run(session, report.run_id or 0)
    for line in network_views.run_summary(run) if run else []:
        console.print(line, markup=False, highlight=False)
    if data["outside_allow_list"]:
        console.print(f"neighbours outside the allow-list (not followed): {', '.join(data['outside_allow_list'])}")
    if data["problems"]:
        console.print(f"{len(data['problems'])} agent problems (see --json)")


@docs_app.command("permissions")
def docs_permissions() -> None:
    """Print the role/permission matrix as Markdown (the source of docs/permissions.md)."""
    from infra_mgr.auth.permissions import matrix_markdown

    sys.stdout.write(matrix_markdown())


@docs_app.command("readings")
def docs_readings() -> None:
    """Print the canonical power reading names as Markdown (the table in docs/power.md)."""
    from infra_mgr.power.readings import CANONICAL

    lines = ["| name | unit | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {unit} | {meaning} |" for name, (unit, meaning) in CANONICAL.items()]
    sys.stdout.write("\n".join(lines) + "\n")


def _mount_domains() -> None:
    """Each domain owns its commands; the lab is an optional extra and may be absent."""
    from infra_mgr.network.cli import PROBE_EXTRAS, snmp_app
    from infra_mgr.network.traps_cli import traps_app
    from infra_mgr.power import cli_views
    from infra_mgr.power.cli import power_app
    from infra_mgr.power.collectors.snmp_ups import power_facts_for_snmp

    cli_views.register(power_app)
    if power_facts_for_snmp not in PROBE_EXTRAS:  # `snmp probe` also reads a UPS, PDU or ATS it finds
        PROBE_EXTRAS.append(power_facts_for_snmp)
    app.add_typer(power_app, name="power", help="UPS, DRUPS, generators and meters: probe, status, outages.")

    app.add_typer(snmp_app, name="snmp", help="Read one SNMP agent without touching the database.")
    app.add_typer(traps_app, name="traps", help="Receive SNMP traps and informs into the event log.")
    from infra_mgr.network.link_cli import audit_app, uplinks_app

    app.add_typer(audit_app, name="audit", help="Audits of the estate: the branch links.")
    app.add_typer(uplinks_app, name="uplinks", help="Branch uplinks: list, set or clear by hand, import a plan.")
    from infra_mgr.network.ssh.cli import backup_app, config_app, ssh_app

    app.add_typer(backup_app, name="backup", help="Configuration backups over SSH: run, status.")
    app.add_typer(config_app, name="config", help="Stored configurations: show, versions, diff, search, check.")
    app.add_typer(ssh_app, name="ssh", help="SSH host keys: list, accept a changed key.")
    try:
        from infra_mgr.lab.cli import lab_app
    except ImportError:
        return
    app.add_typer(lab_app, name="lab", help="The simulated city: real peer programs on loopback.")


_mount_domains()


def main() -> None:
    """Entry point: run the CLI, turning every expected failure into one line on stderr."""
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from infra_mgr.errors import ServiceError
    from infra_mgr.inventory.importer import ImportFailed

    try:
        app()
    except ImportFailed as exc:
        for line in exc.problems:
            err.print(line, highlight=False, markup=False)
        err.print(f"import refused: {len(exc.problems)} problem(s), nothing written", highlight=False)
        sys.exit(1)
    except (CliError, ServiceError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(1)
    except ValidationError as exc:
        e = exc.errors()[0]
        err.print(f"error: {'.'.join(map(str, e['loc']))}: {e['msg']}", highlight=False, markup=False)
        sys.exit(1)
    except SQLAlchemyError as exc:
        err.print(f"error: database: {str(getattr(exc, 'orig', exc)).splitlines()[0]}", highlight=False, markup=False)
        sys.exit(1)
    except OSError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
