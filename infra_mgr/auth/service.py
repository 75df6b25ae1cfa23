"""User, token and session logic. Raises ``ServiceError``s the API turns into 4xx answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlmodel import Session, select

from infra_mgr.auth.crypto import hash_password, new_api_token, token_digest, verify_password
from infra_mgr.auth.models import ApiToken, User, UserCreate, UserUpdate
from infra_mgr.auth.permissions import Perm, Role, allowed
from infra_mgr.common import utcnow
from infra_mgr.errors import Conflict, NotFound


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved once per request from a bearer token or the session cookie."""

    user_id: int
    username: str
    role: str
    via: str  # "token" | "session" | "cli"

    def can(self, perm: Perm) -> bool:
        return allowed(self.role, perm)


def create_user(session: Session, data: UserCreate) -> User:
    if session.exec(select(User).where(User.username == data.username)).first():
        raise Conflict(f"user {data.username!r} already exists", field="username")
    user = User(username=data.username, full_name=data.full_name, role=data.role.value,
                password_hash=hash_password(data.password))
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, user: User, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True)
    if "password" in changes:
        pw = changes.pop("password")
        if pw is not None:
            user.password_hash = hash_password(pw)
    for key, value in changes.items():
        if value is not None:
            setattr(user, key, value.value if isinstance(value, Role) else value)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    user.last_login = utcnow()
    session.add(user)
    return user


def create_token(session: Session, user: User, name: str = "", expires_in_days: int | None = None
                 ) -> tuple[ApiToken, str]:
    raw = new_api_token()
    expires = utcnow() + dt.timedelta(days=expires_in_days) if expires_in_days else None
    tok = ApiToken(user_id=user.id or 0, name=name, digest=token_digest(raw), prefix=raw[:12],
                   expires_at=expires)
    session.add(tok)
    session.flush()
    return tok, raw


def principal_from_token(session: Session, raw: str) -> Principal | None:
    row = session.exec(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.digest == token_digest(raw))
    ).first()
    if row is None:
        return None
    tok, user = row
    now = utcnow()
    if not user.is_active or (tok.expires_at is not None and tok.expires_at <= now):
        return None
    # Record use at most once a minute: a token can drive thousands of requests a minute.
    if tok.last_used is None or (now - tok.last_used).total_seconds() > 60:
        tok.last_used = now
        session.add(tok)
    return Principal(user_id=user.id or 0, username=user.username, role=user.role, via="token")


def principal_from_user_id(session: Session, user_id: int) -> Principal | None:
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        return None
    return Principal(user_id=user.id or 0, username=user.username, role=user.role, via="session")


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user named {username!r}", field="username")
    return user
