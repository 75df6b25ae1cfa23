"""Bulk import and export of sites, prefixes and devices (YAML or CSV).

An import is all-or-nothing: every row is validated first and each problem is reported as
``file:line: field: reason``; only a file with no problem is written, in one transaction.
Rows are matched on their natural key (site code, prefix, hostname), so importing the same
file twice changes nothing and an edited file updates in place.

An import never re-homes an existing object as a side effect: a prefix or a device that already
belongs to another site, or a management address held by another device, is refused with
``file:line: <kind> <key> belongs to <owner>`` unless the caller asks for moves explicitly; each
move is then listed. A dry run does all the work in a transaction that is rolled back, so it
reports exactly what a real run would write.

The file itself is treated as hostile: only a regular file no larger than a limit is read (so a
device or a FIFO cannot exhaust memory), YAML aliases and deep nesting are refused (no expansion
bombs), and problems name the line and the field, never the text found there (importing
``/etc/shadow`` by mistake must not print it).
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlmodel import Session, select
from yaml.composer import ComposerError
from yaml.events import AliasEvent

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
KINDS = ("site", "prefix", "device")
MOVABLE = ("prefix", "device", "address")

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
"""Largest file an import reads; the city example is ~30 KB, so this leaves room for any real estate."""
MAX_DEPTH = 12
"""Deepest YAML nesting accepted; the format needs 5 levels (sections > list > site > prefixes > list)."""

_NAMEABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
"""What a reference to another object (a site code) must look like before a message may quote it."""


class ImportFailed(Exception):
    """Raised with every problem found; nothing of the import was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class FileRefused(ImportFailed):
    """The file was not read at all: not a regular file, or larger than the limit."""

    def __init__(self, message: str) -> None:
        super().__init__([message])
        self.message = message


@dataclass
class Change:
    """One object the import creates, updates, moves or leaves as it is.

    ``fields`` maps each changed field to (before, after); a move names the owner on each side
    (a site code for prefixes and devices, a hostname for addresses; None means no owner).
    """

    action: str  # created | updated | moved | unchanged
    kind: str  # site | prefix | device | address
    key: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    owner_from: str | None = None
    owner_to: str | None = None

    def describe(self) -> str:
        if self.action == "moved":
            text = f"moved: {self.kind} {self.key} {self.owner_from or '(none)'} -> {self.owner_to or '(none)'}"
        else:
            text = f"{self.action}: {self.kind} {self.key}"
        if self.action != "created" and self.fields:
            text += " (" + ", ".join(self.fields) + ")"
        return text

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "kind": self.kind, "key": self.key}
        if self.action == "moved":
            out["from"], out["to"] = self.owner_from, self.owner_to
        if self.action != "created":
            out["fields"] = {k: {"before": b, "after": a} for k, (b, a) in self.fields.items()}
        return out


def _counts(kinds: tuple[str, ...] = KINDS) -> dict[str, int]:
    return dict.fromkeys(kinds, 0)


@dataclass
class ImportResult:
    created: dict[str, int] = field(default_factory=_counts)
    updated: dict[str, int] = field(default_factory=_counts)
    unchanged: dict[str, int] = field(default_factory=_counts)
    moved: dict[str, int] = field(default_factory=lambda: _counts(MOVABLE))
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False

    def add(self, change: Change) -> None:
        getattr(self, change.action)[change.kind] += 1
        self.changes.append(change)


@dataclass
class _Row:
    kind: str  # site | prefix | device
    line: int
    data: dict[str, Any]
    key_lines: dict[str, int]
    site_code: str | None = None


# --------------------------------------------------------------------------- reading


