"""Read views of configuration backup: each device's backup state, its version list, one version,
the diff of two versions (unified and side by side), regex search across the latest configs,
compliance findings per device and per site, backup runs, and SSH host keys.

The API serves these models, the dashboard renders them and ``infra-mgr backup|config`` prints
them. Every text here is masked (the collector masks before anything is stored).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import time
from collections.abc import Sequence
from typing import Any, Literal

import regex
from pydantic import BaseModel
from sqlalchemy import and_, case, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infra_mgr.common import ListPage, page_window
from infra_mgr.errors import Invalid, NotFound
from infra_mgr.inventory.models import Device, DeviceStatus, Site
from infra_mgr.network.ssh.models import (
    BackupRun,
    ComplianceFinding,
    ConfigBackupState,
    ConfigVersion,
    SshHostKey,
)

SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}  # events.models.Severity, worst last
BACKUP_STATUSES = ("never", "ok", "failed")
# Search bounds: a pattern no longer than this, lines cut at this many characters before matching,
# and the whole search (every config) given this many seconds before it is stopped and refused.
MAX_PATTERN = 500
MAX_LINE = 1000
SEARCH_BUDGET_S = 5.0
MAX_DIFF_LINES = 200_000  # a larger version is refused by the diff view (422), not rendered

# --------------------------------------------------------------------------- models


class DeviceBackupRow(BaseModel):
    """One device's backup state (the backup list and a device page's header)."""

    device_id: int
    hostname: str
    site_code: str
    site_id: int
    address: str
    device_type: str
    status: Literal["never", "ok", "failed"]
    reason_kind: str
    reason: str  # in words, e.g. "the password was refused"
    last_attempt: dt.datetime | None
    last_success: dt.datetime | None
    last_change: dt.datetime | None
    since: dt.datetime | None = None  # when ``status`` last changed: a failure's "failing since"
    versions: int
    findings: int  # open compliance findings
    worst_severity: str | None  # of those findings


class VersionRow(BaseModel):
    """One stored version in a device's list (no text: a list of 1,000 must stay small)."""

    id: int
    number: int
    collected_at: dt.datetime
    trigger: str
    actor: str
    sha256: str
    lines: int
    size: int
    changed_lines: int


class VersionList(BaseModel):
    device: DeviceBackupRow
    versions: list[VersionRow]  # newest first
    total: int
    page: int
    size: int


class VersionText(BaseModel):
    device_id: int
    hostname: str
    version: VersionRow
    text: str


class DiffLine(BaseModel):
    """A row of the side-by-side view. ``kind``: same | changed | added | removed | skipped
    (``skipped`` stands for ``count`` unchanged lines folded away)."""

    kind: Literal["same", "changed", "added", "removed", "skipped"]
    left_no: int | None = None
    left: str | None = None
    right_no: int | None = None
    right: str | None = None
    count: int = 0


class ConfigDiff(BaseModel):
    device_id: int
    hostname: str
    old: VersionRow
    new: VersionRow
    added: int
    removed: int
    unified: str  # `diff -u` text
    rows: list[DiffLine]  # side by side, unchanged runs folded beyond ``context`` lines
    # Why nothing is compared, in words, when ``old`` is ``new`` (a device with a single stored
    # version): "only one version stored: nothing to compare". Empty for a real comparison.
    note: str = ""


class SearchLine(BaseModel):
    number: int  # 1-based line number in the config
    text: str
    match: bool  # the line matched (else it is context)
    # (start, end) of every non-empty match in ``text``, found within the search's time budget: a
    # page marking the matches uses these and never runs the (maybe slow) pattern again
    spans: list[tuple[int, int]] = []


class SearchHit(BaseModel):
    device_id: int
    hostname: str
    site_code: str
    version_number: int
    collected_at: dt.datetime
    lines: list[SearchLine]
    matches: int


class SearchResult(BaseModel):
    pattern: str
    devices_searched: int
    devices_matched: int
    hits: list[SearchHit]
    truncated: bool  # more matches than returned
    seconds: float


class FindingRow(BaseModel):
    device_id: int
    hostname: str
    site_code: str
    rule_id: str
    severity: str
    message: str
    lines: list[str]
    # Where each evidence line is in the checked version (1-based, ``None`` when not found): the
    # same text twice is two places in the configuration, not a repeated finding.
    line_numbers: list[int | None] = []
    version_number: int | None
    first_seen: dt.datetime
    last_seen: dt.datetime


