"""Benchmark: list the 1,000 interfaces of one device through the real API, on SQLite and PostgreSQL,
with one client and with 10 concurrent clients.

Dataset (built once per backend and reused, both under the git-ignored ``bench/out/api_interfaces/``):
65 sites, 10,000 devices, 200,000 interfaces — 9,999 access/distribution devices with ~20
interfaces each and one core chassis with exactly 1,000 (its line cards inserted at different
times, so its rows are spread through the table as they would be after years of discovery). The
same generator (fixed seeds) fills a SQLite file and a private PostgreSQL cluster started through
the lab supervisor (``infra_mgr.lab.peers.postgres_spec``), whose data directory is kept between runs.

Measured for each backend against `infra-mgr serve` (uvicorn) in a subprocess, with a bearer token:

* one client, one keep-alive httpx connection, ``--rounds`` rounds of ``--requests`` timed requests:
  ``GET /api/v1/interfaces?device_id=<chassis>&limit=1000`` (the goal), the same for a 20-interface
  device, and the 1,000 interfaces fetched page by page at ``limit=50`` following ``next`` cursors
  (20 requests; NetBox's default page size is 50, so this is how a default NetBox client fetches them);
* 10 concurrent clients, each its own process with its own keep-alive connection, asking for the
  1,000 interfaces in a closed loop (next request as soon as the previous answer is read and
  checked) for ``--duration`` seconds, ``--rounds`` rounds: median and p95 latency and throughput
  (requests completed per second of the window);
* in-process, without HTTP: ``infra_mgr.api.crud.list_rows`` alone (SQL + ORM rows) and the
  response model validation + JSON encoding of those 1,000 rows, to show where the time goes.

Every figure is the median over the rounds of that round's median (or p95, or throughput): never
the best round. Each response is checked (HTTP 200, exactly the expected rows, no stray cursor).

The 8,000 ms anchor is NetBox users' reports of 7–9 s for this request. NetBox cannot be run here,
so it is a published figure, not a side-by-side measurement, and the RESULT line says so. The
PostgreSQL and concurrent figures are compared side by side with the single-client SQLite and
single-client same-backend figures of the same run.

Usage: ``.venv/bin/python bench/api_interfaces.py [--backends sqlite,postgres] [--rounds 3]
[--requests 50] [--clients 10] [--duration 10] [--rebuild] [--keep] [--smoke]``
``--smoke`` builds a throw-away 2,000-interface dataset (the chassis still has 1,000) on both
backends and runs every path a few times: it measures nothing.
Prints ``RESULT`` lines; exits 0 even when a goal is missed (non-zero only if the benchmark
itself is broken, e.g. a response without exactly 1,000 rows, or PostgreSQL is missing under CI).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing as mp
import os
import random
import resource
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, insert, select, text
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._served import PostgresUnavailable, Server, percentile, private_postgres  # noqa: E402
from bench.provenance import record  # noqa: E402
from infra_mgr.api.crud import list_rows  # noqa: E402
from infra_mgr.api.pagination import Page  # noqa: E402
from infra_mgr.auth.models import User, UserCreate  # noqa: E402
from infra_mgr.auth.permissions import Role  # noqa: E402
from infra_mgr.auth.service import create_token, create_user  # noqa: E402
from infra_mgr.db import is_sqlite, make_engine, upgrade, write_session  # noqa: E402
from infra_mgr.inventory.models import Device, Interface, InterfaceRead, Site  # noqa: E402

OUT_DIR = ROOT / "bench" / "out" / "api_interfaces"  # git-ignored (bench/out/)


@dataclass(frozen=True)
class Dataset:
    """Sizes of one generated dataset; the chassis always has the 1,000 interfaces the goal asks for."""

    sites: int
    devices: int
    interfaces: int
    chassis_index: int  # the chassis's device id (of 1..devices), in the middle of the id range
    chassis_ports: int = 1_000

    def counts(self) -> tuple[int, int, int, int]:
        return self.sites, self.devices, self.interfaces, self.chassis_ports


FULL = Dataset(sites=65, devices=10_000, interfaces=200_000, chassis_index=5_000)
SMOKE = Dataset(sites=5, devices=100, interfaces=2_000, chassis_index=50)

CHASSIS_HOSTNAME = "jed-dc1-core-ch01"
CHASSIS_CARDS = 10  # the chassis's line cards arrive at ten different points in time
BATCH = 10_000

GOAL_MS = 100.0
ANCHOR_MS = 8_000.0
ANCHOR_SOURCE = "NetBox users' reports, 7-9 s"
ANCHOR_BASELINE = "netbox-published-figure (users' reports 7-9 s; not run here, not side by side)"
NO_BASELINE = "none (no side-by-side baseline) n/a; ratio n/a"
PAGE_SMALL = 50  # NetBox's default page size
SMALL_PORTS = 20  # the "ordinary device" request asks for a device with this many interfaces

BENCH_USER = "bench_reader"
BENCH_PASSWORD = "bench-password-not-secret"

_AR_ALIASES = [
    "مبنى البلدية - الطابق ٢", "قاعة الاجتماعات الرئيسية", "مركز خدمة المواطنين",
    "غرفة الخوادم", "بوابة الحديقة العامة", "مكتب الاستقبال", "كاميرات المراقبة - المدخل",
    "نقطة وصول لاسلكية - الممر", "مستودع الصيانة", "مكتبة الحي",
]
_EN_ALIASES = [
    "uplink to core", "printer 2nd floor", "AP corridor east", "CCTV entrance", "reception PC",
    "VoIP phone desk 14", "door controller", "UPS management", "meeting room TV", "spare",
]


# --------------------------------------------------------------------------- dataset


def _ts(rng: random.Random) -> dt.datetime:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return base + dt.timedelta(seconds=rng.randrange(0, 3 * 365 * 86400))


def _mac(n: int) -> str:
    b = (0x00_1B_54_00_00_00 + n).to_bytes(6, "big")
    return ":".join(f"{x:02x}" for x in b)


def _small_sizes(ds: Dataset) -> list[int]:
    """Interface counts for the ordinary devices: 8-28 each (~20 at full size), summing exactly to
    the dataset's total minus the chassis."""
    rng = random.Random(7)
    target = ds.interfaces - ds.chassis_ports
    n = ds.devices - 1
    choices = [8, 12, 16, 20, 20, 20, 24, 24, 28]
    sizes = [rng.choice(choices) for _ in range(n)]
    diff = target - sum(sizes)
    i = 0
    while diff != 0:  # nudge devices one port at a time until the total is exact
        step = 1 if diff > 0 else -1
        if 8 <= sizes[i % n] + step <= 28:
            sizes[i % n] += step
            diff -= step
        i += 7919  # walk the list in a scattered order
    return sizes


