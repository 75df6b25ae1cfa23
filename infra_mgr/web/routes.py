"""Dashboard routes: server-rendered pages (Jinja2) over the same database as the API.

Why server-rendered: the users are network, systems and facilities staff on municipal PCs; pages
that work without a build step or a JavaScript framework are quicker to load, easier to audit and
keep working when a script fails. JavaScript, when it comes, calls the REST API with the CSRF token
that every page carries in ``<meta name="csrf-token">``.

Every dashboard response is HTML, errors included (the API's handlers answer JSON, which a person
in a browser cannot use): routes here use :class:`HtmlRoute`, which turns a missing login into a
redirect and any failure into an error page, and they read query parameters as plain strings so a
bad value is ignored instead of becoming a 422.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.api import start_session
from infra_mgr.auth.models import User
from infra_mgr.auth.service import Principal, authenticate, principal_from_user_id
from infra_mgr.db import write_session
from infra_mgr.inventory.models import SiteKind
from infra_mgr.power.service import PowerService
from infra_mgr.web import queries
from infra_mgr.web.assets import vendor_dir, web_dir
from infra_mgr.web.i18n import COOKIE, DEFAULT_LANG, LANGS, Translator, catalog, pick_lang, requested_lang

log = logging.getLogger("infra_mgr.web")

# (section key, path): the navbar, in order. Labels come from i18n as "nav.<key>".
NAV: tuple[tuple[str, str], ...] = (
    ("overview", "/"),
    ("sites", "/sites"),
    ("network", "/network"),
    ("power", "/power"),
    ("cloud", "/cloud"),
    ("jobs", "/jobs"),
    ("alerts", "/alerts"),
)
SITE_DEVICES_SHOWN = 200
DEVICE_EVENTS_SHOWN = 20
LANG_COOKIE_AGE_S = 365 * 24 * 3600
# Our pages load only our own files; Bootstrap's CSS embeds its small icons as data: URIs.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'")

_ERROR_KEYS: dict[int, tuple[str, str]] = {
    400: ("error.request_title", "error.request"),
    403: ("error.forbidden_title", "error.forbidden"),
    404: ("error.not_found_title", "error.not_found"),
}
# Badge colours of the health states (queries.STATES), interface and poll statuses.
_STATE_BADGE = {"ok": "success", "degraded": "warning", "down": "danger", "never": "secondary"}
_IF_BADGE = {"up": "success", "down": "danger", "lowerLayerDown": "danger", "testing": "warning", "dormant": "info"}
_POLL_BADGE = {"ok": "success", "timeout": "danger", "auth": "danger", "error": "warning", "never": "secondary"}
_SPEED_UNITS = (("tbps", 10**12), ("gbps", 10**9), ("mbps", 10**6), ("kbps", 10**3))
# Power page: days of the PUE trend, and the Bootstrap badge colour of each power tone (queries.power_tone).
POWER_PUE_DAYS = 14
POWER_TONE_BADGE = {"ok": "success", "warning": "warning", "critical": "danger", "stale": "secondary",
                    "unknown": "secondary", "none": "light"}
# The colour rules, handed to power.js so a live update is judged exactly as the server judged the page.
POWER_RULES: dict[str, Any] = {
    "tones": queries.POWER_TONES, "critical_flags": sorted(queries.POWER_CRITICAL_FLAGS),
    "site_order": list(queries.POWER_SITE_ORDER), "badges": POWER_TONE_BADGE,
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


router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


# --------------------------------------------------------------------------- helpers


def _state(request: Request) -> WebState:
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


def _isolate(text: str) -> str:
    """Wrap a code or hostname in Unicode isolates so it keeps its order inside an Arabic sentence."""
    return f"\u2068{text}\u2069"


def _fmt_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _speed(bps: int | None) -> tuple[str, str] | None:
    """ifSpeed/ifHighSpeed in bits per second as (unit key, number) for ``t('speed.<unit>', n=...)``:
    1000000000 → ("gbps", "1"), 2048000 → ("mbps", "2.048") (an E1 keeps its real rate)."""
    if bps is None or bps <= 0:
        return None
    for unit, scale in _SPEED_UNITS:
        if bps >= scale:
            return unit, f"{bps / scale:.3f}".rstrip("0").rstrip(".")
    return "bps", str(bps)


def _if_badge(admin: str, oper: str) -> str:
    """An interface shut on purpose (admin down) is grey, not an alarm; otherwise colour by oper status."""
    return "secondary" if admin == "down" else _IF_BADGE.get(oper, "secondary")


def _current_principal(request: Request, session: Session) -> Principal | None:
    uid = request.session.get("uid")
    return principal_from_user_id(session, uid) if isinstance(uid, int) else None


def web_user(request: Request, session: DbSession) -> Principal:
    """The logged-in user, or a redirect to the login page (every role may read the dashboard)."""
    principal = _current_principal(request, session)
    if principal is None:
        request.session.pop("uid", None)
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
    state = _state(request)

    def site_name(name_en: str | None, name_ar: str | None) -> str:
        """Arabic name in Arabic mode when there is one; English otherwise."""
        return (name_ar or name_en or "") if lang == "ar" else (name_en or name_ar or "")

    def label(group: str, value: str) -> str:
        key = f"{group}.{value}"
        return t(key) if t.has(key) else value

    base: dict[str, Any] = {
        "t": t, "lang": lang, "dir": t.dir, "other_lang": other,
        "lang_url": _url_with(request, lang=other),
        "csrf": request.session.get("csrf", "") if "session" in request.scope else "",
        "user": user, "nav": NAV, "section": section, "bootstrap": state.bootstrap,
        "site_name": site_name, "label": label, "badge": lambda v: _BADGE.get(v, "secondary"),
        "fmt_time": _fmt_time, "url_with": lambda **kw: _url_with(request, **kw),
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


def _check_csrf(request: Request, sent: Any) -> bool:
    expected = request.session.get("csrf", "")
    # Compare bytes: compare_digest raises TypeError on non-ASCII str, and a form can carry anything.
    return (bool(expected) and isinstance(sent, str)
            and secrets.compare_digest(sent.encode("utf-8"), str(expected).encode("utf-8")))


def _form_str(form: Any, name: str, limit: int) -> str:
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""


def _authenticate(engine: Any, username: str, password: str) -> User | None:
    """Check the password (argon2: slow by design, so it runs in a worker thread) and stamp last_login."""
    with Session(engine, expire_on_commit=False) as session:
        user = authenticate(session, username, password)
    if user is not None:  # the stamp in its own short write (the check above only read)
        with write_session(engine) as session:
            session.execute(update(User).where(User.id == user.id).values(last_login=user.last_login))
    return user


# --------------------------------------------------------------------------- login / logout / language


def _login_page(request: Request, *, error: str = "", next_url: str = "/", username: str = "",
                status_code: int = 200) -> HTMLResponse:
    # An anonymous session still gets a CSRF token, so the login form cannot be posted from elsewhere.
    if not request.session.get("csrf"):
        request.session["csrf"] = secrets.token_urlsafe(24)
    return render(request, "login.html", {"error": error, "next": next_url, "username": username},
                  status_code=status_code, section="login")


@router.get("/login")
def login_form(request: Request, session: DbSession) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if _current_principal(request, session) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _login_page(request, next_url=next_url)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    form = await request.form()
    username = _form_str(form, "username", 64).strip()
    password = _form_str(form, "password", 1024)
    request.state.audit_user = username  # the audit log names who tried, whatever the outcome
    next_url = safe_next(form.get("next"))
    if not _check_csrf(request, form.get("csrf")):
        request.session.pop("csrf", None)
        return _login_page(request, error="login.expired", next_url=next_url, username=username, status_code=400)
    user = await run_in_threadpool(_authenticate, request.app.state.engine, username, password)
    if user is None:
        log.info("dashboard: failed sign-in for %r from %s", username, request.client.host if request.client else "?")
        return _login_page(request, error="login.error", next_url=next_url, username=username, status_code=401)
    start_session(request, user)
    log.info("dashboard: %s signed in", user.username)
    return RedirectResponse(next_url, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    if request.session.get("uid") is not None and not _check_csrf(request, form.get("csrf")):
        return error_page(request, 403, "error.forbidden_title", "error.forbidden")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/logout")
def logout_get() -> Response:
    """Signing out changes state, so it is a POST from the navbar; a typed-in address just goes home."""
    return RedirectResponse("/", status_code=303)


@router.post("/lang")
async def set_lang(request: Request) -> Response:
    """Remember a language without JavaScript or a query string (the navbar toggle uses ``?lang=``)."""
    form = await request.form()
    lang = _form_str(form, "lang", 8)
    resp = RedirectResponse(safe_next(form.get("next")), status_code=303)
    if lang in LANGS:
        resp.set_cookie(COOKIE, lang, max_age=LANG_COOKIE_AGE_S, samesite="lax", httponly=True,
                        secure=bool(getattr(request.app.state.settings, "secure_cookies", False)))
    return resp


# --------------------------------------------------------------------------- pages

User_ = Depends(web_user)


@router.get("/")
def overview(request: Request, session: DbSession, user: Principal = User_) -> Response:
    return render(request, "overview.html", {
        "counts": queries.counts(session),
        "events": queries.latest_events(session, 10),
        "kinds": [k.value for k in SiteKind],
    }, section="overview", user=user)


@router.get("/sites")
def sites(request: Request, session: DbSession, user: Principal = User_,
          kind: str | None = None, q: str | None = None, page: str | None = None) -> Response:
    kind_v, q_v = queries.clean_kind(kind), queries.clean_query(q)
    rows, info = queries.sites(session, kind_v, q_v, queries.parse_page(page))
    return render(request, "sites.html", {
        "rows": rows, "info": info, "kind": kind_v, "q": q_v, "kinds": [k.value for k in SiteKind],
        "filtered": bool(kind_v or q_v),
    }, section="sites", user=user)


@router.get("/sites/{code}")
def site_page(request: Request, code: str, session: DbSession, user: Principal = User_) -> Response:
    site = queries.site_by_code(session, code)
    if site is None:
        return error_page(request, 404, "error.not_found_title", "error.site_not_found", section="sites",
                          code=_isolate(code[:64]))
    detail = queries.site_detail(session, site, devices_limit=SITE_DEVICES_SHOWN)
    return render(request, "site.html", {"site": site, **detail}, section="sites", user=user)


@router.get("/network")
def network(request: Request, session: DbSession, user: Principal = User_,
            q: str | None = None, site: str | None = None, page: str | None = None) -> Response:
    q_v = queries.clean_query(q)
    site_obj = queries.site_by_code(session, site) if site else None
    rows, info = queries.devices(session, q_v, site_obj.id if site_obj else None, queries.parse_page(page))
    return render(request, "network.html", {
        "rows": rows, "info": info, "q": q_v, "site": site_obj, "filtered": bool(q_v or site_obj),
        "link_total": queries.link_count(session), "states": queries.STATES, "state_badge": _STATE_BADGE,
        "graph": _state(request).graph, "topology_strings": _topology_strings(Translator(pick_lang(request))),
    }, section="network", user=user)


# Why a device has its state (queries.device_state); each has a "reason.<name>" string.
_REASONS = ("ok", "missing", "offline", "poll_timeout", "poll_auth", "poll_error", "never_polled", "link_down")


def _topology_strings(t: Translator) -> dict[str, str]:
    """The UI strings topology.js needs, handed over in a JSON data block (the CSP forbids inline
    scripts, and a data block is never executed)."""
    keys = [f"state.{s}" for s in queries.STATES] + [f"reason.{r}" for r in _REASONS] + [
        "network.graph_failed", "network.no_graph_lib", "network.truncated", "network.topology_ready",
        "network.link_hover", "kind.branch", "kind.hq", "kind.datacenter",
        "link.up", "link.down", "link.unknown",
    ]
    return {key: t(key) for key in keys}


def _topology_payload(topo: queries.Topology, lang: str) -> dict[str, Any]:
    """The graph as JSON for topology.js: cytoscape-shaped nodes (sites are compound parents of
    their devices) and edges, with states precomputed here so the legend, the list fallback and
    the tests all read the same answer."""
    def name(s: queries.TopoSite) -> str:
        return (s.name_ar or s.name_en) if lang == "ar" else (s.name_en or s.name_ar)

    code_of = {s.id: s.code for s in topo.sites}
    nodes: list[dict[str, Any]] = [
        {"id": f"site:{s.code}", "kind": "site", "label": name(s), "site": s.code, "site_kind": s.kind,
         "central": s.kind in queries.CENTRAL_KINDS, "state": s.state, "states": s.states,
         "url": f"/sites/{quote(s.code, safe='')}"}
        for s in topo.sites
    ]
    nodes += [
        {"id": f"device:{d.id}", "kind": "device", "device_id": d.id, "label": d.hostname,
         "site": code_of.get(d.site_id, ""),
         **({"parent": f"site:{code_of[d.site_id]}"} if d.site_id in code_of else {}),
         "role": d.role, "status": d.status, "poll_status": d.poll_status or "never", "state": d.state,
         "reason": d.reason, "url": f"/devices/{d.id}"}
        for d in topo.devices
    ]
    edges = [
        {"id": f"link:{lk.id}", "source": f"device:{lk.a_device_id}", "target": f"device:{lk.b_device_id}",
         "a_interface": lk.a_interface, "b_interface": lk.b_interface, "a_oper": lk.a_oper, "b_oper": lk.b_oper,
         "link_source": lk.source, "state": lk.state}
        for lk in topo.links
    ]
    return {"lang": lang, "truncated": topo.truncated, "nodes": nodes, "edges": edges,
            "counts": {"sites": len(topo.sites), "devices": len(topo.devices), "links": len(topo.links)}}


@router.get("/network/topology.json")
def network_topology(request: Request, session: DbSession) -> Response:
    """The city graph for the network page's script. Read-only and session-authenticated like the
    pages, but a missing login is a JSON 401 (a script cannot follow a redirect to a form)."""
    if _current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    payload = _topology_payload(queries.topology(session), pick_lang(request))
    return JSONResponse(payload, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/devices/{device_id}")
def device_page(request: Request, device_id: str, session: DbSession, user: Principal = User_) -> Response:
    device = queries.device_by_id(session, device_id)
    if device is None:
        return error_page(request, 404, "error.not_found_title", "error.device_not_found", section="network",
                          id=_isolate(device_id[:32]))
    detail = queries.device_detail(session, device, events_limit=DEVICE_EVENTS_SHOWN)
    return render(request, "device.html", {
        "device": device, **detail, "speed": _speed, "if_badge": _if_badge, "state_badge": _STATE_BADGE,
        "poll_badge": lambda v: _POLL_BADGE.get(v, "secondary"),
    }, section="network", user=user)


def _empty_state(request: Request, user: Principal, section: str) -> Response:
    return render(request, "empty.html", {"area": section}, section=section, user=user)


def _power_service(request: Request) -> PowerService:
    """The process's power service (shared with the API, which keeps it on ``app.state``)."""
    svc = getattr(request.app.state, "power_service", None)
    if svc is None:
        svc = request.app.state.power_service = PowerService(request.app.state.engine)
    return svc  # type: ignore[no-any-return]


