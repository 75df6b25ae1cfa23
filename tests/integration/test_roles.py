"""Every mutating endpoint refuses each role that the permission matrix does not grant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra_mgr.auth.permissions import MATRIX, Perm, Role, matrix_markdown

MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
PUBLIC_MUTATIONS = {"/api/v1/auth/login", "/api/v1/auth/logout"}


def _mutating_routes(app) -> list[tuple[str, str, Perm | None]]:  # type: ignore[no-untyped-def]
    """Every mutating operation of the OpenAPI document with the permission it declares."""
    out = []
    for path, ops in app.openapi()["paths"].items():
        for method, op in ops.items():
            if method.upper() in MUTATING:
                perm = op.get("x-permission")
                out.append((method.upper(), path, Perm(perm) if perm else None))
    return out


def test_every_mutating_route_declares_a_permission(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    routes = _mutating_routes(sqlite_app)
    assert len(routes) >= 20
    undeclared = [(m, p) for m, p, perm in routes if perm is None and p not in PUBLIC_MUTATIONS]
    assert undeclared == []


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_is_refused_what_the_matrix_forbids(sqlite_app, sqlite_client_for, role: str) -> None:  # type: ignore[no-untyped-def]
    client = sqlite_client_for(role)
    checked = 0
    for method, path, perm in _mutating_routes(sqlite_app):
        if perm is None:
            continue
        url = re.sub(r"\{[^}]+\}", "999999", path)
        resp = client.request(method, url, json={})
        if perm in MATRIX[Role(role)]:
            assert resp.status_code != 403, (role, method, path, resp.text)
        else:
            assert resp.status_code == 403, (role, method, path, resp.status_code, resp.text)
            assert perm.value in resp.json()["detail"]
        checked += 1
    assert checked >= 20


def test_unauthenticated_mutations_get_401(sqlite_app) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    client = TestClient(sqlite_app, raise_server_exceptions=False)
    for method, path, perm in _mutating_routes(sqlite_app):
        if perm is None:
            continue
        resp = client.request(method, re.sub(r"\{[^}]+\}", "999999", path), json={})
        assert resp.status_code == 401, (method, path)
        assert resp.json()["detail"]


def test_permission_docs_match_the_code() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "permissions.md").read_text(encoding="utf-8")
    assert matrix_markdown() in doc, "regenerate docs/permissions.md with `infra-mgr docs permissions`"


def test_sysadmin_allocates_but_cannot_change_or_delete_prefixes(client_for) -> None:  # type: ignore[no-untyped-def]
    """ipam.write is "create prefixes and IP addresses, allocate": changing and deleting the plan is
    ipam.manage, which the sysadmin role does not hold."""
    sysadmin, netops = client_for("sysadmin"), client_for("netops")
    pid = sysadmin.post("/api/v1/prefixes", json={"prefix": "10.77.0.0/29"}).json()["id"]
    ip = sysadmin.post(f"/api/v1/prefixes/{pid}/allocate", json={"description": "vm1"})
    assert ip.status_code == 201, ip.text
    for method, url, body in (("PATCH", f"/api/v1/prefixes/{pid}", {"description": "mine now"}),
                              ("DELETE", f"/api/v1/prefixes/{pid}", None),
                              ("DELETE", f"/api/v1/prefixes/{pid}?cascade=true", None),
                              ("PATCH", f"/api/v1/ip-addresses/{ip.json()['id']}", {"description": "x"}),
                              ("DELETE", f"/api/v1/ip-addresses/{ip.json()['id']}", None)):
        resp = sysadmin.request(method, url, json=body)
        assert resp.status_code == 403, (method, url, resp.status_code, resp.text)
        assert "ipam.manage" in resp.json()["detail"]
    assert netops.get(f"/api/v1/prefixes/{pid}").json()["description"] != "mine now"
    assert netops.patch(f"/api/v1/prefixes/{pid}", json={"description": "lab"}).status_code == 200


def test_prefix_holding_addresses_is_not_deleted_unless_cascade(client_for) -> None:  # type: ignore[no-untyped-def]
    netops, admin = client_for("netops"), client_for("admin")
    pid = netops.post("/api/v1/prefixes", json={"prefix": "10.78.0.0/29"}).json()["id"]
    ips = [netops.post(f"/api/v1/prefixes/{pid}/allocate", json={}).json() for _ in range(2)]
    refused = netops.delete(f"/api/v1/prefixes/{pid}")
    assert refused.status_code == 409, refused.text
    assert "2 IP address" in refused.json()["detail"] and "cascade=true" in refused.json()["detail"]
    assert netops.get(f"/api/v1/prefixes/{pid}").status_code == 200
    for ip in ips:  # untouched, still in their prefix
        assert netops.get(f"/api/v1/ip-addresses/{ip['id']}").json()["prefix_id"] == pid

    assert netops.delete(f"/api/v1/prefixes/{pid}?cascade=true").status_code == 204
    assert netops.get(f"/api/v1/prefixes/{pid}").status_code == 404
    for ip in ips:
        assert netops.get(f"/api/v1/ip-addresses/{ip['id']}").status_code == 404
    history = admin.get("/api/v1/changes?object_type=ip_address&actor=u_netops&limit=100").json()["results"]
    deleted = {h["object_id"] for h in history if h["action"] == "delete"}
    assert deleted == {ip["id"] for ip in ips}
    audit = admin.get("/api/v1/audit?limit=1000").json()["results"]
    assert any(a["method"] == "DELETE" and a["path"] == f"/api/v1/prefixes/{pid}?cascade=true"
               and a["status_code"] == 204 and a["username"] == "u_netops" for a in audit)

    empty = netops.post("/api/v1/prefixes", json={"prefix": "10.79.0.0/29"}).json()["id"]
    assert netops.delete(f"/api/v1/prefixes/{empty}").status_code == 204
