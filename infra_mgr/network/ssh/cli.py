"""``infra-mgr backup …``, ``infra-mgr config …`` and ``infra-mgr ssh …``: configuration backup at a
terminal.

Mounted by the main CLI. Every command prints a read view of :mod:`infra_mgr.network.ssh.views`
(the answer the API and the dashboard give), as a table or with ``--json`` as the view's JSON.
Acting goes through the services: the backup run, the compliance check, the git export, host-key
acceptance. Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from infra_mgr.common import cli_actor

if TYPE_CHECKING:
    from pydantic import BaseModel
    from sqlalchemy import Engine

    from infra_mgr.network.ssh.views import BackupRunRow, ConfigDiff

backup_app = typer.Typer(help="Configuration backups over SSH: run them, see how each device stands.",
                         no_args_is_help=True)
config_app = typer.Typer(help="Stored configurations: show, list versions, diff, search, check the rules, "
                              "export to git.", no_args_is_help=True)
ssh_app = typer.Typer(help="SSH host keys: list them, accept a device's changed key.", no_args_is_help=True)
console = Console(soft_wrap=True)  # summaries stay one line; tables still fit the terminal
err = Console(stderr=True, soft_wrap=True)
STATUS_STYLE = {"ok": "green", "failed": "red", "never": "dim"}
SEVERITY_STYLE = {"critical": "red", "warning": "yellow", "info": "cyan"}
DIFF_STYLE = {"same": "", "changed": "yellow", "added": "green", "removed": "red", "skipped": "dim"}
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site code, e.g. JED-B07")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the view as JSON")]
DeviceArg = Annotated[str, typer.Argument(help="Device hostname or id")]


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """A service's refusal (unknown device, bad pattern…) is one line on stderr, exit status 1."""
    from infra_mgr.errors import ServiceError

    try:
        yield
    except ServiceError as exc:
        field = next((str(e["field"]) for e in exc.errors if e.get("field")), "")
        err.print(f"error: {field + ': ' if field else ''}{exc.message}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(1)


def _engine() -> Engine:
    from infra_mgr.db import ready_engine

    return ready_engine()



def _json(value: BaseModel | list[Any]) -> None:
    if isinstance(value, list):
        print(json.dumps([v.model_dump(mode="json") for v in value], ensure_ascii=False))
    else:
        print(value.model_dump_json())


def _when(value: Any) -> str:
    """A stored time (always UTC) with its zone, as the dashboard writes it."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _narrow() -> bool:
    """An 80-column terminal: tables drop their least needed columns so names and reasons stay whole."""
    return console.width < 120


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _plain(text: str | None) -> Text:
    """Device text as it is: a configuration's ``[brackets]`` are not markup."""
    return Text(text or "")


# --------------------------------------------------------------------------- backup


@backup_app.command("run")
def backup_run(
    site: SiteOpt = None,
    device: Annotated[str | None, typer.Option("--device", help="Device hostname or id")] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=256,
                                                    help="Devices at once (default: the setting)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Back up a site's devices, one device, or every device; a progress bar on stderr, then what
    changed, what did not and why each failure failed. Exit status 1 when any device failed (or
    the run itself did), so cron or Ansible notice a refused host key or password."""
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from sqlmodel import Session

    from infra_mgr.config import get_settings
    from infra_mgr.inventory.views import site_by_code
    from infra_mgr.network.ssh import views
    from infra_mgr.network.ssh.backup import run_backup

    if site is not None and device is not None:
        raise _fail("give --site or --device, not both")
    engine = _engine()
    hostname = None
    with _errors(), Session(engine) as session:
        if site is not None:
            found = site_by_code(session, site)
            if found is None:
                raise _fail(f"no site with code {site!r}")
            site = found.code
        if device is not None:
            hostname = views.resolve_device(session, device)[0].hostname
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("backing up", total=None)

        def progress(host: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=host)

        with _errors():
            result = asyncio.run(run_backup(engine, get_settings().secret(), site_code=site, device=hostname,
                                            trigger="manual", actor=cli_actor(), concurrency=concurrency,
                                            progress=progress))
    if as_json:
        _json(result)
    else:
        _print_run(result)
    if result.status == "failed" or result.failed:
        raise typer.Exit(1)


def _print_run(run: BackupRunRow) -> None:
    took = f" in {run.duration_s:.1f} s" if run.duration_s is not None else ""
    console.print(f"backup run {run.id} ({run.scope or 'all devices'}): {run.devices} devices{took}: "
                  f"{run.changed} changed, {run.unchanged} unchanged, {run.failed} failed",
                  markup=False, highlight=False)
    for f in run.failures:
        where = f" ({f.get('address')})" if f.get("address") else ""
        console.print(Text(f"  failed: {f.get('hostname') or f.get('device_id')}{where}: {f.get('message', '')}",
                           style="red"))
    if run.error:
        console.print(Text(f"  run error: {run.error}", style="red"))


@backup_app.command("status")
def backup_status(
    site: SiteOpt = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only devices whose last backup failed")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Each device's backup state: when it last worked, how many versions, open findings, and
    why it failed in words."""
    from sqlmodel import Session

    from infra_mgr.inventory.views import site_by_code
    from infra_mgr.network.ssh import views

    rows: list[views.DeviceBackupRow] = []
    with Session(_engine()) as session:
        if site is not None and site_by_code(session, site) is None:
            raise _fail(f"no site with code {site!r}")
        page = 1
        while True:
            lp = views.backups(session, site_code=site, status="failed" if failed else None, page=page, size=1000)
            rows += lp.rows
            if page * lp.size >= lp.total:
                break
            page += 1
    if as_json:
        _json(rows)
        return
    narrow = _narrow()
    table = Table()
    table.add_column("device", no_wrap=True)
    table.add_column("site", no_wrap=True)
    if not narrow:
        table.add_column("address", no_wrap=True)
        table.add_column("type")
    table.add_column("status")
    table.add_column("last success")
    if not narrow:
        table.add_column("last change")
        table.add_column("versions", justify="right")
    table.add_column("findings")
    table.add_column("reason")
    for r in rows:
        findings = f"{r.findings} ({r.worst_severity})" if r.findings else ""
        status = Text(r.status, style=STATUS_STYLE.get(r.status, ""))
        reason = _plain(r.reason)
        if r.status == "failed" and r.since is not None:
            reason.append(f"\nfailing since {_when(r.since)}", style="red")
        cells: list[Any] = [r.hostname, r.site_code] + ([r.address, r.device_type] if not narrow else [])
        cells += [status, _when(r.last_success) or Text("never", style="dim")]
        cells += [_when(r.last_change), str(r.versions)] if not narrow else []
        cells += [Text(findings, style=SEVERITY_STYLE.get(r.worst_severity or "", "")), reason]
        table.add_row(*cells)
    console.print(table)
    counts = {s: sum(1 for r in rows if r.status == s) for s in ("ok", "failed", "never")}
    console.print(f"{len(rows)} devices: {counts['ok']} ok, {counts['failed']} failed, {counts['never']} never "
                  "backed up", markup=False, highlight=False)


# --------------------------------------------------------------------------- config


@config_app.command("show")
def config_show(device: DeviceArg,
                version: Annotated[int | None, typer.Option("--version", min=1, help="Version number "
                                                            "(default: the latest)")] = None,
                as_json: JsonOpt = False) -> None:
    """Print a stored configuration (masked): the text on stdout, which version on stderr."""
    from sqlmodel import Session

    from infra_mgr.network.ssh import views

    with _errors(), Session(_engine()) as session:
        found = views.version_text(session, device, version)
    if as_json:
        _json(found)
        return
    v = found.version
    err.print(f"{found.hostname} version {v.number}, collected {_when(v.collected_at)} ({v.trigger}"
              f"{', ' + v.actor if v.actor else ''}), {v.lines} lines", markup=False, highlight=False)
    sys.stdout.write(found.text if found.text.endswith("\n") else found.text + "\n")


@config_app.command("versions")
def config_versions(device: DeviceArg,
                    page: Annotated[int, typer.Option("--page", min=1)] = 1,
                    size: Annotated[int, typer.Option("--size", min=1, max=1000)] = 50,
                    as_json: JsonOpt = False) -> None:
    """A device's stored versions, newest first: when, why, how big, how much changed."""
    from sqlmodel import Session

    from infra_mgr.network.ssh import views

    with _errors(), Session(_engine()) as session:
        found = views.versions(session, device, page=page, size=size)
    if as_json:
        _json(found)
        return
    table = Table("version", "collected", "trigger", "by", "lines", "bytes", "changed lines", "sha256")
    for v in found.versions:
        table.add_row(str(v.number), _when(v.collected_at), v.trigger, v.actor, str(v.lines), str(v.size),
                      str(v.changed_lines) if v.number > 1 else "", v.sha256[:12])
    console.print(table)
    console.print(f"{found.device.hostname}: {found.total} versions (page {found.page})", markup=False,
                  highlight=False)


@config_app.command("diff")
def config_diff(device: DeviceArg,
                a: Annotated[int | None, typer.Argument(min=1, help="Old version (default: the one before B)")] = None,
                b: Annotated[int | None, typer.Argument(min=1, help="New version (default: the latest)")] = None,
                side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Two columns, old | new")] = False,
                context: Annotated[int, typer.Option("--context", min=0, max=50,
                                                     help="Unchanged lines kept around a change")] = 3,
                as_json: JsonOpt = False) -> None:
    """What changed between two versions (default: the latest against the one before), as a
    coloured unified diff or side by side."""
    from sqlmodel import Session

    from infra_mgr.network.ssh import views

    with _errors(), Session(_engine()) as session:
        found = views.diff(session, device, a, b, context=context)
    if as_json:
        _json(found)
        return
    if side_by_side:
        _print_side_by_side(found)
    else:
        for line in found.unified.splitlines():
            style = ("bold" if line.startswith(("---", "+++")) else "cyan" if line.startswith("@@")
                     else "green" if line.startswith("+") else "red" if line.startswith("-") else "")
            console.print(Text(line, style=style), soft_wrap=True)
    if found.note:
        console.print(f"{found.hostname} v{found.new.number}: {found.note}", markup=False, highlight=False)
        return
    console.print(f"{found.hostname} v{found.old.number} → v{found.new.number}: +{found.added} -{found.removed}",
                  markup=False, highlight=False)


def _print_side_by_side(found: ConfigDiff) -> None:
    table = Table("", f"v{found.old.number}", "", f"v{found.new.number}", show_lines=False, expand=True)
    for r in found.rows:
        if r.kind == "skipped":
            table.add_row("", Text(f"… {r.count} unchanged lines …", style="dim"), "", "")
            continue
        left_style = {"changed": "yellow", "removed": "red"}.get(r.kind, "")
        right_style = {"changed": "yellow", "added": "green"}.get(r.kind, "")
        table.add_row(str(r.left_no or ""), Text(r.left or "", style=left_style), str(r.right_no or ""),
                      Text(r.right or "", style=right_style))
    console.print(table)


@config_app.command("search")
def config_search(pattern: Annotated[str, typer.Argument(help="Regular expression (Python), matched line by line")],
                  site: SiteOpt = None,
                  context: Annotated[int, typer.Option("--context", "-C", min=0, max=20,
                                                       help="Lines shown around each match")] = 0,
                  limit: Annotated[int, typer.Option("--limit", min=1, max=100_000,
                                                     help="Matching lines shown at most")] = 1000,
                  as_json: JsonOpt = False) -> None:
    """Which devices' latest configurations have lines matching PATTERN, with those lines."""
    from sqlmodel import Session

    from infra_mgr.inventory.views import site_by_code
    from infra_mgr.network.ssh import views

    with _errors(), Session(_engine()) as session:
        if site is not None and site_by_code(session, site) is None:
            raise _fail(f"no site with code {site!r}")
        found = views.search(session, pattern, site_code=site, context=context, limit=limit)
    if as_json:
        _json(found)
        return
    for hit in found.hits:
        console.print(Text(f"{hit.hostname} ({hit.site_code}) v{hit.version_number}: {hit.matches} matching lines",
                           style="bold"))
        for line in hit.lines:
            mark = ":" if line.match else "-"
            console.print(Text(f"  {line.number:>5}{mark} ", style="dim") + Text(line.text, style="yellow"
                                                                                if line.match else ""))
    more = " (more matched than shown)" if found.truncated else ""
    console.print(f"{found.devices_matched} of {found.devices_searched} devices match{more} "
                  f"({found.seconds:.3f} s)", markup=False, highlight=False)


@config_app.command("check")
def config_check(site: SiteOpt = None, as_json: JsonOpt = False) -> None:
    """Re-evaluate the compliance rules on every latest configuration and print the findings per
    site and device (exit status 1 when a critical finding is open)."""
    from sqlmodel import Session

    from infra_mgr.inventory.views import site_by_code
    from infra_mgr.network.ssh import views
    from infra_mgr.network.ssh.backup import check_all

    engine = _engine()
    with _errors():
        if site is not None:
            with Session(engine) as session:
                if site_by_code(session, site) is None:
                    raise _fail(f"no site with code {site!r}")
        done = check_all(engine)
        with Session(engine) as session:
            rows = views.findings(session, site_code=site)
            sites = views.site_compliance(session)
    if as_json:
        print(json.dumps({"devices": done.devices, "opened": done.opened, "resolved": done.resolved,
                          "sites": [s.model_dump(mode="json") for s in sites],
                          "findings": [r.model_dump(mode="json") for r in rows]}, ensure_ascii=False))
        return
    table = Table("site", "device", "severity", "rule", "message", "evidence")
    table.columns[1].no_wrap = True
    for r in sorted(rows, key=lambda r: (r.site_code, r.hostname, r.rule_id)):
        table.add_row(r.site_code, r.hostname, Text(r.severity, style=SEVERITY_STYLE.get(r.severity, "")),
                      r.rule_id, _plain(r.message), _plain(_evidence(r)))
    console.print(table)
    for s in sites:
        if site is None or s.site_code.lower() == site.lower():
            by = ", ".join(f"{n} {sev}" for sev, n in sorted(s.by_severity.items()))
            unread = f" ({s.not_read} not read)" if s.not_read else ""
            console.print(f"{s.site_code}: {s.compliant} of {s.devices + s.not_read} devices compliant{unread}"
                          + (f"; {by}" if by else ""), markup=False, highlight=False)
    console.print(f"{done.devices} configurations checked: {done.findings} findings, {done.opened} new, "
                  f"{done.resolved} resolved", markup=False, highlight=False)
    if any(r.severity == "critical" for r in rows):
        raise typer.Exit(1)


def _evidence(r: Any) -> str:
    """A finding's first evidence lines, each with its line number in the checked version."""
    numbers = list(r.line_numbers) + [None] * (len(r.lines) - len(r.line_numbers))
    return "\n".join(f"{n}: {line}" if n is not None else line
                     for n, line in zip(numbers[:5], r.lines[:5], strict=True))


@config_app.command("export-git")
def config_export_git(path: Annotated[Path | None, typer.Argument(
        help="Git repository (created if absent); default: the setting backup_git_path")] = None) -> None:
    """Write every device's configuration into a git repository, one commit per new version since
    the last export (``<site>/<hostname>.cfg``)."""
    from infra_mgr.config import get_settings
    from infra_mgr.network.ssh.gitexport import export

    path = path or get_settings().backup_git_path
    if path is None:
        raise _fail("give the repository's PATH (or set backup_git_path)")

    with _errors():
        commits = export(_engine(), path)
    console.print(f"{commits} commits written to {path}", markup=False, highlight=False)


# --------------------------------------------------------------------------- ssh


@ssh_app.command("keys")
def ssh_keys(pending: Annotated[bool, typer.Option("--pending", help="Only keys with a refused different "
                                                    "key waiting")] = False,
             as_json: JsonOpt = False) -> None:
    """Recorded SSH host keys (trust on first use); a pending one was refused because the device
    offered a different key."""
    from sqlmodel import Session

    from infra_mgr.network.ssh import views

    with Session(_engine()) as session:
        rows = views.host_keys(session, pending_only=pending)
        total = views.host_key_count(session) if pending else len(rows)
    if as_json:
        _json(rows)
        return
    # A fingerprint is read out to the device's owner: never cut, so it folds onto more lines
    # rather than end in an ellipsis; on a narrow terminal the less needed columns go.
    narrow = _narrow()
    table = Table()
    table.add_column("id", justify="right")
    table.add_column("device", no_wrap=True)
    table.add_column("address", no_wrap=True)
    if not narrow:
        table.add_column("type")
    table.add_column("fingerprint", no_wrap=True, overflow="fold")
    if not narrow:
        table.add_column("first seen")
        table.add_column("accepted by")
    table.add_column("different key refused")
    for k in rows:
        cells: list[Any] = [str(k.id), k.hostname or "", f"{k.address}:{k.port}"]
        cells += [k.key_type] if not narrow else []
        cells.append(Text(k.fingerprint))
        cells += [_when(k.first_seen), k.accepted_by] if not narrow else []
        cells.append(Text(_when(k.offered_at) if k.offered_fingerprint else "", style="red"))
        table.add_row(*cells)
    console.print(table)
    for k in rows:  # each refused key whole on its own line: it is read out to the device's owner
        if k.offered_fingerprint:
            console.print(Text(f"{k.hostname or k.address} ({k.address}:{k.port}) offers {k.offered_fingerprint}; "
                               f"recorded {k.fingerprint}", style="red"), soft_wrap=True)
    pending_n = sum(1 for k in rows if k.offered_fingerprint)
    console.print(f"{pending_n} pending of {_plural(total, 'host key', 'host keys')}", markup=False,
                  highlight=False)


@ssh_app.command("accept")
def ssh_accept(ref: Annotated[str, typer.Argument(help="Host key id, or the device's hostname or id")],
               fingerprint: Annotated[str | None, typer.Option(
                   "--fingerprint", help="The offered key's fingerprint (SHA256:…) you checked")] = None) -> None:
    """Trust the different host key a device offered; its next backup connects with it. Without
    ``--fingerprint`` it only shows the offered key: a newer refused key replaces the offered one,
    so only the fingerprint someone checked is ever trusted."""
    from infra_mgr.db import write_session
    from infra_mgr.network.ssh import views
    from infra_mgr.network.ssh.hostkeys import accept

    with _errors(), write_session(_engine()) as session:
        key_id = views.host_key_id(session, ref)
        if fingerprint is None:
            pending = views.host_key(session, key_id)
            if pending.offered_fingerprint:
                err.print(f"{pending.hostname or pending.address}: offers {pending.offered_fingerprint} "
                          f"(recorded {pending.fingerprint}); check it on the device, then run again with "
                          f"--fingerprint {pending.offered_fingerprint}", markup=False, highlight=False)
                raise typer.Exit(1)
        accept(session, key_id, cli_actor(), fingerprint or "")
        session.flush()
        row = views.host_key(session, key_id)
    console.print(f"{row.hostname or row.address}: now trusting {row.key_type} {row.fingerprint}", markup=False,
                  highlight=False)
