"""The uplink poller: counters, status, speed and optical levels of a few interfaces per device.

Discovery walks whole tables once in a while; this runs every minute for every uplink, so it asks
only for the cells it needs, by GET, with the sysUpTime that dates them in the same request: a
branch router's two uplinks are one round trip (``counters.yaml`` lists the columns). What it
learns about a device is remembered on the engine between polls, so the steady state stays one
round trip:

* **64- or 32-bit**, per row: the 64-bit ifHC* counters are asked first; a row the agent gives
  none of them for is read from the 32-bit ifTable counters and marked ``hc=False`` (a second
  request, once: from then on that row is asked its 32-bit counters directly).
* **Optics**: a vendor DOM table (by sysObjectID prefix) is read by ifIndex; ENTITY-SENSOR-MIB
  needs the port's entity and its dBm sensors, learned by two walks and a few GETs once an hour,
  then read by GET with the counters.

Nothing the agent does raises out of :func:`poll_interfaces`: a timeout, an authentication
failure or garbage becomes ``error_kind`` and ``error`` on the :class:`InterfacePoll`.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from infra_mgr.network.linkfacts import CounterRow, InterfacePoll
from infra_mgr.network.snmp.schema import Oid, Regex
from infra_mgr.snmp.engine import PollAbort, SnmpEngine, ValueType, Walker
from infra_mgr.snmp.target import SnmpTarget

# --- counters.yaml ------------------------------------------------------------------------------



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemOids(_Strict):
    sys_uptime: Oid
    sys_object_id: Oid


class StatusColumns(_Strict):
    oper_status: Oid
    last_change: Oid
    high_speed: Oid
    speed: Oid
    in_errors: Oid
    out_errors: Oid
    in_discards: Oid
    out_discards: Oid


class CounterColumns(_Strict):
    """Octet and packet counters of one width; each a sum of the columns listed."""

    in_octets: list[Oid] = Field(min_length=1)
    out_octets: list[Oid] = Field(min_length=1)
    in_pkts: list[Oid] = Field(min_length=1)
    out_pkts: list[Oid] = Field(min_length=1)


class EntitySensor(_Strict):
    alias_mapping: Oid
    if_index_oid: Oid
    contained_in: Oid
    descr: Oid
    name: Oid
    sensor_type: Oid
    sensor_scale: Oid
    sensor_precision: Oid
    sensor_value: Oid
    sensor_status: Oid
    dbm_type: int
    rx: Regex
    tx: Regex
    max_depth: int = Field(ge=1, le=8)
    relearn_s: float = Field(gt=0)


class DomTable(_Strict):
    name: str
    sys_object_id: Oid
    rx: Oid
    tx: Oid
    factor: float


class Optics(_Strict):
    entity_sensor: EntitySensor
    dom: list[DomTable] = []


class CountersFile(_Strict):
    system: SystemOids
    status: StatusColumns
    hc: CounterColumns
    legacy: CounterColumns
    oper_status: dict[int, str]
    optics: Optics


class CountersFileError(ValueError):
    """``counters.yaml`` is wrong; the message names the key."""


def parse_counters(data: Any, source: str = "counters.yaml") -> CountersFile:
    """``counters.yaml`` validated (a wrong entry is an error naming the file and the key)."""
    try:
        return CountersFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise CountersFileError(f"{source}: {where}: {err['msg']}") from None


@cache
def counters_file() -> CountersFile:
    text = resources.files("infra_mgr.network.snmp").joinpath("counters.yaml").read_text(encoding="utf-8")
    return parse_counters(yaml.safe_load(text))


# --- what the engine remembers per device -------------------------------------------------------


@dataclass
class _Sensor:
    entity: int
    rx: bool  # True: received level; False: transmitted


@dataclass
class DeviceMemory:
    """What polls of one agent taught: its counter width per row, vendor and optical sensors."""

    legacy_rows: set[int] = field(default_factory=set)  # ifIndexes without 64-bit counters
    sys_object_id: str | None = None
    sensors: dict[int, list[_Sensor]] = field(default_factory=dict)  # ifIndex -> its dBm sensors
    sensors_for: frozenset[int] = frozenset()  # the ifIndexes the sensors were learned for
    learned_at: float | None = None  # monotonic time of the last learning


_MEMORY: weakref.WeakKeyDictionary[SnmpEngine, dict[tuple[str, int], DeviceMemory]] = weakref.WeakKeyDictionary()


def device_memory(engine: SnmpEngine, target: SnmpTarget) -> DeviceMemory:
    """The poller's memory of one agent, kept as long as the engine lives."""
    per_engine = _MEMORY.setdefault(engine, {})
    key = (target.address, target.port)
    if key not in per_engine:
        per_engine[key] = DeviceMemory()
    return per_engine[key]


