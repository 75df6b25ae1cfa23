"""Power page, its JSON and the rules behind its colours, without a browser.

The seed is Jeddah's green data centre on a quiet day: everything on mains behind the Euro-Diesel
DRUPS, one PDU that stopped answering twelve minutes ago (stale), one never polled, two outage
records (a 23-minute one that went to diesel, an older blip the UPS batteries rode through), and
fourteen days of meter readings for the daily PUE. The browser test proves the page stays live;
here the server-side answer is pinned: what colour each element gets and why, the left-to-right
layout of the chain (mirrored in Arabic), the gauges and the outage timeline.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.common import utcnow
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Site
from infra_mgr.power import views
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerEdge, PowerNode
from infra_mgr.power.service import PowerService
from infra_mgr.power.state import load_of
from infra_mgr.web import power_pages
from infra_mgr.web.assets import web_dir

PASSWORD = "unit-test-password-power"
DC_AR = "مركز البيانات الأخضر"
CURVE = {"25": 42.0, "50": 70.0, "75": 100.0, "100": 135.0}


def seed_power(engine: Any, now: dt.datetime) -> dict[str, int]:
    """The data centre described in the module docstring; returns ids by name."""
    ids: dict[str, int] = {}
    with Session(engine) as s:
        site = Site(code="JED-DC", name_en="Green data centre", name_ar=DC_AR, kind="datacenter")
        s.add(site)
        s.flush()
        ok = {"status": "ok", "last_ok": now, "poll_interval_s": 300.0, "site_id": site.id}
        devices = [
            PowerDevice(name="dc-intake", kind="meter", source="modbus://127.0.0.1:5021/1?map=meter", state="mains",
                        readings={"meter.power": 210.0, "meter.voltage": 231.0, "meter.energy": 1834567.0}, **ok),
            PowerDevice(name="dc-drups1", kind="drups", source="modbus://127.0.0.1:5020/1?map=drups-eurodiesel",
                        capacity_kw=500, state="mains",
                        readings={"drups.mode": "mains", "mains.status": "ok", "kinetic.level": 100.0,
                                  "engine.state": "stopped", "output.power": 160.0, "fuel.day.level": 62.0,
                                  "fuel.main.level": 88.0}, **ok),
            PowerDevice(name="dc-ups1", kind="ups", source="nut://127.0.0.1:3493/dc-ups1", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 100.0,
                                                 "battery.runtime": 1500.0, "ups.load": 45.0}, **ok),
            PowerDevice(name="dc-ups2", kind="ups", source="nut://127.0.0.1:3493/dc-ups2", capacity_kw=200,
                        state="mains", readings={"ups.status": "OL", "battery.charge": 98.0,
                                                 "battery.runtime": 2400.0, "ups.load": 30.0}, **ok),
            PowerDevice(name="dc-pdu-a1", kind="pdu", source="snmp://public@127.0.0.1:1161", state="mains",
                        status="comm_lost", last_ok=now - dt.timedelta(minutes=12), poll_interval_s=5.0,
                        site_id=site.id, readings={"output.power": 18.0, "output.current": 26.0},
                        message="no answer within 4.5 s"),
            PowerDevice(name="dc-pdu-b1", kind="pdu", source="snmp://public@127.0.0.1:1162", site_id=site.id),
        ]
        s.add_all(devices)
        s.flush()
        ids.update({d.name: d.id or 0 for d in devices})
        s.add(FuelTank(name="day-tank", power_device_id=ids["dc-drups1"], capacity_l=2000, rated_kw=500,
                       level_reading="fuel.day.level", curve=CURVE))
        nodes = {}
        for name, kind, dev, extra in (
            ("utility-a", "utility", None, {}),
            ("intake-meter", "meter", "dc-intake", {"pue_role": "facility"}),
            ("ats-1", "ats", None, {}),
            ("drups-1", "drups", "dc-drups1", {"capacity_kw": 500}),
            ("ups-1", "ups", "dc-ups1", {"pue_role": "it", "it_category": 1, "capacity_kw": 200}),
            ("ups-2", "ups", "dc-ups2", {"pue_role": "it", "it_category": 1, "capacity_kw": 200}),
            ("panel-a", "panel", None, {"capacity_kw": 250}),
            ("panel-b", "panel", None, {"capacity_kw": 250}),
            ("pdu-a1", "pdu", "dc-pdu-a1", {"capacity_kw": 22}),
            ("pdu-b1", "pdu", "dc-pdu-b1", {"capacity_kw": 22}),
            ("rack-r01", "rack", None, {}),
            ("rack-r02", "rack", None, {}),
        ):
            node = PowerNode(name=name, kind=kind, site_id=site.id, power_device_id=ids[dev] if dev else None, **extra)
            s.add(node)
            s.flush()
            nodes[name] = node.id or 0
        ids.update({f"node:{k}": v for k, v in nodes.items()})
        for a, b in (("utility-a", "intake-meter"), ("intake-meter", "ats-1"), ("ats-1", "drups-1"),
                     ("drups-1", "ups-1"), ("drups-1", "ups-2"), ("ups-1", "panel-a"), ("ups-2", "panel-b"),
                     ("panel-a", "pdu-a1"), ("panel-b", "pdu-b1"), ("pdu-a1", "rack-r01"), ("pdu-b1", "rack-r01"),
                     ("pdu-b1", "rack-r02")):
            s.add(PowerEdge(from_node_id=nodes[a], to_node_id=nodes[b]))

        # Two days ago: mains failed, the DRUPS rode through on its flywheel and its diesel took the load.
        t0 = (now - dt.timedelta(days=2)).replace(hour=9, minute=12, second=3, microsecond=0)

        def at(seconds: float) -> str:
            return (t0 + dt.timedelta(seconds=seconds)).isoformat()

        big = Outage(site_id=site.id, status="closed", started_at=t0,
                     diesel_cranking_at=t0 + dt.timedelta(seconds=1.5),
                     diesel_on_load_at=t0 + dt.timedelta(seconds=7.8),
                     mains_restored_at=t0 + dt.timedelta(seconds=1260), ended_at=t0 + dt.timedelta(seconds=1380),
                     min_kinetic_level=71.5, fuel_start_pct=66.0, fuel_end_pct=63.6, fuel_used_l=48.0,
                     diesel_run_s=1372.2, timeline=[
                         {"time": at(0), "kind": "power.mains_failed", "device": "dc-intake",
                          "message": "dc-intake: mains failed"},
                         {"time": at(0.2), "kind": "power.on_kinetic", "device": "dc-drups1",
                          "message": "dc-drups1: on the kinetic store"},
                         {"time": at(1.5), "kind": "power.diesel_cranking", "device": "dc-drups1",
                          "message": "dc-drups1: diesel cranking"},
                         {"time": at(7.8), "kind": "power.diesel_on_load", "device": "dc-drups1",
                          "message": "dc-drups1: diesel on load"},
                         {"time": at(1260), "kind": "power.mains_restored", "device": "dc-intake",
                          "message": "dc-intake: mains restored"},
                         {"time": at(1380), "kind": "power.outage_ended", "device": "dc-drups1",
                          "message": "all power devices back on mains"},
                     ])
        # A month ago: a 4-second dip the UPS batteries rode through; the diesel never started.
        t1 = (now - dt.timedelta(days=30)).replace(hour=14, minute=0, second=0, microsecond=0)
        blip = Outage(site_id=site.id, status="closed", started_at=t1, mains_restored_at=t1 + dt.timedelta(seconds=4),
                      ended_at=t1 + dt.timedelta(seconds=4.1), min_battery_charge=97.0, timeline=[
                          {"time": t1.isoformat(), "kind": "power.on_battery", "device": "dc-ups1",
                           "message": "dc-ups1: on battery"},
                          {"time": (t1 + dt.timedelta(seconds=4)).isoformat(), "kind": "power.mains_restored",
                           "device": "dc-ups1", "message": "dc-ups1: mains restored"},
                      ])
        s.add_all([big, blip])
        s.flush()
        ids["outage:big"], ids["outage:blip"] = big.id or 0, blip.id or 0
        for minutes, kind, sev, dev, msg in ((12, "power.comm_lost", "critical", "dc-pdu-a1",
                                              "dc-pdu-a1: communication lost (timeout)"),
                                             (2 * 1440, "power.diesel_on_load", "warning", "dc-drups1",
                                              "dc-drups1: diesel on load")):
            s.add(Event(kind=kind, severity=sev, message=msg, site_id=site.id, time=now - dt.timedelta(minutes=minutes),
                        data={"power_device": dev, "power_device_id": ids[dev]}))
        create_user(s, UserCreate(username="facilities", password=PASSWORD, role="viewer"))
        s.commit()

    # Fourteen days of readings every two hours: facility ≈ 210 kW, IT ≈ 150 kW (PUE ≈ 1.4).
    svc = PowerService(engine)
    samples = []
    start = (now - dt.timedelta(days=13)).replace(hour=0, minute=0, second=0, microsecond=0)
    step = 0
    while (when := start + dt.timedelta(hours=2 * step)) < now - dt.timedelta(minutes=10):
        wave = math.sin(step / 5)
        samples += svc.samples(ids["dc-intake"], {"meter.power": 210 + 12 * wave}, when)
        samples += svc.samples(ids["dc-ups1"], {"output.power": 90 + 3 * wave}, when)
        samples += svc.samples(ids["dc-ups2"], {"output.power": 60.0}, when)
        step += 1
    svc.store.write(samples)
    svc.store.rollup()
    return ids


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    tmp = tmp_path_factory.mktemp("webpower")
    url = f"sqlite:///{tmp / 'power.db'}"
    upgrade(url)
    engine = make_engine(url)
    ids = seed_power(engine, utcnow())
    # No poller: the seeded sources are not real devices (it would mark them comm_lost).
    application = create_app(Settings(data_dir=tmp, database_url=url, power_poller=False), engine=engine)
    application.state.ids = ids
    yield application
    engine.dispose()


def _login(client: TestClient) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    resp = client.post("/login", data={"username": "facilities", "password": PASSWORD, "csrf": token.group(1)},
                       follow_redirects=False)
    assert resp.status_code == 303


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        _login(c)
        yield c


def _chain(client: TestClient) -> dict[str, Any]:
    resp = client.get("/power/chain.json")
    assert resp.status_code == 200
    data: dict[str, Any] = resp.json()
    return data


def _node_attrs(html: str) -> dict[str, dict[str, str]]:
    """name → attributes of each chain node's <g> (its data-* and the translate() x)."""
    out = {}
    for m in re.finditer(r'<g class="pnode ([^"]*)"(.*?)transform="translate\(([\d.]+) ([\d.]+)\)"', html, re.S):
        attrs = dict(re.findall(r'data-([a-z]+)="([^"]*)"', m.group(2)))
        attrs["x"], attrs["y"] = m.group(3), m.group(4)
        out[attrs["name"]] = attrs
    return out


