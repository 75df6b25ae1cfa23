"""SNMP power collector: UPSs (UPS-MIB (RFC 1628), APC PowerNet, Eaton XUPS), APC rack PDUs and
APC ATSs read through tables of data.

Vendor differences live in ``infra_mgr/power/oids.yaml`` (which OID means which canonical reading,
its scale, enumerations, sentinels, per-model corrections); this module picks the table by
sysObjectID, GETs its OIDs in a few requests, and turns vendor codes into NUT's vocabulary:
``output.source`` and the ``ups.status`` flags that every consumer (``power/state.py``, alerts,
anyone who knows ``upsc``) already understands. The SNMP transport is the poll engine of the
SNMP library (``infra_mgr.snmp.engine``: bounds, retries, v1 quirks), so a UPS costs the sweep
what a switch costs it.

Why one file of ~800 lines: it is the SNMP collector whole (URL, session, the data tables' loader
and validation, and the reading of a family); the vendor knowledge itself is data in
``oids.yaml``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra_mgr.power.collectors.base import ProbeUrlError, host_port, query_params, redact_url, timeout_param
from infra_mgr.power.collectors.maps import canonical_unit, is_canonical
from infra_mgr.power.readings import DeviceKind, PowerProblem, PowerReadings, Value
from infra_mgr.snmp.engine import PollAbort, ValueType, Walker, default_engine
from infra_mgr.snmp.target import SnmpTarget, SnmpVersionName

OIDS_FILE = Path(__file__).resolve().parents[1] / "oids.yaml"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)
_DEVICE_KIND: dict[str, DeviceKind] = {kind: kind for kind in get_args(DeviceKind)}
# where the identity is: NUT's ups.* for UPSs, its device.* collection for PDUs and ATSs
MODEL_NAMES = ("ups.model", "device.model")
# OIDs per GET: a family's scalars in one request (APC's PowerNet family is 26), and the answer
# (~35 bytes per numeric varbind) still well inside a 1,500-byte maximum message size
GET_CHUNK = 32
STATUS_ORDER = ("OL", "OB", "LB", "HB", "RB", "CHRG", "DISCHRG", "BYPASS", "CAL", "OFF", "OVER", "TRIM",
                "BOOST", "FSD")
OUTPUT_SOURCES = ("normal", "battery", "bypass", "booster", "reducer", "none", "other")
# What feeds the load → NUT flags. On bypass the load is on raw mains: "OL BYPASS" (state.py
# ranks BYPASS above OL, upsmon only acts on OB/LB).
SOURCE_FLAGS: dict[str, tuple[str, ...]] = {"normal": ("OL",), "battery": ("OB",), "bypass": ("OL", "BYPASS"),
                                            "booster": ("OL", "BOOST"), "reducer": ("OL", "TRIM"),
                                            "none": ("OFF",), "other": ()}


class OidTableError(ValueError):
    """``oids.yaml`` is wrong; the message names the family and reading."""


# --- the tables as data --------------------------------------------------------------------------


@dataclass(frozen=True)
class OidSpec:
    oid: str
    scale: float = 1
    sentinels: frozenset[int] = frozenset()
    enum: dict[int, str] | None = None
    flags: dict[int, tuple[str, ...]] = field(default_factory=dict)
    alarm: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReadingSpec:
    name: str
    candidates: tuple[OidSpec, ...]  # in order of preference
    # asked in a second GET only when none of the candidates gives a value (``fill_from``)
    later: tuple[OidSpec, ...] = ()


@dataclass(frozen=True)
class AlarmSpec:
    count_oid: str
    table_oid: str
    known: dict[str, tuple[str, tuple[str, ...]]]  # well-known alarm OID → (text, flags)


@dataclass(frozen=True)
class ModelFix:
    pattern: re.Pattern[str]
    multiply: dict[str, float]


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    kind: DeviceKind
    vendor: str | None
    prefixes: tuple[str, ...]
    readings: tuple[ReadingSpec, ...]
    alarms: AlarmSpec | None = None
    models: tuple[ModelFix, ...] = ()
    fallback: bool = False
    identify: tuple[str, ...] = ()  # OIDs that say "this is such a device" (fallback probing)

    def oids(self) -> list[str]:
        """Every scalar to GET, each once, in table order."""
        seen: dict[str, None] = {}
        for spec in self.readings:
            for cand in spec.candidates:
                seen[cand.oid] = None
        if self.alarms:
            seen[self.alarms.count_oid] = None
        return list(seen)

    def later_oids(self, values: Mapping[str, ValueType]) -> list[str]:
        """The second-pass OIDs of the readings that the first GET left without a value."""
        seen: dict[str, None] = {}
        for spec in self.readings:
            if spec.later and evaluate(ReadingSpec(spec.name, spec.candidates), values).value is None:
                for cand in spec.later:
                    seen.setdefault(cand.oid, None)
        return list(seen)


_OID = re.compile(r"^\d+(\.\d+)+$")


def _oid(value: Any, where: str) -> str:
    text = str(value).strip().lstrip(".")
    if not _OID.match(text):
        raise OidTableError(f"{where}: {value!r} is not a numeric OID")
    return text


def _flags(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, bool):  # YAML 1.1 reads a bare OFF as false
        raise OidTableError(f"{where}: flags {value!r} is a YAML boolean: quote it (\"OFF\")")
    flags = tuple(str(value).split())
    bad = [f for f in flags if f not in STATUS_ORDER]
    if bad:
        raise OidTableError(f"{where}: unknown ups.status flag(s) {', '.join(bad)} (known: {' '.join(STATUS_ORDER)})")
    return flags


def _code_map(raw: Any, where: str, what: str) -> dict[int, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise OidTableError(f"{where}: {what} must be a mapping of code to text")
    out: dict[int, str] = {}
    for code, text in raw.items():
        if isinstance(code, bool) or not isinstance(code, int):
            raise OidTableError(f"{where}: {what} code {code!r} must be an integer")
        if isinstance(text, bool) or text is None:
            raise OidTableError(f"{where}: {what} {code} must be text, not {text!r} (quote yes/no/on/off)")
        out[code] = str(text)
    return out


# The shape of oids.yaml as pydantic models: a wrong file fails at load with the file, the family,
# the reading and the key named (see _table_error), never later in a poll.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class _SourceModel(_Strict):
    """One OID that may give a reading."""

    oid: Any
    scale: StrictInt | StrictFloat | None = None
    type: Literal["timeticks"] | None = None
    sentinels: list[StrictInt] = []
    enum: Any = None
    flags: Any = None
    alarm: Any = None

    @field_validator("oid")
    @classmethod
    def _numeric(cls, value: Any) -> str:
        return _oid(value, "oid")

    @field_validator("scale")
    @classmethod
    def _non_zero(cls, value: float | None) -> float | None:
        if value == 0:
            raise ValueError("scale must be a non-zero number")
        return value

    @field_validator("enum", "alarm")
    @classmethod
    def _codes(cls, value: Any, info: ValidationInfo) -> dict[int, str]:
        return _code_map(value, str(info.field_name), str(info.field_name))

    @field_validator("flags")
    @classmethod
    def _status_flags(cls, value: Any) -> dict[int, tuple[str, ...]]:
        return {code: _flags(text, "flags") for code, text in _code_map(value, "flags", "flags").items()}

    def spec(self) -> OidSpec:
        scale = self.scale if self.scale is not None else (0.01 if self.type == "timeticks" else 1)
        return OidSpec(oid=self.oid, scale=scale, sentinels=frozenset(self.sentinels), enum=self.enum or None,
                       flags=self.flags or {}, alarm=self.alarm or {})


class _KnownAlarmModel(_Strict):
    text: str | None = None
    flags: Any = ""

    @field_validator("flags")
    @classmethod
    def _status_flags(cls, value: Any) -> tuple[str, ...]:
        return _flags(value, "flags")


class _AlarmsModel(_Strict):
    count: Any
    table: Any
    known: dict[str, _KnownAlarmModel | None] = {}

    @field_validator("count", "table")
    @classmethod
    def _numeric(cls, value: Any, info: ValidationInfo) -> str:
        return _oid(value, str(info.field_name))

    @field_validator("known", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return {_oid(k, "known"): v for k, v in value.items()} if isinstance(value, dict) else value


class _ModelFixModel(_Strict):
    match: str
    multiply: dict[str, StrictInt | StrictFloat] = {}

    @field_validator("match")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad match: {exc}") from None
        return value


class _FamilyModel(_Strict):
    description: str = ""
    vendor: str | None = None
    kind: str = "ups"
    sys_object_ids: list[Any] = []
    fallback: bool = False
    identify: list[Any] = []
    fill_from: str | None = None
    readings: dict[str, list[_SourceModel]]
    alarms: _AlarmsModel | None = None
    models: list[_ModelFixModel] = []

    @field_validator("sys_object_ids", "identify")
    @classmethod
    def _numeric(cls, value: list[Any], info: ValidationInfo) -> list[str]:
        return [_oid(v, str(info.field_name)) for v in value]

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in DEVICE_KINDS:  # a typo here would reach the database as an unknown device kind
            raise ValueError(f"kind {value!r} is not one of {', '.join(DEVICE_KINDS)}")
        return value

    @field_validator("readings", mode="before")
    @classmethod
    def _as_lists(cls, value: Any) -> Any:
        """A reading is one source or a list of them in order of preference."""
        if not isinstance(value, dict) or not value:
            raise ValueError("readings must be a non-empty mapping")
        return {str(k): (v if isinstance(v, list) else [v]) for k, v in value.items()}

    @field_validator("readings")
    @classmethod
    def _names(cls, value: dict[str, list[_SourceModel]]) -> dict[str, list[_SourceModel]]:
        for name, sources in value.items():
            if not (name.startswith("_") or is_canonical(name)):
                raise ValueError(f"reading {name}: not a canonical reading name (see infra_mgr/power/readings.py)")
            if not sources:
                raise ValueError(f"reading {name}: needs at least one source")
            if name == "output.source":
                for src in sources:
                    bad = sorted({v for v in (src.enum or {}).values() if v not in OUTPUT_SOURCES})
                    if bad or not src.enum:
                        raise ValueError(f"reading {name}: enum values must be among {', '.join(OUTPUT_SOURCES)}"
                                         + (f" (not {', '.join(bad)})" if bad else ""))
        return value

    @model_validator(mode="after")
    def _fallback_identifies(self) -> _FamilyModel:
        if self.fallback and not self.identify:
            raise ValueError("a fallback family needs identify OIDs (probed before a full read)")
        return self


class _TablesModel(_Strict):
    never_probe: list[Any] = []
    families: dict[str, _FamilyModel]

    @field_validator("never_probe")
    @classmethod
    def _numeric(cls, value: list[Any]) -> list[str]:
        return [_oid(v, "never_probe") for v in value]

    @model_validator(mode="after")
    def _fill_known(self) -> _TablesModel:
        for name, fam in self.families.items():
            if fam.fill_from is not None and (fam.fill_from not in self.families or fam.fill_from == name):
                raise ValueError(f"family {name}: fill_from {fam.fill_from!r} names no other family")
        return self


def _table_error(exc: ValidationError, source: str) -> OidTableError:
    """The first problem, located the way the file is written: ``family f reading ups.load #1 flags``."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if err["type"] == "extra_forbidden":
        message, loc = f"unknown key(s) {loc[-1]}", loc[:-1]
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
    words: list[str] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        if previous == "families":
            words.append(f"family {part}")
        elif previous == "readings" and i >= 2 and loc[i - 2] != "readings":
            words.append(f"reading {part}")
        elif part.isdigit():
            words.append(f"#{int(part) + 1}")
        elif part not in ("families", "readings"):
            words.append(part)
    return OidTableError(f"{source}: {' '.join(words)}: {message}" if words else f"{source}: {message}")