def _iface_rows(device_id: int, ports: range, rng: random.Random, counter: list[int],
                chassis: bool) -> list[dict[str, Any]]:
    rows = []
    for p in ports:
        counter[0] += 1
        if chassis:
            slot, port = divmod(p, 48)
            kind = "TenGigabitEthernet" if slot < 4 else "GigabitEthernet"
            name = f"{kind}{slot + 1}/0/{port + 1}"
            speed = 10_000_000_000 if slot < 4 else 1_000_000_000
        else:
            name = f"GigabitEthernet1/0/{p + 1}"
            speed = rng.choice((1_000_000_000, 1_000_000_000, 100_000_000, 10_000_000_000))
        r = rng.random()
        alias = rng.choice(_AR_ALIASES) if r < 0.15 else rng.choice(_EN_ALIASES) if r < 0.6 else ""
        created = _ts(rng)
        rows.append(dict(
            device_id=device_id, name=name, if_index=p + 1,
            description=f"{name} - {alias}" if alias else "",
            alias=alias, type="ethernetCsmacd", speed_bps=speed,
            mtu=9216 if chassis else rng.choice((1500, 1500, 9216)),
            mac=_mac(counter[0]),
            admin_status="up" if rng.random() < 0.9 else "down",
            oper_status=rng.choice(("up", "up", "up", "down", "lowerLayerDown")),
            created_at=created, updated_at=created,
        ))
    return rows


def _counts(engine: Engine) -> tuple[int, int, int, int]:
    with engine.connect() as conn:
        sites = conn.execute(select(func.count()).select_from(Site.__table__)).scalar_one()
        devices = conn.execute(select(func.count()).select_from(Device.__table__)).scalar_one()
        ifaces = conn.execute(select(func.count()).select_from(Interface.__table__)).scalar_one()
        chassis = conn.execute(text(
            "select count(*) from interface i join device d on d.id = i.device_id where d.hostname = :h"
        ), {"h": CHASSIS_HOSTNAME}).scalar_one()
    return sites, devices, ifaces, chassis