# --------------------------------------------------------------------------- rules


@pytest.mark.parametrize(("state", "flags", "live", "status", "tone"), [
    ("mains", [], True, "ok", "ok"),
    ("standby", [], True, "ok", "ok"),
    ("kinetic", ["mains_failed"], True, "ok", "warning"),
    ("diesel", ["mains_failed", "on_load"], True, "ok", "warning"),
    ("bypass", ["on_bypass"], True, "ok", "warning"),
    ("battery", ["mains_failed"], True, "ok", "critical"),
    ("diesel", ["low_fuel"], True, "ok", "critical"),
    ("mains", ["overload"], True, "ok", "critical"),
    ("off", ["mains_failed"], True, "ok", "critical"),
    ("unknown", [], True, "ok", "unknown"),
    ("diesel", [], False, "comm_lost", "stale"),
    ("mains", [], False, "ok", "stale"),  # data older than its grace period
    ("unknown", [], False, "never", "unknown"),
])
def test_power_tone(state: str, flags: list[str], live: bool, status: str, tone: str) -> None:
    assert views.tone(state, flags, live, status) == tone


@pytest.mark.parametrize(("readings", "capacity", "expected"), [
    ({"meter.power": 210.0}, None, (210.0, None)),
    ({"output.power": 160.0}, 500, (160.0, 32.0)),
    ({"ups.load": 45}, 200, (90.0, 45.0)),
    ({"ups.realpower": 90000, "ups.load": 45}, 200, (90.0, 45.0)),
    ({"engine.load": 60, "output.power": 300}, 500, (300.0, 60.0)),
    # a DRUPS on mains: its engine idles (engine.load 0) while its output carries the hall
    ({"engine.load": 0, "output.power": 298.4}, 500, (298.4, 59.7)),
    ({"ups.realpower": 5500, "ups.load": 52}, 10, (5.5, 55.0)),  # the load is kW ÷ capacity, one rule
    ({"ups.load": 45}, None, (None, 45.0)),
    ({"ups.status": "OL"}, 200, (None, None)),
    ({"output.power": True}, 500, (None, None)),
])
def test_power_load(readings: dict[str, Any], capacity: float | None, expected: tuple[Any, Any]) -> None:
    kw, pct = load_of(readings, capacity)
    assert (None if kw is None else round(kw, 1), None if pct is None else round(pct, 1)) == expected


