"""Branch link audit routes (``/api/v1/link-audit``, ``/api/v1/uplinks``): the ranked audit and its
summary, the uplinks with a person's overrides, and one link's chart series and flap history.

Every answer is a read view of :mod:`infra_mgr.network.link_views`: the same models the Links page
renders and ``infra-mgr audit links --json`` prints.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField

from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID
from infra_mgr.auth.permissions import Perm
from infra_mgr.errors import Invalid, NotFound
from infra_mgr.network import link_views
from infra_mgr.network.audit import AuditThresholds, thresholds_from
from infra_mgr.network.linkfacts import SERIES_UNITS, AuditState
from infra_mgr.telemetry.store import TelemetryStore
from infra_mgr.telemetry.store import now_ms as clock_ms

router = APIRouter(tags=["links"])
R = Perm.inventory_read
W = Perm.devices_write
IfId = Annotated[int, Path(ge=1, le=MAX_ID, description="Interface id of the uplink")]
SiteQ = Annotated[str | None, Query(max_length=32, description="Site code, e.g. JED-B07")]
MAX_SPAN_MS = 800 * 86_400_000  # the hourly roll-ups' retention and a little more


def _store(request: Request) -> TelemetryStore:
    """The process's telemetry store (the power service keeps one; else a facade over the engine)."""
    svc = getattr(request.app.state, "power_service", None)
    if svc is not None:
        return svc.store
    return TelemetryStore(request.app.state.engine)


def _thresholds(request: Request) -> AuditThresholds:
    return thresholds_from(request.app.state.settings)


def parse_instant(value: str, field: str) -> int:
    """An instant as epoch milliseconds or ISO 8601 (a time without a zone is UTC) → epoch ms."""
    text = value.strip()
    if text.isascii() and text.lstrip("-").isdigit() and len(text) <= 16:  # "²".isdigit() is true
        ms = int(text)
    else:
        try:
            at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid("not an ISO 8601 time nor epoch milliseconds", field=field) from None
        try:
            ms = int((at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp() * 1000)
        except (OverflowError, OSError, ValueError):
            raise Invalid("time out of range", field=field) from None
    if not 0 <= ms <= 253402300799000:
        raise Invalid("time out of range", field=field)
    return ms


class UplinkUpdate(BaseModel):
    """A person's decision about one interface; identification never changes it afterwards."""

    model_config = ConfigDict(extra="forbid")

    is_uplink: bool = PField(default=True, description="False keeps the interface out of the audit for good")
    expected_neighbor: str | None = PField(default=None, max_length=253, pattern=r"^[^\x00-\x1f\x7f]*$",
                                           description="Host name the far end must have; omit to keep")
    expected_speed_bps: int | None = PField(default=None, ge=1, le=10**14,  # 100 Tb/s: no port runs faster
                                            description="Line rate in bit/s; omit to keep")


@router.get("/link-audit", response_model=list[link_views.BranchAuditRead], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Every branch's uplink health, worst first, with its reasons",
            responses={404: {"description": "No branch site with that code"}})
def get_audit(request: Request, session: DbSession, site: SiteQ = None,
              state: Annotated[AuditState | None, Query(description="Only branches in this state")] = None) -> Any:
    audits = link_views.audit_branches(session, _store(request), site_code=site, thresholds=_thresholds(request))
    if site is not None and not audits:
        raise NotFound(f"no site with code {site!r}", field="site")
    return [a for a in audits if state is None or a.state == state]


@router.get("/link-audit/summary", response_model=link_views.AuditSummary, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="How many branches are ok, degraded, down or unknown")
def get_audit_summary(request: Request, session: DbSession) -> Any:
    return link_views.audit_summary(session, _store(request), thresholds=_thresholds(request))


@router.get("/uplinks", response_model=list[link_views.UplinkRead], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Uplinks with their expectations and last polled state")
def get_uplinks(session: DbSession, site: SiteQ = None,
                device: Annotated[str | None, Query(max_length=253, description="Device host name")] = None) -> Any:
    return link_views.uplinks(session, site_code=site, device=device)


def _uplink_or_404(session: Any, interface_id: int) -> link_views.UplinkRead:
    found = link_views.uplink(session, interface_id)
    if found is None:
        raise NotFound(f"no uplink on interface {interface_id}", field="interface_id")
    return found


@router.put("/uplinks/{interface_id}", response_model=link_views.UplinkRead, dependencies=[Depends(require(W))],
            openapi_extra=perm_extra(W),
            summary="Set an interface's uplink role and expectations by hand (wins over identification)")
def put_uplink(interface_id: IfId, data: UplinkUpdate, request: Request, session: DbSession) -> Any:
    from infra_mgr.network.uplinks import set_manual

    set_manual(session, interface_id, is_uplink=data.is_uplink, expected_neighbor=data.expected_neighbor,
               expected_speed_bps=data.expected_speed_bps, actor=request.state.principal.username)
    session.flush()
    return _uplink_or_404(session, interface_id)


@router.delete("/uplinks/{interface_id}/manual", response_model=link_views.UplinkRead | None,
               dependencies=[Depends(require(W))], openapi_extra=perm_extra(W),
               summary="Give the interface back to identification (null when it then finds no uplink there)")
def delete_uplink_manual(interface_id: IfId, request: Request, session: DbSession) -> Any:
    from infra_mgr.network.uplinks import clear_manual

    row = clear_manual(session, interface_id, actor=request.state.principal.username)
    session.flush()
    return None if row is None else _uplink_or_404(session, interface_id)


@router.get("/uplinks/{interface_id}/series", response_model=link_views.LinkSeriesRead,
            dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="One link's chart series (min/avg/max per point) at the resolution the range allows")
def get_series(interface_id: IfId, request: Request, session: DbSession,
               start: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch ms; "
                                                  "default 24 h before end")] = None,
               end: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch ms; default now")] = None,
               names: Annotated[str | None, Query(max_length=200, description="Comma-separated series names")] = None,
               max_points: Annotated[int, Query(ge=10, le=5000)] = 600) -> Any:
    end_ms = parse_instant(end, "end") if end is not None else clock_ms()
    start_ms = parse_instant(start, "start") if start is not None else end_ms - 86_400_000
    if start_ms >= end_ms:
        raise Invalid("start must be before end", field="start")
    if end_ms - start_ms > MAX_SPAN_MS:
        raise Invalid("range longer than the history kept (800 days)", field="start")
    wanted = None
    if names is not None:
        wanted = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in SERIES_UNITS]
        if unknown or not wanted:
            raise Invalid(f"unknown series {', '.join(unknown) or '(none given)'} (known: "
                          f"{', '.join(link_views.IF_CHART_SERIES)})", field="names")
    out = link_views.link_series(session, _store(request), interface_id, start_ms, end_ms, names=wanted,
                                 max_points=max_points)
    if out is None:
        raise NotFound(f"no interface with id {interface_id}", field="interface_id")
    return out


@router.get("/uplinks/{interface_id}/changes", response_model=list[link_views.StatusChangeRead],
            dependencies=[Depends(require(R))], openapi_extra=perm_extra(R),
            summary="One link's status changes (the flap history), newest first")
def get_changes(interface_id: IfId, session: DbSession,
                since: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch ms")] = None,
                limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> Any:
    if link_views.interface_label(session, interface_id) is None:
        raise NotFound(f"no interface with id {interface_id}", field="interface_id")
    since_dt = None
    if since is not None:
        since_dt = dt.datetime.fromtimestamp(parse_instant(since, "since") / 1000, dt.UTC)
    return link_views.flap_history(session, interface_id, since=since_dt, limit=limit)
