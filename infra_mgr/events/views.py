"""Reading the event log the way people look at it: newest first, each event with the site and
device it concerns named (not only their ids), so a list needs no further look-ups.

The dashboard's event tables (overview, alerts, site and device pages) and any other surface read
events through these functions; every list is bounded by a ``limit`` or a page size.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infra_mgr.common import ListPage, page_window, utcnow
from infra_mgr.events.models import Event, Severity
from infra_mgr.inventory.models import Device, Site

# What the alerts list shows: the events someone should look at.
ALERT_SEVERITIES = (Severity.warning.value, Severity.critical.value)


class EventRow(BaseModel):
    """One event with the code and names of its site (its own, else its device's) and the device's hostname."""

    id: int
    time: dt.datetime
    severity: Severity
    kind: str
    message: str
    site_code: str | None
    site_name_en: str | None
    site_name_ar: str | None
    hostname: str | None
    device_id: int | None = None  # the event's device, which the page links to
    data: dict[str, Any] = {}  # the parameters of the event's sentence (see events.messages)
    count: int = 1  # a group of routine events shown as one line (see ``overview``)


def _rows(session: Session, *conditions: Any, limit: int, offset: int = 0) -> list[EventRow]:
    # Eleven columns: wider than sqlmodel's typed select(), so SQLAlchemy's select() and execute().
    stmt = (
        sa_select(col(Event.id), col(Event.time), col(Event.severity), col(Event.kind), col(Event.message),
                  col(Site.code), col(Site.name_en), col(Site.name_ar), col(Device.hostname), col(Event.device_id),
                  col(Event.data))
        .select_from(Event)
        .outerjoin(Device, col(Device.id) == col(Event.device_id))
        .outerjoin(Site, col(Site.id) == func.coalesce(col(Event.site_id), col(Device.site_id)))
        .where(*conditions)
        .order_by(col(Event.time).desc(), col(Event.id).desc())
        .offset(offset)
        .limit(limit)
    )
    keys = tuple(EventRow.model_fields)[:11]
    out = []
    for row in session.execute(stmt).all():
        values = dict(zip(keys, row, strict=True))
        if not isinstance(values["data"], dict):
            values["data"] = {}
        out.append(EventRow.model_validate(values))
    return out


def latest(session: Session, limit: int = 10) -> list[EventRow]:
    """The newest events of the whole estate."""
    return _rows(session, limit=limit)


def alerts(session: Session, page: int = 1, size: int = 100) -> ListPage[EventRow]:
    """Warning and critical events, newest first, one page at a time."""
    cond = col(Event.severity).in_(ALERT_SEVERITIES)
    total = int(session.exec(select(func.count()).select_from(Event).where(cond)).one())
    page, offset = page_window(total, page, size)
    return ListPage[EventRow](rows=_rows(session, cond, limit=size, offset=offset), total=total, page=page, size=size)


def of_device(session: Session, device_id: int, limit: int = 20) -> list[EventRow]:
    """The newest events recorded against one device."""
    return _rows(session, col(Event.device_id) == device_id, limit=limit)


def of_site(session: Session, site_id: int, limit: int = 20) -> list[EventRow]:
    """The newest events of a site: recorded against the site itself or against any of its devices."""
    device_ids = select(Device.id).where(col(Device.site_id) == site_id)
    return _rows(session, or_(col(Event.site_id) == site_id, col(Event.device_id).in_(device_ids)), limit=limit)


# Kinds that are routine in bulk (a discovery of a city finds a hundred devices at once): the
# overview shows each as one line with a count instead of letting them push everything else off.
ROUTINE_KINDS = ("device.new",)
OVERVIEW_WINDOW = dt.timedelta(days=7)
ALARM_WINDOW = dt.timedelta(hours=24)


def overview(session: Session, limit: int = 10, now: dt.datetime | None = None) -> list[EventRow]:
    """The recent events worth reading on the overview: every kind but the routine ones, newest
    first, and each routine kind of the last week as one row (its newest event, with ``count``)."""
    now = now or utcnow()
    rows = _rows(session, col(Event.kind).not_in(ROUTINE_KINDS), limit=limit)
    since = now - OVERVIEW_WINDOW
    for kind in ROUTINE_KINDS:
        cond = (col(Event.kind) == kind, col(Event.time) >= since)
        n = int(session.exec(select(func.count()).select_from(Event).where(*cond)).one())
        if n:
            newest = _rows(session, *cond, limit=1)[0]
            rows.append(newest.model_copy(update={"count": n}) if n > 1 else newest)
    rows.sort(key=lambda r: (r.time, r.id), reverse=True)
    return rows[:limit]


def alarm_count(session: Session, now: dt.datetime | None = None) -> int:
    """Warning and critical events of the last day."""
    since = (now or utcnow()) - ALARM_WINDOW
    return int(session.exec(select(func.count()).select_from(Event)
                            .where(col(Event.severity).in_(ALERT_SEVERITIES), col(Event.time) >= since)).one())
