"""Next-free IP allocation stays collision-free under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.permissions import Role
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.ipam import allocate_next
from infra_mgr.inventory.models import AllocateRequest


def _prefix(admin: TestClient, prefix: str) -> int:
    resp = admin.post("/api/v1/prefixes", json={"prefix": prefix, "role": "servers"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_fifty_concurrent_allocations_never_collide(admin: TestClient, engine: Engine) -> None:
    pid = _prefix(admin, "10.1.0.0/24")
    admin.post("/api/v1/ip-addresses", json={"address": "10.1.0.1", "description": "gateway"})

    def one(i: int) -> str:
        ip = allocate_next(engine, pid, AllocateRequest(description=f"vm{i}"))
        return ip.address

    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(one, range(50)))
    assert len(set(got)) == 50
    assert "10.1.0.1" not in got
    assert sorted(got, key=ipaddress.ip_address) == [f"10.1.0.{i}" for i in range(2, 52)]
    listed = admin.get(f"/api/v1/ip-addresses?prefix_id={pid}&limit=1000").json()["results"]
    assert len(listed) == 51


def test_allocation_through_the_api_and_exhaustion(admin: TestClient) -> None:
    pid = _prefix(admin, "10.2.0.0/30")
    first = admin.post(f"/api/v1/prefixes/{pid}/allocate", json={"dns_name": "a.jeddah.local"})
    assert first.status_code == 201 and first.json()["address"] == "10.2.0.1"
    assert first.json()["prefix_length"] == 30
    second = admin.post(f"/api/v1/prefixes/{pid}/allocate", json={})
    assert second.json()["address"] == "10.2.0.2"
    full = admin.post(f"/api/v1/prefixes/{pid}/allocate", json={})
    assert full.status_code == 409 and "no free address" in full.json()["detail"]
    assert admin.post("/api/v1/prefixes/999999/allocate", json={}).status_code == 404


def test_manual_address_is_placed_in_its_most_specific_prefix(admin: TestClient) -> None:
    _prefix(admin, "10.3.0.0/16")
    small = _prefix(admin, "10.3.4.0/24")
    ip = admin.post("/api/v1/ip-addresses", json={"address": "10.3.4.9"}).json()
    assert ip["prefix_id"] == small and ip["prefix_length"] == 24
    dup = admin.post("/api/v1/ip-addresses", json={"address": "10.3.4.9"})
    assert dup.status_code == 409 and dup.json()["errors"][0]["loc"][-1] == "address"
    bad = admin.post("/api/v1/prefixes", json={"prefix": "10.3.4.1/24"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "prefix"


# --------------------------------------------------------------------------- a real server under load

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    token: str
    engine: Engine

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=120)


@pytest.fixture
def served(engine: Engine, token_for: Callable[[str], str], tmp_path: Path) -> Iterator[Served]:
    """``infra-mgr serve`` (uvicorn, as deployed) on a loopback port over the parametrised database:
    the pool, the thread pool and the locks are the real ones, which an in-process client hides."""
    port = _free_port()
    env = dict(os.environ, INFRA_MGR_DATABASE_URL=engine.url.render_as_string(hide_password=False),
               INFRA_MGR_DATA_DIR=str(tmp_path / "data"), INFRA_MGR_SECRET_KEY="test-master-secret-0123456789",
               INFRA_MGR_POWER_POLLER="false", INFRA_MGR_LOG_LEVEL="warning")
    env.pop("INFRA_MGR_CONFIG", None)
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "infra_mgr", "serve", "--host", "127.0.0.1", "--port",
                             str(port), "--no-access-log"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        yield Served(base, token_for("admin"), engine)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _parallel_allocations(srv: Served, pid: int, n: int) -> list[httpx.Response]:
    """``n`` clients, each on its own connection, released together and allocating once."""
    start = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with srv.client() as c:
            # No warm-up request: a connection left idle past uvicorn's keep-alive while the other
            # clients start would be closed under this request.
            start.wait()
            return c.post(f"/api/v1/prefixes/{pid}/allocate", json={"description": f"vm{i}"})

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(one, range(n)))


@pytest.mark.parametrize(("n", "prefix"), [(50, "10.50.0.0/27"), (200, "10.51.0.0/25")])
def test_parallel_allocations_are_201_or_clean_409_over_http(served: Served, n: int, prefix: str) -> None:
    with served.client() as c:
        resp = c.post("/api/v1/prefixes", json={"prefix": prefix, "role": "servers"})
        assert resp.status_code == 201, resp.text
        pid = int(resp.json()["id"])
    got = _parallel_allocations(served, pid, n)
    statuses = Counter(r.status_code for r in got)
    hosts = ipaddress.ip_network(prefix).num_addresses - 2
    assert statuses == {201: hosts, 409: n - hosts}, (statuses, [r.text for r in got if r.status_code >= 500][:3])
    addresses = [r.json()["address"] for r in got if r.status_code == 201]
    assert len(set(addresses)) == hosts
    assert all(ipaddress.ip_address(a) in ipaddress.ip_network(prefix) for a in addresses)
    for r in got:
        if r.status_code == 409:
            assert r.headers["content-type"].startswith("application/json")
            assert "no free address" in r.json()["detail"]
    with served.client() as c:
        listed = c.get(f"/api/v1/ip-addresses?prefix_id={pid}&limit=1000").json()["results"]
    assert sorted(x["address"] for x in listed) == sorted(addresses)


def test_pool_exhaustion_is_503_with_retry_after(db_url: str, tmp_path: Path) -> None:
    """A request that cannot get a connection in time is told to come back, quickly, not a 500."""
    upgrade(db_url)
    eng = make_engine(db_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        with Session(eng) as session:
            user = create_user(session, UserCreate(username="pool_admin", password="correct horse battery",
                                                   role=Role.admin))
            _, token = create_token(session, user, "tests")
            session.commit()
        app = create_app(Settings(data_dir=tmp_path / "data", database_url=db_url,
                                  secret_key="test-master-secret-0123456789", power_poller=False), eng)
        client = TestClient(app, raise_server_exceptions=False)
        client.headers["Authorization"] = f"Bearer {token}"
        with eng.connect() as held:  # the pool's only connection is taken
            held.execute(text("select 1"))
            for method, url, body in (("GET", "/api/v1/prefixes", None),
                                      ("POST", "/api/v1/prefixes", {"prefix": "10.9.0.0/24"}),
                                      ("POST", "/api/v1/prefixes/1/allocate", {})):
                resp = client.request(method, url, json=body)
                assert resp.status_code == 503, (method, url, resp.status_code, resp.text)
                assert int(resp.headers["retry-after"]) >= 1
                assert resp.json()["detail"]
        assert client.get("/api/v1/prefixes").status_code == 200
    finally:
        eng.dispose()
