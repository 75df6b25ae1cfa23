"""The network read views over the REST API, on SQLite and a real PostgreSQL: the topology, each
site's health and one device's detail, served to every role, and equal to what the dashboard
shows for the same data."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.permissions import Role
from infra_mgr.auth.service import create_user
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface, Link, Site
from infra_mgr.network.models import DevicePoll, Neighbor

PASSWORD = "integration-password-7"


def _seed(engine: Engine) -> dict[str, int]:
    """HQ ok; B07 degraded (its uplink is down); B12 down (a device times out); DC1 never polled."""
    with Session(engine) as s:
        hq = Site(code="JED-HQ", name_en="Headquarters", name_ar="المقر الرئيسي", kind="hq")
        b07 = Site(code="JED-B07", name_en="Al-Balad branch", name_ar="فرع البلد", kind="branch")
        b12 = Site(code="JED-B12", name_en="Al-Rawdah branch", kind="branch")
        dc = Site(code="JED-DC1", name_en="Data center", kind="datacenter")
        s.add_all([hq, b07, b12, dc])
        s.flush()

        def dev(site: Site, name: str, poll: str | None = "ok", status: str = "active") -> Device:
            d = Device(site_id=site.id or 0, hostname=name, status=status)
            s.add(d)
            s.flush()
            if poll is not None:
                s.add(DevicePoll(device_id=d.id or 0, status=poll))
            return d

        def iface(d: Device, name: str, oper: str = "up") -> Interface:
            i = Interface(device_id=d.id or 0, name=name, oper_status=oper)
            s.add(i)
            s.flush()
            return i

        core, sw07, rtr12 = dev(hq, "jed-hq-core01"), dev(b07, "jed-b07-sw01"), dev(b12, "jed-b12-rtr01", "timeout")
        dev(dc, "jed-dc1-stor01", None)
        dev(dc, "jed-dc1-new01", None, status="planned")
        c1, c2 = iface(core, "xe-0/0/1"), iface(core, "xe-0/0/2")
        up07, r12 = iface(sw07, "Gi1/0/24", "down"), iface(rtr12, "Gi0/0")
        iface(sw07, "Gi1/0/3")
        for x, y, src in ((c1, up07, "lldp"), (c2, r12, "cdp")):
            a, b = sorted((x.id or 0, y.id or 0))
            s.add(Link(a_interface_id=a, b_interface_id=b, source=src))
        s.add(Neighbor(device_id=sw07.id or 0, protocol="lldp", local_interface="Gi1/0/24",
                       remote_system_name="jed-hq-core01", remote_port="xe-0/0/1", remote_device_id=core.id))
        s.add(Event(kind="interface.down", severity="warning", message="uplink down", device_id=sw07.id))
        create_user(s, UserCreate(username="pageviewer", password=PASSWORD, role=Role.viewer))
        ids = {"core": core.id or 0, "sw07": sw07.id or 0, "b07": b07.id or 0}
        s.commit()
    return ids


def _dashboard(app: FastAPI) -> TestClient:
    """A browser-like client logged in to the dashboard with a password (a session, not a token)."""
    c = TestClient(app)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
    assert token
    resp = c.post("/login", data={"username": "pageviewer", "password": PASSWORD, "csrf": token.group(1)},
                  follow_redirects=False)
    assert resp.status_code == 303
    return c


def test_topology(admin: TestClient, engine: Engine) -> None:
    ids = _seed(engine)
    resp = admin.get("/api/v1/network/topology")
    assert resp.status_code == 200, resp.text
    topo = resp.json()
    assert topo["counts"] == {"sites": 4, "devices": 5, "links": 2} and topo["truncated"] is False
    assert {s["code"]: s["state"] for s in topo["sites"]} == {
        "JED-HQ": "ok", "JED-B07": "degraded", "JED-B12": "down", "JED-DC1": "never"}
    devices = {d["hostname"]: (d["state"], d["reason"]) for d in topo["devices"]}
    assert devices["jed-b07-sw01"] == ("degraded", "link_down")
    assert devices["jed-b12-rtr01"] == ("down", "poll_timeout")
    links = {lk["source"]: lk for lk in topo["links"]}
    assert links["lldp"]["state"] == "down" and links["cdp"]["state"] == "unknown"
    assert {links["lldp"]["a_device_id"], links["lldp"]["b_device_id"]} == {ids["core"], ids["sw07"]}


def test_sites_health(admin: TestClient, engine: Engine) -> None:
    _seed(engine)
    resp = admin.get("/api/v1/network/sites/health")
    assert resp.status_code == 200, resp.text
    health = {h["code"]: h for h in resp.json()}
    assert [h["code"] for h in resp.json()] == ["JED-B07", "JED-B12", "JED-DC1", "JED-HQ"]
    assert (health["JED-DC1"]["state"], health["JED-DC1"]["devices"], health["JED-DC1"]["states"]) == (
        "never", 2, {"never": 2})
    assert health["JED-B12"]["states"] == {"down": 1} and health["JED-B12"]["state"] == "down"
    assert health["JED-HQ"]["central"] and not health["JED-B07"]["central"]
    assert health["JED-B07"]["name_ar"] == "فرع البلد"


def test_device_detail(admin: TestClient, engine: Engine) -> None:
    ids = _seed(engine)
    resp = admin.get(f"/api/v1/network/devices/{ids['sw07']}")
    assert resp.status_code == 200, resp.text
    d = resp.json()
    assert d["device"]["hostname"] == "jed-b07-sw01" and d["site"]["code"] == "JED-B07"
    assert (d["state"], d["reason"]) == ("degraded", "link_down") and d["poll"]["status"] == "ok"
    assert [i["name"] for i in d["interfaces"]] == ["Gi1/0/3", "Gi1/0/24"] and d["interface_total"] == 2
    assert d["interfaces"][1]["peers"] == [
        {"device_id": ids["core"], "hostname": "jed-hq-core01", "interface": "xe-0/0/1", "source": "lldp"}]
    assert d["neighbors"][0]["remote_hostname"] == "jed-hq-core01"
    assert [(e["kind"], e["site_code"]) for e in d["events"]] == [("interface.down", "JED-B07")]
    missing = admin.get("/api/v1/network/devices/999999")
    assert missing.status_code == 404 and "999999" in missing.json()["detail"]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_reads_and_nobody_anonymous(client_for: Callable[[str], TestClient], app: FastAPI,
                                               engine: Engine, role: str) -> None:
    ids = _seed(engine)
    paths = ("/api/v1/network/topology", "/api/v1/network/sites/health", f"/api/v1/network/devices/{ids['sw07']}")
    client = client_for(role)
    for path in paths:
        assert client.get(path).status_code == 200, (role, path)
    anonymous = TestClient(app, raise_server_exceptions=False)
    for path in paths:
        assert anonymous.get(path).status_code == 401, path


def _by_code(sites: list[dict[str, Any]]) -> dict[str, Any]:
    return {s["code"]: s for s in sites}


def test_api_equals_what_the_dashboard_shows(admin: TestClient, app: FastAPI, engine: Engine) -> None:
    ids = _seed(engine)
    page = _dashboard(app)
    api_topo = admin.get("/api/v1/network/topology").json()
    assert page.get("/network/topology.json").json() == api_topo
    health = admin.get("/api/v1/network/sites/health").json()
    assert health == api_topo["sites"]
    # The sites page's health column and the device page's state badge say the same.
    sites_html = page.get("/sites?lang=en").text
    for code, site in _by_code(health).items():
        row = sites_html[sites_html.index(f'href="/sites/{code}"'):]
        assert f'data-state="{site["state"]}"' in row[:row.index("</tr>")], code
    detail = admin.get(f"/api/v1/network/devices/{ids['sw07']}").json()
    device_html = page.get(f"/devices/{ids['sw07']}?lang=en").text
    assert f'id="device-state" data-state="{detail["state"]}"' in device_html
    for iface in detail["interfaces"]:
        assert f'data-interface="{iface["name"]}" data-oper="{iface["oper_status"]}"' in device_html
