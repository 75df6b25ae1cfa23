"""The Power page in a real browser (Debian's Chromium via Playwright), live over server-sent events.

What only a browser proves: power.js runs under our strict CSP, subscribes to
``/api/v1/power/stream`` with the session cookie, and turns a reading into colours, states, gauges
and events on the page without a reload; it says "live updates paused" when the stream drops and
comes back by itself; the daily PUE chart is drawn; and the Arabic page reads right to left with
power flowing right to left. Screenshots go to ``test-artifacts/power-en.png`` and ``power-ar.png``.

The app runs under uvicorn without its power poller (the seeded sources are not real devices).
The test plays the poller instead: like ``PowerPoller._poll_one`` it writes the device's new state
to the database first and then publishes the same ``{"type": "device", ...}`` item (built by
``power.views``, as the poller's is), and the
service's events as ``{"type": "event", ...}``, on a LiveHub attached to ``app.state.power_hub``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from browser_support import ARTIFACTS, require_assets, serve
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.common import utcnow
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Site
from infra_mgr.power import views
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerEdge, PowerNode
from infra_mgr.power.poller import LiveHub
from infra_mgr.power.service import PowerService

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-power-password-1"
# How long a live update may take to show before the test gives up: generous, because the machine
# may be loaded; the test checks that the update arrives without a reload, not how fast.
LIVE_WAIT_MS = 15_000
STREAM = "/api/v1/power/stream"





class TestHub(LiveHub):
    """The poller's hub, publishable from the test's thread (the queues belong to the server's loop)."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        super().__init__()
        self.loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        self.loop = asyncio.get_running_loop()
        async with super().subscribe() as queue:
            yield queue

    def send(self, item: dict[str, Any]) -> None:
        assert self.loop is not None, "nobody subscribed yet"
        self.loop.call_soon_threadsafe(self.publish, item)


def _seed(url: str) -> dict[str, int]:
    """Jeddah's green data centre on mains: intake meter → ATS → DRUPS → UPS → PDU → rack, one PDU
    that stopped answering, a day tank, last week's outage and seven days of meter readings."""
    engine = make_engine(url)
    now = utcnow()
    ids: dict[str, int] = {}
    with Session(engine) as s:
        create_user(s, UserCreate(username="facilities", password=PASSWORD, role="viewer"))
        site = Site(code="JED-DC", name_en="Green data centre", name_ar="مركز البيانات الأخضر", kind="datacenter")
        s.add(site)
        s.flush()
        ok = {"status": "ok", "last_ok": now, "poll_interval_s": 300.0, "site_id": site.id}
        devices = [
            PowerDevice(name="dc-intake", kind="meter", source="modbus://127.0.0.1:5021/1?map=meter", state="mains",
                        readings={"meter.power": 210.0, "meter.voltage": 231.0}, **ok),
            PowerDevice(name="dc-drups1", kind="drups", source="modbus://127.0.0.1:5020/1?map=drups-eurodiesel",
                        capacity_kw=500, state="mains",
                        readings={"drups.mode": "mains", "mains.status": "ok", "kinetic.level": 100.0,
                                  "engine.state": "stopped", "output.power": 160.0, "fuel.day.level": 62.0}, **ok),
            PowerDevice(name="dc-ups1", kind="ups", source="nut://127.0.0.1:3493/dc-ups1", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 100.0,
                                                 "battery.runtime": 1500.0, "ups.load": 45.0}, **ok),
            PowerDevice(name="dc-ups2", kind="ups", source="nut://127.0.0.1:3493/dc-ups2", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 98.0,
                                                 "battery.runtime": 2400.0, "ups.load": 30.0}, **ok),
            PowerDevice(name="dc-pdu-a1", kind="pdu", source="snmp://public@127.0.0.1:1161", state="mains",
                        status="comm_lost", last_ok=now - dt.timedelta(minutes=12), site_id=site.id,
                        readings={"output.power": 18.0}),
        ]
        s.add_all(devices)
        s.flush()
        ids.update({d.name: d.id or 0 for d in devices})
        s.add(FuelTank(name="day-tank", power_device_id=ids["dc-drups1"], capacity_l=2000, rated_kw=500,
                       level_reading="fuel.day.level", curve={"25": 42, "50": 70, "75": 100, "100": 135}))
        nodes: dict[str, int] = {}
        for name, kind, dev, extra in (
            ("utility-a", "utility", None, {}),
            ("intake-meter", "meter", "dc-intake", {"pue_role": "facility"}),
            ("ats-1", "ats", None, {}),
            ("drups-1", "drups", "dc-drups1", {"capacity_kw": 500}),
            ("ups-1", "ups", "dc-ups1", {"pue_role": "it", "it_category": 1, "capacity_kw": 200}),
            ("ups-2", "ups", "dc-ups2", {"pue_role": "it", "it_category": 1, "capacity_kw": 200}),
            ("pdu-a1", "pdu", "dc-pdu-a1", {"capacity_kw": 22}),
            ("rack-r01", "rack", None, {}),
        ):
            node = PowerNode(name=name, kind=kind, site_id=site.id, power_device_id=ids[dev] if dev else None, **extra)
            s.add(node)
            s.flush()
            nodes[name] = node.id or 0
        ids.update({f"node:{k}": v for k, v in nodes.items()})
        for a, b in (("utility-a", "intake-meter"), ("intake-meter", "ats-1"), ("ats-1", "drups-1"),
                     ("drups-1", "ups-1"), ("drups-1", "ups-2"), ("ups-1", "pdu-a1"), ("pdu-a1", "rack-r01"),
                     ("ups-2", "rack-r01")):
            s.add(PowerEdge(from_node_id=nodes[a], to_node_id=nodes[b]))
        t0 = (now - dt.timedelta(days=3)).replace(hour=9, minute=12, second=3, microsecond=0)

        def step(seconds: float, kind: str, device: str, message: str) -> dict[str, str]:
            return {"time": (t0 + dt.timedelta(seconds=seconds)).isoformat(), "kind": kind, "device": device,
                    "message": message}

        outage = Outage(site_id=site.id, status="closed", started_at=t0,
                        diesel_cranking_at=t0 + dt.timedelta(seconds=1.5),
                        diesel_on_load_at=t0 + dt.timedelta(seconds=7.8),
                        mains_restored_at=t0 + dt.timedelta(seconds=1260), ended_at=t0 + dt.timedelta(seconds=1380),
                        min_kinetic_level=71.5, fuel_used_l=48.0, diesel_run_s=1372.2, timeline=[
                         step(0, "power.mains_failed", "dc-intake", "dc-intake: mains failed"),
                         step(0.2, "power.on_kinetic", "dc-drups1", "dc-drups1: on the kinetic store"),
                         step(1.5, "power.diesel_cranking", "dc-drups1", "dc-drups1: diesel cranking"),
                         step(7.8, "power.diesel_on_load", "dc-drups1", "dc-drups1: diesel on load"),
                         step(1260, "power.mains_restored", "dc-intake", "dc-intake: mains restored"),
                         step(1380, "power.outage_ended", "dc-drups1", "all power devices back on mains"),
                     ])
        s.add(outage)
        s.commit()
        ids["outage"] = outage.id or 0
    svc = PowerService(engine)
    samples = []
    start = (now - dt.timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    i = 0
    while (when := start + dt.timedelta(hours=2 * i)) < now - dt.timedelta(minutes=10):
        samples += svc.samples(ids["dc-intake"], {"meter.power": 210 + 15 * math.sin(i / 4)}, when)
        samples += svc.samples(ids["dc-ups1"], {"output.power": 90.0}, when)
        samples += svc.samples(ids["dc-ups2"], {"output.power": 60.0}, when)
        i += 1
    svc.store.write(samples)
    svc.store.rollup()
    engine.dispose()
    return ids


class Plant:
    """The running app plus what the test needs to play the poller and to cut the network."""

    def __init__(self, url: str, base_url: str, app: Any, server: Any, hub: TestHub, ids: dict[str, int]) -> None:
        self.engine = make_engine(url)
        self.base_url, self.app, self.server, self.hub, self.ids = base_url, app, server, hub, ids

    def reading(self, name: str, state: str, flags: list[str], changes: dict[str, Any],
                events: tuple[tuple[str, str, str], ...] = ()) -> None:
        """What ``PowerPoller._poll_one`` does after a read: the database first (device and events,
        as ``PowerService.apply`` records them), then the live items."""
        now = utcnow()
        with Session(self.engine) as s:
            dev = s.get(PowerDevice, self.ids[name])
            assert dev is not None
            dev.readings = {**dev.readings, **changes}
            dev.state, dev.flags, dev.status, dev.last_ok = state, flags, "ok", now
            s.add(dev)
            for kind, severity, message in events:
                s.add(Event(kind=kind, severity=severity, message=message, site_id=dev.site_id, time=now,
                            data={"power_device_id": dev.id, "power_device": name, "state": state}))
            s.commit()
            message = views.live_message_of(s, self.ids[name], now).model_dump(mode="json")
        self.hub.send(message)
        for kind, severity, message in events:
            self.hub.send({"type": "event", "kind": kind, "severity": severity, "message": message,
                           "time": now.isoformat(), "device": name})

    def cut_network(self) -> None:
        """Drop every open connection (the stream included) and answer the stream with 404 until
        ``restore``: what a restart of the server or a dead network link looks like to the browser."""
        self.app.state.power_hub = None
        loop = self.hub.loop
        assert loop is not None
        connections = self.server.server_state.connections
        loop.call_soon_threadsafe(lambda: [c.transport.close() for c in list(connections)])

    def restore(self) -> None:
        self.app.state.power_hub = self.hub


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plant]:
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-power")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    ids = _seed(url)
    app = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False), engine=make_engine(url))
    hub = TestHub()
    app.state.power_hub = hub
    with serve(app, timeout_graceful_shutdown=2) as (base, server):
        p = Plant(url, base, app, server, hub, ids)
        try:
            yield p
        finally:
            p.engine.dispose()


