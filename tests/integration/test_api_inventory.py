"""Inventory API against SQLite and a real PostgreSQL: CRUD, errors, pagination, filters, history."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

SITE = {"code": "JED-B07", "name_en": "Al Safa Branch", "name_ar": "بلدية الصفا الفرعية", "kind": "branch",
        "latitude": 21.58, "longitude": 39.21}


def _site(admin: TestClient, **over: Any) -> dict[str, Any]:
    resp = admin.post("/api/v1/sites", json={**SITE, **over})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_site_crud_and_arabic_text(admin: TestClient) -> None:
    site = _site(admin)
    assert site["name_ar"] == "بلدية الصفا الفرعية"
    got = admin.get(f"/api/v1/sites/{site['id']}").json()
    assert got["code"] == "JED-B07" and got["kind"] == "branch"
    patched = admin.patch(f"/api/v1/sites/{site['id']}", json={"status": "planned"}).json()
    assert patched["status"] == "planned" and patched["name_en"] == SITE["name_en"]
    assert admin.delete(f"/api/v1/sites/{site['id']}").status_code == 204
    assert admin.get(f"/api/v1/sites/{site['id']}").status_code == 404


def test_validation_errors_name_the_field(admin: TestClient) -> None:
    resp = admin.post("/api/v1/sites", json={**SITE, "code": "bad code", "latitude": 123})
    assert resp.status_code == 422
    body = resp.json()
    fields = {e["field"] for e in body["errors"]}
    assert {"code", "latitude"} <= fields
    assert "code" in body["detail"]
    resp = admin.post("/api/v1/sites", json={**SITE, "colour": "red"})
    assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "colour"


def test_conflicts_and_references(admin: TestClient) -> None:
    site = _site(admin)
    dup = admin.post("/api/v1/sites", json=SITE)
    assert dup.status_code == 409 and dup.json()["errors"][0]["field"] == "code"
    bad_ref = admin.post("/api/v1/devices", json={"site_id": 999999, "hostname": "r1"})
    assert bad_ref.status_code == 422 and bad_ref.json()["errors"][0]["field"] == "site_id"
    dev = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "jed-b07-rtr1",
                                              "management_address": "127.20.7.1", "role": "router"})
    assert dev.status_code == 201, dev.text
    in_use = admin.delete(f"/api/v1/sites/{site['id']}")
    assert in_use.status_code == 409
    assert admin.get(f"/api/v1/sites/{site['id']}").status_code == 200
    bad_ip = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "x", "management_address": "1.2.3"})
    assert bad_ip.status_code == 422 and bad_ip.json()["errors"][0]["field"] == "management_address"


def test_pagination_and_filters(admin: TestClient) -> None:
    site = _site(admin)
    other = _site(admin, code="JED-B08", name_en="Other")
    dev = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "sw1"}).json()
    admin.post("/api/v1/devices", json={"site_id": other["id"], "hostname": "sw2"})
    for i in range(1, 26):
        r = admin.post("/api/v1/interfaces", json={"device_id": dev["id"], "name": f"Gi1/0/{i}",
                                                   "oper_status": "up" if i % 2 else "down"})
        assert r.status_code == 201, r.text
    seen: list[str] = []
    url = f"/api/v1/interfaces?device_id={dev['id']}&limit=10"
    page = admin.get(url).json()
    while True:
        seen += [i["name"] for i in page["results"]]
        if not page["next"]:
            break
        page = admin.get(url + f"&cursor={page['next']}").json()
    assert len(seen) == 25 and len(set(seen)) == 25
    downs = admin.get(f"/api/v1/interfaces?device_id={dev['id']}&oper_status=down&limit=100").json()["results"]
    assert len(downs) == 12 and all(i["oper_status"] == "down" for i in downs)
    by_code = admin.get("/api/v1/devices?site=JED-B08").json()["results"]
    assert [d["hostname"] for d in by_code] == ["sw2"]
    assert admin.get("/api/v1/sites?q=other").json()["results"][0]["code"] == "JED-B08"
    bad = admin.get("/api/v1/sites?cursor=garbage!!")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "cursor"


def test_history_records_who_and_before_after(admin: TestClient) -> None:
    site = _site(admin)
    admin.patch(f"/api/v1/sites/{site['id']}", json={"name_en": "Al Safa"})
    changes = admin.get(f"/api/v1/changes?object_type=site&object_id={site['id']}").json()["results"]
    assert [c["action"] for c in changes] == ["create", "update"]
    upd = changes[1]
    assert upd["actor"] == "u_admin"
    assert upd["before"] == {"name_en": "Al Safa Branch"} and upd["after"] == {"name_en": "Al Safa"}
    admin.delete(f"/api/v1/sites/{site['id']}")
    last = admin.get(f"/api/v1/changes?object_type=site&object_id={site['id']}").json()["results"][-1]
    assert last["action"] == "delete" and last["before"]["code"] == "JED-B07"


def test_links_are_normalised_and_validated(admin: TestClient) -> None:
    site = _site(admin)
    d = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "sw1"}).json()
    a = admin.post("/api/v1/interfaces", json={"device_id": d["id"], "name": "Gi1"}).json()
    b = admin.post("/api/v1/interfaces", json={"device_id": d["id"], "name": "Gi2"}).json()
    link = admin.post("/api/v1/links", json={"a_interface_id": b["id"], "b_interface_id": a["id"], "source": "lldp"})
    assert link.status_code == 201
    assert link.json()["a_interface_id"] == a["id"]
    same = admin.post("/api/v1/links", json={"a_interface_id": a["id"], "b_interface_id": a["id"]})
    assert same.status_code == 422 and same.json()["errors"][0]["field"] == "b_interface_id"
    dup = admin.post("/api/v1/links", json={"a_interface_id": a["id"], "b_interface_id": b["id"]})
    assert dup.status_code == 409
    patched = admin.patch(f"/api/v1/links/{link.json()['id']}", json={"source": "cdp"})
    assert patched.status_code == 200 and patched.json()["source"] == "cdp"


def test_events_are_listed_newest_first(admin: TestClient) -> None:
    site = _site(admin)
    for i in range(3):
        r = admin.post("/api/v1/events", json={"kind": "device.new", "message": f"m{i}", "site_id": site["id"],
                                               "severity": "warning" if i == 2 else "info"})
        assert r.status_code == 201, r.text
    events = admin.get("/api/v1/events").json()["results"]
    assert [e["message"] for e in events] == ["m2", "m1", "m0"]
    assert [e["message"] for e in admin.get("/api/v1/events?severity=warning").json()["results"]] == ["m2"]
    bad = admin.post("/api/v1/events", json={"kind": "x", "site_id": 424242})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "site_id"


def test_health_and_metrics(admin: TestClient) -> None:
    health = admin.get("/healthz").json()
    assert health["status"] == "ok"
    admin.get("/api/v1/sites")
    metrics = admin.get("/metrics").text
    assert 'infra_mgr_http_requests_total{method="GET",route="/api/v1/sites",status="200"}' in metrics
    spec = admin.get("/api/v1/openapi.json").json()
    assert "/api/v1/prefixes/{obj_id}/allocate" in spec["paths"]
    assert admin.get("/api/docs").status_code == 200