# --- reading ------------------------------------------------------------------------------------

# Cells per GET: ~40 bytes each in the answer, so 64 fit gufo's 4080-byte buffer with room.
MAX_CELLS = 64
MIN_CELLS = 8
_SCALE_EXPONENT = {n: 3 * (n - 9) for n in range(1, 14)}  # UnitsMultiplier yocto(1) … units(9) … tera(13)


def _int(value: ValueType) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sum(values: dict[str, ValueType], oids: Iterable[str]) -> int | None:
    """Sum of the columns the agent answered (``None`` when it answered none)."""
    parts = [v for v in (_int(values.get(o)) for o in oids) if v is not None]
    return sum(parts) if parts else None


async def _get(walker: Walker, oids: Sequence[str]) -> dict[str, ValueType]:
    """GET in chunks that fit one answer; an empty answer to a long chunk is asked again in halves
    (a small maximum message size reads as an empty answer)."""
    out: dict[str, ValueType] = {}
    pending = [list(oids[i:i + MAX_CELLS]) for i in range(0, len(oids), MAX_CELLS)]
    while pending:
        chunk = pending.pop(0)
        values = await walker.get(chunk, operation="get counters")
        if not values and len(chunk) > MIN_CELLS:
            half = len(chunk) // 2
            pending[:0] = [chunk[:half], chunk[half:]]
            continue
        out.update(values)
    return out


def _columns(spec: CountersFile, legacy: bool) -> list[str]:
    width = spec.legacy if legacy else spec.hc
    return [*spec.status.model_dump().values(),
            *(oid for oids in width.model_dump().values() for oid in oids)]


def _dom(spec: CountersFile, sys_object_id: str | None) -> DomTable | None:
    if not sys_object_id:
        return None
    for table in spec.optics.dom:
        if sys_object_id == table.sys_object_id or sys_object_id.startswith(table.sys_object_id + "."):
            return table
    return None


def _optic_cells(spec: CountersFile, memory: DeviceMemory, indexes: Sequence[int]) -> list[str]:
    cells: list[str] = []
    dom = _dom(spec, memory.sys_object_id)
    if dom is not None:
        cells += [f"{oid}.{i}" for i in indexes for oid in (dom.rx, dom.tx)]
    es = spec.optics.entity_sensor
    for i in indexes:
        for sensor in memory.sensors.get(i, ()):
            cells += [f"{oid}.{sensor.entity}" for oid in
                      (es.sensor_value, es.sensor_scale, es.sensor_precision, es.sensor_status)]
    return cells


def _sensor_dbm(es: EntitySensor, values: dict[str, ValueType], entity: int) -> float | None:
    value = _int(values.get(f"{es.sensor_value}.{entity}"))
    scale = _int(values.get(f"{es.sensor_scale}.{entity}"))
    precision = _int(values.get(f"{es.sensor_precision}.{entity}")) or 0
    status = _int(values.get(f"{es.sensor_status}.{entity}"))
    if value is None or status not in (None, 1):  # 2 unavailable, 3 nonoperational
        return None
    exponent = _SCALE_EXPONENT.get(scale if scale is not None else 9)
    if exponent is None:
        return None
    return round(value * 10.0 ** (exponent - precision), 6)


def _fill_optics(spec: CountersFile, memory: DeviceMemory, values: dict[str, ValueType], row: CounterRow) -> None:
    dom = _dom(spec, memory.sys_object_id)
    if dom is not None:
        rx, tx = _int(values.get(f"{dom.rx}.{row.if_index}")), _int(values.get(f"{dom.tx}.{row.if_index}"))
        row.rx_dbm = None if rx is None else round(rx * dom.factor, 6)
        row.tx_dbm = None if tx is None else round(tx * dom.factor, 6)
    es = spec.optics.entity_sensor
    for sensor in memory.sensors.get(row.if_index, ()):
        level = _sensor_dbm(es, values, sensor.entity)
        if level is None:
            continue
        if sensor.rx and row.rx_dbm is None:
            row.rx_dbm = level
        elif not sensor.rx and row.tx_dbm is None:
            row.tx_dbm = level