def _refuse_unless_regular(path: Path, st: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        what = ("a directory" if stat.S_ISDIR(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise FileRefused(f"{path}: {what}; only regular files are imported")
    if st.st_size > max_bytes:
        raise FileRefused(f"{path}: {st.st_size} bytes, above the import limit of {max_bytes} bytes "
                          "(setting import_max_bytes)")


def read_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The file's text, or FileRefused before a byte is read if it is not a regular file within the limit.

    The path is checked, then opened without blocking (a FIFO must not hang the command) and the
    open file checked again, so a path swapped in between cannot slip through; at most
    ``max_bytes + 1`` bytes are ever read, which also catches a file that grows while read.
    """
    try:
        _refuse_unless_regular(path, os.stat(path), max_bytes)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise ImportFailed([f"{path}:0: file: {exc.strerror}"]) from exc
    with os.fdopen(fd, "rb") as fh:
        _refuse_unless_regular(path, os.fstat(fh.fileno()), max_bytes)
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileRefused(f"{path}: larger than the import limit of {max_bytes} bytes (setting import_max_bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed([f"{path}:{line}: file: not UTF-8 text ({exc.reason})"]) from exc


# --------------------------------------------------------------------------- parsing


def _safe_problem(text: str) -> str:
    """A parser's complaint without any quoted piece of the file longer than an escaped character."""
    return re.sub(r"'[^'\n]{4,}'|\"[^\"\n]{4,}\"", "'…'", text)


class _LineLoader(yaml.SafeLoader):
    """A YAML loader that remembers the line of every mapping and of each key in it.

    It also refuses aliases (``*name``: one line can stand for millions of rows) and nesting
    deeper than the format needs (the composer recurses once per level).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        mark = event.start_mark if isinstance(event.start_mark, yaml.error.Mark) else None
        if isinstance(event, AliasEvent):
            raise ComposerError(None, None, "aliases (*name) are not accepted in an import file", mark)
        if self._depth >= MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
    mapping = yaml.SafeLoader.construct_mapping(loader, node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    mapping["__key_lines__"] = {k.value: k.start_mark.line + 1 for k, _ in node.value
                                if isinstance(k, yaml.ScalarNode)}
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _strip(d: dict[Any, Any]) -> tuple[dict[Any, Any], int, dict[str, int]]:
    line = d.get("__line__", 0)
    key_lines = d.get("__key_lines__", {})
    return {k: v for k, v in d.items() if not (isinstance(k, str) and k.startswith("__"))}, line, key_lines


def _key_line(key: Any, key_lines: dict[Any, int], default: int) -> int:
    try:
        return key_lines.get(key, default)
    except TypeError:  # an unhashable key (a YAML mapping used as a key)
        return default


def _parse_yaml(text: str, name: str, problems: list[str]) -> list[_Row]:
    try:
        doc = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or " ")
        problems.append(f"{name}:{line}: file: not valid YAML (character #x{char:04x} is not allowed)")
        return []
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or "unreadable"
        problems.append(f"{name}:{line}: file: not valid YAML ({_safe_problem(str(problem))})")
        return []
    if not isinstance(doc, dict):
        problems.append(f"{name}:1: file: expected a mapping with 'sites' and/or 'devices'")
        return []
    body, _, key_lines = _strip(doc)
    rows: list[_Row] = []
    for key in body:
        if key not in ("sites", "devices"):
            problems.append(f"{name}:{_key_line(key, key_lines, 1)}: file: unknown section (expected sites, devices)")
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
            code = data.get("code")
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
                rows.append(_Row("prefix", pline, pdata, pklines, site_code=code if isinstance(code, str) else ""))
    return rows


_CSV_COLUMNS = {"site": SITE_FIELDS, "prefix": (*PREFIX_FIELDS, "site"), "device": (*DEVICE_FIELDS, "site")}


def _parse_csv(text: str, name: str, problems: list[str]) -> list[_Row]:
    """CSV: a header decides the kind — ``code,…`` sites, ``prefix,site,…`` prefixes, ``hostname,site,…`` devices."""
    reader = csv.DictReader(io.StringIO(text))
    rows: list[_Row] = []
    try:
        header = reader.fieldnames or []
        if "code" in header:
            kind = "site"
        elif "prefix" in header:
            kind = "prefix"
        elif "hostname" in header:
            kind = "device"
        else:
            problems.append(f"{name}:1: header: needs a 'code' (sites), 'prefix' (prefixes) or 'hostname' (devices)"
                            " column")
            return []
        unknown = [i for i, col in enumerate(header, 1) if col not in _CSV_COLUMNS[kind]]
        if unknown:
            problems.append(f"{name}:1: header: column {', '.join(map(str, unknown))} not a known field (expected "
                            f"{', '.join(_CSV_COLUMNS[kind])})")
            return []
        for rec in reader:
            line = reader.line_num
            if None in rec:
                problems.append(f"{name}:{line}: row: more values than header columns")
                continue
            data = {k: v for k, v in rec.items() if v not in ("", None)}
            site = data.pop("site", None) if kind in ("prefix", "device") else None
            if kind == "device" and site is not None:
                data["site"] = site
            rows.append(_Row(kind, line, data, {}, site_code=site if kind == "prefix" else None))
    except csv.Error as exc:
        problems.append(f"{name}:{reader.line_num or 1}: file: not valid CSV ({_safe_problem(str(exc))})")
        return []
    return rows


def parse_text(text: str, name: str, csv_format: bool = False) -> list[_Row]:
    problems: list[str] = []
    rows = _parse_csv(text, name, problems) if csv_format else _parse_yaml(text, name, problems)
    if problems:
        raise ImportFailed(problems)
    return rows


def parse(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> list[_Row]:
    return parse_text(read_text(path, max_bytes), str(path), csv_format=path.suffix.lower() == ".csv")


# --------------------------------------------------------------------------- validation and writing


def _safe_msg(err: Any) -> str:
    """Pydantic's message for one error, with the offending input cut out (messages may quote it)."""
    msg = str(err["msg"])
    value = err.get("input")
    if isinstance(value, str) and value.strip():
        msg = msg.replace(repr(value), "the value")
        if len(value.strip()) >= 4:  # shorter text could match words of the message itself
            msg = msg.replace(value.strip(), "…")
    return msg


def _validate(schema: type[BaseModel], row: _Row, name: str, fields: tuple[str, ...], problems: list[str],
              extra: dict[str, Any] | None = None) -> BaseModel | None:
    unknown = [k for k in row.data if k not in fields]
    for key in unknown:
        problems.append(f"{name}:{_key_line(key, row.key_lines, row.line)}: field: unknown name (expected one of "
                        f"{', '.join(fields)})")
    if unknown:
        return None
    data = {k: v for k, v in row.data.items() if k != "site"}
    try:
        return schema.model_validate({**data, **(extra or {})})
    except ValidationError as exc:
        for err in exc.errors():
            fld = ".".join(str(p) for p in err["loc"]) or "row"
            problems.append(f"{name}:{row.key_lines.get(fld, row.line)}: {fld}: {_safe_msg(err)}")
        return None


def _no_site(code: Any) -> str:
    if isinstance(code, str) and _NAMEABLE.fullmatch(code):
        return f"no site with code {code!r}"
    return "not a site code"


def _snapshot(obj: Any, cols: tuple[str, ...]) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in cols}


def _set(obj: Any, values: dict[str, Any]) -> None:
    """Assign only what differs, so an untouched object is not flushed or recorded in history."""
    for key, value in values.items():
        if getattr(obj, key) != value:
            setattr(obj, key, value)


def _diff(obj: Any, before: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {c: (old, getattr(obj, c)) for c, old in before.items() if getattr(obj, c) != old}


def _belongs(name: str, line: int, kind: str, key: str, owner: str | None, target: str | None) -> str:
    return (f"{name}:{line}: {kind} {key} belongs to {owner or '(none)'} (the file gives it to "
            f"{target or '(none)'}; --move re-homes it)")


def import_rows(session: Session, rows: list[_Row], name: str, *, move: bool = False,
                dry_run: bool = False) -> ImportResult:
    """Validate every row, then write them all in the caller's transaction (or raise, writing nothing).

    Without ``move`` an object that would change owner is a problem like any invalid field. With
    ``dry_run`` everything is written and flushed (so constraints and history run as for real) and
    then rolled back: the result is exactly what a real run reports.
    """
    problems: list[str] = []
    result = ImportResult(dry_run=dry_run)
    sites: dict[str, tuple[_Row, SiteCreate]] = {}
    prefixes: dict[str, tuple[_Row, PrefixCreate, str | None]] = {}
    devices: dict[str, tuple[_Row, DeviceCreate, str]] = {}
    code_of: dict[int, str] = {sid: code for sid, code in session.exec(select(Site.id, Site.code)).all()
                               if sid is not None}
    existing_codes = set(code_of.values())

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
                    problems.append(f"{name}:{row.line}: site: {_no_site(code)}")
                if model.prefix in prefixes:
                    problems.append(f"{name}:{row.line}: prefix: {model.prefix} already defined at line "
                                    f"{prefixes[model.prefix][0].line}")
                prefixes[model.prefix] = (row, model, code or None)
        elif row.kind == "device":
            code = row.data.get("site")
            if not code or not isinstance(code, str) or (code not in sites and code not in existing_codes):
                problems.append(f"{name}:{_key_line('site', row.key_lines, row.line)}: site: "
                                f"{'required' if not code else _no_site(code)}")
                continue
            model = _validate(DeviceCreate, row, name, (*DEVICE_FIELDS, "site"), problems, extra={"site_id": 1})
            if isinstance(model, DeviceCreate):
                if model.hostname in devices:
                    problems.append(f"{name}:{row.line}: hostname: {model.hostname} already defined at line "
                                    f"{devices[model.hostname][0].line}")
                devices[model.hostname] = (row, model, code)

    # Ownership: every object the file would take from its current owner, all reported at once.
    prefix_owner = {p: (code_of.get(sid) if sid is not None else None)
                    for p, sid in session.exec(select(Prefix.prefix, Prefix.site_id)).all()}
    device_rows = session.exec(select(Device.hostname, Device.site_id, Device.management_address)).all()
    device_owner = {h: code_of.get(sid) for h, sid, _ in device_rows}
    address_owner = {a: h for h, _, a in device_rows if a}
    prefix_moves: dict[str, tuple[str | None, str | None]] = {}
    device_moves: dict[str, tuple[str | None, str]] = {}
    address_moves: dict[str, tuple[str, str]] = {}
    for pfx, (row, _model, code) in prefixes.items():
        if pfx in prefix_owner and prefix_owner[pfx] != code:
            prefix_moves[pfx] = (prefix_owner[pfx], code)
            if not move:
                problems.append(_belongs(name, row.line, "prefix", pfx, prefix_owner[pfx], code))
    given_address: dict[str, tuple[str, int]] = {}
    for host, (row, dmodel, code) in devices.items():
        if host in device_owner and device_owner[host] != code:
            device_moves[host] = (device_owner[host], code)
            if not move:
                problems.append(_belongs(name, _key_line("site", row.key_lines, row.line), "device", host,
                                         device_owner[host], code))
        addr = dmodel.management_address if "management_address" in row.data else None
        if addr is None:
            continue
        line = _key_line("management_address", row.key_lines, row.line)
        if addr in given_address:
            problems.append(f"{name}:{line}: management_address: {addr} already given to "
                            f"{given_address[addr][0]} at line {given_address[addr][1]}")
            continue
        given_address[addr] = (host, line)
        holder = address_owner.get(addr)
        if holder is not None and holder != host:
            address_moves[addr] = (holder, host)
            if not move:
                problems.append(_belongs(name, line, "address", addr, holder, host))
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
            result.add(Change("created", "site", code))
            continue
        before = _snapshot(site, tuple(values))
        _set(site, values)
        changed = _diff(site, before)
        result.add(Change("updated" if changed else "unchanged", "site", code, changed))
    session.flush()

    by_prefix = {p.prefix: p for p in session.exec(select(Prefix)).all()}
    for pfx, (_row, model, code) in prefixes.items():
        values = model.model_dump(mode="json")
        values["site_id"] = by_code[code].id if code else None
        obj = by_prefix.get(pfx)
        if obj is None:
            session.add(Prefix(**values))
            result.add(Change("created", "prefix", pfx))
            continue
        before = _snapshot(obj, tuple(values))
        _set(obj, values)
        changed = _diff(obj, before)
        if pfx in prefix_moves:
            changed.pop("site_id", None)
            result.add(Change("moved", "prefix", pfx, changed, *prefix_moves[pfx]))
        else:
            result.add(Change("updated" if changed else "unchanged", "prefix", pfx, changed))

    by_host = {d.hostname: d for d in session.exec(select(Device)).all()}
    cols = (*DEVICE_FIELDS, "site_id")
    before_dev = {h: _snapshot(by_host[h], cols) for h in devices if h in by_host}
    # A moved address leaves its holder first, in a flush of its own, so the unique index never
    # sees it on two devices at once whatever order the updates below are flushed in.
    for addr, (holder, taker) in address_moves.items():
        by_host[holder].management_address = None
        result.add(Change("moved", "address", addr, {}, holder, taker))
        if holder not in devices:
            result.add(Change("updated", "device", holder, {"management_address": (addr, None)}))
    session.flush()
    for host, (row, model, code) in devices.items():
        values = model.model_dump(mode="json", include=set(row.data) | {"hostname"})
        values["site_id"] = by_code[code].id
        dev = by_host.get(host)
        if dev is None:
            session.add(Device(**values))
            result.add(Change("created", "device", host))
            continue
        _set(dev, values)
        changed = _diff(dev, before_dev[host])
        if host in device_moves:
            changed.pop("site_id", None)
            result.add(Change("moved", "device", host, changed, *device_moves[host]))
        else:
            result.add(Change("updated" if changed else "unchanged", "device", host, changed))
    session.flush()
    if dry_run:
        session.rollback()
    return result


def import_file(session: Session, path: Path, *, move: bool = False, dry_run: bool = False,
                max_bytes: int = DEFAULT_MAX_BYTES) -> ImportResult:
    return import_rows(session, parse(path, max_bytes), str(path), move=move, dry_run=dry_run)


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
