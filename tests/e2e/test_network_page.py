"""The city topology and the device page in a real browser (Debian's Chromium via Playwright).

What only a browser proves: cytoscape (from npm, served from web/node_modules) loads under our
strict Content-Security-Policy and draws a canvas; the colours the JSON decides are the ones on
the page; clicking a node on the canvas opens the device; and Arabic free text (ifAlias,
sysLocation) reads correctly in a right-to-left page. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import ARTIFACTS, require_assets, serve
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface, Link, Prefix, Site
from infra_mgr.network.models import DevicePoll, DiscoveryRun, Neighbor

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-network-password-1"
ALIAS_AR = "وصلة إلى المقر الرئيسي"
LOCATION_AR = "جدة، حي البلد، المبنى التاريخي"
B07_AR = "فرع البلد التاريخي"
# What the seed below must look like on the map.
MAP_NAMES = {"en": "City network topology", "ar": "مخطط شبكة المدينة"}
SITE_STATES = {"JED-HQ": "ok", "JED-B07": "degraded", "JED-B12": "down", "JED-B13": "empty"}
RTR12_DETAIL = "no answer from 10.64.12.1"
# Latin words a page may show in Arabic: names, addresses, and the protocol's own name.
LATIN_ALLOWED = {"SNMP", "jed-b12-rtr01", "jed-b12-sw01"}
DEVICE_STATES = {"jed-hq-core01": "ok", "jed-hq-dist01": "ok", "jed-b07-sw01": "degraded",
                 "jed-b12-sw01": "down", "jed-b12-rtr01": "down"}





def _seed(url: str) -> None:
    """4 sites, 5 devices, 4 links: HQ all fine; the Al-Balad branch's uplink is down; at Al-Rawdah
    one device is missing and the other times out (an event says so, a discovery of all sites ran,
    the site has its prefixes); Al-Safa has no device yet."""
    with Session(make_engine(url)) as s:
        create_user(s, UserCreate(username="admin", password=PASSWORD, role="admin"))
        hq = Site(code="JED-HQ", name_en="Municipality headquarters", name_ar="مقر الأمانة الرئيسي", kind="hq")
        b07 = Site(code="JED-B07", name_en="Al-Balad historic branch", name_ar=B07_AR, kind="branch")
        b12 = Site(code="JED-B12", name_en="Al-Rawdah branch", name_ar="فرع الروضة", kind="branch")
        b13 = Site(code="JED-B13", name_en="Al-Safa branch", name_ar="فرع الصفا", kind="branch")
        s.add_all([hq, b07, b12, b13])
        s.flush()
        devices: dict[str, Device] = {}
        for site, name, status, poll, extra in (
            (hq, "jed-hq-core01", "active", "ok", {"vendor": "Juniper", "model": "EX4650",
                                                   "management_address": "10.64.0.1"}),
            (hq, "jed-hq-dist01", "active", "ok", {"vendor": "Cisco", "model": "C9500"}),
            (b07, "jed-b07-sw01", "active", "ok", {"vendor": "Cisco", "platform": "IOS-XE", "model": "C9200L-24P",
                                                   "serial": "JAE12345678", "os_version": "17.9.4",
                                                   "management_address": "10.64.7.2"}),
            (b12, "jed-b12-sw01", "missing", "timeout", {}),
            (b12, "jed-b12-rtr01", "active", "timeout", {}),
        ):
            d = Device(site_id=site.id or 0, hostname=name, status=status, **extra)
            s.add(d)
            s.flush()
            s.add(DevicePoll(device_id=d.id or 0, status=poll, address=extra.get("management_address", "")))
            devices[name] = d
        sw07 = devices["jed-b07-sw01"]
        poll07 = s.get(DevicePoll, sw07.id)
        assert poll07 is not None
        poll07.location, poll07.chassis_id = LOCATION_AR, "00:11:22:33:44:07"

        def iface(host: str, name: str, oper: str = "up", **kw: Any) -> Interface:
            i = Interface(device_id=devices[host].id or 0, name=name, oper_status=oper, **kw)
            s.add(i)
            s.flush()
            return i

        def link(x: Interface, y: Interface, source: str = "lldp") -> None:
            a, b = sorted((x.id or 0, y.id or 0))
            s.add(Link(a_interface_id=a, b_interface_id=b, source=source))

        link(iface("jed-hq-core01", "xe-0/0/1"), iface("jed-hq-dist01", "Gi1/0/1"))
        link(iface("jed-hq-core01", "xe-0/0/2"),
             iface("jed-b07-sw01", "Gi1/0/24", "down", alias=ALIAS_AR, speed_bps=10**9, mac="00:11:22:33:44:24"))
        link(iface("jed-hq-core01", "xe-0/0/3"), iface("jed-b12-rtr01", "Gi0/0"), "cdp")
        link(iface("jed-hq-dist01", "Gi1/0/2"), iface("jed-b12-sw01", "Gi1/0/24"))
        iface("jed-b07-sw01", "Gi1/0/1", alias="طابعة الاستقبال", speed_bps=100_000_000, mac="00:11:22:33:44:01")
        s.add(Neighbor(device_id=sw07.id or 0, protocol="lldp", local_interface="Gi1/0/24",
                       remote_system_name="jed-hq-core01", remote_port="xe-0/0/2", remote_address="10.64.0.1",
                       remote_platform="Juniper EX4650", remote_device_id=devices["jed-hq-core01"].id))
        s.add(Neighbor(device_id=sw07.id or 0, protocol="cdp", local_interface="Gi1/0/1",
                       remote_system_name="SEP001122334455", remote_port="Port 1", remote_platform="Cisco IP Phone"))
        s.add(Event(kind="interface.down", severity="warning", message="jed-b07-sw01 Gi1/0/24 up → down",
                    device_id=sw07.id, site_id=b07.id))
        rtr12 = devices["jed-b12-rtr01"]
        poll12 = s.get(DevicePoll, rtr12.id)
        assert poll12 is not None
        poll12.message, poll12.address = RTR12_DETAIL, "10.64.12.1"
        s.add(Event(kind="device.unreachable", severity="critical", message=f"jed-b12-rtr01: {RTR12_DETAIL}",
                    device_id=rtr12.id, site_id=b12.id,
                    data={"address": "10.64.12.1", "before": "ok", "after": "timeout", "reason": RTR12_DETAIL}))
        s.add_all([Prefix(prefix=f"10.64.{12 + n}.0/24", site_id=b12.id, role=role)
                   for n, role in enumerate(("management", "wan", "users", "voice"))])
        s.add(DiscoveryRun(scope="all sites", trigger="demo", status="ok"))
        s.commit()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread, with a fresh SQLite database."""
    require_assets("bootstrap", "cytoscape")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-network")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    _seed(url)
    app = create_app(Settings(data_dir=tmp, database_url=url), engine=make_engine(url))
    with serve(app) as (base, _server):
        yield base