def _power_payload(request: Request, session: Session, *, outage: str | None = None, history: bool = True
                   ) -> dict[str, Any] | None:
    """The power page's data: ``PowerService.status()`` and ``pue_now()`` (the API's own answers)
    with the chain, gauges and outages around them; ``None`` when nothing is configured."""
    svc = _power_service(request)
    view = queries.power_view(session, svc.status(), svc.pue_now(), outage_id=queries.parse_id(outage),
                              with_history=history)
    if view is not None:
        view["live_updates"] = getattr(request.app.state, "power_hub", None) is not None
        view["rules"] = POWER_RULES
    return view


# The string groups power.js needs (states, kinds, units, durations, event kinds, live status …).
_POWER_JS_PREFIXES = ("power.", "pstate.", "psite.", "pkind.", "pflag.", "pev.", "engine.", "unit.", "dur.",
                      "severity.", "tone.", "gauge.", "phase.", "pue.")


def _power_strings(t: Translator) -> dict[str, str]:
    """The UI strings power.js needs, handed over in a JSON data block like the topology's."""
    return {key: t(key) for key in catalog(DEFAULT_LANG) if key.startswith(_POWER_JS_PREFIXES)}


def _fmt_duration(t: Translator, seconds: float | None) -> str:
    """8.4 s, 2 min 05 s, 1 h 12 min, 3 d 4 h (power.js formats ages the same way)."""
    if seconds is None:
        return ""
    if seconds < 60:
        return t("dur.s", n=f"{seconds:.1f}".removesuffix(".0"))
    total = int(round(seconds))
    if total < 3600:
        return t("dur.min", m=total // 60, s=f"{total % 60:02d}")
    if total < 86400:
        return t("dur.h", h=total // 3600, m=f"{total % 3600 // 60:02d}")
    return t("dur.d", d=total // 86400, h=total % 86400 // 3600)


def _fmt_num(value: float | None, digits: int = 1) -> str:
    """A reading for people: 45.2, 45 (not 45.0); halves round up, as power.js's Math.round does."""
    if value is None:
        return ""
    if not digits:
        return str(math.floor(value + 0.5))
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _fmt_iso(value: str | None, with_seconds: bool = True) -> str:
    """An ISO time from the power payload as UTC ``YYYY-MM-DD HH:MM:SS``."""
    if not value:
        return ""
    when = dt.datetime.fromisoformat(value).astimezone(dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def _power_chart(session: Session, t: Translator, view: dict[str, Any], device: str | None, reading: str | None,
                 range_key: str | None) -> dict[str, Any]:
    """The Readings card's data (queries.power_chart) with each reading's text for people: its
    label when web/i18n has one (``reading.<name>``), its canonical name and its unit."""
    chart = queries.power_chart(session, view["devices"], device, reading, range_key)
    for d in chart["devices"]:
        d["text"] = t("power.chart_device_option", name=_isolate(d["name"]), kind=t(f"pkind.{d['kind']}")
                      if t.has(f"pkind.{d['kind']}") else d["kind"])
        for r in d["readings"]:
            unit_key = f"runit.{queries.POWER_UNIT_KEYS.get(r['unit'], '')}"
            r["unit_text"] = t(unit_key) if t.has(unit_key) else r["unit"]
            r["label"] = t(f"reading.{r['name']}") if t.has(f"reading.{r['name']}") else ""
            r["text"] = (t("power.chart_reading_option", label=r["label"], name=_isolate(r["name"]),
                           unit=r["unit_text"]) if r["label"] else
                         t("power.chart_reading_plain", name=_isolate(r["name"]), unit=r["unit_text"]))
    return chart


@router.get("/power")
def power(request: Request, session: DbSession, user: Principal = User_, outage: str | None = None,
          chart_device: str | None = None, chart_reading: str | None = None, chart_range: str | None = None
          ) -> Response:
    """Power: the chain coloured by live state, gauges, PUE, outages, a chart of any reading;
    power.js keeps it live over SSE."""
    view = _power_payload(request, session, outage=outage)
    if view is None:
        return _empty_state(request, user, "power")
    from infra_mgr.power.api import pue_daily

    lang = pick_lang(request)
    t = Translator(lang)
    daily = pue_daily(request, session, days=POWER_PUE_DAYS)
    sites = {s["id"]: s for s in view["sites"]}
    return render(request, "power.html", {
        "view": view, "daily": daily, "sites_by_id": sites, "tones": POWER_TONE_BADGE,
        "power_tones": queries.POWER_TONES,
        "power_strings": _power_strings(t), "fmt_duration": lambda s: _fmt_duration(t, s), "fmt_num": _fmt_num,
        "fmt_iso": _fmt_iso, "pue_days": POWER_PUE_DAYS, "chain_mirror": t.dir == "rtl",
        "chart": _power_chart(session, t, view, chart_device, chart_reading, chart_range),
    }, section="power", user=user)


@router.get("/power/chain.json")
def power_chain(request: Request, session: DbSession) -> Response:
    """The power page's live data (devices, chain, sites, PUE) for power.js to refresh from.
    Read-only and session-authenticated; a missing login is a JSON 401, like the topology's."""
    if _current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    view = _power_payload(request, session, history=False) or {"devices": [], "nodes": [], "edges": [],
                                                                "sites": [], "pue": None}
    return JSONResponse(view, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/cloud")
def cloud(request: Request, user: Principal = User_) -> Response:
    return _empty_state(request, user, "cloud")


@router.get("/jobs")
def jobs(request: Request, user: Principal = User_) -> Response:
    return _empty_state(request, user, "jobs")


@router.get("/alerts")
def alerts(request: Request, session: DbSession, user: Principal = User_, page: str | None = None) -> Response:
    rows, info = queries.alerts(session, queries.parse_page(page))
    return render(request, "alerts.html", {"rows": rows, "info": info}, section="alerts", user=user)


# --------------------------------------------------------------------------- mounting


def mount_web(app: FastAPI) -> None:
    """Add the dashboard's pages and static files to the app (called by ``create_app``)."""
    bootstrap = vendor_dir("bootstrap")
    graph = vendor_dir("cytoscape")
    templates = Jinja2Templates(directory=str(web_dir("templates")))
    app.state.web = WebState(templates=templates, bootstrap=bootstrap is not None, graph=graph is not None)
    # The vendor mounts must come before /static, which would otherwise swallow their paths.
    if bootstrap is not None:
        app.mount("/static/vendor/bootstrap", StaticFiles(directory=bootstrap), name="vendor-bootstrap")
    if graph is not None:
        app.mount("/static/vendor/cytoscape", StaticFiles(directory=graph), name="vendor-cytoscape")
    static = web_dir("static")
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    else:
        log.warning("dashboard static folder %s is missing: pages will render without our stylesheet", static)
    app.include_router(router)
