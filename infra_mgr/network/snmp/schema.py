"""The SNMP data files: ``tables.yaml`` (which tables and columns the getters read, and their types)
and ``vendors.yaml`` (how a sysObjectID or sysDescr names a vendor, platform and model), loaded
once and validated by pydantic models so a bad entry is an error naming the file and key.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError

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


Oid = Annotated[Any, AfterValidator(_check_oid)]  # a numeric OID (leading dot dropped); data files of any domain
Regex = Annotated[str, AfterValidator(_check_regex)]
_ColumnType = Literal["text", "bytes", "int", "oid", "ip"]
_FACT_FIELDS = Literal["model", "serial", "os_version"]


class _ColumnModel(_Strict):
    id: StrictInt
    type: _ColumnType


class _TableModel(_Strict):
    entry: Oid
    columns: dict[str, _ColumnModel] = Field(min_length=1)
    walk: Literal["columns", "entry"] = "columns"
    first_optional: bool = False


class _ScalarModel(_Strict):
    oid: Oid
    type: _ColumnType


class _TablesFile(_Strict):
    scalars: dict[str, dict[str, _ScalarModel]]
    tables: dict[str, _TableModel]
    enums: dict[str, dict[StrictInt, str]]


class _PatternModel(_Strict):
    pattern: Regex
    template: str = r"\1"


class _DescrRuleModel(_Strict):
    match: Regex
    vendor: str | None = None
    platform: str | None = None
    version: Regex | _PatternModel | None = None
    model: Regex | _PatternModel | None = None
    serial: Regex | _PatternModel | None = None


class _SignatureModel(_Strict):
    oid: Oid
    vendor: str
    platform: str | None = None
    match: Regex | None = None
    scalars: dict[_FACT_FIELDS, Oid] = {}


class _VendorModel(_Strict):
    prefix: Oid
    vendor: str
    platform: str | None = None
    version: Regex | _PatternModel | None = None
    model: Regex | _PatternModel | None = None
    serial: Regex | _PatternModel | None = None
    descr: list[_DescrRuleModel] = []
    scalars: dict[_FACT_FIELDS, Oid] = {}
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
            prefix=oid_tuple(v.prefix) or (),
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


def oid_tuple(text: str) -> tuple[int, ...] | None:
    try:
        parts = tuple(int(p) for p in text.strip(".").split("."))
    except ValueError:
        return None
    return parts if parts and all(p >= 0 for p in parts) else None
