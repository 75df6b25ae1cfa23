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
from typing import Any

from sqlalchemy import Connection, Engine, Integer, Select, Table, and_, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from infra_mgr.db import write_connection
from infra_mgr.telemetry.models import MetricRollup, MetricSample, MetricSeries

RAW = 0
ROLLUP_BATCH = 5000  # series per roll-up statement (bound parameters stay well under any driver's limit)
FIVE_MIN = 300
HOUR = 3600

# (series id, resolution s, bucket ms, min, avg, max, count): one row of metric_rollup.
RollupRow = tuple[int, int, int, float, float, float, int]


# Interface and device series (the branch link audit's, one every minute for every uplink) keep
# their 5-minute tier five weeks: the 7-day p95 and a month's comparison need that detail, a
# longer chart is drawn from hourly points anyway, and the tier is most of the store's size.
LINK_FIVE_MIN_S = 35 * 86400


@dataclass(frozen=True)
class Retention:
    raw_s: int = 7 * 86400
    five_min_s: int = 90 * 86400
    hour_s: int = 730 * 86400
    five_min_by_kind: tuple[tuple[str, int], ...] = (("interface", LINK_FIVE_MIN_S), ("device", LINK_FIVE_MIN_S))

    def five_min_for(self, kind: str | None) -> int:
        """How long the 5-minute tier of a source kind is kept."""
        return dict(self.five_min_by_kind).get(kind or "", self.five_min_s)


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
        """Compute 5-minute buckets from raw samples and hourly buckets from 5-minute ones.

        Each series starts from its own newest bucket (recomputed, so samples that arrived for it
        since are folded in) or, never rolled up, from its first sample: a series written late —
        another poller, a device that was away — is never skipped because others are ahead. Every
        lookup goes through the primary keys series by series (correlated per-series minima and
        maxima, then ``series_id IN (…)`` with the time range), so a roll-up costs what changed
        since the last one, not the size of the tables: a range on time alone cannot use a key that
        starts with the series, and a scan of a year of samples would hold the write lock for seconds."""
        now = now if now is not None else now_ms()
        ser = MetricSeries.__table__.alias("ser")  # type: ignore[attr-defined]  # SQLModel does not declare __table__
        with write_connection(self.engine) as conn:
            for res, source in ((FIVE_MIN, RAW), (HOUR, FIVE_MIN)):
                width = res * 1000
                r_in = MetricRollup.__table__.alias("r_in")  # type: ignore[attr-defined]
                newest = (select(func.max(r_in.c.bucket_ms)).where(r_in.c.series_id == ser.c.id,
                                                                    r_in.c.resolution_s == res)
                          .correlate(ser).scalar_subquery())
                if source == RAW:
                    m_in = MetricSample.__table__.alias("m_in")  # type: ignore[attr-defined]
                    oldest = select(func.min(m_in.c.ts_ms)).where(m_in.c.series_id == ser.c.id)
                else:
                    m_in = MetricRollup.__table__.alias("m_in")  # type: ignore[attr-defined]
                    oldest = select(func.min(m_in.c.bucket_ms)).where(m_in.c.series_id == ser.c.id,
                                                                      m_in.c.resolution_s == FIVE_MIN)
                starts: dict[int, list[int]] = {}
                for sid, done, first in conn.execute(
                        select(ser.c.id, newest, oldest.correlate(ser).scalar_subquery()).select_from(ser)):
                    if done is not None:
                        starts.setdefault(int(done), []).append(int(sid))
                    elif first is not None:
                        starts.setdefault((int(first) // width) * width, []).append(int(sid))
                for start, ids in starts.items():
                    for at in range(0, len(ids), ROLLUP_BATCH):
                        self._upsert_rollups(conn, self._rollup_select(res, source, ids[at:at + ROLLUP_BATCH],
                                                                       start, now))

    @staticmethod
    def _rollup_select(res: int, source: int, ids: list[int], start: int, now: int) -> Select[RollupRow]:
        """The buckets of ``res`` for ``ids`` from ``start`` to ``now``, computed from ``source``."""
        width = res * 1000
        if source == RAW:
            m = MetricSample.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
            bucket = (m.c.ts_ms // width) * width
            return (select(m.c.series_id, literal(res, Integer), bucket.label("b"), func.min(m.c.value),
                           func.avg(m.c.value), func.max(m.c.value), func.count())
                    .where(m.c.series_id.in_(ids), m.c.ts_ms >= start, m.c.ts_ms < now)
                    .group_by(m.c.series_id, bucket))
        r = MetricRollup.__table__  # type: ignore[attr-defined]
        bucket = (r.c.bucket_ms // width) * width
        return (select(r.c.series_id, literal(res, Integer), bucket.label("b"), func.min(r.c.min),
                       func.sum(r.c.avg * r.c.count) / func.sum(r.c.count), func.max(r.c.max), func.sum(r.c.count))
                .where(r.c.series_id.in_(ids), r.c.resolution_s == source, r.c.bucket_ms >= start, r.c.bucket_ms < now)
                .group_by(r.c.series_id, bucket))

    def prune(self, now: int | None = None) -> None:
        """Drop what each tier no longer keeps, series by series (key ranges, never a table scan)."""
        now = now if now is not None else now_ms()
        ret = self.retention
        all_ids = select(col(MetricSeries.id))
        special = [kind for kind, _ in ret.five_min_by_kind]
        with write_connection(self.engine) as conn:
            conn.execute(delete(MetricSample).where(col(MetricSample.series_id).in_(all_ids),
                                                    col(MetricSample.ts_ms) < now - ret.raw_s * 1000))
            tiers: list[tuple[Any, int]] = [
                (select(col(MetricSeries.id)).where(col(MetricSeries.source_kind).notin_(special)), ret.five_min_s)]
            tiers += [(select(col(MetricSeries.id)).where(col(MetricSeries.source_kind) == kind), keep)
                      for kind, keep in ret.five_min_by_kind]
            for ids, keep in tiers:
                conn.execute(delete(MetricRollup).where(col(MetricRollup.series_id).in_(ids),
                                                        col(MetricRollup.resolution_s) == FIVE_MIN,
                                                        col(MetricRollup.bucket_ms) < now - keep * 1000))
            conn.execute(delete(MetricRollup).where(col(MetricRollup.series_id).in_(all_ids),
                                                    col(MetricRollup.resolution_s) == HOUR,
                                                    col(MetricRollup.bucket_ms) < now - ret.hour_s * 1000))

    # ------------------------------------------------------------------ read

    def resolution_for(self, start_ms: int, end_ms: int, max_points: int, now: int | None = None,
                       kind: str | None = None) -> int:
        """The finest resolution that keeps within ``max_points`` and is still retained for ``start``
        (``kind``: the series' source kind, whose 5-minute tier may be kept shorter)."""
        now = now if now is not None else now_ms()
        span_s = max(1, (end_ms - start_ms) // 1000)
        age_s = max(0, (now - start_ms) // 1000)
        if age_s <= self.retention.raw_s and span_s <= max_points * 5:
            return RAW
        if age_s <= self.retention.five_min_for(kind) and span_s / FIVE_MIN <= max_points:
            return FIVE_MIN
        return HOUR

    def query(self, series_id: int, start_ms: int, end_ms: int, max_points: int = 600,
              resolution: int | None = None, kind: str | None = None) -> tuple[int, list[Point]]:
        res = resolution if resolution is not None else self.resolution_for(start_ms, end_ms, max_points,
                                                                            kind=kind)
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
