"""More input hygiene at the door: discovery addresses that are no device (broadcast, unspecified,
multicast, reserved) for seeds and targets alike, probes that must never turn a socket error into
a 500, sites that still hold things, searches with control characters, token names, the language
form's CSRF check, proxy headers, the vendor Swagger files, 405 ``Allow`` and 413 in OpenAPI."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.network.models import DiscoveryTarget

Clients = Callable[[str], TestClient]

NOT_DEVICES = ["255.255.255.255", "127.255.255.255/32", "0.0.0.0", "224.0.0.1", "240.0.0.1", "::", "ff02::1"]
SITE = {"code": "JED-H01", "name_en": "Hardening", "kind": "branch"}


def _site(client: TestClient, code: str = "JED-H01") -> dict[str, Any]:
    r = client.post("/api/v1/sites", json={**SITE, "code": code})
    assert r.status_code == 201, r.text
    return r.json()


# --------------------------------------------------------------------------- discovery addresses


@pytest.mark.parametrize("addr", NOT_DEVICES)
def test_non_device_addresses_are_refused_as_seeds_with_their_index(sqlite_admin: TestClient, addr: str) -> None:
    r = sqlite_admin.post("/api/v1/discovery/run", json={"seeds": ["127.0.0.1", addr], "timeout_s": 0.1})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "seeds", 1]], r.text


@pytest.mark.parametrize("addr", NOT_DEVICES)
def test_non_device_addresses_are_refused_as_targets(sqlite_admin: TestClient, addr: str) -> None:
    r = sqlite_admin.post("/api/v1/discovery/targets", json={"cidr": addr})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "cidr"]], r.text


def test_a_probe_socket_error_is_a_failure_not_an_exception() -> None:
    from infra_mgr.snmp import liveness

    class Refusing:
        def __init__(self, **_kw: Any) -> None:
            raise PermissionError(13, "Permission denied")

    with mock.patch.object(liveness, "SnmpSession", Refusing):
        assert asyncio.run(liveness.agent_alive("127.0.0.1", timeout_s=0.1)) is False


def test_stored_broadcast_target_is_skipped_and_the_run_still_answers(sqlite_admin: TestClient,
                                                                       sqlite_engine: Engine) -> None:
    site = _site(sqlite_admin)
    with Session(sqlite_engine) as s:  # stored before targets were checked at the door
        s.add(DiscoveryTarget(site_id=site["id"], cidr="255.255.255.255/32", role="seed"))
        s.add(DiscoveryTarget(site_id=site["id"], cidr="127.255.255.255/32", role="seed"))
        s.commit()
    r = sqlite_admin.post("/api/v1/discovery/run", json={"timeout_s": 0.1, "retries": 0})
    assert r.status_code == 422, r.text  # nothing left to discover, and it says why
    text = r.text
    assert "255.255.255.255" in text and "127.255.255.255" in text


# --------------------------------------------------------------------------- site delete


def test_site_holding_things_is_not_deleted(sqlite_admin: TestClient) -> None:
    site = _site(sqlite_admin)
    prefix = sqlite_admin.post("/api/v1/prefixes", json={"prefix": "10.9.0.0/24", "site_id": site["id"]})
    assert prefix.status_code == 201, prefix.text
    r = sqlite_admin.delete(f"/api/v1/sites/{site['id']}")
    assert r.status_code == 409, r.text
    assert "prefix" in r.text
    prefixes = sqlite_admin.get("/api/v1/prefixes").json()["results"]
    assert [p["site_id"] for p in prefixes] == [site["id"]]
    assert sqlite_admin.post("/api/v1/devices", json={"site_id": site["id"], "hostname": "h1"}).status_code == 201
    r = sqlite_admin.delete(f"/api/v1/sites/{site['id']}")
    assert r.status_code == 409 and "device" in r.text, r.text
    empty = _site(sqlite_admin, "JED-H02")
    assert sqlite_admin.delete(f"/api/v1/sites/{empty['id']}").status_code == 204


def test_conflict_on_a_query_parameter_names_the_query(sqlite_admin: TestClient) -> None:
    p = sqlite_admin.post("/api/v1/prefixes", json={"prefix": "10.8.0.0/24"}).json()
    ip = sqlite_admin.post("/api/v1/ip-addresses", json={"address": "10.8.0.5"})
    assert ip.status_code == 201, ip.text
    r = sqlite_admin.delete(f"/api/v1/prefixes/{p['id']}")
    assert r.status_code == 409, r.text
    assert [e["loc"] for e in r.json()["errors"]] == [["query", "cascade"]], r.text


# --------------------------------------------------------------------------- searches and names


@pytest.mark.parametrize("q", ["%00", "a%00b", "%1b[31m", "%7f", "%c2%85"])
def test_search_with_control_characters_is_refused_on_the_query(admin: TestClient, q: str) -> None:
    _site(admin)
    r = admin.get(f"/api/v1/sites?q={q}")
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["query", "q"]], r.text


@pytest.mark.parametrize("bad", ["a\x00b", "x\x1b[2J", "\u202eevil", "c1\x85", "two\nlines"])
def test_token_names_refuse_control_and_bidi_characters(sqlite_admin: TestClient, bad: str) -> None:
    r = sqlite_admin.post("/api/v1/auth/tokens", json={"name": bad})
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "name"]], r.text
    assert sqlite_admin.post("/api/v1/auth/tokens", json={"name": "ci — مفتاح"}).status_code == 201


# --------------------------------------------------------------------------- web and server


def test_lang_form_needs_its_csrf_field(sqlite_app: Any) -> None:
    browser = TestClient(sqlite_app, raise_server_exceptions=False)
    token = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
    assert token
    assert browser.post("/lang", data={"lang": "ar"}, follow_redirects=False).status_code == 403
    assert browser.post("/lang", data={"lang": "ar", "csrf": "wrong"}, follow_redirects=False).status_code == 403
    ok = browser.post("/lang", data={"lang": "ar", "csrf": token.group(1)}, follow_redirects=False)
    assert ok.status_code == 303 and "lang=ar" in ok.headers.get("set-cookie", "")


def test_serve_trusts_no_proxy_headers_unless_told() -> None:
    from infra_mgr.cli import proxy_options
    from infra_mgr.config import Settings

    assert proxy_options(Settings()) == {"proxy_headers": False}
    assert proxy_options(Settings(forwarded_allow_ips="10.0.0.5")) == {
        "proxy_headers": True, "forwarded_allow_ips": "10.0.0.5"}


def test_vendor_swagger_serves_only_the_docs_assets(sqlite_admin: TestClient) -> None:
    from infra_mgr.web.assets import vendor_dir

    if vendor_dir("swagger-ui-dist") is None:
        pytest.skip("swagger-ui-dist is not installed")
    base = "/static/vendor/swagger-ui"
    assert sqlite_admin.get(f"{base}/swagger-ui-bundle.js").status_code == 200
    assert sqlite_admin.get(f"{base}/swagger-ui.css").status_code == 200
    for other in ("index.html", "", "swagger-initializer.js", "package.json", "oauth2-redirect.html"):
        assert sqlite_admin.get(f"{base}/{other}").status_code == 404, other


def test_405_names_the_allowed_methods(sqlite_admin: TestClient) -> None:
    r = sqlite_admin.put("/api/v1/sites")
    assert r.status_code == 405
    assert set(r.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


def test_413_is_declared_on_routes_with_a_body(sqlite_admin: TestClient) -> None:
    doc = sqlite_admin.get("/api/v1/openapi.json").json()
    assert "413" in doc["paths"]["/api/v1/sites"]["post"]["responses"]
    assert "413" in doc["paths"]["/api/v1/discovery/run"]["post"]["responses"]
    assert "413" not in doc["paths"]["/api/v1/sites"]["get"]["responses"]


def test_a_range_reaching_a_broadcast_address_reports_devices_not_a_500(sqlite_admin: TestClient) -> None:
    cred = sqlite_admin.post("/api/v1/credentials", json={"name": "ro", "kind": "snmp_v2c", "community": "public"})
    assert cred.status_code == 201, cred.text
    r = sqlite_admin.post("/api/v1/discovery/run", json={"seeds": ["127.255.255.254/31"], "timeout_s": 0.2,
                                                         "retries": 0})
    assert r.status_code == 200, r.text
    failed = {f["address"]: f for f in r.json().get("failures", [])}
    assert "127.255.255.255" in failed, r.text


def test_power_numbers_are_numbers_not_booleans(sqlite_admin: TestClient) -> None:
    dev = {"name": "ups-x", "kind": "ups", "source": "snmp://127.0.0.5:161"}
    r = sqlite_admin.post("/api/v1/power/devices", json={**dev, "capacity_kw": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "capacity_kw"], r.text
    assert sqlite_admin.post("/api/v1/power/devices", json={**dev, "capacity_kw": 40}).status_code == 201
    r = sqlite_admin.post("/api/v1/power/nodes", json={"name": "pdu", "kind": "panel", "it_category": True})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "it_category"], r.text
    r = sqlite_admin.post("/api/v1/power/nodes", json={"name": "pdu", "kind": "panel", "it_category": 2})
    assert r.status_code == 201, r.text


def test_lists_with_nothing_to_search_do_not_offer_q(sqlite_admin: TestClient) -> None:
    doc = sqlite_admin.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/links", "/api/v1/power/edges"):
        names = [p["name"] for p in doc["paths"][path]["get"].get("parameters", [])]
        assert "q" not in names, path
        r = sqlite_admin.get(path, params={"q": "x"})
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "q"], r.text


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/power/devices", "/api/v1/credentials",
                                  "/api/v1/users", "/api/v1/devices", "/api/v1/prefixes"])
def test_every_search_refuses_control_characters(sqlite_admin: TestClient, path: str) -> None:
    r = sqlite_admin.get(f"{path}?q=%00")
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["query", "q"]], r.text
