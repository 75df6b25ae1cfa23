"""Modbus TCP peers of the power lab: a DSE generator controller, a DRUPS and the power meters.

Run as ``python -m infra_mgr.lab.modbus_sim --host H --port P --device dse|drups|meter --lab-dir D``.
The register layout comes from the same YAML maps the power collector reads
(``infra_mgr/power/maps/*.yaml``); the values are computed from the lab's outage scenario
(:mod:`infra_mgr.lab.power_scenario`) at every request, through pymodbus 3.16's simulator API:
a :class:`~pymodbus.simulator.SimDevice` whose holding registers are pre-filled with the
"unimplemented" sentinel and whose ``action`` callback (called on every request, with the block's
registers to modify in place) writes the scenario's values encoded as the map says.

Devices and unit ids (``--unit``, default 1):

* ``dse``: pages 3-7 (registers 768-2047) of a DSE GenComm controller; registers the map does not
  name read 0xFFFF ("unimplemented") and the oil-temperature sender is broken, so register 1026
  reads 0x7FFE ("over range").
* ``drups``: registers 0-31 of our DRUPS map.
* ``meter``: two meters behind one gateway: unit ``U`` is the facility (utility intake) meter and
  unit ``U+1`` the IT meter (UPS outputs).

Measurement registers are read-only (a write is answered with ILLEGAL ADDRESS, as a controller
does). An unknown unit id is answered with exception 4 (SERVER DEVICE FAILURE) and pymodbus logs a
KeyError: its simulator falls back to a unit 0 we do not define.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra_mgr.lab.power_scenario import OutageReader, Readings, device_readings

MAPS_DIR = Path(__file__).resolve().parents[1] / "power" / "maps"

_TYPE_BITS = {"u16": (16, False), "s16": (16, True), "enum": (16, False), "u32": (32, False), "s32": (32, True)}
_UNIMPLEMENTED = {"u16": 0xFFFF, "enum": 0xFFFF, "s16": 0x7FFF, "u32": 0xFFFFFFFF, "s32": 0x7FFFFFFF}


@dataclass(frozen=True)
class Register:
    """One reading of a register map (see ``infra_mgr/power/maps/dse-gencomm.yaml`` for the format)."""

    name: str
    address: int
    type: str
    scale: float = 1.0
    unit: str = ""
    sentinels: dict[int, str] = field(default_factory=dict)
    enum: dict[int, str] = field(default_factory=dict)

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value takes."""
        return _TYPE_BITS[self.type][0] // 16

    def sentinel(self, meaning: str) -> int:
        """The raw value that means ``meaning`` (``unimplemented``, ``over_range`` …)."""
        for raw, what in self.sentinels.items():
            if what == meaning:
                return raw
        if meaning == "unimplemented":
            return _UNIMPLEMENTED[self.type]
        raise KeyError(f"{self.name}: no {meaning!r} sentinel in the map")

    def raw(self, value: float | int | str | None) -> int:
        """The raw integer for a reading in canonical units (None: the "unimplemented" sentinel;
        a value the type cannot hold: the over/under range sentinel)."""
        if value is None:
            return self.sentinel("unimplemented")
        if self.type == "enum":
            for raw, text in self.enum.items():
                if text == value:
                    return raw
            raise ValueError(f"{self.name}: {value!r} is not in the map's enum")
        if isinstance(value, str):
            raise TypeError(f"{self.name}: {value!r} is not a number")
        bits, signed = _TYPE_BITS[self.type]
        raw = math.floor(value / self.scale + 0.5)
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        reserved = [r for r in self.sentinels if r >= 0]
        top = min([high, *[r - 1 for r in reserved if r > high - 16]])  # stay below the sentinel band
        if raw > top:
            return self.sentinel("over_range") if "over_range" in self.sentinels.values() else top
        if raw < low:
            return self.sentinel("under_range") if "under_range" in self.sentinels.values() else low
        return raw

    def encode(self, raw: int) -> list[int]:
        """A raw integer as registers (two's complement, high word first)."""
        bits, _ = _TYPE_BITS[self.type]
        unsigned = raw & ((1 << bits) - 1)
        if bits == 16:
            return [unsigned]
        return [unsigned >> 16, unsigned & 0xFFFF]


@dataclass(frozen=True)
class RegisterMap:
    """A register map file: its name, device kind and readings."""

    name: str
    kind: str
    description: str
    registers: list[Register]
    identity: list[Register]
    word_order: str = "big"


def _register(entry: dict[str, Any]) -> Register:
    return Register(
        name=str(entry["name"]),
        address=int(entry["address"]),
        type=str(entry["type"]),
        scale=float(entry.get("scale", 1)),
        unit=str(entry.get("unit", "")),
        sentinels={int(k): str(v) for k, v in (entry.get("sentinels") or {}).items()},
        enum={int(k): str(v) for k, v in (entry.get("enum") or {}).items()},
    )


