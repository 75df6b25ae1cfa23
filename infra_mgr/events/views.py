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

from infra_mgr.common import ListPage, page_window
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


def _rows(session: Session, *conditions: Any, limit: int, offset: int = 0) -> list[EventRow]:
    # Nine columns: wider than sqlmodel's typed select(), so SQLAlchemy's select() and execute().
    stmt = (
        sa_select(col(Event.id), col(Event.time), col(Event.severity), col(Event.kind), col(Event.message),
                  col(Site.code), col(Site.name_en), col(Site.name_ar), col(Device.hostname))
        .select_from(Event)
        .outerjoin(Device, col(Device.id) == col(Event.device_id))
        .outerjoin(Site, col(Site.id) == func.coalesce(col(Event.site_id), col(Device.site_id)))
        .where(*conditions)
        .order_by(col(Event.time).desc(), col(Event.id).desc())
        .offset(offset)
        .limit(limit)
    )
    keys = tuple(EventRow.model_fields)
    return [EventRow.model_validate(dict(zip(keys, row, strict=True))) for row in session.execute(stmt).all()]


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
