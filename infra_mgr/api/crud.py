"""One factory for the list / get / create / update / delete routes of a table.

Every inventory table gets the same conventions (cursor pagination, filters by field, 404/409/422
with the field named, a permission per route) without each router restating them. Routes with
real logic (IP allocation, credentials) are written by hand next to the generated ones.
"""


import inspect as pyinspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel
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
    # Changing and deleting can need more than creating (IPAM: allocating is not owning the plan).
    change_perm: Perm | None = None
    # False when the table's DELETE is written by hand (e.g. a prefix that still holds addresses).
    generated_delete: bool = True


# Characters no name or label needs and that mislead whoever reads it: C0/C1 controls (NUL, the
# terminal's ESC sequences, backspace), DEL, and the bidirectional embeddings, overrides and
# isolates that make text display in an order other than the one stored.
_FORBIDDEN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\t\n\r]")
_NAME_FIELDS = re.compile(r"(^|_)(name|hostname|code|username|name_en|name_ar)$")
# A list without its own search columns searches these, when the table has them.
_DEFAULT_SEARCH = ("name", "hostname", "code", "cidr", "description")


def text_problem(field_name: str, value: str) -> str | None:
    """Why ``value`` cannot be stored as ``field_name`` (None when it can): no control or bidi
    characters anywhere, and no line breaks in a name."""
    bad = _FORBIDDEN_TEXT.search(value)
    if bad is None and _NAME_FIELDS.search(field_name):
        bad = _LINE_BREAKS.search(value)
    if bad is None:
        return None
    return f"must not contain the control character U+{ord(bad.group()):04X}"


def plain_query(value: str | None) -> str | None:
    """A search or filter with a NUL or other control character would match every row on SQLite
    and be a database error on PostgreSQL: refused as the parameter's own error (a validator, so
    it comes after the permission check)."""
    if value is not None and (problem := text_problem("", value)):
        raise ValueError(problem)
    return value


PlainQuery = AfterValidator(plain_query)


def check_text(values: dict[str, Any]) -> None:
    """Refuse (422, field named) any text value carrying a control or bidi-override character."""
    for key, value in values.items():
        if isinstance(value, str):
            problem = text_problem(key, value)
            if problem:
                raise Invalid(problem, field=key)


def like_contains(column: Any, value: str) -> Any:
    """Case-insensitive substring match where ``%`` and ``_`` mean themselves."""
    return column.icontains(value, autoescape=True)


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
    check_text(values)
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
    check_text(values)
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


def search_columns(spec: CrudSpec) -> list[Any]:
    """The spec's search columns, else the table's usual text columns (name, description …)."""
    if spec.search:
        return list(spec.search)
    table = _table(spec.model)
    return [table.c[name] for name in _DEFAULT_SEARCH if name in table.c]


def _filter_dependency(spec: CrudSpec) -> Callable[..., list[ColumnElement[bool] | tuple[Any, Any]]]:
    """Build a dependency whose signature is the spec's filters, so they appear in OpenAPI.
    ``q`` is offered wherever there is a column to search, and refused (422) where there is none,
    so that a search is never silently ignored."""
    search = search_columns(spec)
    # Query() sits inside Annotated so that FastAPI keeps the validator beside it.
    params = [
        pyinspect.Parameter(
            f.name, pyinspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[f.type | None, Query(description=f.description or f"filter by {f.name}",
                                                      max_length=255), PlainQuery]
            if f.type is str
            else Annotated[f.type | None, Query(ge=0, le=MAX_ID, description=f.description or f"filter by {f.name}")],
        )
        for f in spec.filters
    ]
    if search:  # a list with nothing to search does not offer q (an unknown parameter is a 422)
        params.append(pyinspect.Parameter(
            "q", pyinspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[str | None, Query(max_length=255, description="case-insensitive search in "
                                                   + ", ".join(c.name for c in search)), PlainQuery]))

    def dep(**kwargs: Any) -> list[Any]:
        clauses: list[Any] = []
        for f in spec.filters:
            value = kwargs.get(f.name)
            if value is None:
                continue
            if f.join is not None:
                clauses.append(("join", f.join))
            if f.op == "icontains":
                clauses.append(like_contains(f.column, value))
            else:
                clauses.append(f.column == value)
        q = kwargs.get("q")
        if q:
            from sqlalchemy import or_

            clauses.append(or_(*(like_contains(c, q) for c in search)))
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
    change_perm = spec.change_perm or spec.write_perm
    change_dep = Depends(require(change_perm))
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

        @router.patch(spec.path + "/{obj_id}", response_model=read_model, dependencies=[change_dep],
                      openapi_extra=perm_extra(change_perm), summary=f"Change a {label}",
                      operation_id=f"update_{label.replace(' ', '_')}")
        def update(obj_id: ObjId, data: update_model, session: DbSession) -> Any:  # type: ignore[valid-type]  # runtime model
            obj = get_or_404(session, spec.model, obj_id, label)
            return update_row(session, spec, obj, data)

    if not spec.generated_delete:
        return router

    @router.delete(spec.path + "/{obj_id}", status_code=204, dependencies=[change_dep],
                   openapi_extra=perm_extra(change_perm), summary=f"Delete a {label}",
                   operation_id=f"delete_{label.replace(' ', '_')}", response_class=Response)
    def delete(obj_id: ObjId, session: DbSession) -> Response:
        obj = get_or_404(session, spec.model, obj_id, label)
        session.delete(obj)
        commit_or_conflict(session, label)
        return Response(status_code=204)

    return router