def _live(state: str = "mains", live: bool = True, flags: tuple[str, ...] = ()) -> views.DeviceLive:
    last_ok = utcnow() - dt.timedelta(seconds=0 if live else 60)
    facts = views.DeviceFacts(1, "d", "ups", None, "ok", state, flags, last_ok, 1.0, {})
    return views.device_live(facts, utcnow())


def test_site_state_is_the_most_serious_live_state() -> None:
    site = views.site_state
    assert site([_live("mains"), _live("diesel"), _live("kinetic")]) == "kinetic"
    assert site([_live("mains"), _live("battery"), _live("kinetic")]) == "battery"
    assert site([_live("mains"), _live("battery", live=False)]) == "mains"
    assert site([_live("diesel", live=False)]) == "unknown"
    assert site([]) == "unknown"


def test_utility_state_from_the_devices_it_feeds() -> None:
    fine = _live()
    failed = _live(flags=("mains_failed",))
    stale = _live(live=False, flags=("mains_failed",))
    assert views.utility_state([fine])[0] == "mains"
    assert views.utility_state([fine, failed]) == ("failed", "critical", True)
    assert views.utility_state([stale])[0] == "unknown"
    assert views.utility_state([])[1] == "none"


def test_chain_layout_left_to_right() -> None:
    # utility → meter → ATS → DRUPS → two UPS → their panels; one rack fed by both (A/B).
    grid = views.chain_layout([1, 2, 3, 4, 5, 6, 7, 8, 9],
                                [(1, 2), (2, 3), (3, 4), (4, 5), (4, 6), (5, 7), (6, 8), (7, 9), (8, 9)])
    assert [grid[n][0] for n in (1, 2, 3, 4, 5, 7, 9)] == [0, 1, 2, 3, 4, 5, 6]
    assert {grid[n][1] for n in (1, 2, 3, 4, 5, 7)} == {0}  # the main line is straight
    assert grid[6] == (4, 1) and grid[8] == (5, 1)  # the branch fans out below
    assert grid[9][0] == 6  # a join sits right of both feeders


def test_chain_layout_stacks_separate_chains_and_survives_cycles() -> None:
    grid = views.chain_layout([1, 2, 3, 4, 5], [(1, 2), (3, 4), (4, 3), (2, 99), (5, 5)])
    assert grid[1] == (0, 0) and grid[2] == (1, 0)
    rows = {grid[3][1], grid[4][1]}
    assert min(rows) >= 1 and grid[5][1] > max(rows)  # each separate chain on its own rows
    assert len(set(grid.values())) == 5


# --------------------------------------------------------------------------- JSON


