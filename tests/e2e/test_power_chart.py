"""The Power page's Readings card in a real browser (Debian's Chromium via Playwright).

What only a browser proves: power.js draws any reading of any device from
``/api/v1/power/series`` under our strict CSP — the average as a line, the min–max band of
roll-ups, the line broken (never bridged) where data is missing — labels the y axis with the
reading's unit and the time axis in the browser's local time, runs time right to left in Arabic,
keeps the selection in the URL (a chart can be linked and survives a reload), and redraws short
ranges by itself. Without JavaScript the card offers the series as JSON instead.

The telemetry is written through the store's own API (``PowerService.samples`` →
``TelemetryStore.write`` → ``rollup``): a UPS's battery charge every 2 s over the last 50 minutes
with a 5-minute hole, and its load every minute over the last 20 hours with a 2-hour hole.
Screenshots go to ``test-artifacts/power-chart-en.png`` and ``power-chart-ar.png``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from browser_support import ARTIFACTS, require_assets, serve, watched_page
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.common import utcnow
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Site
from infra_mgr.power.models import PowerDevice
from infra_mgr.power.service import PowerService

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-power-chart-password-1"
RAW_STEP_S = 2
LOAD_STEP_S = 60


class Plant:
    def __init__(self, url: str, base_url: str, ids: dict[str, int], expected: dict[str, int]) -> None:
        self.url, self.base_url, self.ids, self.expected = url, base_url, ids, expected

    def write(self, device: str, readings: dict[str, float], when: dt.datetime) -> None:
        """One more sample, as the poller would store it."""
        engine = make_engine(self.url)
        try:
            svc = PowerService(engine)
            svc.store.write(svc.samples(self.ids[device], readings, when))
        finally:
            engine.dispose()


def _seed(url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Four power devices (the DRUPS not critical, so the first critical UPS is the default) and
    the UPS's telemetry with one hole in each series; returns ids and the expected point counts."""
    engine = make_engine(url)
    now = utcnow().replace(microsecond=0)
    with Session(engine) as s:
        create_user(s, UserCreate(username="facilities", password=PASSWORD, role="viewer"))
        site = Site(code="JED-DC", name_en="Green data centre", name_ar="مركز البيانات الأخضر", kind="datacenter")
        s.add(site)
        s.flush()
        ok = {"status": "ok", "last_ok": now, "poll_interval_s": 300.0, "site_id": site.id}
        devices = [
            PowerDevice(name="dc-drups1", kind="drups", source="modbus://127.0.0.1:5020/1?map=drups-eurodiesel",
                        capacity_kw=500, state="mains", critical=False,
                        readings={"drups.mode": "mains", "kinetic.level": 100.0, "output.power": 160.0,
                                  "fuel.day.level": 62.0}, **ok),
            PowerDevice(name="dc-intake", kind="meter", source="modbus://127.0.0.1:5021/1?map=meter", state="mains",
                        readings={"meter.power": 210.0, "meter.voltage": 231.0}, **ok),
            PowerDevice(name="dc-ups1", kind="ups", source="nut://127.0.0.1:3493/dc-ups1", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 100.0, "ups.load": 45.0,
                                                 "battery.runtime": 1500.0}, **ok),
            PowerDevice(name="dc-ups2", kind="ups", source="nut://127.0.0.1:3493/dc-ups2", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 98.0}, **ok),
        ]
        s.add_all(devices)
        s.commit()
        ids = {d.name: d.id or 0 for d in devices}

    svc = PowerService(engine)
    samples: list[tuple[int, int, float]] = []
    # Battery charge every 2 s from 50 to 0.5 minutes ago, nothing between 30 and 25 minutes ago.
    raw = 0
    when = now - dt.timedelta(minutes=50)
    while when < now - dt.timedelta(seconds=30):
        if not now - dt.timedelta(minutes=30) <= when < now - dt.timedelta(minutes=25):
            samples += svc.samples(ids["dc-ups1"], {"battery.charge": 90.0 + (raw % 50) / 5}, when)
            raw += 1
        when += dt.timedelta(seconds=RAW_STEP_S)
    # Load every minute over the last 20 hours, nothing between 10 and 8 hours ago.
    buckets = set()
    when = now - dt.timedelta(hours=20)
    while when < now - dt.timedelta(minutes=1):
        if not now - dt.timedelta(hours=10) <= when < now - dt.timedelta(hours=8):
            load = 45.0 + 8 * math.sin(when.timestamp() / 7200) + (when.minute % 5) / 2
            samples += svc.samples(ids["dc-ups1"], {"ups.load": load}, when)
            buckets.add(int(when.timestamp()) // 300)
        when += dt.timedelta(seconds=LOAD_STEP_S)
    svc.store.write(samples)
    svc.store.rollup()
    engine.dispose()
    return ids, {"raw": raw, "load_5min": len(buckets)}


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-power-chart")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    ids, expected = _seed(url)
    engine = make_engine(url)
    app = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False), engine=engine)
    try:
        with serve(app, timeout_graceful_shutdown=2) as (base, _server):
            yield Plant(url, base, ids, expected)
    finally:
        engine.dispose()


