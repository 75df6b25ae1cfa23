"""Change history for inventory tables, recorded by a SQLAlchemy flush hook.

Hooking the session (instead of each service function) means no code path — API, CLI import,
discovery — can change the source of truth without leaving a trace. The actor is the
session's ``info["actor"]`` (set by the API's auth dependency) or else a context variable (CLI, jobs).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import class_mapper

from infra_mgr.common import utcnow
from infra_mgr.inventory.models import (
    Credential,
    Device,
    Interface,
    IPAddress,
    Link,
    ObjectChange,
    Prefix,
    Site,
)

TRACKED: dict[type, str] = {
    Site: "site",
    Device: "device",
    Interface: "interface",
    Link: "link",
    Prefix: "prefix",
    IPAddress: "ip_address",
    Credential: "credential",
}
REDACTED_FIELDS = {"secret_ciphertext"}
_IGNORED_FIELDS = {"updated_at", "created_at"}

current_actor: contextvars.ContextVar[str] = contextvars.ContextVar("current_actor", default="system")


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = current_actor.set(actor)
    try:
        yield
    finally:
        current_actor.reset(token)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _snapshot(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attr in inspect(obj).mapper.column_attrs:
        key = attr.key
        if key in _IGNORED_FIELDS:
            continue
        out[key] = "***" if key in REDACTED_FIELDS else _jsonable(getattr(obj, key))
    return out


def _before_values(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) limited to the columns that changed in this flush."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    state = inspect(obj)
    for attr in state.mapper.column_attrs:
        key = attr.key
        if key in _IGNORED_FIELDS:
            continue
        hist = state.attrs[key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if old == new:
            continue
        if key in REDACTED_FIELDS:
            old, new = "***", "***"
        before[key], after[key] = _jsonable(old), _jsonable(new)
    return before, after


@event.listens_for(OrmSession, "before_flush")
def _touch_updated(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    now = utcnow()
    for obj in session.dirty:
        if type(obj) in TRACKED and "updated_at" in type(obj).model_fields and \
                session.is_modified(obj, include_collections=False):
            obj.updated_at = now


@event.listens_for(OrmSession, "after_flush")
def _record_changes(session: OrmSession, _ctx: Any) -> None:
    rows: list[dict[str, Any]] = []
    actor = session.info.get("actor") or current_actor.get()
    now = utcnow()
    for obj in session.new:
        kind = TRACKED.get(type(obj))
        if kind:
            rows.append(dict(time=now, actor=actor, action="create", object_type=kind,
                             object_id=obj.id, before=None, after=_snapshot(obj)))
    for obj in session.dirty:
        kind = TRACKED.get(type(obj))
        if kind and obj.id is not None:
            before, after = _before_values(obj)
            if after:
                rows.append(dict(time=now, actor=actor, action="update", object_type=kind,
                                 object_id=obj.id, before=before, after=after))
    for obj in session.deleted:
        kind = TRACKED.get(type(obj))
        if kind:
            rows.append(dict(time=now, actor=actor, action="delete", object_type=kind,
                             object_id=obj.id, before=_snapshot(obj), after=None))
    if rows:
        session.connection().execute(ObjectChange.__table__.insert(), rows)  # type: ignore[attr-defined]  # SQLModel does not declare __table__


def insert_tracked(session: OrmSession, model: type, rows: list[dict[str, Any]]) -> list[int]:
    """Insert many new rows of a tracked model in one statement and record a ``create`` change
    for each, exactly as the flush hook would (same actor, same snapshot of every column).

    The flush hook's way costs an ORM object per row (a first discovery of a city creates
    thousands of interfaces); this is the bulk path, and the only one: the rule that nothing
    changes the source of truth without a trace holds because callers use it instead of a bare
    Core insert. Each row gives every column except ``id`` and the timestamps. Returns the ids.
    """
    if not rows:
        return []
    kind = TRACKED[model]
    columns = [a.key for a in class_mapper(model).column_attrs]
    wanted = set(columns) - {"id", *_IGNORED_FIELDS}
    for row in rows:
        if set(row) != wanted:
            raise ValueError(f"{model.__name__} rows need exactly {sorted(wanted)}; got {sorted(row)}")
    now = utcnow()
    stamps = {k: now for k in _IGNORED_FIELDS if k in columns}
    table = model.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
    result = session.connection().execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                          [{**row, **stamps} for row in rows])
    ids = [int(r[0]) for r in result]
    actor = session.info.get("actor") or current_actor.get()
    changes = [dict(time=now, actor=actor, action="create", object_type=kind, object_id=i, before=None,
                    after={"id": i, **{k: "***" if k in REDACTED_FIELDS else _jsonable(v) for k, v in row.items()}})
               for i, row in zip(ids, rows, strict=True)]
    session.connection().execute(ObjectChange.__table__.insert(), changes)  # type: ignore[attr-defined]  # SQLModel does not declare __table__
    return ids
