"""Auth routes: session login for the dashboard, own API tokens, users (admin) and the audit log."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import or_
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from infra_mgr.api.crud import PlainQuery, commit_or_conflict, get_or_404, like_contains, list_rows
from infra_mgr.api.deps import CurrentPrincipal, DbSession, Forbidden, Unauthorized, perm_extra, require
from infra_mgr.api.pagination import Cursor, Limit, ObjId, Page
from infra_mgr.auth import service, sessions, throttle
from infra_mgr.auth.models import (
    ApiToken,
    AuditLog,
    AuditRead,
    LoginRequest,
    TokenCreate,
    TokenCreated,
    TokenRead,
    User,
    UserCreate,
    UserRead,
    UserUpdate,
)
from infra_mgr.auth.permissions import Perm
from infra_mgr.errors import NotFound

router = APIRouter(tags=["auth"])


def throttled(retry_after: float) -> JSONResponse:
    """429 with the seconds to wait (rounded up, so a client retrying on time is let in)."""
    wait = max(1, math.ceil(retry_after))
    return JSONResponse({"detail": f"too many failed sign-ins; retry in {wait} s", "errors": []},
                        status_code=429, headers={"Retry-After": str(wait)})


async def attempt_sign_in(request: Request, username: str, password: str) -> service.SignIn:
    """One throttled sign-in from this request's client address (the hash runs in a worker thread)."""
    policy = throttle.Policy.from_settings(request.app.state.settings)
    return await run_in_threadpool(service.sign_in, request.app.state.engine, username, password,
                                   sessions.client_address(request), policy)


@router.post("/auth/login", summary="Log in (sets the dashboard session cookie)",
             responses={429: {"description": "Too many failed sign-ins for this username or address; "
                                             "the Retry-After header says when to try again"}})
async def login(data: LoginRequest, request: Request) -> Any:
    request.state.audit_user = data.username
    result = await attempt_sign_in(request, data.username, data.password)
    if result.retry_after > 0:
        return throttled(result.retry_after)
    user = result.user
    if user is None:
        raise Unauthorized("wrong username or password")
    csrf = await run_in_threadpool(sessions.start, request, user.id or 0)
    return {"username": user.username, "role": user.role, "csrf_token": csrf}


@router.post("/auth/logout", status_code=204, response_class=Response, summary="Log out (ends the session)")
async def logout(request: Request) -> Response:
    """Ends the cookie's session on the server. A live session must send its CSRF token (a page
    elsewhere must not be able to sign the user out); a dead or absent one has nothing to protect."""
    if sessions.has_session(request):
        live = await run_in_threadpool(_live_session, request)
        if live and not sessions.check_csrf(request, request.headers.get("x-csrf-token", "")):
            raise Forbidden("missing or wrong X-CSRF-Token header for a cookie-authenticated change")
        await run_in_threadpool(sessions.end, request)
    return Response(status_code=204)


def _live_session(request: Request) -> bool:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        return sessions.principal(request, session) is not None


@router.get("/auth/me", response_model=UserRead, summary="Who am I")
def me(principal: CurrentPrincipal, session: DbSession) -> Any:
    return session.get(User, principal.user_id)


_tokens = Depends(require(Perm.tokens_own))


@router.get("/auth/tokens", response_model=list[TokenRead], dependencies=[_tokens],
            openapi_extra=perm_extra(Perm.tokens_own))
def my_tokens(principal: CurrentPrincipal, session: DbSession) -> Any:
    return session.exec(select(ApiToken).where(ApiToken.user_id == principal.user_id)
                        .order_by(col(ApiToken.id))).all()


@router.post("/auth/tokens", response_model=TokenCreated, status_code=201, dependencies=[_tokens],
             openapi_extra=perm_extra(Perm.tokens_own), summary="Create an API token (shown once)")
def create_token(data: TokenCreate, principal: CurrentPrincipal, session: DbSession) -> Any:
    user = session.get(User, principal.user_id)
    assert user is not None
    tok, raw = service.create_token(session, user, data.name, data.expires_in_days)
    session.commit()
    return TokenCreated(**TokenRead.model_validate(tok).model_dump(), token=raw)


@router.delete("/auth/tokens/{obj_id}", status_code=204, response_class=Response, dependencies=[_tokens],
               openapi_extra=perm_extra(Perm.tokens_own), summary="Revoke one of my tokens")
def revoke_token(obj_id: ObjId, principal: CurrentPrincipal, session: DbSession) -> Response:
    tok = session.get(ApiToken, obj_id)
    if tok is None or tok.user_id != principal.user_id:
        raise NotFound(f"token {obj_id} not found")
    session.delete(tok)
    session.commit()
    return Response(status_code=204)


_admin = Depends(require(Perm.users_manage))


@router.get("/users", response_model=Page[UserRead], dependencies=[_admin],
            openapi_extra=perm_extra(Perm.users_manage))
def list_users(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
               q: Annotated[str | None, Query(max_length=255, description=(
                   "case-insensitive search in username, full_name")), PlainQuery] = None) -> Any:
    clauses = [or_(like_contains(col(User.username), q), like_contains(col(User.full_name), q))] if q else []
    rows, nxt = list_rows(session, User, clauses, limit, cursor)
    return {"results": rows, "next": nxt}


@router.post("/users", response_model=UserRead, status_code=201, dependencies=[_admin],
             openapi_extra=perm_extra(Perm.users_manage))
def create_user(data: UserCreate, session: DbSession) -> Any:
    user = service.create_user(session, data)
    commit_or_conflict(session, "user")
    return user


@router.patch("/users/{obj_id}", response_model=UserRead, dependencies=[_admin],
              openapi_extra=perm_extra(Perm.users_manage))
def update_user(obj_id: ObjId, data: UserUpdate, session: DbSession) -> Any:
    user = service.update_user(session, get_or_404(session, User, obj_id, "user"), data)
    commit_or_conflict(session, "user")
    return user


@router.get("/audit", response_model=Page[AuditRead], dependencies=[Depends(require(Perm.audit_read))],
            openapi_extra=perm_extra(Perm.audit_read), summary="Audit log of every mutation (secrets redacted)")
def audit(session: DbSession, limit: Limit = 100, cursor: Cursor = None,
          username: Annotated[str | None, Query(max_length=64)] = None) -> Any:
    rows, nxt = list_rows(session, AuditLog, [AuditLog.username == username] if username else [], limit, cursor)
    return {"results": rows, "next": nxt}