@pytest.fixture()
def page(browser: Any, plant: Plant) -> Iterator[Any]:
    with watched_page(browser, plant.base_url) as pg:
        yield pg


def _login(page: Any, lang: str = "en", next_url: str = "/power") -> None:
    page.goto(f"/login?next={next_url}&lang={lang}")
    page.fill("#username", "facilities")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/power(\?.*)?$"))


def _chart(page: Any, device: int, reading: str, range_key: str) -> dict[str, Any]:
    """Wait until the chart shows this selection, then return its state and what it drew."""
    page.wait_for_function("""([d, r, k]) => {
        const c = window.infraPower && window.infraPower.chart;
        return c && c.ready && c.device === d && c.reading === r && c.range === k;
    }""", arg=[device, reading, range_key])
    result: dict[str, Any] = page.evaluate("""() => {
        const c = window.infraPower.chart;
        const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, w: r.width}; };
        const segs = [...document.querySelectorAll('#reading-chart .rc-segment')].map(g => ({
            points: Number(g.dataset.points), from: Number(g.dataset.from), ...box(g)}));
        const xticks = [...document.querySelectorAll('#reading-chart .rc-xtick')].map(t => ({
            ts: Number(t.dataset.ts), text: t.textContent, ...box(t)}));
        const yticks = [...document.querySelectorAll('#reading-chart .rc-ytick')].map(t => ({
            text: t.textContent, ...box(t)}));
        const plot = document.querySelector('#reading-chart .rc-axis');
        const xlabel = document.querySelector('#reading-chart .rc-xlabel');
        return {points: c.points, segments: c.segments, gaps: c.gaps, resolution: c.resolution, unit: c.unit,
                loads: c.loads, segs, xticks, yticks, plot: plot ? box(plot) : null,
                xlabel: xlabel ? xlabel.textContent : null,
                bands: document.querySelectorAll('#reading-chart .rc-band').length,
                shaded: document.querySelectorAll('#reading-chart .rc-gap').length,
                summary: document.querySelector('#reading-chart-summary').textContent,
                empty: (document.querySelector('#reading-chart .empty-state') || {}).textContent || null};
    }""")
    return result


