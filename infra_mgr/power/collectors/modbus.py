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
instead of raising; values are decoded as its ``convert_from_registers`` does (see ``maps.typed_value``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from infra_mgr.power.collectors.base import ProbeUrlError, host_port, query_params, redact_url, timeout_param
from infra_mgr.power.collectors.maps import (
    Block,
    MapError,
    Register,
    RegisterMap,
    available_maps,
    decode,
    get_map,
    map_at,
    plan_blocks,
)
from infra_mgr.power.readings import PowerProblem, PowerReadings, Value

if TYPE_CHECKING:  # pymodbus is imported when a device is read, not with this module
    from pymodbus.client import AsyncModbusTcpClient

DEFAULT_PORT = 502
# Modbus exception codes (function code 3) worth naming in a problem
_EXCEPTION_CODES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                    4: "device failure", 6: "device busy", 10: "gateway path unavailable",
                    11: "gateway target did not respond"}
ILLEGAL_ADDRESS = 2
# A kept connection tries reading across unused registers this far apart (fewer requests: a DSE
# map's ten requests a read become five); a device that refuses such a read is read by the map's blocks.
WIDE_GAP = 32
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


async def _read(client: AsyncModbusTcpClient, start: int, count: int, unit: int, timeout_s: float,
                function: str) -> list[int]:
    from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

    call = client.read_input_registers if function == "input" else client.read_holding_registers
    try:
        async with asyncio.timeout(timeout_s + 0.5):  # pymodbus' own timeout should come first
            response = await call(start, count=count, device_id=unit)
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

    client: AsyncModbusTcpClient
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

    def store_block(self, block: Block, words: Sequence[int]) -> None:
        for reg in block.registers:
            offset = reg.address - block.start
            self.store(reg, words[offset:offset + reg.width])

    def lost(self, operation: str, exc: Exception) -> None:
        """The device stopped answering (timeout) or the connection went: the read ends here."""
        if isinstance(exc, _Timeout):
            self.problem(operation, "timeout", f"unit {self.unit} did not answer: {exc}")
        else:
            self.problem(operation, "refused", f"connection lost: {exc}")

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


class ModbusSession:
    """Reads of one Modbus TCP device over a connection kept open between them.

    The poller reads every second; building a pymodbus client and connecting each time cost more
    than the reads. The register map is resolved once (a map given by name is re-loaded only when
    its file changes: one ``stat`` per read, no directory listing) and its blocks planned once.
    Identity registers (maker, model) are read on the first read of each connection only. A
    connection that was lost since the last read is replaced within the same read; one that timed
    out is closed (a late answer must not be taken for the next request's) and reopened next time.
    """

    def __init__(self, host: str, port: int = DEFAULT_PORT, unit: int = 1, *, register_map: RegisterMap | str,
                 timeout_s: float = 2.0, source: str | None = None) -> None:
        self.host, self.port, self.unit, self.timeout_s = host, port, unit, timeout_s
        self._map_path: Path | None = None
        if isinstance(register_map, str):
            regmap = get_map(register_map)  # unknown or invalid: the caller's mistake, raised now
            self._map_path = regmap.path
        else:
            regmap = register_map
        self._plan(regmap)
        self.source = source or modbus_source(host, port, unit, regmap.name)
        self.connects = 0  # connections opened so far (what the tests count)
        self._client: AsyncModbusTcpClient | None = None
        self._identity: dict[str, Value] = {}

    def _plan(self, regmap: RegisterMap) -> None:
        self.regmap = regmap
        self._blocks = plan_blocks([*regmap.identity, *regmap.registers], max_gap=regmap.max_gap)
        self._reading_blocks = plan_blocks(list(regmap.registers), max_gap=regmap.max_gap)
        wide = plan_blocks(list(regmap.registers), max_gap=max(WIDE_GAP, regmap.max_gap))
        self._wide_blocks = wide if len(wide) < len(self._reading_blocks) else None
        self._wide_refused = False

    def _current_map(self) -> RegisterMap:
        """The map, re-loaded when the operator edited its file (cached by modification time)."""
        if self._map_path is not None:
            try:
                regmap = map_at(self._map_path)
            except MapError:
                regmap = self.regmap  # a broken edit: keep reading with the last good map
            if regmap is not self.regmap:
                self._plan(regmap)
                self._identity = {}
        return self.regmap

    @property
    def connected(self) -> bool:
        return self._client is not None and bool(self._client.connected)

    async def _connect(self) -> tuple[str, str] | None:
        """Open a new connection; (kind, message) of the problem when it cannot be opened."""
        from pymodbus.client import AsyncModbusTcpClient

        self._drop()
        client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0, reconnect_delay=0)
        self.connects += 1
        self._identity = {}
        try:
            async with asyncio.timeout(self.timeout_s + 0.5):
                connected = await client.connect()
        except (TimeoutError, OSError):
            connected = False
        if not connected:
            client.close()
            return await _classify_connect_failure(self.host, self.port, self.timeout_s)
        self._client = client
        return None

    async def read(self) -> PowerReadings:
        """Every register of the map; never raises for device trouble."""
        regmap = self._current_map()
        reused = self.connected
        if not reused:
            failure = await self._connect()
            if failure:
                return self._result(regmap, problem=("connect", *failure))
        result, state = await self._read_once(regmap)
        if reused and any(p.kind == "refused" for p in result.errors):
            # the kept connection was closed under us (device restarted): once more on a new one
            failure = await self._connect()
            if failure:
                return self._result(regmap, problem=("connect", *failure))
            result, state = await self._read_once(regmap)
        if any(p.kind in ("timeout", "refused") for p in result.errors):
            self._drop()
        _infer(result.readings, regmap)
        vendor, model = state.identity.get("device.mfr"), state.identity.get("device.model")
        result.vendor = str(vendor) if vendor not in (None, "") else result.vendor
        result.model = str(model) if model not in (None, "") else result.model
        return result

    def _result(self, regmap: RegisterMap, problem: tuple[str, str, str] | None = None) -> PowerReadings:
        result = PowerReadings(source=self.source, kind=regmap.kind, vendor=regmap.vendor,
                               model=regmap.model)
        if problem:
            result.errors.append(PowerProblem(self.source, *problem))
        return result

    async def _read_once(self, regmap: RegisterMap) -> tuple[PowerReadings, _Read]:
        assert self._client is not None, "read() connects before reading"
        result = self._result(regmap)
        state = _Read(self._client, regmap, self.unit, self.timeout_s, result,
                      frozenset(r.name for r in regmap.identity), self._identity)
        # identity once per connection: it says what the device is, which a reconnect may change
        if not self._identity:
            await _read_blocks(state, self._blocks)
        elif self._wide_blocks and not self._wide_refused:
            if not await _read_wide(state, self._wide_blocks):
                self._wide_refused = True  # this device wants the map's blocks: from now on
                return await self._read_once(regmap)
        else:
            await _read_blocks(state, self._reading_blocks)
        return result, state

    async def close(self) -> None:
        """Close the kept connection (the next read opens a new one)."""
        self._drop()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()


