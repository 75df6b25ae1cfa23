"""The Links page (branches ranked by the health of their uplinks), one uplink's page with its
charts, and the management report (print-ready HTML and CSV).

Everything shown comes from the network domain's link read views
(:mod:`infra_mgr.network.link_views`) and the audit's sentences (:func:`infra_mgr.network.audit.reason_text`):
the state, score and reasons of a branch are decided there once, and the API, the CLI and these
pages show the same answer. What stays here is about the web: which rows the filter keeps, links
between pages, the chart's range from the URL, and the JSON the page scripts refresh from.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.common import epoch_ms
from infra_mgr.network import audit as link_audit
from infra_mgr.network import link_views
from infra_mgr.network import views as network_views
from infra_mgr.network.linkfacts import S_DISCARDS_PS, S_ERRORS_PS, S_IN_BPS, S_OPER_UP, S_OUT_BPS, AuditState
from infra_mgr.telemetry.store import TelemetryStore
from infra_mgr.web import format as fmt
from infra_mgr.web.i18n import DEFAULT_LANG, Translator, catalog, pick_lang
from infra_mgr.web.network_pages import topology_strings
from infra_mgr.web.pages import User_, current_principal, error_page, html_router, render

router = html_router()

# The audit's states, worst first (the order of the summary and of the filter).
STATES: tuple[str, ...] = ("down", "degraded", "unknown", "ok")
STATE_BADGE = {"ok": "success", "degraded": "warning", "down": "danger", "unknown": "secondary"}
# A shape beside each badge, so a state reads without colour (the map's legend uses the same).
STATE_MARK = {"ok": "●", "degraded": "▲", "down": "◆", "unknown": "■"}
REASON_CODES = ("link_down", "flapping", "errors", "speed", "neighbor", "utilisation", "loss", "unreachable",
                "no_snmp", "no_data", "no_uplink", "no_probe")
# Chart ranges of the uplink page: key → (seconds, most points). A range is kept in the URL
# (?range=). The point limits pick the store's resolution: an hour of raw samples (one a minute
# or faster), a day and a week of 5-minute roll-ups, a month of hourly ones.
RANGES: dict[str, tuple[int, int]] = {"1h": (3600, 720), "24h": (86400, 600), "7d": (7 * 86400, 2016),
                                      "30d": (30 * 86400, 720)}
DEFAULT_RANGE = "24h"
CHART_SERIES = (S_IN_BPS, S_OUT_BPS, S_ERRORS_PS, S_DISCARDS_PS)
# Series read only to know since when the uplink has data (the status timeline starts there).
FIRST_SAMPLE_SERIES = (*CHART_SERIES, S_OPER_UP)
FLAPS_SHOWN = 500
REFRESH_S = 30
_JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _store(request: Request) -> TelemetryStore:
    """The process's telemetry store (the power service keeps one on ``app.state``; else a new facade)."""
    svc = getattr(request.app.state, "power_service", None)
    if svc is not None:
        return svc.store
    return TelemetryStore(request.app.state.engine)


def clean_state(raw: str | None) -> str:
    """A state filter; anything else shows every branch (a bad value is ignored, not an error)."""
    value = (raw or "").strip().lower()
    return value if value in STATES else ""


def clean_range(raw: str | None) -> str:
    value = (raw or "").strip().lower()
    return value if value in RANGES else DEFAULT_RANGE


def _interface_id(raw: str) -> int | None:
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        return None
    return int(raw)


def _state(value: Any) -> str:
    return str(value.value if isinstance(value, AuditState) else value)


def _speed_text(t: Translator, bps: int | None) -> str:
    """A line rate in the reader's language with the catalogue's units (100 Mb/s, 100 ميجابت/ث)."""
    shown = fmt.speed(bps)
    return t(f"speed.{shown[0]}", n=shown[1]) if shown else ""


def _reason_rows(t: Translator, audit: Any) -> list[dict[str, Any]]:
    """A branch's reasons as the table shows them: the sentence in the reader's language and where
    it leads (the uplink's page; for a device's reachability, the device's page)."""
    device_ids = {r.device: r.device_id for r in audit.reach}
    rows = []
    for reason in audit.reasons:
        if reason.interface_id:
            href = f"/links/{reason.interface_id}"
        elif reason.device and device_ids.get(reason.device):
            href = f"/devices/{device_ids[reason.device]}"
        else:
            href = ""
        rows.append({"code": reason.code, "severity": _state(reason.severity), "href": href,
                     "text": link_audit.reason_text(reason, t, isolate=True)})
    return rows


def _rows(t: Translator, audits: list[Any]) -> list[dict[str, Any]]:
    return [{"audit": a, "state": _state(a.state), "reasons": _reason_rows(t, a)} for a in audits]


def _counts(audits: list[Any]) -> dict[str, int]:
    counted = Counter(_state(a.state) for a in audits)
    return {s: counted.get(s, 0) for s in STATES}