def _family(name: str, model: _FamilyModel, fill: _FamilyModel | None) -> Family:
    """The runtime family; with ``fill_from``, each reading both families define also gets the
    other family's sources as second-pass candidates (read only when its own answer nothing)."""
    readings = []
    for rname, sources in model.readings.items():
        later = tuple(s.spec() for s in fill.readings.get(rname, ())) if fill is not None else ()
        readings.append(ReadingSpec(rname, tuple(s.spec() for s in sources), later))
    alarms = None
    if model.alarms is not None:
        known = {oid: ((k.text if k and k.text else oid), (k.flags if k else ()))
                 for oid, k in model.alarms.known.items()}
        alarms = AlarmSpec(model.alarms.count, model.alarms.table, known)
    models = tuple(ModelFix(re.compile(m.match, re.IGNORECASE), {k: float(v) for k, v in m.multiply.items()})
                   for m in model.models)
    return Family(name=name, description=model.description, kind=_DEVICE_KIND[model.kind], vendor=model.vendor,
                  prefixes=tuple(model.sys_object_ids), readings=tuple(readings), alarms=alarms, models=models,
                  fallback=model.fallback, identify=tuple(model.identify))


@dataclass(frozen=True)
class OidTables:
    """The whole of ``oids.yaml``: the families and the prefixes never probed for a UPS-MIB."""

    families: dict[str, Family]
    never_probe: tuple[str, ...] = ()

    def values(self) -> Iterable[Family]:
        return self.families.values()

    def __getitem__(self, name: str) -> Family:
        return self.families[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.families)

    @property
    def fallbacks(self) -> list[Family]:
        return [f for f in self.families.values() if f.fallback]