class SiteCompliance(BaseModel):
    site_id: int
    site_code: str
    site_name_en: str
    site_name_ar: str
    devices: int  # devices with a stored config
    compliant: int  # of those, with no finding
    # Active devices of the site with an address (so a backup would try them) but no stored
    # configuration: nobody knows whether they comply, so "1 of 2 (1 not read)", never "1 of 1".
    not_read: int = 0
    findings: int
    by_severity: dict[str, int]


class ComplianceSummary(BaseModel):
    """After re-checking every latest configuration: how many devices, findings now open, newly
    opened and resolved by this check, and each site's standing."""

    devices: int
    findings: int
    opened: int
    resolved: int
    sites: list[SiteCompliance]


class BackupRunRow(BaseModel):
    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float | None
    trigger: str
    actor: str
    scope: str
    status: str
    error: str
    devices: int
    changed: int
    unchanged: int
    failed: int
    failures: list[dict[str, str | int | None]]


class BackupStarted(BaseModel):
    """The answer to starting a backup: the run to follow (``GET /api/v1/backup/runs/{run_id}``)."""

    run_id: int
    url: str
    scope: str


class HostKeyRow(BaseModel):
    id: int
    device_id: int | None
    hostname: str | None
    address: str
    port: int
    key_type: str
    fingerprint: str
    first_seen: dt.datetime
    last_seen: dt.datetime
    offered_fingerprint: str  # empty unless a different key was refused
    offered_at: dt.datetime | None
    accepted_by: str
    accepted_at: dt.datetime | None


# --------------------------------------------------------------------------- devices


def resolve_device(session: Session, ref: str | int) -> tuple[Device, Site]:
    """A device named the way every device route names one: its id (digits) or its hostname.
    Unknown → :class:`NotFound` naming ``device``."""
    text = str(ref).strip()
    found = None
    if text.isascii() and text.isdigit() and len(text) <= 18:
        found = session.exec(select(Device, Site).join(Site, col(Site.id) == col(Device.site_id))
                             .where(col(Device.id) == int(text))).first()
    if found is None and text:
        found = session.exec(select(Device, Site).join(Site, col(Site.id) == col(Device.site_id))
                             .where(func.lower(col(Device.hostname)) == text.lower())).first()
    if found is None:
        raise NotFound(f"no device {text!r} (give its hostname or id)", field="device")
    return found[0], found[1]


def _device_type(state_type: str, platform: str, vendor: str) -> str:
    """The netmiko device type a backup uses: the device's own override, else the platform table's."""
    if state_type:
        return state_type
    from infra_mgr.network.ssh.platforms import platform_table

    found = platform_table().for_device(platform or "", vendor or "")
    return found.device_type if found else ""


def _finding_counts(session: Session, device_ids: Sequence[int]) -> dict[int, tuple[int, str | None]]:
    """Open findings per device and the worst severity among them: one grouped query."""
    if not device_ids:
        return {}
    rows = session.exec(select(ComplianceFinding.device_id, ComplianceFinding.severity, func.count())
                        .where(col(ComplianceFinding.device_id).in_(device_ids))
                        .group_by(col(ComplianceFinding.device_id), col(ComplianceFinding.severity))).all()
    out: dict[int, tuple[int, str | None]] = {}
    for device_id, severity, n in rows:
        count, worst = out.get(device_id, (0, None))
        if worst is None or SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(worst, 0):
            worst = severity
        out[device_id] = (count + int(n), worst)
    return out


def _backup_stmt() -> Any:
    return (sa_select(col(Device.id), col(Device.hostname), col(Device.management_address), col(Device.platform),
                      col(Device.vendor), col(Site.id), col(Site.code), ConfigBackupState)
            .join(Site, col(Site.id) == col(Device.site_id))
            .outerjoin(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id)))


def _backup_rows(session: Session, rows: Sequence[Any]) -> list[DeviceBackupRow]:
    counts = _finding_counts(session, [r[0] for r in rows])
    out = []
    for device_id, hostname, mgmt, platform, vendor, site_id, site_code, state in rows:
        n, worst = counts.get(device_id, (0, None))
        st = state or ConfigBackupState(device_id=device_id)
        out.append(DeviceBackupRow(
            device_id=device_id, hostname=hostname, site_code=site_code, site_id=site_id,
            address=st.address or mgmt or "", device_type=_device_type(st.device_type, platform, vendor),
            status=st.status if st.status in BACKUP_STATUSES else "never", reason_kind=st.reason_kind,
            reason=st.reason, last_attempt=st.last_attempt, last_success=st.last_success,
            last_change=st.last_change, since=st.since, versions=st.versions, findings=n, worst_severity=worst))
    return out