def _audits(request: Request, session: Session) -> list[Any]:
    return list(link_views.audit_branches(session, _store(request)))


def _table_html(request: Request, user: Principal | None, rows: list[dict[str, Any]], state: str, total: int) -> str:
    """The ranked table rendered for the reader (the page includes the same template), so the
    refresh replaces it with exactly what a reload would show."""
    resp = render(request, "_links_table.html", _table_context(rows, state, total), section="links", user=user)
    return bytes(resp.body).decode()


def _table_context(rows: list[dict[str, Any]], state: str, total: int) -> dict[str, Any]:
    return {"rows": rows, "state": state, "total": total, "state_badge": STATE_BADGE, "state_mark": STATE_MARK}


def _links_strings(t: Translator) -> dict[str, str]:
    """The strings links.js needs, handed over in a JSON data block (the CSP forbids inline scripts)."""
    return {key: t(key) for key in catalog(DEFAULT_LANG) if key.startswith("links.")}


def _map_strings(t: Translator) -> dict[str, str]:
    """topology.js's strings, with the audit's states and short reason names in place of the
    network page's poll states: the same map, coloured by the audit."""
    strings = topology_strings(t)
    for s in (*STATES, "none"):
        strings[f"state.{s}"] = t(f"links.state.{s}")
    for code in REASON_CODES:
        strings[f"reason.audit.{code}"] = t(f"links.code.{code}")
    strings["network.topology_ready"] = t("links.map_ready")
    return strings


def _page_payload(request: Request, session: Session, user: Principal | None, state: str) -> dict[str, Any]:
    t = Translator(pick_lang(request))
    audits = _audits(request, session)
    shown = [a for a in audits if not state or _state(a.state) == state]
    rows = _rows(t, shown)
    return {"audits": audits, "rows": rows, "counts": _counts(audits), "total": len(audits),
            "generated_at": dt.datetime.now(dt.UTC)}


@router.get("/links")
def links(request: Request, session: DbSession, user: Principal = User_, state: str | None = None) -> Response:
    """Branches ranked worst first with their reasons, counts per state, the city map coloured by
    the audit; links.js refreshes the table every 30 s with the same filter."""
    state_v = clean_state(state)
    t = Translator(pick_lang(request))
    data = _page_payload(request, session, user, state_v)
    return render(request, "links.html", {
        **data, **_table_context(data["rows"], state_v, data["total"]), "states": STATES,
        "graph": request.app.state.web.graph, "map_strings": _map_strings(t), "links_strings": _links_strings(t),
        "refresh_s": REFRESH_S, "fmt_utc": fmt.fmt_utc, "when": _when,
    }, section="links", user=user)


@router.get("/links/audit.json")
def links_audit(request: Request, session: DbSession, state: str | None = None) -> Response:
    """The Links page's refresh: counts per state and the ranked table for the filter, rendered in
    the reader's language. Session-authenticated; a missing login is a JSON 401."""
    principal = current_principal(request, session)
    if principal is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    state_v = clean_state(state)
    data = _page_payload(request, session, principal, state_v)
    return JSONResponse({
        "state": state_v, "counts": data["counts"], "total": data["total"], "shown": len(data["rows"]),
        "generated_at": data["generated_at"].isoformat(),
        "ranked": [{"site_code": r["audit"].site_code, "state": r["state"], "score": r["audit"].score}
                   for r in data["rows"]],
        "table_html": _table_html(request, principal, data["rows"], state_v, data["total"]),
    }, headers=_JSON_HEADERS)


@router.get("/links/topology.json")
def links_topology(request: Request, session: DbSession) -> Response:
    """The city graph of the network page (the same view) with each branch coloured by its audit
    state and its reasons as the site's problems; sites the audit does not cover (headquarters,
    data centres) are ``none``. Devices keep their own poll state."""
    if current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    topo = network_views.topology(session).model_dump(mode="json")
    by_code = {a.site_code: a for a in _audits(request, session)}
    for site in topo["sites"]:
        audit = by_code.get(site["code"])
        site["state"] = _state(audit.state) if audit else "none"
        site["problems"] = [{"hostname": r.device or site["code"], "reason": f"audit.{r.code}"}
                            for r in (audit.reasons if audit else [])]
    return JSONResponse(topo, headers=_JSON_HEADERS)


def _first_sample_ms(series: list[Any], changes: list[Any]) -> int | None:
    """Since when the range holds anything stored about the uplink: its earliest point of any
    series, or its earliest status change. Before that the status timeline is "no data", not the
    first change's previous status stretched back to the start of the range."""
    found = [min(p[0] for p in s.points) for s in series if s.points]
    found += [ms for ms in (epoch_ms(c.at) for c in changes) if ms is not None]
    return min(found) if found else None


def _when(value: dt.datetime | None) -> str:
    """A UTC time isolated for a sentence: left to right inside Arabic text, never read reversed."""
    text = fmt.fmt_utc(value)
    return fmt.isolate(text) if text else ""


