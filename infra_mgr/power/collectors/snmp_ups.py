"""SNMP power collector: UPSs (UPS-MIB (RFC 1628), APC PowerNet, Eaton XUPS), APC rack PDUs and
APC ATSs read through tables of data.

Vendor differences live in ``infra_mgr/power/oids.yaml`` (which OID means which canonical reading,
its scale, enumerations, sentinels, per-model corrections); this module picks the table by
sysObjectID, GETs its OIDs in a few requests, and turns vendor codes into NUT's vocabulary:
``output.source`` and the ``ups.status`` flags that every consumer (``power/state.py``, alerts,
anyone who knows ``upsc``) already understands. The SNMP transport is the poll engine of
``infra_mgr.network.snmp.engine`` (bounds, retries, v1 quirks), so a UPS costs the sweep what a
switch costs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

import yaml

from infra_mgr.network.snmp.facts import PollProblem, SnmpTarget
from infra_mgr.power.collectors.maps import canonical_unit, is_canonical
from infra_mgr.power.readings import DeviceKind, PowerProblem, PowerReadings, Value

OIDS_FILE = Path(__file__).resolve().parents[1] / "oids.yaml"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)
# where the identity is: NUT's ups.* for UPSs, its device.* collection for PDUs and ATSs
MODEL_NAMES = ("ups.model", "device.model")
GET_CHUNK = 24  # OIDs per GET: small enough for any agent's PDU size, few requests per UPS
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
    kind: str
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


def _spec(raw: Any, where: str) -> OidSpec:
    if not isinstance(raw, dict) or "oid" not in raw:
        raise OidTableError(f"{where}: each source needs an oid")
    unknown = set(raw) - {"oid", "scale", "type", "sentinels", "enum", "flags", "alarm"}
    if unknown:
        raise OidTableError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    scale = raw.get("scale", 0.01 if raw.get("type") == "timeticks" else 1)
    if raw.get("type") not in (None, "timeticks"):
        raise OidTableError(f"{where}: type may only be timeticks")
    if isinstance(scale, bool) or not isinstance(scale, int | float) or scale == 0:
        raise OidTableError(f"{where}: scale must be a non-zero number")
    sentinels = raw.get("sentinels") or []
    if not isinstance(sentinels, list) or any(isinstance(s, bool) or not isinstance(s, int) for s in sentinels):
        raise OidTableError(f"{where}: sentinels must be a list of integers")
    enum = _code_map(raw.get("enum"), where, "enum") or None
    flags = {code: _flags(text, f"{where} flags") for code, text in _code_map(raw.get("flags"), where, "flags").items()}
    return OidSpec(oid=_oid(raw["oid"], where), scale=scale, sentinels=frozenset(sentinels), enum=enum, flags=flags,
                   alarm=_code_map(raw.get("alarm"), where, "alarm"))


def _family(name: str, raw: Any, source: str) -> Family:
    where = f"{source}: family {name}"
    if not isinstance(raw, dict):
        raise OidTableError(f"{where}: must be a mapping")
    prefixes = tuple(_oid(p, f"{where} sys_object_ids") for p in raw.get("sys_object_ids") or [])
    readings_raw = raw.get("readings")
    if not isinstance(readings_raw, dict) or not readings_raw:
        raise OidTableError(f"{where}: readings must be a non-empty mapping")
    readings = []
    for rname, rraw in readings_raw.items():
        rwhere = f"{where} reading {rname}"
        if not (str(rname).startswith("_") or is_canonical(str(rname))):
            raise OidTableError(f"{rwhere}: not a canonical reading name (see infra_mgr/power/readings.py)")
        candidates = rraw if isinstance(rraw, list) else [rraw]
        specs = tuple(_spec(c, rwhere) for c in candidates)
        if rname == "output.source":
            for spec in specs:
                bad = sorted({v for v in (spec.enum or {}).values() if v not in OUTPUT_SOURCES})
                if bad or not spec.enum:
                    raise OidTableError(f"{rwhere}: enum values must be among {', '.join(OUTPUT_SOURCES)}"
                                        + (f" (not {', '.join(bad)})" if bad else ""))
        readings.append(ReadingSpec(str(rname), specs))
    alarms = None
    if raw.get("alarms"):
        a = raw["alarms"]
        known_raw = a.get("known") or {}
        known = {_oid(k, f"{where} alarms"): (str((v or {}).get("text", k)),
                                               _flags((v or {}).get("flags", ""), f"{where} alarm {k}"))
                 for k, v in known_raw.items()}
        alarms = AlarmSpec(_oid(a.get("count"), f"{where} alarms.count"), _oid(a.get("table"), f"{where} alarms.table"),
                           known)
    models = []
    for i, m in enumerate(raw.get("models") or []):
        try:
            pattern = re.compile(str(m["match"]), re.IGNORECASE)
        except (KeyError, TypeError, re.error) as exc:
            raise OidTableError(f"{where} models #{i + 1}: bad or missing match: {exc}") from None
        multiply = m.get("multiply") or {}
        if not isinstance(multiply, dict) or any(isinstance(v, bool) or not isinstance(v, int | float)
                                                 for v in multiply.values()):
            raise OidTableError(f"{where} models #{i + 1}: multiply must map reading names to numbers")
        models.append(ModelFix(pattern, {str(k): float(v) for k, v in multiply.items()}))
    kind = str(raw.get("kind") or "ups")
    if kind not in DEVICE_KINDS:  # a typo here would reach the database as an unknown device kind
        raise OidTableError(f"{where}: kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    identify = tuple(_oid(o, f"{where} identify") for o in raw.get("identify") or [])
    if raw.get("fallback") and not identify:
        raise OidTableError(f"{where}: a fallback family needs identify OIDs (probed before a full read)")
    return Family(name=name, description=str(raw.get("description") or ""), kind=kind,
                  vendor=raw.get("vendor"), prefixes=prefixes, readings=tuple(readings), alarms=alarms,
                  models=tuple(models), fallback=bool(raw.get("fallback")), identify=identify)


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
    if not isinstance(data, dict) or not isinstance(data.get("families"), dict):
        raise OidTableError(f"{source}: needs a 'families' mapping")
    never = tuple(_oid(p, f"{source}: never_probe") for p in data.get("never_probe") or [])
    return OidTables({str(name): _family(str(name), raw, source) for name, raw in data["families"].items()}, never)


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


def evaluate(spec: ReadingSpec, values: dict[str, Any]) -> _Outcome:
    """The reading from the first candidate that answers with a usable value (pure, never raises)."""
    out = _Outcome()
    for cand in spec.candidates:
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


def build_readings(family: Family, values: dict[str, Any], alarm_oids: Sequence[str], source: str,
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
    result.kind = family.kind  # type: ignore[assignment]
    result.vendor = family.vendor or _text(readings.get("ups.mfr"))
    result.model = model
    return True


# --- transport -----------------------------------------------------------------------------------


class _SessionWalker:
    """A raw gufo ``SnmpSession`` behind the engine's ``Walker`` shape (for callers holding one)."""

    def __init__(self, session: Any, address: str = "") -> None:
        self._session = session
        self.address = address or str(getattr(session, "addr", "") or "")
        self.problems: list[PollProblem] = []

    def problem(self, operation: str, kind: str, message: str) -> None:
        self.problems.append(PollProblem(self.address, operation, kind, message))

    async def get(self, oids: Sequence[str], *, operation: str = "get") -> dict[str, Any]:
        try:
            return dict(await self._session.get_many(list(oids)))
        except TimeoutError:
            self.problem(operation, "timeout", "no answer")
        except Exception as exc:  # noqa: BLE001 - gufo raises its own; any failure is a problem
            self.problem(operation, "error", f"{exc.__class__.__name__}: {exc}")
        return {}

    async def walk(self, base: str, *, max_rows: int | None = None, operation: str | None = None,
                   expect_rows: int | None = None) -> list[tuple[str, Any]]:
        rows: list[tuple[str, Any]] = []
        try:
            async for oid, value in self._session.fetch(base):
                if not oid.startswith(base + ".") or (max_rows and len(rows) >= max_rows):
                    break
                rows.append((oid, value))
        except Exception as exc:  # noqa: BLE001
            self.problem(operation or f"walk {base}", "error", f"{exc.__class__.__name__}: {exc}")
        return rows


