"""``infra-mgr audit links`` and ``infra-mgr uplinks …``: the branch link audit at a terminal.

Mounted by the main CLI (``audit`` and ``uplinks`` groups). The table, ``--json`` and ``--csv``
print the read views of :mod:`infra_mgr.network.link_views` — the same answer the API and the
Links page give. Overrides go through :mod:`infra_mgr.network.uplinks`, which records who changed
what. Errors are one line on stderr and exit status 1 (the main CLI turns service errors into that).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra_mgr.common import cli_actor

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlmodel import Session

    from infra_mgr.network.audit import Translate
    from infra_mgr.network.linkfacts import BranchAudit

audit_app = typer.Typer(help="Audits of the estate: the branch links.", no_args_is_help=True)
uplinks_app = typer.Typer(help="Branch uplinks: list them, set or clear a person's choice, import a plan.",
                          no_args_is_help=True)
console = Console()
err = Console(stderr=True, soft_wrap=True)
STATE_STYLE = {"ok": "green", "degraded": "yellow", "down": "red", "unknown": "dim"}
SiteOpt = Annotated[str | None, typer.Option("--site", help="Site code, e.g. JED-B07")]


def _fail(message: str) -> typer.Exit:
    err.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(1)


def _engine():  # type: ignore[no-untyped-def]  # an Engine; imported late so --help stays fast
    from infra_mgr.db import ready_engine

    return ready_engine()



@audit_app.callback()
def _audit() -> None:
    """Audits of the estate (a group even with one command: ``audit links`` everywhere)."""


@audit_app.command("links")
def audit_links(
    site: SiteOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the audit as JSON")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the management report's CSV")] = False,
    lang: Annotated[str, typer.Option("--lang", help="Language of the CSV and the reasons: en or ar")] = "en",
) -> None:
    """Every branch's uplink health, worst first: state, score and the reasons in words."""
    from sqlmodel import Session

    from infra_mgr.config import get_settings
    from infra_mgr.network import link_views
    from infra_mgr.network.audit import reason_text, thresholds_from
    from infra_mgr.telemetry.store import TelemetryStore
    from infra_mgr.web.i18n import LANGS, Translator

    if as_json and as_csv:
        raise _fail("--json and --csv are exclusive")
    if lang not in LANGS:
        raise _fail(f"--lang must be one of {', '.join(LANGS)}, not {lang!r}")
    engine = _engine()
    with Session(engine) as session:
        audits = link_views.audit_branches(session, TelemetryStore(engine), site_code=site,
                                           thresholds=thresholds_from(get_settings()))
    if site is not None and not audits:
        raise _fail(f"no site with code {site!r}")
    t = Translator(lang)
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in audits], ensure_ascii=False))
        return
    if as_csv:
        sys.stdout.write(link_views.audit_csv(audits, t))
        return
    table = Table(*(t(f"audit.csv.{c}") for c in ("site", "name", "state", "score", "uplinks", "reasons")))
    for a in audits:
        name = a.site_name_ar if lang == "ar" and a.site_name_ar else a.site_name_en
        reasons = "\n".join(reason_text(r, t) for r in a.reasons)
        table.add_row(a.site_code, name, f"[{STATE_STYLE[a.state.value]}]{t(f'audit.state.{a.state.value}')}[/]",
                      str(a.score), str(a.uplinks), reasons.replace("[", r"\["))
    console.print(table)
    console.print(_summary(t, audits), markup=False, highlight=False)


def _summary(t: Translate, audits: Sequence[BranchAudit]) -> str:
    """The line under the table in the reader's language: branches counted (with the language's
    plural form) and how many are in each state, worst first."""
    counts = {s: sum(1 for a in audits if a.state.value == s) for s in ("down", "degraded", "unknown", "ok")}
    states = t("audit.cli.sep").join(t("audit.cli.state_count", state=t(f"audit.state.{s}"), n=n)
                                     for s, n in counts.items())
    return t("audit.cli.summary", count=len(audits), states=states)


