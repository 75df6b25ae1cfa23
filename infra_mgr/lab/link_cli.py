"""``infra-mgr lab link``: change the condition of a lab city link, or an agent's loss, at run time.

    infra-mgr lab link jed-b05-rtr:Gi0/0/0 --set down       # both ends oper down, no LLDP across it
    infra-mgr lab link jed-b05-rtr:Gi0/0/0 --set speed=100M # both ends negotiate 100 Mb/s
    infra-mgr lab link jed-b05-rtr:Gi0/0/0 --set healthy    # up, daily traffic, no errors, design speed
    infra-mgr lab link jed-b41-rtr --loss 0                 # the agent stops dropping requests
    infra-mgr lab link --reset [HOST:IFNAME | HOST]         # back to the city as built
    infra-mgr lab link --list                               # what is not healthy now, and why

Settings: ``down``, ``up``, ``flapping`` and ``speed=<N>M|<N>G`` act on the cable (both ends);
``saturated`` puts the busy direction into the named end; ``errors`` makes the named end count
errors (2 % of its packets). The running city serves a change within about a second, and its
counters never go back across it (``city_links``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra_mgr.lab.city_links import LinkControl
from infra_mgr.lab.supervisor import Lab, LabError


def city_root(lab_dir: Path) -> Path:
    """The running city's directory under the lab."""
    record = Lab(lab_dir).record("city")
    if record is None:
        raise LabError("the lab city is not running: infra-mgr lab up --only city")
    return Path(record.info["expected"]).parent


def link(
    target: Annotated[str | None, typer.Argument(help="HOST:IFNAME (a cabled port) or HOST (for --loss)")] = None,
    setting: Annotated[
        str | None,
        typer.Option("--set", help="down | up | flapping | errors | saturated | healthy | speed=<N>M"),
    ] = None,
    loss: Annotated[float | None, typer.Option("--loss", help="percent of SNMP requests HOST's agent drops")] = None,
    reset: Annotated[bool, typer.Option("--reset", help="back to the city as built (TARGET, or everything)")] = False,
    list_: Annotated[bool, typer.Option("--list", help="show the conditions in force")] = False,
    lab_dir: Annotated[Path | None, typer.Option(
        "--lab-dir", help="Lab directory. Default: lab/ in the data directory (INFRA_MGR_DATA_DIR, else ./var)",
    )] = None,
) -> None:
    """Change a lab city link's condition or an agent's loss at run time; --list shows them."""
    from infra_mgr.lab.cli import _one_line_errors, default_lab_dir

    with _one_line_errors():
        chosen = sum(x for x in (setting is not None, loss is not None, reset, list_))
        if chosen != 1:
            raise LabError("give exactly one of --set, --loss, --reset, --list")
        control = LinkControl(city_root(lab_dir or default_lab_dir()))
        if setting is not None or loss is not None:
            if not target:
                raise LabError("name the port (HOST:IFNAME) or, for --loss, the device (HOST)")
            if setting is not None:
                control.set_link(target, setting)
                typer.echo(f"{target}: {setting}")
            else:
                if ":" in target:
                    raise LabError("--loss acts on a device: give HOST, not HOST:IFNAME")
                control.set_loss(target, float(loss or 0))
                typer.echo(f"{target}: loss {loss:g} %")
        elif reset:
            control.reset(target)
            typer.echo(f"{target or 'every link and agent'}: as built")
        rows = control.listing() if list_ else []
        for row in rows:
            peer = f" <-> {row['peer']}" if row["peer"] else ""
            typer.echo(f"{row['target']}{peer}  {' '.join(row['conditions'])}  ({row['origin']})")
