"""Modbus TCP collector: reads a device through a register map (DSE GenComm, DRUPS, meters).

The map is data (:mod:`infra_mgr.power.collectors.maps`); this module only plans the reads (few
``read_holding_registers`` of at most 125 registers), decodes and reports. Controllers on a
site LAN are slow and few-connection devices, so it opens one connection, reads the blocks one
after another and closes. A block the device refuses with "illegal data address" (not every model
implements every register) is read again register by register so one missing reading does not
hide the others; any other refusal of the first block (device failure, gateway target absent: a
wrong unit id) and the first timeout end the read with one problem, because every following block
would fail, or wait, the same way.

pymodbus 3.16: clients take ``device_id=`` (not ``slave=``), ``connect()`` returns ``False``
instead of raising, and decoding is ``convert_from_registers`` (see ``maps.typed_value``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from infra_mgr.power.collectors.maps import Block, Register, RegisterMap, decode, get_map, plan_blocks
from infra_mgr.power.readings import PowerProblem, PowerReadings, Value

DEFAULT_PORT = 502
# Modbus exception codes (function code 3) worth naming in a problem
_EXCEPTION_CODES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                    4: "device failure", 6: "device busy", 10: "gateway path unavailable",
                    11: "gateway target did not respond"}
ILLEGAL_ADDRESS = 2
# engine speed above which an engine without a state register is taken to be running
RUNNING_RPM = 300


class _Timeout(Exception):
    pass


class _Refused(Exception):
    pass


class _ExceptionResponse(Exception):
    """The device answered, but not with the registers asked for (``code``: Modbus exception code,
    0 when the answer was malformed)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


def modbus_source(host: str, port: int, unit: int, map_name: str) -> str:
    """The canonical URL of a Modbus read (no secrets exist in Modbus TCP)."""
    shown = f"[{host}]" if ":" in host else host
    return f"modbus://{shown}:{port}/{unit}?map={map_name}"


