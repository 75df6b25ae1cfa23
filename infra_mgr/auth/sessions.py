"""Dashboard sessions kept on the server, and the CSRF token bound to each.

The browser's cookie (signed by Starlette's session middleware, HttpOnly, SameSite=Lax) carries
only a random session id; the server keeps its SHA-256 digest with the user, times and a revoked
mark, and looks it up on every request. So logging out, a password reset or disabling a user ends
the session at once, and a stolen copy of the database holds nothing a browser could replay.

The CSRF token is an HMAC of the session id under a key derived from the server's master secret:
the cookie's readable content (the id) is not enough to forge it, and nothing extra is stored.
Before sign-in the cookie holds a random nonce instead, so the login form is bound to the browser
that loaded it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from sqlalchemy import Engine, delete, or_, update
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, select

from infra_mgr.auth.models import AuthSession, User
from infra_mgr.auth.service import Principal, stamp_at_once
from infra_mgr.common import utcnow
from infra_mgr.db import write_session

SID = "sid"  # the signed cookie's only entry once signed in: the session's random id
PRE = "pre"  # before sign-in: a nonce the login form's CSRF token is bound to
LAST_SEEN_EVERY_S = 60  # a session drives many requests a minute; stamping each would be a write per page
KEEP_ENDED_S = 7 * 24 * 3600  # ended sessions stay this long (who was signed in when), then go


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _mac(master: bytes, purpose: str, value: str) -> str:
    key = hmac.new(master, b"infra-mgr csrf v1", hashlib.sha256).digest()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _cookie(request: Request) -> dict[str, Any]:
    return request.session if "session" in request.scope else {}


def _raw_sid(request: Request) -> str:
    raw = _cookie(request).get(SID)
    return raw if isinstance(raw, str) and 0 < len(raw) <= 128 else ""


def client_address(request: Request) -> str:
    return (request.client.host if request.client else "")[:64]


def start(request: Request, user_id: int) -> str:
    """Open a new session for ``user_id`` (always a new id: a session fixed before sign-in is
    never promoted) and return its CSRF token. Blocking: call it from a worker thread."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    max_age = int(getattr(request.app.state.settings, "session_max_age_s", 12 * 3600))
    with write_session(request.app.state.engine) as session:
        session.execute(delete(AuthSession).where(
            col(AuthSession.user_id) == user_id,
            or_(col(AuthSession.expires_at) < now - dt.timedelta(seconds=KEEP_ENDED_S),
                col(AuthSession.revoked_at) < now - dt.timedelta(seconds=KEEP_ENDED_S))))
        session.add(AuthSession(digest=_digest(raw), user_id=user_id, client=client_address(request),
                                created_at=now, last_seen=now, expires_at=now + dt.timedelta(seconds=max_age)))
    cookie = _cookie(request)
    cookie.clear()
    cookie[SID] = raw
    return csrf_token(request)


def principal_from_sid(session: Session, raw: str) -> Principal | None:
    """The user behind a session id, if the session is live (not revoked, not expired, user active).
    Stamps ``last_seen`` at most once a minute, committing only that stamp, and only when the lock
    it needs is free at once: a page view never waits for a write held elsewhere."""
    if not raw:
        return None
    row = session.exec(
        select(AuthSession, User).join(User, col(User.id) == col(AuthSession.user_id))
        .where(col(AuthSession.digest) == _digest(raw))
    ).first()
    if row is None:
        return None
    live, user = row
    now = utcnow()
    if live.revoked_at is not None or live.expires_at <= now or not user.is_active:
        return None
    if (now - live.last_seen).total_seconds() > LAST_SEEN_EVERY_S:
        stamp_at_once(session, update(AuthSession).where(col(AuthSession.id) == live.id).values(last_seen=now))
        try:
            session.commit()  # worth recording, not worth failing a request for
        except OperationalError:
            session.rollback()
    return Principal(user_id=user.id or 0, username=user.username, role=user.role, via="session")


def principal(request: Request, session: Session) -> Principal | None:
    """The signed-in user of this request's cookie, checked against the server's record."""
    return principal_from_sid(session, _raw_sid(request))


def has_session(request: Request) -> bool:
    return bool(_raw_sid(request))


def forget(request: Request) -> None:
    """Drop a dead session id from the cookie (the server's record is already ended or gone)."""
    _cookie(request).pop(SID, None)


def csrf_token(request: Request, *, create: bool = False) -> str:
    """This browser's CSRF token: bound to its session, or before sign-in to a nonce (made when
    ``create``, for the login form). Empty when there is neither."""
    cookie = _cookie(request)
    master: bytes = request.app.state.master_key
    raw = _raw_sid(request)
    if raw:
        return _mac(master, "session", raw)
    if "session" not in request.scope:
        return ""
    pre = cookie.get(PRE)
    if not isinstance(pre, str) or not pre:
        if not create:
            return ""
        pre = secrets.token_urlsafe(18)
        cookie[PRE] = pre
    return _mac(master, "login", pre)


def check_csrf(request: Request, sent: Any) -> bool:
    expected = csrf_token(request)
    # Compare bytes: compare_digest raises TypeError on non-ASCII str, and a form can carry anything.
    return (bool(expected) and isinstance(sent, str)
            and secrets.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")))


def end(request: Request) -> None:
    """Log out: the server's record is revoked (a saved copy of the cookie is dead) and the cookie
    emptied. Blocking: call it from a worker thread."""
    raw = _raw_sid(request)
    _cookie(request).clear()
    if raw:
        end_sid(request.app.state.engine, raw)


def end_sid(engine: Engine, raw: str) -> None:
    with write_session(engine) as session:
        session.execute(update(AuthSession).where(col(AuthSession.digest) == _digest(raw),
                                                  col(AuthSession.revoked_at).is_(None)).values(revoked_at=utcnow()))

