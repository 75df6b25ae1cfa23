"""The network read views, and the network page, topology JSON and device page built on them,
without a browser.

The colours of the city map are a contract (green, amber, red, grey each mean one thing), so the
rules are pinned here on a small seeded estate: in the views themselves, and through the JSON the
page's script reads (which is the API's topology); the browser test only has to prove that what
the JSON says is what gets drawn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events.models import Event
from infra_mgr.inventory import views as inventory_views
from infra_mgr.inventory.models import Device, Interface, Link, Site
from infra_mgr.network import views
from infra_mgr.network.models import DevicePoll, Neighbor
from infra_mgr.web import format as fmt

PASSWORD = "unit-test-password-2"
ALIAS_AR = "وصلة إلى المقر الرئيسي"
LOCATION_AR = "جدة، حي البلد، الطابق الأول"
JUNOS_DESCR = ("Juniper Networks, Inc. ex4650-48y-8c Ethernet Switch, kernel JUNOS 21.4R3-S4.9,\n"
               "Build date: 2023-05-10 08:11:42 UTC Copyright (c) 1996-2023 Juniper Networks, Inc.")


def _link(s: Session, x: Interface, y: Interface, source: str = "lldp") -> None:
    a, b = sorted((x.id or 0, y.id or 0))
    s.add(Link(a_interface_id=a, b_interface_id=b, source=source))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """HQ green, B07 amber (its uplink is down), B12 red (one device missing, one timing out),
    DC1 grey (its only device was never polled), B99 planned-only (grey, planned does not count)."""
    tmp = tmp_path_factory.mktemp("webnet")
    url = f"sqlite:///{tmp / 'net.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        create_user(s, UserCreate(username="viewer2", password=PASSWORD, role="viewer"))
        hq = Site(code="JED-HQ", name_en="Headquarters", name_ar="المقر الرئيسي", kind="hq")
        b07 = Site(code="JED-B07", name_en="Al-Balad branch", name_ar="فرع البلد", kind="branch")
        b12 = Site(code="JED-B12", name_en="Al-Rawdah branch", name_ar="فرع الروضة", kind="branch")
        dc = Site(code="JED-DC1", name_en="Data center", kind="datacenter")
        s.add_all([hq, b07, b12, dc])
        s.flush()

        def dev(site: Site, name: str, status: str = "active", poll: str | None = "ok", **kw: str) -> Device:
            d = Device(site_id=site.id or 0, hostname=name, status=status, **kw)
            s.add(d)
            s.flush()
            if poll is not None:
                s.add(DevicePoll(device_id=d.id or 0, status=poll))
            return d

        core = dev(hq, "jed-hq-core01", vendor="Juniper", model="EX4650")
        dist = dev(hq, "jed-hq-dist01")
        sw07 = dev(b07, "jed-b07-sw01", vendor="Cisco", model="C9200L-24P", management_address="10.64.7.2")
        sw12 = dev(b12, "jed-b12-sw01", status="missing")
        rtr12 = dev(b12, "jed-b12-rtr01", poll="timeout")
        dev(dc, "jed-dc1-stor01", poll=None)
        dev(dc, "jed-dc1-new01", status="planned", poll=None)
        s.flush()
        poll07 = s.get(DevicePoll, sw07.id)
        assert poll07 is not None
        poll07.location, poll07.chassis_id = LOCATION_AR, "00:11:22:33:44:07"

        def iface(d: Device, name: str, oper: str = "up", **kw: object) -> Interface:
            i = Interface(device_id=d.id or 0, name=name, oper_status=oper, **kw)  # type: ignore[arg-type]
            s.add(i)
            s.flush()
            return i

        c1, c2, c3 = iface(core, "xe-0/0/1"), iface(core, "xe-0/0/2"), iface(core, "xe-0/0/3")
        d1, d2 = iface(dist, "Gi1/0/1"), iface(dist, "Gi1/0/2")
        up07 = iface(sw07, "Gi1/0/24", "down", alias=ALIAS_AR, speed_bps=1_000_000_000, mac="00:11:22:33:44:24")
        iface(sw07, "Gi1/0/10", speed_bps=2_048_000)
        iface(sw07, "Gi1/0/2", "down", admin_status="down", speed_bps=100_000_000)
        u12, r12 = iface(sw12, "Gi1/0/24"), iface(rtr12, "Gi0/0")
        _link(s, c1, d1)
        _link(s, c2, up07)
        _link(s, c3, r12, "cdp")
        _link(s, d2, u12)
        s.add(Neighbor(device_id=sw07.id or 0, protocol="lldp", local_interface="Gi1/0/24",
                       remote_system_name="jed-hq-core01", remote_port="xe-0/0/2", remote_address="10.64.0.1",
                       remote_platform="Juniper EX4650", remote_device_id=core.id))
        s.add(Neighbor(device_id=sw07.id or 0, protocol="cdp", local_interface="Gi1/0/10",
                       remote_system_name="SEP001122334455", remote_port="Port 1", remote_platform="Cisco IP Phone"))
        # A Junos neighbour seen from the distribution switch: its port id is the core's ifIndex
        # (LLDP subtype local) and its platform a whole multi-line sysDescr.
        iface(core, "ge-0/0/5", if_index=574)
        s.add(Neighbor(device_id=dist.id or 0, protocol="lldp", local_interface="Gi1/0/2",
                       remote_system_name="jed-hq-core01", remote_port="574", remote_platform=JUNOS_DESCR,
                       remote_device_id=core.id))
        s.add(Neighbor(device_id=dist.id or 0, protocol="lldp", local_interface="Gi1/0/1",
                       remote_system_name="elsewhere", remote_port="575", remote_platform="Linux 6.1"))
        s.add(Event(kind="interface.down", severity="warning", message="jed-b07-sw01 Gi1/0/24 up → down",
                    device_id=sw07.id, site_id=b07.id))
        ids = {"sw07": sw07.id, "core": core.id, "dist": dist.id}
        s.commit()
    application = create_app(Settings(data_dir=tmp, database_url=url), engine=engine)
    application.state.ids = ids
    yield application
    engine.dispose()


def _login(client: TestClient) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    resp = client.post("/login", data={"username": "viewer2", "password": PASSWORD, "csrf": token.group(1)},
                       follow_redirects=False)
    assert resp.status_code == 303


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        _login(c)
        yield c


def test_topology_json_needs_a_session(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        resp = anonymous.get("/network/topology.json")
    assert resp.status_code == 401
    assert resp.json() == {"detail": "login required"}


def _topology_checks(data: dict[str, Any]) -> None:
    """The states of the seeded estate, whoever reads them (the view, the page's JSON, the API)."""
    sites = {s["code"]: s for s in data["sites"]}
    devices = {d["hostname"]: d for d in data["devices"]}
    assert {code: s["state"] for code, s in sites.items()} == {
        "JED-HQ": "ok", "JED-B07": "degraded", "JED-B12": "down", "JED-DC1": "never"}
    assert {name: (d["state"], d["reason"]) for name, d in devices.items()} == {
        "jed-hq-core01": ("ok", "ok"), "jed-hq-dist01": ("ok", "ok"),
        "jed-b07-sw01": ("degraded", "link_down"),
        "jed-b12-sw01": ("down", "missing"), "jed-b12-rtr01": ("down", "poll_timeout"),
        "jed-dc1-stor01": ("never", "never_polled"), "jed-dc1-new01": ("never", "never_polled"),
    }
    assert sites["JED-HQ"]["central"] and sites["JED-DC1"]["central"] and not sites["JED-B07"]["central"]
    assert sites["JED-B12"]["states"] == {"down": 2} and sites["JED-B12"]["devices"] == 2
    assert sites["JED-DC1"]["states"] == {"never": 2}  # the planned device is shown (it does not count for the state)
    sw07 = devices["jed-b07-sw01"]
    assert sw07["site_id"] == sites["JED-B07"]["id"]

    links = {(lk["a_interface"], lk["b_interface"]): lk for lk in data["links"]}
    assert len(links) == 4
    assert data["counts"] == {"sites": 4, "devices": 7, "links": 4} and data["truncated"] is False
    uplink = links[("xe-0/0/2", "Gi1/0/24")]
    assert uplink["state"] == "down" and uplink["source"] == "lldp"
    assert {uplink["a_device_id"], uplink["b_device_id"]} == {sw07["id"], devices["jed-hq-core01"]["id"]}
    assert links[("xe-0/0/1", "Gi1/0/1")]["state"] == "up"
    assert links[("xe-0/0/3", "Gi0/0")]["state"] == "unknown"  # the far end is unreachable: stale
    assert links[("xe-0/0/3", "Gi0/0")]["source"] == "cdp"


def test_topology_view(app: FastAPI) -> None:
    with Session(app.state.engine) as s:
        topo = views.topology(s)
    _topology_checks(topo.model_dump(mode="json"))


def test_topology_view_is_cut_at_its_caps(app: FastAPI) -> None:
    with Session(app.state.engine) as s:
        topo = views.topology(s, max_devices=3, max_links=1)
    assert topo.truncated and len(topo.devices) == 3 and len(topo.links) <= 1
    shown = {d.id for d in topo.devices}
    assert all(lk.a_device_id in shown and lk.b_device_id in shown for lk in topo.links)


def test_sites_health_is_the_topology_s_answer(app: FastAPI) -> None:
    with Session(app.state.engine) as s:
        topo = views.topology(s)
        every = views.sites_health(s)
        some = views.sites_health(s, [site.id for site in topo.sites if site.code in ("JED-B07", "JED-DC1")])
    assert every == topo.sites
    assert [h.code for h in some] == ["JED-B07", "JED-DC1"]
    assert some == [h for h in topo.sites if h.code in ("JED-B07", "JED-DC1")]


def test_device_detail_view(app: FastAPI) -> None:
    with Session(app.state.engine) as s:
        detail = views.device_detail(s, app.state.ids["sw07"])
        assert views.device_detail(s, 999999) is None
    assert detail is not None
    assert (detail.state, detail.reason) == ("degraded", "link_down")
    assert detail.site.code == "JED-B07" and detail.poll is not None and detail.poll.location == LOCATION_AR
    names = [i.name for i in detail.interfaces]
    assert names == ["Gi1/0/2", "Gi1/0/10", "Gi1/0/24"] == sorted(names, key=inventory_views.natural_key)
    uplink = detail.interfaces[-1]
    assert uplink.alias == ALIAS_AR and uplink.device_id == app.state.ids["sw07"]
    assert [(p.hostname, p.interface, p.source) for p in uplink.peers] == [("jed-hq-core01", "xe-0/0/2", "lldp")]
    assert sorted((n.protocol, n.remote_hostname or "") for n in detail.neighbors) == [
        ("cdp", ""), ("lldp", "jed-hq-core01")]
    assert detail.interface_total == 3 and [e.kind for e in detail.events] == ["interface.down"]
    assert detail.events[0].site_code == "JED-B07" and detail.events[0].hostname == "jed-b07-sw01"


def test_topology_json_is_the_view(client: TestClient, app: FastAPI) -> None:
    resp = client.get("/network/topology.json")
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"
    with Session(app.state.engine) as s:
        assert resp.json() == views.topology(s).model_dump(mode="json")
    _topology_checks(resp.json())


def test_topology_carries_both_names(client: TestClient) -> None:
    """The page's script names sites in the page's language (the browser test checks it), so the
    JSON carries both names whatever language was asked for."""
    data = client.get("/network/topology.json?lang=ar").json()
    names = {s["code"]: (s["name_en"], s["name_ar"]) for s in data["sites"]}
    assert names["JED-B07"] == ("Al-Balad branch", "فرع البلد")
    assert names["JED-DC1"] == ("Data center", "")
    client.get("/?lang=en")


def test_sites_page_shows_each_site_s_health(client: TestClient) -> None:
    html = client.get("/sites?lang=en").text
    for code, state in (("JED-HQ", "ok"), ("JED-B07", "degraded"), ("JED-B12", "down"), ("JED-DC1", "never")):
        row = html[html.index(f'href="/sites/{code}"'):]
        row = row[:row.index("</tr>")]
        assert f'data-state="{state}"' in row, code


@pytest.mark.parametrize(("status", "poll", "link_down", "expected"), [
    ("active", "ok", False, ("ok", "ok")),
    ("active", "ok", True, ("degraded", "link_down")),
    ("active", "error", False, ("degraded", "poll_error")),
    ("active", "auth", False, ("down", "poll_auth")),
    ("active", "timeout", True, ("down", "poll_timeout")),
    ("missing", "ok", False, ("down", "missing")),
    ("offline", None, False, ("down", "offline")),
    ("active", None, True, ("never", "never_polled")),
    ("planned", "never", False, ("never", "never_polled")),
])
def test_device_state_rules(status: str, poll: str | None, link_down: bool, expected: tuple[str, str]) -> None:
    assert views.device_state(status, poll, link_down) == expected


@pytest.mark.parametrize(("states", "expected"), [
    ([], "empty"), (["never", "never"], "never"), (["ok", "ok"], "ok"), (["ok", "never"], "degraded"),
    (["ok", "degraded"], "degraded"), (["ok", "down", "degraded"], "down"),
])
def test_site_state_rules(states: list[str], expected: str) -> None:
    assert views.site_state(states) == expected


def test_network_page_has_graph_legend_and_device_links(client: TestClient, app: FastAPI) -> None:
    page = client.get("/network?lang=en")
    assert page.status_code == 200
    assert 'id="topology"' in page.text and 'data-src="/network/topology.json?lang=en"' in page.text
    assert 'type="application/json" id="topology-strings"' in page.text
    assert "<script>" not in page.text  # the CSP allows no inline script
    assert page.headers["content-security-policy"].count("script-src 'self'") == 1
    for state in ("ok", "degraded", "down", "never"):
        assert f'<li data-state="{state}">' in page.text
    assert f'href="/devices/{app.state.ids["sw07"]}"' in page.text
    assert "No links discovered yet" not in page.text
    site = client.get("/sites/JED-B07")
    assert f'href="/devices/{app.state.ids["sw07"]}"' in site.text


def test_network_page_without_links_says_so(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "link_count", lambda _s: 0)
    assert "No links discovered yet — run a discovery." in client.get("/network?lang=en").text
    assert "لم تُكتشف أي روابط بعد" in client.get("/network?lang=ar").text
    client.get("/?lang=en")


def test_device_page(client: TestClient, app: FastAPI) -> None:
    resp = client.get(f"/devices/{app.state.ids['sw07']}?lang=en")
    assert resp.status_code == 200
    html = resp.text
    assert 'id="device-name"><bdi dir="ltr">jed-b07-sw01' in html
    assert ALIAS_AR in html and LOCATION_AR in html and "00:11:22:33:44:07" in html
    assert "1 Gb/s" in html and "2.048 Mb/s" in html and "100 Mb/s" in html
    assert 'data-state="degraded"' in html
    # The known neighbour links to its device page; the phone has no device and no link.
    assert f'<a href="/devices/{app.state.ids["core"]}"><bdi>jed-hq-core01</bdi></a>' in html
    assert "SEP001122334455" in html and "Cisco IP Phone" in html
    assert "jed-b07-sw01 Gi1/0/24 up → down" in html
    # Interfaces in the order people count them.
    assert html.index("Gi1/0/2<") < html.index("Gi1/0/10<") < html.index("Gi1/0/24<")


def test_neighbour_port_number_and_platform_are_named(client: TestClient, app: FastAPI) -> None:
    """A bare port number of a known remote becomes its interface name (the number stays in a
    tooltip); an unknown remote keeps the number; the platform cell is short, the whole sysDescr
    is its title."""
    with Session(app.state.engine) as s:
        detail = views.device_detail(s, app.state.ids["dist"])
    assert detail is not None
    rows = {n.remote_system_name: n for n in detail.neighbors}
    assert (rows["jed-hq-core01"].remote_port, rows["jed-hq-core01"].remote_port_id) == ("ge-0/0/5", "574")
    assert rows["elsewhere"].remote_port == "575"
    short = rows["jed-hq-core01"].platform_short
    assert short == "Juniper ex4650-48y-8c 21.4R3-S4.9" and "\n" not in short
    html = client.get(f"/devices/{app.state.ids['dist']}?lang=en").text
    cell = re.search(r'<td class="neighbor-platform"><bdi title="([^"]*)">([^<]*)</bdi>', html)
    assert cell and cell.group(2) == short and cell.group(1).startswith("Juniper Networks, Inc. ex4650")
    assert "Build date" in cell.group(1) and ">ge-0/0/5</bdi>" in html and 'title="574"' in html


@pytest.mark.parametrize("raw", ["999999", "abc", "-1", "1e3", "٣", "9" * 40])
def test_unknown_device_is_an_html_404(client: TestClient, raw: str) -> None:
    resp = client.get(f"/devices/{raw}")
    assert resp.status_code == 404
    assert "text/html" in resp.headers["content-type"]
    assert 'id="error-page"' in resp.text


@pytest.mark.parametrize(("bps", "expected"), [
    (None, None), (0, None), (64_000, ("kbps", "64")), (1_544_000, ("mbps", "1.544")),
    (10**9, ("gbps", "1")), (25 * 10**9, ("gbps", "25")), (400, ("bps", "400")), (10**12, ("tbps", "1")),
])
def test_speed_is_human_readable(bps: int | None, expected: tuple[str, str] | None) -> None:
    assert fmt.speed(bps) == expected


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, int]]]:
    """A distribution switch with two Juniper uplinks whose LLDP port ids are the same description
    (the Juniper's own LLDP rows say which port faces which), a MikroTik seen by CDP and LLDP on one
    port, and a site with no device at all."""
    tmp = tmp_path_factory.mktemp("peers")
    url = f"sqlite:///{tmp / 'peers.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        hq = Site(code="JED-HQ", name_en="Headquarters", kind="hq")
        empty = Site(code="JED-B12", name_en="Al-Rawdah branch", kind="branch")
        s.add_all([hq, empty])
        s.flush()
        devs = {}
        for name in ("dist2", "jun-a", "jun-b", "mt1"):
            d = Device(site_id=hq.id or 0, hostname=name)
            s.add(d)
            s.flush()
            devs[name] = d.id or 0
        for dev, name, idx, descr in (("dist2", "Gi1/0/1", 1, ""), ("dist2", "Gi1/0/2", 2, ""),
                                      ("dist2", "Gi1/0/3", 3, ""),
                                      ("jun-a", "ge-0/0/0", 510, ALIAS_AR), ("jun-a", "ge-0/0/1", 511, ALIAS_AR),
                                      ("jun-b", "ge-0/0/0", 510, ALIAS_AR), ("jun-b", "ge-0/0/7", 517, "spare"),
                                      ("mt1", "ether1", 1, "")):
            s.add(Interface(device_id=devs[dev], name=name, if_index=idx, description=descr))
        for local, remote in (("Gi1/0/1", "jun-a"), ("Gi1/0/2", "jun-b")):
            s.add(Neighbor(device_id=devs["dist2"], protocol="lldp", local_interface=local,
                           remote_system_name=remote, remote_port=ALIAS_AR, remote_device_id=devs[remote]))
        # jun-a's own table: its ge-0/0/0 faces dist2 Gi1/0/1 (ge-0/0/1 has the same description).
        s.add(Neighbor(device_id=devs["jun-a"], protocol="lldp", local_interface="ge-0/0/0",
                       remote_system_name="dist2", remote_port="Gi1/0/1", remote_device_id=devs["dist2"]))
        for proto, platform in (("cdp", "MikroTik"), ("lldp", "MikroTik RouterOS 7.12 (stable) CCR2004")):
            s.add(Neighbor(device_id=devs["dist2"], protocol=proto, local_interface="Gi1/0/3",
                           remote_system_name="mt1", remote_port="ether1", remote_platform=platform,
                           remote_address="10.0.0.9" if proto == "cdp" else "", remote_device_id=devs["mt1"]))
        s.commit()
    yield engine, devs
    engine.dispose()