@router.get("/links/report")
def links_report(request: Request, session: DbSession, user: Principal = User_) -> Response:
    """The management report: summary counts and the ranked table with reasons, laid out for A4
    (no navigation; prints the same rows the page shows)."""
    data = _page_payload(request, session, user, "")
    return render(request, "links_report.html", {
        **data, "state_badge": STATE_BADGE, "state_mark": STATE_MARK, "states": STATES, "fmt_utc": fmt.fmt_utc,
        "when": _when,
    }, section="links", user=user)


@router.get("/links/report.csv")
def links_report_csv(request: Request, session: DbSession, user: Principal = User_) -> Response:
    """The report as CSV (one row per branch), in the reader's language, with a BOM for Excel."""
    t = Translator(pick_lang(request))
    text = link_views.audit_csv(_audits(request, session), t)
    if not text.startswith("\ufeff"):
        text = "\ufeff" + text
    day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="link-audit-{day}.csv"', "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


def _find(request: Request, session: Session, interface_id: int) -> tuple[Any, Any] | None:
    """(the branch's audit, the uplink's read view) of one uplink, or ``None`` when it is not one:
    the uplink's own row, then its one branch audited (not the whole city for one page)."""
    one = link_views.uplink(session, interface_id)
    if one is None:
        return None
    for audit in link_views.audit_branches(session, _store(request), site_code=one.site_code):
        for up in audit.uplinks_detail:
            if up.interface_id == interface_id:
                return audit, up
    return None


@router.get("/links/{interface_id}")
def link_page(request: Request, interface_id: str, session: DbSession, user: Principal = User_,
              chart_range: str | None = Query(default=None, alias="range")) -> Response:
    """One uplink: its facts against what is expected, its findings, and charts of traffic,
    errors and status over the range in the URL (drawn by links.js from ``series.json``)."""
    number = _interface_id(interface_id)
    found = _find(request, session, number) if number else None
    if found is None:
        return error_page(request, 404, "error.not_found_title", "links.uplink_not_found", section="links",
                          id=fmt.isolate(interface_id[:32]))
    audit, up = found
    t = Translator(pick_lang(request))
    range_v = clean_range(chart_range)
    reasons = [r for r in _reason_rows(t, audit) if r["href"] == f"/links/{up.interface_id}"]
    return render(request, "link.html", {
        "audit": audit, "up": up, "reasons": reasons, "range": range_v, "ranges": list(RANGES),
        "state": _state(audit.state), "state_badge": STATE_BADGE, "state_mark": STATE_MARK,
        "speed_text": lambda bps: _speed_text(t, bps), "fmt_utc": fmt.fmt_utc, "when": _when,
        "links_strings": _links_strings(t),
        "chart_src": f"/links/{up.interface_id}/series.json",
    }, section="links", user=user)


@router.get("/links/{interface_id}/series.json")
def link_series(request: Request, interface_id: str, session: DbSession,
                chart_range: str | None = Query(default=None, alias="range")) -> Response:
    """One uplink's chart data for a range: traffic and error series (min/avg/max points at the
    store's resolution for that range), its speeds, and its status changes in the range."""
    if current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    number = _interface_id(interface_id)
    found = _find(request, session, number) if number else None
    if found is None:
        return JSONResponse({"detail": "not an uplink"}, status_code=404, headers={"Cache-Control": "no-store"})
    _audit, up = found
    range_v = clean_range(chart_range)
    end_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    seconds, max_points = RANGES[range_v]
    start_ms = end_ms - seconds * 1000
    series = link_views.link_series(session, _store(request), up.interface_id, start_ms, end_ms,
                                    names=list(FIRST_SAMPLE_SERIES), max_points=max_points)
    if series is None:  # the interface went away between the two reads
        return JSONResponse({"detail": "not an uplink"}, status_code=404, headers={"Cache-Control": "no-store"})
    since = dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC)
    changes = link_views.flap_history(session, up.interface_id, since=since, limit=FLAPS_SHOWN)
    first_sample_ms = _first_sample_ms(series.series, changes)
    return JSONResponse({
        "interface_id": up.interface_id, "range": range_v, "start_ms": start_ms, "end_ms": end_ms,
        "resolution_s": series.resolution_s,
        "series": {s.name: {"unit": s.unit, "points": [list(p) for p in s.points]} for s in series.series
                   if s.name in CHART_SERIES},
        "first_sample_ms": first_sample_ms,
        "speed_bps": up.speed_bps, "expected_speed_bps": up.expected_speed_bps,
        "oper_status": up.oper_status, "oper_since_ms": epoch_ms(up.oper_since), "last_ok_ms": epoch_ms(up.last_ok),
        "changes": sorted(({"at_ms": epoch_ms(c.at), "status": c.status, "previous": c.previous,
                            "transitions": c.transitions} for c in changes), key=lambda c: c["at_ms"] or 0),
    }, headers=_JSON_HEADERS)