def parse_oid_tables(data: Any, source: str = "oids.yaml") -> OidTables:
    """Validate ``oids.yaml``'s content; :class:`OidTableError` names the file, family, reading and key."""
    if not isinstance(data, dict) or not isinstance(data.get("families"), dict):
        raise OidTableError(f"{source}: needs a 'families' mapping")
    try:
        model = _TablesModel.model_validate(data)
    except ValidationError as exc:
        raise _table_error(exc, source) from None
    families = {name: _family(name, fam, model.families[fam.fill_from] if fam.fill_from else None)
                for name, fam in model.families.items()}
    return OidTables(families, tuple(model.never_probe))


@lru_cache(maxsize=4)
def load_oid_tables(path: Path = OIDS_FILE) -> OidTables:
    """The families of ``oids.yaml`` (validated once per process)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise OidTableError(f"{path}: {exc}") from None
    return parse_oid_tables(data, str(path))


def _arcs_prefix(prefix: str, oid: str) -> bool:
    return oid == prefix or oid.startswith(prefix + ".")


def family_for(sys_object_id: str | None, tables: OidTables | None = None) -> Family | None:
    """The family whose sysObjectID prefix is the longest whole-arc prefix of ``sys_object_id``."""
    if not sys_object_id:
        return None
    oid = sys_object_id.strip().lstrip(".")
    best: tuple[int, Family] | None = None
    for fam in (tables or load_oid_tables()).values():
        for prefix in fam.prefixes:
            if _arcs_prefix(prefix, oid) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), fam)
    return best[1] if best else None


# --- values → readings ---------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


@dataclass
class _Outcome:
    value: Value = None
    problem: tuple[str, str] | None = None
    flags: tuple[str, ...] = ()
    alarm: str | None = None
    answered: bool = False


def evaluate(spec: ReadingSpec, values: Mapping[str, ValueType]) -> _Outcome:
    """The reading from the first candidate that answers with a usable value (pure, never raises)."""
    out = _Outcome()
    for cand in (*spec.candidates, *spec.later):
        if cand.oid not in values:
            continue
        raw = values[cand.oid]
        out.answered = True
        if isinstance(raw, bool) or raw is None:
            continue
        if isinstance(raw, int):
            if raw in cand.sentinels:
                out.problem = ("sentinel", f"{spec.name}: {cand.oid} = {raw} means not available")
                continue
            if cand.enum is not None:
                text = cand.enum.get(raw)
                if text is None:
                    return _Outcome(None, ("bad_value", f"{spec.name}: {cand.oid} = unknown code {raw}"),
                                    answered=True)
                return _Outcome(text, None, cand.flags.get(raw, ()), cand.alarm.get(raw), True)
            value: Value = raw * cand.scale if isinstance(cand.scale, int) else round(raw * cand.scale, 9)
            return _Outcome(value, None, cand.flags.get(raw, ()), cand.alarm.get(raw), True)
        if isinstance(raw, float):
            if not math.isfinite(raw):
                out.problem = ("bad_value", f"{spec.name}: {cand.oid} = {raw} is not a reading")
                continue
            return _Outcome(round(raw * cand.scale, 9), answered=True)
        text = _text(raw)
        if cand.enum is not None or cand.scale != 1 or canonical_unit(spec.name) not in (None, "text"):
            # a number sent as a string (some agents use DisplayString for everything)
            try:
                number = int(text or "")
            except ValueError:
                out.problem = ("bad_value", f"{spec.name}: {cand.oid} = {text!r} is not a number")
                continue
            return evaluate(ReadingSpec(spec.name, (cand,)), {cand.oid: number})
        if text is not None:
            return _Outcome(text, answered=True)
    return out


def synthesize_status(source: str | None, flags: Iterable[str] = (), *, charger: str | None = None,
                      load: float | None = None, charge: float | None = None) -> str | None:
    """NUT ``ups.status`` from what an SNMP UPS says (pure; the unit tests hold its table).

    ``source`` is the canonical output source; ``flags`` come from vendor codes and alarms;
    ``charger`` is the device's own charger state when it has one. Without one, a UPS on line
    below 100 % charge is taken to be charging (what it does after an outage), and on battery
    it is discharging.
    """
    out = set(SOURCE_FLAGS.get(source or "", ()))
    out.update(flags)
    if "OB" in out:
        out.discard("CHRG")
        out.add("DISCHRG")
    elif "OL" in out and not out & {"CHRG", "DISCHRG"} and charger is None and charge is not None and charge < 100:
        out.add("CHRG")
    if load is not None and load > 100:
        out.add("OVER")
    if not out:
        return None
    ordered = [f for f in STATUS_ORDER if f in out]
    return " ".join(ordered + sorted(out - set(STATUS_ORDER)))


def _num(value: Value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def build_readings(family: Family, values: Mapping[str, ValueType], alarm_oids: Sequence[str], source: str,
                   result: PowerReadings) -> bool:
    """Fill ``result`` from the values GET returned; False when the agent had none of the family's
    OIDs (it is not this kind of device). Pure apart from filling ``result``."""
    answered = False
    flags: list[str] = []
    alarms: list[str] = []
    hidden: dict[str, Value] = {}
    for spec in family.readings:
        outcome = evaluate(spec, values)
        answered = answered or outcome.answered
        if not outcome.answered:
            continue
        if spec.name.startswith("_"):
            hidden[spec.name] = outcome.value
        else:
            result.readings[spec.name] = outcome.value
        if outcome.problem:
            result.errors.append(PowerProblem(source, "get", *outcome.problem))
        flags.extend(outcome.flags)
        if outcome.alarm:
            alarms.append(outcome.alarm)
    if family.alarms:
        for oid in alarm_oids:
            text, alarm_flags = family.alarms.known.get(oid.lstrip("."), (f"alarm {oid}", ()))
            alarms.append(text)
            flags.extend(alarm_flags)
    if not answered:
        return False
    model = next((m for m in (_text(result.readings.get(n)) for n in MODEL_NAMES) if m), None)
    for fix in family.models:
        if model and fix.pattern.search(model):
            for name, factor in fix.multiply.items():
                value = _num(result.readings.get(name))
                if value is not None:
                    result.readings[name] = round(value * factor, 9)
    readings = result.readings
    status = synthesize_status(str(readings["output.source"]) if readings.get("output.source") else None, flags,
                               charger=_text(hidden.get("_charger")), load=_num(readings.get("ups.load")),
                               charge=_num(readings.get("battery.charge")))
    if status:
        readings["ups.status"] = status
    if alarms:
        readings["ups.alarm"] = "; ".join(dict.fromkeys(alarms))
    elif family.alarms and values.get(family.alarms.count_oid) == 0:
        readings["ups.alarm"] = ""
    result.kind = family.kind
    result.vendor = family.vendor or _text(readings.get("ups.mfr"))
    result.model = model
    return True


# --- transport -----------------------------------------------------------------------------------


async def _get(walker: Walker, oids: Sequence[str]) -> dict[str, ValueType]:
    """GET in chunks of ``GET_CHUNK``; what the agent lacks is absent (the engine handles v1)."""
    values: dict[str, ValueType] = {}
    for i in range(0, len(oids), GET_CHUNK):
        values.update(await walker.get(list(oids[i:i + GET_CHUNK]), operation="power get"))
    return values


async def _read_family(walker: Walker, family: Family, oids: Sequence[str], *, sys_oid: str | None = None
                       ) -> tuple[dict[str, ValueType], list[str]]:
    """The values of ``oids`` and the OIDs of the active alarms: a GET of ``oids``; when the
    device answered some of them, one more GET of the second-pass sources of the readings it left
    empty (``fill_from``, only for a device that needs it); and a walk of the alarm table only
    when the count read with the first GET says alarms are present (and, given ``sys_oid``, the
    device still says that sysObjectID). :class:`PollAbort` goes up."""
    values = await _get(walker, oids)
    if any(v is not None for k, v in values.items() if k != SYS_OBJECT_ID):
        later = family.later_oids(values)
        if later:
            values.update(await _get(walker, later))
    alarm_oids: list[str] = []
    if family.alarms and (sys_oid is None or _text(values.get(SYS_OBJECT_ID)) == sys_oid):
        count = values.get(family.alarms.count_oid)
        if isinstance(count, int) and count > 0:
            rows = await walker.walk(family.alarms.table_oid, max_rows=256, operation="power alarms")
            alarm_oids = [v for _, v in rows if isinstance(v, str)]
    return values, alarm_oids


async def _collect(walker: Walker, family: Family, result: PowerReadings) -> bool:
    """Read the family's OIDs and alarms into ``result``; False when the device is not of it."""
    try:
        values, alarm_oids = await _read_family(walker, family, family.oids())
    except PollAbort:
        return False
    return build_readings(family, values, alarm_oids, result.source, result)


