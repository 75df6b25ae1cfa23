"""Next-free IP allocation stays collision-free under concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import Engine

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
    assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "address"
    bad = admin.post("/api/v1/prefixes", json={"prefix": "10.3.4.1/24"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "prefix"
