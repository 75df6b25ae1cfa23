"""Event: something that happened to the estate (device new, mains failed, link down …)."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import Index, String
from sqlmodel import Field, SQLModel

from infra_mgr.common import json_field, ts_field


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


# What an event's ``data`` may hold: enough for any integration's context, small enough that the
# list of events always serialises (the response encoder has a nesting limit of its own).
MAX_DATA_DEPTH = 16
MAX_DATA_BYTES = 64 * 1024
TRUNCATED_MARK = "[truncated: nested deeper than 16]"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def data_depth(value: Any) -> int:
    """Nesting of dicts and lists (``{}`` is 1), counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict) else node))
    return deepest


def readable_data(value: Any, max_depth: int = MAX_DATA_DEPTH) -> dict[str, Any]:
    """A stored ``data`` as it can be shown: containers deeper than ``max_depth`` become
    :data:`TRUNCATED_MARK`, and a value too large to list becomes a note of its size. Rows stored
    before the limits existed stay readable instead of failing every list they appear in."""
    if not isinstance(value, dict):
        return {"_value": value} if value is not None else {}
    try:
        size = len(json.dumps(value, ensure_ascii=False, default=str))
    except (RecursionError, ValueError):
        size = -1
    if size > MAX_DATA_BYTES:
        return {"_truncated": f"larger than {MAX_DATA_BYTES} bytes", "_bytes": size}
    root: dict[str, Any] = {}
    stack: list[tuple[Any, Any, int]] = [(value, root, 1)]
    while stack:
        src, dst, depth = stack.pop()
        items = src.items() if isinstance(src, dict) else enumerate(src)
        for k, v in items:
            if isinstance(v, dict | list):
                if depth >= max_depth:
                    copy: Any = TRUNCATED_MARK
                else:
                    copy = {} if isinstance(v, dict) else [None] * len(v)
                    stack.append((v, copy, depth + 1))
            else:
                copy = v
            dst[k] = copy
    return root


def unstorable(value: Any) -> str | None:
    """Why ``value`` cannot be stored as JSON on every database, or None: NaN and ±Infinity are not
    JSON (PostgreSQL refuses them, SQLite keeps them and the list then cannot be served), and a
    lone surrogate is not UTF-8. Keys are checked as well as values."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return "NaN and Infinity are not JSON numbers"
        if isinstance(node, str) and _LONE_SURROGATE.search(node):
            return "text holds a lone surrogate (not valid Unicode)"
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


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
    data: dict[str, Any] = PField(default_factory=dict, description=(
        f"Free context; at most {MAX_DATA_DEPTH} levels of nesting and {MAX_DATA_BYTES} bytes as JSON"))

    @field_validator("message")
    @classmethod
    def _plain(cls, value: str) -> str:
        from infra_mgr.api.crud import text_problem

        problem = text_problem("message", value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("data")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        depth = data_depth(value)
        if depth > MAX_DATA_DEPTH:
            raise ValueError(f"nested {depth} levels deep; at most {MAX_DATA_DEPTH}")
        problem = unstorable(value)
        if problem:
            raise ValueError(problem)
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode())
        if size > MAX_DATA_BYTES:
            raise ValueError(f"{size} bytes as JSON; at most {MAX_DATA_BYTES}")
        return value


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

    @field_validator("data", mode="before")
    @classmethod
    def _readable(cls, value: Any) -> dict[str, Any]:
        return readable_data(value)