def _copy_problems(walker: Walker, start: int, result: PowerReadings) -> None:
    for p in walker.problems[start:]:
        result.errors.append(PowerProblem(result.source, p.operation, p.kind, p.message))


def snmp_source(target: SnmpTarget) -> str:
    """The URL of a read, without the community (it is a password)."""
    host = f"[{target.address}]" if ":" in target.address else target.address
    return f"snmp://{host}:{target.port}"


async def read_snmp_ups(target: SnmpTarget, *, source: str | None = None) -> PowerReadings:
    """Read one UPS over SNMP (the ``snmp://`` probe). Never raises for device trouble.

    The table comes from sysObjectID; an agent whose sysObjectID matches no table is still tried
    with the fallback table (UPS-MIB), since many UPS cards identify as their maker's OEM.
    """
    result, _found = await _read_identified(target, source or snmp_source(target))
    return result


async def _read_identified(target: SnmpTarget, source: str) -> tuple[PowerReadings, tuple[str, Family] | None]:
    """:func:`read_snmp_ups`, also giving (sysObjectID, family) when a family answered."""
    result = PowerReadings(source=source)
    async with default_engine().session(target) as walker:
        try:
            first = await walker.get([SYS_OBJECT_ID], operation="get sysObjectID")
        except PollAbort:
            first = {}
        sys_oid = _text(first.get(SYS_OBJECT_ID))
        if sys_oid is None:
            _copy_problems(walker, 0, result)
            if not result.errors:
                result.errors.append(PowerProblem(result.source, "get sysObjectID", "error",
                                                  "the agent answered without a sysObjectID"))
            return result, None
        tables = load_oid_tables()
        family = family_for(sys_oid, tables)
        candidates = [family, *(f for f in tables.fallbacks if f is not family)] if family else tables.fallbacks
        for fam in candidates:
            start = len(walker.problems)
            found = await _collect(walker, fam, result)
            _copy_problems(walker, start, result)
            if found:
                return result, (sys_oid, fam)
        if not result.errors:
            names = ", ".join(f.name for f in candidates)
            result.errors.append(PowerProblem(result.source, "get", "error",
                                              f"not a UPS: sysObjectID {sys_oid} answers none of the OIDs of {names}"))
        return result, None


