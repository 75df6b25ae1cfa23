"""Writing to the event log: the one function every domain calls."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from infra_mgr.common import utcnow
from infra_mgr.events.models import Event, Severity


def record(session: Session, kind: str, message: str = "", *, severity: Severity | str = Severity.info,
           site_id: int | None = None, device_id: int | None = None,
           data: dict[str, Any] | None = None) -> Event:
    """Add an event to the caller's transaction (it commits with the change it describes)."""
    ev = Event(time=utcnow(), kind=kind, message=message, severity=Severity(severity).value,
               site_id=site_id, device_id=device_id, data=data or {})
    session.add(ev)
    return ev
