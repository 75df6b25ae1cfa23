"""One factory for the list / get / create / update / delete routes of a table.

Every inventory table gets the same conventions (cursor pagination, filters by field, 404/409/422
with the field named, a permission per route) without each router restating them. Routes with
real logic (IP allocation, credentials) are written by hand next to the generated ones.
"""


import inspect as pyinspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Table, exists, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from infra_mgr.api.deps import DbSession, perm_extra, require
from infra_mgr.api.pagination import MAX_ID, Cursor, Limit, ObjId, Page, decode_cursor, encode_cursor
from infra_mgr.auth.permissions import Perm
from infra_mgr.errors import Conflict, Invalid, NotFound


@dataclass(frozen=True)
class Filter:
    """A query parameter that narrows a list: ``?name=value``.

    ``op`` is ``eq`` (exact) or ``icontains`` (case-insensitive substring); ``join`` is an extra
    (table, on-clause) when the column lives in another table (e.g. devices by site code).
    """

    name: str
    column: Any
    type: type = str
    op: str = "eq"
    join: tuple[Any, Any] | None = None
    description: str = ""


@dataclass
class CrudSpec:
    model: type[SQLModel]
    path: str
    label: str
    create: type[BaseModel] | None
    update: type[BaseModel] | None
    read: type[BaseModel]
    read_perm: Perm
    write_perm: Perm
    filters: Sequence[Filter] = field(default_factory=tuple)
    search: Sequence[Any] = field(default_factory=tuple)
    before_write: Callable[[Session, SQLModel, dict[str, Any]], None] | None = None


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__


def check_references(session: Session, model: type[SQLModel], values: dict[str, Any]) -> None:
    """Name the field when a foreign key points nowhere (instead of a bare constraint error)."""
    for fk in _table(model).foreign_keys:
        name = fk.parent.name
        value = values.get(name)
        if value is None:
            continue
        if not session.execute(select(exists().where(fk.column == value))).scalar():
            raise Invalid(f"{fk.column.table.name} {value} does not exist", field=name)


def check_unique(session: Session, model: type[SQLModel], values: dict[str, Any], own_id: int | None) -> None:
    """Name the field when a unique value is already taken (409)."""
    table = _table(model)
    for col in table.columns:
        if not col.unique or col.name not in values or values[col.name] is None:
            continue
        cond = col == values[col.name]
        if own_id is not None:
            cond = cond & (table.c.id != own_id)
        if session.execute(select(exists().where(cond))).scalar():
            raise Conflict(f"{col.name} {values[col.name]!r} is already in use", field=col.name)


def commit_or_conflict(session: Session, label: str) -> None:
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"{label} conflicts with existing data or is still referenced: "
                       f"{str(exc.orig).splitlines()[0]}") from exc


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if hasattr(v, "value") and not isinstance(v, (int, float, str)) else v)
            for k, v in values.items()}


def create_row(session: Session, spec: CrudSpec, data: BaseModel) -> SQLModel:
    values = _plain(data.model_dump())
    check_references(session, spec.model, values)
    check_unique(session, spec.model, values, None)
    obj = spec.model(**values)
    if spec.before_write:
        spec.before_write(session, obj, values)
    session.add(obj)
    commit_or_conflict(session, spec.label)
    session.refresh(obj)
    return obj


def update_row(session: Session, spec: CrudSpec, obj: SQLModel, data: BaseModel) -> SQLModel:
    values = _plain(data.model_dump(exclude_unset=True))
    check_references(session, spec.model, values)
    check_unique(session, spec.model, values, obj.id)  # type: ignore[attr-defined]  # every CRUD table has an id
    for key, value in values.items():
        setattr(obj, key, value)
    if spec.before_write:
        spec.before_write(session, obj, values)
    session.add(obj)
    commit_or_conflict(session, spec.label)
    session.refresh(obj)
    return obj


def get_or_404(session: Session, model: type[SQLModel], obj_id: int, label: str) -> Any:
    obj = session.get(model, obj_id)
    if obj is None:
        raise NotFound(f"{label} {obj_id} not found")
    return obj