@uplinks_app.command("list")
def uplinks_list(site: SiteOpt = None,
                 device: Annotated[str | None, typer.Option("--device", help="Device host name")] = None,
                 as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False
                 ) -> None:
    """Uplinks with where they came from, what they should look like and how they last looked."""
    from sqlmodel import Session

    from infra_mgr.network import link_views
    from infra_mgr.network.audit import fmt_speed

    with Session(_engine()) as session:
        rows = link_views.uplinks(session, site_code=site, device=device)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in rows], ensure_ascii=False))
        return
    table = Table("site", "device", "interface", "uplink", "source", "status", "speed", "expected speed",
                  "neighbour", "expected neighbour")
    for r in rows:
        table.add_row(r.site_code, r.device, r.interface, ("yes" if r.is_uplink else "no") + (" (manual)" if r.manual
                                                                                            else ""),
                      r.source, r.oper_status, fmt_speed(r.speed_bps) if r.speed_bps else "",
                      (fmt_speed(r.expected_speed_bps) + f" ({r.expected_speed_source})") if r.expected_speed_bps
                      else "", r.neighbor, (f"{r.expected_neighbor} ({r.expected_neighbor_source})"
                                            if r.expected_neighbor else ""))
    console.print(table)
    console.print(f"{len(rows)} uplinks")


def _interface_id(session: Session, device: str, interface: str) -> int:
    from infra_mgr.network import link_views

    found = link_views.interface_id_of(session, device, interface)
    if found is None:
        raise _fail(f"no interface {interface!r} on device {device!r}")
    return found


@uplinks_app.command("set")
def uplinks_set(
    device: Annotated[str, typer.Argument(help="Device host name")],
    interface: Annotated[str, typer.Argument(help="Interface name, e.g. Gi0/1")],
    expected_neighbor: Annotated[str | None, typer.Option("--expected-neighbor", help="Far end's host name")] = None,
    expected_speed: Annotated[str | None, typer.Option("--expected-speed", help="e.g. 1G, 100M, 10G")] = None,
    not_uplink: Annotated[bool, typer.Option("--not-uplink", help="Keep this interface out of the audit")] = False,
) -> None:
    """Set an interface's uplink role and expectations by hand (identification never overrides it)."""
    from infra_mgr.db import write_session
    from infra_mgr.network import link_views
    from infra_mgr.network.audit import fmt_speed
    from infra_mgr.network.uplinks import parse_speed, set_manual

    speed = None
    if expected_speed is not None:
        try:
            speed = parse_speed(expected_speed)
        except ValueError as exc:
            raise _fail(f"--expected-speed: {exc}") from None
    with write_session(_engine()) as session:
        iid = _interface_id(session, device, interface)
        set_manual(session, iid, is_uplink=not not_uplink, expected_neighbor=expected_neighbor,
                   expected_speed_bps=speed, actor=cli_actor())
        session.flush()
        row = link_views.uplink(session, iid)
    if row is not None:
        console.print(f"{row.device} {row.interface}: {'uplink' if row.is_uplink else 'not an uplink'} (manual)"
                      + (f", expected neighbour {row.expected_neighbor}" if row.expected_neighbor else "")
                      + (f", expected speed {fmt_speed(row.expected_speed_bps)}" if row.expected_speed_bps else ""),
                      markup=False, highlight=False)


@uplinks_app.command("clear")
def uplinks_clear(device: Annotated[str, typer.Argument(help="Device host name")],
                  interface: Annotated[str, typer.Argument(help="Interface name")]) -> None:
    """Give an interface back to identification (a person's choice for it is forgotten)."""
    from infra_mgr.db import write_session
    from infra_mgr.network.uplinks import clear_manual

    with write_session(_engine()) as session:
        iid = _interface_id(session, device, interface)
        row = clear_manual(session, iid, actor=cli_actor())
        found = row is not None and row.is_uplink
    console.print(f"{device} {interface}: back to identification"
                  f" ({'identified as an uplink' if found else 'not identified as an uplink'})",
                  markup=False, highlight=False)


@uplinks_app.command("import")
def uplinks_import(file: Annotated[Path, typer.Argument(help="Design file (YAML: uplinks: [...])")]) -> None:
    """Apply a design file: each entry becomes a manual uplink with the plan's expectations."""
    from infra_mgr.db import write_session
    from infra_mgr.network.uplinks import import_plan

    with write_session(_engine()) as session:
        lines = import_plan(session, file, actor=cli_actor())
    for line in lines:
        console.print(f"{file}:{line.line}: {line.action} {line.device} {line.interface}", markup=False,
                      highlight=False)
    console.print(f"{len(lines)} uplinks from the plan")