class Problems:
    """Console errors, CSP refusals and failed sub-requests; the stream's own failures are allowed
    only while the test has cut the network on purpose."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.cut = False

    def add(self, text: str) -> None:
        if self.cut and (STREAM in text or "ERR_" in text or "Failed to load resource" in text):
            return
        self.errors.append(text)


@pytest.fixture()
def page(browser: Any, plant: Plant) -> Iterator[Any]:
    context = browser.new_context(base_url=plant.base_url, viewport={"width": 1600, "height": 1000}, locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(LIVE_WAIT_MS)
    problems = Problems()
    pg.problems = problems

    def _on_console(msg: Any) -> None:
        if msg.type == "error":
            problems.add(msg.text)

    def _on_response(resp: Any) -> None:
        if resp.request.resource_type != "document" and resp.status >= 400:
            problems.add(f"{resp.status} {resp.url}")

    pg.on("console", _on_console)
    pg.on("response", _on_response)
    pg.on("pageerror", lambda exc: problems.add(str(exc)))
    yield pg
    context.close()
    assert problems.errors == []


def _login(page: Any, lang: str) -> None:
    page.goto(f"/login?next=/power&lang={lang}")
    page.fill("#username", "facilities")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/power")


def _wait_live(page: Any) -> None:
    page.wait_for_function("() => window.infraPower && window.infraPower.live === 'on'")


def _node(page: Any, name: str) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("""name => {
        const g = document.querySelector(`.pnode[data-name="${name}"]`);
        const r = g.getBoundingClientRect();
        return {state: g.getAttribute('data-state'), tone: g.getAttribute('data-tone'), x: r.x,
                text: g.querySelector('[data-role="state"]').textContent,
                reading: g.querySelector('[data-role="reading"]').textContent,
                fill: getComputedStyle(g.querySelector('rect')).fill};
    }""", name)
    return result


def _until(page: Any, js: str, arg: Any = None, timeout: int = LIVE_WAIT_MS) -> None:
    """Wait for a condition in the page (an update pushed over the stream, no reload)."""
    page.wait_for_function(js, arg=arg, timeout=timeout)


def _days_run(page: Any) -> str:
    """Which way time runs on the daily PUE chart, read from its bars' days and positions."""
    xs = page.evaluate("""() => [...document.querySelectorAll('#pue-chart rect.pue-bar')]
        .map(b => [b.dataset.day, b.getBoundingClientRect().x]).sort()""")
    order = [x for _day, x in xs]
    if order == sorted(order):
        return "left to right"
    return "right to left" if order == sorted(order, reverse=True) else "mixed"


