"""Signing out and repeated wrong passwords, as a person meets them in a real browser (English and
Arabic): a copy of the cookie taken before signing out no longer opens the dashboard, and after
too many wrong passwords the form says to wait — and refuses the right password until then."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import require_assets, serve
from sqlmodel import Session

from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.service import create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade

pytestmark = pytest.mark.e2e

PASSWORD = "e2e-user-password-1"
BACKOFF_S = 2.0
TEXT = {
    "en": {"user": "Username", "password": "Password", "submit": "Sign in", "logout": "Sign out",
           "locked": "Too many failed sign-ins", "wrong": "Wrong username or password"},
    "ar": {"user": "اسم المستخدم", "password": "كلمة المرور", "submit": "دخول", "logout": "تسجيل الخروج",
           "locked": "محاولات دخول فاشلة كثيرة", "wrong": "اسم المستخدم أو كلمة المرور غير صحيحة"},
}


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app under uvicorn with a short lock-out, so the test can wait one out."""
    require_assets("bootstrap")
    from infra_mgr.api.app import create_app

    tmp = tmp_path_factory.mktemp("e2e-auth")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    upgrade(url)
    with Session(make_engine(url)) as s:
        for name in ("mariam", "omar", "lina", "faisal"):
            create_user(s, UserCreate(username=name, password=PASSWORD, role="viewer"))
        s.commit()
    settings = Settings(data_dir=tmp, database_url=url, power_poller=False, login_backoff_s=BACKOFF_S,
                        login_max_failures=5, login_max_failures_per_address=100)
    with serve(create_app(settings, engine=make_engine(url))) as (base, _server):
        yield base


def _sign_in(page: Any, lang: str, username: str, password: str) -> None:
    text = TEXT[lang]
    page.get_by_label(text["user"]).fill(username)
    page.get_by_label(text["password"]).fill(password)
    page.get_by_role("button", name=text["submit"]).click()


@pytest.mark.parametrize(("lang", "username"), [("en", "mariam"), ("ar", "omar")])
def test_signing_out_kills_a_saved_cookie(browser: Any, base_url: str, lang: str, username: str) -> None:
    ctx = browser.new_context(base_url=base_url)
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"/login?lang={lang}")
    _sign_in(page, lang, username, PASSWORD)
    page.wait_for_url(f"{base_url}/")
    saved = ctx.cookies()
    page.get_by_role("button", name=TEXT[lang]["logout"]).click()
    page.wait_for_url("**/login")

    thief = browser.new_context(base_url=base_url)
    thief.add_cookies(saved)
    other = thief.new_page()
    other.goto("/")
    assert "/login" in other.url, "the copy of the cookie must not open the dashboard after signing out"
    assert other.get_by_role("button", name=TEXT[lang]["submit"]).is_visible()
    thief.close()
    ctx.close()


@pytest.mark.parametrize(("lang", "username"), [("en", "lina"), ("ar", "faisal")])
def test_too_many_wrong_passwords_lock_the_form(browser: Any, base_url: str, lang: str, username: str) -> None:
    ctx = browser.new_context(base_url=base_url)
    page = ctx.new_page()
    page.set_default_timeout(10_000)
    page.goto(f"/login?lang={lang}")
    alert = page.get_by_role("alert")
    for i in range(5):
        _sign_in(page, lang, username, f"wrong-password-{i}")
        assert TEXT[lang]["wrong"] in alert.inner_text()
    _sign_in(page, lang, username, PASSWORD)
    assert TEXT[lang]["locked"] in alert.inner_text(), "the right password is refused during the lock-out"
    assert "/login" in page.url
    time.sleep(BACKOFF_S + 0.3)
    _sign_in(page, lang, username, PASSWORD)
    page.wait_for_url(f"{base_url}/")
    assert page.get_by_role("button", name=TEXT[lang]["logout"]).is_visible()
    ctx.close()
