"""The dashboard in a real browser: Debian's Chromium driven by Playwright against the real app.

What only a browser proves: the npm-installed Bootstrap stylesheet actually loads (so a missing
``npm ci`` fails here, not in production), right-to-left layout really applies in Arabic, and a
person can sign in, switch language and reach a site by clicking. Screenshots of both languages are
kept under ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

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
from infra_mgr.inventory.models import Device, Interface, Prefix, Site

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "e2e-admin-password-1"
AR_NAME = "فرع البلد التاريخي"





def _seed(url: str) -> None:
    with Session(make_engine(url)) as s:
        create_user(s, UserCreate(username="admin", password=ADMIN_PASSWORD, role="admin"))
        hq = Site(code="JED-HQ", name_en="Municipality headquarters", name_ar="مقر الأمانة الرئيسي", kind="hq",
                  address="Al-Hamra, Jeddah", latitude=21.5433, longitude=39.1728)
        branch = Site(code="JED-B07", name_en="Al-Balad historic branch", name_ar=AR_NAME, kind="branch",
                      address="Al-Balad, Jeddah", latitude=21.4858, longitude=39.1866,
                      description="Branch office in the historic district")
        dc = Site(code="JED-DC1", name_en="Primary data center", kind="datacenter", status="planned")
        s.add_all([hq, branch, dc])
        s.flush()
        sw = Device(site_id=branch.id or 0, hostname="jed-b07-sw01", management_address="10.64.7.2",
                    role="access-switch", vendor="Cisco", model="C9200L-24P", status="active")
        core = Device(site_id=hq.id or 0, hostname="jed-hq-core01", management_address="10.64.0.1",
                      role="core", vendor="Juniper", model="EX4650", status="offline")
        s.add_all([sw, core])
        s.flush()
        s.add_all([Interface(device_id=sw.id or 0, name=f"Gi1/0/{i}") for i in range(1, 4)])
        s.add(Prefix(prefix="10.64.7.0/24", site_id=branch.id, role="access", description="Branch LAN"))
        s.add(Event(kind="device.offline", severity="critical", message="jed-hq-core01 stopped answering SNMP",
                    device_id=core.id, site_id=hq.id))
        s.add(Event(kind="device.new", severity="info", message="discovered jed-b07-sw01", device_id=sw.id,
                    site_id=branch.id))
        # Events that carry their parameters: the page says them in the reader's language.
        s.add(Event(kind="interface.down", severity="warning", message="jed-b07-sw01 Gi1/0/2 up → down",
                    device_id=sw.id, site_id=branch.id, data={"interface": "Gi1/0/2", "before": "up", "after": "down"}))
        s.add(Event(kind="power.mains_failed", severity="critical", message="B07 UPS: mains failed",
                    site_id=branch.id, data={"power_device": "B07 UPS"}))
        s.commit()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn on a free loopback port, in a thread, with a fresh SQLite database."""
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e")
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
        # Pages answered 401/404 on purpose log "Failed to load resource"; assets are checked below.
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
    # A CSP violation or a missing asset shows up here: the page looked fine but something broke.
    assert errors == []


def _login(page: Any, password: str) -> None:
    page.fill("#username", "admin")
    page.fill("#password", password)
    page.click("button[type=submit]")


def _stylesheet_rules(page: Any) -> int:
    """How many CSS rules the vendor stylesheet brought (0 when it failed to load)."""
    return int(page.evaluate("""() => {
        const link = document.getElementById('vendor-css');
        try { return link && link.sheet ? link.sheet.cssRules.length : 0; } catch (e) { return 0; }
    }"""))


def _bootstrap_applied(page: Any) -> bool:
    """Bootstrap defines ``--bs-body-font-family`` on :root; nothing of ours does."""
    value = page.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--bs-body-font-family')")
    return bool(str(value).strip())