def backups(session: Session, site_code: str | None = None, status: str | None = None, page: int = 1,
            size: int = 100) -> ListPage[DeviceBackupRow]:
    """Every device's backup state, failed first, then never backed up, then ok, each by hostname
    (a device never tried is ``never``), so a failure is on the first page for the API, the CLI and
    the dashboard alike; three queries whatever the fleet: the count, the page, the page's findings."""
    conds: list[Any] = []
    if site_code:
        conds.append(func.lower(col(Site.code)) == site_code.lower())
    if status == "never":
        conds.append(or_(col(ConfigBackupState.device_id).is_(None), col(ConfigBackupState.status) == "never"))
    elif status:
        conds.append(col(ConfigBackupState.status) == status)
    base = (select(func.count()).select_from(Device).join(Site, col(Site.id) == col(Device.site_id))
            .outerjoin(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id)).where(*conds))
    total = int(session.exec(base).one())
    page, offset = page_window(total, page, size)
    rank = case((col(ConfigBackupState.status) == "failed", 0), (col(ConfigBackupState.status) == "ok", 2), else_=1)
    rows = session.execute(_backup_stmt().where(*conds).order_by(rank, col(Device.hostname), col(Device.id))
                           .offset(offset).limit(size)).all()
    return ListPage[DeviceBackupRow](rows=_backup_rows(session, rows), total=total, page=page, size=size)


def backup_row(session: Session, device_id: int) -> DeviceBackupRow:
    rows = session.execute(_backup_stmt().where(col(Device.id) == device_id)).all()
    if not rows:
        raise NotFound(f"no device {device_id}", field="device")
    return _backup_rows(session, rows)[0]


# --------------------------------------------------------------------------- versions

# Every column but the text: a list never loads a configuration.
_VERSION_COLS = tuple(col(c) for c in (
    ConfigVersion.id, ConfigVersion.number, ConfigVersion.collected_at, ConfigVersion.trigger, ConfigVersion.actor,
    ConfigVersion.sha256, ConfigVersion.lines, ConfigVersion.size, ConfigVersion.changed_lines))


def _version_row(row: Sequence[Any]) -> VersionRow:
    return VersionRow(id=row[0], number=row[1], collected_at=row[2], trigger=row[3], actor=row[4], sha256=row[5],
                      lines=row[6], size=row[7], changed_lines=row[8])


def versions(session: Session, device: str | int, page: int = 1, size: int = 50) -> VersionList:
    """A device's versions, newest first, without their texts (the (device, number) unique index
    serves both the count and the page)."""
    dev, _site = resolve_device(session, device)
    total = int(session.exec(select(func.count()).select_from(ConfigVersion)
                             .where(col(ConfigVersion.device_id) == dev.id)).one())
    page, offset = page_window(total, page, size)
    rows = session.execute(sa_select(*_VERSION_COLS).where(col(ConfigVersion.device_id) == dev.id)
                        .order_by(col(ConfigVersion.number).desc()).offset(offset).limit(size)).all()
    return VersionList(device=backup_row(session, dev.id or 0), versions=[_version_row(r) for r in rows],
                       total=total, page=page, size=size)


def _version_meta(session: Session, device_id: int, number: int | None, field: str) -> VersionRow:
    """One version's row (no text): ``number`` None is the latest."""
    stmt = sa_select(*_VERSION_COLS).where(col(ConfigVersion.device_id) == device_id)
    if number is None:
        stmt = stmt.order_by(col(ConfigVersion.number).desc()).limit(1)
    else:
        stmt = stmt.where(col(ConfigVersion.number) == number)
    row = session.execute(stmt).first()
    if row is None:
        what = "no stored configuration" if number is None else f"no version {number}"
        raise NotFound(f"{what} for this device", field=field)
    return _version_row(row)


def _text(session: Session, version_id: int) -> str:
    return session.exec(select(ConfigVersion.text).where(col(ConfigVersion.id) == version_id)).one()