def test_power_page_live_in_both_languages(page: Any, plant: Plant) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _login(page, "en")
    _wait_live(page)
    assert page.locator("#power-live").inner_text() == "Live"

    # As rendered: everything on mains, the silent PDU grey and marked stale, the intake meter's
    # utility feed green, the chain drawn left to right.
    assert page.locator('.power-site[data-state="mains"]').inner_text().count("On mains") == 1
    utility, drups, ups = _node(page, "utility-a"), _node(page, "drups-1"), _node(page, "ups-1")
    assert (utility["state"], drups["state"], drups["tone"]) == ("mains", "mains", "ok")
    assert utility["x"] < _node(page, "ats-1")["x"] < drups["x"] < ups["x"]
    assert drups["fill"] == "rgb(209, 231, 221)" and ups["reading"] == "90 kW · 45 %"
    pdu = _node(page, "pdu-a1")
    assert (pdu["tone"], pdu["text"]) == ("stale", "Stale")
    stale_card = page.locator(f'.pdev[data-device="{plant.ids["dc-pdu-a1"]}"]')
    assert stale_card.get_attribute("data-live") == "false" and "Not live" in stale_card.inner_text()
    assert page.locator("#pue-value").inner_text() == "1.40"
    assert "Category 1" in page.locator("#pue-category").inner_text()

    # The daily PUE chart, drawn by our script from /api/v1/power/pue/daily.
    page.wait_for_selector("#pue-chart[data-ready='true'] rect.pue-bar")
    bars = page.locator("#pue-chart rect.pue-bar")
    assert bars.count() == 7
    assert all(1.2 < float(bars.nth(i).get_attribute("data-pue")) < 1.6 for i in range(7))
    assert _days_run(page) == "left to right"
    assert page.locator("#pue-table-details").get_attribute("open") is None

    # The newest outage is selected with its phases.
    assert page.locator("#outage-phases li.done").count() == 6
    assert "+7.8 s" in page.locator("#outage-phases").inner_text()

    # Mains fails: the intake meter reads 0 V and the DRUPS rides through on its flywheel.
    drups_id = plant.ids["dc-drups1"]
    plant.reading("dc-intake", "off", ["mains_failed"], {"meter.voltage": 0.0, "meter.power": 0.0},
                  (("power.mains_failed", "critical", "dc-intake: mains failed"),))
    plant.reading("dc-drups1", "kinetic", ["cranking", "mains_failed"],
                  {"drups.mode": "kinetic", "mains.status": "failed", "kinetic.level": 84.0,
                   "engine.state": "cranking"},
                  (("power.on_kinetic", "warning", "dc-drups1: on the kinetic store"),))
    _until(page, """id => {
        const g = document.querySelector('.pnode[data-name="drups-1"]');
        const gauge = document.querySelector(`.pdev[data-device="${id}"] [data-gauge="kinetic"] [data-role="value"]`);
        return g.getAttribute('data-state') === 'kinetic' && gauge.textContent === '84 %'
            && document.querySelector('.power-site').getAttribute('data-state') === 'kinetic'
            && document.querySelectorAll('#power-events li[data-kind="power.on_kinetic"]').length === 1;
    }""", drups_id)
    drups, utility, meter = _node(page, "drups-1"), _node(page, "utility-a"), _node(page, "intake-meter")
    assert (drups["tone"], drups["text"], drups["fill"]) == ("warning", "Kinetic store", "rgb(255, 243, 205)")
    assert (utility["state"], utility["tone"]) == ("failed", "critical")
    assert (meter["state"], meter["tone"]) == ("off", "critical")
    # The line out of the dead intake is red and dashed.
    assert "dead" in page.locator(f'.pedge[data-from="{plant.ids["node:intake-meter"]}"]').get_attribute("class")
    assert "On the kinetic store" in page.locator(".power-site").inner_text()
    assert page.locator(f'.pdev[data-device="{drups_id}"] [data-flag="cranking"]').inner_text() == "Diesel cranking"
    assert page.locator("#power-events li").first.get_attribute("data-kind") == "power.on_kinetic"

    # The diesel takes the load 7 s later.
    plant.reading("dc-drups1", "diesel", ["mains_failed", "on_load"],
                  {"drups.mode": "diesel", "engine.state": "on_load", "kinetic.level": 100.0, "output.power": 158.0},
                  (("power.diesel_on_load", "warning", "dc-drups1: diesel on load"),))
    _until(page, "() => document.querySelector('.pnode[data-name=\"drups-1\"]').dataset.state === 'diesel'")
    assert "On diesel" in page.locator(".power-site").inner_text()
    assert page.locator(f'.pdev[data-device="{drups_id}"] [data-fact="engine"]').inner_text() == "On load"
    # the kW comes with the refresh that also brings the PUE note (they add up)
    _until(page, "() => document.querySelector('.pnode[data-name=\"drups-1\"] [data-role=\"reading\"]')"
                 ".textContent === '158 kW · 32 %'")
    # An outage opened meanwhile (the service does that): the page learns it from /power/chain.json.
    with Session(plant.engine) as s:
        s.add(Outage(site_id=None, status="open", started_at=utcnow() - dt.timedelta(seconds=8), timeline=[]))
        s.commit()
    plant.reading("dc-drups1", "diesel", ["mains_failed", "on_load"], {"output.power": 157.0})
    page.wait_for_selector("#power-outage-open:not([hidden])", timeout=LIVE_WAIT_MS)
    # The intake reads 0 kW, yet PUE has a value: facility = grid intake + on-site generation.
    _until(page, "() => document.getElementById('pue-detail').textContent.includes('on-site generation')")
    assert page.locator("#pue-value").inner_text() != "—"
    assert "grid 0 kW + on-site generation 157 kW" in page.locator("#pue-detail").inner_text()
    page.screenshot(path=str(ARTIFACTS / "power-en.png"), full_page=True)

    # The network drops: the page says so at once, and comes back on its own.
    page.problems.cut = True
    plant.cut_network()
    _until(page, "() => window.infraPower.live === 'paused'")
    assert page.locator("#power-live").inner_text() == "Live updates paused — reconnecting…"
    # the browser gave up on a 404
    page.wait_for_function("() => window.infraPower.reconnects >= 1", timeout=LIVE_WAIT_MS)
    plant.restore()
    page.wait_for_function("() => window.infraPower.live === 'on'", timeout=LIVE_WAIT_MS)
    page.problems.cut = False
    plant.reading("dc-drups1", "mains", [], {"drups.mode": "mains", "mains.status": "ok", "engine.state": "cooling"})
    plant.reading("dc-intake", "mains", [], {"meter.voltage": 229.0, "meter.power": 208.0},
                  (("power.mains_restored", "info", "dc-intake: mains restored"),))
    _until(page, """() => document.querySelector('.power-site').getAttribute('data-state') === 'mains'
        && document.querySelector('.pnode[data-name="utility-a"]').getAttribute('data-state') === 'mains'""")

    # Arabic: right to left, power flowing right to left, and still live.
    page.click("#lang-toggle")
    page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    _wait_live(page)
    assert page.locator("#power-live").inner_text() == "مباشر"
    utility, drups, ups = _node(page, "utility-a"), _node(page, "drups-1"), _node(page, "ups-1")
    assert utility["x"] > drups["x"] > ups["x"]
    assert drups["text"] == "الشبكة العامة"
    plant.reading("dc-ups2", "battery", ["mains_failed"], {"ups.status": "OB DISCHRG", "battery.charge": 91.0},
                  (("power.on_battery", "critical", "dc-ups2: on battery"),))
    _until(page, "() => document.querySelector('.pnode[data-name=\"ups-2\"]').getAttribute('data-tone') === 'critical'")
    assert _node(page, "ups-2")["text"] == "البطارية"
    assert "على البطاريات" in page.locator(".power-site").inner_text()
    assert page.locator("#power-events li").first.inner_text().count("التحول إلى البطاريات") == 1
    assert page.locator('#power-events li[data-kind="power.on_kinetic"]').count() == 1  # from the database
    page.wait_for_selector("#pue-chart[data-ready='true'] rect.pue-bar")
    assert _days_run(page) == "right to left"  # the newest day on the left, as the readings chart
    page.screenshot(path=str(ARTIFACTS / "power-ar.png"), full_page=True)