def test_chain_json_needs_a_session(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        resp = anonymous.get("/power/chain.json")
    assert resp.status_code == 401 and resp.json() == {"detail": "login required"}


def test_chain_json(client: TestClient) -> None:
    data = _chain(client)
    assert data["live_updates"] is False  # no hub without a poller
    assert data["rules"] == {"badges": power_pages.POWER_TONE_BADGE}  # the script draws tones, never judges
    devices = {d["name"]: d for d in data["devices"]}
    assert {n: (d["state"], d["tone"], d["live"]) for n, d in devices.items()} == {
        "dc-intake": ("mains", "ok", True), "dc-drups1": ("mains", "ok", True), "dc-ups1": ("mains", "ok", True),
        "dc-ups2": ("mains", "ok", True), "dc-pdu-a1": ("unknown", "stale", False),
        "dc-pdu-b1": ("unknown", "unknown", False),
    }
    stale = devices["dc-pdu-a1"]
    assert stale["last_state"] == "mains" and 700 < stale["data_age_s"] < 800 and stale["grace_s"] == 15.0
    drups = devices["dc-drups1"]
    assert drups["gauges"]["shown"] == ["kinetic", "fuel", "load"]
    assert drups["gauges"]["fuel"] == 62.0 and drups["gauges"]["load"] == 32.0
    # 2000 L × 62 % − 15 % unusable = 940 L at 49.8 L/h (32 % load on the curve) = 18.9 h.
    assert drups["gauges"]["fuel_h"] == pytest.approx(18.86, abs=0.01)
    ups1 = devices["dc-ups1"]
    assert ups1["gauges"]["battery"] == 100.0 and ups1["gauges"]["battery_h"] == pytest.approx(0.42, abs=0.01)
    assert ups1["kw"] == 90.0

    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["utility-a"]["state"] == "mains" and nodes["utility-a"]["derived_from"] == [devices["dc-intake"]["id"]]
    assert (nodes["ats-1"]["state"], nodes["ats-1"]["tone"]) == ("none", "none")
    assert (nodes["pdu-a1"]["tone"], nodes["ups-1"]["kw"], nodes["ups-1"]["pct"]) == ("stale", 90.0, 45.0)
    assert [nodes[n]["col"] for n in ("utility-a", "intake-meter", "ats-1", "drups-1", "ups-1", "panel-a",
                                      "pdu-a1", "rack-r01")] == list(range(8))
    assert nodes["ups-2"]["row"] == 1 and nodes["rack-r02"]["row"] > nodes["rack-r01"]["row"]
    assert len(data["edges"]) == 12 and all(e["path"].startswith("M") for e in data["edges"])
    assert data["sites"] == [{"id": devices["dc-ups1"]["site_id"], "code": "JED-DC", "name_en": "Green data centre",
                              "name_ar": DC_AR, "state": "mains", "tone": "ok", "not_live": 2,
                              "devices": 6}]
    # PUE from the same service as /api/v1/power/status: intake 210 kW ÷ UPS outputs 90 + 60 kW.
    assert data["pue"] == {"pue": 1.4, "facility_kw": 210.0, "it_kw": 150.0, "category": 1,
                           "grid_kw": 210.0, "generation_kw": None}
    # the events list comes over the stream; the outages come with the banner, from one answer
    assert "events" not in data and data["outages"][0]["id"] == data["outage"]["id"] and len(data["outages"]) == 2
    assert 'id="power-outages-body"' in data["outages_html"] and 'id="outage-detail"' in data["outages_html"]


def _steady(data: dict[str, Any]) -> dict[str, Any]:
    """A view without what moves between two requests (the clock and the data ages)."""
    out = {k: v for k, v in data.items() if k not in ("time", "rules", "live_updates")
           and not (k in ("events", "outages", "outage") and v is None)}  # the history, when not asked for
    out["devices"] = [{k: v for k, v in d.items() if k != "data_age_s"} for d in data["devices"]]
    return out


def test_api_view_is_what_the_dashboard_shows(client: TestClient) -> None:
    api = client.get("/api/v1/power/view", params={"history": "false"})
    assert api.status_code == 200
    chain = _chain(client)
    assert _steady(api.json()) == _steady({k: v for k, v in chain.items() if k not in ("outages", "outage",
                                                                                       "outages_html", "events_html")})
    full = client.get("/api/v1/power/view").json()
    # the outages the live page refreshes from are the API's
    assert (chain["outages"], chain["outage"]) == (full["outages"], full["outage"])
    assert full["outage"]["phases"][0]["phase"] == "mains_failed" and full["events"] is not None
    assert {d["name"] for d in full["devices"]} == {d["name"] for d in api.json()["devices"]}


def test_live_message_is_the_view_of_one_device(app: FastAPI, client: TestClient) -> None:
    """The stream's device message is the dashboard's device, with the nodes and site it colours."""
    ids = app.state.ids
    with Session(app.state.engine) as s:
        message = views.live_message_of(s, ids["dc-ups1"]).model_dump(mode="json")
    page = {d["name"]: d for d in _chain(client)["devices"]}["dc-ups1"]
    shared = set(views.DeviceLive.model_fields) - {"data_age_s"}
    assert {k: message[k] for k in shared} == {k: page[k] for k in shared}
    nodes = {n["id"]: n for n in _chain(client)["nodes"]}
    assert message["nodes"] and all(
        {k: n[k] for k in ("state", "tone", "live", "kw", "pct")} == {k: nodes[n["id"]][k] for k in
                                                                      ("state", "tone", "live", "kw", "pct")}
        for n in message["nodes"])
    assert message["type"] == "device" and message["site"] == _chain(client)["sites"][0]


def test_page_agrees_with_the_status_api(client: TestClient) -> None:
    api = client.get("/api/v1/power/status").json()
    page = {d["name"]: d for d in _chain(client)["devices"]}
    assert {d["name"]: (d["state"], d["live"]) for d in api["devices"]} == {
        n: (d["state"], d["live"]) for n, d in page.items()}
    assert api["pue"] == _chain(client)["pue"]


# --------------------------------------------------------------------------- page


def test_power_page_renders_everything_server_side(client: TestClient, app: FastAPI) -> None:
    resp = client.get("/power?lang=en")
    assert resp.status_code == 200
    html = resp.text
    assert "<script>" not in html and "style=" not in html  # CSP: no inline script or style
    assert resp.headers["content-security-policy"].count("script-src 'self'") == 1
    assert 'id="power-data"' in html and 'type="application/json" id="power-strings"' in html
    assert '<script src="/static/power.js" defer></script>' in html
    assert 'data-live="off" hidden>Live updates are not enabled' in html and "Values as of " in html

    # The chain, left to right, each node coloured by its source.
    nodes = _node_attrs(html)
    assert len(nodes) == 12
    xs = [float(nodes[n]["x"]) for n in ("utility-a", "intake-meter", "ats-1", "drups-1", "ups-1", "panel-a")]
    assert xs == sorted(xs) and len(set(xs)) == 6
    assert {n: (a["state"], a["tone"]) for n, a in nodes.items() if n in ("utility-a", "drups-1", "pdu-a1",
                                                                             "pdu-b1", "ats-1")} == {
        "utility-a": ("mains", "ok"), "drups-1": ("mains", "ok"), "pdu-a1": ("unknown", "stale"),
        "pdu-b1": ("unknown", "unknown"), "ats-1": ("none", "none")}
    assert html.count('class="pedge') == 12
    ups1 = app.state.ids["node:ups-1"]
    assert re.search(rf'data-node="{ups1}".*?data-role="reading" data-rated="false">90 kW · 45 %</text>', html, re.S)
    assert re.search(r'data-name="pdu-a1".*?data-role="state">Stale</text>', html, re.S)

    # What the site runs on, at a glance.
    assert re.search(r'class="card shadow-sm power-site tone-ok"[^>]*data-state="mains"', html)
    assert "On mains" in html and "2 of 6 devices not live" in html

    # Gauges: battery, kinetic, fuel (with autonomy), load; stale data marked not live.
    ids = app.state.ids
    assert f'id="pg-{ids["dc-ups1"]}-battery" min="0" max="100" low="30" high="70" optimum="100" value="100.0"' in html
    assert f'id="pg-{ids["dc-drups1"]}-fuel" min="0" max="100" low="20" high="50" optimum="100" value="62.0"' in html
    assert f'id="pg-{ids["dc-drups1"]}-kinetic"' in html and "Fuel autonomy at present load: 18.9 h" in html
    assert "Battery autonomy: 0.4 h" in html
    card = re.search(rf'<article class="card shadow-sm h-100 pdev tone-stale not-live" '
                     rf'data-device="{ids["dc-pdu-a1"]}".*?</article>', html, re.S)
    assert card and "Not live" in card.group(0) and "no data for 12 min" in card.group(0)
    assert 'data-role="message"><bdi>no answer within 4.5 s</bdi>' in card.group(0)  # why it is silent
    never = re.search(rf'<article [^>]*data-device="{ids["dc-pdu-b1"]}".*?</article>', html, re.S)
    assert never and "never read" in never.group(0) and 'data-tone="unknown"' in never.group(0)

    # PUE with its category, and the daily values (the table behind the chart).
    assert 'id="pue-value" data-pue="1.4">1.40</span>' in html
    assert "Category 1: IT power measured at the UPS output" in html
    assert "Facility 210 kW · IT 150 kW · DCiE 71 %" in html
    days = re.findall(r'<tr data-day="(\d{4}-\d\d-\d\d)"><td><bdi dir="ltr">[^<]+</bdi></td><td>([\d.]+)</td>', html)
    assert len(days) == 14 and all(1.3 < float(v) < 1.5 for _d, v in days)

    # Outages newest first; the newest is shown with its phases and figures.
    listed = re.findall(r'<tr data-outage="(\d+)"', html)
    assert listed == [str(ids["outage:big"]), str(ids["outage:blip"])]
    detail = re.search(r'<article id="outage-detail".*?</article>', html, re.S)
    assert detail
    text = detail.group(0)
    assert f'data-outage="{ids["outage:big"]}"' in text
    phases = re.findall(r'class="power-phase (done|skipped)" data-phase="([a-z_]+)"', text)
    assert phases == [("done", "mains_failed"), ("done", "ride_through"), ("done", "diesel_cranking"),
                      ("done", "diesel_on_load"), ("done", "mains_restored"), ("done", "retransfer")]
    assert "On the kinetic store" in text and "+7.8 s" in text and "+23 min 00 s" in text
    for fig, value in (("to_diesel", "7.8 s"), ("min_kinetic", "72 %"), ("diesel_run", "22 min 52 s"),
                       ("fuel_used", "48 L"), ("duration", "23 min 00 s"), ("min_battery", "—")):
        assert f'data-fig="{fig}">{value}</dd>' in text, fig
    assert text.count("<tr data-kind=") == 6 and "Retransfer: every device back on mains" in text

    # Recent power events.
    assert "dc-pdu-a1: communication lost (timeout)" in html and "Communication lost" in html


def test_power_page_in_arabic_is_mirrored(client: TestClient) -> None:
    html = client.get("/power?lang=ar").text
    assert 'dir="rtl"' in html and "على الشبكة العامة" in html and DC_AR in html
    nodes = _node_attrs(html)
    xs = [float(nodes[n]["x"]) for n in ("utility-a", "intake-meter", "ats-1", "drups-1", "ups-1")]
    assert xs == sorted(xs, reverse=True)  # power flows right to left
    assert 'transform="matrix(-1 0 0 1 ' in html and 'data-mirror="true"' in html
    assert "بيانات قديمة" in html and "فئة القياس" not in html and "الفئة 1" in html
    client.get("/power?lang=en")


def test_outage_selection(client: TestClient, app: FastAPI) -> None:
    ids = app.state.ids
    html = client.get(f"/power?outage={ids['outage:blip']}").text
    detail = re.search(r'<article id="outage-detail".*?</article>', html, re.S)
    assert detail and f'data-outage="{ids["outage:blip"]}"' in detail.group(0)
    phases = dict((p, s) for s, p in re.findall(r'class="power-phase (done|skipped)" data-phase="([a-z_]+)"',
                                                detail.group(0)))
    assert phases["diesel_cranking"] == phases["diesel_on_load"] == "skipped" and phases["ride_through"] == "done"
    assert "On battery" in detail.group(0) and 'data-fig="min_battery">97 %</dd>' in detail.group(0)
    assert re.search(rf'<tr data-outage="{ids["outage:blip"]}" data-status="closed" class="table-active" '
                     r'aria-current="true">', html)
    for bad in ("abc", "-1", "0", "99999999999999999999", "123456"):
        resp = client.get(f"/power?outage={bad}")
        assert resp.status_code == 200, bad
        assert f'<article id="outage-detail" data-outage="{ids["outage:big"]}"' in resp.text, bad


def test_nothing_configured_keeps_the_empty_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        assert views.power_view(s) is None
    engine.dispose()


# --------------------------------------------------------------------------- strings


def test_power_js_strings_exist() -> None:
    """Every literal key power.js asks for is in the catalogue (the page hands the script a subset)."""
    catalog = json.loads((web_dir("i18n") / "en.json").read_text(encoding="utf-8"))
    script = (web_dir("static") / "power.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bt\('([a-z_]+\.[a-z_]+)'(?!\s*\+)", script))
    used |= set(re.findall(r"'(power\.live_[a-z]+)'", script))  # the live status texts
    used |= {f"pue.cat{n}" for n in (1, 2, 3)}  # t('pue.cat' + category)
    assert len(used) > 15
    assert sorted(used - set(catalog)) == []
    from infra_mgr.web.power_pages import _POWER_JS_PREFIXES

    assert all(key.startswith(_POWER_JS_PREFIXES) for key in used)


