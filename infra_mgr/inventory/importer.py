"""Bulk import and export of sites, prefixes and devices (YAML or CSV).

An import is all-or-nothing: every row is validated first and each problem is reported as
``file:line: field: reason``; only a file with no problem is written, in one transaction.
Rows are matched on their natural key (site code, prefix, hostname), so importing the same
file twice changes nothing and an edited file updates in place.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select

from infra_mgr.inventory.models import (
    Device,
    DeviceCreate,
    Prefix,
    PrefixCreate,
    Site,
    SiteCreate,
)

SITE_FIELDS = ("code", "name_en", "name_ar", "kind", "status", "address", "latitude", "longitude", "description")
PREFIX_FIELDS = ("prefix", "role", "description")
DEVICE_FIELDS = ("hostname", "management_address", "role", "vendor", "platform", "model", "serial", "os_version",
                 "status")


class ImportFailed(Exception):
    """Raised with every problem found; nothing of the import was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=lambda: {"site": 0, "prefix": 0, "device": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"site": 0, "prefix": 0, "device": 0})
    unchanged: dict[str, int] = field(default_factory=lambda: {"site": 0, "prefix": 0, "device": 0})


@dataclass
class _Row:
    kind: str  # site | prefix | device
    line: int
    data: dict[str, Any]
    key_lines: dict[str, int]
    site_code: str | None = None


# --------------------------------------------------------------------------- parsing


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping and of each key in it."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__key_lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value if hasattr(k, "value")}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(d: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, int]]:
    line = d.get("__line__", 0)
    key_lines = d.get("__key_lines__", {})
    return {k: v for k, v in d.items() if not k.startswith("__")}, line, key_lines


def _parse_yaml(text: str, name: str, problems: list[str]) -> list[_Row]:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        problems.append(f"{name}:{line}: file: not valid YAML ({getattr(exc, 'problem', exc)})")
        return []
    if not isinstance(doc, dict):
        problems.append(f"{name}:1: file: expected a mapping with 'sites' and/or 'devices'")
        return []
    body, _, key_lines = _strip(doc)
    rows: list[_Row] = []
    for key in body:
        if key not in ("sites", "devices"):
            problems.append(f"{name}:{key_lines.get(key, 1)}: {key}: unknown section (expected sites, devices)")
    for section, kind in (("sites", "site"), ("devices", "device")):
        items = body.get(section) or []
        if not isinstance(items, list):
            problems.append(f"{name}:{key_lines.get(section, 1)}: {section}: must be a list")
            continue
        for item in items:
            if not isinstance(item, dict):
                problems.append(f"{name}:{key_lines.get(section, 1)}: {section}: every entry must be a mapping")
                continue
            data, line, klines = _strip(item)
            prefixes = data.pop("prefixes", None) if kind == "site" else None
            rows.append(_Row(kind, line, data, klines))
            if prefixes is None:
                continue
            if not isinstance(prefixes, list):
                problems.append(f"{name}:{klines.get('prefixes', line)}: prefixes: must be a list")
                continue
            for p in prefixes:
                if not isinstance(p, dict):
                    problems.append(f"{name}:{klines.get('prefixes', line)}: prefixes: every entry must be a mapping")
                    continue
                pdata, pline, pklines = _strip(p)
                rows.append(_Row("prefix", pline, pdata, pklines, site_code=str(data.get("code", ""))))
    return rows


def _parse_csv(text: str, name: str, problems: list[str]) -> list[_Row]:
    """CSV: a header decides the kind — ``code,…`` sites, ``prefix,site,…`` prefixes, ``hostname,site,…`` devices."""
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if "code" in header:
        kind = "site"
    elif "prefix" in header:
        kind = "prefix"
    elif "hostname" in header:
        kind = "device"
    else:
        problems.append(f"{name}:1: header: needs a 'code' (sites), 'prefix' (prefixes) or 'hostname' (devices) column")
        return []
    rows: list[_Row] = []
    for rec in reader:
        line = reader.line_num
        data = {k: (v if v != "" else None) for k, v in rec.items() if k is not None}
        data = {k: v for k, v in data.items() if v is not None}
        if None in rec:
            problems.append(f"{name}:{line}: row: more values than header columns")
            continue
        site = data.pop("site", None) if kind in ("prefix", "device") else None
        if kind == "device" and site is not None:
            data["site"] = site
        rows.append(_Row(kind, line, data, {}, site_code=site if kind == "prefix" else None))
    return rows


def parse(path: Path) -> list[_Row]:
    problems: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed([f"{path}:1: file: not UTF-8 text ({exc.reason})"]) from exc
    except OSError as exc:
        raise ImportFailed([f"{path}:0: file: {exc.strerror}"]) from exc
    suffix = path.suffix.lower()
    rows = _parse_csv(text, str(path), problems) if suffix == ".csv" else _parse_yaml(text, str(path), problems)
    if problems:
        raise ImportFailed(problems)
    return rows


# --------------------------------------------------------------------------- validation and writing


def _validate(schema: type[BaseModel], row: _Row, name: str, fields: tuple[str, ...], problems: list[str],
              extra: dict[str, Any] | None = None) -> BaseModel | None:
    unknown = set(row.data) - set(fields) - {"site"}
    for key in sorted(unknown):
        problems.append(f"{name}:{row.key_lines.get(key, row.line)}: {key}: unknown field")
    if unknown:
        return None
    data = {k: v for k, v in row.data.items() if k != "site"}
    try:
        return schema.model_validate({**data, **(extra or {})})
    except ValidationError as exc:
        for err in exc.errors():
            fld = ".".join(str(p) for p in err["loc"]) or "row"
            problems.append(f"{name}:{row.key_lines.get(fld, row.line)}: {fld}: {err['msg']}")
        return None