def load_register_map(name_or_path: str | Path) -> RegisterMap:
    """Load ``infra_mgr/power/maps/<name>.yaml`` (or a path to a map file)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MAPS_DIR / f"{name_or_path}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    registers = [_register(e) for e in data.get("registers", [])]
    for reg in registers:
        if reg.type not in _TYPE_BITS:
            raise ValueError(f"{path}: {reg.name}: unknown type {reg.type!r}")
    return RegisterMap(
        name=str(data["name"]),
        kind=str(data.get("kind", "")),
        description=str(data.get("description", "")),
        registers=registers,
        identity=[_register(e) for e in data.get("identity", []) or []],
        word_order=str(data.get("word_order", "big")),
    )


# --- the devices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimUnit:
    """One Modbus unit of a simulated device: its map, where its register block lives, what it
    says about itself, and which scenario device feeds it."""

    unit: int
    map_name: str
    scenario_device: str
    block: tuple[int, int]  # first register, count
    identity: dict[str, int] = field(default_factory=dict)  # identity register name -> raw value
    forced: dict[str, str] = field(default_factory=dict)  # reading name -> sentinel meaning


DSE_IDENTITY = {"device.mfr": 1, "device.model": 32832, "device.serial": 1_862_004_417}


def device_units(device: str, unit: int = 1) -> list[SimUnit]:
    """The units a ``--device`` serves."""
    if device == "dse":
        return [
            SimUnit(unit, "dse-gencomm", "dse", (768, 1280), DSE_IDENTITY, {"engine.oil.temperature": "over_range"})
        ]
    if device == "drups":
        return [SimUnit(unit, "drups-eurodiesel", "drups", (0, 32))]
    if device == "meter":
        return [
            SimUnit(unit, "power-meter", "meter-facility", (0, 16)),
            SimUnit(unit + 1, "power-meter", "meter-it", (0, 16)),
        ]
    raise ValueError(f"unknown device {device!r} (dse | drups | meter)")


def register_values(sim: SimUnit, regmap: RegisterMap, readings: Readings) -> dict[int, int]:
    """Address -> 16-bit register value of every register the map (and identity) defines."""
    values: dict[int, int] = {}
    for reg in regmap.identity:
        if reg.name in sim.identity:
            for i, word in enumerate(reg.encode(sim.identity[reg.name])):
                values[reg.address + i] = word
    for reg in regmap.registers:
        forced = sim.forced.get(reg.name)
        raw = reg.sentinel(forced) if forced else reg.raw(readings.get(reg.name))
        for i, word in enumerate(reg.encode(raw)):
            values[reg.address + i] = word
    return values


def make_action(
    sim: SimUnit, regmap: RegisterMap, lab_dir: Path, clock: Callable[[], float] = time.time
) -> Callable[..., Any]:
    """The SimDevice ``action``: on every request, fill the requested registers from the scenario."""
    reader = OutageReader(lab_dir)

    async def action(
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> None:
        if set_values is not None:
            return None
        values = register_values(sim, regmap, device_readings(sim.scenario_device, reader.get(), clock()))
        for addr in range(address, address + count):
            if addr in values:
                current_registers[addr - start_address] = values[addr]
        return None

    return action


def build_devices(device: str, lab_dir: Path, unit: int = 1) -> list[Any]:
    """pymodbus ``SimDevice``s for ``device``, their registers pre-filled with 0xFFFF."""
    from pymodbus.simulator import DataType, SimData, SimDevice

    devices = []
    for sim in device_units(device, unit):
        regmap = load_register_map(sim.map_name)
        first, count = sim.block
        block = SimData(first, count=count, values=0xFFFF, datatype=DataType.REGISTERS, readonly=True)
        devices.append(SimDevice(id=sim.unit, simdata=[block], action=make_action(sim, regmap, lab_dir)))
    return devices


async def serve(host: str, port: int, device: str, lab_dir: Path, unit: int = 1) -> None:
    """Serve ``device`` on host:port until cancelled."""
    from pymodbus.server import ModbusTcpServer

    server = ModbusTcpServer(build_devices(device, lab_dir, unit), address=(host, port))
    await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", choices=("dse", "drups", "meter"), required=True)
    parser.add_argument("--lab-dir", type=Path, required=True, help="lab directory holding outage.json")
    parser.add_argument("--unit", type=int, default=1, help="Modbus unit id (meter: facility U, IT U+1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.host, args.port, args.device, args.lab_dir.absolute(), args.unit))


if __name__ == "__main__":
    main()