# --------------------------------------------------------------------------- readings chart


def _selected(html: str, select_id: str) -> str | None:
    block = re.search(rf'<select [^>]*id="{select_id}".*?</select>', html, re.S)
    assert block, select_id
    found = re.search(r'<option value="([^"]*)"[^>]*selected', block.group(0))
    return found.group(1) if found else None


def _options(html: str, select_id: str) -> list[tuple[str, str]]:
    block = re.search(rf'<select [^>]*id="{select_id}".*?</select>', html, re.S)
    assert block, select_id
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', block.group(0))


def test_chart_readings_are_stored_or_reported_numeric_ones(app: FastAPI) -> None:
    ids = app.state.ids
    with Session(app.state.engine) as s:
        view = views.power_view(s)
        assert view is not None
        readings = views.chart_readings(s, view.devices)
    # dc-ups1 reports battery and load now and has output power in the store; ups.status is text.
    assert readings[ids["dc-ups1"]] == ["ups.load", "battery.charge", "battery.runtime", "output.power"]
    assert readings[ids["dc-drups1"]] == ["output.power", "kinetic.level", "fuel.day.level", "fuel.main.level"]
    assert readings[ids["dc-pdu-b1"]] == []


def test_readings_card_defaults_and_selection(client: TestClient, app: FastAPI) -> None:
    ids = app.state.ids
    html = client.get("/power?lang=en").text
    # The first critical UPS or DRUPS (by name: the DRUPS), its first numeric reading (no battery
    # charge on a DRUPS), the last hour; the card links to the same series for browsers without scripts.
    assert _selected(html, "chart-device") == str(ids["dc-drups1"])
    assert _selected(html, "chart-reading") == "output.power"
    assert _selected(html, "chart-range") == "1h"
    assert [v for v, _ in _options(html, "chart-range")] == ["1h", "6h", "24h", "7d", "90d"]
    assert ("output.power", "Output power — \u2068output.power\u2069 (kW)") in _options(html, "chart-reading")
    assert (str(ids["dc-ups1"]), "\u2068dc-ups1\u2069 (UPS)") in _options(html, "chart-device")
    link = re.search(r'<a href="([^"]+)" id="reading-chart-json">', html)
    assert link and link.group(1).startswith(f"/api/v1/power/series?device_id={ids['dc-drups1']}&amp;name=output.power")
    assert "max_points=720" in link.group(1) and "The chart needs JavaScript" in html
    chart = json.loads(re.search(r'<script type="application/json" id="power-chart">(.*?)</script>', html, re.S)
                       .group(1))  # type: ignore[union-attr]
    assert chart["device"] == ids["dc-drups1"] and chart["ranges"]["6h"]["live"] and not chart["ranges"]["24h"]["live"]

    # A linked chart: the query's selection, its readings with labels and units.
    html = client.get(f"/power?chart_device={ids['dc-ups1']}&chart_reading=battery.charge&chart_range=7d").text
    assert (_selected(html, "chart-device"), _selected(html, "chart-reading"), _selected(html, "chart-range")) == (
        str(ids["dc-ups1"]), "battery.charge", "7d")
    assert [v for v, _ in _options(html, "chart-reading")] == ["ups.load", "battery.charge", "battery.runtime",
                                                               "output.power"]
    assert ("battery.runtime", "Battery runtime — \u2068battery.runtime\u2069 (s)") in _options(html, "chart-reading")
    link = re.search(r'<a href="([^"]+)" id="reading-chart-json">', html)
    assert link and "name=battery.charge" in link.group(1) and "max_points=2016" in link.group(1)
    series = client.get(link.group(1).replace("&amp;", "&"))
    assert series.status_code == 200 and series.json()["unit"] == "%"

    # Nonsense falls back to the defaults; a reading the device lacks to its default reading.
    html = client.get("/power?chart_device=abc&chart_reading=ups.status&chart_range=2y").text
    assert (_selected(html, "chart-device"), _selected(html, "chart-reading"), _selected(html, "chart-range")) == (
        str(ids["dc-drups1"]), "output.power", "1h")
    html = client.get(f"/power?chart_device={ids['dc-ups2']}&chart_reading=kinetic.level").text
    assert (_selected(html, "chart-device"), _selected(html, "chart-reading")) == (
        str(ids["dc-ups2"]), "battery.charge")
    # A device without numeric readings: nothing to choose, and the card says why.
    html = client.get(f"/power?chart_device={ids['dc-pdu-b1']}").text
    assert _selected(html, "chart-device") == str(ids["dc-pdu-b1"])
    assert re.search(r'<select [^>]*id="chart-reading" name="chart_reading" disabled>', html)
    assert "This device has no numeric readings recorded yet." in html and 'id="reading-chart-json"' not in html