class SnmpUpsSession:
    """Repeated reads of one UPS, PDU or ATS (the power collectors' :class:`DeviceSession` for
    ``snmp://``): the table found on the first read is kept, so a read is one pass of GETs of
    sysObjectID together with that table's OIDs instead of a GET of sysObjectID and then the
    table's. When sysObjectID changes (another device at the address) or does not come back, the
    next read identifies the device again. SNMP is connectionless: the transport is the
    process-wide poll engine's, as for single reads."""

    def __init__(self, target: SnmpTarget, *, source: str | None = None) -> None:
        self.target = target
        self.source = source or snmp_source(target)
        self._known: tuple[str, Family] | None = None

    async def read(self) -> PowerReadings:
        """Canonical readings of the device; never raises for device trouble."""
        if self._known is None:
            result, self._known = await _read_identified(self.target, self.source)
            return result
        sys_oid, family = self._known
        result = PowerReadings(source=self.source)
        async with default_engine().session(self.target) as walker:
            try:
                values, alarm_oids = await _read_family(walker, family, [SYS_OBJECT_ID, *family.oids()],
                                                         sys_oid=sys_oid)
            except PollAbort:
                values, alarm_oids = {}, []
            _copy_problems(walker, 0, result)
        if _text(values.get(SYS_OBJECT_ID)) != sys_oid:
            self._known = None
            if values:  # it answered as another device: identify it now
                result, self._known = await _read_identified(self.target, self.source)
            elif not result.errors:
                result.errors.append(PowerProblem(self.source, "get", "error", "the agent answered nothing"))
            return result
        if not build_readings(family, values, alarm_oids, self.source, result):
            self._known = None
            if not result.errors:
                result.errors.append(PowerProblem(self.source, "get", "error",
                                                  f"the agent no longer answers the OIDs of {family.name}"))
        return result

    async def close(self) -> None:
        """Nothing to release (the engine's sessions are per read); forgets the table."""
        self._known = None


