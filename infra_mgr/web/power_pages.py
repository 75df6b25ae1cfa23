"""The Power page and its live data for power.js."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.power.service import PowerService
from infra_mgr.web import format as fmt
from infra_mgr.web import queries
from infra_mgr.web.i18n import DEFAULT_LANG, Translator, catalog, pick_lang
from infra_mgr.web.pages import User_, current_principal, empty_state, html_router, render

router = html_router()

# Power page: days of the PUE trend, and the Bootstrap badge colour of each power tone (queries.power_tone).
POWER_PUE_DAYS = 14
POWER_TONE_BADGE = {"ok": "success", "warning": "warning", "critical": "danger", "stale": "secondary",
                    "unknown": "secondary", "none": "light"}
# The colour rules, handed to power.js so a live update is judged exactly as the server judged the page.
POWER_RULES: dict[str, Any] = {
    "tones": queries.POWER_TONES, "critical_flags": sorted(queries.POWER_CRITICAL_FLAGS),
    "site_order": list(queries.POWER_SITE_ORDER), "badges": POWER_TONE_BADGE,
}


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








def _power_chart(session: Session, t: Translator, view: dict[str, Any], device: str | None, reading: str | None,
                 range_key: str | None) -> dict[str, Any]:
    """The Readings card's data (queries.power_chart) with each reading's text for people: its
    label when web/i18n has one (``reading.<name>``), its canonical name and its unit."""
    chart = queries.power_chart(session, view["devices"], device, reading, range_key)
    for d in chart["devices"]:
        d["text"] = t("power.chart_device_option", name=fmt.isolate(d["name"]), kind=t(f"pkind.{d['kind']}")
                      if t.has(f"pkind.{d['kind']}") else d["kind"])
        for r in d["readings"]:
            unit_key = f"runit.{queries.POWER_UNIT_KEYS.get(r['unit'], '')}"
            r["unit_text"] = t(unit_key) if t.has(unit_key) else r["unit"]
            r["label"] = t(f"reading.{r['name']}") if t.has(f"reading.{r['name']}") else ""
            r["text"] = (t("power.chart_reading_option", label=r["label"], name=fmt.isolate(r["name"]),
                           unit=r["unit_text"]) if r["label"] else
                         t("power.chart_reading_plain", name=fmt.isolate(r["name"]), unit=r["unit_text"]))
    return chart


@router.get("/power")
def power(request: Request, session: DbSession, user: Principal = User_, outage: str | None = None,
          chart_device: str | None = None, chart_reading: str | None = None, chart_range: str | None = None
          ) -> Response:
    """Power: the chain coloured by live state, gauges, PUE, outages, a chart of any reading;
    power.js keeps it live over SSE."""
    view = _power_payload(request, session, outage=outage)
    if view is None:
        return empty_state(request, user, "power")
    from infra_mgr.power.api import pue_daily

    lang = pick_lang(request)
    t = Translator(lang)
    daily = pue_daily(request, session, days=POWER_PUE_DAYS)
    sites = {s["id"]: s for s in view["sites"]}
    return render(request, "power.html", {
        "view": view, "daily": daily, "sites_by_id": sites, "tones": POWER_TONE_BADGE,
        "power_tones": queries.POWER_TONES,
        "power_strings": _power_strings(t), "fmt_duration": lambda s: fmt.fmt_duration(t, s), "fmt_num": fmt.fmt_num,
        "fmt_iso": fmt.fmt_iso, "pue_days": POWER_PUE_DAYS, "chain_mirror": t.dir == "rtl",
        "chart": _power_chart(session, t, view, chart_device, chart_reading, chart_range),
    }, section="power", user=user)


@router.get("/power/chain.json")
def power_chain(request: Request, session: DbSession) -> Response:
    """The power page's live data (devices, chain, sites, PUE) for power.js to refresh from.
    Read-only and session-authenticated; a missing login is a JSON 401, like the topology's."""
    if current_principal(request, session) is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    view = _power_payload(request, session, history=False) or {"devices": [], "nodes": [], "edges": [],
                                                                "sites": [], "pue": None}
    return JSONResponse(view, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
