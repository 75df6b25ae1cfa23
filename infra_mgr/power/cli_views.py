"""``infra-mgr power status | events | outages | import``: the facilities views on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, col, select

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _engine():  # type: ignore[no-untyped-def]
    from infra_mgr.db import ready_engine

    return ready_engine()


def status(as_json: JsonOpt = False) -> None:
    """Every power device: state, key readings, autonomy and data age (stale data is never shown live)."""
    from infra_mgr.power.service import PowerService

    svc = PowerService(_engine())
    devices, pue = svc.status(), svc.pue_now()
    if as_json:
        print(json.dumps({"devices": devices, "pue": pue}, ensure_ascii=False, default=str))
        return
    table = Table("device", "kind", "state", "flags", "key readings", "battery h", "fuel h", "age s")
    for d in devices:
        state = d["state"] if d["live"] else f"[red]{d['status']}[/red]"
        readings = " ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in d["readings"].items())
        table.add_row(d["name"], d["kind"], state, " ".join(d["flags"]), readings,
                      str(d["battery_autonomy_h"] or ""), str(d["fuel_autonomy_h"] or ""), str(d["data_age_s"] or ""))
    console.print(table)
    if pue["pue"]:
        console.print(f"PUE {pue['pue']} (facility {pue['facility_kw']} kW / IT {pue['it_kw']} kW, "
                      f"category {pue['category']})")


def events(limit: Annotated[int, typer.Option(help="How many")] = 50, as_json: JsonOpt = False) -> None:
    """The newest power events."""
    from infra_mgr.events.models import Event, EventRead

    with Session(_engine()) as s:
        rows = s.exec(select(Event).where(col(Event.kind).startswith("power."))
                      .order_by(col(Event.id).desc()).limit(limit)).all()
    if as_json:
        print(json.dumps([EventRead.model_validate(e).model_dump(mode="json") for e in rows], ensure_ascii=False))
        return
    for e in rows:
        console.print(f"{e.time:%Y-%m-%d %H:%M:%S} {e.severity:<8} {e.kind:<24} {e.message}", highlight=False)


def outages(limit: Annotated[int, typer.Option(help="How many")] = 20, as_json: JsonOpt = False) -> None:
    """Outage records, newest first, with their figures."""
    from infra_mgr.power.api import outage_read
    from infra_mgr.power.models import Outage

    with Session(_engine()) as s:
        rows = [outage_read(o) for o in s.exec(select(Outage).order_by(col(Outage.id).desc()).limit(limit)).all()]
    if as_json:
        print(json.dumps([o.model_dump(mode="json") for o in rows], ensure_ascii=False))
        return
    table = Table("id", "status", "started (UTC)", "to diesel s", "min battery %", "min kinetic %", "diesel run s",
                  "fuel L", "ended (UTC)")
    for o in rows:
        table.add_row(str(o.id), o.status, f"{o.started_at:%Y-%m-%d %H:%M:%S}", str(o.seconds_to_diesel or ""),
                      str(o.min_battery_charge or ""), str(o.min_kinetic_level or ""), str(o.diesel_run_s or ""),
                      str(o.fuel_used_l or ""), f"{o.ended_at:%H:%M:%S}" if o.ended_at else "")
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