def _query(page: Any) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_readings_chart(page: Any, plant: Plant) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    ups1, drups = plant.ids["dc-ups1"], plant.ids["dc-drups1"]
    _login(page)

    # The default: the first critical UPS/DRUPS (the DRUPS is not critical), its battery charge,
    # the last hour of raw samples; the 5-minute hole splits the line in two.
    c = _chart(page, ups1, "battery.charge", "1h")
    assert page.locator("#reading-chart-nojs").is_hidden() and page.locator("#chart-submit").is_hidden()
    assert (c["points"], c["resolution"], c["unit"]) == (plant.expected["raw"], 0, "%")
    assert (c["segments"], c["gaps"]) == (2, 1)
    # 20 minutes of 2 s samples before the hole, the rest after it.
    assert [s["points"] for s in c["segs"]] == [600, plant.expected["raw"] - 600]
    assert c["bands"] == 0  # raw samples have no min–max band
    assert c["shaded"] == 2  # the hole, and the half minute since the last sample
    assert c["yticks"] and all(t["text"].endswith(" %") for t in c["yticks"])
    assert all(re.fullmatch(r"\d\d:\d\d|\d\d-\d\d", t["text"]) for t in c["xticks"]) and len(c["xticks"]) >= 4
    # English: time runs left to right, the older segment first; value labels left of the plot.
    xs = [t["x"] for t in sorted(c["xticks"], key=lambda t: t["ts"])]
    assert xs == sorted(xs)
    assert c["segs"][0]["x"] < c["segs"][1]["x"]
    assert c["xlabel"] == "Time (your local time) →"  # the time axis is named, with its direction
    assert all(t["x"] + t["w"] <= c["plot"]["x"] + 1 for t in c["yticks"])
    assert "Raw samples" in c["summary"] and "Gaps in the data: 1" in c["summary"]
    opts = page.locator("#chart-reading option").all_inner_texts()
    assert any(o.startswith("Battery charge — ") and "battery.charge" in o and o.endswith("(%)") for o in opts)
    assert not any("ups.status" in o for o in opts)  # text readings are not charted
    assert page.locator("#reading-chart-json").is_hidden()  # the no-script note (with the JSON link)

    # A new sample arrives half a minute after the last: the next refresh (every 10 s for short
    # ranges) draws it, after a gap of its own.
    loads = c["loads"]
    plant.write("dc-ups1", {"battery.charge": 80.0}, utcnow() - dt.timedelta(seconds=1))
    page.wait_for_function("n => window.infraPower.chart.loads > n", arg=loads, timeout=15_000)
    c = _chart(page, ups1, "battery.charge", "1h")
    assert (c["points"], c["segments"], c["gaps"]) == (plant.expected["raw"] + 1, 3, 2)

    # Load over 24 hours: 5-minute roll-ups, the band drawn, the 2-hour hole splits it.
    page.select_option("#chart-reading", "ups.load")
    page.select_option("#chart-range", "24h")
    c = _chart(page, ups1, "ups.load", "24h")
    assert (c["points"], c["resolution"], c["segments"], c["gaps"]) == (plant.expected["load_5min"], 300, 2, 1)
    assert c["bands"] == 2
    assert "5-minute minimum / average / maximum" in c["summary"]
    assert _query(page) == {"chart_device": str(ups1), "chart_reading": "ups.load", "chart_range": "24h"}
    page.locator("#power-readings").screenshot(path=str(ARTIFACTS / "power-chart-en.png"))

    # The selection survives a reload.
    page.reload()
    c = _chart(page, ups1, "ups.load", "24h")
    assert page.locator("#chart-device").input_value() == str(ups1)
    assert page.locator("#chart-reading").input_value() == "ups.load"
    assert page.locator("#chart-range").input_value() == "24h"
    assert (c["points"], c["segments"]) == (plant.expected["load_5min"], 2)

    # Another device: its own readings (no battery charge on a DRUPS: its first numeric reading),
    # and nothing stored yet says so instead of drawing an empty frame.
    page.select_option("#chart-device", str(drups))
    c = _chart(page, drups, "output.power", "24h")
    assert page.locator("#chart-reading option").evaluate_all("os => os.map(o => o.value)") == [
        "output.power", "kinetic.level", "fuel.day.level"]
    assert (c["points"], c["segments"], c["empty"]) == (0, 0, "No data in this range.")
    assert _query(page)["chart_device"] == str(drups)

    # Arabic, from a link to a chart: time runs right to left, value labels on the right, units in Arabic.
    page.goto(f"/power?lang=ar&chart_device={ups1}&chart_reading=ups.load&chart_range=24h")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    c = _chart(page, ups1, "ups.load", "24h")
    assert (c["segments"], c["gaps"], c["bands"]) == (2, 1, 2)
    xs = [t["x"] for t in sorted(c["xticks"], key=lambda t: t["ts"])]
    assert xs == sorted(xs, reverse=True)
    assert c["segs"][0]["x"] > c["segs"][1]["x"]  # the older part of the line is on the right
    assert c["xlabel"] == "الوقت (بتوقيتك المحلي) ←"  # the axis named in Arabic, running leftwards
    assert all(t["x"] >= c["plot"]["x"] + c["plot"]["w"] - 1 for t in c["yticks"])
    assert all(t["text"].endswith("٪") for t in c["yticks"])
    assert "حمل UPS" in page.locator("#chart-reading option:checked").inner_text()
    assert "الحد الأدنى والمتوسط والحد الأقصى لكل 5 دقائق" in c["summary"]
    # The language switch keeps the chart: its link carries the selection.
    assert "chart_reading=ups.load" in (page.locator("#lang-toggle").get_attribute("href") or "")
    page.locator("#power-readings").screenshot(path=str(ARTIFACTS / "power-chart-ar.png"))
    page.goto("/power?lang=en")


def test_readings_chart_without_javascript(browser: Any, plant: Plant) -> None:
    """The form still works (a GET to the page) and the card links to the series as JSON."""
    ups1 = plant.ids["dc-ups1"]
    context = browser.new_context(base_url=plant.base_url, java_script_enabled=False, locale="en-US")
    try:
        pg = context.new_page()
        _login(pg)
        assert pg.locator("#reading-chart-nojs").is_visible() and pg.locator("#chart-submit").is_visible()
        pg.select_option("#chart-reading", "ups.load")
        pg.select_option("#chart-range", "7d")
        pg.click("#chart-submit")
        pg.wait_for_url(re.compile(r".*chart_range=7d.*"))
        assert _query(pg) == {"chart_device": str(ups1), "chart_reading": "ups.load", "chart_range": "7d"}
        href = pg.locator("#reading-chart-json").get_attribute("href") or ""
        q = {k: v[0] for k, v in parse_qs(urlsplit(href).query).items()}
        assert urlsplit(href).path == "/api/v1/power/series"
        assert (q["device_id"], q["name"], q["max_points"]) == (str(ups1), "ups.load", "2016")
        resp = pg.request.get(href)
        data = resp.json()
        assert resp.status == 200 and data["unit"] == "%" and data["resolution_s"] == 300
        assert len(data["points"]) == plant.expected["load_5min"]
    finally:
        context.close()