def version_text(session: Session, device: str | int, number: int | None = None) -> VersionText:
    """One version's masked text (the latest when ``number`` is None)."""
    dev, _site = resolve_device(session, device)
    meta = _version_meta(session, dev.id or 0, number, "number")
    return VersionText(device_id=dev.id or 0, hostname=dev.hostname, version=meta, text=_text(session, meta.id))


# --------------------------------------------------------------------------- diff


def _compare(old: str, new: str, context: int, old_label: str, new_label: str
             ) -> tuple[str, list[DiffLine], int, int]:
    """(unified text, side-by-side rows, added, removed): one matching feeds all four."""
    from infra_mgr.network.ssh import diff as diff_mod

    comparison = diff_mod.compare(old, new)
    return (diff_mod.unified(comparison, old_label, new_label, context), diff_mod.rows(comparison, context),
            comparison.added, comparison.removed)


def diff(session: Session, device: str | int, a: int | None = None, b: int | None = None,
         context: int = 3) -> ConfigDiff:
    """Version ``a`` against version ``b`` of a device. Defaults: ``b`` the latest, ``a`` the one
    before ``b``. A device with a single version is compared with itself (``old`` is ``new``, no
    change) and ``note`` says so; a device with no version at all is :class:`NotFound` naming
    ``device`` (it is the device that has nothing, not a version number that is wrong)."""
    dev, _site = resolve_device(session, device)
    new = _version_meta(session, dev.id or 0, b, "b" if b is not None else "device")
    if a is None:
        prev = session.exec(select(ConfigVersion.number).where(col(ConfigVersion.device_id) == dev.id,
                                                               col(ConfigVersion.number) < new.number)
                            .order_by(col(ConfigVersion.number).desc()).limit(1)).first()
        old = _version_meta(session, dev.id or 0, prev, "a") if prev is not None else new
    else:
        old = _version_meta(session, dev.id or 0, a, "a")
    for meta, field in ((old, "a"), (new, "b")):
        if meta.lines > MAX_DIFF_LINES:  # rows for every line of a huge text would swamp the page and the API
            raise Invalid(f"version {meta.number} has {meta.lines} lines; a diff is shown up to "
                          f"{MAX_DIFF_LINES} lines (compare the texts outside)", field=field)
    texts = dict(session.exec(select(ConfigVersion.id, ConfigVersion.text)
                              .where(col(ConfigVersion.id).in_({old.id, new.id}))).all())
    unified, rows, added, removed = _compare(texts[old.id], texts[new.id], max(0, context),
                                             f"{dev.hostname} v{old.number}", f"{dev.hostname} v{new.number}")
    note = ""
    if old.id == new.id:
        note = ("the same version on both sides: nothing to compare" if a is not None
                else "only one version stored: nothing to compare" if b is None
                else f"version {new.number} is the first stored: nothing before it to compare")
    return ConfigDiff(device_id=dev.id or 0, hostname=dev.hostname, old=old, new=new, added=added,
                      removed=removed, unified=unified, rows=rows, note=note)


# --------------------------------------------------------------------------- search


def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """A search pattern, or :class:`Invalid` naming ``pattern`` with what is wrong in words. The
    ``regex`` module (Python's syntax) is used for its timeout: ``re`` cannot be interrupted, and a
    catastrophic pattern such as ``(x+x+)+y`` would otherwise hold a server thread for ever."""
    if not pattern:
        raise Invalid("the pattern is empty", field="pattern")
    if len(pattern) > MAX_PATTERN:
        raise Invalid(f"the pattern is longer than {MAX_PATTERN} characters", field="pattern")
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise Invalid(f"not a valid regular expression: {exc}", field="pattern") from None
    except (RecursionError, OverflowError):
        raise Invalid("the pattern is too deeply nested", field="pattern") from None


# (device id, hostname, site code, version number, collected at, text)
_Latest = tuple[int, str, str, int, dt.datetime, str]
# per device: (matches, [(line number, text, matched, match spans)])
_Found = list[tuple[int, int, list[tuple[int, str, bool, list[tuple[int, int]]]]]]


