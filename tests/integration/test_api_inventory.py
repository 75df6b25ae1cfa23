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
    assert set(body) == {"detail"} and all(set(e) == {"loc", "msg", "type"} for e in body["detail"])
    assert {("body", "code"), ("body", "latitude")} <= {tuple(e["loc"]) for e in body["detail"]}
    resp = admin.post("/api/v1/sites", json={**SITE, "colour": "red"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"][-1] == "colour"


def test_conflicts_and_references(admin: TestClient) -> None:
    site = _site(admin)
    dup = admin.post("/api/v1/sites", json=SITE)
    assert dup.status_code == 409 and dup.json()["errors"][0]["loc"][-1] == "code"
    bad_ref = admin.post("/api/v1/devices", json={"site_id": 999999, "hostname": "r1"})
    assert bad_ref.status_code == 422 and bad_ref.json()["detail"][0]["loc"][-1] == "site_id"
    dev = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "jed-b07-rtr1",
                                              "management_address": "127.20.7.1", "role": "router"})
    assert dev.status_code == 201, dev.text
    in_use = admin.delete(f"/api/v1/sites/{site['id']}")
    assert in_use.status_code == 409
    assert admin.get(f"/api/v1/sites/{site['id']}").status_code == 200
    bad_ip = admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "x", "management_address": "1.2.3"})
    assert bad_ip.status_code == 422 and bad_ip.json()["detail"][0]["loc"][-1] == "management_address"


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
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "cursor"


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
    assert same.status_code == 422 and same.json()["detail"][0]["loc"][-1] == "b_interface_id"
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
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "site_id"


def test_health_and_metrics(admin: TestClient) -> None:
    health = admin.get("/healthz").json()
    assert health["status"] == "ok"
    admin.get("/api/v1/sites")
    metrics = admin.get("/metrics").text
    assert 'infra_mgr_http_requests_total{method="GET",route="/api/v1/sites",status="200"}' in metrics
    spec = admin.get("/api/v1/openapi.json").json()
    assert "/api/v1/prefixes/{obj_id}/allocate" in spec["paths"]
    assert admin.get("/api/docs").status_code == 200


def test_unknown_query_parameters_are_refused_by_name(admin: TestClient) -> None:
    """A misspelt filter is a 422 naming it, never the whole table; on lists, details and hand-written
    routes alike."""
    site = _site(admin)
    for url in ("/api/v1/prefixes?sit=JED-B07", f"/api/v1/sites/{site['id']}?verbose=1",
                "/api/v1/changes?object=site", "/api/v1/credentials?kind=snmp&colour=red"):
        resp = admin.get(url)
        assert resp.status_code == 422, (url, resp.text)
        [problem] = resp.json()["detail"]
        assert problem["loc"][0] == "query" and problem["type"] == "extra_forbidden", problem
        assert problem["loc"][1] in {"sit", "verbose", "object", "colour"}
    assert admin.get("/api/v1/prefixes?site=JED-B07&limit=5").status_code == 200


def test_prefixes_filter_by_site_code(admin: TestClient) -> None:
    b07, b08 = _site(admin), _site(admin, code="JED-B08", name_en="Other")
    for site, prefix in ((b07, "10.64.7.0/24"), (b07, "10.65.7.0/24"), (b08, "10.64.8.0/24")):
        assert admin.post("/api/v1/prefixes", json={"prefix": prefix, "site_id": site["id"]}).status_code == 201
    got = admin.get("/api/v1/prefixes?site=JED-B07").json()["results"]
    assert sorted(p["prefix"] for p in got) == ["10.64.7.0/24", "10.65.7.0/24"]
    assert admin.get("/api/v1/prefixes?site=JED-B99").json()["results"] == []


def test_malformed_json_names_the_body(admin: TestClient) -> None:
    for raw in (b'{"code": "JED-B07", "name_en": ', b"\xff\xfe{"):
        resp = admin.post("/api/v1/sites", content=raw, headers={"Content-Type": "application/json"})
        assert resp.status_code == 422, resp.text
        [problem] = resp.json()["detail"]
        assert problem["loc"] == ["body"] and "malformed JSON" in problem["msg"], problem


def test_error_bodies_are_the_declared_shapes(admin: TestClient, app: Any) -> None:
    """Each error status an operation answers with is in its OpenAPI entry, with the body's schema."""
    doc = admin.get("/api/v1/openapi.json").json()
    patch = doc["paths"]["/api/v1/sites/{obj_id}"]["patch"]["responses"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(patch)
    assert patch["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/HTTPValidationError")
    assert patch["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    for path, ops in doc["paths"].items():
        for method, op in ops.items() if path.startswith("/api/v1/") else ():
            assert "422" in op["responses"] and "401" in op["responses"], (method, path)
    error = doc["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["detail"]["type"] == "string" and "errors" in error["properties"]
    missing = admin.get("/api/v1/sites/999999")
    assert missing.status_code == 404 and missing.json() == {"detail": "site 999999 not found", "errors": []}
    anonymous = TestClient(app).get("/api/v1/sites")
    assert anonymous.status_code == 401 and isinstance(anonymous.json()["detail"], str)
