"""Tables of the time-series store.

A series is (source kind, source id, reading name). Raw samples are keyed by (series, time in ms)
— on SQLite a WITHOUT ROWID table, so the primary key *is* the storage order and a range read is
one index seek. Roll-ups keep min/avg/max/count per bucket at 5-minute and 1-hour resolution.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlmodel import Field, SQLModel


class MetricSeries(SQLModel, table=True):
    __tablename__ = "metric_series"
    __table_args__ = (UniqueConstraint("source_kind", "source_id", "name", name="uq_metric_series"),)

    id: int | None = Field(default=None, primary_key=True)
    source_kind: str = Field(sa_type=String(32))
    source_id: int
    name: str = Field(sa_type=String(64))
    unit: str = Field(default="", sa_type=String(16))


class MetricSample(SQLModel, table=True):
    __tablename__ = "metric_sample"
    __table_args__ = (PrimaryKeyConstraint("series_id", "ts_ms"), {"sqlite_with_rowid": False})

    series_id: int = Field(sa_column=Column(Integer, nullable=False))
    ts_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    value: float = Field(sa_column=Column(Float, nullable=False))


class MetricRollup(SQLModel, table=True):
    __tablename__ = "metric_rollup"
    __table_args__ = (PrimaryKeyConstraint("series_id", "resolution_s", "bucket_ms"), {"sqlite_with_rowid": False})

    series_id: int = Field(sa_column=Column(Integer, nullable=False))
    resolution_s: int = Field(sa_column=Column(Integer, nullable=False))
    bucket_ms: int = Field(sa_column=Column(BigInteger, nullable=False))
    min: float = Field(sa_column=Column(Float, nullable=False))
    avg: float = Field(sa_column=Column(Float, nullable=False))
    max: float = Field(sa_column=Column(Float, nullable=False))
    count: int = Field(sa_column=Column(Integer, nullable=False))
