"""NAPALM-style SNMP getters: facts, interfaces, LLDP/CDP neighbours, IP addresses, ARP, MAC table.

Two layers, kept apart so the parsing can be fuzzed without a network:

* **pure parsers** (``parse_*``, ``identify``, ``decode_text``): raw varbinds in, the dataclasses
  of :mod:`facts` and a list of :class:`PollProblem` out. They never raise on agent data, whatever
  it is (random OIDs, wrong types, invalid UTF-8, huge integers, ``None``).
* **getters** (``get_*``, ``probe``): ask a :class:`Walker` for what ``tables.yaml`` names and hand
  the varbinds to the parsers. No database here: the discovery service reconciles the results.

What is read where is data: ``tables.yaml`` (columns per table and their types) and
``vendors.yaml`` (sysObjectID prefixes and sysDescr patterns). No code branches on a vendor.

Text decoding rule (agents send bytes; Arabic sysLocation and ifAlias are normal here): valid
UTF-8 is kept exactly, except trailing NUL padding, which some agents add; bytes that are not
valid UTF-8 are never guessed at (cp1256 or latin-1 would each be wrong half the time): each byte
of an invalid sequence is written as ``\\xNN`` (Python's ``backslashreplace``), so the text stays
readable where it is ASCII, nothing is lost, and the result is always JSON-safe.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError

from infra_mgr.network.snmp.engine import PollAbort, SnmpEngine, ValueType, VarBind, Walker, default_engine
from infra_mgr.network.snmp.facts import (
    ArpFacts,
    DeviceFacts,
    InterfaceFacts,
    IpAddressFacts,
    MacFacts,
    NeighborFacts,
    PollProblem,
    ProbeResult,
    SnmpTarget,
)

UINT32_MAX = 2**32 - 1

# --- the data files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    id: int
    type: str


@dataclass(frozen=True)
class Table:
    name: str
    entry: str
    columns: tuple[Column, ...]
    walk: str = "columns"  # or "entry": one walk of the whole entry, unwanted columns dropped
    # the first column may be missing while others are filled (ENTITY-MIB agents without
    # entPhysicalClass): when it comes back empty, the other columns are still walked
    first_optional: bool = False

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class Scalar:
    name: str
    oid: str
    type: str


@dataclass(frozen=True)
class Pattern:
    """A sysDescr regex; the value is group 1, or ``template`` expanded (``\\1 \\2``)."""

    regex: re.Pattern[str]
    template: str = r"\1"

    def extract(self, text: str) -> str | None:
        match = self.regex.search(text)
        if match is None or not match.groups():
            return None
        value = match.expand(self.template).strip()
        return value or None


@dataclass(frozen=True)
class DescrRule:
    match: re.Pattern[str]
    vendor: str | None = None
    platform: str | None = None
    version: Pattern | None = None
    model: Pattern | None = None
    serial: Pattern | None = None


@dataclass(frozen=True)
class Signature:
    """A vendor OID whose answer (matching ``match`` when given) says whose box a generic agent is."""

    oid: str
    vendor: str
    platform: str | None = None
    match: re.Pattern[str] | None = None
    scalars: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VendorEntry:
    prefix: tuple[int, ...]
    vendor: str
    platform: str | None = None
    version: Pattern | None = None
    model: Pattern | None = None
    serial: Pattern | None = None
    descr: tuple[DescrRule, ...] = ()
    scalars: tuple[tuple[str, str], ...] = ()  # (field, oid)
    # sysDescr describes a management card in the device (a UPS's network card): its model and
    # serial are the card's, so the vendor scalars (the device's own) are always asked for
    card: bool = False
    signatures: tuple[Signature, ...] = ()


@dataclass(frozen=True)
class Vendors:
    entries: tuple[VendorEntry, ...]
    fallback: tuple[DescrRule, ...]


_TYPES = frozenset({"text", "bytes", "int", "oid", "ip"})
_NUMERIC_OID = re.compile(r"^\d+(\.\d+)+$")


class DataFileError(ValueError):
    """``tables.yaml`` or ``vendors.yaml`` is wrong; the message names the file and the key."""


# The shapes of tables.yaml and vendors.yaml as pydantic models: a wrong file fails when it is
# first loaded, naming the file and the key (``vendors.yaml: vendors #12 scalars.model: ...``).


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_oid(value: Any) -> str:
    text = str(value).strip().lstrip(".")
    if not _NUMERIC_OID.match(text):
        raise ValueError(f"{value!r} is not a numeric OID")
    return text


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"bad regular expression {value!r}: {exc}") from None
    return value


_Oid = Annotated[Any, AfterValidator(_check_oid)]
_Regex = Annotated[str, AfterValidator(_check_regex)]
_ColumnType = Literal["text", "bytes", "int", "oid", "ip"]
_FACT_FIELDS = Literal["model", "serial", "os_version"]


class _ColumnModel(_Strict):
    id: StrictInt
    type: _ColumnType


class _TableModel(_Strict):
    entry: _Oid
    columns: dict[str, _ColumnModel] = Field(min_length=1)
    walk: Literal["columns", "entry"] = "columns"
    first_optional: bool = False


class _ScalarModel(_Strict):
    oid: _Oid
    type: _ColumnType


class _TablesFile(_Strict):
    scalars: dict[str, dict[str, _ScalarModel]]
    tables: dict[str, _TableModel]
    enums: dict[str, dict[StrictInt, str]]


class _PatternModel(_Strict):
    pattern: _Regex
    template: str = r"\1"


class _DescrRuleModel(_Strict):
    match: _Regex
    vendor: str | None = None
    platform: str | None = None
    version: _Regex | _PatternModel | None = None
    model: _Regex | _PatternModel | None = None
    serial: _Regex | _PatternModel | None = None


class _SignatureModel(_Strict):
    oid: _Oid
    vendor: str
    platform: str | None = None
    match: _Regex | None = None
    scalars: dict[_FACT_FIELDS, _Oid] = {}


class _VendorModel(_Strict):
    prefix: _Oid
    vendor: str
    platform: str | None = None
    version: _Regex | _PatternModel | None = None
    model: _Regex | _PatternModel | None = None
    serial: _Regex | _PatternModel | None = None
    descr: list[_DescrRuleModel] = []
    scalars: dict[_FACT_FIELDS, _Oid] = {}
    card: bool = False
    signatures: list[_SignatureModel] = []


class _VendorsFile(_Strict):
    vendors: list[_VendorModel]
    fallback: list[_DescrRuleModel] = []


def _where(loc: Sequence[Any]) -> str:
    """A pydantic error location the way the file reads: ``vendors #12 scalars.model``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f" #{part + 1}"
        elif part == "[key]" or str(part).startswith(("function-", "str", "_PatternModel", "json-or-python")):
            continue  # union and validator tags, not keys of the file
        else:
            out += ("." if out and not out.endswith(tuple("0123456789")) else " ") + str(part)
    return out.strip()


