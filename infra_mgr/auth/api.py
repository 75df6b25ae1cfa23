"""Auth routes: session login for the dashboard, own API tokens, users (admin) and the audit log."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlmodel import col, select

from infra_mgr.api.crud import commit_or_conflict, get_or_404, list_rows
from infra_mgr.api.deps import CurrentPrincipal, DbSession, Unauthorized, perm_extra, require
from infra_mgr.api.pagination import Cursor, Limit, ObjId, Page
from infra_mgr.auth import service
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


def start_session(request: Request, user: User) -> str:
    """Log a user into the dashboard: signed cookie with the user id and a CSRF token."""
    request.session.clear()
    csrf = secrets.token_urlsafe(24)
    request.session.update({"uid": user.id, "csrf": csrf})
    return csrf


@router.post("/auth/login", summary="Log in (sets the dashboard session cookie)")
def login(data: LoginRequest, request: Request, session: DbSession) -> dict[str, Any]:
    user = service.authenticate(session, data.username, data.password)
    if user is None:
        raise Unauthorized("wrong username or password")
    session.commit()
    request.state.audit_user = user.username
    csrf = start_session(request, user)
    return {"username": user.username, "role": user.role, "csrf_token": csrf}


@router.post("/auth/logout", status_code=204, response_class=Response, summary="Log out")
def logout(request: Request) -> Response:
    request.session.clear()
    return Response(status_code=204)


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
def list_users(session: DbSession, limit: Limit = 100, cursor: Cursor = None) -> Any:
    rows, nxt = list_rows(session, User, [], limit, cursor)
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
