"""Overview, sites, the network page with its topology, device pages and alerts."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.common import ListPage
from infra_mgr.events import views as event_views
from infra_mgr.inventory import views as inventory_views
from infra_mgr.network import views as network_views
from infra_mgr.web import config_pages, queries
from infra_mgr.web import format as fmt
from infra_mgr.web.i18n import Translator, pick_lang
from infra_mgr.web.pages import User_, current_principal, error_page, html_router, render, web_state

router = html_router()

SITE_DEVICES_SHOWN = 200
DEVICE_EVENTS_SHOWN = 20
OVERVIEW_EVENTS_SHOWN = 10
# Badge colours of the health states (network_views.STATES), interface and poll statuses.
_STATE_BADGE = {"ok": "success", "degraded": "warning", "down": "danger", "never": "secondary", "empty": "light"}
_POLL_BADGE = {"ok": "success", "timeout": "danger", "auth": "danger", "error": "warning", "never": "secondary"}
# A failed poll's state and the catalogue's words for it (the map's reasons: one vocabulary).
_POLL_REASON = {"timeout": "reason.poll_timeout", "auth": "reason.poll_auth", "error": "reason.poll_error"}


def clean_kind(raw: str | None) -> str:
    """A site kind filter; unknown kinds are ignored (show all) rather than rejected."""
    value = (raw or "").strip().lower()
    return value if value in inventory_views.SITE_KINDS else ""


def _info(lp: ListPage[Any]) -> queries.PageInfo:
    return queries.page_info(lp.total, lp.page, lp.size)


OVERVIEW_DOWN_SHOWN = 10


@router.get("/")
def overview(request: Request, session: DbSession, user: Principal = User_) -> Response:
    """Problems first (open power outages, devices not answering, the day's alarms), then the
    recent events that say something, with routine discovery noise grouped to one line each."""
    from infra_mgr.power import views as power_views

    down, down_total = network_views.down_devices(session, OVERVIEW_DOWN_SHOWN)
    open_outages = [o for o in power_views.outages(session, 20) if o.ended_at is None]
    site_ids = {o.site_id for o in open_outages if o.site_id}
    sites_by_id = inventory_views.sites_by_id(session, site_ids)
    return render(request, "overview.html", {
        "counts": inventory_views.counts(session),
        "events": event_views.overview(session, OVERVIEW_EVENTS_SHOWN),
        "kinds": inventory_views.SITE_KINDS,
        "outages": [(o, sites_by_id.get(o.site_id or 0)) for o in open_outages],
        "down": down, "down_total": down_total, "alarms": event_views.alarm_count(session),
    }, section="overview", user=user)


@router.get("/sites")
def sites(request: Request, session: DbSession, user: Principal = User_,
          kind: str | None = None, q: str | None = None, page: str | None = None) -> Response:
    kind_v, q_v = clean_kind(kind), queries.clean_query(q)
    listed = inventory_views.sites(session, kind_v, q_v, queries.parse_page(page), queries.PAGE_SIZE)
    health = {h.id: h for h in network_views.sites_health(session, [s.id for s in listed.rows])}
    return render(request, "sites.html", {
        "rows": listed.rows, "info": _info(listed), "health": health, "state_badge": _STATE_BADGE,
        "kind": kind_v, "q": q_v, "kinds": inventory_views.SITE_KINDS, "filtered": bool(kind_v or q_v),
    }, section="sites", user=user)


@router.get("/sites/{code}")
def site_page(request: Request, code: str, session: DbSession, user: Principal = User_) -> Response:
    detail = inventory_views.site_detail(session, code, devices_limit=SITE_DEVICES_SHOWN)
    if detail is None:
        return error_page(request, 404, "error.not_found_title", "error.site_not_found", section="sites",
                          code=fmt.isolate(code[:64]))
    states = network_views.site_state_detail(session, detail.site.id)
    return render(request, "site.html", {
        **dict(detail), "health": states.site if states else None, "device_states": states.devices if states else {},
        "state_badge": _STATE_BADGE,
    }, section="sites", user=user)


@router.get("/network")
def network(request: Request, session: DbSession, user: Principal = User_,
            q: str | None = None, site: str | None = None, page: str | None = None) -> Response:
    q_v = queries.clean_query(q)
    site_obj = inventory_views.site_by_code(session, site) if site else None
    listed = inventory_views.devices(session, q_v, site_obj.id if site_obj else None, queries.parse_page(page),
                                     queries.PAGE_SIZE)
    return render(request, "network.html", {
        "rows": listed.rows, "info": _info(listed), "q": q_v, "site": site_obj, "filtered": bool(q_v or site_obj),
        "link_total": network_views.link_count(session), "states": network_views.STATES,
        "state_badge": _STATE_BADGE, "graph": web_state(request).graph,
        "topology_strings": topology_strings(Translator(pick_lang(request))),
    }, section="network", user=user)


def topology_strings(t: Translator) -> dict[str, str]:
    """The UI strings topology.js needs, handed over in a JSON data block (the CSP forbids inline
    scripts, and a data block is never executed)."""
    keys = [f"state.{s}" for s in network_views.STATES] + [f"reason.{r}" for r in network_views.REASONS] + [
        "network.graph_failed", "network.no_graph_lib", "network.truncated", "network.topology_ready",
        "network.link_hover", "kind.branch", "kind.hq", "kind.datacenter",
        "link.up", "link.down", "link.unknown",
    ]
    return {key: t(key) for key in keys}


@router.get("/network/topology.json")
def network_topology(request: Request, session: DbSession) -> Response:
    """The city graph for the network page's script: exactly what ``GET /api/v1/network/topology``
    answers (the same view), read with the page's session instead of a token. A missing login is a
    JSON 401 (a script cannot follow a redirect to a form)."""
    if current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    payload = network_views.topology(session).model_dump(mode="json")
    return JSONResponse(payload, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _device_id(raw: str) -> int | None:
    """A device id from its address; anything that is not a plausible id is simply not found."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def poll_text(t: Translator, poll: network_views.DevicePollRead | None) -> str:
    """The last poll's message in the reader's language. The stored message is the poller's own
    English detail (operation names, addresses, library errors): the page says what it means by the
    poll state and keeps the detail as a tooltip for whoever debugs it."""
    if poll is None or not poll.message:
        return ""
    if poll.status in _POLL_REASON:
        return t(_POLL_REASON[poll.status])
    return t("device.poll_partial") if poll.status == "ok" else ""


@router.get("/devices/{device_id}")
def device_page(request: Request, device_id: str, session: DbSession, user: Principal = User_) -> Response:
    number = _device_id(device_id)
    detail = network_views.device_detail(session, number, events_limit=DEVICE_EVENTS_SHOWN) if number else None
    if detail is None:
        return error_page(request, 404, "error.not_found_title", "error.device_not_found", section="network",
                          id=fmt.isolate(device_id[:32]))
    return render(request, "device.html", {
        **dict(detail), "poll_text": poll_text(Translator(pick_lang(request)), detail.poll),
        **config_pages.device_backup(session, Translator(pick_lang(request)), detail.device.id),
        "speed": fmt.speed, "if_badge": fmt.if_badge, "state_badge": _STATE_BADGE,
        "poll_badge": lambda v: _POLL_BADGE.get(v, "secondary"),
    }, section="network", user=user)


@router.get("/alerts")
def alerts(request: Request, session: DbSession, user: Principal = User_, page: str | None = None) -> Response:
    listed = event_views.alerts(session, queries.parse_page(page), queries.PAGE_SIZE)
    return render(request, "alerts.html", {"rows": listed.rows, "info": _info(listed)}, section="alerts", user=user)