def _row(spec: CountersFile, index: int, values: dict[str, ValueType], legacy: bool) -> CounterRow:
    st = spec.status
    width = spec.legacy if legacy else spec.hc

    def cell(oid: str) -> ValueType:
        return values.get(f"{oid}.{index}")

    high, speed = _int(cell(st.high_speed)), _int(cell(st.speed))
    if high:
        speed_bps: int | None = high * 1_000_000
    elif speed is not None and speed != 2**32 - 1:
        speed_bps = speed
    else:
        speed_bps = None
    status = _int(cell(st.oper_status))
    return CounterRow(
        if_index=index,
        hc=not legacy,
        in_octets=_sum(values, (f"{o}.{index}" for o in width.in_octets)),
        out_octets=_sum(values, (f"{o}.{index}" for o in width.out_octets)),
        in_pkts=_sum(values, (f"{o}.{index}" for o in width.in_pkts)),
        out_pkts=_sum(values, (f"{o}.{index}" for o in width.out_pkts)),
        in_errors=_int(cell(st.in_errors)),
        out_errors=_int(cell(st.out_errors)),
        in_discards=_int(cell(st.in_discards)),
        out_discards=_int(cell(st.out_discards)),
        oper_status=None if status is None else spec.oper_status.get(status, str(status)),
        last_change_cs=_int(cell(st.last_change)),
        speed_bps=speed_bps,
    )


def _has_octets(spec: CountersFile, values: dict[str, ValueType], index: int) -> bool:
    return any(_int(values.get(f"{o}.{index}")) is not None for o in (*spec.hc.in_octets, *spec.hc.out_octets))


def _present(spec: CountersFile, values: dict[str, ValueType], index: int) -> bool:
    """Whether the agent knows this interface at all (any status column answered)."""
    return any(f"{oid}.{index}" in values for oid in spec.status.model_dump().values())


def _index_of(value: ValueType, prefix: str) -> int | None:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if isinstance(value, str) and value.strip(".").startswith(prefix):
        tail = value.strip(".")[len(prefix):]
        return int(tail) if tail.isdigit() else None
    return None


async def _learn_sensors(walker: Walker, spec: CountersFile, memory: DeviceMemory, indexes: Sequence[int]) -> None:
    """Find each wanted port's dBm sensors: entity of the port (alias mapping), dBm sensors, and
    which of them sit in that port (containment, a few levels up)."""
    es = spec.optics.entity_sensor
    memory.sensors = {}
    memory.sensors_for = frozenset(indexes)
    memory.learned_at = time.monotonic()
    wanted = set(indexes)
    port_of: dict[int, int] = {}  # entity -> ifIndex
    for oid, value in await walker.walk(es.alias_mapping, operation="walk entAliasMapping"):
        if_index = _index_of(value, es.if_index_oid + ".")
        entity = oid[len(es.alias_mapping) + 1:].split(".")[0]
        if if_index in wanted and entity.isdigit():
            port_of[int(entity)] = if_index
    if not port_of:
        return
    sensors = [int(oid.rpartition(".")[2]) for oid, value in
               await walker.walk(es.sensor_type, operation="walk entPhySensorType") if _int(value) == es.dbm_type]
    if not sensors:
        return
    # climb from each sensor to the port entity that holds it
    place = {s: s for s in sensors}
    owner: dict[int, int] = {}
    for _ in range(es.max_depth):
        climbing = {s: e for s, e in place.items() if s not in owner}
        if not climbing:
            break
        parents = await _get(walker, [f"{es.contained_in}.{e}" for e in sorted(set(climbing.values()))])
        for s, e in climbing.items():
            parent = _int(parents.get(f"{es.contained_in}.{e}"))
            if parent in port_of:
                owner[s] = port_of[parent]
            elif parent:
                place[s] = parent
            else:
                place.pop(s)
        place = {s: e for s, e in place.items() if s not in owner}
    if not owner:
        return
    names = await _get(walker, [f"{oid}.{s}" for s in sorted(owner) for oid in (es.descr, es.name)])
    rx, tx = re.compile(es.rx), re.compile(es.tx)
    for s in sorted(owner):
        text = " ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                        for v in (names.get(f"{es.descr}.{s}"), names.get(f"{es.name}.{s}")) if v is not None)
        if rx.search(text):
            memory.sensors.setdefault(owner[s], []).append(_Sensor(s, True))
        elif tx.search(text):
            memory.sensors.setdefault(owner[s], []).append(_Sensor(s, False))


