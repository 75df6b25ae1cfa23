"""Sign-in, sign-out and the language choice: the only dashboard routes that change state."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from infra_mgr.api.deps import DbSession
from infra_mgr.auth import sessions
from infra_mgr.auth.api import attempt_sign_in
from infra_mgr.web.i18n import COOKIE, LANGS
from infra_mgr.web.pages import LANG_COOKIE_AGE_S, current_principal, error_page, html_router, render, safe_next

log = logging.getLogger("infra_mgr.web")
router = html_router()


def _form_str(form: Any, name: str, limit: int) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _login_page(request: Request, *, error: str = "", next_url: str = "/", username: str = "",
                status_code: int = 200, retry_after: int = 0) -> HTMLResponse:
    # An anonymous browser still gets a CSRF token, so the login form cannot be posted from elsewhere.
    sessions.csrf_token(request, create=True)
    resp = render(request, "login.html", {"error": error, "next": next_url, "username": username,
                                          "retry_after": retry_after},
                  status_code=status_code, section="login")
    if retry_after:
        resp.headers["Retry-After"] = str(retry_after)
    return resp


@router.get("/login")
def login_form(request: Request, session: DbSession) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if current_principal(request, session) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, next_url=next_url)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    username = _form_str(form, "username", 64).strip()
    password = _form_str(form, "password", 1024)
    request.state.audit_user = username  # the audit log names who tried, whatever the outcome
    next_url = safe_next(form.get("next"))
    if not sessions.check_csrf(request, form.get("csrf")):
        request.session.pop(sessions.PRE, None)
        return _login_page(request, error="login.expired", next_url=next_url, username=username, status_code=400)
    result = await attempt_sign_in(request, username, password)
    user = result.user
    if result.retry_after > 0:
        wait = max(1, math.ceil(result.retry_after))
        log.info("dashboard: sign-in for %r from %s refused for %d s after repeated failures",
                 username, sessions.client_address(request) or "?", wait)
        return _login_page(request, error="login.locked", next_url=next_url, username=username, status_code=429,
                           retry_after=wait)
    if user is None:
        log.info("dashboard: failed sign-in for %r from %s", username, sessions.client_address(request) or "?")
        return _login_page(request, error="login.error", next_url=next_url, username=username, status_code=401)
    await run_in_threadpool(sessions.start, request, user.id or 0)
    log.info("dashboard: %s signed in", user.username)
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Ends the session on the server too, so a saved copy of the cookie is dead."""
    form = await request.form()
    if sessions.has_session(request) and not sessions.check_csrf(request, form.get("csrf")):
        return error_page(request, 403, "error.forbidden_title", "error.forbidden")
    await run_in_threadpool(sessions.end, request)
    return RedirectResponse("/login", status_code=303)


@router.get("/logout")
def logout_get() -> Response:
    """Signing out changes state, so it is a POST from the navbar; a typed-in address just goes home."""
    return RedirectResponse("/", status_code=303)


@router.post("/lang")
async def set_lang(request: Request) -> Response:
    """Remember a language without JavaScript or a query string (the navbar toggle uses ``?lang=``).
    It sets a cookie, so it carries the CSRF field like every other form: another site must not
    switch someone's language for them."""
    form = await request.form()
    if not sessions.check_csrf(request, form.get("csrf")):
        return error_page(request, 403, "error.forbidden_title", "error.forbidden")
    lang = _form_str(form, "lang", 8)
    resp = RedirectResponse(safe_next(form.get("next")), status_code=303)
    if lang in LANGS:
        resp.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_AGE_S, samesite="lax", httponly=True,
                        secure=bool(getattr(request.app.state.settings, "secure_cookies", False)))
    return resp
