"""Auth (tokens, sessions, CSRF), write-only encrypted credentials and the redacted audit log."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session

from infra_mgr.auth.crypto import decrypt_secret
from infra_mgr.inventory.credentials import reveal

V3 = {"name": "branches-v3", "kind": "snmp_v3", "username": "netops", "auth_proto": "SHA-256",
      "priv_proto": "AES", "auth_key": "auth-secret-123", "priv_key": "priv-secret-456"}


def test_credentials_are_write_only_and_encrypted(admin: TestClient, engine: Engine, app) -> None:  # type: ignore[no-untyped-def]
    resp = admin.post("/api/v1/credentials", json=V3)
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["secrets_set"] == ["auth_key", "priv_key"]
    assert "auth-secret-123" not in resp.text and "priv-secret-456" not in resp.text
    listing = admin.get("/api/v1/credentials").text
    assert "auth-secret-123" not in listing and "branches-v3" in listing
    with engine.connect() as conn:
        stored = conn.execute(text("select secret_ciphertext, params from credential")).one()
    assert "auth-secret-123" not in stored[0]
    assert decrypt_secret(app.state.master_key, stored[0])["auth_key"] == "auth-secret-123"
    with Session(engine) as session:
        plain = reveal(session, app.state.master_key, body["id"])
    assert plain["priv_key"] == "priv-secret-456" and plain["auth_proto"] == "SHA-256"
    upd = admin.patch(f"/api/v1/credentials/{body['id']}", json={"priv_key": "new-priv-789"})
    assert upd.status_code == 200
    with Session(engine) as session:
        assert reveal(session, app.state.master_key, body["id"])["priv_key"] == "new-priv-789"
    # history keeps no secret either
    changes = admin.get("/api/v1/changes?object_type=credential").text
    assert "priv-secret" not in changes and "new-priv-789" not in changes
    # audit log: the request is there, its secrets are not
    audit = admin.get("/api/v1/audit").json()["results"]
    posted = [a for a in audit if a["path"] == "/api/v1/credentials" and a["method"] == "POST"]
    assert posted and posted[0]["body"]["json"]["auth_key"] == "***"
    assert posted[0]["body"]["json"]["username"] == "netops" and posted[0]["username"] == "u_admin"
    assert "auth-secret-123" not in str(audit) and "new-priv-789" not in str(audit)


def test_credential_kind_rules(admin: TestClient) -> None:
    missing = admin.post("/api/v1/credentials", json={**V3, "priv_key": None})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "priv_key"
    wrong = admin.post("/api/v1/credentials", json={"name": "c", "kind": "snmp_v2c", "community": "x",
                                                    "password": "nope"})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"][-1] == "password"
    proto = admin.post("/api/v1/credentials", json={**V3, "auth_proto": "ROT13"})
    assert proto.status_code == 422 and proto.json()["detail"][0]["loc"][-1] == "auth_proto"
    ok = admin.post("/api/v1/credentials", json={"name": "ro", "kind": "snmp_v2c", "community": "public"})
    assert ok.status_code == 201
    again = admin.post("/api/v1/credentials", json={"name": "ro", "kind": "snmp_v2c", "community": "x"})
    assert again.status_code == 409


def test_tokens_sessions_and_csrf(app, admin: TestClient, client_for) -> None:  # type: ignore[no-untyped-def]
    viewer = client_for("viewer")
    assert viewer.get("/api/v1/auth/me").json()["role"] == "viewer"
    assert viewer.get("/api/v1/audit").status_code == 403
    created = viewer.post("/api/v1/auth/tokens", json={"name": "script"}).json()
    assert created["token"].startswith("imt_")
    extra = TestClient(app, raise_server_exceptions=False)
    extra.headers["Authorization"] = f"Bearer {created['token']}"
    assert extra.get("/api/v1/sites").status_code == 200
    assert viewer.delete(f"/api/v1/auth/tokens/{created['id']}").status_code == 204
    assert extra.get("/api/v1/sites").status_code == 401
    assert TestClient(app).get("/api/v1/sites", headers={"Authorization": "Basic abc"}).status_code == 401

    admin.post("/api/v1/users", json={"username": "fatimah", "password": "a long password!", "role": "netops"})
    browser = TestClient(app, raise_server_exceptions=False)
    assert browser.post("/api/v1/auth/login", json={"username": "fatimah", "password": "wrong"}).status_code == 401
    login = browser.post("/api/v1/auth/login", json={"username": "fatimah", "password": "a long password!"})
    assert login.status_code == 200
    csrf = login.json()["csrf_token"]
    assert browser.get("/api/v1/sites").status_code == 200
    site = {"code": "JED-B01", "name_en": "Al Balad"}
    assert browser.post("/api/v1/sites", json=site).status_code == 403
    assert browser.post("/api/v1/sites", json=site, headers={"X-CSRF-Token": csrf}).status_code == 201
    users = admin.get("/api/v1/users").json()["results"]
    fid = next(u["id"] for u in users if u["username"] == "fatimah")
    assert admin.patch(f"/api/v1/users/{fid}", json={"is_active": False}).status_code == 200
    assert browser.get("/api/v1/sites").status_code == 401
    audit = admin.get("/api/v1/audit").json()["results"]
    logins = [a for a in audit if a["path"] == "/api/v1/auth/login"]
    assert {a["status_code"] for a in logins} == {200, 401}
    assert all(a["body"]["json"]["password"] == "***" for a in logins)
    assert "a long password!" not in str(audit)


def test_dashboard_sign_in_is_audited_without_the_password(app, admin: TestClient) -> None:  # type: ignore[no-untyped-def]
    import re

    browser = TestClient(app, raise_server_exceptions=False)
    page = browser.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, "login form carries a CSRF token"
    resp = browser.post("/login", data={"username": "u_admin", "password": "not-the-password", "csrf": csrf.group(1)})
    assert resp.status_code == 401
    rows = [a for a in admin.get("/api/v1/audit").json()["results"] if a["path"] == "/login"]
    assert rows and rows[-1]["status_code"] == 401 and rows[-1]["username"] == "u_admin"
    assert rows[-1]["body"]["form"]["password"] == "***"
    assert "not-the-password" not in str(rows)