def _match(configs: Sequence[tuple[int, str]], rx: regex.Pattern[str], context: int, limit: int,
           budget_s: float) -> tuple[_Found, bool]:
    """Pure matching, line by line (``^``/``$`` are a line's ends), each line cut at ``MAX_LINE``;
    the whole search, including finding every match span of the lines returned, may take
    ``budget_s`` (then :class:`Invalid` naming ``pattern``). A pattern can find its first match at
    once and backtrack without end looking for the next, so the spans are found here, under the
    same deadline, rather than by whoever shows the lines."""
    deadline = time.monotonic() + budget_s

    def left() -> float:
        return max(0.001, deadline - time.monotonic())

    def spans(line: str) -> list[tuple[int, int]]:
        return [m.span() for m in rx.finditer(line[:MAX_LINE], timeout=left()) if m.end() > m.start()]

    # One search of the whole text first (``^``/``$`` at line ends): most configurations hold no
    # match and are passed over in one call instead of one call per line. A match there may still
    # be no line's match (``\s`` across a line end): the lines decide. Patterns whose meaning
    # changes between a line and the whole text (``\A``, ``\Z``, look-behind) skip the shortcut.
    whole = None if regex.search(r"\\[AZz]|\(\?<[=!]", rx.pattern) else regex.compile(rx.pattern, rx.flags | regex.M)
    found: _Found = []
    shown = 0
    truncated = False
    try:
        for index, text in configs:
            if whole is None:
                lines = text.splitlines()
                hits = [i for i, line in enumerate(lines) if rx.search(line[:MAX_LINE], timeout=left())]
            else:
                spans_ = [m.span() for m in whole.finditer(text, timeout=left())]
                if not spans_:
                    continue
                ends = list(itertools.accumulate(len(line) for line in text.splitlines(keepends=True)))
                lines = text.splitlines()
                line_of = functools.partial(bisect.bisect_right, ends)
                touched = sorted({i for a, b in spans_ for i in range(line_of(a), line_of(max(a, b - 1)) + 1)
                                  if i < len(lines)})
                hits = [i for i in touched if rx.search(lines[i][:MAX_LINE], timeout=left())]
            if not hits:
                continue
            keep: list[tuple[int, str, bool, list[tuple[int, int]]]] = []
            if shown < limit:
                wanted: set[int] = set()
                for i in hits[: limit - shown]:
                    wanted.update(range(max(0, i - context), min(len(lines), i + context + 1)))
                hit_set = set(hits)
                keep = [(i + 1, lines[i], i in hit_set, spans(lines[i]) if i in hit_set else [])
                        for i in sorted(wanted)]
                if len(hits) > limit - shown:
                    truncated = True
                shown += min(len(hits), limit - shown)
            else:
                truncated = True
            found.append((index, len(hits), keep))
    except TimeoutError:
        raise Invalid(f"the pattern took longer than {budget_s:g} s over the stored configurations; simplify "
                      "it (nested repetitions such as (x+x+)+ backtrack without end)", field="pattern") from None
    return found, truncated


def search(session: Session, pattern: str, site_code: str | None = None, context: int = 0,
           limit: int = 1000, budget_s: float = SEARCH_BUDGET_S) -> SearchResult:
    """Lines matching a regular expression (Python syntax, matched line by line) in every device's
    latest configuration, with ``context`` lines around each. ``limit`` bounds the matching lines
    returned (``truncated`` says more matched); every matched device is still counted. The pattern
    is refused when it does not compile, is longer than ``MAX_PATTERN``, or takes longer than
    ``budget_s`` over all the configurations."""
    started = time.perf_counter()
    rx = compile_pattern(pattern)
    context = max(0, min(context, 20))
    conds: list[Any] = [col(ConfigBackupState.latest_version_id).is_not(None)]
    if site_code:
        conds.append(func.lower(col(Site.code)) == site_code.lower())
    rows: list[_Latest] = [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in session.execute(
        sa_select(col(Device.id), col(Device.hostname), col(Site.code), col(ConfigVersion.number),
                  col(ConfigVersion.collected_at), col(ConfigVersion.text))
        .join(Site, col(Site.id) == col(Device.site_id))
        .join(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id))
        .join(ConfigVersion, col(ConfigVersion.id) == col(ConfigBackupState.latest_version_id))
        .where(*conds).order_by(col(Device.hostname))).all()]
    configs = [(i, r[5]) for i, r in enumerate(rows)]
    found, truncated = _match(configs, rx, context, max(1, limit), budget_s)
    hits = []
    for index, matches, lines in found:
        device_id, hostname, code, number, collected, _text_ = rows[index]
        if lines:
            hits.append(SearchHit(device_id=device_id, hostname=hostname, site_code=code, version_number=number,
                                  collected_at=collected, matches=matches,
                                  lines=[SearchLine(number=n, text=t, match=m, spans=sp) for n, t, m, sp in lines]))
    return SearchResult(pattern=pattern, devices_searched=len(rows), devices_matched=len(found), hits=hits,
                        truncated=truncated, seconds=round(time.perf_counter() - started, 4))


