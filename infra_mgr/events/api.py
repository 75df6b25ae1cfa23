"""Event log routes: list with filters, and record (for integrations and scripts)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from infra_mgr.api.crud import PlainQuery, check_references, commit_or_conflict, like_contains
from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, Page, decode_cursor, encode_cursor
from infra_mgr.auth.permissions import Perm
from infra_mgr.events import service
from infra_mgr.events.models import Event, EventCreate, EventRead, Severity

router = APIRouter(tags=["events"])


@router.get("/events", response_model=Page[EventRead], dependencies=[Depends(require(Perm.inventory_read))],
            openapi_extra=perm_extra(Perm.inventory_read), summary="Events, newest first")
def list_events(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
                kind: Annotated[str | None, Query(max_length=64)] = None,
                severity: Severity | None = None,
                site_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                device_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                since: dt.datetime | None = None,
                q: Annotated[str | None, Query(max_length=255, description="case-insensitive search in "
                                                                        "kind and message"), PlainQuery] = None) -> Any:
    from sqlalchemy import or_
    from sqlmodel import col, select

    stmt = select(Event)
    if q:
        stmt = stmt.where(or_(like_contains(col(Event.kind), q), like_contains(col(Event.message), q)))
    if kind:
        stmt = stmt.where(Event.kind == kind)
    if severity:
        stmt = stmt.where(Event.severity == severity.value)
    if site_id:
        stmt = stmt.where(Event.site_id == site_id)
    if device_id:
        stmt = stmt.where(Event.device_id == device_id)
    if since:
        stmt = stmt.where(Event.time >= since)
    before = decode_cursor(cursor)
    if before is not None:
        stmt = stmt.where(col(Event.id) < before)
    rows = list(session.exec(stmt.order_by(col(Event.id).desc()).limit(limit + 1)))
    nxt = encode_cursor(rows[limit - 1].id or 0) if len(rows) > limit else None
    return {"results": rows[:limit], "next": nxt}


@router.post("/events", response_model=EventRead, status_code=201,
             dependencies=[Depends(require(Perm.events_write))], openapi_extra=perm_extra(Perm.events_write),
             summary="Record an event")
def create_event(data: EventCreate, session: DbSession) -> Any:
    check_references(session, Event, data.model_dump())
    ev = service.record(session, data.kind, data.message, severity=data.severity, site_id=data.site_id,
                        device_id=data.device_id, data=data.data)
    if data.time:
        ev.time = data.time
    commit_or_conflict(session, "event")
    session.refresh(ev)
    return ev
