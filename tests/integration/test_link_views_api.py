"""The branch link audit's read views and API on SQLite and a real PostgreSQL, over rows inserted by
hand: uplinks, their polled state, status changes, reachability probes and telemetry samples
(raw and rolled up). Each rule shows on the branch made wrong for it, ranked worst first; the
report's CSV reads in Arabic; a chart's resolution follows its range; reads are for every role,
overrides need devices.write; unknown links are 404 and bad parameters 422 naming the field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlmodel import Session

from infra_mgr.inventory.models import Device, Interface, Site
from infra_mgr.network import link_views
from infra_mgr.network.audit import AuditThresholds
from infra_mgr.network.linkfacts import (
    DEVICE_SERIES_KIND,
    IF_SERIES_KIND,
    S_ERROR_PCT,
    S_IN_BPS,
    S_LOSS_PCT,
    S_SNMP_LOSS_PCT,
    S_UTIL_PCT,
)
from infra_mgr.network.models import DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.telemetry.store import TelemetryStore
from infra_mgr.telemetry.store import now_ms as clock_ms
from infra_mgr.web.i18n import Translator

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
API = "/api/v1"

# site code → the reason codes the seed makes it show (empty: healthy)
EXPECTED: dict[str, list[str]] = {
    "JED-B01": [],
    "JED-B02": ["link_down"],
    "JED-B03": ["errors"],
    "JED-B04": ["speed"],
    "JED-B05": ["neighbor"],
    "JED-B06": ["utilisation"],
    "JED-B07": ["utilisation"],
    "JED-B08": ["loss"],
    "JED-B09": ["no_snmp"],
    "JED-B10": ["no_uplink"],
    "JED-B11": ["no_data"],
}


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _seed(engine: Engine, now: int) -> dict[str, int]:
    """One router per branch with one uplink Gi0/0 toward HQ; each branch wrong in one way."""
    store = TelemetryStore(engine)
    ids: dict[str, int] = {}
    with Session(engine) as s:
        hq = Site(code="JED-HQ", name_en="Headquarters", name_ar="المقر الرئيسي", kind="hq")
        s.add(hq)
        s.flush()
        hq_dev = Device(site_id=hq.id or 0, hostname="jed-hq-dist01")
        s.add(hq_dev)
        s.flush()
        s.add(Interface(device_id=hq_dev.id or 0, name="Te1/0/1"))
        for code in EXPECTED:
            n = code[-2:]
            site = Site(code=code, name_en=f"Branch {n}", name_ar=f"فرع {n}", kind="branch")
            s.add(site)
            s.flush()
            dev = Device(site_id=site.id or 0, hostname=f"jed-b{n}-rtr01")
            s.add(dev)
            s.flush()
            iface = Interface(device_id=dev.id or 0, name="Gi0/0", speed_bps=10**9)
            spare = Interface(device_id=dev.id or 0, name="Gi0/1", speed_bps=10**9)
            s.add_all([iface, spare])
            s.flush()
            iid, did = iface.id or 0, dev.id or 0
            ids[code], ids[f"{code}/dev"], ids[f"{code}/spare"] = iid, did, spare.id or 0
            s.add(Uplink(interface_id=iid, device_id=did, site_id=site.id or 0, source="lldp",
                         is_uplink=code != "JED-B10", manual=code == "JED-B10",
                         expected_speed_bps=10**9, expected_speed_source="port_name",
                         expected_neighbor="jed-hq-dist01", expected_neighbor_source="first_seen"))
            s.add(UplinkState(
                interface_id=iid, ts_ms=now - MIN, oper_status="down" if code in ("JED-B02", "JED-B10") else "up",
                oper_since=_utc(now - 18 * MIN) if code == "JED-B02" else _utc(now - 3 * DAY),
                speed_bps=10**8 if code == "JED-B04" else 10**9,
                neighbor="jed-b12-sw01" if code == "JED-B05" else "jed-hq-dist01",
                in_bps=2e8, out_bps=1e8, util_pct=20.0, error_pct=0.0, poll_status="ok",
                last_ok_ms=now - 20 * MIN if code == "JED-B11" else now - MIN))
        # B02: three transitions in the last 24 h, one older that no longer counts.
        for at, status, prev in ((now - 3 * HOUR, "down", "up"), (now - 2 * HOUR, "up", "down"),
                                 (now - 18 * MIN, "down", "up"), (now - 2 * DAY, "down", "up")):
            s.add(LinkStatusChange(interface_id=ids["JED-B02"], at=_utc(at), status=status, previous=prev))
        # B09: only its last probe: ping answers, SNMP never.
        s.add(DeviceReach(device_id=ids["JED-B09/dev"], ts_ms=now - MIN, icmp_sent=3, icmp_received=3,
                          icmp_rtt_ms=2.5, snmp_sent=3, snmp_received=0))
        s.commit()

    for code in EXPECTED:
        if code == "JED-B09":
            continue
        did = ids[f"{code}/dev"]
        sids = {name: store.series_id(DEVICE_SERIES_KIND, did, name, "%") for name in (S_LOSS_PCT, S_SNMP_LOSS_PCT)}
        loss = 12.0 if code == "JED-B08" else 0.0
        store.write([(sids[S_LOSS_PCT], now - k * MIN, loss) for k in range(1, 4)]
                    + [(sids[S_SNMP_LOSS_PCT], now - k * MIN, 0.0) for k in range(1, 4)]
                    + [(sids[S_LOSS_PCT], now - 40 * MIN, 100.0)])  # outside the 15-min window
    # B03: errors 0.6 and 1.0 % in the window (mean 0.8), 50 % long before it.
    err = store.series_id(IF_SERIES_KIND, ids["JED-B03"], S_ERROR_PCT, "%")
    store.write([(err, now - 2 * MIN, 0.6), (err, now - MIN, 1.0), (err, now - 2 * HOUR, 50.0)])
    # Utilisation every 5 min for a day: B06 busy 10 % of the time (p95 95), the others quiet.
    width = 300_000
    base = (now // width) * width - DAY
    for code in EXPECTED:
        sid = store.series_id(IF_SERIES_KIND, ids[code], S_UTIL_PCT, "%")
        vals = [95.0 if code == "JED-B06" and k % 10 == 0 else (10.0 if code == "JED-B07" else 40.0)
                for k in range(288)]
        if code == "JED-B07":
            vals = vals[:264]  # its last two hours come after the roll-up
        store.write([(sid, base + k * width, v) for k, v in enumerate(vals)])
    # Traffic for the charts: a sample a minute for two days on B01.
    ib = store.series_id(IF_SERIES_KIND, ids["JED-B01"], S_IN_BPS, "bit/s")
    store.write([(ib, now - k * MIN, 1e8 + k) for k in range(1, 2 * 24 * 60)])
    store.rollup(now - HOUR)
    # B07: two hours at 97 % newer than its last roll-up: only the raw tail makes its p95 97.
    sid7 = store.series_id(IF_SERIES_KIND, ids["JED-B07"], S_UTIL_PCT, "%")
    store.write([(sid7, base + k * width, 97.0) for k in range(264, 288)])
    return ids


@pytest.fixture
def seeded(engine: Engine) -> tuple[dict[str, int], int]:
    now = clock_ms()
    return _seed(engine, now), now


@contextmanager
def _count_queries(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_views_name_each_branch_made_wrong(engine: Engine, seeded: tuple[dict[str, int], int]) -> None:
    ids, now = seeded
    with Session(engine) as s, _count_queries(engine) as queries:
        audits = link_views.audit_branches(s, now_ms=now, thresholds=AuditThresholds())
    assert len(queries) <= 13, queries  # a handful, whatever the number of branches and links
    got = {a.site_code: [r.code for r in a.reasons] for a in audits}
    assert got == EXPECTED
    assert "JED-HQ" not in got
    by = {a.site_code: a for a in audits}
    assert by["JED-B01"].state == "ok" and by["JED-B01"].score == 100
    assert by["JED-B02"].state == "down" and by["JED-B02"].reasons[0].params["flaps"] == 3
    assert by["JED-B02"].uplinks_detail[0].flaps_24h == 3
    assert by["JED-B03"].reasons[0].params["value"] == pytest.approx(0.8)
    assert by["JED-B06"].reasons[0].params["value"] == pytest.approx(95.0)
    assert by["JED-B07"].reasons[0].params["value"] == pytest.approx(97.0)
    assert by["JED-B08"].reach[0].icmp_loss_pct == pytest.approx(12.0)
    assert by["JED-B09"].reach[0].snmp_loss_pct == 100.0 and by["JED-B09"].reach[0].icmp_loss_pct == 0.0
    # the interface taken out by hand is listed, not audited
    assert by["JED-B10"].uplinks == 0 and by["JED-B10"].uplinks_detail[0].is_uplink is False
    assert by["JED-B10"].state == "unknown"
    # worst first: the down branch, then the degraded ones, then unknown, then ok
    assert [a.site_code for a in audits][0] == "JED-B02"
    assert [a.score for a in audits] == sorted(a.score for a in audits)
    assert audits[-1].site_code == "JED-B01"


def test_report_csv_in_arabic(engine: Engine, seeded: tuple[dict[str, int], int]) -> None:
    _, now = seeded
    with Session(engine) as s:
        audits = link_views.audit_branches(s, now_ms=now, thresholds=AuditThresholds())
    ar = link_views.audit_csv(audits, Translator("ar"))
    assert ar.startswith("\ufeff") and ar.encode("utf-8").startswith(b"\xef\xbb\xbf")
    lines = ar.lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[:4] == ["الموقع", "الاسم", "الحالة", "الدرجة"]
    assert len(lines) == 1 + len(EXPECTED)
    b02 = next(line for line in lines if line.startswith("JED-B02"))
    assert "فرع 02" in b02 and "متوقف" in b02 and "الوصلة الصاعدة Gi0/0 متوقفة" in b02 and "(3 تقلبات" in b02
    en = link_views.audit_csv(audits, Translator("en"))
    assert "uplink Gi0/0 down since" in en and "Branch 02" in en


def test_series_resolution_follows_the_range(engine: Engine, seeded: tuple[dict[str, int], int]) -> None:
    ids, now = seeded
    store = TelemetryStore(engine)
    with Session(engine) as s:
        hour = link_views.link_series(s, store, ids["JED-B01"], now - HOUR, now, names=[S_IN_BPS], max_points=5000,
                                      now_ms=now)
        month = link_views.link_series(s, store, ids["JED-B01"], now - 30 * DAY, now, names=[S_IN_BPS], now_ms=now)
        none = link_views.link_series(s, store, 10**9, now - HOUR, now)
    assert none is None
    assert hour is not None and month is not None
    assert hour.resolution_s == 0 and 55 <= len(hour.series[0].points) <= 60
    assert month.resolution_s == 3600
    pts = month.series[0].points
    assert 45 <= len(pts) <= 50  # two days of hours, the newest from the raw tail
    assert pts[-1][0] >= now - 2 * HOUR


def test_api_audit_and_filters(client_for: Callable[[str], TestClient], seeded: tuple[dict[str, int], int]) -> None:
    viewer = client_for("viewer")
    resp = viewer.get(f"{API}/link-audit")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert {a["site_code"]: [r["code"] for r in a["reasons"]] for a in body} == EXPECTED
    assert body[0]["site_code"] == "JED-B02" and body[0]["uplinks_detail"][0]["interface"] == "Gi0/0"
    down = viewer.get(f"{API}/link-audit", params={"state": "down"}).json()
    assert [a["site_code"] for a in down] == ["JED-B02"]
    one = viewer.get(f"{API}/link-audit", params={"site": "JED-B03"}).json()
    assert [a["site_code"] for a in one] == ["JED-B03"]
    summary = viewer.get(f"{API}/link-audit/summary").json()
    assert summary["counts"] == {"ok": 1, "degraded": 7, "down": 1, "unknown": 2} and summary["total"] == 11
    ups = viewer.get(f"{API}/uplinks", params={"site": "JED-B04"}).json()
    assert [(u["device"], u["interface"], u["speed_bps"]) for u in ups] == [("jed-b04-rtr01", "Gi0/0", 10**8)]
    assert len(viewer.get(f"{API}/uplinks", params={"device": "jed-b05-rtr01"}).json()) == 1


def test_api_series_and_changes(client_for: Callable[[str], TestClient], seeded: tuple[dict[str, int], int]) -> None:
    ids, now = seeded
    viewer = client_for("viewer")
    iid = ids["JED-B01"]
    start = _utc(now - 30 * DAY).isoformat()
    month = viewer.get(f"{API}/uplinks/{iid}/series", params={"start": start, "end": str(now), "names": S_IN_BPS})
    assert month.status_code == 200, month.text
    assert month.json()["resolution_s"] == 3600 and month.json()["series"][0]["unit"] == "bit/s"
    hour = viewer.get(f"{API}/uplinks/{iid}/series", params={"start": str(now - HOUR), "end": str(now)}).json()
    assert hour["resolution_s"] in (0, 300) and hour["series"][0]["points"]
    changes = viewer.get(f"{API}/uplinks/{ids['JED-B02']}/changes").json()
    assert [c["status"] for c in changes] == ["down", "up", "down", "down"]
    recent = viewer.get(f"{API}/uplinks/{ids['JED-B02']}/changes", params={"since": _utc(now - DAY).isoformat(),
                                                                  "limit": 2}).json()
    assert [c["status"] for c in recent] == ["down", "up"]


def test_api_errors_name_the_field(client_for: Callable[[str], TestClient],
                                   seeded: tuple[dict[str, int], int]) -> None:
    ids, _ = seeded
    viewer = client_for("viewer")
    iid = ids["JED-B01"]
    for url, params, loc in (
        (f"{API}/link-audit", {"state": "bad"}, ["query", "state"]),
        (f"{API}/link-audit", {"bogus": "1"}, ["query", "bogus"]),
        (f"{API}/uplinks/{iid}/series", {"start": "yesterday"}, ["query", "start"]),
        (f"{API}/uplinks/{iid}/series", {"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"},
         ["query", "start"]),
        (f"{API}/uplinks/{iid}/series", {"names": "in_bps,nope"}, ["query", "names"]),
        (f"{API}/uplinks/{iid}/changes", {"limit": "0"}, ["query", "limit"]),
        (f"{API}/uplinks/{iid}/series", {"start": "\u00b2"}, ["query", "start"]),  # a digit, but not ASCII
        (f"{API}/uplinks/{iid}/changes", {"since": "\u0663\u0660"}, ["query", "since"]),  # Arabic-Indic digits
        (f"{API}/uplinks/0/series", {}, ["path", "interface_id"]),
    ):
        resp = viewer.get(url, params=params)
        assert resp.status_code == 422, (url, params, resp.text)
        assert [e["loc"] for e in resp.json()["detail"]] == [loc], resp.text
    for url in (f"{API}/uplinks/999999/series", f"{API}/uplinks/999999/changes"):
        resp = viewer.get(url)
        assert resp.status_code == 404 and "999999" in resp.json()["detail"]
    resp = viewer.get(f"{API}/link-audit", params={"site": "JED-NOPE"})
    assert resp.status_code == 404 and resp.json()["errors"][0]["loc"] == ["query", "site"]


def test_api_overrides_need_devices_write(client_for: Callable[[str], TestClient],
                                          seeded: tuple[dict[str, int], int]) -> None:
    ids, _ = seeded
    viewer, netops = client_for("viewer"), client_for("netops")
    iid = ids["JED-B05"]
    body = {"is_uplink": True, "expected_neighbor": "jed-b12-sw01", "expected_speed_bps": 10**9}
    assert viewer.put(f"{API}/uplinks/{iid}", json=body).status_code == 403
    assert viewer.delete(f"{API}/uplinks/{iid}/manual").status_code == 403
    resp = netops.put(f"{API}/uplinks/{iid}", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["manual"] is True and resp.json()["expected_neighbor"] == "jed-b12-sw01"
    assert resp.json()["expected_neighbor_source"] == "manual"
    # the cabling is now what was asked for: B05 is healthy
    b05 = netops.get(f"{API}/link-audit", params={"site": "JED-B05"}).json()[0]
    assert b05["reasons"] == [] and b05["state"] == "ok"
    # a spare port taken in by hand becomes an uplink of its branch
    spare = netops.put(f"{API}/uplinks/{ids['JED-B01/spare']}", json={"is_uplink": True})
    assert spare.status_code == 200, spare.text
    assert spare.json()["interface"] == "Gi0/1" and spare.json()["manual"] is True
    assert netops.get(f"{API}/link-audit", params={"site": "JED-B01"}).json()[0]["uplinks"] == 2
    cleared = netops.delete(f"{API}/uplinks/{iid}/manual")
    assert cleared.status_code == 200, cleared.text
    assert cleared.json() is None or cleared.json()["manual"] is False
    assert netops.put(f"{API}/uplinks/999999", json=body).status_code == 404
    bad = netops.put(f"{API}/uplinks/{iid}", json={"expected_speed_bps": 0})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "expected_speed_bps"]
    for body in ({"expected_neighbor": "jed-hq\u0000dist1"}, {"expected_speed_bps": 10**15}):
        assert netops.put(f"{API}/uplinks/{iid}", json=body).status_code == 422, body
    extra = netops.put(f"{API}/uplinks/{iid}", json={"speed": 1})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "speed"]


def test_cli_audit_and_overrides(sqlite_engine: Engine, tmp_path: Any) -> None:
    """``infra-mgr audit links`` and ``uplinks set/list/clear`` as a person runs them."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    ids = _seed(sqlite_engine, clock_ms())
    exe = Path(sys.executable).with_name("infra-mgr")
    env = {**os.environ, "INFRA_MGR_DATA_DIR": str(tmp_path / "data"),
           "INFRA_MGR_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
           "INFRA_MGR_SECRET_KEY": "test-master-secret-0123456789", "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=120)

    out = run("audit", "links", "--json")
    assert out.returncode == 0, out.stderr
    assert {a["site_code"]: [r["code"] for r in a["reasons"]] for a in json.loads(out.stdout)} == EXPECTED
    table = run("audit", "links")
    assert table.returncode == 0 and "JED-B02" in table.stdout and "uplink Gi0/0 down since" in table.stdout
    assert table.stdout.index("JED-B02") < table.stdout.index("JED-B01")
    csv_ar = run("audit", "links", "--csv", "--lang", "ar")
    assert csv_ar.stdout.startswith("\ufeff") and "الوصلة الصاعدة Gi0/0 متوقفة" in csv_ar.stdout
    assert run("audit", "links", "--site", "JED-NOPE").returncode == 1
    done = run("uplinks", "set", "jed-b04-rtr01", "Gi0/0", "--expected-speed", "100M")
    assert done.returncode == 0, done.stderr
    b04 = json.loads(run("audit", "links", "--json", "--site", "JED-B04").stdout)[0]
    assert b04["state"] == "ok"  # 100 Mb/s is now what the branch is expected to run at
    listed = json.loads(run("uplinks", "list", "--site", "JED-B04", "--json").stdout)
    assert [(u["manual"], u["expected_speed_bps"]) for u in listed] == [(True, 10**8)]
    bad = run("uplinks", "set", "jed-b04-rtr01", "Gi9/9")
    assert bad.returncode == 1 and "no interface 'Gi9/9'" in bad.stderr
    assert run("uplinks", "clear", "jed-b04-rtr01", "Gi0/0").returncode == 0
    assert ids["JED-B04"] > 0
