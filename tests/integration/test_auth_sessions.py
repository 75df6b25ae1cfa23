"""Sessions end on the server (logout, password reset, deactivation), the CSRF token cannot be read
from the cookie, and repeated failed sign-ins are throttled per username and per address — on the
real app and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth import service
from infra_mgr.config import Settings

PASSWORD = "a long password!"
COOKIE = "infra_mgr"


def _make_user(admin: TestClient, username: str, role: str = "netops") -> int:
    resp = admin.post("/api/v1/users", json={"username": username, "password": PASSWORD, "role": role})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def _dashboard_login(app: FastAPI, username: str, password: str = PASSWORD) -> TestClient:
    browser = TestClient(app, raise_server_exceptions=False)
    form = re.search(r'name="csrf" value="([^"]+)"', browser.get("/login").text)
    assert form, "the login form carries a CSRF token"
    resp = browser.post("/login", data={"username": username, "password": password, "csrf": form.group(1)},
                        follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return browser


def _page_csrf(browser: TestClient) -> str:
    home = browser.get("/")
    assert home.status_code == 200
    meta = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert meta and meta.group(1)
    return meta.group(1)


def _replay(app: FastAPI, cookie: str) -> TestClient:
    """A fresh browser holding a saved copy of the session cookie."""
    other = TestClient(app, raise_server_exceptions=False)
    other.cookies.set(COOKIE, cookie)
    return other


def _assert_dead(app: FastAPI, cookie: str, csrf: str) -> None:
    saved = _replay(app, cookie)
    page = saved.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    assert saved.get("/api/v1/auth/me").status_code == 401
    write = saved.post("/api/v1/sites", json={"code": "JED-X01", "name_en": "x"}, headers={"X-CSRF-Token": csrf})
    assert write.status_code == 401, write.text


def test_dashboard_logout_ends_the_session_on_the_server(app: FastAPI, admin: TestClient) -> None:
    _make_user(admin, "salma")
    browser = _dashboard_login(app, "salma")
    cookie = browser.cookies[COOKIE]
    csrf = _page_csrf(browser)
    # the saved copy works while the session lives ...
    alive = _replay(app, cookie)
    assert alive.get("/api/v1/auth/me").json()["username"] == "salma"
    assert alive.post("/api/v1/sites", json={"code": "JED-L01", "name_en": "Live"},
                      headers={"X-CSRF-Token": csrf}).status_code == 201
    assert browser.post("/logout", data={"csrf": "wrong"}).status_code == 403
    resp = browser.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    # ... and is dead after logout: pages, the API and writes with the page's CSRF token
    _assert_dead(app, cookie, csrf)


def test_api_logout_needs_csrf_and_ends_the_session(app: FastAPI, admin: TestClient) -> None:
    _make_user(admin, "yousef")
    browser = TestClient(app, raise_server_exceptions=False)
    login = browser.post("/api/v1/auth/login", json={"username": "yousef", "password": PASSWORD})
    assert login.status_code == 200
    csrf, cookie = login.json()["csrf_token"], browser.cookies[COOKIE]
    assert browser.post("/api/v1/auth/logout").status_code == 403
    assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "x" * 64}).status_code == 403
    assert browser.get("/api/v1/auth/me").status_code == 200, "a refused logout leaves the session alone"
    assert browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    _assert_dead(app, cookie, csrf)
    # logging out with no session (or a dead one) is harmless and needs nothing
    assert TestClient(app).post("/api/v1/auth/logout").status_code == 204
    assert _replay(app, cookie).post("/api/v1/auth/logout").status_code == 204


def test_password_reset_and_deactivation_end_sessions_not_tokens(app: FastAPI, admin: TestClient) -> None:
    uid = _make_user(admin, "hamad")
    browser = _dashboard_login(app, "hamad")
    cookie, csrf = browser.cookies[COOKIE], _page_csrf(browser)
    second = _dashboard_login(app, "hamad")  # another browser of the same user
    token = browser.post("/api/v1/auth/tokens", json={"name": "script"}, headers={"X-CSRF-Token": csrf})
    assert token.status_code == 201
    script = TestClient(app, raise_server_exceptions=False)
    script.headers["Authorization"] = f"Bearer {token.json()['token']}"

    # a change that is not a password or a deactivation leaves sessions alone
    assert admin.patch(f"/api/v1/users/{uid}", json={"full_name": "Hamad A."}).status_code == 200
    assert browser.get("/api/v1/auth/me").status_code == 200

    assert admin.patch(f"/api/v1/users/{uid}", json={"password": "another long one"}).status_code == 200
    _assert_dead(app, cookie, csrf)
    assert second.get("/api/v1/auth/me").status_code == 401
    assert script.get("/api/v1/auth/me").status_code == 200, "API tokens are separate credentials"
    fresh = _dashboard_login(app, "hamad", "another long one")
    assert fresh.get("/api/v1/auth/me").status_code == 200

    assert admin.patch(f"/api/v1/users/{uid}", json={"is_active": False}).status_code == 200
    assert admin.patch(f"/api/v1/users/{uid}", json={"is_active": True}).status_code == 200
    assert fresh.get("/api/v1/auth/me").status_code == 401, "re-enabling a user does not revive old sessions"


def _cookie_content(value: str) -> str:
    """What anyone holding the cookie can read: Starlette signs base64 JSON, it does not encrypt."""
    payload = value.split(".")[0]
    return base64.b64decode(payload + "=" * (-len(payload) % 4)).decode()


def test_csrf_token_is_not_readable_from_the_cookie(app: FastAPI, admin: TestClient) -> None:
    _make_user(admin, "noura")
    browser = TestClient(app, raise_server_exceptions=False)
    login = browser.post("/api/v1/auth/login", json={"username": "noura", "password": PASSWORD})
    assert login.status_code == 200
    set_cookie = login.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    csrf = login.json()["csrf_token"]
    value = browser.cookies[COOKIE]
    content = _cookie_content(value)
    assert csrf not in value and csrf not in content
    assert set(json.loads(content)) == {"sid"}, "the cookie holds an opaque session id and nothing else"
    assert _page_csrf(browser) == csrf
    # before sign-in the login form's token is not in the cookie either
    anon = TestClient(app)
    form = re.search(r'name="csrf" value="([^"]+)"', anon.get("/login").text)
    assert form and form.group(1) not in _cookie_content(anon.cookies[COOKIE])


BACKOFF_S = 3.0  # short enough to wait out, long enough for the requests made while it lasts


@pytest.fixture
def lock_app(app_settings: Settings, engine: Engine) -> Callable[..., FastAPI]:
    """The app with a short back-off (and the per-address limit a test asks for)."""
    def make(per_address: int = 100) -> FastAPI:
        settings = app_settings.model_copy(update={"login_backoff_s": BACKOFF_S, "login_max_failures": 5,
                                                   "login_max_failures_per_address": per_address})
        return create_app(settings, engine)
    return make


def _api_login(c: TestClient, username: str, password: str) -> int:
    return c.post("/api/v1/auth/login", json={"username": username, "password": password}).status_code


def test_repeated_failures_lock_the_username_with_back_off(lock_app: Callable[..., FastAPI],
                                                           token_for: Callable[[str], str]) -> None:
    app = lock_app()
    admin = TestClient(app, raise_server_exceptions=False)
    admin.headers["Authorization"] = f"Bearer {token_for('admin')}"
    _make_user(admin, "khalid")
    _make_user(admin, "reem")
    c = TestClient(app, raise_server_exceptions=False)
    assert [_api_login(c, "reem", f"wrong-{i}") for i in range(5)] == [401] * 5
    assert [_api_login(c, "khalid", f"wrong-{i}") for i in range(5)] == [401] * 5
    locked_at = time.monotonic()
    sixth = c.post("/api/v1/auth/login", json={"username": "khalid", "password": "wrong-6"})
    assert sixth.status_code == 429 and 1 <= int(sixth.headers["Retry-After"]) <= BACKOFF_S
    right = c.post("/api/v1/auth/login", json={"username": "khalid", "password": PASSWORD})
    assert right.status_code == 429, "the right password is refused during the lock-out too"
    assert "set-cookie" not in right.headers
    assert _api_login(c, "u_admin", "correct horse battery") == 200, "other usernames are not locked"

    # the dashboard says so in the user's language
    page = TestClient(app, raise_server_exceptions=False)
    for lang, text in (("en", "Too many failed sign-ins"), ("ar", "محاولات دخول فاشلة كثيرة")):
        page.cookies.set("lang", lang)
        form = re.search(r'name="csrf" value="([^"]+)"', page.get("/login").text)
        assert form
        resp = page.post("/login", data={"username": "khalid", "password": PASSWORD, "csrf": form.group(1)})
        assert resp.status_code == 429 and text in resp.text and resp.headers.get("Retry-After")

    events = admin.get("/api/v1/events", params={"kind": "auth.login_failed", "limit": 100}).json()["results"]
    mine = [e for e in events if e["data"]["username"] == "khalid"]
    assert len(mine) == 9 and {e["data"]["reason"] for e in mine} == {"bad_credentials", "locked"}
    assert all(e["data"]["address"] == "testclient" and e["severity"] == "warning" for e in events)
    assert "wrong-" not in json.dumps(events) and PASSWORD not in json.dumps(events)

    time.sleep(max(0.0, locked_at + BACKOFF_S + 0.3 - time.monotonic()))  # both lock-outs are over
    assert _api_login(c, "khalid", PASSWORD) == 200
    assert _api_login(c, "khalid", "wrong-7") == 401, "a success starts the count afresh"
    assert _api_login(c, "reem", "wrong-7") == 401
    again = c.post("/api/v1/auth/login", json={"username": "reem", "password": PASSWORD})
    assert again.status_code == 429 and int(again.headers["Retry-After"]) > BACKOFF_S, \
        "each further failure locks for longer"


def test_failures_from_one_address_lock_every_username(lock_app: Callable[..., FastAPI]) -> None:
    c = TestClient(lock_app(per_address=10), raise_server_exceptions=False)
    # unknown usernames count like known ones: a lock-out does not tell who exists
    assert [_api_login(c, f"nobody{i}", "guess-it") for i in range(10)] == [401] * 10
    assert _api_login(c, "somebody-else", "guess-it") == 429


def test_back_off_doubles_up_to_its_cap() -> None:
    from infra_mgr.auth.throttle import Policy

    policy = Policy(max_failures=5, backoff_s=30, backoff_max_s=900)
    assert [policy.backoff(n, 5) for n in (5, 6, 7, 8, 9, 10, 200)] == [30, 60, 120, 240, 480, 900, 900]


def test_unknown_and_inactive_users_cost_a_hash_verification(engine: Engine, admin: TestClient,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    uid = _make_user(admin, "ghadah")
    admin.patch(f"/api/v1/users/{uid}", json={"is_active": False})
    calls: list[str] = []
    real = service.verify_password

    def counting(hashed: str, password: str) -> bool:
        calls.append(hashed)
        return real(hashed, password)

    monkeypatch.setattr(service, "verify_password", counting)
    with Session(engine) as session:
        assert service.authenticate(session, "no-such-user", PASSWORD) is None
        assert service.authenticate(session, "ghadah", PASSWORD) is None
        assert service.authenticate(session, "u_admin", "correct horse battery") is not None
    assert len(calls) == 3, "every path verifies one hash"
    assert calls[0] == calls[1] and calls[0].startswith("$argon2id$")
    admin_hash = calls[2]
    assert calls[0].split("$")[:4] == admin_hash.split("$")[:4], "the stand-in hash has the same cost"
