"""User, token and session logic. Raises ``ServiceError``s the API turns into 4xx answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine, Update, text, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from infra_mgr.auth import throttle
from infra_mgr.auth.crypto import hash_password, new_api_token, token_digest, verify_password
from infra_mgr.auth.models import ApiToken, AuthSession, User, UserCreate, UserUpdate
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


def revoke_sessions(session: Session, user_id: int) -> None:
    """End every live dashboard session of a user, in the caller's transaction. API tokens are
    separate credentials with their own revocation and stay."""
    session.execute(update(AuthSession).where(col(AuthSession.user_id) == user_id,
                                              col(AuthSession.revoked_at).is_(None)).values(revoked_at=utcnow()))


def update_user(session: Session, user: User, data: UserUpdate) -> User:
    """Change a user. A new password or a deactivation ends the user's sessions: whoever held the
    old password (or the person being locked out) must not stay signed in."""
    changes = data.model_dump(exclude_unset=True)
    if "password" in changes:
        pw = changes.pop("password")
        if pw is not None:
            user.password_hash = hash_password(pw)
            revoke_sessions(session, user.id or 0)
    if changes.get("is_active") is False:
        revoke_sessions(session, user.id or 0)
    for key, value in changes.items():
        if value is not None:
            setattr(user, key, value.value if isinstance(value, Role) else value)
    session.add(user)
    session.flush()
    return user


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash made by the same hasher (same cost) that no password matches in practice."""
    return hash_password(token_digest(new_api_token()))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The user if the password is right. An unknown or inactive user costs the same hash
    verification as a known one, so the answer's timing does not tell which usernames exist."""
    user = session.exec(select(User).where(User.username == username)).first()
    known = user is not None and user.is_active and bool(user.password_hash)
    ok = verify_password(user.password_hash if known and user is not None else _dummy_hash(), password)
    if not known or not ok or user is None:
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


def stamp_at_once(session: Session, stmt: Update) -> bool:
    """Run a bookkeeping stamp (a token's ``last_used``, a session's ``last_seen``) in the caller's
    transaction only if the lock it needs is free right now; otherwise skip it (False). A read must
    never wait for a write lock held elsewhere just to record when it was made: the next request
    stamps it. The lock wait is switched off for this one statement (SQLite's ``busy_timeout``;
    PostgreSQL's ``lock_timeout`` cut to a millisecond, as 0 would mean no limit there), and a
    savepoint keeps a refused stamp from spoiling the caller's transaction."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    conn = session.connection()
    previous = conn.exec_driver_sql("PRAGMA busy_timeout" if sqlite else "SHOW lock_timeout").scalar()
    try:
        if sqlite:
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
        with session.begin_nested():
            if not sqlite:
                conn.exec_driver_sql("SET LOCAL lock_timeout = '1ms'")
            session.execute(stmt)
        return True
    except OperationalError:
        return False  # locked elsewhere (or a stale read snapshot): worth recording, not worth waiting for
    finally:
        if sqlite:
            conn.exec_driver_sql(f"PRAGMA busy_timeout={int(previous or 0)}")
        else:
            conn.execute(text("SELECT set_config('lock_timeout', :v, true)"), {"v": str(previous)})


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
    # Record use at most once a minute (a token can drive thousands of requests a minute), and only
    # when that costs no wait: the caller's commit then never waits for a write lock held elsewhere.
    if tok.last_used is None or (now - tok.last_used).total_seconds() > 60:
        stamp_at_once(session, update(ApiToken).where(col(ApiToken.id) == tok.id).values(last_used=now))
    return Principal(user_id=user.id or 0, username=user.username, role=user.role, via="token")


@dataclass(frozen=True)
class SignIn:
    """What a sign-in attempt came to: the user, or refused; ``retry_after`` > 0 when it was
    refused by the lock-out without its password being checked."""

    user: User | None
    retry_after: float = 0.0


def sign_in(engine: Engine, username: str, password: str, address: str = "",
            policy: throttle.Policy | None = None) -> SignIn:
    """Check a password under the login throttle and stamp the user's last login. The check only
    reads (argon2 is slow by design, so callers run this in a worker thread); counting the attempt
    and the stamp are their own short writes."""
    policy = policy or throttle.Policy()
    wait = throttle.reserve(engine, policy, username, address)
    if wait > 0:
        throttle.failed(engine, policy, username, address, "locked", wait)
        return SignIn(None, wait)
    with Session(engine, expire_on_commit=False) as session:
        user = authenticate(session, username, password)
    if user is None:
        throttle.failed(engine, policy, username, address, "bad_credentials")
        return SignIn(None)
    with write_session(engine) as session:
        session.execute(update(User).where(col(User.id) == user.id).values(last_login=user.last_login))
        throttle.succeeded(session, policy, username, address)
    return SignIn(user)


def user_exists(session: Session, username: str) -> bool:
    return session.exec(select(User.id).where(User.username == username)).first() is not None


def get_user(session: Session, username: str) -> User:
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFound(f"no user named {username!r}", field="username")
    return user
