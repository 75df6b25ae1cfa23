"""The dashboard's frame: how a page is rendered (strings, language, CSRF, security headers), how
it fails (login redirect, error pages), and who is logged in. Each area's pages live in their own
module (``auth_pages``, ``network_pages``, ``power_pages``) and use only what is here, the
formatters of :mod:`infra_mgr.web.format` and their domain's read views.

Why server-rendered: the users are network, systems and facilities staff on municipal PCs; pages
that work without a build step or a JavaScript framework are quicker to load, easier to audit and
keep working when a script fails. JavaScript, when it comes, calls the REST API with the CSRF token
that every page carries in ``<meta name="csrf-token">``.

Every dashboard response is HTML, errors included (the API's handlers answer JSON, which a person
in a browser cannot use): routes use :class:`HtmlRoute`, which turns a missing login into a
redirect and any failure into an error page, and they read query parameters as plain strings so a
bad value is ignored instead of becoming a 422.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra_mgr.api.deps import DbSession
from infra_mgr.auth import sessions
from infra_mgr.auth.service import Principal
from infra_mgr.events import messages as event_messages
from infra_mgr.web import format as fmt
from infra_mgr.web.i18n import COOKIE, LANGS, Translator, pick_lang, requested_lang

log = logging.getLogger("infra_mgr.web")

# (section key, path): the navbar, in order. Labels come from i18n as "nav.<key>".
NAV: tuple[tuple[str, str], ...] = (
    ("overview", "/"),
    ("sites", "/sites"),
    ("network", "/network"),
    ("links", "/links"),
    ("power", "/power"),
    ("configs", "/configs"),
    ("cloud", "/cloud"),
    ("jobs", "/jobs"),
    ("alerts", "/alerts"),
)
LANG_COOKIE_AGE_S = 365 * 24 * 3600
# Our pages load only our own files; Bootstrap's CSS embeds its small icons as data: URIs.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'")

_ERROR_KEYS: dict[int, tuple[str, str]] = {
    400: ("error.request_title", "error.request"),
    403: ("error.forbidden_title", "error.forbidden"),
    404: ("error.not_found_title", "error.not_found"),
}
_BADGE = {
    "active": "success", "planned": "info", "offline": "warning", "missing": "danger",
    "decommissioned": "secondary", "info": "secondary", "warning": "warning", "critical": "danger",
}


@dataclass(frozen=True)
class WebState:
    """What the dashboard decided at start-up: its templates and which vendor assets exist."""

    templates: Jinja2Templates
    bootstrap: bool
    graph: bool = False  # cytoscape (the topology graph's library) is installed


class LoginRequired(Exception):
    """Raised by :func:`web_user`; :class:`HtmlRoute` answers it with a redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class HtmlRoute(APIRoute):
    """A route whose failures are pages: login redirect, 503 when the database is busy, 500 otherwise."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def _handle(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired as exc:
                return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)
            except StarletteHTTPException as exc:  # e.g. a malformed form body
                return error_page(request, exc.status_code, *_ERROR_KEYS.get(exc.status_code, _ERROR_KEYS[400]))
            except OperationalError as exc:
                log.warning("dashboard: database unavailable: %s", exc)
                return error_page(request, 503, "error.unavailable_title", "error.unavailable")
            except Exception:
                log.exception("dashboard page %s failed", request.url.path)
                return error_page(request, 500, "error.server_title", "error.server")

        return _handle


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def safe_next(raw: Any) -> str:
    """A post-login/redirect target limited to our own paths (no open redirect to another host)."""
    value = raw if isinstance(raw, str) else ""
    parts = urlsplit(value)
    if (not value.startswith("/") or value.startswith("//") or "\\" in value or parts.scheme or parts.netloc
            or parts.path in ("/login", "/logout")):
        return "/"
    return value


def _url_with(request: Request, **changes: Any) -> str:
    """This page's path and query with some parameters changed (``None`` drops one); ``lang`` is
    always dropped because the cookie remembers it."""
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = str(value)
    query = urlencode(params)
    return f"{request.url.path}?{query}" if query else request.url.path










def current_principal(request: Request, session: Session) -> Principal | None:
    return sessions.principal(request, session)


def web_user(request: Request, session: DbSession) -> Principal:
    """The logged-in user, or a redirect to the login page (every role may read the dashboard)."""
    principal = current_principal(request, session)
    if principal is None:
        sessions.forget(request)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(safe_next(target))
    request.state.principal = principal
    return principal


def render(request: Request, template: str, context: dict[str, Any] | None = None, *, status_code: int = 200,
           section: str = "", user: Principal | None = None) -> HTMLResponse:
    """Render a page with what every page needs: strings, language and direction, user, CSRF token."""
    lang = pick_lang(request)
    t = Translator(lang)
    other = next(x for x in LANGS if x != lang)
    state = web_state(request)

    def site_name(name_en: str | None, name_ar: str | None) -> str:
        """Arabic name in Arabic mode when there is one; English otherwise."""
        return (name_ar or name_en or "") if lang == "ar" else (name_en or name_ar or "")

    def label(group: str, value: str) -> str:
        key = f"{group}.{value}"
        return t(key) if t.has(key) else value

    base: dict[str, Any] = {
        "t": t, "lang": lang, "dir": t.dir, "other_lang": other,
        "lang_url": _url_with(request, lang=other),
        "csrf": sessions.csrf_token(request),
        "user": user, "nav": NAV, "section": section, "bootstrap": state.bootstrap,
        "site_name": site_name, "label": label, "badge": lambda v: _BADGE.get(v, "secondary"),
        "fmt_time": fmt.fmt_time, "url_with": lambda **kw: _url_with(request, **kw),
        # an event's sentence in the viewer's language, from its kind and data (events.messages)
        "event_text": lambda e: event_messages.render(t, e.kind, e.data, e.message, e.hostname),
        # the same for an event given as its parts (the power page's events and outage timeline)
        "event_sentence": lambda kind, data, message, device="": event_messages.render(
            t, kind, {**(data or {}), **({"power_device": device} if device else {})}, message),
    }
    resp = state.templates.TemplateResponse(request, template, {**base, **(context or {})}, status_code=status_code)
    if requested_lang(request):
        settings = request.app.state.settings
        resp.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_AGE_S, samesite="lax", httponly=True,
                        secure=bool(getattr(settings, "secure_cookies", False)))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp


def error_page(request: Request, status_code: int, title_key: str, message_key: str, *, section: str = "",
               **params: Any) -> HTMLResponse:
    """An HTML error page in the user's language (shown with the navbar when someone is logged in)."""
    user = getattr(request.state, "principal", None)
    return render(request, "error.html", {"title_key": title_key, "message_key": message_key, "params": params,
                                          "status": status_code}, status_code=status_code, section=section, user=user)


def html_error_response(request: Request, status_code: int) -> HTMLResponse | None:
    """For the app's HTTP error handler: an HTML page for a browser asking a non-API path, else ``None``.

    Lets unknown dashboard addresses (``/nowhere``) answer with a page instead of JSON, while API
    clients keep the JSON error body.
    """
    if request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", ""):
        return None
    if not hasattr(request.app.state, "web"):
        return None
    keys = _ERROR_KEYS.get(status_code)
    return error_page(request, status_code, *keys) if keys else None


def html_router() -> APIRouter:
    """A router of dashboard pages (failures become pages, not JSON; not in the OpenAPI document)."""
    return APIRouter(route_class=HtmlRoute, include_in_schema=False)


User_ = Depends(web_user)


def empty_state(request: Request, user: Principal, section: str) -> Response:
    """The page of an area that has nothing to show yet."""
    return render(request, "empty.html", {"area": section}, section=section, user=user)