async def read_modbus(host: str, port: int = DEFAULT_PORT, unit: int = 1, *, register_map: RegisterMap | str,
                      timeout_s: float = 2.0, source: str | None = None) -> PowerReadings:
    """Read every register of ``register_map`` (a map or its name) from one Modbus TCP device.

    Never raises for device trouble: refused, timeouts, exception responses and sentinels become
    problems on the result. An unknown or invalid map raises :class:`MapError` (caller's mistake).
    """
    session = ModbusSession(host, port, unit, register_map=register_map, timeout_s=timeout_s, source=source)
    try:
        return await session.read()
    finally:
        await session.close()


@dataclass(frozen=True)
class ModbusProbe:
    """What a ``modbus://HOST[:PORT]/UNIT?map=NAME`` URL names (port 502 and unit 1 by default;
    the register map is one of ``power/maps/*.yaml``)."""

    host: str
    port: int
    unit: int
    map_name: str
    timeout_s: float
    source: str

    def with_secrets(self, secrets: Mapping[str, Any], timeout_s: float | None) -> ModbusProbe:
        """Modbus TCP has no credential: only the time budget applies."""
        return self if timeout_s is None else replace(self, timeout_s=timeout_s)

    def open(self) -> ModbusSession:
        return ModbusSession(self.host, self.port, self.unit, register_map=self.map_name, timeout_s=self.timeout_s,
                             source=self.source)


def parse_url(url: str) -> ModbusProbe:
    """The :class:`ModbusProbe` of a ``modbus://`` URL; :class:`ProbeUrlError` when it cannot be
    right, :class:`MapError` when its register map is unknown or invalid (both raised now, not at
    the first read)."""
    parts = urlsplit(url)
    host, port, shown = host_port(url, DEFAULT_PORT)
    params = query_params(url, ("map", "timeout"))
    if parts.username or parts.password:
        raise ProbeUrlError(f"{redact_url(url)}: Modbus TCP has no user or password")
    path = parts.path.strip("/") or "1"
    if not path.isdigit() or not 0 <= int(path) <= 255:
        raise ProbeUrlError(f"{redact_url(url)}: the unit id must be a number between 0 and 255, not {path!r}")
    map_name = params.get("map")
    if not map_name:
        known = ", ".join(available_maps()) or "none installed"
        raise ProbeUrlError(f"{redact_url(url)}: name the register map with ?map=NAME (known: {known})")
    get_map(map_name)
    unit = int(path)
    return ModbusProbe(host, port, unit, map_name, timeout_param(url, params),
                       f"modbus://{shown}:{port}/{unit}?map={map_name}")


async def _read_wide(state: _Read, blocks: list[Block]) -> bool:
    """Read blocks that span unused registers; False (nothing stored) when the device refused one
    with an exception response, so the caller reads by the map's blocks instead. A timeout or a
    lost connection is reported as with the map's blocks."""
    got: list[tuple[Block, list[int]]] = []
    for block in blocks:
        operation = f"read {block.start}+{block.count}"
        try:
            got.append((block, await state.read(block.start, block.count)))
        except (_Timeout, _Refused) as exc:
            state.lost(operation, exc)
            return True
        except _ExceptionResponse:
            return False
    for block, words in got:
        state.store_block(block, words)
    return True


async def _read_blocks(state: _Read, blocks: list[Block]) -> None:
    """Read block after block. Only "illegal data address" (a register this model lacks) is worth
    retrying register by register; any other exception on the very first block (device failure,
    gateway target absent: a wrong unit id) is reported once and ends the read."""
    for index, block in enumerate(blocks):
        operation = f"read {block.start}+{block.count}"
        try:
            words = await state.read(block.start, block.count)
        except (_Timeout, _Refused) as exc:
            state.lost(operation, exc)
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
        state.store_block(block, words)


async def _read_one_by_one(state: _Read, block: Block) -> bool:
    """A refused block, register by register; False when the device stopped answering."""
    for reg in block.registers:
        operation = f"read {reg.address}+{reg.width}"
        try:
            words = await state.read(reg.address, reg.width)
        except (_Timeout, _Refused) as exc:
            state.lost(operation, exc)
            return False
        except _ExceptionResponse as exc:
            state.failed(reg, operation, str(exc))
            continue
        state.store(reg, words)
    return True