@pytest.fixture()
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 900}, locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(10_000)
    errors: list[str] = []

    def _on_console(msg: Any) -> None:
        # CSP refusals ("Refused to apply inline style…") are console errors and fail the test; the
        # 404 page asked for on purpose logs "Failed to load resource", sub-resources are checked below.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def _on_response(resp: Any) -> None:
        if resp.request.resource_type != "document" and resp.status >= 400:
            errors.append(f"{resp.status} {resp.url}")

    pg.on("console", _on_console)
    pg.on("response", _on_response)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == []


def _wait_for_graph(page: Any) -> dict[str, Any]:
    page.wait_for_function("() => window.infraTopology && window.infraTopology.ready")
    result: dict[str, Any] = page.evaluate("""() => {
        const t = window.infraTopology;
        return {nodes: t.nodes, edges: t.edges, sites: t.sites, devices: t.devices, drawn: !!t.cy,
                canvases: document.querySelectorAll('#topology canvas').length,
                cyNodes: t.cy ? t.cy.nodes('.device').length : 0, cyEdges: t.cy ? t.cy.edges().length : 0};
    }""")
    return result


def _node_colour(page: Any, node_id: str) -> str:
    return str(page.evaluate("id => window.infraTopology.cy.getElementById(id).style('background-color')", node_id))


