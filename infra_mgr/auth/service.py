"""User, token and session logic. Raises ``ServiceError``s the API turns into 4xx answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from infra_mgr.auth.crypto import hash_password, new_api_token, token_digest, verify_password
from infra_mgr.auth.models import ApiToken, User, UserCreate, UserUpdate
from infra_mgr.auth.permissions import Perm, Role, allowed
from infra_mgr.common import utcnow
from infra_mgr.db import write_session
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
        select(ApiToken, User).join(User, col(User.id) == col(ApiToken.user_id))
        .where(col(ApiToken.digest) == token_digest(raw))
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


def sign_in(engine: Engine, username: str, password: str) -> User | None:
    """Check a password and stamp the user's last login: the check only reads (argon2 is slow by
    design, so callers run this in a worker thread), the stamp is its own short write."""
    with Session(engine, expire_on_commit=False) as session:
        user = authenticate(session, username, password)
    if user is not None:
        with write_session(engine) as session:
            session.execute(update(User).where(col(User.id) == user.id).values(last_login=user.last_login))
    return user


def user_exists(session: Session, username: str) -> bool:
    return session.exec(select(User.id).where(User.username == username)).first() is not None


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user named {username!r}", field="username")
    return user
