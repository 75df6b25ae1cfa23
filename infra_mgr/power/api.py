"""Power routes: devices, chain, fuel tanks, live status, outages, series, and a live event stream."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from infra_mgr.api.crud import (
    CrudSpec,
    Filter,
    check_references,
    check_text,
    check_unique,
    commit_or_conflict,
    crud_router,
    get_or_404,
    list_rows,
)
from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, ObjId, Page
from infra_mgr.auth.permissions import Perm
from infra_mgr.common import utcnow
from infra_mgr.errors import Invalid, NotFound
from infra_mgr.power import views
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
from infra_mgr.power.poller import HubItem
from infra_mgr.power.readings import CANONICAL
from infra_mgr.power.service import PowerService
from infra_mgr.power.sources import store_source
from infra_mgr.telemetry.store import TelemetryStore
from infra_mgr.url_secrets import masked_elsewhere

router = APIRouter(tags=["power"], prefix="/power")
R, W = Perm.inventory_read, Perm.power_write

for spec in (
    CrudSpec(PowerDevice, "/devices", "power device", None, None, PowerDeviceRead, R, W,  # writes: below
             filters=(Filter("kind", PowerDevice.kind), Filter("site_id", PowerDevice.site_id, int),
                      Filter("status", PowerDevice.status))),
    CrudSpec(PowerNode, "/nodes", "power node", PowerNodeCreate, None, PowerNodeRead, R, W,
             filters=(Filter("kind", PowerNode.kind), Filter("site_id", PowerNode.site_id, int))),
    CrudSpec(PowerEdge, "/edges", "power edge", PowerEdgeCreate, None, PowerEdgeRead, R, W),
    CrudSpec(FuelTank, "/fuel-tanks", "fuel tank", FuelTankCreate, None, FuelTankRead, R, W),
):
    crud_router(spec, router)

_read = Depends(require(R))
_write = Depends(require(W))


@router.post("/devices", response_model=PowerDeviceRead, status_code=201, dependencies=[_write],
             openapi_extra=perm_extra(W), summary="Create a power device", operation_id="create_power_device")
def create_power_device(data: PowerDeviceCreate, request: Request, session: DbSession) -> Any:
    """The URL's secret (community, password) is stored encrypted; the row keeps the URL masked."""
    values = data.model_dump(mode="json")
    check_text(values)
    values["source"], values["source_secret"] = store_source(request.app.state.master_key, data.source)
    check_references(session, PowerDevice, values)
    check_unique(session, PowerDevice, values, None)
    obj = PowerDevice(**values)
    session.add(obj)
    commit_or_conflict(session, "power device")
    session.refresh(obj)
    return obj


@router.patch("/devices/{obj_id}", response_model=PowerDeviceRead, dependencies=[_write],
              openapi_extra=perm_extra(W), summary="Change a power device", operation_id="update_power_device")
def update_power_device(obj_id: ObjId, data: PowerDeviceUpdate, request: Request, session: DbSession) -> Any:
    """A ``source`` sent back masked (as a read shows it) keeps the stored secret, but only for the
    very address it was stored with: a masked URL pointing anywhere else is refused, or the
    secret would be sent to a host of the caller's choosing."""
    obj = get_or_404(session, PowerDevice, obj_id, "power device")
    values = data.model_dump(exclude_unset=True, mode="json")
    check_text(values)
    if values.get("source") is not None:
        if masked_elsewhere(values["source"], obj.source):
            raise Invalid("give the secret again when changing the address", field="source")
        values["source"], values["source_secret"] = store_source(request.app.state.master_key, values["source"],
                                                                 obj.source_secret)
    check_references(session, PowerDevice, values)
    for key, value in values.items():
        setattr(obj, key, value)
    session.add(obj)
    commit_or_conflict(session, "power device")
    session.refresh(obj)
    return obj


def _service(request: Request) -> PowerService:
    svc = getattr(request.app.state, "power_service", None)
    if svc is None:
        svc = request.app.state.power_service = PowerService(request.app.state.engine)
    return svc


def _store(request: Request) -> TelemetryStore:
    return _service(request).store