# --------------------------------------------------------------------------- compliance


def findings(session: Session, site_code: str | None = None, device: str | int | None = None,
             severity: str | None = None) -> list[FindingRow]:
    """Open findings, worst first, then by site, device and rule."""
    conds: list[Any] = []
    if site_code:
        conds.append(func.lower(col(Site.code)) == site_code.lower())
    if device is not None:
        dev, _site = resolve_device(session, device)
        conds.append(col(ComplianceFinding.device_id) == dev.id)
    if severity:
        conds.append(col(ComplianceFinding.severity) == severity)
    found = session.exec(
        select(ComplianceFinding, Device.hostname, Site.code, ConfigVersion.number)
        .join(Device, col(Device.id) == col(ComplianceFinding.device_id))
        .join(Site, col(Site.id) == col(Device.site_id))
        .outerjoin(ConfigVersion, col(ConfigVersion.id) == col(ComplianceFinding.version_id))
        .where(*conds)).all()
    wanted = {f.version_id for f, *_ in found if f.version_id is not None and f.lines}
    texts: dict[int, str] = {i or 0: t for i, t in session.exec(
        select(ConfigVersion.id, ConfigVersion.text).where(col(ConfigVersion.id).in_(wanted))).all()} if wanted else {}
    out = [FindingRow(device_id=f.device_id, hostname=hostname, site_code=code, rule_id=f.rule_id,
                      severity=f.severity, message=f.message, lines=list(f.lines or []),
                      line_numbers=evidence_numbers(texts.get(f.version_id or 0, ""), list(f.lines or [])),
                      version_number=number, first_seen=f.first_seen, last_seen=f.last_seen)
           for f, hostname, code, number in found]
    out.sort(key=lambda r: (-SEVERITY_RANK.get(r.severity, 0), r.site_code, r.hostname, r.rule_id))
    return out


