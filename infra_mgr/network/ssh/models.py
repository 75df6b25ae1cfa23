"""SSH tables: host keys, configuration versions, each device's backup state, compliance findings
and backup runs. Written only by the SSH services (backup, host keys, CLI discovery); read by the
views in :mod:`infra_mgr.network.ssh.views`.

Every text stored here is masked: the collector masks before it returns.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra_mgr.common import ts_field


class BackupStatus(StrEnum):
    never = "never"
    ok = "ok"  # read; a new version stored or the text unchanged
    failed = "failed"  # see ``reason_kind`` / ``reason``


class BackupTrigger(StrEnum):
    schedule = "schedule"
    manual = "manual"  # a person: CLI, API, dashboard
    trap = "trap"  # the device said its configuration changed
    discovery = "discovery"


class SshHostKey(SQLModel, table=True):
    """The host key recorded for an SSH endpoint on first contact (trust on first use). A different
    key later is refused and kept as ``offered_*`` until an engineer accepts it."""

    __tablename__ = "ssh_host_key"
    __table_args__ = (UniqueConstraint("address", "port", name="uq_ssh_host_key_endpoint"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(sa_type=String(45))
    port: int = 22
    device_id: int | None = Field(default=None, foreign_key="device.id", ondelete="SET NULL", index=True)
    key_type: str = Field(sa_type=String(64))
    key_b64: str = Field(sa_type=Text)
    fingerprint: str = Field(sa_type=String(100))
    first_seen: dt.datetime = ts_field()
    last_seen: dt.datetime = ts_field()
    offered_key_type: str = Field(default="", sa_type=String(64))
    offered_key_b64: str = Field(default="", sa_type=Text)
    offered_fingerprint: str = Field(default="", sa_type=String(100))
    offered_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    accepted_by: str = Field(default="", sa_type=String(64))  # who accepted the current key (empty: first use)
    accepted_at: dt.datetime | None = ts_field(nullable=True, default_now=False)


class ConfigVersion(SQLModel, table=True):
    """One stored configuration of one device. A new row only when the masked text's SHA-256
    differs from the device's latest; ``number`` counts a device's versions from 1."""

    __tablename__ = "config_version"
    __table_args__ = (UniqueConstraint("device_id", "number", name="uq_config_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", ondelete="CASCADE")
    number: int
    sha256: str = Field(sa_type=String(64), index=True)
    text: str = Field(sa_type=Text)
    lines: int = 0
    size: int = 0
    collected_at: dt.datetime = ts_field(index=True)
    trigger: str = Field(default=BackupTrigger.manual.value, sa_type=String(16))
    actor: str = Field(default="", sa_type=String(64))
    device_type: str = Field(default="", sa_type=String(64))
    changed_lines: int = 0  # lines added + removed against the previous version (0 for the first)


class ConfigBackupState(SQLModel, table=True):
    """Each device's SSH side: how to reach it, how its last backup went, its latest version."""

    __tablename__ = "config_backup_state"

    device_id: int = Field(foreign_key="device.id", primary_key=True, ondelete="CASCADE")
    address: str = Field(default="", sa_type=String(45))
    port: int = 22
    credential_id: int | None = Field(default=None, foreign_key="credential.id", ondelete="SET NULL")
    device_type: str = Field(default="", sa_type=String(64))  # netmiko's; empty: from the platform table
    status: str = Field(default=BackupStatus.never.value, sa_type=String(16), index=True)
    reason_kind: str = Field(default="", sa_type=String(32))  # an SshFailure value when failed
    reason: str = Field(default="", sa_type=String(1000))
    last_attempt: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_success: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_change: dt.datetime | None = ts_field(nullable=True, default_now=False)  # latest version stored at
    latest_version_id: int | None = Field(default=None, foreign_key="config_version.id", ondelete="SET NULL")
    versions: int = 0
    duration_s: float | None = None
    since: dt.datetime | None = ts_field(nullable=True, default_now=False)  # when ``status`` last changed


class ComplianceFinding(SQLModel, table=True):
    """A rule a device's latest configuration breaks. Replaced after each backup of the device;
    ``first_seen`` carries over while the same rule keeps failing."""

    __tablename__ = "compliance_finding"
    __table_args__ = (UniqueConstraint("device_id", "rule_id", name="uq_compliance_finding_rule"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", ondelete="CASCADE", index=True)
    rule_id: str = Field(sa_type=String(64), index=True)
    severity: str = Field(sa_type=String(16))  # events.models.Severity values
    message: str = Field(sa_type=String(500))
    lines: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # evidence
    version_id: int | None = Field(default=None, foreign_key="config_version.id", ondelete="SET NULL")
    first_seen: dt.datetime = ts_field()
    last_seen: dt.datetime = ts_field()


class BackupRun(SQLModel, table=True):
    """One backup run: scope, trigger, counts, and each failed device with its reason."""

    __tablename__ = "backup_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: dt.datetime = ts_field(index=True)
    finished_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    duration_s: float | None = None
    trigger: str = Field(default=BackupTrigger.manual.value, sa_type=String(16))
    actor: str = Field(default="", sa_type=String(64))
    scope: str = Field(default="", sa_type=String(255))
    status: str = Field(default="running", sa_type=String(16))  # running | ok | failed
    error: str = Field(default="", sa_type=String(1000))
    devices: int = 0
    changed: int = 0
    unchanged: int = 0
    failed: int = 0
    # [{"device_id", "hostname", "address", "kind", "message"}]
    failures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