def fill_db(url: str, ds: Dataset) -> None:
    """Migrate ``url`` and insert the dataset (one transaction: an interrupted fill leaves nothing).
    The generator is seeded, so SQLite and PostgreSQL hold the same rows."""
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(42)
    site_t, dev_t, if_t = Site.__table__, Device.__table__, Interface.__table__  # type: ignore[attr-defined]
    now = dt.datetime.now(dt.UTC)

    sites = []
    for i in range(1, ds.sites + 1):
        kind = "datacenter" if i <= 2 else "hq" if i == 3 else "branch"
        code = f"JED-DC{i}" if i <= 2 else "JED-HQ" if i == 3 else f"JED-B{i:02d}"
        sites.append(dict(id=i, code=code, name_en=f"Jeddah {kind} {i}", name_ar=f"فرع جدة {i}",
                          kind=kind, status="active", address=f"District {i}, Jeddah", latitude=21.5 + i / 1000,
                          longitude=39.2 + i / 1000, description="", created_at=now, updated_at=now))

    devices = []
    vendors = [("cisco", "ios-xe", "C9300-48P"), ("aruba", "aos-cx", "6300M"), ("juniper", "junos", "EX4300-48T")]
    for d in range(1, ds.devices + 1):
        if d == ds.chassis_index:
            hostname, site_id, role, (vendor, platform, model) = CHASSIS_HOSTNAME, 1, "core", (
                "cisco", "ios-xe", "C9606R")
        else:
            site_id = 1 + (d % ds.sites)
            role = rng.choice(("access", "access", "access", "distribution", "firewall", "wireless-controller"))
            vendor, platform, model = rng.choice(vendors)
            hostname = f"jed-s{site_id:02d}-{role[:3]}-{d:05d}"
        seen = _ts(rng)
        devices.append(dict(id=d, site_id=site_id, hostname=hostname,
                            management_address=f"10.{64 + d // 65536}.{(d // 256) % 256}.{d % 256}",
                            role=role, vendor=vendor, platform=platform, model=model,
                            serial=f"FOC{d:08d}", os_version="17.9.4", status="active", credential_id=None,
                            first_seen=seen, last_seen=now, created_at=seen, updated_at=seen))

    sizes = _small_sizes(ds)
    counter = [0]
    small_ids = [d for d in range(1, ds.devices + 1) if d != ds.chassis_index]
    per_card = ds.chassis_ports // CHASSIS_CARDS
    spread = math.ceil(len(small_ids) / CHASSIS_CARDS)  # ordinary devices between two line cards
    with engine.begin() as conn:
        conn.execute(insert(site_t), sites)
        for i in range(0, len(devices), BATCH):
            conn.execute(insert(dev_t), devices[i:i + BATCH])
        batch: list[dict[str, Any]] = []
        for k, (dev_id, size) in enumerate(zip(small_ids, sizes, strict=True)):
            batch += _iface_rows(dev_id, range(size), rng, counter, chassis=False)
            if k % spread == spread // 2:
                card = k // spread
                batch += _iface_rows(ds.chassis_index, range(card * per_card, (card + 1) * per_card),
                                     rng, counter, chassis=True)
            if len(batch) >= BATCH:
                conn.execute(insert(if_t), batch)
                batch = []
        if batch:
            conn.execute(insert(if_t), batch)
        if not is_sqlite(engine):  # ids were given explicitly: move the sequences past them
            for table in ("site", "device"):
                conn.exec_driver_sql(f"select setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(select max(id) from {table}))")
    if is_sqlite(engine):
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:  # VACUUM cannot run in a transaction; it also sets the visibility map as a settled table has
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _dataset_ok(url: str, ds: Dataset) -> tuple[bool, tuple[int, int, int, int]]:
    engine = make_engine(url)
    try:
        counts = _counts(engine)
    except Exception:  # noqa: BLE001 - an unreadable, empty or old database is rebuilt
        counts = (-1, -1, -1, -1)
    finally:
        engine.dispose()
    return counts == ds.counts(), counts


def ensure_sqlite(db_file: Path, ds: Dataset, rebuild: bool) -> tuple[str, float]:
    """Reuse a complete dataset, else build one. The build goes to a side file renamed into
    place only when finished, so an interrupted build is never mistaken for a complete one."""
    if rebuild:
        _remove(db_file)
    if db_file.exists():
        ok, counts = _dataset_ok(f"sqlite:///{db_file}", ds)
        if ok:
            return "reused", 0.0
        print(f"existing SQLite database has counts {counts}, expected {ds.counts()}: rebuilding")
        _remove(db_file)
    tmp = db_file.with_name(db_file.name + ".building")
    _remove(tmp)
    t0 = time.perf_counter()
    fill_db(f"sqlite:///{tmp}", ds)
    with closing(sqlite3.connect(tmp)) as raw:  # fold the WAL into the file: reruns start clean
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    elapsed = time.perf_counter() - t0
    os.replace(tmp, db_file)
    _remove(tmp)
    return "built", elapsed