def _validate(model: type[BaseModel], data: Any, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        message = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
        raise DataFileError(f"{source}: {_where(err['loc']) or 'top level'}: {message}") from None


def _load_yaml(name: str) -> Any:
    return yaml.safe_load(resources.files("infra_mgr.network.snmp").joinpath(name).read_text(encoding="utf-8"))


def parse_tables(data: Any, source: str = "tables.yaml") -> _TablesFile:
    """``tables.yaml`` validated (:class:`DataFileError` names the file and the key)."""
    return _validate(_TablesFile, data, source)


@cache
def _tables_file() -> _TablesFile:
    return parse_tables(_load_yaml("tables.yaml"))


@cache
def tables() -> dict[str, Table]:
    """The tables of ``tables.yaml`` by name (loaded once)."""
    return {name: Table(name, spec.entry, tuple(Column(col, c.id, c.type) for col, c in spec.columns.items()),
                        spec.walk, spec.first_optional)
            for name, spec in _tables_file().tables.items()}


@cache
def scalar_groups() -> dict[str, tuple[Scalar, ...]]:
    """The scalar groups of ``tables.yaml`` (fetched with one GET each)."""
    return {group: tuple(Scalar(name, s.oid, s.type) for name, s in spec.items())
            for group, spec in _tables_file().scalars.items()}


@cache
def enums() -> dict[str, dict[int, str]]:
    """Enumerations of ``tables.yaml`` (ifType, status names)."""
    return {name: dict(values) for name, values in _tables_file().enums.items()}


def _pattern(raw: str | _PatternModel | None) -> Pattern | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return Pattern(re.compile(raw))
    return Pattern(re.compile(raw.pattern), raw.template)


def _rule(raw: _DescrRuleModel) -> DescrRule:
    return DescrRule(re.compile(raw.match), raw.vendor, raw.platform, _pattern(raw.version),
                     _pattern(raw.model), _pattern(raw.serial))


def parse_vendors(data: Any, source: str = "vendors.yaml") -> Vendors:
    """``vendors.yaml`` validated and compiled, longest prefixes first (:class:`DataFileError`
    names the file and the key)."""
    raw = _validate(_VendorsFile, data, source)
    entries = [
        VendorEntry(
            prefix=_oid_tuple(v.prefix) or (),
            vendor=v.vendor,
            platform=v.platform,
            version=_pattern(v.version),
            model=_pattern(v.model),
            serial=_pattern(v.serial),
            descr=tuple(_rule(r) for r in v.descr),
            scalars=tuple(v.scalars.items()),
            card=v.card,
            signatures=tuple(Signature(g.oid, g.vendor, g.platform, re.compile(g.match) if g.match else None,
                                       tuple(g.scalars.items()))
                             for g in v.signatures),
        )
        for v in raw.vendors
    ]
    entries.sort(key=lambda e: -len(e.prefix))
    return Vendors(tuple(entries), tuple(_rule(r) for r in raw.fallback))


@cache
def vendors() -> Vendors:
    """The vendor table of ``vendors.yaml``, longest prefixes first."""
    return parse_vendors(_load_yaml("vendors.yaml"))


# --- value conversion (pure) -------------------------------------------------------------------


def decode_text(raw: bytes) -> str:
    """Bytes an agent sent as text, by the module's rule: UTF-8 exactly, else ``\\xNN`` escapes."""
    data = raw.rstrip(b"\x00")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace")


def format_mac(raw: bytes) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` (any length, lower case); None for an empty address."""
    return ":".join(f"{b:02x}" for b in raw) if raw else None


def _oid_tuple(text: str) -> tuple[int, ...] | None:
    try:
        parts = tuple(int(p) for p in text.strip(".").split("."))
    except ValueError:
        return None
    return parts if parts and all(p >= 0 for p in parts) else None


class _BadType(Exception):
    pass


def convert(kind: str, value: ValueType) -> Any:
    """A raw value as a column of type ``kind`` wants it (see tables.yaml); ``_BadType`` if the
    agent sent the wrong SNMP type. ``None`` (absent, or NULL) stays ``None``."""
    if value is None:
        return None
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _BadType
    if kind == "text":
        if isinstance(value, bytes):
            return decode_text(value)
        if isinstance(value, str):  # a library that decodes for us (or an OID sent as text)
            return value
        raise _BadType
    if kind == "bytes":
        if isinstance(value, bytes):
            return value
        raise _BadType
    if kind == "oid":
        if isinstance(value, str) and _oid_tuple(value) is not None:
            return value.strip(".")
        raise _BadType
    if kind == "ip":
        if isinstance(value, bytes) and len(value) == 4:
            return str(ipaddress.IPv4Address(value))
        if isinstance(value, str):
            try:
                return str(ipaddress.IPv4Address(value))
            except ValueError:
                raise _BadType from None
        raise _BadType
    raise ValueError(f"unknown column type {kind!r}")


def _type_name(value: ValueType) -> str:
    return type(value).__name__


class Problems:
    """Problems found while parsing one device's data, one per (operation, kind, field)."""

    def __init__(self, address: str = "") -> None:
        self.address = address
        self.items: list[PollProblem] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(self, operation: str, kind: str, message: str, key: str = "") -> None:
        if (operation, kind, key) not in self._seen:
            self._seen.add((operation, kind, key))
            self.items.append(PollProblem(self.address, operation, kind, message))


# --- tables (pure) -----------------------------------------------------------------------------

Rows = dict[tuple[int, ...], dict[str, Any]]


def assemble(table: Table, varbinds: Iterable[VarBind], problems: Problems) -> Rows:
    """Group a table's varbinds into rows: index (the OID suffix after ``entry.column``, as a
    tuple of ints) → column name → converted value. Varbinds outside the table, of columns we do
    not read, or with a malformed index are skipped; wrong types are one ``bad_type`` problem per
    column and leave the field out."""
    prefix = table.entry + "."
    cut = len(prefix)
    by_id = {c.id: c for c in table.columns}
    rows: Rows = {}
    operation = f"walk {table.name}"
    for item in varbinds:
        try:
            oid, value = item
        except (TypeError, ValueError):
            continue
        if not isinstance(oid, str) or not oid.startswith(prefix):
            continue
        col_text, _, index_text = oid[cut:].partition(".")
        if not col_text.isdigit() or not index_text:
            continue
        column = by_id.get(int(col_text))
        if column is None:
            continue
        index = _oid_tuple(index_text)
        if index is None:
            continue
        try:
            converted = convert(column.type, value)
        except _BadType:
            problems.add(operation, "bad_type",
                         f"{table.name}.{column.name}: expected {column.type}, got {_type_name(value)} "
                         f"(first at {oid})", column.name)
            continue
        if converted is not None:
            rows.setdefault(index, {})[column.name] = converted
    return rows


def _single_index(rows: Rows) -> dict[int, dict[str, Any]]:
    """Rows indexed by one integer (ifIndex, entPhysicalIndex, port number); others dropped."""
    return {index[0]: row for index, row in rows.items() if len(index) == 1}


def _scalars(group: str, values: Mapping[str, ValueType], problems: Problems, operation: str) -> dict[str, Any]:
    """Named, converted values of a scalar group from a GET answer (oid → raw value)."""
    out: dict[str, Any] = {}
    for scalar in scalar_groups()[group]:
        value = values.get(scalar.oid) if isinstance(values, Mapping) else None
        try:
            converted = convert(scalar.type, value)
        except _BadType:
            problems.add(operation, "bad_type", f"{scalar.name} ({scalar.oid}): expected {scalar.type}, "
                                                f"got {_type_name(value)}", scalar.name)
            continue
        if converted is not None:
            out[scalar.name] = converted
    return out


# --- identity: vendor, platform, model, serial, version (pure) ---------------------------------


@dataclass
class Identity:
    vendor: str | None = None
    platform: str | None = None
    model: str | None = None
    serial: str | None = None
    os_version: str | None = None
    scalars: tuple[tuple[str, str], ...] = ()  # vendor OIDs that can fill what is still unknown
    card: bool = False  # sysDescr's model/serial are a management card's (see VendorEntry)
    signatures: tuple[Signature, ...] = ()


def identify(sys_object_id: str | None, sys_descr: str | None) -> Identity:
    """Vendor and platform from sysObjectID (longest prefix in vendors.yaml), refined by
    sysDescr rules, with model/serial/os_version extracted from sysDescr where a pattern says how."""
    descr = sys_descr if isinstance(sys_descr, str) else ""
    oid = _oid_tuple(sys_object_id) if isinstance(sys_object_id, str) else None
    table = vendors()
    entry = None
    if oid is not None:
        entry = next((e for e in table.entries if oid[: len(e.prefix)] == e.prefix), None)
    ident = Identity()
    patterns: dict[str, Pattern | None] = {"version": None, "model": None, "serial": None}
    rules: Sequence[DescrRule] = table.fallback
    if entry is not None:
        ident.vendor, ident.platform, ident.scalars = entry.vendor, entry.platform, entry.scalars
        ident.card, ident.signatures = entry.card, entry.signatures
        patterns = {"version": entry.version, "model": entry.model, "serial": entry.serial}
        rules = entry.descr
    for rule in rules:
        if rule.match.search(descr):
            ident.vendor = rule.vendor or ident.vendor
            ident.platform = rule.platform or ident.platform
            for name in patterns:
                patterns[name] = getattr(rule, name) or patterns[name]
            break
    if descr:
        ident.os_version = patterns["version"].extract(descr) if patterns["version"] else None
        ident.model = patterns["model"].extract(descr) if patterns["model"] else None
        ident.serial = patterns["serial"].extract(descr) if patterns["serial"] else None
    return ident


def apply_signature(ident: Identity, values: Mapping[str, ValueType] | None) -> None:
    """The first signature whose OID answered names vendor and platform, and its scalars go first."""
    if not isinstance(values, Mapping):
        return
    for sig in ident.signatures:
        value = values.get(sig.oid)
        text = decode_text(value) if isinstance(value, bytes) else (str(value) if value is not None else "")
        if text.strip() and (sig.match is None or sig.match.search(text)):
            ident.vendor, ident.platform = sig.vendor, sig.platform or ident.platform
            ident.scalars = sig.scalars + ident.scalars
            for name, _ in sig.scalars:  # the box's own answer beats what sysDescr (its kernel) says
                if name in ("model", "serial", "os_version"):
                    setattr(ident, name, None)
            return


def _chassis(entity: Rows) -> dict[str, Any]:
    """The ENTITY-MIB row that describes the box: the first chassis (class 3) with a serial or
    model, else the first row with a serial."""
    rows = sorted(_single_index(entity).items())
    for _, row in rows:
        if row.get("class") == 3 and (row.get("serial") or row.get("model")):
            return row
    for _, row in rows:
        if row.get("serial"):
            return row
    return {}


def _first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def format_chassis_id(subtype: Any, raw: Any) -> str | None:
    """An LLDP chassis id by its subtype (LldpChassisIdSubtype): 4 macAddress → aa:bb:…,
    5 networkAddress → the IP (first octet is the IANA family: 1 IPv4, 2 IPv6), others → text."""
    if not isinstance(raw, bytes) or not raw:
        return raw if isinstance(raw, str) and raw else None
    if subtype == 4:
        return format_mac(raw)
    if subtype == 5:
        return _network_address(raw) or _text_or_hex(raw)
    return _text_or_hex(raw)


def format_port_id(subtype: Any, raw: Any) -> str | None:
    """An LLDP port id by its subtype (LldpPortIdSubtype): 3 macAddress, 4 networkAddress,
    others (interfaceAlias, interfaceName, local, …) → text."""
    if not isinstance(raw, bytes) or not raw:
        return raw if isinstance(raw, str) and raw else None
    if subtype == 3:
        return format_mac(raw)
    if subtype == 4:
        return _network_address(raw) or _text_or_hex(raw)
    return _text_or_hex(raw)


def _network_address(raw: bytes) -> str | None:
    family, address = raw[0], raw[1:]
    if family == 1 and len(address) == 4:
        return str(ipaddress.IPv4Address(address))
    if family == 2 and len(address) == 16:
        return str(ipaddress.IPv6Address(address))
    return None


def _text_or_hex(raw: bytes) -> str:
    """Text if the bytes are printable UTF-8, else colon-separated hex (ids are often binary)."""
    try:
        text = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return format_mac(raw) or ""
    if text and text.isprintable():
        return text
    return format_mac(raw) or ""


def parse_facts(system: Mapping[str, ValueType], entity: Iterable[VarBind] = (),
                vendor_values: Mapping[str, ValueType] | None = None, *, address: str = ""
                ) -> tuple[DeviceFacts, list[PollProblem]]:
    """DeviceFacts from a GET of the system and LLDP-local scalars (oid → value), the
    ENTITY-MIB varbinds and the answers to the vendor's own scalars (oid → value)."""
    problems = Problems(address)
    sysvals = _scalars("system", system, problems, "facts")
    lldp = _scalars("lldp_local", system, problems, "facts")
    if_number = _scalars("interfaces", system, problems, "facts").get("if_number")
    entity_rows = assemble(tables()["ent_physical"], entity, problems)
    ident = identify(sysvals.get("sys_object_id"), sysvals.get("sys_descr"))
    apply_signature(ident, vendor_values)
    chassis = _chassis(entity_rows)
    extra: dict[str, str | None] = {}
    for name, oid in ident.scalars:
        value = (vendor_values or {}).get(oid) if isinstance(vendor_values, Mapping) else None
        try:
            extra[name] = convert("text", value)
        except _BadType:
            problems.add("facts", "bad_type", f"vendor {name} ({oid}): expected text, got {_type_name(value)}", name)
    uptime = sysvals.get("sys_uptime")
    facts = DeviceFacts(
        sys_name=sysvals.get("sys_name"),
        sys_descr=sysvals.get("sys_descr"),
        sys_object_id=sysvals.get("sys_object_id"),
        vendor=ident.vendor,
        platform=ident.platform,
        model=_first_text(chassis.get("model"), extra.get("model"), ident.model),
        serial=_first_text(chassis.get("serial"), extra.get("serial"), ident.serial),
        os_version=_first_text(ident.os_version, extra.get("os_version"), chassis.get("software_rev")),
        uptime_s=uptime / 100 if isinstance(uptime, int) and 0 <= uptime < 2**64 else None,
        location=sysvals.get("sys_location"),
        contact=sysvals.get("sys_contact"),
        if_count=if_number if isinstance(if_number, int) and 0 <= if_number < 1_000_000 else None,
        chassis_id=format_chassis_id(lldp.get("chassis_id_subtype"), lldp.get("chassis_id")),
    )
    return facts, problems.items


# --- interfaces (pure) -------------------------------------------------------------------------


def parse_interfaces(if_table: Iterable[VarBind], ifx_table: Iterable[VarBind] = (), *, address: str = ""
                     ) -> tuple[list[InterfaceFacts], list[PollProblem]]:
    """InterfaceFacts from ifTable and ifXTable varbinds: 64-bit HC octet counters preferred;
    speed from ifSpeed unless it is missing or saturated (4294967295), then ifHighSpeed × 10⁶;
    name from ifName, else ifDescr; statuses and ifType by name (tables.yaml enums)."""
    problems = Problems(address)
    base = _single_index(assemble(tables()["if_table"], if_table, problems))
    ext = _single_index(assemble(tables()["ifx_table"], ifx_table, problems))
    names = enums()
    out: list[InterfaceFacts] = []
    for index in sorted(set(base) | set(ext)):
        if index <= 0:
            continue
        row, xrow = base.get(index, {}), ext.get(index, {})
        speed = row.get("if_speed")
        high = xrow.get("if_high_speed")
        if (speed is None or speed >= UINT32_MAX) and high is not None and high >= 0:
            speed = high * 1_000_000
        if_type = row.get("if_type")
        mac = row.get("if_phys_address")
        out.append(InterfaceFacts(
            index=index,
            name=_first_text(xrow.get("if_name"), row.get("if_descr")),
            descr=row.get("if_descr"),
            alias=xrow.get("if_alias") or None,
            type=names["if_type"].get(if_type, str(if_type)) if if_type is not None else None,
            speed_bps=speed if speed is None or speed >= 0 else None,
            mac=format_mac(mac) if isinstance(mac, bytes) else None,
            mtu=row.get("if_mtu"),
            admin_status=names["if_status_admin"].get(row.get("if_admin_status")),  # type: ignore[arg-type]
            oper_status=names["if_status_oper"].get(row.get("if_oper_status")),  # type: ignore[arg-type]
            in_octets=_first_int(xrow.get("if_hc_in_octets"), row.get("if_in_octets")),
            out_octets=_first_int(xrow.get("if_hc_out_octets"), row.get("if_out_octets")),
            in_errors=row.get("if_in_errors"),
            out_errors=row.get("if_out_errors"),
            in_discards=row.get("if_in_discards"),
            out_discards=row.get("if_out_discards"),
        ))
    return out, problems.items


def _first_int(*values: Any) -> int | None:
    return next((v for v in values if isinstance(v, int)), None)


# --- neighbours (pure) -------------------------------------------------------------------------


class _InterfaceIndex:
    """Find a local interface by ifIndex or by a name an agent used for it (ifName first, then
    ifDescr, then ifAlias: an alias may repeat another port's name)."""

    def __init__(self, interfaces: Iterable[InterfaceFacts]) -> None:
        self.by_index: dict[int, InterfaceFacts] = {}
        self._by_text: tuple[dict[str, InterfaceFacts], ...] = ({}, {}, {})
        for i in interfaces:
            self.by_index[i.index] = i
            for table, text in zip(self._by_text, (i.name, i.descr, i.alias), strict=True):
                if text:
                    table.setdefault(text, i)

    def by_text(self, text: str | None) -> InterfaceFacts | None:
        if not text:
            return None
        return next((table[text] for table in self._by_text if text in table), None)

    def name_of(self, if_index: int | None) -> str | None:
        found = self.by_index.get(if_index) if if_index is not None else None
        return found.name if found else None


def parse_lldp(remote: Iterable[VarBind], man_addr: Iterable[VarBind] = (), local_ports: Iterable[VarBind] = (),
               interfaces: Iterable[InterfaceFacts] = (), *, address: str = ""
               ) -> tuple[list[NeighborFacts], list[PollProblem]]:
    """LLDP neighbours from lldpRemTable, lldpRemManAddrTable and lldpLocPortTable varbinds.

    The local interface of a neighbour: lldpRemLocalPortNum is a row of lldpLocPortTable, whose
    port id (or description) names an interface (ifName, ifDescr or ifAlias); failing that the
    port number is taken as an ifIndex when one exists; failing that, the agent's own text.
    The remote port: the port id, unless it is a MAC or network address and the port
    description says more. The remote address: the first IPv4 management address, else IPv6.
    """
    problems = Problems(address)
    table_set = tables()
    rem = assemble(table_set["lldp_rem"], remote, problems)
    ports = _single_index(assemble(table_set["lldp_loc_port"], local_ports, problems))
    known = _InterfaceIndex(interfaces)
    addresses = _lldp_man_addresses(assemble(table_set["lldp_rem_man_addr"], man_addr, problems))
    out: list[NeighborFacts] = []
    for index, row in sorted(rem.items()):
        if len(index) != 3:
            continue
        _, port_num, _ = index
        local_if: InterfaceFacts | None = None
        local_text: str | None = None
        port = ports.get(port_num, {})
        if port:
            port_id = format_port_id(port.get("port_id_subtype"), port.get("port_id"))
            local_if = known.by_text(port_id) or known.by_text(port.get("port_desc"))
            # a MAC or address as port id names nothing a person knows: prefer the description
            by_address = port.get("port_id_subtype") in (3, 4)
            local_text = _first_text(*((port.get("port_desc"), port_id) if by_address
                                       else (port_id, port.get("port_desc"))))
        if local_if is None:
            local_if = known.by_index.get(port_num)
        port_id_text = format_port_id(row.get("port_id_subtype"), row.get("port_id"))
        remote_port = port_id_text
        if row.get("port_id_subtype") in (3, 4) and row.get("port_desc"):
            remote_port = row["port_desc"]
        out.append(NeighborFacts(
            local_interface=local_if.name if local_if else (local_text or str(port_num)),
            protocol="lldp",
            remote_system_name=_first_text(row.get("sys_name")),
            remote_port=_first_text(remote_port, row.get("port_desc")),
            remote_chassis_id=format_chassis_id(row.get("chassis_id_subtype"), row.get("chassis_id")),
            remote_address=addresses.get(index),
            remote_platform=_first_text(row.get("sys_desc")),
            local_if_index=local_if.index if local_if else None,
        ))
    return out, problems.items


def _lldp_man_addresses(rows: Rows) -> dict[tuple[int, ...], str]:
    """(timeMark, localPort, remIndex) → management address. The index goes on with the address
    subtype (1 IPv4, 2 IPv6) and the address, length-prefixed as an OCTET STRING index should be
    (some agents leave the length out: accepted when the rest has the address's exact size)."""
    found: dict[tuple[int, ...], list[tuple[int, str]]] = {}
    for index in rows:
        if len(index) < 5:
            continue
        key, subtype, rest = index[:3], index[3], index[4:]
        if rest and rest[0] == len(rest) - 1:
            rest = rest[1:]
        if any(b > 255 for b in rest):
            continue
        if subtype == 1 and len(rest) == 4:
            found.setdefault(key, []).append((0, str(ipaddress.IPv4Address(bytes(rest)))))
        elif subtype == 2 and len(rest) == 16:
            found.setdefault(key, []).append((1, str(ipaddress.IPv6Address(bytes(rest)))))
    return {key: sorted(values)[0][1] for key, values in found.items()}


def _cdp_address(address_type: Any, raw: Any) -> str | None:
    """cdpCacheAddress: 4 octets of IPv4 when cdpCacheAddressType is ip(1); 16 octets of IPv6
    (type 20 on IOS); some agents send it as text."""
    if isinstance(raw, bytes):
        if len(raw) == 4 and address_type in (1, None):
            return str(ipaddress.IPv4Address(raw))
        if len(raw) == 16:
            return str(ipaddress.IPv6Address(raw))
        try:
            return str(ipaddress.ip_address(raw.decode("ascii").strip()))
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def parse_cdp(cache: Iterable[VarBind], interfaces: Iterable[InterfaceFacts] = (), *, address: str = ""
              ) -> tuple[list[NeighborFacts], list[PollProblem]]:
    """CDP neighbours from cdpCacheTable varbinds (index cdpCacheIfIndex.cdpCacheDeviceIndex):
    device id, port, address and platform; the local interface is the ifIndex's name."""
    problems = Problems(address)
    rows = assemble(tables()["cdp_cache"], cache, problems)
    known = _InterfaceIndex(interfaces)
    out: list[NeighborFacts] = []
    for index, row in sorted(rows.items()):
        if len(index) != 2:
            continue
        if_index = index[0]
        out.append(NeighborFacts(
            local_interface=known.name_of(if_index) or str(if_index),
            protocol="cdp",
            remote_system_name=_first_text(row.get("device_id")),
            remote_port=_first_text(row.get("device_port")),
            remote_chassis_id=None,
            remote_address=_cdp_address(row.get("address_type"), row.get("address")),
            remote_platform=_first_text(row.get("platform")),
            local_if_index=if_index if if_index in known.by_index else None,
        ))
    return out, problems.items


# --- addresses, ARP, MAC table (pure) ----------------------------------------------------------


def _inet_address(index: Sequence[int]) -> tuple[str | None, Sequence[int]]:
    """An InetAddressType + InetAddress index prefix (type, length, octets…) → (address, rest).
    Types 1 ipv4, 2 ipv6, 3 ipv4z, 4 ipv6z (zone index dropped)."""
    if len(index) < 2:
        return None, ()
    kind, length = index[0], index[1]
    octets, rest = index[2 : 2 + length], index[2 + length :]
    if len(octets) != length or any(o > 255 for o in octets):
        return None, ()
    raw = bytes(octets)
    if kind in (1, 3) and len(raw) in (4, 8):
        return str(ipaddress.IPv4Address(raw[:4])), rest
    if kind in (2, 4) and len(raw) in (16, 20):
        return str(ipaddress.IPv6Address(raw[:16])), rest
    return None, ()


def _prefix_length(netmask: str | None) -> int | None:
    if not netmask:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None  # not a contiguous mask


def parse_ip_addresses(ip_address: Iterable[VarBind] = (), ip_addr: Iterable[VarBind] = (), *, address: str = ""
                       ) -> tuple[list[IpAddressFacts], list[PollProblem]]:
    """Interface addresses from ipAddressTable (IPv4 and IPv6; prefix length is the last arc of
    ipAddressPrefix) and the older ipAddrTable (IPv4, netmask); the newer table wins."""
    problems = Problems(address)
    table_set = tables()
    found: dict[str, IpAddressFacts] = {}
    for index, row in assemble(table_set["ip_address"], ip_address, problems).items():
        addr, rest = _inet_address(index)
        if addr is None or rest or row.get("type") == 3:  # 3 = broadcast
            continue
        prefix = _oid_tuple(row.get("prefix", "")) if row.get("prefix") else None
        length = prefix[-1] if prefix and len(prefix) > 2 and prefix[-1] <= 128 else None
        found[addr] = IpAddressFacts(addr, length, row.get("if_index"))
    for index, row in assemble(table_set["ip_addr"], ip_addr, problems).items():
        if len(index) != 4 or any(o > 255 for o in index):
            continue
        addr = ".".join(map(str, index))
        known = found.get(addr)
        length = _prefix_length(row.get("netmask"))
        if known is None:
            found[addr] = IpAddressFacts(addr, length, row.get("if_index"))
        else:
            known.prefix_length = known.prefix_length if known.prefix_length is not None else length
            known.if_index = known.if_index if known.if_index is not None else row.get("if_index")
    return sorted(found.values(), key=lambda a: (":" in a.address, a.address)), problems.items


def parse_arp(net_to_physical: Iterable[VarBind] = (), net_to_media: Iterable[VarBind] = (), *, address: str = ""
              ) -> tuple[list[ArpFacts], list[PollProblem]]:
    """ARP/ND entries from ipNetToPhysicalTable (ifIndex.type.len.address) and, for what it lacks,
    ipNetToMediaTable (ifIndex.a.b.c.d); invalid (type 2) entries are dropped."""
    problems = Problems(address)
    table_set = tables()
    found: dict[tuple[int, str], ArpFacts] = {}
    for index, row in assemble(table_set["ip_net_to_physical"], net_to_physical, problems).items():
        if len(index) < 3:
            continue
        ip, rest = _inet_address(index[1:])
        mac = row.get("phys_address")
        if ip is None or rest or row.get("type") == 2 or not isinstance(mac, bytes) or not mac:
            continue
        found[(index[0], ip)] = ArpFacts(ip, format_mac(mac) or "", index[0])
    for index, row in assemble(table_set["ip_net_to_media"], net_to_media, problems).items():
        if len(index) != 5 or any(o > 255 for o in index[1:]):
            continue
        ip = ".".join(map(str, index[1:]))
        mac = row.get("phys_address")
        if row.get("type") == 2 or not isinstance(mac, bytes) or not mac:
            continue
        found.setdefault((index[0], ip), ArpFacts(ip, format_mac(mac) or "", index[0]))
    return sorted(found.values(), key=lambda a: (a.if_index or 0, a.ip)), problems.items


def parse_mac_table(q_fdb: Iterable[VarBind] = (), fdb: Iterable[VarBind] = (), base_ports: Iterable[VarBind] = (),
                    *, address: str = "") -> tuple[list[MacFacts], list[PollProblem]]:
    """Forwarding database from Q-BRIDGE dot1qTpFdbTable (fdbId.MAC; the FDB id is taken as the
    VLAN, true of most switches) or else BRIDGE dot1dTpFdbTable (MAC), bridge ports mapped to
    ifIndex through dot1dBasePortIfIndex. invalid(2) and self(4) entries are dropped."""
    problems = Problems(address)
    table_set = tables()
    port_if = {port: row.get("if_index") for port, row in
               _single_index(assemble(table_set["dot1d_base_port"], base_ports, problems)).items()}
    out: list[MacFacts] = []
    for index, row in sorted(assemble(table_set["dot1q_tp_fdb"], q_fdb, problems).items()):
        if len(index) != 7 or any(o > 255 for o in index[1:]) or row.get("status") in (2, 4):
            continue
        port = row.get("port")
        out.append(MacFacts(format_mac(bytes(index[1:])) or "", index[0], port, port_if.get(port)))
    if not out:
        for index, row in sorted(assemble(table_set["dot1d_tp_fdb"], fdb, problems).items()):
            if len(index) != 6 or any(o > 255 for o in index) or row.get("status") in (2, 4):
                continue
            port = row.get("port")
            out.append(MacFacts(format_mac(bytes(index)) or "", None, port, port_if.get(port)))
    return out, problems.items


# --- getters (I/O through a Walker) ------------------------------------------------------------


async def walk_table(walker: Walker, name: str, columns: Sequence[str] | None = None,
                     rows: Sequence[str] | None = None, expect_rows: int | None = None) -> list[VarBind]:
    """The varbinds of a tables.yaml table: column by column (only the named columns), or the whole
    entry in one walk when the table says ``walk: entry``. When the first column comes back
    empty the table is taken as empty and the other columns are not asked for (a table's first
    listed column must exist in every row). ``rows``: only these row indexes (OID suffixes),
    fetched by GET where the walker can — e.g. the LLDP local ports that have a neighbour.
    ``expect_rows``: how many rows the table is believed to have (sizes the first walk)."""
    table = tables()[name]
    operation = f"walk {name}"
    wanted = [c for c in table.columns if columns is None or c.name in columns]
    if rows is not None:
        return await _table_rows(walker, [f"{table.entry}.{c.id}" for c in wanted], rows, operation)
    if table.walk == "entry":
        limit = getattr(walker, "max_rows", 20_000) * max(c.id for c in table.columns)
        return await walker.walk(table.entry, max_rows=limit, operation=operation)
    first = f"{table.entry}.{wanted[0].id}"
    out = await walker.walk(first, operation=operation, expect_rows=expect_rows)
    if not out and table.first_optional:
        for column in wanted[1:]:
            out.extend(await walker.walk(f"{table.entry}.{column.id}", operation=operation))
        return out
    if not out or len(wanted) == 1:
        return out
    # The first column gave the row indexes: the other columns are fetched for exactly those rows,
    # by GET where the walker can (several columns per request), else walked, each in one answer
    # of the known size (no request past the end, no rows of the next column over-fetched).
    rest = [f"{table.entry}.{column.id}" for column in wanted[1:]]
    get_rows = getattr(walker, "get_rows", None)
    if get_rows is not None:
        cut = len(first) + 1
        cells = await get_rows(rest, [oid[cut:] for oid, _ in out], operation=operation)
        if cells is not None:
            return out + cells
    known = len(out)
    for base in rest:
        out.extend(await walker.walk(base, operation=operation, expect_rows=known))
    return out


async def _table_rows(walker: Walker, bases: list[str], rows: Sequence[str], operation: str) -> list[VarBind]:
    if not rows or not bases:
        return []
    get_rows = getattr(walker, "get_rows", None)
    if get_rows is not None:
        cells = await get_rows(bases, list(rows), operation=operation)
        if cells is not None:
            return cells
    wanted = set(rows)
    out: list[VarBind] = []
    for base in bases:  # a walker that cannot GET rows (SNMPv1): walk and keep the rows asked for
        cut = len(base) + 1
        out.extend(vb for vb in await walker.walk(base, operation=operation) if vb[0][cut:] in wanted)
    return out


def _column_rows(varbinds: Iterable[VarBind], base: str) -> dict[str, ValueType]:
    """Row index → value of one column among a table's varbinds."""
    prefix = base + "."
    cut = len(prefix)
    return {oid[cut:]: value for oid, value in varbinds if oid.startswith(prefix)}


def _keep(walker: Walker, problems: list[PollProblem]) -> None:
    """Parser problems go on the walker's list beside the request problems (already one per
    field, so not deduplicated again per operation)."""
    walker.problems.extend(problems)


async def get_facts(walker: Walker) -> DeviceFacts:
    """System group, LLDP local chassis id, ENTITY-MIB chassis, vendor scalars when needed."""
    oids = [s.oid for group in ("system", "lldp_local", "interfaces") for s in scalar_groups()[group]]
    before = len(walker.problems)
    system = await walker.get(oids, operation="facts")
    if len(walker.problems) == before and not any(s.oid in system for s in scalar_groups()["system"]):
        walker.problem("facts", "no_such_object", "the agent has none of the system group (noSuchObject)")
    try:
        entity = await walk_table(walker, "ent_physical")
    except PollAbort:
        # ENTITY-MIB is optional and some agents drop requests that reach into their broken
        # groups: a device that has answered the system group keeps its facts (the timeout is
        # on the walker's problems); a device that never answered is given up as before.
        if not walker.answered or not any(s.oid in system for s in scalar_groups()["system"]):
            raise
        entity = []
    facts, problems = parse_facts(system, entity, address=walker.address)
    ident = identify(facts.sys_object_id, facts.sys_descr)
    missing = [(name, oid) for name, oid in ident.scalars
               if getattr(facts, name, None) is None or (ident.card and name in ("model", "serial"))]
    probes = [s.oid for s in ident.signatures] + [o for s in ident.signatures for _, o in s.scalars]
    if missing or probes:
        asked = list(dict.fromkeys([oid for _, oid in missing] + probes))
        extra = await walker.get(asked, operation="facts vendor")
        facts, problems = parse_facts(system, entity, extra, address=walker.address)
    _keep(walker, problems)
    return facts


# Traffic counters: needed to monitor an interface, not to know it exists (discovery skips them,
# which roughly halves what it asks of every device).
COUNTER_COLUMNS = frozenset({"if_in_octets", "if_in_discards", "if_in_errors", "if_out_octets", "if_out_discards",
                             "if_out_errors", "if_hc_in_octets", "if_hc_out_octets"})


def _columns(name: str, counters: bool) -> list[str] | None:
    if counters:
        return None
    return [c.name for c in tables()[name].columns if c.name not in COUNTER_COLUMNS]


async def get_interfaces(walker: Walker, counters: bool = True, if_count: int | None = None
                         ) -> list[InterfaceFacts]:
    """ifTable + ifXTable. An agent without ifTable rows is reported (``end_of_mib``): every
    SNMP agent of a network device has interfaces, so none means the walk was cut short.
    ``if_count`` (ifNumber, from the facts) sizes the first walk.

    Without counters (discovery) ifXTable is read by GET for the ifTable rows only, and
    ifHighSpeed only where ifSpeed cannot say it (missing, or saturated above 4.29 Gbit/s)."""
    before = len(walker.problems)
    if_rows = await walk_table(walker, "if_table", _columns("if_table", counters), expect_rows=if_count)
    ifx_rows: list[VarBind] = []
    if if_rows and counters:
        ifx_rows = await walk_table(walker, "ifx_table")
    elif if_rows:
        table = tables()["if_table"]
        indexes = _column_rows(if_rows, f"{table.entry}.{table.columns[0].id}")
        ifx_rows = await walk_table(walker, "ifx_table", [c for c in _columns("ifx_table", False) or ()
                                                          if c != "if_high_speed"], rows=list(indexes))
        speeds = _column_rows(if_rows, f"{table.entry}.{table.column('if_speed').id}")
        unsure = [i for i in indexes if not isinstance(speeds.get(i), int) or speeds[i] >= UINT32_MAX]
        ifx_rows += await walk_table(walker, "ifx_table", ["if_high_speed"], rows=unsure)
    if not if_rows and len(walker.problems) == before:
        walker.problem("walk if_table", "end_of_mib", "no interfaces: the agent ended the walk at once "
                                                      "(endOfMibView or an empty ifTable)")
    interfaces, problems = parse_interfaces(if_rows, ifx_rows, address=walker.address)
    _keep(walker, problems)
    return interfaces


async def read_lldp(walker: Walker) -> tuple[list[VarBind], list[VarBind]]:
    """The LLDP remote table and its management addresses, raw (who the neighbours are and
    where to reach them: enough for a crawl to go on before the interfaces are read)."""
    remote = await walk_table(walker, "lldp_rem")
    man = await walk_table(walker, "lldp_rem_man_addr") if remote else []
    return remote, man


async def finish_lldp(walker: Walker, remote: list[VarBind], man: list[VarBind],
                      interfaces: Sequence[InterfaceFacts]) -> list[NeighborFacts]:
    """LLDP neighbours from :func:`read_lldp`'s tables, their local ports named from the LLDP
    local port table — read only for the ports that have a neighbour."""
    if not remote:
        return []
    rem = tables()["lldp_rem"]
    cut = len(rem.entry) + 1
    # the index is lldpRemTimeMark.lldpRemLocalPortNum.lldpRemIndex
    ports = {oid[cut:].split(".")[2] for oid, _ in remote
             if oid.startswith(rem.entry + ".") and oid.count(".", cut) >= 3}
    local = await walk_table(walker, "lldp_loc_port", rows=sorted(ports, key=lambda p: (len(p), p)))
    neighbors, problems = parse_lldp(remote, man, local, interfaces, address=walker.address)
    _keep(walker, problems)
    return neighbors


async def get_lldp_neighbors(walker: Walker, interfaces: Sequence[InterfaceFacts] | None = None
                             ) -> list[NeighborFacts]:
    """LLDP neighbours (interfaces are walked if not given: they name the local ports)."""
    remote, man = await read_lldp(walker)
    if not remote:
        return []
    if interfaces is None:
        interfaces = await get_interfaces(walker)
    return await finish_lldp(walker, remote, man, interfaces)


async def get_cdp_neighbors(walker: Walker, interfaces: Sequence[InterfaceFacts] | None = None
                            ) -> list[NeighborFacts]:
    """CDP neighbours (one request on agents without CDP)."""
    cache = await walk_table(walker, "cdp_cache")
    if not cache:
        return []
    if interfaces is None:
        interfaces = await get_interfaces(walker)
    neighbors, problems = parse_cdp(cache, interfaces, address=walker.address)
    _keep(walker, problems)
    return neighbors


async def get_ip_addresses(walker: Walker) -> list[IpAddressFacts]:
    """ipAddressTable, and ipAddrTable only when the former has no IPv4 rows."""
    new = await walk_table(walker, "ip_address")
    addresses, problems = parse_ip_addresses(new, address=walker.address)
    if not any(":" not in a.address for a in addresses):
        old = await walk_table(walker, "ip_addr")
        addresses, problems = parse_ip_addresses(new, old, address=walker.address)
    _keep(walker, problems)
    return addresses


async def get_arp(walker: Walker) -> list[ArpFacts]:
    """ipNetToPhysicalTable, and ipNetToMediaTable only when the former is empty."""
    physical = await walk_table(walker, "ip_net_to_physical")
    media = [] if physical else await walk_table(walker, "ip_net_to_media")
    entries, problems = parse_arp(physical, media, address=walker.address)
    _keep(walker, problems)
    return entries


async def get_mac_table(walker: Walker) -> list[MacFacts]:
    """Q-BRIDGE FDB, else BRIDGE FDB; bridge ports mapped to ifIndex. (Cisco IOS serves BRIDGE-MIB
    per VLAN only through community@vlan or an SNMPv3 context, which gufo-snmp cannot send.)"""
    q_fdb = await walk_table(walker, "dot1q_tp_fdb")
    fdb = [] if q_fdb else await walk_table(walker, "dot1d_tp_fdb")
    ports = await walk_table(walker, "dot1d_base_port") if (q_fdb or fdb) else []
    entries, problems = parse_mac_table(q_fdb, fdb, ports, address=walker.address)
    _keep(walker, problems)
    return entries


# --- probe -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeOptions:
    """What a probe reads beyond facts and interfaces.

    ``on_neighbors``: called once, as soon as the neighbour tables are read and before the
    interfaces are, with the neighbours as far as they are known then (addresses, names; local
    ports not yet named) — so that a crawl reaches the next devices without waiting for this
    one's interfaces. The neighbours in the result are the complete ones.
    """

    neighbors: bool = True
    ip_addresses: bool = True
    counters: bool = True
    on_neighbors: Callable[[list[NeighborFacts]], None] | None = None


async def probe(target: SnmpTarget, engine: SnmpEngine | None = None, options: ProbeOptions | None = None
                ) -> ProbeResult:
    """Poll one device: facts, interfaces, LLDP and CDP neighbours, IP addresses.

    Never raises for anything the agent does: problems are in ``errors``; ``reachable`` is False
    when no valid SNMP response came back (timeout, refused port, failed SNMPv3 authentication).
    What was read before a device was given up is kept.
    """
    engine = engine or default_engine()
    options = options or ProbeOptions()
    result = ProbeResult(address=target.address, port=target.port)
    async with engine.session(target) as walker:
        try:
            async with asyncio.timeout(engine.device_deadline_s):
                result.facts = await get_facts(walker)
                remote: list[VarBind] = []
                man: list[VarBind] = []
                cache: list[VarBind] = []
                if options.neighbors:
                    remote, man = await read_lldp(walker)
                    cache = await walk_table(walker, "cdp_cache")
                    if options.on_neighbors is not None and (remote or cache):
                        options.on_neighbors(parse_lldp(remote, man, address=walker.address)[0]
                                             + parse_cdp(cache, (), address=walker.address)[0])
                result.interfaces = await get_interfaces(walker, options.counters, result.facts.if_count)
                if options.neighbors:
                    result.neighbors = await finish_lldp(walker, remote, man, result.interfaces)
                    if cache:
                        cdp, problems = parse_cdp(cache, result.interfaces, address=walker.address)
                        _keep(walker, problems)
                        result.neighbors += cdp
                if options.ip_addresses:
                    result.ip_addresses = await get_ip_addresses(walker)
        except PollAbort:
            pass
        except TimeoutError:
            walker.problem("poll", "timeout", f"device poll exceeded {engine.device_deadline_s:g} s")
        result.errors = list(walker.problems)
        # an SNMPv3 agent answers engine discovery to anyone: only an authenticated answer counts
        result.reachable = walker.answered and not any(p.kind == "auth" for p in result.errors)
    return result


async def probe_many(targets: Iterable[SnmpTarget], engine: SnmpEngine | None = None,
                     options: ProbeOptions | None = None) -> list[ProbeResult]:
    """Probe many devices concurrently within the engine's bounds; results in the targets' order.
    One device's failure is in its own result and never stops the others."""
    engine = engine or default_engine()
    return list(await asyncio.gather(*(probe(t, engine, options) for t in targets)))