def test_remote_port_is_the_remote_s_interface_name(peers: tuple[Any, dict[str, int]]) -> None:
    """A description as port id becomes the remote's port name: from the remote's own row pointing
    back (the description is on two of its ports), or from the one port that carries it; the id
    the device sent stays in ``remote_port_id``."""
    engine, devs = peers
    with Session(engine) as s:
        detail = views.device_detail(s, devs["dist2"])
    assert detail is not None
    rows = {n.remote_system_name: n for n in detail.neighbors}
    assert rows["jun-a"].remote_port == "ge-0/0/0" and rows["jun-a"].remote_port_id == ALIAS_AR
    assert rows["jun-b"].remote_port == "ge-0/0/0"


def test_one_neighbour_seen_by_cdp_and_lldp_is_one_row(peers: tuple[Any, dict[str, int]]) -> None:
    engine, devs = peers
    with Session(engine) as s:
        detail = views.device_detail(s, devs["dist2"])
    assert detail is not None
    mt = [n for n in detail.neighbors if n.remote_system_name == "mt1"]
    assert len(mt) == 1
    assert mt[0].protocols == ["cdp", "lldp"] and mt[0].remote_platform.startswith("MikroTik RouterOS")
    assert mt[0].remote_address == "10.0.0.9"


def test_a_site_without_devices_is_empty_not_unpolled(peers: tuple[Any, dict[str, int]]) -> None:
    engine, _ = peers
    with Session(engine) as s:
        sites = {h.code: h for h in views.sites_health(s)}
        graph = {h.code: h.state for h in views.topology(s).sites}
    assert sites["JED-B12"].state == "empty" and graph["JED-B12"] == "empty"
    assert sites["JED-HQ"].state != "empty"


