"""A person finds discovery's failures on every page, in English and Arabic (Chromium via Playwright).

The lab city is discovered once; its ``jed-b23-sw`` does not answer and no stored credential opens
``jed-b34-rtr``. Jobs lists the run with both failures and why; the map, the Sites list, the site
page and the device page show both devices down with the reason.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS, require_assets, serve
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.importer import import_file
from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.setup import configure_discovery
from infra_mgr.network.discovery import discover

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-discovery-password-1"
MASTER = b"e2e-discovery-master-key"
EXAMPLE = Path(__file__).parents[2] / "examples" / "jeddah.yaml"
DEAD, LOCKED = "jed-b23-sw", "jed-b34-rtr"
TEXT = {
    "en": {"jobs": "Jobs", "runs": "Discovery runs", "unreachable": "unreachable", "auth": "no working credential",
           "reason_unreachable": "unreachable: no answer to SNMP", "reason_auth": "no working credential",
           "down": "Down", "sites": "Sites", "problems": "Devices with problems"},
    "ar": {"jobs": "المهام", "runs": "عمليات الاكتشاف", "unreachable": "لا يمكن الوصول إليه",
           "auth": "لا توجد بيانات اعتماد صالحة", "reason_unreachable": "لا يمكن الوصول إليه: لا رد على SNMP",
           "reason_auth": "لا توجد بيانات اعتماد صالحة", "down": "متوقف", "sites": "المواقع",
           "problems": "أجهزة بها مشكلات"},
}


@pytest.fixture(scope="module")
def base_url(city: RunningCity, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app on a database that has discovered the lab city once (before the browser starts:
    Playwright's loop and ``asyncio.run`` do not share a thread)."""
    require_assets("bootstrap", "cytoscape")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-discovery")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        import_file(s, EXAMPLE)
        configure_discovery(s, MASTER, city)
        create_user(s, UserCreate(username="admin", password=PASSWORD, role="admin"))
        s.commit()
    report = asyncio.run(discover(engine, MASTER, all_sites=True, timeout_s=2.0, retries=1, actor="admin"))
    assert {f.hostname for f in report.failures} >= {DEAD, LOCKED}
    app = create_app(Settings(data_dir=tmp, database_url=url), engine=engine)
    with serve(app) as (base, _server):
        yield base


@pytest.fixture()
def page(base_url: str, browser: Any) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1366, "height": 900}, locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert errors == []


def _row(page: Any, text: str) -> Any:
    return page.get_by_role("row").filter(has_text=text)


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_failures_on_every_page(page: Any, lang: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    words = TEXT[lang]
    page.goto(f"/login?next=/&lang={lang}")
    page.locator("#username").fill("admin")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/(\?.*)?$"))

    # Jobs: the run, with both failures and why.
    page.get_by_role("link", name=words["jobs"], exact=True).click()
    page.get_by_role("heading", name=words["runs"]).wait_for()
    run = page.get_by_role("row").filter(has=page.get_by_role("link", name=DEAD))
    assert run.count() == 1
    failures = run.locator("li")
    assert words["unreachable"] in failures.filter(has_text=DEAD).inner_text()
    assert words["auth"] in failures.filter(has_text=LOCKED).inner_text()
    page.screenshot(path=str(ARTIFACTS / f"jobs-{lang}.png"), full_page=True)

    # Sites list: the operational state beside the administrative status, with the device and reason.
    page.get_by_role("link", name=words["sites"], exact=True).first.click()
    for code, host, reason in (("JED-B23", DEAD, "reason_unreachable"), ("JED-B34", LOCKED, "reason_auth")):
        row = _row(page, code).filter(has=page.get_by_role("link", name=code, exact=True))
        text = row.inner_text()
        assert words["down"] in text and host in text and words[reason] in text, text

    # The map: both branch sites are red, and their devices say why.
    page.goto("/network")
    page.wait_for_function("() => window.infraTopology && window.infraTopology.ready")
    states = page.evaluate("() => window.infraTopology.sites")
    assert states["JED-B23"] == "down" and states["JED-B34"] == "down"
    devices = page.evaluate("() => window.infraTopology.devices")
    assert devices[DEAD] == "down" and devices[LOCKED] == "down"
    page.locator("#topology-details summary").click()
    listed = page.locator("#topology-list").get_by_role("listitem").filter(
        has=page.get_by_role("link", name=DEAD, exact=True)).last
    assert words["reason_unreachable"] in listed.inner_text()

    # The site page names the failing device and the reason; from there, its device page.
    page.goto("/sites/JED-B34")
    problems = page.get_by_role("region", name=words["problems"])
    assert LOCKED in problems.inner_text() and words["reason_auth"] in problems.inner_text()
    problems.get_by_role("link", name=LOCKED).click()
    page.wait_for_url("**/devices/*")
    state = page.locator("#device-state")
    assert state.get_attribute("data-state") == "down"
    assert words["down"] in state.inner_text() and words["reason_auth"] in state.inner_text()
    # The poll message says it in the reader's language; the poller's own words are its tooltip.
    message = page.get_by_role("definition").filter(has_text=words["reason_auth"]).last
    assert message.inner_text().strip() == words["reason_auth"]
    assert "127.2.34.1" in (message.get_attribute("title") or "")
    page.screenshot(path=str(ARTIFACTS / f"device-down-{lang}.png"), full_page=True)
