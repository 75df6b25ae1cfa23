"""The time-series store: write samples, roll them up, prune by age, read any range.

Kept like a time-series tool keeps it: raw samples for 7 days, 5-minute min/avg/max for 90 days,
hourly for 2 years (configurable). Roll-ups are computed in SQL by ``rollup()``, which is
idempotent — it recomputes the newest bucket it already has and every bucket after it — so it can
run on any schedule and after any downtime without double counting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, Select, Table, and_, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from infra_mgr.db import write_connection
from infra_mgr.telemetry.models import MetricRollup, MetricSample, MetricSeries

RAW = 0
FIVE_MIN = 300
HOUR = 3600

# (series id, resolution s, bucket ms, min, avg, max, count): one row of metric_rollup.
RollupRow = tuple[int, int, int, float, float, float, int]


@dataclass(frozen=True)
class Retention:
    raw_s: int = 7 * 86400
    five_min_s: int = 90 * 86400
    hour_s: int = 730 * 86400


@dataclass(frozen=True)
class Point:
    ts_ms: int
    min: float
    avg: float
    max: float


def now_ms() -> int:
    return int(time.time() * 1000)


class TelemetryStore:
    """Thread-safe facade over the three tables; one per process is enough."""

    def __init__(self, engine: Engine, retention: Retention | None = None) -> None:
        self.engine = engine
        self.retention = retention or Retention()
        self._ids: dict[tuple[str, int, str], int] = {}
        self._lock = threading.Lock()
        self._dialect = engine.dialect.name

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # ------------------------------------------------------------------ series

    def series_id(self, source_kind: str, source_id: int, name: str, unit: str = "") -> int:
        key = (source_kind, source_id, name)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        cond = and_(col(MetricSeries.source_kind) == source_kind, col(MetricSeries.source_id) == source_id,
                    col(MetricSeries.name) == name)
        with write_connection(self.engine) as conn:
            found = conn.execute(select(col(MetricSeries.id)).where(cond)).scalar()
            if found is None:
                try:
                    found = conn.execute(MetricSeries.__table__.insert().values(  # type: ignore[attr-defined]  # SQLModel does not declare __table__
                        source_kind=source_kind, source_id=source_id, name=name, unit=unit)).inserted_primary_key[0]
                except IntegrityError:
                    found = None
        if found is None:  # another writer created it first
            with self.engine.connect() as conn:
                found = conn.execute(select(col(MetricSeries.id)).where(cond)).scalar_one()
        with self._lock:
            self._ids[key] = int(found)
        return int(found)

    def series_of(self, source_kind: str, source_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(col(MetricSeries.name), col(MetricSeries.id)).where(
                col(MetricSeries.source_kind) == source_kind, col(MetricSeries.source_id) == source_id)).all()
        return {name: int(sid) for name, sid in rows if sid is not None}

    # ------------------------------------------------------------------ write

    def write(self, samples: Iterable[tuple[int, int, float]]) -> int:
        """Store (series id, time ms, value) samples; a repeated (series, time) is ignored."""
        rows = [{"series_id": s, "ts_ms": t, "value": float(v)} for s, t, v in samples]
        if not rows:
            return 0
        stmt = self._insert(MetricSample.__table__).on_conflict_do_nothing()  # type: ignore[attr-defined]  # SQLModel does not declare __table__
        with write_connection(self.engine) as conn:
            conn.execute(stmt, rows)
        return len(rows)

    # ------------------------------------------------------------------ roll up and prune

    def _upsert_rollups(self, conn: Connection, select_stmt: Select[RollupRow]) -> None:
        cols = ["series_id", "resolution_s", "bucket_ms", "min", "avg", "max", "count"]
        ins = self._insert(MetricRollup.__table__).from_select(cols, select_stmt)  # type: ignore[attr-defined]  # SQLModel does not declare __table__
        ins = ins.on_conflict_do_update(
            index_elements=["series_id", "resolution_s", "bucket_ms"],
            set_={c: getattr(ins.excluded, c) for c in ("min", "avg", "max", "count")},
        )
        conn.execute(ins)

    def rollup(self, now: int | None = None) -> None:
        """Compute 5-minute buckets from raw samples and hourly buckets from 5-minute ones."""
        now = now if now is not None else now_ms()
        with write_connection(self.engine) as conn:
            for res, source in ((FIVE_MIN, RAW), (HOUR, FIVE_MIN)):
                width = res * 1000
                done = conn.execute(select(func.max(col(MetricRollup.bucket_ms))).where(
                    col(MetricRollup.resolution_s) == res)).scalar()
                if source == RAW:
                    earliest = conn.execute(select(func.min(col(MetricSample.ts_ms)))).scalar()
                else:
                    earliest = conn.execute(select(func.min(col(MetricRollup.bucket_ms))).where(
                        col(MetricRollup.resolution_s) == FIVE_MIN)).scalar()
                if earliest is None:
                    continue
                start = int(done) if done is not None else (int(earliest) // width) * width
                bucket = ((col(MetricSample.ts_ms) // width) * width) if source == RAW else \
                    ((col(MetricRollup.bucket_ms) // width) * width)
                stmt: Select[RollupRow]
                if source == RAW:
                    s = MetricSample
                    stmt = (select(col(s.series_id), literal(res, Integer), bucket.label("b"),
                                   func.min(col(s.value)), func.avg(col(s.value)),
                                   func.max(col(s.value)), func.count())
                            .where(col(s.ts_ms) >= start, col(s.ts_ms) < now)
                            .group_by(col(s.series_id), bucket))
                else:
                    r = MetricRollup
                    stmt = (select(col(r.series_id), literal(res, Integer), bucket.label("b"), func.min(col(r.min)),
                                   func.sum(col(r.avg) * col(r.count)) / func.sum(col(r.count)), func.max(col(r.max)),
                                   func.sum(col(r.count)))
                            .where(col(r.resolution_s) == FIVE_MIN, col(r.bucket_ms) >= start, col(r.bucket_ms) < now)
                            .group_by(col(r.series_id), bucket))
                self._upsert_rollups(conn, stmt)

    def prune(self, now: int | None = None) -> None:
        now = now if now is not None else now_ms()
        ret = self.retention
        with write_connection(self.engine) as conn:
            conn.execute(delete(MetricSample).where(col(MetricSample.ts_ms) < now - ret.raw_s * 1000))
            conn.execute(delete(MetricRollup).where(col(MetricRollup.resolution_s) == FIVE_MIN,
                                                    col(MetricRollup.bucket_ms) < now - ret.five_min_s * 1000))
            conn.execute(delete(MetricRollup).where(col(MetricRollup.resolution_s) == HOUR,
                                                    col(MetricRollup.bucket_ms) < now - ret.hour_s * 1000))

    # ------------------------------------------------------------------ read

    def resolution_for(self, start_ms: int, end_ms: int, max_points: int, now: int | None = None) -> int:
        """The finest resolution that keeps within ``max_points`` and is still retained for ``start``."""
        now = now if now is not None else now_ms()
        span_s = max(1, (end_ms - start_ms) // 1000)
        age_s = max(0, (now - start_ms) // 1000)
        if age_s <= self.retention.raw_s and span_s <= max_points * 5:
            return RAW
        if age_s <= self.retention.five_min_s and span_s / FIVE_MIN <= max_points:
            return FIVE_MIN
        return HOUR

    def query(self, series_id: int, start_ms: int, end_ms: int, max_points: int = 600,
              resolution: int | None = None) -> tuple[int, list[Point]]:
        res = resolution if resolution is not None else self.resolution_for(start_ms, end_ms, max_points)
        with self.engine.connect() as conn:
            if res == RAW:
                s = MetricSample
                samples = conn.execute(select(col(s.ts_ms), col(s.value)).where(
                    col(s.series_id) == series_id, col(s.ts_ms) >= start_ms,
                    col(s.ts_ms) <= end_ms).order_by(col(s.ts_ms))).all()
                pts = [Point(int(t), v, v, v) for t, v in samples]
            else:
                r = MetricRollup
                rows = conn.execute(select(col(r.bucket_ms), col(r.min), col(r.avg), col(r.max)).where(
                    col(r.series_id) == series_id, col(r.resolution_s) == res, col(r.bucket_ms) >= start_ms,
                    col(r.bucket_ms) <= end_ms).order_by(col(r.bucket_ms))).all()
                pts = [Point(int(t), mn, av, mx) for t, mn, av, mx in rows]
        return res, pts