def test_arabic_pages_name_scope_roles_and_poll_state_in_arabic(client: TestClient, app: FastAPI) -> None:
    """The Jobs page's scope and trigger, a site's prefix roles and a device's poll message are
    words of the reader's language; what the poller said stays as the message's tooltip."""
    from infra_mgr.inventory.models import Prefix
    from infra_mgr.network.models import DiscoveryRun

    detail_text = "no answer from 10.64.12.1"
    with Session(app.state.engine) as s:
        b12 = inventory_views.site_by_code(s, "JED-B12")
        assert b12 is not None
        rtr = [d for d in views.sites_health(s) if d.code == "JED-B12"][0].problems
        rtr_id = next(p.id for p in rtr if p.hostname == "jed-b12-rtr01")
        poll = s.get(DevicePoll, rtr_id)
        assert poll is not None
        poll.message = detail_text
        roles = ("management", "wan", "users", "voice")
        s.add_all([Prefix(prefix=f"10.64.{n}.0/24", site_id=b12.id, role=r) for n, r in enumerate(roles, 100)])
        s.add(DiscoveryRun(scope="all sites", trigger="demo", status="ok"))
        s.commit()
    jobs = client.get("/jobs?lang=ar").text
    table = jobs[jobs.index('id="discovery-runs"'):]
    assert "كل المواقع" in table and "all sites" not in table and ">demo<" not in table
    site = client.get("/sites/JED-B12?lang=ar").text
    prefixes = site[site.index('id="site-prefixes"'):site.index("</table>", site.index('id="site-prefixes"'))]
    for word in ("الإدارة", "الشبكة الواسعة", "المستخدمون", "الصوت"):
        assert f"<bdi>{word}</bdi>" in prefixes
    assert not re.search(r"<bdi>(management|wan|users|voice)</bdi>", prefixes)
    device = client.get(f"/devices/{rtr_id}?lang=ar").text
    cell = re.search(r'id="device-poll-message" title="([^"]*)"><bdi>([^<]*)</bdi>', device)
    assert cell and cell.group(1) == detail_text and cell.group(2) == "لا يمكن الوصول إليه: لا رد على SNMP"