def _is_walker(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("get", "walk", "problems"))


async def _get(walker: Any, oids: Sequence[str]) -> dict[str, Any]:
    """GET in chunks of ``GET_CHUNK``; what the agent lacks is absent (the engine handles v1)."""
    values: dict[str, Any] = {}
    for i in range(0, len(oids), GET_CHUNK):
        values.update(await walker.get(list(oids[i:i + GET_CHUNK]), operation="power get"))
    return values


async def _collect(walker: Any, family: Family, result: PowerReadings) -> bool:
    """GET the family's OIDs (and walk its alarm table when alarms are present) into ``result``."""
    from infra_mgr.network.snmp.engine import PollAbort

    alarm_oids: list[str] = []
    try:
        values = await _get(walker, family.oids())
        if family.alarms and isinstance(values.get(family.alarms.count_oid), int) \
                and values[family.alarms.count_oid] > 0:
            rows = await walker.walk(family.alarms.table_oid, max_rows=256, operation="power alarms")
            alarm_oids = [str(v) for _, v in rows if isinstance(v, str)]
    except PollAbort:
        return False
    return build_readings(family, values, alarm_oids, result.source, result)


def _copy_problems(walker: Any, start: int, result: PowerReadings) -> None:
    for p in list(walker.problems)[start:]:
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
    from infra_mgr.network.snmp.engine import PollAbort, default_engine

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
    """Repeated reads of one UPS (the poller's device loop): the table found on the first read
    is kept, so a read is one pass of GETs of sysObjectID together with that table's OIDs instead
    of a GET of sysObjectID and then the table's. When sysObjectID changes (another device at the
    address) or does not come back, the next read identifies the device again. SNMP is
    connectionless: the transport is the process-wide poll engine's, as for single reads."""

    def __init__(self, target: SnmpTarget, *, source: str | None = None) -> None:
        self.target = target
        self.source = source or snmp_source(target)
        self._known: tuple[str, Family] | None = None

    async def read(self) -> PowerReadings:
        """Canonical readings of the UPS; never raises for device trouble."""
        if self._known is None:
            result, self._known = await _read_identified(self.target, self.source)
            return result
        from infra_mgr.network.snmp.engine import PollAbort, default_engine

        sys_oid, family = self._known
        result = PowerReadings(source=self.source)
        async with default_engine().session(self.target) as walker:
            alarm_oids: list[str] = []
            try:
                values = await _get(walker, [SYS_OBJECT_ID, *family.oids()])
                if _text(values.get(SYS_OBJECT_ID)) == sys_oid and family.alarms \
                        and isinstance(values.get(family.alarms.count_oid), int) \
                        and values[family.alarms.count_oid] > 0:
                    rows = await walker.walk(family.alarms.table_oid, max_rows=256, operation="power alarms")
                    alarm_oids = [str(v) for _, v in rows if isinstance(v, str)]
            except PollAbort:
                values = {}
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

    def close(self) -> None:
        """Nothing to release (the engine's sessions are per read); forgets the table."""
        self._known = None