def test_readings_card_in_arabic(client: TestClient, app: FastAPI) -> None:
    ids = app.state.ids
    html = client.get(f"/power?lang=ar&chart_device={ids['dc-ups1']}&chart_reading=battery.charge").text
    assert ("battery.charge", "شحن البطارية — \u2068battery.charge\u2069 (٪)") in _options(html, "chart-reading")
    assert "القراءات" in html and "آخر 24 ساعة" in html
    # The language switch keeps the chart.
    toggle = re.search(r'id="lang-toggle" href="([^"]+)"', html)
    assert toggle and "chart_reading=battery.charge" in toggle.group(1)
    client.get("/power?lang=en")


# --------------------------------------------------------------------------- figures that add up


def test_pue_it_figure_is_the_sum_of_the_it_cards(app: FastAPI) -> None:
    """PUE's IT kW is the sum of the IT devices' kW as their cards show them (to 0.1 kW each)."""
    ids = app.state.ids
    now = utcnow()
    with Session(app.state.engine) as s:  # never committed: the module's seed stays as it is
        for name, watts in (("dc-ups1", 90_044.0), ("dc-ups2", 60_044.0)):
            dev = s.get(PowerDevice, ids[name])
            assert dev is not None
            dev.readings = {**dev.readings, "ups.realpower": watts}
            s.add(dev)
        s.flush()
        cards = {d.name: d for d in views.status(s, now).devices}
        pue = views.pue_now(s)
        s.rollback()
    assert (cards["dc-ups1"].kw, cards["dc-ups2"].kw) == (90.0, 60.0)
    assert pue.it_kw == cards["dc-ups1"].kw + cards["dc-ups2"].kw