def _it_figures(page: Any, device_ids: list[int]) -> tuple[float, float]:
    """The PUE note's IT figure and the sum of the IT cards' kW, both as the page displays them."""
    got: list[float] = page.evaluate("""ids => {
        const num = text => parseFloat(text.replace(/[^0-9.]/g, ''));
        const note = document.getElementById('pue-detail').textContent;
        const it = note.match(/IT ([0-9.]+) kW/);
        const cards = ids.map(id => num(document.querySelector(`.pdev[data-device="${id}"] [data-fact="power"]`)
                                        .textContent));
        return [it ? parseFloat(it[1]) : NaN, cards.reduce((a, b) => a + b, 0)];
    }""", device_ids)
    return got[0], got[1]


def test_pue_note_adds_up_to_the_cards_while_live(page: Any, plant: Plant) -> None:
    """Every kW on the page comes from the same answer: after each live reading, at any moment,
    the note's IT figure is the sum of the IT cards (the two UPSs) as displayed."""
    _login(page, "en")
    _wait_live(page)
    ups = [plant.ids["dc-ups1"], plant.ids["dc-ups2"]]
    samples: list[tuple[float, float]] = []
    for i in range(6):
        before = page.evaluate("() => window.infraPower.updates")
        plant.reading("dc-ups1", "mains", [], {"ups.status": "OL", "ups.load": 41.0 + 1.3 * i})
        _until(page, "n => window.infraPower.updates > n", before)
        samples.append(_it_figures(page, ups))  # just after the reading arrived
        page.wait_for_timeout(700)
        samples.append(_it_figures(page, ups))  # and a little later
    _until(page, "() => window.infraPower.refreshes >= 1")
    samples.append(_it_figures(page, ups))
    assert all(not math.isnan(it) for it, _cards in samples), samples
    assert [(it, cards) for it, cards in samples if abs(it - cards) > 0.05] == [], samples


