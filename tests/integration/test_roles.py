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