def _walker_source(walker: Any) -> str:
    address = str(getattr(walker, "address", "") or "")
    port = getattr(getattr(walker, "target", None), "port", 161)
    return f"snmp://{f'[{address}]' if ':' in address else address}:{port}"


async def _facts(walker: Any, sys_object_id: str | None, source: str) -> PowerReadings | None:
    tables = load_oid_tables()
    family = family_for(sys_object_id, tables)
    oid = (sys_object_id or "").strip().lstrip(".")
    start = len(walker.problems)
    result = PowerReadings(source=source)
    if family is None:
        if not oid or any(_arcs_prefix(p, oid) for p in tables.never_probe):
            return None
        from infra_mgr.network.snmp.engine import PollAbort

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
        result.kind = family.kind  # type: ignore[assignment]
        result.vendor = family.vendor
    return result


async def power_facts_for_snmp(target_or_session: Any, sys_object_id: str | None) -> PowerReadings | None:
    """Power readings of a device found by the SNMP probe, or None when it is not a power device.

    ``target_or_session`` is a :class:`SnmpTarget` (a session is opened on the default engine),
    an engine ``Walker`` already open on the device (problems it records during this call are
    copied into the result too), or a raw gufo ``SnmpSession``. A sysObjectID that one of the
    tables claims gets the full read; an unknown one costs one small GET of the fallback family's
    identify OIDs (UPS cards on embedded Linux say net-snmp's sysObjectID), none at all when it is
    under ``never_probe`` (switches, routers). A claimed device that has none of the table's OIDs
    (some other APC product under APC's prefix) gives None; one that stops answering gives readings
    with errors. Rack PDUs and ATSs have families of their own (``kind`` pdu / ats).
    """
    if isinstance(target_or_session, SnmpTarget):
        from infra_mgr.network.snmp.engine import default_engine

        async with default_engine().session(target_or_session) as walker:
            return await _facts(walker, sys_object_id, snmp_source(target_or_session))
    walker = target_or_session if _is_walker(target_or_session) else _SessionWalker(target_or_session)
    return await _facts(walker, sys_object_id, _walker_source(walker))
