"""Inventory routes: generated CRUD for each table plus IP allocation, credentials and history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import or_, select
from sqlmodel import col

from infra_mgr.api.crud import (
    CrudSpec,
    Filter,
    PlainQuery,
    check_references,
    check_unique,
    commit_or_conflict,
    crud_router,
    get_or_404,
    like_contains,
    list_rows,
)
from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, ObjId, Page
from infra_mgr.auth.permissions import Perm
from infra_mgr.errors import Conflict, Invalid
from infra_mgr.inventory import credentials as creds
from infra_mgr.inventory.ipam import allocate_next, prefix_for_address
from infra_mgr.inventory.models import (
    AllocateRequest,
    Credential,
    Device,
    DeviceCreate,
    DeviceRead,
    DeviceUpdate,
    Interface,
    InterfaceCreate,
    InterfaceRead,
    InterfaceUpdate,
    IPAddress,
    IPAddressCreate,
    IPAddressRead,
    IPAddressUpdate,
    Link,
    LinkCreate,
    LinkRead,
    LinkUpdate,
    ObjectChange,
    ObjectChangeRead,
    Prefix,
    PrefixCreate,
    PrefixRead,
    PrefixUpdate,
    Site,
    SiteCreate,
    SiteRead,
    SiteUpdate,
)

router = APIRouter(tags=["inventory"])
R = Perm.inventory_read


def _ip_in_prefix(session: Any, obj: Any, values: dict[str, Any]) -> None:
    if "address" in values:
        pfx = prefix_for_address(session, obj.address)
        obj.prefix_id = pfx.id if pfx else None
        obj.prefix_length = int(pfx.prefix.split("/")[1]) if pfx else (32 if ":" not in obj.address else 128)


def _link_order(session: Any, obj: Any, values: dict[str, Any]) -> None:
    if obj.a_interface_id == obj.b_interface_id:
        raise Invalid("a link needs two different interfaces", field="b_interface_id")
    if obj.a_interface_id > obj.b_interface_id:
        obj.a_interface_id, obj.b_interface_id = obj.b_interface_id, obj.a_interface_id


SPECS = [
    CrudSpec(Site, "/sites", "site", SiteCreate, SiteUpdate, SiteRead, R, Perm.sites_write,
             filters=(Filter("code", Site.code), Filter("kind", Site.kind), Filter("status", Site.status)),
             search=(Site.code, Site.name_en, Site.name_ar, Site.address), generated_delete=False),
    CrudSpec(Device, "/devices", "device", DeviceCreate, DeviceUpdate, DeviceRead, R, Perm.devices_write,
             filters=(Filter("site_id", Device.site_id, int),
                      Filter("site", Site.code, join=(Site, Site.id == Device.site_id), description="site code"),
                      Filter("hostname", Device.hostname), Filter("role", Device.role),
                      Filter("vendor", Device.vendor), Filter("platform", Device.platform),
                      Filter("status", Device.status), Filter("serial", Device.serial),
                      Filter("management_address", Device.management_address)),
             search=(Device.hostname, Device.model, Device.serial, Device.management_address)),
    CrudSpec(Interface, "/interfaces", "interface", InterfaceCreate, InterfaceUpdate, InterfaceRead, R,
             Perm.devices_write,
             filters=(Filter("device_id", Interface.device_id, int), Filter("name", Interface.name),
                      Filter("oper_status", Interface.oper_status),
                      Filter("admin_status", Interface.admin_status), Filter("mac", Interface.mac)),
             search=(Interface.name, Interface.alias, Interface.description)),
    CrudSpec(Link, "/links", "link", LinkCreate, LinkUpdate, LinkRead, R, Perm.devices_write,
             filters=(Filter("a_interface_id", Link.a_interface_id, int),
                      Filter("b_interface_id", Link.b_interface_id, int), Filter("source", Link.source)),
             before_write=_link_order),
    CrudSpec(Prefix, "/prefixes", "prefix", PrefixCreate, PrefixUpdate, PrefixRead, R, Perm.ipam_write,
             filters=(Filter("site_id", Prefix.site_id, int),
                      Filter("site", Site.code, join=(Site, Site.id == Prefix.site_id), description="site code"),
                      Filter("role", Prefix.role), Filter("prefix", Prefix.prefix)),
             search=(Prefix.prefix, Prefix.description), change_perm=Perm.ipam_manage, generated_delete=False),
    CrudSpec(IPAddress, "/ip-addresses", "ip address", IPAddressCreate, IPAddressUpdate, IPAddressRead, R,
             Perm.ipam_write,
             filters=(Filter("prefix_id", IPAddress.prefix_id, int), Filter("device_id", IPAddress.device_id, int),
                      Filter("address", IPAddress.address), Filter("status", IPAddress.status)),
             search=(IPAddress.address, IPAddress.dns_name, IPAddress.description),
             before_write=_ip_in_prefix, change_perm=Perm.ipam_manage),
]
for _spec in SPECS:
    crud_router(_spec, router)


@router.post("/prefixes/{obj_id}/allocate", response_model=IPAddressRead, status_code=201,
             dependencies=[Depends(require(Perm.ipam_write))], openapi_extra=perm_extra(Perm.ipam_write),
             summary="Allocate the next free IP address of a prefix (atomic)")
def allocate(obj_id: ObjId, data: AllocateRequest, request: Request, session: DbSession) -> Any:
    # The request's session (used to authenticate) gives its connection back before the allocation
    # takes one: holding both at once deadlocks the pool when many allocations arrive together.
    session.close()
    values = data.model_dump()
    return allocate_next(request.app.state.engine, obj_id, data, actor=request.state.principal.username,
                         check=lambda s: check_references(s, IPAddress, values))


@router.delete("/prefixes/{obj_id}", status_code=204, dependencies=[Depends(require(Perm.ipam_manage))],
               openapi_extra=perm_extra(Perm.ipam_manage), summary="Delete a prefix",
               operation_id="delete_prefix", response_class=Response)
def delete_prefix(obj_id: ObjId, session: DbSession,
                  cascade: Annotated[bool, Query(description="also delete the IP addresses the prefix holds")] = False,
                  ) -> Response:
    """A prefix that still holds addresses is refused (409) rather than leaving them orphaned;
    ``?cascade=true`` deletes them in the same transaction, each recorded in the change history."""
    prefix = get_or_404(session, Prefix, obj_id, "prefix")
    held = list(session.execute(select(IPAddress).where(col(IPAddress.prefix_id) == obj_id)).scalars())
    if held and not cascade:
        raise Conflict(f"prefix {prefix.prefix} holds {len(held)} IP address(es): delete them first, "
                       "or delete with ?cascade=true to delete them too", field="cascade")
    for ip in held:
        session.delete(ip)
    session.delete(prefix)
    commit_or_conflict(session, "prefix")
    return Response(status_code=204)


@router.delete("/sites/{obj_id}", status_code=204, dependencies=[Depends(require(Perm.sites_write))],
               openapi_extra=perm_extra(Perm.sites_write), summary="Delete a site",
               operation_id="delete_site", response_class=Response)
def delete_site(obj_id: ObjId, session: DbSession) -> Response:
    """A site that still holds devices, prefixes or power devices is refused (409, naming what it
    holds): deleting it would leave them with no site and no history saying so. Its discovery
    targets go with it (they only describe the site); events keep their text and lose the link."""
    from sqlalchemy import func

    from infra_mgr.power.models import PowerDevice

    site = get_or_404(session, Site, obj_id, "site")
    held = []
    for model, what in ((Device, "device"), (Prefix, "prefix"), (PowerDevice, "power device")):
        n = session.execute(select(func.count()).select_from(model).where(col(model.site_id) == obj_id)).scalar_one()
        if n:
            held.append(f"{n} {what}{'es' if what == 'prefix' and n > 1 else 's' if n > 1 else ''}")
    if held:
        raise Conflict(f"site {site.code} holds {', '.join(held)}: move or delete them first")
    session.delete(site)
    commit_or_conflict(session, "site")
    return Response(status_code=204)


# --------------------------------------------------------------------------- credentials

_cred_read = Depends(require(Perm.credentials_read))
_cred_write = Depends(require(Perm.credentials_write))


# Searchable text of a credential: never its params or secret, only what names and describes it.
_CRED_SEARCH = (col(Credential.name), col(Credential.username), col(Credential.description))


def _master(request: Request) -> bytes:
    key: bytes = request.app.state.master_key
    return key


@router.get("/credentials", response_model=Page[creds.CredentialRead], dependencies=[_cred_read],
            openapi_extra=perm_extra(Perm.credentials_read), summary="List credentials (no secrets)")
def list_credentials(request: Request, session: DbSession, limit: Limit = 100, cursor: Cursor = None,
                     kind: Annotated[str | None, Query(max_length=16)] = None,
                     q: Annotated[str | None, Query(max_length=255, description=(
                         "case-insensitive search in name, username, description")), PlainQuery] = None) -> Any:
    clauses: list[Any] = [Credential.kind == kind] if kind else []
    if q:  # the same search every other list offers, wildcards meaning themselves
        clauses.append(or_(*(like_contains(c, q) for c in _CRED_SEARCH)))
    rows, nxt = list_rows(session, Credential, clauses, limit, cursor)
    return {"results": [creds.to_read(_master(request), c) for c in rows], "next": nxt}


@router.get("/credentials/{obj_id}", response_model=creds.CredentialRead, dependencies=[_cred_read],
            openapi_extra=perm_extra(Perm.credentials_read))
def get_credential(obj_id: ObjId, request: Request, session: DbSession) -> Any:
    return creds.to_read(_master(request), get_or_404(session, Credential, obj_id, "credential"))


@router.post("/credentials", response_model=creds.CredentialRead, status_code=201, dependencies=[_cred_write],
             openapi_extra=perm_extra(Perm.credentials_write), summary="Create a credential (secrets write-only)")
def create_credential(data: creds.CredentialCreate, request: Request, session: DbSession) -> Any:
    check_unique(session, Credential, {"name": data.name}, None)
    cred = creds.build(_master(request), data)
    session.add(cred)
    commit_or_conflict(session, "credential")
    return creds.to_read(_master(request), cred)


@router.patch("/credentials/{obj_id}", response_model=creds.CredentialRead, dependencies=[_cred_write],
              openapi_extra=perm_extra(Perm.credentials_write))
def update_credential(obj_id: ObjId, data: creds.CredentialUpdate, request: Request, session: DbSession) -> Any:
    cred = get_or_404(session, Credential, obj_id, "credential")
    if data.name:
        check_unique(session, Credential, {"name": data.name}, cred.id)
    try:
        creds.apply_update(_master(request), cred, data)
    except ValueError as exc:
        field, _, msg = str(exc).partition(": ")
        raise Invalid(msg or str(exc), field=field) from exc
    session.add(cred)
    commit_or_conflict(session, "credential")
    return creds.to_read(_master(request), cred)


@router.delete("/credentials/{obj_id}", status_code=204, dependencies=[_cred_write],
               openapi_extra=perm_extra(Perm.credentials_write), response_class=Response)
def delete_credential(obj_id: ObjId, session: DbSession) -> Response:
    session.delete(get_or_404(session, Credential, obj_id, "credential"))
    commit_or_conflict(session, "credential")
    return Response(status_code=204)


# --------------------------------------------------------------------------- history


@router.get("/changes", response_model=Page[ObjectChangeRead], dependencies=[Depends(require(R))],
            openapi_extra=perm_extra(R), summary="History of inventory changes (who, when, before → after)")
def list_changes(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
                 object_type: Annotated[str | None, Query(max_length=32)] = None,
                 object_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                 actor: Annotated[str | None, Query(max_length=128)] = None) -> Any:
    clauses = [c for c, v in ((ObjectChange.object_type == object_type, object_type),
                              (ObjectChange.object_id == object_id, object_id),
                              (ObjectChange.actor == actor, actor)) if v is not None]
    rows, nxt = list_rows(session, ObjectChange, clauses, limit, cursor)
    return {"results": rows, "next": nxt}