@dataclass(frozen=True)
class SnmpProbe:
    """What an ``snmp://COMMUNITY@HOST[:PORT][?version=1|2c]`` URL names (port 161 and community
    ``public`` by default; SNMPv3 comes from a stored credential, never from the URL)."""

    target: SnmpTarget
    source: str

    def with_secrets(self, secrets: Mapping[str, Any], timeout_s: float | None) -> SnmpProbe:
        """A stored v3 user and keys, or a v2c community, replace the URL's community."""
        target = self.target
        if timeout_s is not None:
            target = replace(target, timeout_s=_per_attempt(timeout_s))
        if secrets.get("kind") == "snmp_v3" or secrets.get("auth_key"):
            target = replace(target, version="3", user=str(secrets.get("username") or ""),
                             auth_proto=secrets.get("auth_proto"), auth_key=str(secrets.get("auth_key") or ""),
                             priv_proto=secrets.get("priv_proto"), priv_key=str(secrets.get("priv_key") or ""))
        elif secrets.get("community"):
            target = replace(target, community=str(secrets["community"]))
        return replace(self, target=target)

    def open(self) -> SnmpUpsSession:
        return SnmpUpsSession(self.target, source=self.source)


def _per_attempt(budget_s: float) -> float:
    """SNMP tries twice (one retry) within the budget."""
    return max(0.1, budget_s / 2)


