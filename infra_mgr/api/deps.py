"""Dependencies shared by every router: the database session, the caller, permission checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from infra_mgr.auth import sessions
from infra_mgr.auth.permissions import Perm
from infra_mgr.auth.service import Principal, principal_from_token
from infra_mgr.db import write_session
from infra_mgr.errors import ServiceError

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


def get_session(request: Request) -> Iterator[Session]:
    """Reads get an ordinary session; a write request's session takes the database write lock at its
    first statement (SQLite), so its read-then-write never fails against the pollers' writes."""
    engine = request.app.state.engine
    if request.method in SAFE_METHODS:
        with Session(engine, expire_on_commit=False) as session:
            yield session
        return
    with write_session(engine) as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def get_principal(request: Request, session: DbSession) -> Principal:
    """Bearer token first (API clients), then the dashboard's session cookie."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, raw = auth.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        principal = principal_from_token(session, raw.strip())
        if principal is None:
            raise Unauthorized("invalid or expired API token")
        try:
            session.commit()  # last-used time: worth recording, not worth failing a request for
        except OperationalError:
            session.rollback()
    else:
        principal = sessions.principal(request, session)  # the server's record: revocation is immediate
        if principal is None:
            raise Unauthorized("authentication required: send a bearer token or log in")
        # Cookie-authenticated writes must prove they come from our own pages.
        if request.method not in SAFE_METHODS and not sessions.check_csrf(
                request, request.headers.get("x-csrf-token", "")):
            raise Forbidden("missing or wrong X-CSRF-Token header for a cookie-authenticated change")
    request.state.principal = principal
    session.info["actor"] = principal.username
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(perm: Perm) -> Callable[..., Any]:
    """Dependency factory: the caller must hold ``perm``."""

    def _check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(perm):
            raise Forbidden(f"role {principal.role!r} lacks permission {perm.value!r}")
        return principal

    _check.permission = perm  # type: ignore[attr-defined]  # functions take attributes; stubs do not say so
    return _check


def perm_extra(perm: Perm) -> dict[str, Any]:
    """OpenAPI extension naming the permission a route needs (read by docs and tests)."""
    return {"x-permission": perm.value}
