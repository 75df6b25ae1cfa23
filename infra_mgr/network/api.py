"""Network routes: discovery targets, running a discovery, neighbours, per-device poll state, and
the read views the dashboard draws (topology, site health, one device with its state)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic import Field as PField

from infra_mgr.api.crud import CrudSpec, Filter, crud_router, get_or_404, list_rows
from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, ObjId, Page, decode_cursor, encode_cursor
from infra_mgr.auth.permissions import Perm
from infra_mgr.errors import NotFound
from infra_mgr.inventory.models import Device
from infra_mgr.network import views
from infra_mgr.network.models import (
    DevicePoll,
    DevicePollRead,
    DiscoveryRunRead,
    DiscoveryTarget,
    DiscoveryTargetCreate,
    DiscoveryTargetRead,
    Neighbor,
    NeighborRead,
    seed_address,
)

router = APIRouter(tags=["network"])
R = Perm.inventory_read

crud_router(CrudSpec(DiscoveryTarget, "/discovery/targets", "discovery target", DiscoveryTargetCreate, None,
                     DiscoveryTargetRead, R, Perm.discovery_run,
                     filters=(Filter("site_id", DiscoveryTarget.site_id, int), Filter("role", DiscoveryTarget.role))),
            router)


@router.get("/neighbors", response_model=Page[NeighborRead], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="LLDP/CDP neighbours as last seen")
def list_neighbors(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
                   device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                   protocol: Annotated[str | None, Query(max_length=8)] = None) -> Any:
    clauses = [c for c, v in ((Neighbor.device_id == device_id, device_id), (Neighbor.protocol == protocol, protocol))
               if v is not None]
    rows, nxt = list_rows(session, Neighbor, clauses, limit, cursor)
    return {"results": rows, "next": nxt}


@router.get("/devices/{obj_id}/poll", response_model=DevicePollRead, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="How the device answered its last SNMP poll")
def device_poll(obj_id: ObjId, session: DbSession) -> Any:
    get_or_404(session, Device, obj_id, "device")
    return get_or_404(session, DevicePoll, obj_id, "poll state of device")


@router.get("/network/topology", response_model=views.Topology, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="The city as a graph: sites, devices and links with their states")
def network_topology(session: DbSession) -> Any:
    return views.topology(session)


@router.get("/network/sites/health", response_model=list[views.SiteHealth], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="Each site's state and its devices counted by state")
def network_sites_health(session: DbSession) -> Any:
    return views.sites_health(session)


@router.get("/network/devices/{obj_id}", response_model=views.DeviceDetail, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="One device with its state, interfaces and their link peers, neighbours and latest events")
def network_device(obj_id: ObjId, session: DbSession) -> Any:
    detail = views.device_detail(session, obj_id)
    if detail is None:
        raise NotFound(f"device {obj_id} not found")
    return detail


@router.get("/discovery/runs", response_model=Page[DiscoveryRunRead], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R),
            summary="Discovery runs, newest first: when, how long, what each found and which devices failed why")
def list_discovery_runs(session: DbSession, limit: Limit = 100, cursor: Cursor = None) -> Any:
    rows = views.discovery_runs(session, limit=limit + 1, before=decode_cursor(cursor))
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return {"results": rows[:limit], "next": nxt}


@router.get("/discovery/runs/{obj_id}", response_model=DiscoveryRunRead, dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="One discovery run with its findings and failures")
def get_discovery_run(obj_id: ObjId, session: DbSession) -> Any:
    run = views.discovery_run(session, obj_id)
    if run is None:
        raise NotFound(f"discovery run {obj_id} not found")
    return run


class DiscoveryRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = PField(default=None, max_length=32,
                              description="Site code; omit (with no seeds) for every site's targets")
    seeds: list[Annotated[str, PField(max_length=49), AfterValidator(seed_address)]] = PField(
        default_factory=list, max_length=64,
                              description="Seed addresses or ranges (alone: discover only from these)")
    timeout_s: float = PField(default=1.0, gt=0, le=30)
    retries: int = PField(default=1, ge=0, le=5)


@router.post("/discovery/run", dependencies=[Depends(require(Perm.discovery_run))],
             openapi_extra=perm_extra(Perm.discovery_run), summary="Run a discovery now and return its report")
async def run_discovery(data: DiscoveryRunRequest, request: Request) -> dict[str, Any]:
    from infra_mgr.network.discovery import discover

    report = await discover(request.app.state.engine, request.app.state.master_key, site_code=data.site,
                            all_sites=data.site is None and not data.seeds, seeds=data.seeds,
                            timeout_s=data.timeout_s, retries=data.retries, actor=request.state.principal.username,
                            trigger="api")
    return report.to_json()