def evidence_numbers(text: str, evidence: Sequence[str]) -> list[int | None]:
    """The 1-based line of ``text`` each evidence line is, in order: a line quoted twice is its
    first place, then its next one (so two identical lines show as two places); ``None`` when the
    line is not in the text (evidence of a missing line, or the version is gone)."""
    where: dict[str, list[int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        where.setdefault(line.rstrip(), []).append(number)
    used: dict[str, int] = {}
    out: list[int | None] = []
    for line in evidence:
        key = line.rstrip()
        places = where.get(key) or where.get(key.strip()) or []
        n = used.get(key, 0)
        out.append(places[n] if n < len(places) else (places[-1] if places else None))
        used[key] = n + 1
    return out


def site_compliance(session: Session) -> list[SiteCompliance]:
    """Per site with at least one stored configuration: devices backed up, how many break no rule,
    findings by severity, and the devices a backup should read (active, with an address) whose
    configuration was never stored (``not_read``). Three grouped queries whatever the number of sites."""
    stored = session.execute(
        sa_select(col(Site.id), col(Site.code), col(Site.name_en), col(Site.name_ar), func.count())
        .join(Device, col(Device.site_id) == col(Site.id))
        .join(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id))
        .where(col(ConfigBackupState.latest_version_id).is_not(None))
        .group_by(col(Site.id), col(Site.code), col(Site.name_en), col(Site.name_ar))
        .order_by(col(Site.code))).all()
    per = session.exec(
        select(Device.site_id, ComplianceFinding.device_id, ComplianceFinding.severity, func.count())
        .join(Device, col(Device.id) == col(ComplianceFinding.device_id))
        .join(ConfigBackupState, and_(col(ConfigBackupState.device_id) == col(Device.id),
                                      col(ConfigBackupState.latest_version_id).is_not(None)))
        .group_by(col(Device.site_id), col(ComplianceFinding.device_id), col(ComplianceFinding.severity))).all()
    has_address = or_(func.coalesce(col(Device.management_address), "") != "",
                      func.coalesce(col(ConfigBackupState.address), "") != "")
    unread = dict(session.execute(
        sa_select(col(Device.site_id), func.count())
        .outerjoin(ConfigBackupState, col(ConfigBackupState.device_id) == col(Device.id))
        .where(col(Device.status) == DeviceStatus.active.value, has_address,
               col(ConfigBackupState.latest_version_id).is_(None))
        .group_by(col(Device.site_id))).tuples().all())
    bad: dict[int, set[int]] = {}
    sev: dict[int, dict[str, int]] = {}
    for site_id, device_id, severity, n in per:
        bad.setdefault(site_id, set()).add(device_id)
        by = sev.setdefault(site_id, {})
        by[severity] = by.get(severity, 0) + int(n)
    return [SiteCompliance(site_id=sid, site_code=code, site_name_en=en, site_name_ar=ar, devices=int(n),
                           compliant=int(n) - len(bad.get(sid, ())), not_read=int(unread.get(sid, 0)),
                           findings=sum(sev.get(sid, {}).values()),
                           by_severity=sev.get(sid, {})) for sid, code, en, ar, n in stored]


# --------------------------------------------------------------------------- runs and host keys


def _run_row(r: BackupRun) -> BackupRunRow:
    return BackupRunRow(id=r.id or 0, started_at=r.started_at, finished_at=r.finished_at, duration_s=r.duration_s,
                        trigger=r.trigger, actor=r.actor, scope=r.scope, status=r.status, error=r.error,
                        devices=r.devices, changed=r.changed, unchanged=r.unchanged, failed=r.failed,
                        failures=list(r.failures or []))


def runs(session: Session, limit: int = 50, before: int | None = None) -> list[BackupRunRow]:
    """Backup runs, newest first; ``before``: only runs with a smaller id (the next page)."""
    stmt = select(BackupRun)
    if before is not None:
        stmt = stmt.where(col(BackupRun.id) < before)
    rows = session.exec(stmt.order_by(col(BackupRun.id).desc()).limit(limit)).all()
    return [_run_row(r) for r in rows]


def run(session: Session, run_id: int, field: str = "run_id") -> BackupRunRow:
    found = session.get(BackupRun, run_id)
    if found is None:
        raise NotFound(f"no backup run {run_id}", field=field)
    return _run_row(found)


def host_keys(session: Session, pending_only: bool = False) -> list[HostKeyRow]:
    """Recorded SSH host keys by address; ``pending_only``: those with a refused different key
    waiting for an engineer."""
    stmt = (select(SshHostKey, Device.hostname)
            .outerjoin(Device, col(Device.id) == col(SshHostKey.device_id)))
    if pending_only:
        stmt = stmt.where(col(SshHostKey.offered_fingerprint) != "")
    rows = session.exec(stmt.order_by(col(SshHostKey.address), col(SshHostKey.port))).all()
    return _key_rows(rows)


def host_key_count(session: Session) -> int:
    """How many host keys are recorded (the denominator of "N pending of M")."""
    return int(session.exec(select(func.count()).select_from(SshHostKey)).one())


def host_key(session: Session, key_id: int, field: str = "key_id") -> HostKeyRow:
    rows = session.exec(select(SshHostKey, Device.hostname)
                        .outerjoin(Device, col(Device.id) == col(SshHostKey.device_id))
                        .where(col(SshHostKey.id) == key_id)).all()
    if not rows:
        raise NotFound(f"no host key {key_id}", field=field)
    return _key_rows(rows)[0]


def _key_rows(rows: Sequence[Any]) -> list[HostKeyRow]:
    return [HostKeyRow(id=k.id or 0, device_id=k.device_id, hostname=hostname, address=k.address, port=k.port,
                       key_type=k.key_type, fingerprint=k.fingerprint, first_seen=k.first_seen,
                       last_seen=k.last_seen, offered_fingerprint=k.offered_fingerprint, offered_at=k.offered_at,
                       accepted_by=k.accepted_by, accepted_at=k.accepted_at) for k, hostname in rows]


def host_key_id(session: Session, ref: str) -> int:
    """A host key named by its id, or by its device (hostname or id): the device's key."""
    text = ref.strip()
    if text.isascii() and text.isdigit() and len(text) <= 18 and session.get(SshHostKey, int(text)) is not None:
        return int(text)
    dev, _site = resolve_device(session, text)
    found: int | None = session.exec(select(SshHostKey.id).where(col(SshHostKey.device_id) == dev.id)
                         .order_by(col(SshHostKey.offered_fingerprint).desc())).first()
    if found is None:
        raise NotFound(f"no host key recorded for device {dev.hostname!r}", field="device")
    return found