def test_power_page_without_javascript(browser: Any, plant: Plant) -> None:
    """Server-rendered: the chain, gauges, PUE and outages are all there with scripts off."""
    context = browser.new_context(base_url=plant.base_url, java_script_enabled=False, locale="en-US")
    try:
        pg = context.new_page()
        _login(pg, "en")
        assert pg.locator(".pnode").count() == 8
        assert pg.locator('.pnode[data-name="pdu-a1"]').get_attribute("data-tone") == "stale"
        assert pg.locator("#power-live").is_hidden() and pg.locator("#power-asof").is_visible()
        assert pg.locator(f'#pg-{plant.ids["dc-ups1"]}-battery').get_attribute("value") is not None
        # only the days with readings (the seed has seven): a day without data is no row of zeros
        assert pg.locator("#pue-table tbody tr").count() == 7
        assert "—" not in pg.locator("#pue-table tbody").inner_text()
        pg.click(f'#outage-list tr[data-outage="{plant.ids["outage"]}"] a')
        assert pg.locator("#outage-timeline tbody tr").count() == 6
        assert pg.locator("#outage-phases li.done").count() == 6
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 1024])
@pytest.mark.parametrize("lang", ["en", "ar"])
def test_power_chain_fits_its_card(browser: Any, plant: Plant, lang: str, width: int) -> None:
    """At the page's usual widths every node of the chain lies inside the visible part of its card
    (nothing cut off at the right in English or at the left in Arabic)."""
    context = browser.new_context(base_url=plant.base_url, viewport={"width": width, "height": 900},
                                  locale="en-US")
    try:
        pg = context.new_page()
        pg.set_default_timeout(LIVE_WAIT_MS)
        _login(pg, lang)
        pg.wait_for_function(f"() => document.documentElement.dir === '{'rtl' if lang == 'ar' else 'ltr'}'")
        boxes = pg.evaluate("""() => {
            const box = el => { const r = el.getBoundingClientRect();
                                return {left: r.left, right: r.right, top: r.top, bottom: r.bottom}; };
            const chain = document.getElementById('power-chain');
            const card = chain.closest('.card'), wrap = chain.closest('.power-chain-wrap');
            return {card: box(card), wrap: box(wrap), page: document.documentElement.clientWidth,
                    nodes: [...document.querySelectorAll('.pnode')].map(g => ({name: g.dataset.name, ...box(g)}))};
        }""")
        assert len(boxes["nodes"]) == 8
        # the visible box: the wrap, inside the card, inside the page
        seen = {k: f(boxes["wrap"][k], boxes["card"][k]) for k, f in (("left", max), ("right", min),
                                                                     ("top", max), ("bottom", min))}
        seen["left"], seen["right"] = max(seen["left"], 0), min(seen["right"], boxes["page"])
        for n in boxes["nodes"]:
            assert seen["left"] - 0.5 <= n["left"] and n["right"] <= seen["right"] + 0.5, (lang, width, n, seen)
            assert seen["top"] - 0.5 <= n["top"] and n["bottom"] <= seen["bottom"] + 0.5, (lang, width, n, seen)
        # still read in the page's direction: the utility feed first
        xs = {n["name"]: n["left"] for n in boxes["nodes"]}
        assert (xs["utility-a"] < xs["rack-r01"]) == (lang == "en")
    finally:
        context.close()
