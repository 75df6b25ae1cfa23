"""A year of link telemetry on SQLite, and the 30-day chart query on it (``bench/link_audit.py``).

The store is filled as it would stand after a year of 60-s polling of every uplink and branch
device, with roll-ups and pruning as scheduled (raw 7 days, 5-minute 90 days, hourly 2 years):

* the **last 8 days** go the real path: ``TelemetryStore.write`` of every series' 60-s samples
  (an hour of cycles per call: one call per cycle costs ~85 ms here, mostly page writes spread over
  every series' part of the B-tree, and would take half an hour for 8 days), then ``rollup()`` and
  ``prune()`` at the end of each day; then five more cycles one write each, each followed by the
  ``rollup()`` the scheduler would run, both timed;
* the **older part** (8 to 365 days back) is written straight into ``metric_rollup`` as the
  5-minute rows (only those younger than 90 days: older ones would have been pruned) and hourly
  rows that those days would have left — same row shapes, written day by day with every series'
  rows of a day together, in the order the scheduled roll-up writes them (so the B-tree grows as
  it would, not in one tidy sorted load). 300 M raw rows a year are not written one by one.

The side-by-side baseline is LibreNMS's storage for the same links: one RRD per port with its 15
DERIVE data sources and one ``icmp-perf`` RRD per device (5 GAUGE), each with LibreNMS's default
RRA layout (``rrd_rra``, step 300 s). An RRD's size is fixed at creation, so the files are created
with ``rrdtool create`` and measured. For the chart, one port RRD is filled with a year of 5-minute
updates and queried with ``rrdtool xport`` through a persistent ``rrdtool -`` process (as LibreNMS
keeps one), 30 days, at most 600 rows, AVERAGE/MIN/MAX of the data sources behind our seven series.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

DAY_MS = 86_400_000
MIN_MS = 60_000
FIVE_MS = 300_000
HOUR_MS = 3_600_000

# LibreNMS: LibreNMS/RRD/RrdDefinition default rrd_rra and includes/polling/ports.inc.php's port RRD.
LIBRENMS_RRA = [f"RRA:{cf}:0.5:{steps}:{rows}" for cf in ("AVERAGE", "MIN", "MAX")
                for steps, rows in ((1, 2016), (6, 1440), (24, 1440), (288, 1440))] + ["RRA:LAST:0.5:1:2016"]
PORT_DS = ["INOCTETS", "OUTOCTETS", "INERRORS", "OUTERRORS", "INUCASTPKTS", "OUTUCASTPKTS", "INNUCASTPKTS",
           "OUTNUCASTPKTS", "INDISCARDS", "OUTDISCARDS", "INUNKNOWNPROTOS", "INBROADCASTPKTS", "OUTBROADCASTPKTS",
           "INMULTICASTPKTS", "OUTMULTICASTPKTS"]
ICMP_DS = ["avg", "xmt", "rcv", "min", "max"]
# What our seven link series are computed from, in the port RRD.
CHART_DS = ["INOCTETS", "OUTOCTETS", "INERRORS", "OUTERRORS", "INDISCARDS", "OUTDISCARDS", "INUCASTPKTS"]
RRDTOOL = "/usr/bin/rrdtool"


@dataclass
class StoreYear:
    """What the simulated year left and what it cost."""

    links: int
    devices: int
    series: int
    days: int
    raw_days: int
    db_bytes: int = 0
    page_size: int = 0
    pages: int = 0
    free_pages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    fill_s: float = 0.0
    raw_path_s: float = 0.0
    rollup_ms: list[float] = field(default_factory=list)
    write_ms: list[float] = field(default_factory=list)
    interface_ids: list[int] = field(default_factory=list)
    now_ms: int = 0


# --- what the values look like ---------------------------------------------------------------------

_SHAPE = [0.15 + 0.75 * max(0.0, math.sin(math.pi * (m / 1440 - 0.25))) ** 2 for m in range(1440)]  # busy at noon


@dataclass
class _Series:
    sid: int
    name: str
    speed: float  # for traffic: bit/s at 100 %
    noisy: bool  # errors/discards/loss: non-zero only on the few bad links/devices


def _value(s: _Series, ts_ms: int, rng: random.Random) -> float:
    """A plausible reading: traffic and RTT follow a daily shape with noise (full 8-byte floats);
    errors, discards and loss are zero except on the bad ones; oper_up is 1."""
    shape = _SHAPE[(ts_ms // MIN_MS) % 1440]
    n = s.name
    if n in ("in_bps", "out_bps"):
        return s.speed * shape * (0.6 + 0.4 * rng.random()) * (0.5 if n == "out_bps" else 1.0)
    if n == "util_pct":
        return 100.0 * shape * (0.6 + 0.4 * rng.random())
    if n == "pkts_ps":  # 800-byte packets both ways
        return s.speed * shape * (0.6 + 0.4 * rng.random()) * 1.5 / (8 * 800)
    if n == "oper_up":
        return 1.0
    if n == "rtt_ms":
        return 2.0 + 8.0 * shape * rng.random()
    if s.noisy:
        return rng.random() * (5.0 if n in ("errors_ps", "discards_ps") else 2.0)
    return 0.0


def _rollup_row(s: _Series, bucket_ms: int, res_s: int, rng: random.Random) -> tuple[Any, ...]:
    avg = _value(s, bucket_ms, rng)
    if avg == 0.0 or s.name == "oper_up":
        lo = hi = avg
    else:
        lo, hi = avg * (0.7 + 0.3 * rng.random()), avg * (1.0 + 0.5 * rng.random())
    return (s.sid, res_s, bucket_ms, lo, avg, hi, res_s // 60)


# --- the database ----------------------------------------------------------------------------------


def _inventory(engine: Engine, links: int, devices: int) -> tuple[list[int], list[int]]:
    """A branch site per two devices, a WAN port per link, each an uplink: what the poller writes for."""
    from infra_mgr.inventory.models import Device, Interface, Site
    from infra_mgr.network.models import Uplink

    iface_ids: list[int] = []
    device_ids: list[int] = []
    with Session(engine) as s:
        sites = []
        for b in range(max(1, (devices + 1) // 2)):
            site = Site(code=f"JED-B{b + 1:02d}", name_en=f"Branch {b + 1}", name_ar=f"الفرع {b + 1}")
            s.add(site)
            sites.append(site)
        s.flush()
        devs = []
        for d in range(devices):
            site = sites[d // 2]
            kind = "rtr" if d % 2 == 0 else "sw"
            dev = Device(site_id=site.id or 0, hostname=f"jed-b{d // 2 + 1:02d}-{kind}1",
                         management_address=f"127.2.{d // 2 + 1}.{d % 2 + 1}", role=kind)
            s.add(dev)
            devs.append(dev)
        s.flush()
        for k in range(links):
            dev = devs[k % devices]
            iface = Interface(device_id=dev.id or 0, name=f"GigabitEthernet0/{k // devices + 1}",
                              if_index=k // devices + 1, speed_bps=1_000_000_000, oper_status="up")
            s.add(iface)
            s.flush()
            s.add(Uplink(interface_id=iface.id or 0, device_id=dev.id or 0, site_id=dev.site_id, source="alias",
                         expected_speed_bps=1_000_000_000, expected_speed_source="name"))
            iface_ids.append(iface.id or 0)
        device_ids = [d.id or 0 for d in devs]
        s.commit()
    return iface_ids, device_ids


def _series(store: Any, iface_ids: list[int], device_ids: list[int]) -> list[_Series]:
    from infra_mgr.network import linkfacts as lf

    link_names = [lf.S_IN_BPS, lf.S_OUT_BPS, lf.S_UTIL_PCT, lf.S_ERRORS_PS, lf.S_DISCARDS_PS, lf.S_ERROR_PCT,
                  lf.S_PKTS_PS, lf.S_OPER_UP]
    dev_names = [lf.S_RTT_MS, lf.S_LOSS_PCT, lf.S_SNMP_LOSS_PCT]
    out: list[_Series] = []
    for k, iid in enumerate(iface_ids):
        for n in link_names:
            out.append(_Series(store.series_id(lf.IF_SERIES_KIND, iid, n, lf.SERIES_UNITS[n]), n, 1e9, k % 10 == 3))
    for k, did in enumerate(device_ids):
        for n in dev_names:
            out.append(_Series(store.series_id(lf.DEVICE_SERIES_KIND, did, n, lf.SERIES_UNITS[n]), n, 0.0, k % 10 == 5))
    return out


def _days(start_ms: int, end_ms: int) -> Iterator[int]:
    t = start_ms
    while t < end_ms:
        yield t
        t += DAY_MS


def build_year(folder: Path, *, links: int, devices: int, days: int, raw_days: int,
               log: Callable[[str], None] = print) -> tuple[StoreYear, Engine, Any]:
    """Fill a fresh SQLite store as a year (``days``) of polling would leave it; see the module doc."""
    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.telemetry.store import FIVE_MIN, HOUR, Retention, TelemetryStore

    path = folder / "telemetry-year.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    store = TelemetryStore(engine, Retention())
    iface_ids, device_ids = _inventory(engine, links, devices)
    series = _series(store, iface_ids, device_ids)
    now = (int(time.time() * 1000) // DAY_MS) * DAY_MS  # midnight: the raw days end at the start of today
    year = StoreYear(links=links, devices=devices, series=len(series), days=days, raw_days=raw_days,
                     interface_ids=iface_ids, now_ms=now)
    rng = random.Random(14)
    start, raw_start = now - days * DAY_MS, now - raw_days * DAY_MS
    five_keep = now - store.retention.five_min_for("interface") * 1000  # link and device series alike

    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    sql = "INSERT INTO metric_rollup (series_id, resolution_s, bucket_ms, min, avg, max, count) VALUES (?,?,?,?,?,?,?)"
    for day in _days(start, raw_start):
        rows: list[tuple[Any, ...]] = []
        if day >= five_keep:
            for b in range(day, day + DAY_MS, FIVE_MS):
                rows += [_rollup_row(s, b, FIVE_MIN, rng) for s in series]
        for b in range(day, day + DAY_MS, HOUR_MS):
            rows += [_rollup_row(s, b, HOUR, rng) for s in series]
        with con:
            con.executemany(sql, rows)
    con.close()
    year.fill_s = time.perf_counter() - t0
    log(f"older part ({days - raw_days} days) written as roll-up rows in {year.fill_s:.0f} s")

    t0 = time.perf_counter()
    for day in _days(raw_start, now):
        for hour in range(day, day + DAY_MS, HOUR_MS):  # an hour of 60-s cycles per write call
            store.write((s.sid, ts, _value(s, ts, rng)) for ts in range(hour, hour + HOUR_MS, MIN_MS) for s in series)
        store.rollup(now=day + DAY_MS)
        store.prune(now=day + DAY_MS)
    year.raw_path_s = time.perf_counter() - t0
    log(f"last {raw_days} days written through TelemetryStore.write (an hour of cycles per call) + rollup() + "
        f"prune() at each day's end in {year.raw_path_s:.0f} s")

    # Then cycle by cycle, as the poller writes: one write of a cycle's samples, and the roll-up the
    # scheduler would run after it.
    for k in range(5):
        ts = now + k * MIN_MS
        t1 = time.perf_counter()
        store.write((s.sid, ts, _value(s, ts, rng)) for s in series)
        t2 = time.perf_counter()
        store.rollup(now=ts + MIN_MS)
        year.write_ms.append(1000 * (t2 - t1))
        year.rollup_ms.append(1000 * (time.perf_counter() - t2))

    with engine.connect() as c:
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        year.page_size = int(c.exec_driver_sql("PRAGMA page_size").scalar_one())
        year.pages = int(c.exec_driver_sql("PRAGMA page_count").scalar_one())
        year.free_pages = int(c.exec_driver_sql("PRAGMA freelist_count").scalar_one())
        year.rows["raw"] = int(c.exec_driver_sql("SELECT count(*) FROM metric_sample").scalar_one())
        for res, label in ((FIVE_MIN, "5min"), (HOUR, "hourly")):
            year.rows[label] = int(c.exec_driver_sql(
                f"SELECT count(*) FROM metric_rollup WHERE resolution_s = {res}").scalar_one())
    year.db_bytes = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return year, engine, store


# --- the chart query -------------------------------------------------------------------------------


def chart_query(engine: Engine, store: Any, interface_id: int, runs: int) -> tuple[list[float], str, int]:
    """Time ``link_views.link_series`` for one link over 30 days (the Links page's chart): ms per run,
    what was called, and how many points came back."""
    end = int(time.time() * 1000)
    start = end - 30 * DAY_MS
    try:
        from infra_mgr.network import link_views
        fn: Callable[[], Any] | None = None

        def call() -> Any:
            with Session(engine) as s:
                return link_views.link_series(s, store, interface_id, start, end)

        fn, what = call, "link_views.link_series"
    except ImportError:
        from infra_mgr.network import linkfacts as lf

        names = [lf.S_IN_BPS, lf.S_OUT_BPS, lf.S_UTIL_PCT, lf.S_ERRORS_PS, lf.S_DISCARDS_PS, lf.S_ERROR_PCT,
                 lf.S_OPER_UP]

        def call_store() -> Any:
            ids = store.series_of(lf.IF_SERIES_KIND, interface_id)
            return [store.query(ids[n], start, end) for n in names]

        fn, what = call_store, "TelemetryStore.query x7 (link_views.link_series not present)"
    times: list[float] = []
    result: Any = None
    for _ in range(runs + 1):  # the first warms the connection pool and the page cache: not counted
        t0 = time.perf_counter()
        result = fn()
        times.append(1000 * (time.perf_counter() - t0))
    return times[1:], what, _points(result)


def _points(result: Any) -> int:
    """Points in whatever the chart query returned (a model with series, or a list of (res, points))."""
    if isinstance(result, list):
        return sum(len(r[1]) if isinstance(r, tuple) else _points(r) for r in result)
    for attr in ("series", "points"):
        inner = getattr(result, attr, None)
        if isinstance(inner, list):
            return sum(_points(x) if not hasattr(x, "ts_ms") else 1 for x in inner)
        if isinstance(inner, dict):
            return sum(_points(x) for x in inner.values())
    return 1 if result is not None else 0


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# --- the RRD baseline ------------------------------------------------------------------------------


def rrd_available() -> bool:
    return Path(RRDTOOL).exists()


def rrd_files(folder: Path, links: int, devices: int, start_s: int) -> tuple[int, int, Path]:
    """Create LibreNMS's port and icmp-perf RRDs for the same links and devices: total bytes, one port
    RRD's bytes, and the first port RRD's path."""
    folder.mkdir(parents=True, exist_ok=True)
    port_ds = [f"DS:{d}:DERIVE:600:0:12500000000" for d in PORT_DS]
    icmp_ds = [f"DS:{d}:GAUGE:600:0:65535" for d in ICMP_DS]
    lines = [" ".join(["create", str(folder / f"port-id{k}.rrd"), "--start", str(start_s), "--step", "300",
                       *port_ds, *LIBRENMS_RRA]) for k in range(links)]
    lines += [" ".join(["create", str(folder / f"icmp-perf-{k}.rrd"), "--start", str(start_s), "--step", "300",
                        *icmp_ds, *LIBRENMS_RRA]) for k in range(devices)]
    proc = subprocess.run([RRDTOOL, "-"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "ERROR" in proc.stdout:
        raise RuntimeError(f"rrdtool create failed: {proc.stdout[-300:]} {proc.stderr[-300:]}")
    total = sum(p.stat().st_size for p in folder.glob("*.rrd"))
    first = folder / "port-id0.rrd"
    return total, first.stat().st_size, first


def rrd_fill_year(path: Path, start_s: int, end_s: int) -> None:
    """A year of 5-minute updates of one port RRD (counters rising with the same daily shape)."""
    rng = random.Random(7)
    counters = [0] * len(PORT_DS)
    lines: list[str] = []
    batch: list[str] = []
    for t in range(start_s + 300, end_s + 1, 300):
        shape = _SHAPE[(t // 60) % 1440]
        for i in range(len(counters)):
            rate = 1.25e8 * shape * rng.random() if i < 2 else 1000 * shape * rng.random() if i in (4, 5) else 0.0
            counters[i] += int(rate * 300)
        batch.append(f"{t}:" + ":".join(str(c) for c in counters))
        if len(batch) == 500:
            lines.append(f"update {path} " + " ".join(batch))
            batch = []
    if batch:
        lines.append(f"update {path} " + " ".join(batch))
    proc = subprocess.run([RRDTOOL, "-"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False)
    if proc.returncode != 0 or "ERROR" in proc.stdout:
        raise RuntimeError(f"rrdtool update failed: {proc.stdout[-300:]}")


def rrd_chart(path: Path, end_s: int, runs: int) -> tuple[list[float], int]:
    """``rrdtool xport`` of 30 days (<= 600 rows) through one persistent ``rrdtool -``: ms per run
    (command written to answer read), and the rows of the last answer."""
    defs: list[str] = []
    xports: list[str] = []
    for i, ds in enumerate(CHART_DS):
        for cf in ("AVERAGE", "MIN", "MAX"):
            name = f"v{i}{cf[:2].lower()}"
            defs.append(f"DEF:{name}={path}:{ds}:{cf}")
            xports.append(f"XPORT:{name}")
    cmd = " ".join(["xport", "--start", str(end_s - 30 * 86400), "--end", str(end_s), "--maxrows", "600",
                    *defs, *xports]) + "\n"
    proc = subprocess.Popen([RRDTOOL, "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    assert proc.stdin is not None and proc.stdout is not None
    times: list[float] = []
    rows = 0
    try:
        for _ in range(runs + 1):
            t0 = time.perf_counter()
            proc.stdin.write(cmd)
            proc.stdin.flush()
            count = 0
            while True:
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("rrdtool - ended")
                if line.startswith("ERROR"):
                    raise RuntimeError(line.strip())
                if line.startswith("OK "):
                    break
                count += line.count("<row>")
            times.append(1000 * (time.perf_counter() - t0))
            rows = count
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    return times[1:], rows


def median(values: list[float]) -> float:
    return statistics.median(values)


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def chart_in_fresh_process(db_path: Path, interface_id: int, runs: int) -> tuple[list[float], str, int]:
    """:func:`chart_query` in a new process, as a server runs it: this bench process has just made
    and dropped tens of millions of Python objects, and its collector's pauses are not the query's."""
    done = subprocess.run([sys.executable, __file__, "--chart", str(db_path), str(interface_id), str(runs)],
                          capture_output=True, text=True, check=True, timeout=600)
    got = json.loads(done.stdout.strip().splitlines()[-1])
    return [float(x) for x in got["times"]], str(got["what"]), int(got["points"])


if __name__ == "__main__" and sys.argv[1:2] == ["--chart"]:
    from infra_mgr.db import make_engine
    from infra_mgr.telemetry.store import TelemetryStore

    _engine = make_engine(f"sqlite:///{sys.argv[2]}")
    _times, _what, _npoints = chart_query(_engine, TelemetryStore(_engine), int(sys.argv[3]), int(sys.argv[4]))
    _engine.dispose()
    print(json.dumps({"times": _times, "what": _what, "points": _npoints}))