def _map_link(page: Any, name: str) -> Any:
    """A site's or device's name on the map, as a person sees and clicks it (a link over the canvas)."""
    return page.get_by_role("group", name=MAP_NAMES[page.evaluate("document.documentElement.lang")]).get_by_role(
        "link", name=name, exact=True)


def test_topology_then_device_page_in_both_languages(page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto("/login?next=/network&lang=en")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/network")

    # The graph: cytoscape drew on canvas, every device and link is there, states as seeded.
    graph = _wait_for_graph(page)
    assert graph["drawn"] and graph["canvases"] >= 1
    assert (graph["nodes"], graph["edges"], graph["cyNodes"], graph["cyEdges"]) == (5, 4, 5, 4)
    assert graph["sites"] == SITE_STATES
    assert graph["devices"] == DEVICE_STATES
    assert "4 sites, 5 devices, 4 links." in page.locator("#topology-status").inner_text()
    assert page.locator("#topology-empty").count() == 0
    # Colours on the canvas are the legend's: green, amber, red.
    assert _node_colour(page, "site:JED-HQ") == "rgb(25,135,84)"
    assert _node_colour(page, "site:JED-B07") == "rgb(255,193,7)"
    assert _node_colour(page, "site:JED-B12") == "rgb(220,53,69)"
    legend = page.locator("#topology-legend").inner_text()
    assert all(word in legend for word in ("OK", "Degraded", "Down", "Not polled"))
    # The list fallback carries the same states, as links.
    page.click("#topology-details summary")
    assert page.locator('#topology-list li[data-site="JED-B12"]').get_attribute("data-state") == "down"
    assert page.locator('#topology-list li[data-device="jed-b07-sw01"]').get_attribute("data-state") == "degraded"
    page.click("#topology-details summary")
    page.screenshot(path=str(ARTIFACTS / "network-topology.png"), full_page=True)

    # Click the branch switch on the canvas: its device page.
    # Every name on the map is a visible link, in the state's colour family; the branch switch opens its page.
    assert _map_link(page, "Al-Rawdah branch").get_attribute("data-state") == "down"
    _map_link(page, "jed-b07-sw01").click()
    page.wait_for_url("**/devices/*")
    assert page.locator("#device-name").inner_text() == "jed-b07-sw01"
    assert page.locator("#device-state").get_attribute("data-state") == "degraded"
    facts = page.locator("#device-facts").inner_text()
    assert "10.64.7.2" in facts and "C9200L-24P" in facts and "JAE12345678" in facts and "IOS-XE" in facts
    assert page.locator("#device-location").inner_text().strip() == LOCATION_AR
    uplink = page.locator('#device-interfaces tr[data-interface="Gi1/0/24"]')
    assert ALIAS_AR in uplink.inner_text() and "1 Gb/s" in uplink.inner_text()
    assert uplink.get_attribute("data-oper") == "down"
    assert "jed-hq-core01" in uplink.inner_text() and "xe-0/0/2" in uplink.inner_text()
    neighbours = page.locator("#device-neighbors").inner_text()
    assert "SEP001122334455" in neighbours and "Juniper EX4650" in neighbours
    assert "jed-b07-sw01 Gi1/0/24 up → down" in page.locator("main").inner_text()

    # Arabic: right to left; the Arabic alias and location keep their own direction and text.
    page.click("#lang-toggle")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    alias = page.locator('#device-interfaces tr[data-interface="Gi1/0/24"] .if-alias bdi')
    assert alias.inner_text() == ALIAS_AR
    assert alias.evaluate("e => getComputedStyle(e).direction") == "rtl"
    assert "1 جيجابت/ث" in page.locator('#device-interfaces tr[data-interface="Gi1/0/24"]').inner_text()
    assert page.locator("#device-state").inner_text().startswith("متدهور")
    page.screenshot(path=str(ARTIFACTS / "device-page-ar.png"), full_page=True)

    # The neighbour's name links to its device page.
    page.click("#device-neighbors >> text=jed-hq-core01")
    page.wait_for_url("**/devices/*")
    assert page.locator("#device-name").inner_text() == "jed-hq-core01"

    # The Arabic map: site labels in Arabic; clicking a site opens the site page.
    page.goto("/network")
    graph = _wait_for_graph(page)
    assert graph["sites"] == SITE_STATES
    assert page.evaluate("() => window.infraTopology.cy.getElementById('site:JED-B07').data('label')") == B07_AR
    assert "رابطًا" in page.locator("#topology-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "network-topology-ar.png"), full_page=True)
    # Clicking a site's name on the map opens the site page.
    _map_link(page, "فرع الروضة").click()
    page.wait_for_url("**/sites/JED-B12")

    # An unknown device: an HTML 404 page, still in Arabic.
    resp = page.goto("/devices/987654")
    assert resp is not None and resp.status == 404
    assert page.locator("#error-page").is_visible()


def _latin_words(text: str) -> set[str]:
    """Latin-script words of a text, less names and addresses: what an Arabic reader should not meet."""
    return {w for w in re.findall(r"[A-Za-z][A-Za-z0-9-]*", text) if w not in LATIN_ALLOWED}


def test_arabic_pages_say_poll_failures_scope_and_roles_in_arabic(page: Any) -> None:
    """In Arabic, a device that stopped answering is said in Arabic wherever it shows (Alerts,
    Overview, its site, its page), the Event column names the kind in words, the Jobs page's scope
    is Arabic, prefix roles are Arabic, and a site without devices says so rather than "not polled"."""
    page.goto("/login?next=/alerts&lang=ar")
    page.get_by_label("اسم المستخدم").fill("admin")
    page.get_by_label("كلمة المرور").fill(PASSWORD)
    page.get_by_role("button", name="دخول", exact=True).click()
    page.wait_for_url("**/alerts")
    row = page.get_by_role("row").filter(has_text="jed-b12-rtr01")
    assert _latin_words(row.inner_text()) == set(), row.inner_text()
    assert "جهاز لا يستجيب" in row.inner_text() and "10.64.12.1" in row.inner_text()
    assert row.get_by_title("device.unreachable").count() == 1  # the raw kind, for engineers

    page.goto("/")
    row = page.get_by_role("row").filter(has_text="jed-b12-rtr01")
    assert row.count() >= 1 and _latin_words(row.first.inner_text()) == set()

    page.goto("/sites/JED-B12")
    prefixes = page.get_by_role("table").filter(has_text="10.64.12.0/24")
    for role in ("الإدارة", "الشبكة الواسعة", "المستخدمون", "الصوت"):
        assert prefixes.get_by_role("cell", name=role, exact=True).count() == 1
    assert _latin_words(re.sub(r"[0-9./]+", " ", prefixes.inner_text())) == set()
    events = page.get_by_role("row").filter(has_text="10.64.12.1")
    assert events.count() >= 1 and _latin_words(events.first.inner_text()) == set()

    page.get_by_role("link", name="jed-b12-rtr01").first.click()
    page.wait_for_url("**/devices/*")
    message = page.locator("#device-poll-message")
    assert _latin_words(message.inner_text()) == set() and message.get_attribute("title") == RTR12_DETAIL

    page.goto("/jobs")
    runs = page.get_by_role("table").filter(has_text="#")
    assert "كل المواقع" in runs.inner_text() and "all sites" not in runs.inner_text()

    page.goto("/sites")
    safa = page.get_by_role("row").filter(has_text="فرع الصفا")
    assert "لا أجهزة" in safa.inner_text() and "لم يُستطلع" not in safa.inner_text()
