"""``infra-mgr power …``: the power commands (mounted by ``infra_mgr/cli.py`` as ``power``).

``probe`` reads one device now from a URL (like NUT's ``upsc``), with no database: the quickest
way to check a UPS, DRUPS, genset or meter before adding it to the inventory, and to see exactly
what the collectors will store. Later commands (status, events, outages) join this same app.

Exit status of ``probe``: 0 when the device was read (even with some problems, e.g. sentinels),
1 for a wrong URL or register map (one line on stderr), 2 when nothing could be read (the JSON or
table is still printed, with the errors).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Annotated

import typer

from infra_mgr.power.readings import PowerReadings

power_app = typer.Typer(help="Power devices: UPS, diesel rotary UPS, generators and meters.",
                        no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@power_app.callback()
def _power() -> None:
    """Power devices: UPS, diesel rotary UPS, generators and meters."""


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(1)


def _print_table(result: PowerReadings) -> None:
    """``upsc``-style: one ``name: value`` per line, problems after."""
    out = sys.stdout
    out.write(f"# {result.source}  kind={result.kind or '?'} vendor={result.vendor or '?'} "
              f"model={result.model or '?'}{'  STALE' if result.stale else ''}\n")
    for name in sorted(result.readings):
        value = result.readings[name]
        out.write(f"{name}: {'' if value is None else value}\n")
    for e in result.errors:
        out.write(f"! {e.kind} ({e.operation}): {e.message}\n")


@power_app.command("probe")
def probe_cmd(url: Annotated[str, typer.Argument(help="snmp://COMMUNITY@HOST:PORT, nut://[USER:PASS@]HOST:PORT/UPS "
                                                      "or modbus://HOST:PORT/UNIT?map=NAME")],
              as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False) -> None:
    """Read one power device now and print its canonical readings (no database)."""
    from infra_mgr.power.collectors.maps import MapError
    from infra_mgr.power.probe import ProbeUrlError, probe

    # pymodbus logs a failed connect at ERROR on stderr; the result's errors already say it
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        result = asyncio.run(probe(url))
    except (ProbeUrlError, MapError) as exc:
        raise _fail(str(exc).splitlines()[0]) from None
    if as_json:
        sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
    else:
        _print_table(result)
    sys.stdout.flush()
    if result.errors and not any(v is not None for v in result.readings.values()):
        raise typer.Exit(2)


def main() -> None:
    """Run the power app on its own (``python -m infra_mgr.power.cli``)."""
    power_app()


if __name__ == "__main__":
    main()
