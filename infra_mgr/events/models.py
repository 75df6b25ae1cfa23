"""Event: something that happened to the estate (device new, mains failed, link down …)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from infra_mgr.common import json_field, ts_field


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (Index("ix_event_kind_time", "kind", "time"),)

    id: int | None = Field(default=None, primary_key=True)
    time: dt.datetime = ts_field(index=True)
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="SET NULL")
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True, ondelete="SET NULL")
    kind: str = Field(max_length=64, sa_type=String(64))
    severity: str = Field(default=Severity.info.value, max_length=16, sa_type=String(16))
    message: str = Field(default="", sa_type=String(1000))
    data: dict[str, Any] = json_field()


class EventCreate(BaseModel):
    """What a client (or another domain) reports; ``time`` defaults to now."""

    model_config = ConfigDict(extra="forbid")

    kind: str = PField(min_length=1, max_length=64, pattern=r"^[a-z0-9_.\-]+$")
    severity: Severity = Severity.info
    message: str = PField(default="", max_length=1000)
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    device_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    time: dt.datetime | None = None
    data: dict[str, Any] = PField(default_factory=dict)


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    time: dt.datetime
    site_id: int | None
    device_id: int | None
    kind: str
    severity: Severity
    message: str
    data: dict[str, Any]
