"""Small shared building blocks for every domain's models and read views: UTC timestamps, JSON
columns and the page of a list."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import JSON, DateTime, TypeDecorator
from sqlmodel import Column, Field

T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


SPEED_UNITS = (("tbps", 10**12), ("gbps", 10**9), ("mbps", 10**6), ("kbps", 10**3))


def speed_parts(bps: int | float | None) -> tuple[str, str] | None:
    """A line rate as (unit key, number) for the catalogue's ``speed.<unit>`` ("{n} Gb/s",
    "{n} جيجابت/ث"): 1000000000 → ("gbps", "1"), 2048000 → ("mbps", "2.048") (an E1 keeps its real
    rate). One rule for every place that writes a speed: the dashboard, the audit's sentences, the CLI."""
    if bps is None or bps <= 0:
        return None
    for unit, scale in SPEED_UNITS:
        if bps >= scale:
            return unit, f"{bps / scale:.3f}".rstrip("0").rstrip(".")
    return "bps", str(int(bps))


def epoch_ms(value: dt.datetime | None) -> int | None:
    """A stored time as milliseconds since the epoch (the telemetry store's and the charts' unit);
    a naive value is UTC, as every stored time is."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


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


class ListPage(BaseModel, Generic[T]):
    """One page of a list a read view returns: the rows, the total that matched, and which page
    (1-based, already moved back onto the last page when the one asked for is past the end)."""

    rows: list[T]
    total: int
    page: int
    size: int


def page_window(total: int, page: int, size: int) -> tuple[int, int]:
    """(page, offset) of a 1-based page number clamped to the pages ``total`` rows make."""
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    return page, (page - 1) * size


def cli_actor() -> str:
    """Who a command-line change is recorded as: ``cli:<login name>`` (``cli`` when there is none)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name is not an error
        return "cli"
