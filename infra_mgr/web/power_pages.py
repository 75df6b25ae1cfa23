"""The Power page and its live data for power.js.

Everything shown comes from the power domain's read side (:mod:`infra_mgr.power.views`): the page
and ``/power/chain.json`` are :func:`~infra_mgr.power.views.power_view` as JSON, the same model
``/api/v1/power/view`` serves. What stays here is about the web: badges, strings, units for people,
the chart's selection from the URL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlmodel import Session

from infra_mgr.api.deps import DbSession
from infra_mgr.auth.service import Principal
from infra_mgr.power import views
from infra_mgr.power.readings import CANONICAL
from infra_mgr.telemetry.store import TelemetryStore
from infra_mgr.web import format as fmt
from infra_mgr.web.i18n import DEFAULT_LANG, Translator, catalog, pick_lang
from infra_mgr.web.pages import User_, current_principal, empty_state, html_router, render

router = html_router()

# Power page: days of the PUE trend, and the Bootstrap badge colour of each power tone.
POWER_PUE_DAYS = 14
POWER_TONE_BADGE = {"ok": "success", "warning": "warning", "critical": "danger", "stale": "secondary",
                    "unknown": "secondary", "none": "light"}
# How power.js draws a tone it is given (the tones themselves are computed by power.views).
POWER_RULES: dict[str, Any] = {"badges": POWER_TONE_BADGE}
# The unit of a canonical reading → the id of its display string (``runit.<id>`` in web/i18n).
POWER_UNIT_KEYS = {"%": "pct", "V": "v", "A": "a", "Hz": "hz", "W": "w", "kW": "kw", "kWh": "kwh", "°C": "c",
                   "kPa": "kpa", "rpm": "rpm", "s": "s", "count": "count", "L": "l"}


def parse_id(raw: str | None) -> int | None:
    """An object id from a query parameter; anything that is not a plausible id is ``None``."""
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
        return None
    return int(value)


def _store(request: Request) -> TelemetryStore:
    """The process's telemetry store (the API's power service keeps one on ``app.state``)."""
    svc = getattr(request.app.state, "power_service", None)
    if svc is not None:
        return svc.store
    return TelemetryStore(request.app.state.engine)


def _power_payload(request: Request, session: Session, *, outage: str | None = None, history: bool = True
                   ) -> dict[str, Any] | None:
    """The power page's data: :func:`infra_mgr.power.views.power_view` (what ``/api/v1/power/view``
    serves) as JSON, with what only the page needs; ``None`` when nothing is configured."""
    view = views.power_view(session, outage_id=parse_id(outage))
    if view is None:
        return None
    data = view.model_dump(mode="json", exclude=None if history else {"events"})
    data["live_updates"] = getattr(request.app.state, "power_hub", None) is not None
    data["rules"] = POWER_RULES
    return data


def _outages_html(request: Request, user: Principal, view: dict[str, Any]) -> str:
    """The Outages card's body rendered from ``view`` (the template power.html includes), so the
    live page replaces it from the same answer that sets the banner and the cards."""
    t = Translator(pick_lang(request))
    resp = render(request, "_power_outages.html", {
        "view": view, "sites_by_id": {s["id"]: s for s in view["sites"]},
        "fmt_duration": lambda s: fmt.fmt_duration(t, s), "fmt_num": fmt.fmt_num, "fmt_iso": fmt.fmt_iso,
    }, section="power", user=user)
    return bytes(resp.body).decode()


def _events_html(request: Request, session: Session, user: Principal) -> str:
    """The Power events card's items rendered in the viewer's language (the template power.html
    includes), so power.js shows a live event's sentence as the page would, not its stored English."""
    events = [e.model_dump(mode="json") for e in views.power_events(session)]
    resp = render(request, "_power_events.html", {"events": events, "fmt_iso": fmt.fmt_iso},
                  section="power", user=user)
    return bytes(resp.body).decode()


# The string groups power.js needs (states, kinds, units, durations, event kinds, live status …).
_POWER_JS_PREFIXES = ("power.", "pstate.", "psite.", "pkind.", "pflag.", "pev.", "engine.", "unit.", "dur.",
                      "severity.", "tone.", "gauge.", "phase.", "pue.")


def _power_strings(t: Translator) -> dict[str, str]:
    """The UI strings power.js needs, handed over in a JSON data block like the topology's."""
    return {key: t(key) for key in catalog(DEFAULT_LANG) if key.startswith(_POWER_JS_PREFIXES)}