@router.get("/status", response_model=views.PowerStatus, dependencies=[_read], openapi_extra=perm_extra(R),
            summary="Every power device: state, readings, load, autonomy, data age; and PUE now")
def status(session: DbSession) -> views.PowerStatus:
    return views.status(session)


@router.get("/view", response_model=views.PowerView, dependencies=[_read], openapi_extra=perm_extra(R),
            summary="The power dashboard's data: devices, the chain with its layout, sites, PUE, "
                    "events and outages",
            responses={404: {"description": "No power device or chain node is configured yet"}})
def view(session: DbSession, outage_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
         history: bool = True) -> views.PowerView:
    found = views.power_view(session, outage_id=outage_id, with_history=history)
    if found is None:
        raise NotFound("no power device or chain node is configured")
    return found


@router.get("/outages", response_model=Page[OutageRead], dependencies=[_read], openapi_extra=perm_extra(R))
def outages(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
            site_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
            status: Annotated[str | None, Query(pattern="^(open|closed)$")] = None) -> Any:
    clauses = [c for c, v in ((Outage.site_id == site_id, site_id), (Outage.status == status, status)) if v]
    rows, nxt = list_rows(session, Outage, clauses, limit, cursor)
    return {"results": [views.outage_read(o) for o in rows], "next": nxt}


@router.get("/outages/{obj_id}", response_model=OutageRead, dependencies=[_read], openapi_extra=perm_extra(R))
def outage(obj_id: ObjId, session: DbSession) -> Any:
    return views.outage_read(get_or_404(session, Outage, obj_id, "outage"))


@router.get("/series", response_model=views.Series, dependencies=[_read], openapi_extra=perm_extra(R),
            summary="A reading of a power device over time (raw, 5-minute or hourly min/avg/max)",
            responses={404: {"description": "No such power device"}})
def series(request: Request, session: DbSession,
           device_id: Annotated[int, Query(ge=1, le=MAX_ID)],
           name: Annotated[str, Query(max_length=64, description="canonical reading name, e.g. battery.charge")],
           start: dt.datetime | None = None, end: dt.datetime | None = None,
           max_points: Annotated[int, Query(ge=10, le=5000)] = 600) -> views.Series:
    get_or_404(session, PowerDevice, device_id, "power device")
    if name not in CANONICAL:
        raise Invalid(f"unknown reading name {name!r}", field="name")
    end = end or utcnow()
    start = start or end - dt.timedelta(hours=1)
    if start.tzinfo is None or end.tzinfo is None:
        raise Invalid("give times with a zone, e.g. 2026-11-27T10:00:00Z", field="start")
    if start >= end:
        raise Invalid("start must be before end", field="start")
    return views.series(_store(request), device_id, name, start, end, max_points)


@router.get("/pue/daily", response_model=views.PueDaily, dependencies=[_read], openapi_extra=perm_extra(R),
            summary="PUE per day: facility energy ÷ IT energy from the stored meter readings")
def pue_daily(request: Request, session: DbSession, days: Annotated[int, Query(ge=1, le=366)] = 7) -> views.PueDaily:
    return views.pue_daily(session, _store(request), days)


COALESCE_S = 0.25  # how long a device message may wait for others to share its chunk


def _kind(item: HubItem) -> str:
    return item.type if isinstance(item, views.LiveMessage) else str(item["type"])


def _sse(item: HubItem) -> str:
    data = (item.model_dump_json() if isinstance(item, views.LiveMessage)
            else json.dumps(item, ensure_ascii=False, default=str))
    return f"event: {_kind(item)}\ndata: {data}\n\n"


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
                urgent = _kind(item) != "device"
                flush_at = loop.time() + COALESCE_S
                while not urgent and len(chunk) < 100:
                    try:  # a get cancelled by the deadline leaves the queue as it was
                        async with asyncio.timeout_at(flush_at):
                            item = await queue.get()
                    except TimeoutError:
                        break
                    chunk.append(_sse(item))
                    urgent = _kind(item) != "device"
                while not queue.empty() and len(chunk) < 100:
                    chunk.append(_sse(queue.get_nowait()))
                yield "".join(chunk)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
