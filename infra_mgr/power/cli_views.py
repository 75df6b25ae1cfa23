"""``infra-mgr power status | events | outages | import``: the facilities views on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlmodel import Session

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _engine() -> Engine:
    from infra_mgr.db import ready_engine

    return ready_engine()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def status(as_json: JsonOpt = False) -> None:
    """Every power device: state, key readings, autonomy and data age (stale data is never shown live)."""
    from infra_mgr.power import views

    with Session(_engine()) as s:
        report = views.status(s)
    if as_json:
        print(report.model_dump_json())
        return
    # Fits 80 columns: one flag and one key reading per line, the autonomy in one column.
    table = Table("device", "state", "flags", "key readings", "autonomy h", "age s")
    for d in report.devices:
        shown = d.state if d.live else f"[red]{'stale' if d.status == 'ok' else d.status}[/red]"
        state = f"{shown}\n[dim]{d.kind}[/dim]"
        readings = "\n".join(f"{k}={d.readings[k]}"
                             for k in views.KEY_READINGS.get(d.kind, ()) if k in d.readings)
        hours = "\n".join(f"{what} {_cell(h)}" for what, h in (("batt", d.battery_autonomy_h),
                                                              ("fuel", d.fuel_autonomy_h)) if h is not None)
        table.add_row(d.name, state, "\n".join(d.flags), readings, hours, _cell(d.data_age_s))
    console.print(table)
    p = report.pue
    if p.pue:
        console.print(f"PUE {p.pue} (facility {p.facility_kw} kW / IT {p.it_kw} kW, category {p.category})")


def events(limit: Annotated[int, typer.Option(help="How many")] = 50, as_json: JsonOpt = False) -> None:
    """The newest power events."""
    from infra_mgr.power import views

    with Session(_engine()) as s:
        rows = views.power_events(s, limit)
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in rows], ensure_ascii=False))
        return
    for e in rows:
        console.print(f"{e.time:%Y-%m-%d %H:%M:%S} {e.severity:<8} {e.kind:<24} {e.message}", highlight=False)


def outages(limit: Annotated[int, typer.Option(help="How many")] = 20, as_json: JsonOpt = False) -> None:
    """Outage records, newest first, with their figures."""
    from infra_mgr.power import views

    with Session(_engine()) as s:
        rows = views.outages(s, limit)
    if as_json:
        print(json.dumps([o.model_dump(mode="json") for o in rows], ensure_ascii=False))
        return
    # 80 columns wide: no rules between columns, the start's date over its time.
    table = Table("id", "status", Column("started", no_wrap=True), "to diesel s", "min batt %", "min kin %",
                  "diesel s", "fuel L", Column("ended", no_wrap=True), box=box.SIMPLE_HEAVY, pad_edge=False,
                  title="outages (times in UTC)")
    for o in rows:
        table.add_row(str(o.id), o.status, f"{o.started_at:%Y-%m-%d}\n{o.started_at:%H:%M:%S}",
                      _cell(o.seconds_to_diesel), _cell(o.min_battery_charge), _cell(o.min_kinetic_level),
                      _cell(o.diesel_run_s), _cell(o.fuel_used_l), f"{o.ended_at:%H:%M:%S}" if o.ended_at else "")
    console.print(table)


def import_config(file: Path) -> None:
    """Load power devices, chain nodes, edges and fuel tanks from YAML (matched by name)."""
    from infra_mgr.power.config import import_power_yaml

    with Session(_engine()) as s:
        counts = import_power_yaml(s, file)
        s.commit()
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("events")(events)
    app.command("outages")(outages)
    app.command("import")(import_config)