def test_daily_pue_without_data_says_no_data(app: FastAPI, client: TestClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Days without stored readings are no data (None, an empty state), never rows of zeros."""
    real = views.pue_daily
    later = utcnow() + dt.timedelta(days=400)  # a window the seed's readings do not reach
    monkeypatch.setattr(power_pages.views, "pue_daily",
                        lambda session, store, days, now=None: real(session, store, days, now=later))
    html = client.get("/power").text
    with Session(app.state.engine) as s:
        daily = views.pue_daily(s, views.TelemetryStore(app.state.engine), 14)
    assert not daily.has_data and all(d.pue is None and d.facility_kw_avg is None and d.it_kw_avg is None
                                      for d in daily.days)
    assert 'id="pue-table-empty"' in html and "No daily values yet" in html
    assert 'id="pue-table"' not in html and "<tr data-day=" not in html


def test_live_outages_card_agrees_with_the_banner(app: FastAPI, client: TestClient) -> None:
    """One answer of /power/chain.json holds the banner's open outage and the Outages card rendered
    from the same view: during an outage both say it is in progress; once it ends neither does,
    and the restore the timeline lists is a done phase, not "did not happen"."""
    with Session(app.state.engine) as s:
        site_id = s.get(PowerDevice, app.state.ids["dc-ups1"]).site_id  # type: ignore[union-attr]
        start = utcnow() - dt.timedelta(seconds=20)
        row = Outage(site_id=site_id, status="open", started_at=start, timeline=[
            {"time": start.isoformat(), "kind": "power.mains_failed", "device": "dc-intake",
             "message": "dc-intake: mains failed"}])
        s.add(row)
        s.commit()
        oid = row.id
    try:
        data = _chain(client)
        body = data["outages_html"]
        assert data["open_outage"]["id"] == oid and f'data-open="{oid}"' in body
        assert re.search(rf'<article id="outage-detail" data-outage="{oid}" data-status="open"', body)
        assert re.search(r'data-phase="mains_restored">.*?not yet', body, re.S) and "did not happen" not in body
        with Session(app.state.engine) as s:
            row = s.get(Outage, oid)
            assert row is not None
            row.status, row.ended_at = "closed", utcnow()
            row.mains_restored_at = row.ended_at
            row.timeline = [*row.timeline, {"time": row.ended_at.isoformat(), "kind": "power.mains_restored",
                                            "device": "dc-intake", "message": "dc-intake: mains restored"}]
            s.add(row)
            s.commit()
        data = _chain(client)
        body = data["outages_html"]
        assert data["open_outage"] is None and 'data-open=""' in body and "ongoing" not in body
        assert re.search(rf'<article id="outage-detail" data-outage="{oid}" data-status="closed"', body)
        assert 'class="power-phase done" data-phase="mains_restored"' in body
        assert 'data-kind="power.mains_restored"' in body
    finally:
        with Session(app.state.engine) as s:
            s.delete(s.get(Outage, oid))
            s.commit()


def test_a_node_without_telemetry_shows_its_rating_as_a_rating(client: TestClient, app: FastAPI) -> None:
    """panel-a (250 kW, no device) is a rating, never shown as if it were a measured load."""
    panel = app.state.ids["node:panel-a"]
    ups1 = app.state.ids["node:ups-1"]
    for lang, rated in (("en", "rated 250 kW"), ("ar", "القدرة المقننة 250 ك.واط")):
        html = client.get(f"/power?lang={lang}").text
        assert re.search(rf'data-node="{panel}".*?<text class="pnode-reading fst-italic"[^>]*data-role="reading" '
                         rf'data-rated="true">{rated}</text>', html, re.S), lang
        assert re.search(rf'<li data-node="{panel}".*?data-role="reading" data-rated="true"[^>]*>{rated}</span>',
                         html, re.S), lang
        # a measured load stays as it was: plain, no "rated"
        assert re.search(rf'data-node="{ups1}".*?data-role="reading" data-rated="false">[^<]*</text>', html, re.S)
    client.get("/power?lang=en")
    js = (web_dir("static") / "power.js").read_text(encoding="utf-8")
    assert "t('power.node_rated'" in js  # the live page says it the same way


def _genset(readings: dict[str, Any]) -> views.DeviceLive:
    tank = views.Tank(capacity_l=2000, usable_fraction=0.85, curve={"25": 42, "50": 70, "75": 100, "100": 135},
                      rated_kw=500, level_reading="fuel.level")
    facts = views.DeviceFacts(7, "gen-1", "genset", None, "ok", "mains", (), utcnow(), 5.0,
                              {"fuel.level": 80.0, **readings}, 500, tank)
    return views.device_live(facts, utcnow())


def test_a_stopped_generator_states_its_autonomy_at_rated_load(client: TestClient) -> None:
    """A generator carrying nothing has no "present load" autonomy (it would read the idle figure):
    its autonomy is at its rated load, and the page says which."""
    stopped = _genset({"engine.state": "stopped", "engine.load": 0.0, "output.power": 0.0})
    # 80 % of 2,000 L = 1,600 L, minus the 15 % unusable (300 L) = 1,300 L at 135 L/h (100 % on the curve)
    assert stopped.gauges.fuel_at == "rated" and stopped.gauges.fuel_h == pytest.approx(1300 / 135, abs=0.01)
    assert stopped.fuel_load_pct == 100.0
    running = _genset({"engine.state": "on_load", "output.power": 250.0})
    assert running.gauges.fuel_at == "present" and running.gauges.fuel_h == pytest.approx(1300 / 70, abs=0.01)
    html = client.get("/power").text  # the DRUPS carries the hall (32 %): present load, said so
    assert 'data-role="extra">Fuel autonomy at present load: 18.9 h</div>' in html
    assert 'data-role="extra">Fuel autonomy at rated load' not in html
    template = (web_dir("templates") / "power.html").read_text(encoding="utf-8")
    js = (web_dir("static") / "power.js").read_text(encoding="utf-8")
    assert "power.fuel_autonomy_rated" in template and "power.fuel_autonomy_rated" in js


def test_the_ups_own_load_reading_is_labelled_as_reported(client: TestClient) -> None:
    """One load per device: the card's gauge is kW ÷ capacity; the UPS's own ``ups.load`` reading,
    charted in the Readings card, is named as the UPS's report, not as a second "UPS load"."""
    en = json.loads((web_dir("i18n") / "en.json").read_text(encoding="utf-8"))
    ar = json.loads((web_dir("i18n") / "ar.json").read_text(encoding="utf-8"))
    assert en["reading.ups.load"] == "UPS load as the UPS reports it" and "يبلغ عنه" in ar["reading.ups.load"]
    assert en["gauge.load"] == "Load"
