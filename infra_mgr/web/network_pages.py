"""Overview, sites, the network page with its topology, device pages and alerts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.inventory.models import SiteKind
from infra_mgr.web import format as fmt
from infra_mgr.web import queries
from infra_mgr.web.i18n import Translator, pick_lang
from infra_mgr.web.pages import User_, current_principal, error_page, html_router, render, web_state

router = html_router()

SITE_DEVICES_SHOWN = 200
DEVICE_EVENTS_SHOWN = 20
# Badge colours of the health states (queries.STATES), interface and poll statuses.
_STATE_BADGE = {"ok": "success", "degraded": "warning", "down": "danger", "never": "secondary"}
_POLL_BADGE = {"ok": "success", "timeout": "danger", "auth": "danger", "error": "warning", "never": "secondary"}


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
                          code=fmt.isolate(code[:64]))
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
        "graph": web_state(request).graph, "topology_strings": _topology_strings(Translator(pick_lang(request))),
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
    if current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    payload = _topology_payload(queries.topology(session), pick_lang(request))
    return JSONResponse(payload, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/devices/{device_id}")
def device_page(request: Request, device_id: str, session: DbSession, user: Principal = User_) -> Response:
    device = queries.device_by_id(session, device_id)
    if device is None:
        return error_page(request, 404, "error.not_found_title", "error.device_not_found", section="network",
                          id=fmt.isolate(device_id[:32]))
    detail = queries.device_detail(session, device, events_limit=DEVICE_EVENTS_SHOWN)
    return render(request, "device.html", {
        "device": device, **detail, "speed": fmt.speed, "if_badge": fmt.if_badge, "state_badge": _STATE_BADGE,
        "poll_badge": lambda v: _POLL_BADGE.get(v, "secondary"),
    }, section="network", user=user)


def _empty_state(request: Request, user: Principal, section: str) -> Response:
    return render(request, "empty.html", {"area": section}, section=section, user=user)


@router.get("/alerts")
def alerts(request: Request, session: DbSession, user: Principal = User_, page: str | None = None) -> Response:
    rows, info = queries.alerts(session, queries.parse_page(page))
    return render(request, "alerts.html", {"rows": rows, "info": info}, section="alerts", user=user)
