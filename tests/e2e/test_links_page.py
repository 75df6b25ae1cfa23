"""The Links page, an uplink's charts and the report in a real browser (Debian's Chromium via Playwright).

What only a browser proves: the ranked table reads in order and keeps its filter through the
refresh and a reload; the map is the network page's cytoscape graph coloured by the audit; a
reason opens its uplink, whose traffic chart draws real lines under our strict CSP; the range is
chosen like a person would and lands in the URL; Arabic runs right to left, time axis included;
and the report has no navigation and prints the same rows. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_support import ARTIFACTS, require_assets, serve, watched_page
from link_seed import RANKED, STATES, Seeded, seed

from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade

pytestmark = pytest.mark.e2e

USER = "links-e2e"
PASSWORD = "e2e-links-password-1"


class Served:
    def __init__(self, base_url: str, seeded: Seeded) -> None:
        self.base_url, self.seeded = base_url, seeded


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_assets("bootstrap", "cytoscape")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-links")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    engine = make_engine(url)
    seeded = seed(engine, USER, PASSWORD)
    _add_history(engine, seeded)
    app = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False, link_poller=False), engine=engine)
    try:
        with serve(app, timeout_graceful_shutdown=2) as (base, _server):
            yield Served(base, seeded)
    finally:
        engine.dispose()


def _add_history(engine: Any, seeded: Seeded) -> None:
    """Two stories the shared seed lacks, neither changing a branch's state: JED-B07 went down and
    came back between two polls 15 h ago (one row, two transitions), and JED-B20's uplink was
    polled for five minutes only, an hour ago (first poll: down, then up)."""
    import datetime as dt

    from sqlmodel import Session

    from infra_mgr.network.linkfacts import (
        IF_SERIES_KIND,
        S_DISCARDS_PS,
        S_ERRORS_PS,
        S_IN_BPS,
        S_OPER_UP,
        S_OUT_BPS,
        SERIES_UNITS,
    )
    from infra_mgr.network.models import LinkStatusChange
    from infra_mgr.telemetry.store import TelemetryStore

    now = seeded.now
    with Session(engine) as s:
        s.add(LinkStatusChange(interface_id=seeded.uplinks["JED-B07"], at=now - dt.timedelta(hours=15), status="up",
                               previous="up", transitions=2))
        s.add(LinkStatusChange(interface_id=seeded.uplinks["JED-B20"], at=now - dt.timedelta(minutes=63),
                               status="up", previous="down"))
        s.commit()
    store = TelemetryStore(engine)
    b20 = seeded.uplinks["JED-B20"]
    values = {S_OPER_UP: 1.0, S_IN_BPS: 2.0e6, S_OUT_BPS: 1.0e6, S_ERRORS_PS: 0.0, S_DISCARDS_PS: 0.0}
    ids = {name: store.series_id(IF_SERIES_KIND, b20, name, SERIES_UNITS[name]) for name in values}
    first = int((now - dt.timedelta(minutes=65)).timestamp() * 1000)
    store.write([(ids[name], first + minute * 60_000, value) for minute in range(6) for name, value in values.items()])
    store.rollup(int(now.timestamp() * 1000))


@pytest.fixture()
def page(browser: Any, served: Served) -> Iterator[Any]:
    with watched_page(browser, served.base_url) as pg:
        yield pg


def _login(page: Any, lang: str = "en") -> None:
    page.goto(f"/login?next=/links&lang={lang}")
    page.get_by_label(re.compile("Username|اسم المستخدم")).fill(USER)
    page.get_by_label(re.compile("Password|كلمة المرور")).fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r".*/links$"))


def _ranked(page: Any) -> list[str]:
    table = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name=re.compile("Reasons|الأسباب")))
    return [str(r.get_attribute("data-site")) for r in table.locator("tbody").get_by_role("row").all()]


def _query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _chart(page: Any, range_key: str) -> dict[str, Any]:
    page.wait_for_function("k => { const c = window.infraLinks && window.infraLinks.chart;"
                           " return c && c.ready && c.range === k; }", arg=range_key)
    result: dict[str, Any] = page.evaluate("""() => {
        const c = window.infraLinks.chart;
        const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, w: r.width}; };
        const ticks = [...document.querySelectorAll('#chart-traffic .lc-xtick')].map(
            t => ({ts: Number(t.dataset.ts), ...box(t)}));
        const paths = [...document.querySelectorAll('#chart-traffic .lc-series path')].map(p => p.getAttribute('d'));
        const bands = [...document.querySelectorAll('#chart-status-timeline .lc-band')].map(b => b.dataset.status);
        return {traffic: c.traffic, errors: c.errors, status: c.status, resolution: c.resolution, ticks, paths, bands,
                speed: document.querySelectorAll('#chart-traffic .lc-speed').length,
                xlabel: (document.querySelector('#chart-traffic .lc-xlabel') || {}).textContent,
                said: document.querySelector('#chart-status').textContent};
    }""")
    return result


def test_links_page_table_map_and_uplink_charts(page: Any, served: Served) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _login(page)
    assert _ranked(page) == RANKED
    assert page.get_by_role("link", name="Links", exact=True).get_attribute("aria-current") == "page"

    # The map: the network page's graph, each branch in its audit state, central sites not audited.
    page.wait_for_function("() => window.infraTopology && window.infraTopology.ready")
    drawn = page.evaluate("() => window.infraTopology.sites")
    assert drawn == {**STATES, "JED-HQ": "none", "JED-DC1": "none"}
    assert page.evaluate("() => window.infraTopology.cy !== null")
    page.locator("#topology-section").screenshot(path=str(ARTIFACTS / "links-map-en.png"))

    # Filter like a person; the URL keeps it, the refresh keeps it, a reload keeps it.
    page.get_by_label("Show").select_option(label="Degraded")
    page.wait_for_function("() => window.infraLinks.loads >= 1 && window.infraLinks.state === 'degraded'")
    assert _ranked(page) == ["JED-B12", "JED-B30"] and _query(page) == {"state": "degraded"}
    loads = page.evaluate("() => window.infraLinks.loads")
    page.evaluate("() => window.infraLinks.refresh()")
    page.wait_for_function("n => window.infraLinks.loads > n", arg=loads)
    assert _ranked(page) == ["JED-B12", "JED-B30"]
    # The refreshed line says the server's time in UTC, as the page did (the browser is in Riyadh).
    updated = _plain(page.get_by_role("status").filter(has_text="Updated").inner_text())
    assert re.fullmatch(r"Updated \d{4}-\d\d-\d\d \d\d:\d\d UTC; refreshes every 30 seconds\.", updated), updated
    page.reload()
    assert page.get_by_label("Show").input_value() == "degraded" and _ranked(page) == ["JED-B12", "JED-B30"]
    page.get_by_label("Show").select_option(label="All branches")
    page.wait_for_function("() => window.infraLinks.state === ''")
    assert _ranked(page) == RANKED and _query(page) == {}
    page.screenshot(path=str(ARTIFACTS / "links-page-en.png"), full_page=True)

    # A reason opens its uplink: the errors branch, whose traffic chart draws in and out lines.
    page.get_by_role("link", name=re.compile(r"errors 1\.2 % of packets")).click()
    page.wait_for_url(re.compile(rf".*/links/{served.seeded.uplinks['JED-B30']}$"))
    assert page.get_by_role("heading", level=1).inner_text().endswith("jed-b30-rtr01 Gi0/0")
    day = _chart(page, "24h")
    assert day["resolution"] == 300 and day["traffic"]["points"] > 500 and day["traffic"]["lines"] >= 2
    assert len(day["paths"]) >= 2 and all(p and p.count("L") > 100 for p in day["paths"])
    assert day["speed"] == 1 and day["errors"]["lines"] >= 2
    error_ticks = page.locator("#chart-errors .lc-ytick").all_text_contents()
    assert len(error_ticks) >= 3 and len(set(error_ticks)) == len(error_ticks), error_ticks
    assert day["bands"] == ["up"]
    xs = [t["x"] for t in sorted(day["ticks"], key=lambda t: t["ts"])]
    assert len(xs) >= 4 and xs == sorted(xs)  # English: time runs left to right
    assert day["xlabel"] == "Time (your local time) →"

    # The range, chosen from its list: the URL and the chart follow.
    page.get_by_label("Range").select_option(label="Last hour")
    hour = _chart(page, "1h")
    assert _query(page) == {"range": "1h"}
    assert hour["resolution"] == 0 and 100 <= hour["traffic"]["points"] <= 120 and hour["paths"] != day["paths"]
    assert "Last hour" in hour["said"]
    page.locator("#uplink-charts").screenshot(path=str(ARTIFACTS / "links-uplink-en.png"))
    page.reload()
    assert page.get_by_label("Range").input_value() == "1h"
    _chart(page, "1h")

    # A down uplink's status timeline: up, down 20 h ago, up again, down for the last 10 minutes.
    page.goto(f"/links/{served.seeded.uplinks['JED-B07']}")
    flaps = _chart(page, "24h")
    # Nothing is stored before the first change 20 h ago: those 4 h are "no data", not "up".
    assert flaps["bands"] == ["unknown", "down", "up", "down"] and flaps["traffic"]["points"] == 0
    assert page.locator("#chart-traffic").get_by_text("No data in this range.").is_visible()
    # The chart counts transitions as the facts do (the down-and-back 15 h ago is two).
    facts = page.get_by_role("table", name="Facts")
    flap_count = facts.get_by_role("row", name=re.compile("Status changes in 24 h")).get_by_role("cell").inner_text()
    assert flap_count.strip() == "5"
    assert page.get_by_text("Status changes in this range: 5; periods down: 2.").is_visible()


def _plain(text: str) -> str:
    return text.replace("\u2068", "").replace("\u2069", "").replace("\u2066", "")


def test_a_briefly_polled_uplink_shows_no_invented_history(page: Any, served: Served) -> None:
    """Polled for five minutes an hour ago: the day before that is "no data", in words, not "down";
    its errors, all zero, read as one 0 tick and a sentence, not "0/s, 0/s, 0/s"."""
    _login(page)
    page.goto(f"/links/{served.seeded.uplinks['JED-B20']}")
    c = _chart(page, "24h")
    assert c["bands"] == ["unknown", "down", "up"], c["bands"]
    widths = page.evaluate("() => [...document.querySelectorAll('#chart-status-timeline .lc-band')]"
                           ".map(b => Number(b.getAttribute('width')))")
    assert widths[0] > 0.9 * sum(widths)  # the unknown stretch is nearly the whole day
    assert page.locator("#uplink-charts").get_by_text("Unknown / no data", exact=True).is_visible()
    assert [_plain(t) for t in page.locator("#chart-errors .lc-ytick").all_text_contents()] == ["0/s"]
    assert page.get_by_text("No errors or discards in this range.").is_visible()


def test_arabic_pages_run_right_to_left(page: Any, served: Served) -> None:
    _login(page, "ar")
    assert page.evaluate("() => document.documentElement.dir") == "rtl"
    assert _ranked(page) == RANKED
    reason = page.locator('#links-table tr[data-site="JED-B12"] li[data-code="speed"]').inner_text()
    assert re.search(r"[\u0600-\u06FF]", reason) and "running" not in reason
    page.screenshot(path=str(ARTIFACTS / "links-page-ar.png"), full_page=True)

    page.get_by_role("link", name=re.compile(r"الأخطاء 1\.2")).click()
    c = _chart(page, "24h")
    xs = [t["x"] for t in sorted(c["ticks"], key=lambda t: t["ts"])]
    assert xs == sorted(xs, reverse=True)  # the oldest time on the right
    assert c["xlabel"] == "الوقت (بتوقيتك المحلي) ←"
    yticks = page.locator("#chart-traffic .lc-ytick").all_text_contents()
    assert yticks and all(t.endswith("بت/ث") for t in yticks)  # units in Arabic
    assert any("ميجابت/ث" in t for t in yticks) and any("جيجابت/ث" in t for t in yticks)
    assert page.locator("#uplink-charts").get_by_text("غير معروفة / لا بيانات", exact=True).is_visible()
    # A time in an Arabic sentence reads left to right: isolated, in UTC like the server's.
    since = page.get_by_role("table", name="الحقائق").get_by_text(re.compile("منذ")).inner_text()
    assert re.search("\u2068\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC\u2069", since), since
    page.get_by_label("المدى").select_option(label="آخر 7 أيام")
    _chart(page, "7d")
    assert _query(page) == {"range": "7d"}
    assert "range=7d" in (page.locator("#lang-toggle").get_attribute("href") or "")
    page.locator("#uplink-charts").screenshot(path=str(ARTIFACTS / "links-uplink-ar.png"))


def test_report_has_no_navigation_and_prints_the_same_rows(page: Any, served: Served) -> None:
    _login(page)
    shown = _ranked(page)
    page.get_by_role("link", name="Printable report").click()
    page.wait_for_url(re.compile(r".*/links/report\?lang=en$"))
    assert page.get_by_role("navigation").count() == 0
    assert page.get_by_role("heading", level=1).inner_text() == "Branch link audit"
    rows = [str(r.get_attribute("data-site")) for r in page.locator("#report-table tbody").get_by_role("row").all()]
    assert rows == shown == RANKED
    assert USER in page.locator("#report-generated").inner_text()
    page.emulate_media(media="print")
    assert page.get_by_role("link", name="Back to the Links page").is_hidden()
    assert page.locator("#report-table").is_visible()
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF")
    (ARTIFACTS / "links-report-en.pdf").write_bytes(pdf)