def _apply(session: Session, obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)
            changed = True
    return changed


def import_rows(session: Session, rows: list[_Row], name: str) -> ImportResult:
    """Validate every row, then write them all in the caller's transaction (or raise, writing nothing)."""
    problems: list[str] = []
    result = ImportResult()
    sites: dict[str, tuple[_Row, SiteCreate]] = {}
    prefixes: dict[str, tuple[_Row, PrefixCreate, str | None]] = {}
    devices: dict[str, tuple[_Row, DeviceCreate, str]] = {}
    existing_codes = set(session.exec(select(Site.code)).all())

    for row in rows:
        if row.kind == "site":
            model = _validate(SiteCreate, row, name, SITE_FIELDS, problems)
            if isinstance(model, SiteCreate):
                if model.code in sites:
                    problems.append(f"{name}:{row.line}: code: {model.code} already defined at line "
                                    f"{sites[model.code][0].line}")
                sites[model.code] = (row, model)
    for row in rows:
        if row.kind == "prefix":
            model = _validate(PrefixCreate, row, name, PREFIX_FIELDS, problems)
            if isinstance(model, PrefixCreate):
                code = row.site_code
                if code and code not in sites and code not in existing_codes:
                    problems.append(f"{name}:{row.line}: site: no site with code {code!r}")
                if model.prefix in prefixes:
                    problems.append(f"{name}:{row.line}: prefix: {model.prefix} already defined at line "
                                    f"{prefixes[model.prefix][0].line}")
                prefixes[model.prefix] = (row, model, code)
        elif row.kind == "device":
            code = row.data.get("site")
            if not code or (code not in sites and code not in existing_codes):
                problems.append(f"{name}:{row.key_lines.get('site', row.line)}: site: "
                                f"{'required' if not code else f'no site with code {code!r}'}")
                continue
            model = _validate(DeviceCreate, row, name, DEVICE_FIELDS, problems, extra={"site_id": 1})
            if isinstance(model, DeviceCreate):
                if model.hostname in devices:
                    problems.append(f"{name}:{row.line}: hostname: {model.hostname} already defined at line "
                                    f"{devices[model.hostname][0].line}")
                devices[model.hostname] = (row, model, str(code))
    if problems:
        raise ImportFailed(problems)

    by_code = {s.code: s for s in session.exec(select(Site)).all()}
    for code, (_row, model) in sites.items():
        values = model.model_dump(mode="json")
        site = by_code.get(code)
        if site is None:
            site = Site(**values)
            session.add(site)
            by_code[code] = site
            result.created["site"] += 1
        elif _apply(session, site, values):
            result.updated["site"] += 1
        else:
            result.unchanged["site"] += 1
    session.flush()

    by_prefix = {p.prefix: p for p in session.exec(select(Prefix)).all()}
    for pfx, (_row, model, code) in prefixes.items():
        values = model.model_dump(mode="json")
        values["site_id"] = by_code[code].id if code else None
        obj = by_prefix.get(pfx)
        if obj is None:
            session.add(Prefix(**values))
            result.created["prefix"] += 1
        elif _apply(session, obj, values):
            result.updated["prefix"] += 1
        else:
            result.unchanged["prefix"] += 1

    by_host = {d.hostname: d for d in session.exec(select(Device)).all()}
    for host, (row, model, code) in devices.items():
        values = model.model_dump(mode="json", include=set(row.data) | {"hostname"})
        values["site_id"] = by_code[code].id
        dev = by_host.get(host)
        if dev is None:
            session.add(Device(**values))
            result.created["device"] += 1
        elif _apply(session, dev, values):
            result.updated["device"] += 1
        else:
            result.unchanged["device"] += 1
    session.flush()
    return result


def import_file(session: Session, path: Path) -> ImportResult:
    return import_rows(session, parse(path), str(path))


def export_data(session: Session) -> dict[str, Any]:
    """Everything importable, in the import format (an export re-imports to the same state)."""
    sites = session.exec(select(Site).order_by(Site.code)).all()
    pfx_by_site: dict[int | None, list[Prefix]] = {}
    for p in session.exec(select(Prefix).order_by(Prefix.prefix)).all():
        pfx_by_site.setdefault(p.site_id, []).append(p)
    code_of = {s.id: s.code for s in sites}
    out_sites = []
    for s in sites:
        entry = {f: getattr(s, f) for f in SITE_FIELDS if getattr(s, f) not in (None, "")}
        entry["prefixes"] = [{f: getattr(p, f) for f in PREFIX_FIELDS if getattr(p, f) not in (None, "")}
                             for p in pfx_by_site.get(s.id, [])]
        out_sites.append(entry)
    devices = []
    for d in session.exec(select(Device).order_by(Device.hostname)).all():
        entry = {"site": code_of.get(d.site_id)}
        entry.update({f: getattr(d, f) for f in DEVICE_FIELDS if getattr(d, f) not in (None, "")})
        devices.append(entry)
    data: dict[str, Any] = {"sites": out_sites}
    if devices:
        data["devices"] = devices
    return data


def export_yaml(session: Session) -> str:
    return yaml.safe_dump(export_data(session), allow_unicode=True, sort_keys=False, width=120)


def export_csv(session: Session) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(SITE_FIELDS), lineterminator="\n")
    writer.writeheader()
    for s in export_data(session)["sites"]:
        writer.writerow({k: v for k, v in s.items() if k != "prefixes"})
    return buf.getvalue()
