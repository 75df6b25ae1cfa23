"""``infra-mgr lab outage start|stop|status|reset``: drive the power lab's mains outage.

The lab's power peers (NUT, Modbus DSE/DRUPS/meters, SNMP UPSs) all compute what they serve from
``<lab>/outage.json`` and the clock (:mod:`infra_mgr.lab.power_scenario`); these commands write that
file. Mounted by the lab CLI with ``lab_app.add_typer(outage_app, name="outage")``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from infra_mgr.lab.power_scenario import (
    Outage,
    Timeline,
    device_readings,
    load_outage,
    phase,
    reset_outage,
    start_outage,
    stop_outage,
)

outage_app = typer.Typer(help="Fail and restore the lab data centre's mains (the power peers follow).",
                         no_args_is_help=True)

LabDirOption = Annotated[
    Path | None,
    typer.Option("--lab-dir", help="Lab directory (state, logs, data). Default: lab/ in the data directory "
                 "(INFRA_MGR_DATA_DIR, else ./var)"),
]


def _lab_dir(lab_dir: Path | None) -> Path:
    if lab_dir is not None:
        return lab_dir
    from infra_mgr.config import get_settings

    return get_settings().lab_dir


def _stamp(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def summary(outage: Outage, now: float) -> dict[str, object]:
    """The outage and the plant's key readings at ``now`` (what ``status`` prints)."""
    drups = device_readings("drups", outage, now)
    genset = device_readings("dse", outage, now)
    ups = device_readings("ups:dc-ups1", outage, now)
    facility = device_readings("meter-facility", outage, now)
    it = device_readings("meter-it", outage, now)
    timeline = Timeline.of(outage)
    return {
        "phase": phase(outage, now),
        "mains": "failed" if outage.active(now) else "ok",
        "started_at": _stamp(outage.started_at),
        "ended_at": _stamp(outage.ended_at),
        "seconds_since_start": round(now - timeline.t0, 1) if timeline else None,
        "fuel_scale": outage.fuel_scale,
        "drups": {k: drups[k] for k in ("drups.mode", "engine.state", "engine.rpm", "kinetic.level", "fuel.day.level")},
        "genset": {k: genset[k] for k in ("engine.state", "engine.rpm", "output.power", "fuel.level")},
        "dc-ups1": {k: ups[k] for k in ("ups.status", "battery.charge", "battery.runtime", "input.voltage")},
        "facility_kw": facility["meter.power"],
        "it_kw": it["meter.power"],
    }


def _print(data: dict[str, object], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    for key, value in data.items():
        if isinstance(value, dict):
            shown = ", ".join(f"{k}={round(v, 1) if isinstance(v, float) else v}" for k, v in value.items())
            typer.echo(f"{key}: {shown}")
        elif value is not None:
            typer.echo(f"{key}: {round(value, 1) if isinstance(value, float) else value}")


JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON")]


@outage_app.command()
def start(
    fuel_scale: Annotated[
        float, typer.Option("--fuel-scale", min=0.001, help="Burn fuel this many times faster (1 = real)")
    ] = 1.0,
    lab_dir: LabDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mains fails now: the DRUPS goes to its kinetic store then diesel, the generator starts,
    the static UPSs go on battery."""
    now = time.time()
    outage = start_outage(_lab_dir(lab_dir), now=now, fuel_scale=fuel_scale)
    _print(summary(outage, now), as_json)


@outage_app.command()
def stop(lab_dir: LabDirOption = None, as_json: JsonOption = False) -> None:
    """Mains returns now: retransfer after the wait, engines cool down and stop."""
    now = time.time()
    outage = stop_outage(_lab_dir(lab_dir), now=now)
    _print(summary(outage, now), as_json)


@outage_app.command()
def status(lab_dir: LabDirOption = None, as_json: JsonOption = False) -> None:
    """Where the plant is in the outage story, with its key readings."""
    now = time.time()
    _print(summary(load_outage(_lab_dir(lab_dir)), now), as_json)


@outage_app.command()
def reset(lab_dir: LabDirOption = None) -> None:
    """Forget all outages: the plant is at once as if mains had never failed."""
    reset_outage(_lab_dir(lab_dir))
    typer.echo("outage state cleared")
