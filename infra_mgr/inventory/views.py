"""Read views of the inventory: what the overview counts, the site and device lists, a site's page.

Every surface (dashboard, CLI, API) reads these instead of querying the tables itself, so a count
or a list means the same thing everywhere. They return the API's ``*Read`` schemas (extended
where a list shows more than one table), never ORM objects, so nothing can lazy-load afterwards;
and every list is bounded (a page size or a ``limit``) so a city-sized estate cannot make one slow.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from infra_mgr.common import ListPage, page_window
from infra_mgr.events import views as event_views
from infra_mgr.events.views import EventRow
from infra_mgr.inventory.models import (
    Device,
    DeviceRead,
    Interface,
    Prefix,
    PrefixRead,
    Site,
    SiteKind,
    SiteRead,
)

SITE_KINDS: tuple[str, ...] = tuple(k.value for k in SiteKind)


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts ``Gi1/0/2`` before ``Gi1/0/10``, as people read interface names."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", text) if part)


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --------------------------------------------------------------------------- overview


class InventoryCounts(BaseModel):
    """The overview's cards: sites by kind, devices by status, interfaces."""

    sites_by_kind: dict[str, int]
    sites_total: int
    devices_by_status: dict[str, int]
    devices_total: int
    interfaces: int


def counts(session: Session) -> InventoryCounts:
    sites_by_kind = {str(k): int(n) for k, n in session.exec(select(Site.kind, func.count()).group_by(Site.kind))}
    devices_by_status = {str(k): int(n)
                         for k, n in session.exec(select(Device.status, func.count()).group_by(Device.status))}
    interfaces = int(session.exec(select(func.count()).select_from(Interface)).one())
    return InventoryCounts(sites_by_kind=sites_by_kind, sites_total=sum(sites_by_kind.values()),
                           devices_by_status=devices_by_status, devices_total=sum(devices_by_status.values()),
                           interfaces=interfaces)


# --------------------------------------------------------------------------- sites


class SiteRow(SiteRead):
    """A site with the number of devices it holds."""

    device_count: int


def sites(session: Session, kind: str = "", q: str = "", page: int = 1, size: int | None = 100) -> ListPage[SiteRow]:
    """Sites by code with their device counts, filtered by kind and a text search over code and
    names; ``size=None`` gives every match on one page (the CLI's listing)."""
    conds: list[Any] = []
    if kind:
        conds.append(col(Site.kind) == kind)
    if q:
        pattern = _like(q)
        conds.append(or_(col(Site.code).ilike(pattern, escape="\\"),
                         col(Site.name_en).ilike(pattern, escape="\\"),
                         col(Site.name_ar).ilike(pattern, escape="\\")))
    total = int(session.exec(select(func.count()).select_from(Site).where(*conds)).one())
    page, offset = page_window(total, page, size) if size else (1, 0)
    per_site = (select(col(Device.site_id).label("site_id"), func.count().label("n"))
                .group_by(col(Device.site_id)).subquery())
    stmt = (
        select(Site, func.coalesce(per_site.c.n, 0))
        .outerjoin(per_site, per_site.c.site_id == col(Site.id))
        .where(*conds)
        .order_by(col(Site.code))
        .offset(offset)
    )
    if size:
        stmt = stmt.limit(size)
    rows = [SiteRow(**SiteRead.model_validate(site).model_dump(), device_count=int(n))
            for site, n in session.exec(stmt).all()]
    return ListPage[SiteRow](rows=rows, total=total, page=page, size=size or max(total, 1))


def sites_by_id(session: Session, ids: set[int]) -> dict[int, SiteRead]:
    """The sites with these ids, keyed by id: for pages that show rows of another domain (an
    outage, say) under their site's name."""
    if not ids:
        return {}
    return {s.id: SiteRead.model_validate(s) for s in session.exec(select(Site).where(col(Site.id).in_(ids))).all()
            if s.id is not None}


def site_by_code(session: Session, code: str) -> SiteRead | None:
    """A site by its code (any case, spaces around ignored)."""
    site = session.exec(select(Site).where(col(Site.code) == code.strip().upper())).first()
    return SiteRead.model_validate(site) if site is not None else None


class SiteDetail(BaseModel):
    """Everything a site's page shows: the site, its prefixes, its devices (cut at a limit, with
    the total so the page can link to the full list) and its newest events."""

    site: SiteRead
    prefixes: list[PrefixRead]
    devices: list[DeviceRead]
    device_total: int
    events: list[EventRow]


def site_detail(session: Session, code: str, devices_limit: int = 200, events_limit: int = 20) -> SiteDetail | None:
    site = site_by_code(session, code)
    if site is None:
        return None
    prefixes = session.exec(select(Prefix).where(col(Prefix.site_id) == site.id)
                            .order_by(col(Prefix.prefix)).limit(1000)).all()
    on_site = col(Device.site_id) == site.id
    device_total = int(session.exec(select(func.count()).select_from(Device).where(on_site)).one())
    devices = session.exec(select(Device).where(on_site).order_by(col(Device.hostname)).limit(devices_limit)).all()
    return SiteDetail(site=site, prefixes=[PrefixRead.model_validate(p) for p in prefixes],
                      devices=[DeviceRead.model_validate(d) for d in devices], device_total=device_total,
                      events=event_views.of_site(session, site.id, limit=events_limit))


# --------------------------------------------------------------------------- devices


class DeviceRow(DeviceRead):
    """A device with the code and names of its site."""

    site_code: str
    site_name_en: str
    site_name_ar: str


def devices(session: Session, q: str = "", site_id: int | None = None, page: int = 1,
            size: int = 100) -> ListPage[DeviceRow]:
    """Devices by hostname with their site, optionally of one site and searched by hostname,
    management address, vendor or model."""
    conds: list[Any] = []
    if site_id is not None:
        conds.append(col(Device.site_id) == site_id)
    if q:
        pattern = _like(q)
        conds.append(or_(*(c.ilike(pattern, escape="\\") for c in (
            col(Device.hostname), col(Device.management_address), col(Device.vendor), col(Device.model)))))
    total = int(session.exec(select(func.count()).select_from(Device).where(*conds)).one())
    page, offset = page_window(total, page, size)
    stmt = (
        select(Device, Site.code, Site.name_en, Site.name_ar)
        .join(Site, col(Site.id) == col(Device.site_id))
        .where(*conds)
        .order_by(col(Device.hostname))
        .offset(offset)
        .limit(size)
    )
    rows = [DeviceRow(**DeviceRead.model_validate(d).model_dump(), site_code=code, site_name_en=name_en,
                      site_name_ar=name_ar) for d, code, name_en, name_ar in session.exec(stmt).all()]
    return ListPage[DeviceRow](rows=rows, total=total, page=page, size=size)
