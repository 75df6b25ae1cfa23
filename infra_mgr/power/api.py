"""Power routes: devices, chain, fuel tanks, live status, outages, series, and a live event stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import col, select

from infra_mgr.api.crud import CrudSpec, Filter, crud_router, get_or_404, list_rows
from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, ObjId, Page
from infra_mgr.auth.permissions import Perm
from infra_mgr.common import utcnow
from infra_mgr.errors import Invalid, NotFound
from infra_mgr.power.models import (
    FuelTank,
    FuelTankCreate,
    FuelTankRead,
    Outage,
    OutageRead,
    PowerDevice,
    PowerDeviceCreate,
    PowerDeviceRead,
    PowerDeviceUpdate,
    PowerEdge,
    PowerEdgeCreate,
    PowerEdgeRead,
    PowerNode,
    PowerNodeCreate,
    PowerNodeRead,
)
from infra_mgr.power.readings import CANONICAL
from infra_mgr.power.service import PowerService
from infra_mgr.telemetry.store import TelemetryStore

router = APIRouter(tags=["power"], prefix="/power")
R, W = Perm.inventory_read, Perm.power_write

for spec in (
    CrudSpec(PowerDevice, "/devices", "power device", PowerDeviceCreate, PowerDeviceUpdate, PowerDeviceRead, R, W,
             filters=(Filter("kind", PowerDevice.kind), Filter("site_id", PowerDevice.site_id, int),
                      Filter("status", PowerDevice.status))),
    CrudSpec(PowerNode, "/nodes", "power node", PowerNodeCreate, None, PowerNodeRead, R, W,
             filters=(Filter("kind", PowerNode.kind), Filter("site_id", PowerNode.site_id, int))),
    CrudSpec(PowerEdge, "/edges", "power edge", PowerEdgeCreate, None, PowerEdgeRead, R, W),
    CrudSpec(FuelTank, "/fuel-tanks", "fuel tank", FuelTankCreate, None, FuelTankRead, R, W),
):
    crud_router(spec, router)

_read = Depends(require(R))


def _service(request: Request) -> PowerService:
    svc = getattr(request.app.state, "power_service", None)
    if svc is None:
        svc = request.app.state.power_service = PowerService(request.app.state.engine)
    return svc  # type: ignore[no-any-return]


@router.get("/status", dependencies=[_read], openapi_extra=perm_extra(R),
            summary="Every power device: state, key readings, autonomy, data age; and PUE now")
def status(request: Request) -> dict[str, Any]:
    svc = _service(request)
    return {"devices": svc.status(), "pue": svc.pue_now(), "time": utcnow().isoformat()}


@router.get("/outages", response_model=Page[OutageRead], dependencies=[_read], openapi_extra=perm_extra(R))
def outages(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
            site_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
            status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None) -> Any:
    clauses = [c for c, v in ((Outage.site_id == site_id, site_id), (Outage.status == status, status)) if v]
    rows, nxt = list_rows(session, Outage, clauses, limit, cursor)
    return {"results": [outage_read(o) for o in rows], "next": nxt}


@router.get("/outages/{obj_id}", response_model=OutageRead, dependencies=[_read], openapi_extra=perm_extra(R))
def outage(obj_id: ObjId, session: DbSession) -> Any:
    return outage_read(get_or_404(session, Outage, obj_id, "outage"))


def outage_read(o: Outage) -> OutageRead:
    read = OutageRead.model_validate(o)
    if o.diesel_on_load_at:
        read.seconds_to_diesel = round((o.diesel_on_load_at - o.started_at).total_seconds(), 2)
    return read


@router.get("/series", dependencies=[_read], openapi_extra=perm_extra(R),
            summary="A reading of a power device over time (raw, 5-minute or hourly min/avg/max)")
def series(request: Request, session: DbSession,
           device_id: Annotated[int, Query(ge=1, le=MAX_ID)],
           name: Annotated[str, Query(max_length=64, description="canonical reading name, e.g. battery.charge")],
           start: dt.datetime | None = None, end: dt.datetime | None = None,
           max_points: Annotated[int, Query(ge=10, le=5000)] = 600) -> dict[str, Any]:
    get_or_404(session, PowerDevice, device_id, "power device")
    if name not in CANONICAL:
        raise Invalid(f"unknown reading name {name!r}", field="name")
    end = end or utcnow()
    start = start or end - dt.timedelta(hours=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("give times with a zone, e.g. 2026-11-27T10:00:00Z", field="start")
    if start >= end:
        raise Invalid("start must be before end", field="start")
    store: TelemetryStore = _service(request).store
    sid = store.series_of("power_device", device_id).get(name)
    if sid is None:
        return {"resolution_s": 0, "points": [], "unit": CANONICAL[name][0]}
    res, pts = store.query(sid, int(start.timestamp() * 1000), int(end.timestamp() * 1000), max_points)
    return {"resolution_s": res, "unit": CANONICAL[name][0],
            "points": [[p.ts_ms, p.min, p.avg, p.max] for p in pts]}


@router.get("/pue/daily", dependencies=[_read], openapi_extra=perm_extra(R),
            summary="PUE per day: facility energy ÷ IT energy from the stored meter readings")
def pue_daily(request: Request, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 7) -> dict[str, Any]:
    from infra_mgr.power.models import PowerNode as Node

    nodes = session.exec(select(Node).where(Node.pue_role != "none", col(Node.power_device_id).is_not(None))).all()
    store = _service(request).store
    end = utcnow()
    day0 = (end - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    for i in range(days):
        d0 = day0 + dt.timedelta(days=i)
        d1 = d0 + dt.timedelta(days=1)
        sums = {"facility": 0.0, "it": 0.0}
        for node in nodes:
            series_ids = store.series_of("power_device", node.power_device_id or 0)
            sid = series_ids.get("meter.power") or series_ids.get("output.power")
            if sid is None:
                continue
            _, pts = store.query(sid, int(d0.timestamp() * 1000), int(d1.timestamp() * 1000) - 1, 400)
            if pts:
                sums[node.pue_role] += sum(p.avg for p in pts) / len(pts)
        value = sums["facility"] / sums["it"] if sums["it"] > 0 and sums["facility"] > 0 else None
        out.append({"day": d0.date().isoformat(), "pue": round(value, 3) if value else None,
                    "facility_kw_avg": round(sums["facility"], 2), "it_kw_avg": round(sums["it"], 2)})
    cats = [n.it_category for n in nodes if n.pue_role == "it" and n.it_category]
    return {"days": out, "category": min(cats) if cats else None}


COALESCE_S = 0.25  # how long a device message may wait for others to share its chunk


def _sse(item: dict[str, Any]) -> str:
    return f"event: {item['type']}\ndata: {json.dumps(item, ensure_ascii=False, default=str)}\n\n"


@router.get("/stream", dependencies=[_read], openapi_extra=perm_extra(R),
            summary="Server-sent events: live device readings and power events as they happen")
async def stream(request: Request) -> StreamingResponse:
    hub = getattr(request.app.state, "power_hub", None)
    if hub is None:
        raise NotFound("live power updates are not enabled on this server")

    async def events() -> AsyncIterator[str]:
        # A client going away is noticed by the response itself (Starlette cancels the stream on
        # http.disconnect, or the next write fails), so nothing here asks per message. The poller
        # publishes a device message per reading (20 devices: 20 a second), and each chunk costs a
        # trip through the middleware stack: device messages of up to COALESCE_S travel together,
        # while an event message goes out at once with whatever waits before it.
        loop = asyncio.get_running_loop()
        yield "retry: 2000\n\n"
        async with hub.subscribe() as queue:
            while True:
                try:
                    async with asyncio.timeout(15):
                        item = await queue.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                chunk = [_sse(item)]
                urgent = item["type"] != "device"
                flush_at = loop.time() + COALESCE_S
                while not urgent and len(chunk) < 100:
                    try:  # a get cancelled by the deadline leaves the queue as it was
                        async with asyncio.timeout_at(flush_at):
                            item = await queue.get()
                    except TimeoutError:
                        break
                    chunk.append(_sse(item))
                    urgent = item["type"] != "device"
                while not queue.empty() and len(chunk) < 100:
                    chunk.append(_sse(queue.get_nowait()))
                yield "".join(chunk)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