def _filter_dependency(spec: CrudSpec) -> Callable[..., list[ColumnElement[bool] | tuple[Any, Any]]]:
    """Build a dependency whose signature is the spec's filters, so they appear in OpenAPI."""
    params = [
        pyinspect.Parameter(
            f.name, pyinspect.Parameter.KEYWORD_ONLY,
            default=Query(None, description=f.description or f"filter by {f.name}", max_length=255)
            if f.type is str
            else Query(None, ge=0, le=MAX_ID, description=f.description or f"filter by {f.name}"),
            annotation=f.type | None,
        )
        for f in spec.filters
    ]
    if spec.search:
        params.append(pyinspect.Parameter(
            "q", pyinspect.Parameter.KEYWORD_ONLY,
            default=Query(None, max_length=255, description="case-insensitive search"), annotation=str | None))

    def dep(**kwargs: Any) -> list[Any]:
        clauses: list[Any] = []
        for f in spec.filters:
            value = kwargs.get(f.name)
            if value is None:
                continue
            if f.join is not None:
                clauses.append(("join", f.join))
            if f.op == "icontains":
                clauses.append(f.column.ilike(f"%{value}%"))
            else:
                clauses.append(f.column == value)
        q = kwargs.get("q")
        if q:
            from sqlalchemy import or_

            clauses.append(or_(*(c.ilike(f"%{q}%") for c in spec.search)))
        return clauses

    dep.__signature__ = pyinspect.Signature(params)  # type: ignore[attr-defined]  # read by FastAPI; not in stubs
    return dep


def list_rows(session: Session, model: type[SQLModel], clauses: list[Any], limit: int, cursor: str | None
              ) -> tuple[list[Any], str | None]:
    table = _table(model)
    stmt = select(model)
    joined: set[int] = set()
    for clause in clauses:
        if isinstance(clause, tuple) and clause[0] == "join":
            target, on = clause[1]
            if id(target) not in joined:
                stmt = stmt.join(target, on)
                joined.add(id(target))
        else:
            stmt = stmt.where(clause)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(table.c.id > after)
    stmt = stmt.order_by(table.c.id).limit(limit + 1)
    rows = list(session.execute(stmt).scalars())
    nxt = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], nxt


def crud_router(spec: CrudSpec, router: APIRouter | None = None) -> APIRouter:
    router = router or APIRouter()
    read_dep = Depends(require(spec.read_perm))
    write_dep = Depends(require(spec.write_perm))
    filters = _filter_dependency(spec)
    read_model = spec.read
    label = spec.label

    @router.get(spec.path, response_model=Page[read_model], dependencies=[read_dep],  # type: ignore[valid-type]  # model picked at runtime
                openapi_extra=perm_extra(spec.read_perm), summary=f"List {label}s",
                operation_id=f"list_{label.replace(' ', '_')}s")
    def list_(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
              clauses: list[Any] = Depends(filters)) -> Any:
        rows, nxt = list_rows(session, spec.model, clauses, limit, cursor)
        return {"results": rows, "next": nxt}

    @router.get(spec.path + "/{obj_id}", response_model=read_model, dependencies=[read_dep],
                openapi_extra=perm_extra(spec.read_perm), summary=f"Get one {label}",
                operation_id=f"get_{label.replace(' ', '_')}")
    def get(obj_id: ObjId, session: DbSession) -> Any:
        return get_or_404(session, spec.model, obj_id, label)

    if spec.create is not None:
        create_model = spec.create

        @router.post(spec.path, response_model=read_model, status_code=201, dependencies=[write_dep],
                     openapi_extra=perm_extra(spec.write_perm), summary=f"Create a {label}",
                     operation_id=f"create_{label.replace(' ', '_')}")
        def create(data: create_model, session: DbSession) -> Any:  # type: ignore[valid-type]  # runtime model
            return create_row(session, spec, data)

    if spec.update is not None:
        update_model = spec.update

        @router.patch(spec.path + "/{obj_id}", response_model=read_model, dependencies=[write_dep],
                      openapi_extra=perm_extra(spec.write_perm), summary=f"Change a {label}",
                      operation_id=f"update_{label.replace(' ', '_')}")
        def update(obj_id: ObjId, data: update_model, session: DbSession) -> Any:  # type: ignore[valid-type]  # runtime model
            obj = get_or_404(session, spec.model, obj_id, label)
            return update_row(session, spec, obj, data)

    @router.delete(spec.path + "/{obj_id}", status_code=204, dependencies=[write_dep],
                   openapi_extra=perm_extra(spec.write_perm), summary=f"Delete a {label}",
                   operation_id=f"delete_{label.replace(' ', '_')}", response_class=Response)
    def delete(obj_id: ObjId, session: DbSession) -> Response:
        obj = get_or_404(session, spec.model, obj_id, label)
        session.delete(obj)
        commit_or_conflict(session, label)
        return Response(status_code=204)

    return router
