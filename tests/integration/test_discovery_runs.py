"""A discovery of the lab city that cannot read some devices: the run is recorded with its
failures, each failing device is a device with its state and reason on every read view, its fall
is an event (and an alert), and its recovery clears all of that.

The city's ``jed-b23-sw`` has no agent (unreachable) and ``jed-b34-rtr`` answers only a community
discovery is not given (no working credential); see infra_mgr/lab/city_model.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.events import views as event_views
from infra_mgr.events.models import Event
from infra_mgr.inventory.credentials import CredentialCreate, build
from infra_mgr.inventory.models import CredentialKind, Device, Site
from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.city_model import WRONG_COMMUNITY
from infra_mgr.network import views
from infra_mgr.network.discovery import discover
from infra_mgr.network.models import DevicePoll, DiscoveryRun

MASTER = b"discovery-runs-test-key"


@pytest.fixture(scope="module")
def city_db(city: RunningCity, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return city_database(f"sqlite:///{tmp_path_factory.mktemp('runs-db') / 'city.db'}", MASTER, city)


@pytest.fixture(scope="module")
def first(city_db: Engine) -> dict[str, Any]:
    report = asyncio.run(discover(city_db, MASTER, all_sites=True, timeout_s=2.0, retries=1, actor="tester",
                                  trigger="cli"))
    return report.to_json()


def _hosts(city: RunningCity) -> tuple[str, str]:
    return city.with_fault("unreachable")["hostname"], city.with_fault("wrong_community")["hostname"]


def _device(engine: Engine, hostname: str) -> tuple[Device, DevicePoll, str]:
    with Session(engine) as s:
        dev = s.exec(select(Device).where(Device.hostname == hostname)).one()
        poll = s.get(DevicePoll, dev.id)
        site = s.get(Site, dev.site_id)
        assert poll is not None and site is not None
        return dev, poll, site.code


def test_the_run_is_recorded_with_its_failures(city_db: Engine, city: RunningCity, first: dict[str, Any]) -> None:
    dead, locked = _hosts(city)
    with Session(city_db) as s:
        runs = s.exec(select(DiscoveryRun)).all()
    assert len(runs) == 1 and runs[0].id == first["run_id"]
    with Session(city_db) as s:
        run = views.discovery_run(s, first["run_id"])
    assert run is not None
    assert run.status == "ok" and run.trigger == "cli" and run.actor == "tester" and run.scope == "all sites"
    assert run.finished_at is not None and run.duration_s is not None and run.duration_s > 0
    assert run.found == first["found"] > 120 and run.new == run.found and run.links == first["links"] > 0
    reasons = {f.hostname: f.reason for f in run.failures}
    assert reasons[dead] == "unreachable" and reasons[locked] == "auth"
    # the SSH-only switches, named by their branch switch's LLDP: silent without an SSH credential
    ssh_only = {d["hostname"] for d in city.expected["ssh_only"]["devices"]}
    assert ssh_only and all(reasons.get(h) == "unreachable" for h in ssh_only), reasons
    broken = city.with_fault("broken_walks")["hostname"]
    assert reasons.get(broken) == "garbage", reasons
    assert all(f.device_id for f in run.failures if f.hostname in (dead, locked))
    text = "\n".join(views.run_summary(run))
    assert f"{dead} " in text and "unreachable" in text and f"{locked} " in text


def test_failing_devices_have_state_reason_and_events(city_db: Engine, city: RunningCity,
                                                      first: dict[str, Any]) -> None:
    dead, locked = _hosts(city)
    for host, status, reason, kind in ((dead, "timeout", "poll_timeout", "device.unreachable"),
                                       (locked, "auth", "poll_auth", "device.auth_failed")):
        dev, poll, code = _device(city_db, host)
        assert code == city.device(host)["site"], "placed in its own site"
        assert poll.status == status and poll.since is not None and poll.last_ok is None
        assert poll.address == city.device(host)["address"] and poll.message
        with Session(city_db) as s:
            site = views.sites_health(s, [dev.site_id])[0]
            detail = views.device_detail(s, dev.id or 0)
            topo = {d.hostname: d for d in views.topology(s).devices}
            events = s.exec(select(Event).where(Event.device_id == dev.id, Event.kind == kind)).all()
            alerts = event_views.alerts(s, 1, 500).rows
        assert site.state == "down" and [(p.hostname, p.reason) for p in site.problems] == [(host, reason)]
        assert detail is not None and (detail.state, detail.reason) == ("down", reason)
        assert (topo[host].state, topo[host].reason) == ("down", reason) and topo[host].detail
        assert len(events) == 1 and events[0].severity == "critical"
        assert any(a.hostname == host and a.kind == kind for a in alerts)


def test_a_second_run_does_not_repeat_the_events(city_db: Engine, city: RunningCity, first: dict[str, Any]) -> None:
    dead, _ = _hosts(city)
    _, before, _ = _device(city_db, dead)
    report = asyncio.run(discover(city_db, MASTER, all_sites=True, timeout_s=2.0, retries=1)).to_json()
    _, after, _ = _device(city_db, dead)
    assert dead in {f["hostname"] for f in report["failures"]} and dead not in report["missing"]
    assert after.since == before.since and after.last_polled and before.last_polled \
        and after.last_polled > before.last_polled
    silent = 1 + len(city.expected["ssh_only"]["devices"])  # the dead switch and the SSH-only ones
    with Session(city_db) as s:
        assert len(s.exec(select(Event).where(Event.kind == "device.unreachable")).all()) == silent


def test_recovery_clears_the_state_and_is_an_event(city_db: Engine, city: RunningCity, first: dict[str, Any]) -> None:
    _, locked = _hosts(city)
    with Session(city_db) as s:
        s.add(build(MASTER, CredentialCreate(name="b34-community", kind=CredentialKind.snmp_v2c,
                                             community=WRONG_COMMUNITY, port=city.port, priority=30)))
        s.commit()
    report = asyncio.run(discover(city_db, MASTER, seeds=[city.device(locked)["address"]], follow=False,
                                  timeout_s=2.0, retries=1)).to_json()
    assert report["failures"] == [] and report["found"] == 1
    dev, poll, _ = _device(city_db, locked)
    assert poll.status == "ok" and poll.last_ok is not None and poll.since == poll.last_ok
    with Session(city_db) as s:
        recovered = s.exec(select(Event).where(Event.device_id == dev.id, Event.kind == "device.recovered")).all()
        state = views.device_detail(s, dev.id or 0)
        site = views.sites_health(s, [dev.site_id])[0]
        runs = views.discovery_runs(s)
    assert len(recovered) == 1
    assert state is not None and state.state != "down"
    assert locked not in {p.hostname for p in site.problems}
    assert runs[0].id == report["run_id"] and runs[0].failures == [] and runs[0].scope == "seeds"


def test_runs_through_the_api(city_db: Engine, city: RunningCity, first: dict[str, Any], tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=str(city_db.url),
                        secret_key="test-master-secret-0123456789")
    with Session(city_db) as s:
        user = create_user(s, UserCreate(username="reader", password="correct horse battery", role="viewer"))
        _, token = create_token(s, user, "tests")
        s.commit()
    client = TestClient(create_app(settings, city_db))
    client.headers["Authorization"] = f"Bearer {token}"
    page = client.get("/api/v1/discovery/runs", params={"limit": 1})
    assert page.status_code == 200, page.text
    body = page.json()
    with Session(city_db) as s:
        newest = s.exec(select(DiscoveryRun).order_by(col(DiscoveryRun.id).desc())).first()
    assert newest is not None and [r["id"] for r in body["results"]] == [newest.id]
    assert body["next"], "more runs than one: a next page"
    older = client.get("/api/v1/discovery/runs", params={"limit": 100, "cursor": body["next"]}).json()["results"]
    assert first["run_id"] in [r["id"] for r in older] and all(r["id"] < newest.id for r in older)
    one = client.get(f"/api/v1/discovery/runs/{first['run_id']}").json()
    dead, locked = _hosts(city)
    assert {(f["hostname"], f["reason"]) for f in one["failures"]} >= {(dead, "unreachable"), (locked, "auth")}
    assert client.get("/api/v1/discovery/runs/999999").status_code == 404
    anon = TestClient(create_app(settings, city_db))
    assert anon.get("/api/v1/discovery/runs").status_code == 401
