"""The time-series store on SQLite and PostgreSQL: writes, idempotent roll-ups, retention, reads."""

from __future__ import annotations

from sqlalchemy import Engine

from infra_mgr.telemetry.store import FIVE_MIN, HOUR, RAW, Retention, TelemetryStore

T0 = 1_790_000_000_000 - (1_790_000_000_000 % 3_600_000)  # an hour boundary, in ms


def test_write_rollup_query_and_prune(engine: Engine) -> None:
    store = TelemetryStore(engine, Retention(raw_s=3600, five_min_s=86400, hour_s=30 * 86400))
    load = store.series_id("power_device", 1, "ups.load", "%")
    assert store.series_id("power_device", 1, "ups.load") == load
    charge = store.series_id("power_device", 1, "battery.charge", "%")
    # two hours of one sample per second: load ramps 0..99 every 100 s, charge constant
    samples = [(load, T0 + i * 1000, float(i % 100)) for i in range(7200)]
    samples += [(charge, T0 + i * 1000, 100.0) for i in range(7200)]
    assert store.write(samples) == 14400
    store.write(samples[:10])  # repeated samples are ignored, not duplicated
    now = T0 + 7200 * 1000
    store.rollup(now)
    store.rollup(now)  # idempotent
    res, pts = store.query(load, T0, now - 1, resolution=FIVE_MIN)
    assert res == FIVE_MIN and len(pts) == 24
    assert all(p.min == 0.0 and p.max == 99.0 and abs(p.avg - 49.5) < 1e-9 for p in pts)
    res, hours = store.query(load, T0, now - 1, resolution=HOUR)
    assert len(hours) == 2 and abs(hours[0].avg - 49.5) < 1e-9 and hours[0].max == 99.0
    res, raw = store.query(charge, T0, T0 + 59_999, resolution=RAW)
    assert len(raw) == 60 and raw[0].avg == 100.0
    # late samples for an already rolled-up bucket are folded in on the next roll-up
    store.write([(charge, now + 1000, 40.0)])
    store.rollup(now + 301_000)
    _, last = store.query(charge, now, now + 300_000, resolution=FIVE_MIN)
    assert last[0].min == 40.0
    # retention: raw older than an hour goes, roll-ups stay
    store.prune(now + 2000)
    _, raw_after = store.query(load, T0, now, resolution=RAW)
    assert raw_after and raw_after[0].ts_ms >= now + 2000 - 3600 * 1000
    _, still = store.query(load, T0, now - 1, resolution=FIVE_MIN)
    assert len(still) == 24


def test_resolution_choice() -> None:
    class _E:
        class dialect:  # noqa: N801
            name = "sqlite"

    store = TelemetryStore(_E(), Retention())  # type: ignore[arg-type]
    now = T0
    assert store.resolution_for(now - 600_000, now, 600, now) == RAW
    assert store.resolution_for(now - 86_400_000, now, 600, now) == FIVE_MIN
    assert store.resolution_for(now - 60 * 86_400_000, now, 600, now) == HOUR


def test_link_series_keep_five_minutes_shorter(engine: Engine) -> None:
    """Interface and device series (a sample a minute for every uplink) keep their 5-minute tier five
    weeks; other kinds keep theirs the general 90 days. Hourly points stay for both."""
    store = TelemetryStore(engine)
    link = store.series_id("interface", 7, "in_bps", "bit/s")
    ups = store.series_id("power_device", 7, "ups.load", "%")
    day = 86_400_000
    old = T0 - 40 * day  # older than five weeks, younger than 90 days
    store.write([(sid, old + i * 60_000, 1.0) for sid in (link, ups) for i in range(120)])
    store.rollup(old + 2 * 3_600_000)
    store.prune(T0)
    assert store.query(link, old, old + 7_200_000, resolution=FIVE_MIN)[1] == []
    assert len(store.query(ups, old, old + 7_200_000, resolution=FIVE_MIN)[1]) == 24
    assert len(store.query(link, old, old + 7_200_000, resolution=HOUR)[1]) == 2
    # and a chart of that old day is drawn from what is kept
    assert store.resolution_for(old, old + day, 600, T0, kind="interface") == HOUR
    assert store.resolution_for(old, old + day, 600, T0, kind="power_device") == FIVE_MIN


def test_a_series_written_late_is_rolled_up_too(engine: Engine) -> None:
    """Two writers (the power poller, the link poller, another process): one is ahead, the other
    writes samples older than the newest bucket already rolled up — they are not skipped."""
    store = TelemetryStore(engine)
    ahead = store.series_id("interface", 1, "in_bps")
    late = store.series_id("interface", 2, "in_bps")
    store.write([(ahead, T0 + i * 60_000, 1.0) for i in range(30)])
    store.rollup(T0 + 30 * 60_000)
    store.write([(late, T0 + 200_000, 7.0), (late, T0 + 900_000, 9.0)])  # behind the newest bucket
    store.rollup(T0 + 31 * 60_000)
    _, pts = store.query(late, T0, T0 + 1_800_000, resolution=FIVE_MIN)
    assert [(p.ts_ms - T0, p.avg) for p in pts] == [(0, 7.0), (900_000, 9.0)]
    _, hours = store.query(late, T0, T0 + 3_600_000, resolution=HOUR)
    assert [round(h.avg, 3) for h in hours] == [8.0]
    # and the one ahead is unchanged by the other's roll-up
    _, pts_ahead = store.query(ahead, T0, T0 + 1_800_000, resolution=FIVE_MIN)
    assert len(pts_ahead) == 6 and all(p.avg == 1.0 for p in pts_ahead)
