"""Dashboard basics without a browser: the UI strings and the server-side behaviour of the pages.

The i18n checks keep the Arabic and English catalogues in step (a key missing in one language
shows up as the raw key in the UI); the TestClient checks pin the behaviour a browser test would be
slow to cover: redirects, status codes and that errors are HTML pages, not JSON.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Site
from infra_mgr.web import assets, routes
from infra_mgr.web.assets import web_dir

PASSWORD = "unit-test-password-1"


def _catalog(lang: str) -> dict[str, str]:
    data = json.loads((web_dir("i18n") / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_en_and_ar_have_the_same_keys() -> None:
    en, ar = _catalog("en"), _catalog("ar")
    assert sorted(set(en) - set(ar)) == [], "keys missing in ar.json"
    assert sorted(set(ar) - set(en)) == [], "keys missing in en.json"


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_no_empty_values(lang: str) -> None:
    empty = [k for k, v in _catalog(lang).items() if not isinstance(v, str) or not v.strip()]
    assert empty == []


def test_same_placeholders_in_both_languages() -> None:
    en, ar = _catalog("en"), _catalog("ar")
    differing = {k: (_placeholders(en[k]), _placeholders(ar[k])) for k in en
                 if _placeholders(en[k]) != _placeholders(ar.get(k, ""))}
    assert differing == {}


def test_every_key_used_by_templates_exists() -> None:
    """Literal ``t('...')`` calls in templates must name a key (dynamic ones like nav.<key> are built from data)."""
    keys = set(_catalog("en"))
    used: set[str] = set()
    for tpl in Path(web_dir("templates")).glob("*.html"):
        used |= set(re.findall(r"\bt\('([a-z_]+\.[a-z_]+)'", tpl.read_text(encoding="utf-8")))
    assert used, "no t('...') calls found: has the template syntax changed?"
    assert sorted(used - keys) == []


# --------------------------------------------------------------------------- pages


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """One database and app for the module: migrations and password hashing are the slow part."""
    tmp_path = tmp_path_factory.mktemp("web")
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        create_user(s, UserCreate(username="viewer1", password=PASSWORD, role="viewer"))
        site = Site(code="JED-B07", name_en="Al-Balad branch", name_ar="فرع البلد", kind="branch")
        s.add(site)
        s.flush()
        s.add(Device(site_id=site.id or 0, hostname="jed-b07-sw01", management_address="10.64.7.2"))
        s.add(Event(kind="device.offline", severity="warning", message="sw01 stopped answering", site_id=site.id))
        s.commit()
    yield create_app(Settings(data_dir=tmp_path, database_url=url), engine=engine)
    engine.dispose()


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    """A fresh browser: its own cookie jar."""
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def logged_in(app: FastAPI) -> Iterator[TestClient]:
    """A browser signed in once, for the read-only checks."""
    with TestClient(app) as c:
        assert _login(c) == 303
        yield c


def _login(client: TestClient, password: str = PASSWORD) -> int:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    resp = client.post("/login", data={"username": "viewer1", "password": password, "csrf": token.group(1),
                                       "next": "/sites"}, follow_redirects=False)
    return resp.status_code


def test_pages_redirect_to_login(client: TestClient) -> None:
    for path in ("/", "/sites", "/sites/JED-B07", "/network", "/power", "/alerts"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303, path
        assert resp.headers["location"].startswith("/login?next="), path


def test_wrong_password_is_401_html(client: TestClient) -> None:
    assert _login(client, "not-the-password") == 401
    resp = client.get("/", follow_redirects=False)
    assert resp.status_code == 303


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    for forged in ("forged", "رمز-مزور"):
        resp = client.post("/login", data={"username": "viewer1", "password": PASSWORD, "csrf": forged})
        assert resp.status_code == 400
        assert "text/html" in resp.headers["content-type"]


def test_login_then_pages(client: TestClient) -> None:
    assert _login(client) == 303
    home = client.get("/")
    assert home.status_code == 200
    assert '<meta name="csrf-token" content="' in home.text
    sites = client.get("/sites")
    assert "JED-B07" in sites.text and "فرع البلد" in sites.text
    site = client.get("/sites/JED-B07")
    assert "jed-b07-sw01" in site.text and "10.64.7.2" in site.text
    assert "sw01 stopped answering" in client.get("/alerts").text
    assert "No power devices are monitored yet" in client.get("/power").text


def test_arabic_is_rtl_and_remembered(client: TestClient) -> None:
    _login(client)
    resp = client.get("/sites?lang=ar")
    assert 'dir="rtl"' in resp.text and 'lang="ar"' in resp.text
    assert "bootstrap.rtl" in resp.text or "vendor-css" not in resp.text
    assert "المواقع" in resp.text
    # The cookie keeps Arabic on the next page without the query parameter.
    site = client.get("/sites/JED-B07")
    assert 'dir="rtl"' in site.text and 'id="site-name"><bdi>فرع البلد' in site.text
    english = client.get("/?lang=en")
    assert 'dir="ltr"' in english.text


def test_lang_post_sets_cookie(client: TestClient) -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert csrf
    resp = client.post("/lang", data={"lang": "ar", "next": "https://evil.example/", "csrf": csrf.group(1)},
                       follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/"
    assert 'dir="rtl"' in client.get("/login").text


def test_unknown_site_is_an_html_404(logged_in: TestClient) -> None:
    resp = logged_in.get("/sites/NOPE-404")
    assert resp.status_code == 404
    assert "text/html" in resp.headers["content-type"]
    assert "NOPE-404" in resp.text


@pytest.mark.parametrize("query", ["kind=nonsense", "page=abc", "page=-5", "page=99999999999999999999",
                                   "q=%25_%5C", "q=" + "x" * 5000, "kind=&q=&page="])
def test_bad_query_parameters_are_not_errors(logged_in: TestClient, query: str) -> None:
    for path in ("/sites", "/network", "/alerts"):
        resp = logged_in.get(f"{path}?{query}")
        assert resp.status_code == 200, (path, query)
        assert "text/html" in resp.headers["content-type"]


def test_open_redirect_refused(client: TestClient) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    resp = client.post("/login", data={"username": "viewer1", "password": PASSWORD, "csrf": token.group(1),
                                       "next": "//evil.example/x"}, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"] == "/"


def test_logout_needs_csrf_and_clears_session(client: TestClient) -> None:
    _login(client)
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    home = client.get("/")
    token = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
    assert token
    resp = client.post("/logout", data={"csrf": token.group(1)}, follow_redirects=False)
    assert resp.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_missing_npm_assets_warn_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(assets, "PACKAGE_DIR", tmp_path / "pkg")
    monkeypatch.setattr(assets, "REPO_WEB_DIR", tmp_path / "web")
    monkeypatch.setattr(assets, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="infra_mgr.web"):
        assert assets.vendor_dir("bootstrap") is None
        assert assets.vendor_dir("bootstrap") is None
    assert len([r for r in caplog.records if "npm ci" in r.getMessage()]) == 1


def test_pages_render_unstyled_without_npm_assets(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes, "vendor_dir", lambda _pkg: None)
    bare = create_app(app.state.settings, engine=app.state.engine)
    with TestClient(bare) as c:
        resp = c.get("/login?lang=ar")
        assert resp.status_code == 200
        assert 'dir="rtl"' in resp.text and "/static/vendor/" not in resp.text
        assert c.get("/static/app.css").status_code == 200
