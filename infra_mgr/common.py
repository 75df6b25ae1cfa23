"""Small shared building blocks for every domain's models: UTC timestamps and JSON columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlmodel import Column, Field


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores UTC and always hands back timezone-aware values (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def ts_field(*, nullable: bool = False, index: bool = False, default_now: bool = True) -> Any:
    """A timestamp column in UTC; ``default_now`` fills it at creation."""
    kwargs: dict[str, Any] = {"default_factory": utcnow} if default_now else {"default": None}
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kwargs)


def json_field() -> Any:
    """A JSON object column (defaults to ``{}``)."""
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