async def _poll(walker: Walker, memory: DeviceMemory, indexes: Sequence[int], optics: bool,
                result: InterfacePoll) -> None:
    spec = counters_file()
    es = spec.optics.entity_sensor
    if memory.learned_at is not None and time.monotonic() - memory.learned_at > es.relearn_s:
        memory.legacy_rows.clear()  # an upgraded agent may have 64-bit counters now
    first = [spec.system.sys_uptime]
    if optics and memory.sys_object_id is None:
        first.append(spec.system.sys_object_id)
    for i in indexes:
        first += [f"{oid}.{i}" for oid in _columns(spec, i in memory.legacy_rows)]
    if optics:
        first += _optic_cells(spec, memory, indexes)
    started = time.monotonic()
    # the first chunk alone dates the sample: sysUpTime and ts_ms belong to the same answer
    head = await walker.get(first[:MAX_CELLS], operation="get counters")
    result.ts_ms = int(time.time() * 1000)
    result.rtt_ms = round((time.monotonic() - started) * 1000.0, 3) if head else None
    if not head:
        return
    values = dict(head)
    if len(first) > MAX_CELLS:
        values.update(await _get(walker, first[MAX_CELLS:]))
    result.uptime_cs = _int(values.get(spec.system.sys_uptime))
    sys_object_id = values.get(spec.system.sys_object_id)
    if isinstance(sys_object_id, str):
        memory.sys_object_id = sys_object_id.strip(".")

    present = [i for i in indexes if _present(spec, values, i)]
    more: list[str] = []
    for i in present:
        if i not in memory.legacy_rows and not _has_octets(spec, values, i):
            memory.legacy_rows.add(i)  # no 64-bit counters on this row: read the 32-bit ones
            more += [f"{oid}.{i}" for width in spec.legacy.model_dump().values() for oid in width]
    if optics:
        stale = memory.learned_at is None or time.monotonic() - memory.learned_at > es.relearn_s
        if stale or not set(present) <= memory.sensors_for:
            await _learn_sensors(walker, spec, memory, present)
        # cells of sensors just learned, or of the vendor table named by a sysObjectID just read
        asked = set(first)
        more += [c for c in _optic_cells(spec, memory, present) if c not in asked]
    if more:
        values.update(await _get(walker, more))
    for i in present:
        row = _row(spec, i, values, i in memory.legacy_rows)
        if optics:
            _fill_optics(spec, memory, values, row)
        result.rows[i] = row


async def poll_interfaces(engine: SnmpEngine, target: SnmpTarget, if_indexes: Sequence[int], *,
                          optics: bool = True) -> InterfacePoll:
    """One poll of some interfaces of one device (see the module docstring). Never raises for
    anything the agent does: a poll that got no answer has ``error_kind`` set and no rows."""
    result = InterfacePoll(address=target.address, ts_ms=int(time.time() * 1000))
    memory = device_memory(engine, target)
    async with engine.session(target) as walker:
        try:
            async with asyncio.timeout(engine.device_deadline_s):
                await _poll(walker, memory, list(dict.fromkeys(if_indexes)), optics, result)
        except PollAbort:
            pass
        except TimeoutError:
            walker.problem("poll", "timeout", f"device poll exceeded {engine.device_deadline_s:g} s")
        except Exception as exc:  # noqa: BLE001  # a poll never raises: the cycle goes on
            walker.problem("poll", "error", f"{exc.__class__.__name__}: {exc}")
        problems = list(walker.problems)
        if result.uptime_cs is None and not result.rows:
            fatal = next((p for p in problems if p.kind in ("timeout", "auth")), None)
            chosen = fatal or (problems[0] if problems else None)
            result.error_kind = chosen.kind if chosen else "no_such_object"
            result.error = chosen.message if chosen else "the agent has none of the polled objects"
        elif any(p.kind == "auth" for p in problems):  # SNMPv3: only an authenticated answer counts
            result.rows = {}
            result.error_kind, result.error = "auth", next(p.message for p in problems if p.kind == "auth")
    return result


async def poll_many(engine: SnmpEngine, jobs: Sequence[tuple[SnmpTarget, Sequence[int]]], *,
                    concurrency: int = 64, optics: bool = True) -> list[InterfacePoll]:
    """Poll many devices at once (at most ``concurrency``, within the engine's own bound);
    results in the jobs' order, one device's failure only in its own result."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(target: SnmpTarget, indexes: Sequence[int]) -> InterfacePoll:
        async with gate:
            return await poll_interfaces(engine, target, indexes, optics=optics)

    return list(await asyncio.gather(*(one(t, i) for t, i in jobs)))