def ensure_postgres(url: str, ds: Dataset, rebuild: bool) -> tuple[str, float]:
    """Reuse the cluster's dataset when complete; else empty the schema and fill it again (the fill
    is one transaction, so a half-built dataset cannot look complete)."""
    if not rebuild:
        ok, counts = _dataset_ok(url, ds)
        if ok:
            return "reused", 0.0
        if counts != (-1, -1, -1, -1):
            print(f"existing PostgreSQL database has counts {counts}, expected {ds.counts()}: rebuilding")
    t0 = time.perf_counter()
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("drop schema public cascade")
        conn.exec_driver_sql("create schema public")
    engine.dispose()
    fill_db(url, ds)
    return "built", time.perf_counter() - t0


def make_token(engine: Engine) -> str:
    with write_session(engine) as session:
        user = session.execute(select(User).where(User.username == BENCH_USER)).scalars().first()
        if user is None:
            user = create_user(session, UserCreate(username=BENCH_USER, password=BENCH_PASSWORD,
                                                   role=Role.viewer, full_name="benchmark reader"))
        _tok, raw = create_token(session, user, name=f"bench {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}")
    return raw


# --------------------------------------------------------------------------- measuring


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _time(fn: Callable[[], Any], n: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _check(resp: httpx.Response, expect: int, what: str) -> dict[str, Any]:
    if resp.status_code != 200:
        raise SystemExit(f"FAIL {what}: HTTP {resp.status_code}: {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    if len(body.get("results", [])) != expect:
        raise SystemExit(f"FAIL {what}: expected {expect} results, got {len(body.get('results', []))}")
    return body


@dataclass
class Target:
    """What the requests ask for, in one database."""

    chassis_id: int
    chassis_ports: int
    small_id: int
    small_n: int


def measure_http(base: str, server_pid: int, token: str, tg: Target, n: int, n_paged: int,
                 warmup: int) -> dict[str, list[float]]:
    """One round with one client over one keep-alive connection; latencies in ms, and the server's
    CPU per 1,000-interface request (from /proc: the process's threads, not just the request's)."""
    url = base + "/api/v1/interfaces"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=60.0) as client:
        big = {"device_id": tg.chassis_id, "limit": 1000}
        results: dict[str, list[float]] = {}
        # Warm-up and timed runs; each response is checked after its time is taken.
        for _ in range(warmup):
            _check(client.get(url, params=big), tg.chassis_ports, "warm-up")
        times = []
        cpu0 = _proc_cpu(server_pid)
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.get(url, params=big)
            times.append((time.perf_counter() - t0) * 1000)
            body = _check(r, tg.chassis_ports, "1000-interface listing")
            if body["next"] is not None:
                raise SystemExit("FAIL 1000-interface listing: unexpected next cursor")
        results["big"] = times
        results["server_cpu_ms"] = [(_proc_cpu(server_pid) - cpu0) * 1000 / n]

        times = []
        for i in range(n + warmup):
            t0 = time.perf_counter()
            r = client.get(url, params={"device_id": tg.small_id, "limit": 1000})
            el = (time.perf_counter() - t0) * 1000
            _check(r, tg.small_n, "small-device listing")
            if i >= warmup:
                times.append(el)
        results["small"] = times

        def paged() -> int:
            cursor: str | None = None
            got = pages = 0
            while True:
                params: dict[str, Any] = {"device_id": tg.chassis_id, "limit": PAGE_SMALL}
                if cursor:
                    params["cursor"] = cursor
                r = client.get(url, params=params)
                if r.status_code != 200:
                    raise SystemExit(f"FAIL paged listing: HTTP {r.status_code}: {r.text[:300]}")
                body = r.json()
                got += len(body["results"])
                pages += 1
                cursor = body["next"]
                if not cursor:
                    break
            if got != tg.chassis_ports:
                raise SystemExit(f"FAIL paged listing: fetched {got} rows in {pages} pages, "
                                 f"expected {tg.chassis_ports}")
            return pages

        times = []
        pages = 0
        for i in range(n_paged + 2):
            t0 = time.perf_counter()
            pages = paged()
            el = (time.perf_counter() - t0) * 1000
            if i >= 2:
                times.append(el)
        results["paged"] = times
        results["paged_pages"] = [float(pages)]
    return results


def _client_worker(base: str, token: str, tg: Target, warmup: int, duration: float,
                   barrier: Any, conn: Connection) -> None:
    """One of the concurrent clients (a forked process, so clients do not share a GIL): warm up,
    wait for the others, then ask for the 1,000 interfaces back to back until ``duration`` is over.
    Sends back (start, end) monotonic times of each request, or an error message."""
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as this short process
    sys.stdout = sys.stderr = devnull  # the parent's tee must not receive a copy of anything
    try:
        url = base + "/api/v1/interfaces"
        params = {"device_id": tg.chassis_id, "limit": 1000}
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=120.0) as client:
            for _ in range(warmup):
                _check(client.get(url, params=params), tg.chassis_ports, "concurrent warm-up")
            barrier.wait(timeout=120)
            start, cpu0 = time.monotonic(), _self_cpu()
            samples: list[tuple[float, float]] = []
            while time.monotonic() - start < duration:
                t0 = time.monotonic()
                r = client.get(url, params=params)
                t1 = time.monotonic()
                _check(r, tg.chassis_ports, "concurrent 1000-interface listing")
                samples.append((t0, t1))
            cpu = _self_cpu() - cpu0
        conn.send(("ok", (samples, cpu)))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def measure_concurrent(base: str, server_pid: int, token: str, tg: Target, clients: int, duration: float,
                       warmup: int) -> dict[str, float]:
    """One round of ``clients`` concurrent closed-loop clients. Latency of every request started in
    the window; throughput = requests completed within [first start, first start + duration]. Also
    the CPU the server and the clients used over the round (in cores), to show whether the
    2-core machine, rather than the service, set the pace."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(clients + 1)
    sys.stdout.flush()
    sys.stderr.flush()  # nothing buffered may be inherited (a child's exit would write it again)
    procs, pipes = [], []
    for _ in range(clients):
        parent_end, child_end = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client_worker, args=(base, token, tg, warmup, duration, barrier, child_end))
        p.start()
        child_end.close()
        procs.append(p)
        pipes.append(parent_end)
    samples: list[tuple[float, float]] = []
    errors: list[str] = []
    client_cpu = 0.0
    with suppress(Exception):  # a broken barrier: the clients' own reports say why
        barrier.wait(timeout=180)
    load1 = os.getloadavg()[0]
    wall0, cpu0 = time.monotonic(), _proc_cpu(server_pid)
    for p, pipe in zip(procs, pipes, strict=True):
        try:
            status, payload = pipe.recv()
        except EOFError:
            status, payload = "error", "client exited without reporting"
        if status == "ok":
            samples += payload[0]
            client_cpu += payload[1]
        else:
            errors.append(payload)
        p.join(timeout=30)
    wall, server_cpu = time.monotonic() - wall0, _proc_cpu(server_pid) - cpu0
    if errors:
        raise SystemExit(f"FAIL concurrent clients: {errors[0]} ({len(errors)} of {clients} failed)")
    t_start = min(s for s, _ in samples)
    t_end = t_start + duration
    lat = [(e - s) * 1000 for s, e in samples]
    done = sum(1 for _, e in samples if e <= t_end)
    return {"median": statistics.median(lat), "p95": percentile(lat, 95), "max": max(lat),
            "throughput": done / duration, "requests": float(len(samples)),
            "server_cores": server_cpu / wall, "client_cores": client_cpu / wall,
            "server_cpu_ms": server_cpu * 1000 / len(samples), "load1": load1}


def measure_inprocess(engine: Engine, tg: Target, n: int) -> tuple[dict[str, list[float]], list[str]]:
    clauses = [Interface.device_id == tg.chassis_id]
    page_model = Page[InterfaceRead]
    out: dict[str, list[float]] = {}
    with Session(engine, expire_on_commit=False) as session:
        def db() -> None:
            rows, _ = list_rows(session, Interface, clauses, 1000, None)
            assert len(rows) == tg.chassis_ports
            session.expunge_all()

        out["db"] = _time(db, n)
        rows, nxt = list_rows(session, Interface, clauses, 1000, None)

        def ser() -> None:
            page_model.model_validate({"results": rows, "next": nxt}).model_dump_json()

        out["ser"] = _time(ser, n)
    query = "SELECT * FROM interface WHERE device_id = :d ORDER BY id LIMIT 1001"
    with engine.connect() as conn:
        if is_sqlite(engine):
            plan = [str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + query), {"d": tg.chassis_id})]
        else:
            plan = [str(r[0]).strip() for r in conn.execute(text("EXPLAIN " + query), {"d": tg.chassis_id})]
    return out, plan


# --------------------------------------------------------------------------- one backend


@dataclass
class BackendRun:
    """Everything measured on one backend (rounds kept separately: figures are medians of rounds)."""

    name: str
    rounds: list[dict[str, list[float]]] = field(default_factory=list)
    conc: list[dict[str, float]] = field(default_factory=list)
    inproc: dict[str, list[float]] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    small_n: int = 0
    error: str | None = None

    def med_of(self, key: str, stat: Callable[[list[float]], float]) -> float:
        return statistics.median(stat(r[key]) for r in self.rounds)

    def conc_med(self, key: str) -> float:
        return statistics.median(c[key] for c in self.conc)


@dataclass
class Settings:
    ds: Dataset
    rounds: int
    requests: int
    paged: int
    warmup: int
    clients: int
    duration: float
    rebuild: bool
    keep: bool


def _target(engine: Engine, ds: Dataset) -> Target:
    with engine.connect() as conn:
        chassis_id = conn.execute(select(Device.__table__.c.id).where(
            Device.__table__.c.hostname == CHASSIS_HOSTNAME)).scalar_one()
        small_id, small_n = conn.execute(text(
            "select device_id, count(*) as c from interface where device_id <> :c group by device_id "
            "order by abs(count(*) - :n), device_id limit 1"), {"c": chassis_id, "n": SMALL_PORTS}).one()
    return Target(chassis_id, ds.chassis_ports, int(small_id), int(small_n))


def run_backend(run: BackendRun, url: str, data_dir: Path, st: Settings, keep_last: bool) -> None:
    engine = make_engine(url)
    tg = _target(engine, st.ds)
    run.small_n = tg.small_n
    token = make_token(engine)
    engine.dispose()  # no connection of ours is open while clients are forked
    server = Server(url, data_dir)
    try:
        server.wait_ready()
        print(f"[{run.name}] server: infra-mgr serve on {server.base} (pid {server.proc.pid}); "
              f"{st.rounds} rounds of {st.requests} timed requests after {st.warmup} warm-up, then "
              f"{st.clients} concurrent clients for {st.duration:g} s per round")
        for i in range(st.rounds):
            r = measure_http(server.base, server.proc.pid, token, tg, st.requests, st.paged, st.warmup)
            run.rounds.append(r)
            print(f"[{run.name}] round {i + 1}: one client, 1,000 interfaces median "
                  f"{statistics.median(r['big']):.1f} ms, p95 {percentile(r['big'], 95):.1f} ms")
        for i in range(st.rounds):
            c = measure_concurrent(server.base, server.proc.pid, token, tg, st.clients, st.duration, st.warmup)
            run.conc.append(c)
            print(f"[{run.name}] round {i + 1}: {st.clients} clients, median {c['median']:.1f} ms, "
                  f"p95 {c['p95']:.1f} ms, {c['throughput']:.1f} requests/s ({c['requests']:.0f} requests)")
        engine = make_engine(url)
        try:
            run.inproc, run.plan = measure_inprocess(engine, tg, st.requests)
        finally:
            engine.dispose()
        if st.keep and keep_last:
            print(f"--keep: server stays up at {server.base} ({run.name}) after the results; token: {token}; "
                  "Ctrl-C stops it")
            report_backend(run, st)
            with suppress(KeyboardInterrupt):
                server.proc.wait()
    finally:
        server.stop()


def run_sqlite(st: Settings, work: Path, keep_last: bool) -> BackendRun:
    run = BackendRun("sqlite")
    db_file = work / "infra-mgr.db"
    how, build_s = ensure_sqlite(db_file, st.ds, st.rebuild)
    print(f"[sqlite] database {db_file.relative_to(ROOT) if db_file.is_relative_to(ROOT) else db_file}: "
          + ("reused (counts checked; --rebuild rebuilds it)" if how == "reused" else f"built in {build_s:.1f} s"))
    run_backend(run, f"sqlite:///{db_file}", work, st, keep_last)
    return run


def run_postgres(st: Settings, work: Path, keep_last: bool) -> BackendRun:
    run = BackendRun("postgres")
    try:
        with private_postgres(work) as url:
            how, build_s = ensure_postgres(url, st.ds, st.rebuild)
            print("[postgres] database: " + ("reused (counts checked; --rebuild rebuilds it)" if how == "reused"
                                             else f"built in {build_s:.1f} s"))
            run_backend(run, url, work, st, keep_last)
    except PostgresUnavailable as exc:
        run.error = str(exc)
    return run


# --------------------------------------------------------------------------- report


def report_backend(run: BackendRun, st: Settings) -> None:
    if run.error:
        print(f"\n[{run.name}] not measured: {run.error}")
        return
    paged_pages = int(run.rounds[0]["paged_pages"][0])
    labels = {
        "big": "HTTP  1,000 interfaces, one request (limit=1000)",
        "small": f"HTTP  {run.small_n} interfaces, one request",
        "paged": f"HTTP  1,000 interfaces, {paged_pages} pages of {PAGE_SMALL} via next cursors",
    }
    print()
    print(f"{run.name}: one client; per round: median / p95 (ms); figure = median of the rounds")
    print(f"{'measurement':<58} " + " ".join(f"{'round ' + str(i + 1):>15}" for i in range(len(run.rounds)))
          + f" {'figure':>15}")
    print("-" * (75 + 16 * len(run.rounds)))
    for key, label in labels.items():
        cells = [f"{statistics.median(r[key]):>6.1f} /{percentile(r[key], 95):>6.1f}" for r in run.rounds]
        fig = f"{run.med_of(key, statistics.median):>6.1f} /{run.med_of(key, lambda v: percentile(v, 95)):>6.1f}"
        print(f"{label:<58} " + " ".join(f"{c:>15}" for c in cells) + f" {fig:>15}")
    for key, label in (("db", "in-process: list_rows (SQL + ORM rows), 1,000 rows"),
                       ("ser", "in-process: Page[InterfaceRead] validate + JSON, 1,000")):
        vals = run.inproc[key]
        print(f"{label:<58} {statistics.median(vals):>6.1f} /{percentile(vals, 95):>6.1f}  (one series of {len(vals)})")
    cpu = [r["server_cpu_ms"][0] for r in run.rounds]
    print(f"server CPU per 1,000-interface request, one client: "
          f"{' / '.join(f'{c:.1f}' for c in cpu)} ms (rounds)")
    print(f"(one-client rounds: {st.requests} requests each, paged {len(run.rounds[0]['paged'])} fetches)")
    print(f"query plan: {' | '.join(run.plan)}")
    print()
    print(f"{run.name}: {st.clients} concurrent clients, 1,000 interfaces, closed loop, {st.duration:g} s per round")
    print(f"{'round':<8} {'requests':>9} {'median':>10} {'p95':>10} {'max':>10} {'requests/s':>11} "
          f"{'server CPU/req':>15} {'server cores':>13} {'client cores':>13} {'load1':>6}")
    for i, c in enumerate(run.conc):
        print(f"{i + 1:<8} {c['requests']:>9.0f} {c['median']:>8.1f}ms {c['p95']:>8.1f}ms {c['max']:>8.1f}ms "
              f"{c['throughput']:>11.1f} {c['server_cpu_ms']:>13.1f}ms {c['server_cores']:>13.2f} "
              f"{c['client_cores']:>13.2f} {c['load1']:>6.1f}")
    print(f"{'figure':<8} {'':>9} {run.conc_med('median'):>8.1f}ms {run.conc_med('p95'):>8.1f}ms {'':>10} "
          f"{run.conc_med('throughput'):>11.1f}")


def _na(figure: str, why: str, goal: str) -> str:
    return f"RESULT {figure}: n/a ({why}); baseline {NO_BASELINE}; goal {goal}: FAIL (not measured)"


def result_lines(sq: BackendRun | None, pg: BackendRun | None, st: Settings) -> list[str]:
    """Every figure, one line each, for whichever backends ran (a backend that failed is FAIL)."""
    out: list[str] = []
    goal = f"<= {GOAL_MS:.0f} ms"
    sq_ok = sq is not None and sq.error is None
    sq_big = sq.med_of("big", statistics.median) if sq_ok and sq else None
    for run, suffix in ((sq, ""), (pg, "_postgres")):
        if run is None:
            continue
        names = [f"interfaces_1000_median{suffix}", f"interfaces_1000_p95{suffix}",
                 f"interfaces_1000_paged50_median{suffix}", f"interfaces_1000_c{st.clients}_median{suffix}",
                 f"interfaces_1000_c{st.clients}_p95{suffix}", f"interfaces_1000_c{st.clients}_throughput{suffix}"]
        if run.error:
            out += [_na(n, run.error, goal if i == 0 else "informational") for i, n in enumerate(names)]
            continue
        med = run.med_of("big", statistics.median)
        p95 = run.med_of("big", lambda v: percentile(v, 95))
        paged = run.med_of("paged", statistics.median)
        verdict = "PASS" if med <= GOAL_MS else "FAIL"
        if suffix == "":
            out.append(f"RESULT {names[0]}: {med:.1f} ms; baseline {ANCHOR_BASELINE} {ANCHOR_MS:.0f} ms; "
                       f"ratio {ANCHOR_MS / med:.1f}x faster; goal {goal}: {verdict}")
        elif sq_big is not None:
            out.append(f"RESULT {names[0]}: {med:.1f} ms; baseline sqlite-same-run {sq_big:.1f} ms; "
                       f"ratio {med / sq_big:.2f}; goal {goal}: {verdict}")
        else:
            out.append(f"RESULT {names[0]}: {med:.1f} ms; baseline {NO_BASELINE}; goal {goal}: {verdict}")
        out.append(f"RESULT {names[1]}: {p95:.1f} ms; baseline single-client-median {med:.1f} ms; "
                   f"ratio {p95 / med:.2f}; goal informational: PASS")
        out.append(f"RESULT {names[2]}: {paged:.1f} ms; baseline single-request {med:.1f} ms; "
                   f"ratio {paged / med:.1f}; goal informational: PASS")
        c_med, c_p95, c_tput = run.conc_med("median"), run.conc_med("p95"), run.conc_med("throughput")
        one_tput = 1000.0 / run.med_of("big", statistics.fmean)  # one client, back to back
        out.append(f"RESULT {names[3]}: {c_med:.1f} ms; baseline single-client-median {med:.1f} ms; "
                   f"ratio {c_med / med:.1f}; goal informational: PASS")
        out.append(f"RESULT {names[4]}: {c_p95:.1f} ms; baseline single-client-p95 {p95:.1f} ms; "
                   f"ratio {c_p95 / p95:.1f}; goal informational: PASS")
        out.append(f"RESULT {names[5]}: {c_tput:.1f} requests/s; baseline single-client {one_tput:.1f} requests/s; "
                   f"ratio {c_tput / one_tput:.2f}; goal informational: PASS")
    return out


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per measurement; figures are their median")
    ap.add_argument("--requests", type=int, default=50, help="timed one-client requests per round (default 50)")
    ap.add_argument("--clients", type=int, default=10, help="concurrent clients (default 10)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per concurrent round (default 10)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild the datasets even if valid ones exist")
    ap.add_argument("--keep", action="store_true",
                    help="leave the last backend's server running after measuring (prints URL and token)")
    ap.add_argument("--smoke", action="store_true",
                    help="throw-away 2,000-interface datasets, a few requests: checks the path, measures nothing")
    args = ap.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"sqlite", "postgres"}:
        ap.error("--backends takes sqlite and/or postgres")
    if min(args.rounds, args.requests, args.clients) < 1 or args.duration <= 0:
        ap.error("--rounds, --requests, --clients must be >= 1 and --duration > 0")
    if args.smoke:
        st = Settings(SMOKE, rounds=1, requests=3, paged=1, warmup=1, clients=args.clients, duration=1.0,
                      rebuild=True, keep=False)
    else:
        st = Settings(FULL, args.rounds, args.requests, max(5, args.requests // 2), 5, args.clients,
                      args.duration, args.rebuild, args.keep)

    # SIGTERM, like Ctrl-C, unwinds through the ``finally`` blocks so servers and PostgreSQL stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with record("api_interfaces", smoke=args.smoke, argv=sys.argv[1:] if argv is None else argv), \
            tempfile.TemporaryDirectory(prefix="api-interfaces-smoke-") as tmp:
        t_start = time.perf_counter()
        work = Path(tmp) if args.smoke else OUT_DIR
        work.mkdir(parents=True, exist_ok=True)
        ds = st.ds
        print(f"dataset: {ds.sites} sites, {ds.devices:,} devices, {ds.interfaces:,} interfaces "
              f"(one chassis with {ds.chassis_ports:,}); backends: {', '.join(backends)}")
        sq = pg = None
        if "sqlite" in backends:
            sq = run_sqlite(st, work, keep_last=backends[-1] == "sqlite")
        if "postgres" in backends:
            pg = run_postgres(st, work, keep_last=backends[-1] == "postgres")
        for run in (sq, pg):
            if run is not None:
                report_backend(run, st)
        print(f"\nanchor: {ANCHOR_MS:.0f} ms ({ANCHOR_SOURCE}): a published figure; NetBox cannot be run "
              f"here, so that ratio is not a side-by-side measurement")
        print(f"total runtime: {time.perf_counter() - t_start:.1f} s")
        print()
        for line in result_lines(sq, pg, st):
            print(line)
        broken = pg is not None and pg.error is not None and os.environ.get("CI", "").lower() == "true"
    if broken:
        print("PostgreSQL is required in CI", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
