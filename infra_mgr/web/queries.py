"""Read-only queries behind the dashboard pages.

Pages only read: they show the source of truth and leave changes to the API and services. Each
function returns plain rows (dataclasses or tuples) so templates never trigger lazy loads, and
every list is bounded (a page size or a fixed ``limit``) so a city-sized estate cannot make a page
slow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from infra_mgr.events.models import Event, Severity
from infra_mgr.inventory.models import Device, Interface, Prefix, Site, SiteKind

PAGE_SIZE = 100
MAX_QUERY_LEN = 100


@dataclass(frozen=True)
class EventRow:
    id: int
    time: dt.datetime
    severity: str
    kind: str
    message: str
    site_code: str | None
    site_name_en: str | None
    site_name_ar: str | None
    hostname: str | None


@dataclass(frozen=True)
class PageInfo:
    """Where a paginated list is: 1-based page, rows shown and total."""

    page: int
    pages: int
    total: int
    start: int
    end: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything odd means page 1 (never an error page)."""
    try:
        page = int(raw or "1")
    except ValueError:
        return 1
    return min(max(page, 1), 10**9)


def clean_query(raw: str | None) -> str:
    """A search box value, trimmed and bounded."""
    return (raw or "").strip()[:MAX_QUERY_LEN]


def clean_kind(raw: str | None) -> str:
    """A site kind filter; unknown kinds are ignored (show all) rather than rejected."""
    value = (raw or "").strip().lower()
    return value if value in {k.value for k in SiteKind} else ""


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page_info(total: int, page: int, size: int = PAGE_SIZE) -> PageInfo:
    pages = max(1, -(-total // size))
    page = min(page, pages)
    start = (page - 1) * size + 1 if total else 0
    end = min(page * size, total)
    return PageInfo(page=page, pages=pages, total=total, start=start, end=end)


# --------------------------------------------------------------------------- overview


def counts(session: Session) -> dict[str, Any]:
    """Sites by kind, devices by status, and interface count for the overview cards."""
    sites_by_kind = dict(session.exec(select(Site.kind, func.count()).group_by(Site.kind)).all())
    devices_by_status = dict(session.exec(select(Device.status, func.count()).group_by(Device.status)).all())
    interfaces = session.exec(select(func.count()).select_from(Interface)).one()
    return {
        "sites_by_kind": sites_by_kind,
        "sites_total": sum(sites_by_kind.values()),
        "devices_by_status": devices_by_status,
        "devices_total": sum(devices_by_status.values()),
        "interfaces": interfaces,
    }


# --------------------------------------------------------------------------- events


def _event_rows(session: Session, *conditions: Any, limit: int, offset: int = 0) -> list[EventRow]:
    stmt = (
        select(Event.id, Event.time, Event.severity, Event.kind, Event.message,
               Site.code, Site.name_en, Site.name_ar, Device.hostname)
        .select_from(Event)
        .outerjoin(Device, col(Device.id) == col(Event.device_id))
        .outerjoin(Site, col(Site.id) == func.coalesce(col(Event.site_id), col(Device.site_id)))
        .where(*conditions)
        .order_by(col(Event.time).desc(), col(Event.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [EventRow(*row) for row in session.exec(stmt).all()]


def latest_events(session: Session, limit: int = 10) -> list[EventRow]:
    return _event_rows(session, limit=limit)


_ALERT_SEVERITIES = (Severity.warning.value, Severity.critical.value)


def alerts(session: Session, page: int) -> tuple[list[EventRow], PageInfo]:
    """Warning and critical events, newest first."""
    cond = col(Event.severity).in_(_ALERT_SEVERITIES)
    total = session.exec(select(func.count()).select_from(Event).where(cond)).one()
    info = _page_info(total, page)
    rows = _event_rows(session, cond, limit=PAGE_SIZE, offset=(info.page - 1) * PAGE_SIZE)
    return rows, info


# --------------------------------------------------------------------------- sites


def sites(session: Session, kind: str, q: str, page: int) -> tuple[list[tuple[Site, int]], PageInfo]:
    """Sites with their device counts, filtered by kind and a text search over code and names."""
    conds: list[Any] = []
    if kind:
        conds.append(col(Site.kind) == kind)
    if q:
        pattern = _like(q)
        conds.append(or_(col(Site.code).ilike(pattern, escape="\\"),
                         col(Site.name_en).ilike(pattern, escape="\\"),
                         col(Site.name_ar).ilike(pattern, escape="\\")))
    total = session.exec(select(func.count()).select_from(Site).where(*conds)).one()
    info = _page_info(total, page)
    per_site = (select(col(Device.site_id).label("site_id"), func.count().label("n"))
                .group_by(col(Device.site_id)).subquery())
    stmt = (
        select(Site, func.coalesce(per_site.c.n, 0))
        .outerjoin(per_site, per_site.c.site_id == col(Site.id))
        .where(*conds)
        .order_by(col(Site.code))
        .offset((info.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return [(site, int(n)) for site, n in session.exec(stmt).all()], info


def site_by_code(session: Session, code: str) -> Site | None:
    return session.exec(select(Site).where(col(Site.code) == code.strip().upper())).first()


def site_detail(session: Session, site: Site, devices_limit: int = 200, events_limit: int = 20) -> dict[str, Any]:
    """Everything the site page shows besides the site itself. A big site's device list is cut at
    ``devices_limit`` (the page links to the paginated Network list for the rest)."""
    prefixes = session.exec(select(Prefix).where(col(Prefix.site_id) == site.id)
                            .order_by(col(Prefix.prefix)).limit(1000)).all()
    on_site = col(Device.site_id) == site.id
    device_total = session.exec(select(func.count()).select_from(Device).where(on_site)).one()
    devices = session.exec(select(Device).where(on_site).order_by(col(Device.hostname)).limit(devices_limit)).all()
    device_ids = select(Device.id).where(on_site)
    events = _event_rows(session, or_(col(Event.site_id) == site.id, col(Event.device_id).in_(device_ids)),
                         limit=events_limit)
    return {"prefixes": list(prefixes), "devices": list(devices), "device_total": device_total, "events": events}


# --------------------------------------------------------------------------- network


def devices(session: Session, q: str, site_id: int | None, page: int) -> tuple[list[tuple[Device, Site]], PageInfo]:
    """All devices with their site, optionally of one site and searched by hostname, address, vendor or model."""
    conds: list[Any] = []
    if site_id is not None:
        conds.append(col(Device.site_id) == site_id)
    if q:
        pattern = _like(q)
        conds.append(or_(*(c.ilike(pattern, escape="\\") for c in (
            col(Device.hostname), col(Device.management_address), col(Device.vendor), col(Device.model)))))
    total = session.exec(select(func.count()).select_from(Device).where(*conds)).one()
    info = _page_info(total, page)
    stmt = (
        select(Device, Site)
        .join(Site, col(Site.id) == col(Device.site_id))
        .where(*conds)
        .order_by(col(Device.hostname))
        .offset((info.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return [(d, s) for d, s in session.exec(stmt).all()], info