async def _classify_connect_failure(host: str, port: int, timeout_s: float) -> tuple[str, str]:
    """pymodbus' ``connect()`` only says False: one plain TCP attempt tells refused from silent."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return "timeout", f"no answer from {host}:{port} within {timeout_s:g} s"
    except ConnectionRefusedError:
        return "refused", f"connection refused by {host}:{port}"
    except OSError as exc:
        return "error", f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    writer.close()
    return "error", f"{host}:{port} accepts TCP but the Modbus client could not connect"


async def _read(client: object, start: int, count: int, unit: int, timeout_s: float, function: str) -> list[int]:
    from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

    call = client.read_input_registers if function == "input" else client.read_holding_registers  # type: ignore[attr-defined]
    try:
        response = await asyncio.wait_for(call(start, count=count, device_id=unit), timeout_s + 0.5)
    except (TimeoutError, ModbusIOException) as exc:
        raise _Timeout(str(exc) or "no answer") from None
    except ConnectionException as exc:
        raise _Refused(str(exc) or "connection lost") from None
    except ModbusException as exc:
        raise _ExceptionResponse(f"bad answer: {exc}") from None
    if response.isError():
        code = int(getattr(response, "exception_code", 0) or 0)
        raise _ExceptionResponse(f"Modbus exception {code}: {_EXCEPTION_CODES.get(code, 'unknown')}", code)
    registers = list(getattr(response, "registers", []) or [])
    if len(registers) < count:
        raise _ExceptionResponse(f"answer has {len(registers)} register(s), {count} asked")
    return registers[:count]


@dataclass
class _Read:
    """One read in progress: the map, where results go, and the identity values seen."""

    client: object
    regmap: RegisterMap
    unit: int
    timeout_s: float
    result: PowerReadings
    identity_names: frozenset[str]
    identity: dict[str, Value] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.result.source

    def store(self, reg: Register, words: Sequence[int]) -> None:
        decoded = decode(reg, words, self.regmap.word_order)
        if reg.name in self.identity_names:  # what the device is, not a reading: no problems
            self.identity[reg.name] = decoded.value
            return
        self.result.readings[reg.name] = decoded.value
        if decoded.problem:
            kind, message = decoded.problem
            self.result.errors.append(PowerProblem(self.source, f"read {reg.address}", kind, message))

    def failed(self, reg: Register, operation: str, message: str) -> None:
        if reg.name in self.identity_names:
            return
        self.result.readings[reg.name] = None
        self.result.errors.append(PowerProblem(self.source, operation, "error",
                                               f"register {reg.address} ({reg.name}): {message}"))

    def problem(self, operation: str, kind: str, message: str) -> None:
        self.result.errors.append(PowerProblem(self.source, operation, kind, message))

    async def read(self, start: int, count: int) -> list[int]:
        return await _read(self.client, start, count, self.unit, self.timeout_s, self.regmap.function)


def _infer(readings: dict[str, Value], regmap: RegisterMap) -> None:
    """Older DSE models lack the engine-state register (1408): infer running from speed."""
    if regmap.kind == "genset" and readings.get("engine.state") is None:
        rpm = readings.get("engine.rpm")
        if isinstance(rpm, int | float):
            readings["engine.state"] = "running" if rpm >= RUNNING_RPM else "stopped"


async def read_modbus(host: str, port: int = DEFAULT_PORT, unit: int = 1, *, register_map: RegisterMap | str,
                      timeout_s: float = 2.0, source: str | None = None) -> PowerReadings:
    """Read every register of ``register_map`` (a map or its name) from one Modbus TCP device.

    Never raises for device trouble: refused, timeouts, exception responses and sentinels become
    problems on the result. An unknown or invalid map raises :class:`MapError` (caller's mistake).
    """
    regmap = get_map(register_map) if isinstance(register_map, str) else register_map
    src = source or modbus_source(host, port, unit, regmap.name)
    result = PowerReadings(source=src, kind=regmap.kind, vendor=regmap.vendor, model=regmap.model)  # type: ignore[arg-type]
    blocks = plan_blocks([*regmap.identity, *regmap.registers], max_gap=regmap.max_gap)

    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient(host, port=port, timeout=timeout_s, retries=0, reconnect_delay=0)
    state = _Read(client, regmap, unit, timeout_s, result, frozenset(r.name for r in regmap.identity))
    try:
        try:
            connected = await asyncio.wait_for(client.connect(), timeout_s + 0.5)
        except (TimeoutError, OSError):
            connected = False
        if not connected:
            kind, message = await _classify_connect_failure(host, port, timeout_s)
            state.problem("connect", kind, message)
            return result
        await _read_blocks(state, blocks)
    finally:
        client.close()
    _infer(result.readings, regmap)
    vendor, model = state.identity.get("device.mfr"), state.identity.get("device.model")
    result.vendor = str(vendor) if vendor not in (None, "") else result.vendor
    result.model = str(model) if model not in (None, "") else result.model
    return result


async def _read_blocks(state: _Read, blocks: list[Block]) -> None:
    """Read block after block. Only "illegal data address" (a register this model lacks) is worth
    retrying register by register; any other exception on the very first block (device failure,
    gateway target absent: a wrong unit id) is reported once and ends the read."""
    for index, block in enumerate(blocks):
        operation = f"read {block.start}+{block.count}"
        try:
            words = await state.read(block.start, block.count)
        except _Timeout as exc:
            state.problem(operation, "timeout", f"unit {state.unit} did not answer: {exc}")
            return
        except _Refused as exc:
            state.problem(operation, "refused", f"connection lost: {exc}")
            return
        except _ExceptionResponse as exc:
            if index == 0 and exc.code not in (0, ILLEGAL_ADDRESS):
                state.problem(operation, "error", f"unit {state.unit}: {exc}")
                return
            if exc.code == ILLEGAL_ADDRESS and len(block.registers) > 1:
                if not await _read_one_by_one(state, block):
                    return
                continue
            for reg in block.registers:
                state.failed(reg, operation, str(exc))
            continue
        for reg in block.registers:
            offset = reg.address - block.start
            state.store(reg, words[offset:offset + reg.width])


async def _read_one_by_one(state: _Read, block: Block) -> bool:
    """A refused block, register by register; False when the device stopped answering."""
    for reg in block.registers:
        operation = f"read {reg.address}+{reg.width}"
        try:
            words = await state.read(reg.address, reg.width)
        except _Timeout as exc:
            state.problem(operation, "timeout", f"unit {state.unit} did not answer: {exc}")
            return False
        except _Refused as exc:
            state.problem(operation, "refused", f"connection lost: {exc}")
            return False
        except _ExceptionResponse as exc:
            state.failed(reg, operation, str(exc))
            continue
        state.store(reg, words)
    return True