def power_chart(session: Session, devices: list[dict[str, Any]], device: str | None, reading: str | None,
                range_key: str | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the Readings card shows: every power device with its chartable readings, and the
    selection — from ``?chart_device=&chart_reading=&chart_range=`` when valid, else the first
    critical UPS or DRUPS with readings and its ``battery.charge`` (or its first reading) over 1 h.
    ``src`` is the series request for that selection (the link shown without JavaScript)."""
    now = now or dt.datetime.now(dt.UTC)
    live = [views.DeviceLive.model_validate(d) for d in devices]
    readings = views.chart_readings(session, live)
    critical = views.critical_ids(session)
    chosen = parse_id(device)
    if chosen not in readings:
        with_data = [d for d in live if readings.get(d.id)]
        first = next((d for d in with_data if d.id in critical and d.kind in ("ups", "drups")), None)
        pick = first or (with_data[0] if with_data else None) or (live[0] if live else None)
        chosen = pick.id if pick else None
    names = readings.get(chosen or 0, [])
    name = reading if reading in names else (
        views.CHART_DEFAULT_READING if views.CHART_DEFAULT_READING in names else (names[0] if names else None))
    key = range_key if range_key in views.CHART_RANGES else views.CHART_DEFAULT_RANGE
    seconds, max_points = views.CHART_RANGES[key]
    src = None
    if chosen is not None and name is not None:
        end = now.astimezone(dt.UTC).replace(microsecond=0)
        start = end - dt.timedelta(seconds=seconds)
        src = "/api/v1/power/series?" + urlencode({
            "device_id": chosen, "name": name, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "max_points": max_points})
    return {
        "devices": [{"id": d.id, "name": d.name, "kind": d.kind,
                     "readings": [{"name": n, "unit": CANONICAL[n][0]} for n in readings.get(d.id, [])]}
                    for d in live],
        "device": chosen, "reading": name, "range": key, "src": src,
        "ranges": {k: {"seconds": s, "max_points": p, "live": s <= views.CHART_LIVE_MAX_S}
                   for k, (s, p) in views.CHART_RANGES.items()},
    }


def _power_chart(session: Session, t: Translator, view: dict[str, Any], device: str | None, reading: str | None,
                 range_key: str | None) -> dict[str, Any]:
    """The Readings card's data (:func:`power_chart`) with each reading's text for people: its
    label when web/i18n has one (``reading.<name>``), its canonical name and its unit."""
    chart = power_chart(session, view["devices"], device, reading, range_key)
    for d in chart["devices"]:
        d["text"] = t("power.chart_device_option", name=fmt.isolate(d["name"]), kind=t(f"pkind.{d['kind']}")
                      if t.has(f"pkind.{d['kind']}") else d["kind"])
        for r in d["readings"]:
            unit_key = f"runit.{POWER_UNIT_KEYS.get(r['unit'], '')}"
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
    lang = pick_lang(request)
    t = Translator(lang)
    daily = views.pue_daily(session, _store(request), POWER_PUE_DAYS).model_dump(mode="json")
    sites = {s["id"]: s for s in view["sites"]}
    return render(request, "power.html", {
        "view": view, "daily": daily, "sites_by_id": sites, "tones": POWER_TONE_BADGE,
        "power_strings": _power_strings(t), "fmt_duration": lambda s: fmt.fmt_duration(t, s), "fmt_num": fmt.fmt_num,
        "fmt_iso": fmt.fmt_iso, "pue_days": POWER_PUE_DAYS, "chain_mirror": t.dir == "rtl",
        "chart": _power_chart(session, t, view, chart_device, chart_reading, chart_range),
    }, section="power", user=user)


@router.get("/power/chain.json")
def power_chain(request: Request, session: DbSession, outage: str | None = None) -> Response:
    """The power page's live data (:func:`infra_mgr.power.views.power_view` without the events
    list, which the stream carries) for power.js to refresh from: one answer holds the devices,
    chain, PUE, the open outage for the banner and the outage records with the selected one
    (``?outage=``, else the newest), plus the Outages card rendered from them (``outages_html``) and
    the events card's items in the viewer's language (``events_html``).
    Read-only and session-authenticated; a missing login is a JSON 401, like the topology's."""
    principal = current_principal(request, session)
    if principal is None:
        return JSONResponse({"detail": "login required"}, status_code=401, headers={"Cache-Control": "no-store"})
    view = _power_payload(request, session, outage=outage, history=False)
    if view is None:
        view = {"devices": [], "nodes": [], "edges": [], "sites": [], "pue": None}
    else:
        view["outages_html"] = _outages_html(request, principal, view)
        view["events_html"] = _events_html(request, session, principal)
    return JSONResponse(view, headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
