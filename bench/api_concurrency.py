"""Benchmark: next-free IP allocation through the real API under concurrency, on SQLite and PostgreSQL.

Claim: any number of clients allocating from one prefix at once each get a 201 (a unique address)
or a clean 409 ("no free address") — never a 5xx, never a hang — and the service keeps a usable
throughput and p95 latency as the number of parallel clients grows.

For each backend a fresh database is migrated and ``infra-mgr serve`` (uvicorn, as deployed) is
started in a subprocess. For each level of 1, 10, 50 and 200 parallel clients and each round, a new
prefix is created and pre-filled so that exactly 90 % of the round's requests can be served; the
clients (asyncio + httpx, one keep-alive connection each, opened by its first request, all started together) then send
``POST /api/v1/prefixes/{id}/allocate`` in a closed loop until the round's requests are spent. So
every round ends with the prefix exhausted and the last tenth of the requests answered 409.
Checked after each round: every status is 201 or 409 with a JSON body, the 201s' addresses are
distinct, inside the prefix and exactly the free ones.

Baseline, side by side in the same run on the same database: a plain SQL loop on one DBAPI
connection (``sqlite3`` / ``psycopg``) doing the same allocation transaction on a prefix of the
same shape — lock (``BEGIN IMMEDIATE`` / ``SELECT … FOR UPDATE``), read the used addresses, insert
the lowest free one, commit — the same number of times. It is the database's own serial
allocation rate with no HTTP, no authentication, no ORM, no change history and no audit row, so
its rate is a ceiling, not a competitor; the ratio shows what the service costs on top of it.

Figures: per backend and level, throughput (answered requests per second of the round) and p95
latency, each the median over the rounds (never the best); the 5xx count is the total over every
round and level. Goals: no 5xx anywhere; p95 under the pool's checkout wait (``POOL_TIMEOUT``, the
point where a request would be refused 503); throughput at N clients at least half the 1-client
throughput of the same run (no collapse under load).

Usage: ``.venv/bin/python bench/api_concurrency.py [--backends sqlite,postgres] [--rounds 3]
[--levels 1,10,50,200] [--smoke]`` (``--smoke``: 1 round of few requests at 1 and 10 clients;
measures nothing). Exits 0 even when a goal is missed; non-zero when the bench itself is broken
(a duplicate address, a response that is neither 201, 409 nor 5xx, or PostgreSQL missing under CI).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlmodel import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._served import PostgresUnavailable, Server, percentile, private_postgres  # noqa: E402
from bench.provenance import record  # noqa: E402
from infra_mgr.auth.models import UserCreate  # noqa: E402
from infra_mgr.auth.permissions import Role  # noqa: E402
from infra_mgr.auth.service import create_token, create_user  # noqa: E402
from infra_mgr.db import POOL_TIMEOUT, make_engine, upgrade  # noqa: E402
from infra_mgr.inventory.models import IPAddress, Prefix  # noqa: E402

LEVELS = (1, 10, 50, 200)
# Requests per round at each level: enough that every client sends several.
REQUESTS = {1: 200, 10: 400, 50: 600, 200: 800}
SMOKE_REQUESTS = 20
SERVED_SHARE = 0.9  # the prefix has room for this share of a round's requests; the rest get 409
NO_BASELINE = "none (no side-by-side baseline) n/a; ratio n/a"
P95_GOAL_MS = POOL_TIMEOUT * 1000


# --------------------------------------------------------------------------- data


def _prefix_for(free: int, index: int) -> tuple[str, list[str]]:
    """The smallest IPv4 prefix with at least ``free`` hosts (the ``index``-th of its size under
    10.0.0.0/8) and the host addresses to pre-fill so that exactly ``free`` remain."""
    bits = max(2, math.ceil(math.log2(free + 2)))
    net = ipaddress.ip_network(f"10.0.0.0/{32 - bits}")
    net = ipaddress.ip_network((int(net.network_address) + (index << bits), 32 - bits))
    hosts = [str(h) for h in net.hosts()]
    return str(net), hosts[free:]  # the first `free` hosts stay free; the top of the range is taken


_prefix_counter = iter(range(1, 1 << 20))


def make_prefix(engine: Any, free: int) -> tuple[int, str, set[str]]:
    """A new prefix with exactly ``free`` free hosts; returns (id, cidr, the free addresses)."""
    cidr, taken = _prefix_for(free, next(_prefix_counter))
    net = ipaddress.ip_network(cidr)
    with Session(engine) as session:
        pfx = Prefix(prefix=cidr, role="bench", description="allocation bench")
        session.add(pfx)
        session.flush()
        pid = int(pfx.id)  # type: ignore[arg-type]  # set by the flush
        if taken:
            now = dt.datetime.now(dt.UTC)
            session.execute(insert(IPAddress), [
                {"address": a, "prefix_id": pid, "prefix_length": net.prefixlen, "status": "reserved",
                 "dns_name": "", "description": "pre-filled", "created_at": now, "updated_at": now}
                for a in taken])
        session.commit()
    free_set = {str(h) for h in net.hosts()} - set(taken)
    return pid, cidr, free_set


def make_token(engine: Any) -> str:
    with Session(engine) as session:
        user = create_user(session, UserCreate(username="bench_alloc", password="bench-password-not-secret",
                                               role=Role.sysadmin, full_name="allocation bench"))
        _tok, raw = create_token(session, user, name="allocation bench")
        session.commit()
    return raw


# --------------------------------------------------------------------------- measuring


@dataclass
class Round:
    clients: int
    requests: int
    wall_s: float
    latencies_ms: list[float]
    statuses: Counter[int]
    problems: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_s

    @property
    def fivexx(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 500)


async def _round(base: str, token: str, pid: int, clients: int, requests: int) -> tuple[float, list[Any]]:
    """``clients`` closed-loop clients share ``requests`` allocations; returns (wall, answers)."""
    left = [requests]
    answers: list[Any] = []
    # Idle connections are dropped by the client before the server's 5 s keep-alive can close one
    # under a request being sent on it (a lost answer that would say nothing about allocation).
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client:
        # No warm-up connections: one left idle past the server's keep-alive (5 s) while the others
        # open is closed under the first request sent on it, which would count as a lost answer.
        start = asyncio.Event()

        async def worker(i: int) -> None:
            await start.wait()
            while left[0] > 0:
                left[0] -= 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post(f"/api/v1/prefixes/{pid}/allocate", json={"description": f"c{i}"})
                except httpx.HTTPError as exc:
                    answers.append((time.perf_counter() - t0, None, repr(exc)))
                    continue
                answers.append((time.perf_counter() - t0, resp.status_code, resp))

        tasks = [asyncio.create_task(worker(i)) for i in range(clients)]
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0, answers


def measure_round(base: str, token: str, engine: Any, clients: int, requests: int) -> Round:
    free = int(requests * SERVED_SHARE)
    pid, cidr, free_set = make_prefix(engine, free)
    wall, answers = asyncio.run(_round(base, token, pid, clients, requests))
    statuses: Counter[int] = Counter()
    problems: list[str] = []
    got: list[str] = []
    for _lat, status, resp in answers:
        if status is None:
            statuses[0] += 1
            problems.append(f"transport error: {resp}")
            continue
        statuses[status] += 1
        if status == 201:
            got.append(resp.json()["address"])
        elif status == 409:
            if "no free address" not in resp.json().get("detail", ""):
                problems.append(f"409 without 'no free address': {resp.text[:200]}")
        elif status < 500:
            problems.append(f"unexpected {status}: {resp.text[:200]}")
    if len(got) != len(set(got)):
        problems.append(f"DUPLICATE addresses handed out in {cidr}")
    if not statuses.get(500) and not statuses.get(503) and set(got) != free_set:
        problems.append(f"the 201s in {cidr} are not exactly its {len(free_set)} free addresses")
    return Round(clients, requests, wall, [a[0] * 1000 for a in answers], statuses, problems)


def baseline_round(url: str, requests: int, engine: Any) -> float:
    """The plain single-connection SQL loop: the same allocation transaction ``requests`` times on a
    prefix of the same shape (409s included: a full prefix is discovered, then nothing inserted).
    Returns allocations answered per second."""
    pid, cidr, _free = make_prefix(engine, int(requests * SERVED_SHARE))
    net = ipaddress.ip_network(cidr)
    hosts = [str(h) for h in net.hosts()]
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        conn: Any = sqlite3.connect(str(parsed.database), isolation_level=None, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
        ph = "?"
    else:
        import psycopg

        conn = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False),
                               autocommit=True)
        ph = "%s"
    served = 0
    t0 = time.perf_counter()
    try:
        for i in range(requests):
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if sqlite else "BEGIN")
            lock = "" if sqlite else " FOR UPDATE"
            cur.execute(f"SELECT prefix FROM prefix WHERE id = {ph}{lock}", (pid,))
            cur.fetchone()
            cur.execute(f"SELECT address FROM ip_address WHERE prefix_id = {ph}", (pid,))
            used = {r[0] for r in cur.fetchall()}
            candidate = next((h for h in hosts if h not in used), None)
            if candidate is not None:
                now = dt.datetime.now(dt.UTC)
                cur.execute(f"INSERT INTO ip_address (address, prefix_id, prefix_length, status, dns_name, "
                            f"description, created_at, updated_at) VALUES ({', '.join([ph] * 8)})",
                            (candidate, pid, net.prefixlen, "active", "", f"c{i}", now, now))
                served += 1
            cur.execute("COMMIT")
            cur.close()
    finally:
        conn.close()
    wall = time.perf_counter() - t0
    if served != int(requests * SERVED_SHARE):
        raise SystemExit(f"baseline allocated {served}, expected {int(requests * SERVED_SHARE)}")
    return requests / wall


# --------------------------------------------------------------------------- a backend


@dataclass
class BackendRun:
    name: str
    rounds: dict[int, list[Round]] = field(default_factory=dict)
    baseline: dict[int, list[float]] = field(default_factory=dict)
    error: str = ""


def run_backend(run: BackendRun, url: str, work: Path, levels: list[int], n_rounds: int, smoke: bool) -> None:
    upgrade(url)
    engine = make_engine(url)
    server = Server(url, work / f"data-{run.name}")
    try:
        token = make_token(engine)
        server.wait_ready()
        print(f"[{run.name}] server: infra-mgr serve on {server.base} (pid {server.proc.pid})")
        for clients in levels:
            requests = SMOKE_REQUESTS if smoke else REQUESTS[clients]
            for r in range(n_rounds):
                rd = measure_round(server.base, token, engine, clients, requests)
                base_rate = baseline_round(url, requests, engine)
                run.rounds.setdefault(clients, []).append(rd)
                run.baseline.setdefault(clients, []).append(base_rate)
                print(f"[{run.name}] {clients:>3} clients round {r + 1}: {requests} requests in {rd.wall_s:.2f} s, "
                      f"{rd.throughput:.0f} req/s, p50 {statistics.median(rd.latencies_ms):.0f} ms, "
                      f"p95 {percentile(rd.latencies_ms, 95):.0f} ms, max {max(rd.latencies_ms):.0f} ms, "
                      f"statuses {dict(sorted(rd.statuses.items()))}; SQL loop {base_rate:.0f} alloc/s")
                for p in rd.problems:
                    print(f"[{run.name}]   PROBLEM: {p}")
    finally:
        server.stop()
        engine.dispose()


def run_sqlite(work: Path, levels: list[int], n_rounds: int, smoke: bool) -> BackendRun:
    run = BackendRun("sqlite")
    run_backend(run, f"sqlite:///{work / 'bench.db'}", work, levels, n_rounds, smoke)
    return run


def run_postgres(work: Path, levels: list[int], n_rounds: int, smoke: bool) -> BackendRun:
    run = BackendRun("postgres")
    try:
        with private_postgres(work) as url:
            run_backend(run, url, work, levels, n_rounds, smoke)
    except PostgresUnavailable as exc:
        run.error = str(exc)
    return run


# --------------------------------------------------------------------------- report


def result_lines(runs: list[BackendRun], levels: list[int]) -> list[str]:
    lines = []
    for run in runs:
        if run.error:
            lines.append(f"RESULT alloc_5xx_{run.name}: not measured ({run.error}); baseline {NO_BASELINE}; "
                         f"goal 0 at {','.join(map(str, levels))} clients: FAIL")
            continue
        all_rounds = [rd for rds in run.rounds.values() for rd in rds]
        fivexx = sum(rd.fivexx for rd in all_rounds)
        lines.append(f"RESULT alloc_5xx_{run.name}: {fivexx} responses of {sum(rd.requests for rd in all_rounds)}; "
                     f"baseline {NO_BASELINE}; goal 0 at {','.join(map(str, levels))} clients: "
                     f"{'PASS' if fivexx == 0 else 'FAIL'}")
        one = statistics.median(rd.throughput for rd in run.rounds[levels[0]])
        for clients in levels:
            rds = run.rounds[clients]
            tput = statistics.median(rd.throughput for rd in rds)
            p95 = statistics.median(percentile(rd.latencies_ms, 95) for rd in rds)
            base = statistics.median(run.baseline[clients])
            floor = 0.5 * one
            lines.append(f"RESULT alloc_throughput_{run.name}_c{clients}: {tput:.0f} req/s; "
                         f"baseline sql-loop-1conn {base:.0f} req/s; ratio {tput / base:.2f}; "
                         f"goal >= half our {levels[0]}-client rate ({floor:.0f} req/s): "
                         f"{'PASS' if tput >= floor else 'FAIL'}")
            lines.append(f"RESULT alloc_p95_{run.name}_c{clients}: {p95:.0f} ms; baseline {NO_BASELINE}; "
                         f"goal < {P95_GOAL_MS:.0f} ms (the pool's checkout wait): "
                         f"{'PASS' if p95 < P95_GOAL_MS else 'FAIL'}")
    return lines


def report(runs: list[BackendRun], levels: list[int]) -> None:
    print("\nmedian over rounds (throughput = answered requests / round wall; SQL loop = one connection)")
    print(f"{'db':<9}{'clients':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'5xx':>6}{'409':>6}"
          f"{'SQL loop/s':>12}")
    for run in runs:
        if run.error:
            print(f"{run.name:<9} not measured: {run.error}")
            continue
        for clients in levels:
            rds = run.rounds[clients]
            print(f"{run.name:<9}{clients:>8}{statistics.median(rd.throughput for rd in rds):>9.0f}"
                  f"{statistics.median(statistics.median(rd.latencies_ms) for rd in rds):>9.0f}"
                  f"{statistics.median(percentile(rd.latencies_ms, 95) for rd in rds):>9.0f}"
                  f"{max(max(rd.latencies_ms) for rd in rds):>9.0f}"
                  f"{sum(rd.fivexx for rd in rds):>6}{sum(rd.statuses.get(409, 0) for rd in rds):>6}"
                  f"{statistics.median(run.baseline[clients]):>12.0f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--levels", default=",".join(map(str, LEVELS)))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, 1 round at 1 and 10 clients; measures nothing")
    args = ap.parse_args(argv)
    levels = [1, 10] if args.smoke else [int(x) for x in args.levels.split(",")]
    if not args.smoke and any(lv not in REQUESTS for lv in levels):
        ap.error(f"--levels must be among {sorted(REQUESTS)}")
    n_rounds = 1 if args.smoke else args.rounds
    backends = args.backends.split(",")
    with record("api_concurrency", smoke=args.smoke):
        print(f"levels {levels}, rounds {n_rounds}, {SERVED_SHARE:.0%} of each round's requests can be served")
        runs: list[BackendRun] = []
        problems: list[str] = []
        with tempfile.TemporaryDirectory(prefix="api_concurrency-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)  # the PostgreSQL server user must reach its data directory
            if "sqlite" in backends:
                runs.append(run_sqlite(work, levels, n_rounds, args.smoke))
            if "postgres" in backends:
                runs.append(run_postgres(work, levels, n_rounds, args.smoke))
        for run in runs:
            problems += [p for rds in run.rounds.values() for rd in rds for p in rd.problems
                         if not p.startswith("the 201s")]
        report(runs, levels)
        print()
        for line in result_lines(runs, levels):
            print(line)
        broken = [p for p in problems if "DUPLICATE" in p or p.startswith("unexpected")]
        pg_missing = any(r.error for r in runs) and os.environ.get("CI", "").lower() == "true"
        if broken or pg_missing:
            print("bench broken: " + "; ".join(broken or ["PostgreSQL unavailable under CI"]), file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