_URL_VERSIONS: dict[str, SnmpVersionName] = {"1": "1", "2c": "2c"}


def parse_url(url: str) -> SnmpProbe:
    """The :class:`SnmpProbe` of an ``snmp://`` URL; :class:`ProbeUrlError` when it cannot be right."""
    parts = urlsplit(url)
    host, port, shown = host_port(url, 161)
    params = query_params(url, ("version", "timeout"))
    version = _URL_VERSIONS.get(params.get("version", "2c"))
    if version is None:
        raise ProbeUrlError(f"{redact_url(url)}: version must be 1 or 2c in a probe URL")
    if parts.path not in ("", "/"):
        raise ProbeUrlError(f"{redact_url(url)}: an snmp:// URL has no path")
    community = unquote(parts.username) if parts.username is not None else "public"
    if parts.password is not None:
        community = f"{community}:{unquote(parts.password)}"
    target = SnmpTarget(address=host, port=port, version=version, community=community,
                        timeout_s=_per_attempt(timeout_param(url, params)), retries=1)
    return SnmpProbe(target, f"snmp://{shown}:{port}")


# --- the SNMP probe's power readings ------------------------------------------------------------


async def _facts(walker: Walker, sys_object_id: str | None, source: str) -> PowerReadings | None:
    tables = load_oid_tables()
    family = family_for(sys_object_id, tables)
    oid = (sys_object_id or "").strip().lstrip(".")
    start = len(walker.problems)
    result = PowerReadings(source=source)
    if family is None:
        if not oid or any(_arcs_prefix(p, oid) for p in tables.never_probe):
            return None
        for candidate in tables.fallbacks:
            try:
                answered = await walker.get(list(candidate.identify), operation="power identify")
            except PollAbort:
                answered = {}
            if any(_text(v) for v in answered.values()):
                family = candidate
                break
        if family is None:
            return None  # whatever went wrong while asking stays on the caller's walker
    found = await _collect(walker, family, result)
    if not found and not family.fallback:
        # a maker's card that speaks only the standard MIB (an Eaton 9PX card under XUPS's prefix
        # with UPS-MIB alone, an MGE-era card): the fallback family reads it
        for candidate in tables.fallbacks:
            if await _collect(walker, candidate, result):
                found, family = True, candidate
                break
    _copy_problems(walker, start, result)
    if not found and not result.errors:
        return None
    if not found:
        result.kind = family.kind
        result.vendor = family.vendor
    return result


async def power_facts_for_snmp(device: SnmpTarget | Walker, sys_object_id: str | None) -> PowerReadings | None:
    """Power readings of a device found by the SNMP probe, or None when it is not a power device.

    ``device`` is a :class:`SnmpTarget` (a session is opened on the default engine) or the
    engine's walker already open on the device (``SnmpEngine.session``; problems it records
    during this call are copied into the result too). A sysObjectID that one of the tables claims
    gets the full read; an unknown one costs one small GET of the fallback family's identify OIDs
    (UPS cards on embedded Linux say net-snmp's sysObjectID), none at all when it is under
    ``never_probe`` (switches, routers). A claimed device that has none of the table's OIDs (some
    other APC product under APC's prefix) gives None; one that stops answering gives readings
    with errors. Rack PDUs and ATSs have families of their own (``kind`` pdu / ats).
    """
    if isinstance(device, SnmpTarget):
        async with default_engine().session(device) as walker:
            return await _facts(walker, sys_object_id, snmp_source(device))
    return await _facts(device, sys_object_id, snmp_source(device.target))
