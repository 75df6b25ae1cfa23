"""``infra-mgr power status | events | outages | import``: the facilities views on the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Column, Table
from sqlalchemy import Engine
from sqlmodel import Session

if TYPE_CHECKING:  # the CLI imports the power models only when a command runs
    from infra_mgr.power.models import OutageRead
    from infra_mgr.power.view_models import PowerStatus

console = Console()
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def _engine() -> Engine:
    from infra_mgr.db import ready_engine

    return ready_engine()


def _duration(seconds: float | None) -> str:
    """8.4 s, 2 min 05 s, 1 h 12 min, 3 d 4 h, or 5,432 h for an engine's lifetime (as the page)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    total = int(round(seconds))
    if total < 3600:
        return f"{total // 60} min {total % 60:02d} s"
    if total < 86400:
        return f"{total // 3600} h {total % 3600 // 60:02d} min"
    if total < 30 * 86400:
        return f"{total // 86400} d {total % 86400 // 3600} h"
    return f"{total / 3600:,.0f} h"


def fmt_value(value: object, unit: str = "") -> str:
    """A reading for people: its unit, and no more digits than a reader can use (12,515,991 kWh,
    298.4 kW, 0.42 h, 230 V); seconds as a duration; text as it is; nothing as "—"."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if unit == "s":
        return _duration(float(value))
    size = abs(float(value))
    text = (f"{value:,.0f}" if size >= 1000 else f"{value:.1f}" if size >= 10 else f"{value:.2f}")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if unit in ("", "text", "count"):
        return text
    return f"{text} {unit}" if unit != "%" else f"{text} %"


def reading_label(name: str) -> str:
    """A reading's name for people, the one the page's readings chart uses (``reading.<name>`` in
    web/i18n), e.g. "Mode" for ``drups.mode``; the canonical name where there is none."""
    from infra_mgr.web.i18n import Translator

    t = Translator("en")
    return t(f"reading.{name}") if t.has(f"reading.{name}") else name


def reading_text(name: str, value: object, unit: str) -> str:
    """A reading's value as the page's card shows it: an engine state by its label ("On load"),
    other text as it is, numbers through :func:`fmt_value`."""
    from infra_mgr.web.i18n import Translator

    t = Translator("en")
    if name == "engine.state" and isinstance(value, str) and t.has(f"engine.{value}"):
        return t(f"engine.{value}")
    return fmt_value(value, unit)


def _wrap(label: str, parts: list[str], width: int) -> list[str]:
    """``label`` then the parts joined by " · ", wrapped at ``width`` under an indent (never cut)."""
    indent = 2 + 10
    lines, line = [], f"  {label:<9} "
    for i, part in enumerate(parts):
        piece = part if i == 0 else f" · {part}"
        if len(line) + len(piece) > width and line.strip() != label:
            lines.append(line.rstrip())
            line, piece = " " * indent, part
        line += piece
    lines.append(line.rstrip())
    return lines


def status_lines(report: PowerStatus, width: int = 80) -> list[str]:
    """``power status`` as blocks, one per device, that fit ``width`` columns whatever the
    readings: the device, its state and data age; its flags; power and load (the page's figures);
    its key readings with units; its autonomy. Then PUE and what it adds up."""
    from infra_mgr.power import views
    from infra_mgr.power.readings import CANONICAL

    out: list[str] = []
    for d in report.devices:
        if d.live:
            state, age = d.state, f"data {_duration(d.data_age_s)} old"
        else:
            state = "stale" if d.status == "ok" else d.status
            age = "never read" if d.last_ok is None else f"no data for {_duration(d.data_age_s)}"
        out.append(f"{d.name}  {d.kind} · {state} · {age}")
        if d.flags:
            out += _wrap("flags", [f.replace("_", " ") for f in d.flags], width)
        figures = [f"power {fmt_value(d.kw, 'kW')}"] if d.kw is not None else []
        figures += [f"load {fmt_value(d.load_pct, '%')}"] if d.load_pct is not None else []
        if figures:
            out += _wrap("output", figures, width)
        readings = [f"{reading_label(k)}: {reading_text(k, d.readings[k], CANONICAL.get(k, ('', ''))[0])}"
                    for k in views.KEY_READINGS.get(d.kind, ()) if k in d.readings]
        if readings:
            out += _wrap("readings", readings, width)
        autonomy = [f"{what} {fmt_value(h, 'h')}" for what, h in (("battery", d.battery_autonomy_h),
                                                                  ("fuel", d.fuel_autonomy_h)) if h is not None]
        if autonomy:
            out += _wrap("autonomy", autonomy, width)
    p = report.pue
    if p.pue:
        out.append(f"PUE {p.pue:.2f}: facility {fmt_value(p.facility_kw, 'kW')} ÷ IT {fmt_value(p.it_kw, 'kW')}"
                   f" (category {p.category})")
        if p.generation_kw is not None:  # facility = grid intake + on-site generation
            out.append(f"  facility = grid {fmt_value(p.grid_kw or 0.0, 'kW')}"
                       f" + on-site generation {fmt_value(p.generation_kw, 'kW')}")
    return out


def status(as_json: JsonOpt = False) -> None:
    """Every power device: state, power and load, key readings with units, autonomy and data age
    (stale data is never shown live); one block per device, so it fits an 80-column terminal."""
    from infra_mgr.power import views

    with Session(_engine()) as s:
        report = views.status(s)
    if as_json:
        print(report.model_dump_json())
        return
    for line in status_lines(report, console.width):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


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
    console.print(outages_table(rows))


def outages_table(rows: list[OutageRead]) -> Table:
    """Outage records as a table that fits 80 columns: durations as durations (37 s, 21 min 00 s),
    levels in %, fuel in litres; "—" where a figure was not recorded."""
    cols = ("id", "started (UTC)", "to diesel", "min batt", "min kin", "diesel ran", "fuel", "ended")
    table = Table(*(Column(c, no_wrap=True) for c in cols), box=box.SIMPLE_HEAVY, pad_edge=False,
                  collapse_padding=True)
    for o in rows:
        table.add_row(str(o.id), f"{o.started_at:%Y-%m-%d}\n{o.started_at:%H:%M:%S}",
                      _duration(o.seconds_to_diesel), fmt_value(o.min_battery_charge, "%"),
                      fmt_value(o.min_kinetic_level, "%"), _duration(o.diesel_run_s), fmt_value(o.fuel_used_l, "L"),
                      f"{o.ended_at:%H:%M:%S}" if o.ended_at else "ongoing")
    return table


def import_config(file: Path) -> None:
    """Load power devices, chain nodes, edges and fuel tanks from YAML (matched by name)."""
    from infra_mgr.db import writer
    from infra_mgr.power.config import import_power_yaml

    with Session(writer(_engine())) as s:
        counts = import_power_yaml(s, file)
        s.commit()
    console.print(", ".join(f"{v} {k}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("events")(events)
    app.command("outages")(outages)
    app.command("import")(import_config)