def test_sign_in_switch_to_arabic_and_open_a_site(page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)

    # Anonymous: every page leads to the sign-in form.
    page.goto("/")
    assert page.url.endswith("/login?next=/")

    # Wrong password: an error on the same form.
    _login(page, "definitely-wrong-password")
    assert page.locator("#login-error").is_visible()
    assert "Wrong username or password" in page.locator("#login-error").inner_text()

    # Right password: the overview with counts from the database.
    _login(page, ADMIN_PASSWORD)
    page.wait_for_url("**/")
    assert _bootstrap_applied(page), "Bootstrap CSS did not load: is web/node_modules installed?"
    assert _stylesheet_rules(page) > 100
    assert page.locator("html").get_attribute("dir") == "ltr"
    assert page.locator("[data-count=sites]").inner_text() == "3"
    assert page.locator("[data-count=sites-branch]").inner_text() == "1"
    assert page.locator("[data-count=devices]").inner_text() == "2"
    assert page.locator("[data-count=devices-offline]").inner_text() == "1"
    assert page.locator("[data-count=interfaces]").inner_text() == "3"
    assert "jed-hq-core01 stopped answering SNMP" in page.content()
    active = page.locator(".navbar .nav-link.active")
    assert active.inner_text() == "Overview"
    # Only Bootstrap makes the navbar a flex row; unstyled it would be a block.
    assert page.evaluate("() => getComputedStyle(document.querySelector('.navbar')).display") == "flex"

    # English site page screenshot.
    page.click(".navbar >> text=Sites")
    page.wait_for_url("**/sites")
    page.click("#sites-table >> text=Al-Balad historic branch")
    page.wait_for_url("**/sites/JED-B07")
    assert page.locator("#site-name").inner_text() == "Al-Balad historic branch"
    page.screenshot(path=str(ARTIFACTS / "dashboard-en-site.png"), full_page=True)

    # Switch to Arabic: right-to-left, Arabic navigation, Bootstrap's RTL stylesheet.
    page.click("#lang-toggle")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    assert page.locator("html").get_attribute("lang") == "ar"
    nav = page.locator(".navbar .nav-link").all_inner_texts()
    assert nav == ["نظرة عامة", "المواقع", "الشبكة", "الوصلات", "الطاقة", "إعدادات الأجهزة", "السحابة", "المهام",
                   "التنبيهات"]
    assert page.locator("#lang-toggle").inner_text() == "English"
    assert "bootstrap.rtl.min.css" in (page.locator("#vendor-css").get_attribute("href") or "")
    assert _stylesheet_rules(page) > 100
    assert page.evaluate("() => getComputedStyle(document.body).direction") == "rtl"

    # Open Sites from the navbar and click the Arabic-named site.
    page.click(".navbar >> text=المواقع")
    page.wait_for_url("**/sites")
    assert page.locator("html").get_attribute("dir") == "rtl"
    page.click(f"#sites-table >> text={AR_NAME}")
    page.wait_for_url("**/sites/JED-B07")
    assert page.locator("#site-name").inner_text() == AR_NAME
    devices = page.locator("#site-devices").inner_text()
    assert "jed-b07-sw01" in devices and "10.64.7.2" in devices and "C9200L-24P" in devices
    assert "10.64.7.0/24" in page.locator("#site-prefixes").inner_text()
    assert "21.48580, 39.18660" in page.locator("#site-coordinates").inner_text()
    assert page.locator(".navbar .nav-link.active").inner_text() == "المواقع"
    page.screenshot(path=str(ARTIFACTS / "dashboard-ar-site.png"), full_page=True)

    # An unknown site: an HTML page in Arabic, not JSON.
    resp = page.goto("/sites/NO-SUCH-SITE")
    assert resp is not None and resp.status == 404
    assert page.locator("#error-page").is_visible()
    assert page.locator("html").get_attribute("dir") == "rtl"


def test_sections_and_filters(page: Any) -> None:
    page.goto("/login?lang=en")
    _login(page, ADMIN_PASSWORD)
    page.wait_for_url("**/")

    # Kind filter and search are server-side.
    page.goto("/sites")
    page.select_option("#kind", "datacenter")
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**/sites?kind=datacenter*")
    assert page.locator("#sites-table tbody tr").count() == 1
    assert "JED-DC1" in page.locator("#sites-table").inner_text()
    page.goto("/sites?kind=nonsense&q=balad")
    assert page.locator("#sites-table tbody tr").count() == 1

    # Network lists every device; the empty sections say honestly that nothing is there yet.
    page.goto("/network")
    assert page.locator("#devices-table tbody tr").count() == 2
    for path, text in (("/power", "No power devices are monitored yet"),
                       ("/cloud", "No cloud platforms are connected yet"),
                       ("/jobs", "No jobs have run yet")):
        page.goto(path)
        assert text in page.locator("#empty-state").inner_text()

    # Alerts: warning and critical only.
    page.goto("/alerts")
    body = page.locator("main").inner_text()
    assert "jed-hq-core01 stopped answering SNMP" in body
    assert "discovered jed-b07-sw01" not in body

    # Sign out from the navbar.
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto("/network")
    assert "/login" in page.url


OVERVIEW_TEXT = {
    "en": {"problems": "Problems now", "down": "jed-b07-sw01: interface Gi1/0/2 went down",
           "mains": "B07 UPS: mains failed", "not_answering": "1 device not answering"},
    "ar": {"problems": "المشكلات الحالية", "down": "jed-b07-sw01: توقف المنفذ Gi1/0/2",
           "mains": "B07 UPS: انقطعت الكهرباء العامة", "not_answering": "جهاز واحد لا يستجيب"},
}


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_overview_problems_first_events_in_my_language_and_linked(page: Any, lang: str) -> None:
    """The Overview opens on what is wrong (the offline core, today's alarms), then events said in
    the reader's language; the device an event names is a link to its page."""
    text = OVERVIEW_TEXT[lang]
    page.goto(f"/login?lang={lang}")
    _login(page, ADMIN_PASSWORD)
    page.wait_for_url("**/")
    problems = page.get_by_role("region", name=text["problems"])
    assert problems.get_by_role("link", name=text["not_answering"], exact=True).is_visible()  # the singular
    assert problems.get_by_role("link", name="jed-hq-core01").is_visible()
    events = page.locator("#overview-events")
    assert events.get_by_text(text["down"]).is_visible()
    assert events.get_by_text(text["mains"]).is_visible()
    page.screenshot(path=str(ARTIFACTS / f"overview-{lang}.png"), full_page=True)
    row = events.locator("tr", has_text=text["down"])
    row.get_by_role("link", name="jed-b07-sw01").click()
    page.wait_for_url("**/devices/*")
    assert page.locator("#device-name").inner_text() == "jed-b07-sw01"
