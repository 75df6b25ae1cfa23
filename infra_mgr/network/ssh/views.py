"""Read views of configuration backup: each device's backup state, its version list, one version,
the diff of two versions (unified and side by side), regex search across the latest configs,
compliance findings per device and per site, backup runs, and SSH host keys.

The API serves these models, the dashboard renders them and ``infra-mgr backup|config`` prints
them. Every text here is masked (the collector masks before anything is stored).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel

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


class SearchLine(BaseModel):
    number: int  # 1-based line number in the config
    text: str
    match: bool  # the line matched (else it is context)


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
    findings: int
    by_severity: dict[str, int]


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
