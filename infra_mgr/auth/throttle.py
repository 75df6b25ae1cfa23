"""Login throttling: failed sign-ins counted per username and per client address, with a lock-out
that doubles with each further failure.

An attempt is counted *before* its password is checked (in one write transaction with the lock
check), so a burst of parallel guesses cannot all slip in under the limit while the slow hash
runs; a success then takes its own count back. While a key is locked every attempt is refused,
the right password included, so guessing gains nothing from ignoring the answer. Unknown
usernames are counted like known ones: the lock-out says nothing about who exists.

Every refusal is an ``auth.login_failed`` event (username, address and reason, never the
password), so a guessing campaign shows in the event log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, delete, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from infra_mgr.auth.models import LoginThrottle
from infra_mgr.common import utcnow
from infra_mgr.db import write_session
from infra_mgr.events.models import Severity
from infra_mgr.events.service import record

EVENT_FAILED = "auth.login_failed"


@dataclass(frozen=True)
class Policy:
    """How many failures a key may have before it is locked, and for how long."""

    max_failures: int = 5
    max_failures_per_address: int = 20
    backoff_s: float = 30.0
    backoff_max_s: float = 900.0
    window_s: float = 900.0  # a key unlocked and quiet this long starts again from zero

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        default = cls()
        return cls(**{name: getattr(settings, f"login_{name}", getattr(default, name)) for name in (
            "max_failures", "max_failures_per_address", "backoff_s", "backoff_max_s")},
            window_s=getattr(settings, "login_failure_window_s", default.window_s))

    def backoff(self, failures: int, limit: int) -> float:
        """Lock-out after the ``failures``-th failure: the base at the limit, doubling after it."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** min(failures - limit, 32)))


def _keys(policy: Policy, username: str, address: str) -> list[tuple[str, int]]:
    keys = [(f"user:{username.strip().lower()}"[:200], policy.max_failures)]
    if address:
        keys.append((f"addr:{address}"[:200], policy.max_failures_per_address))
    return keys


def reserve(engine: Engine, policy: Policy, username: str, address: str) -> float:
    """Count one attempt for the username and the address. Returns 0 when the attempt may check
    its password, else the seconds until the lock-out ends (nothing is counted then)."""
    keys = _keys(policy, username, address)
    for _ in range(3):  # two first attempts on PostgreSQL may both insert the same new key
        try:
            with write_session(engine) as session:
                return _reserve(session, policy, keys)
        except IntegrityError:
            continue
    raise RuntimeError("login throttle: could not record the attempt")


def _reserve(session: Session, policy: Policy, keys: list[tuple[str, int]]) -> float:
    names = [k for k, _ in keys]
    now = utcnow()
    # Forget keys long quiet and unlocked, so guesses at random usernames cannot grow the table forever.
    stale = now - dt.timedelta(seconds=policy.window_s + policy.backoff_max_s)
    session.execute(delete(LoginThrottle).where(
        col(LoginThrottle.last_attempt) < stale,
        or_(col(LoginThrottle.locked_until).is_(None), col(LoginThrottle.locked_until) < stale)))
    rows = {r.key: r for r in session.exec(
        select(LoginThrottle).where(col(LoginThrottle.key).in_(names)).with_for_update()).all()}
    wait = max([(r.locked_until - now).total_seconds() for r in rows.values()
                if r.locked_until is not None and r.locked_until > now], default=0.0)
    if wait > 0:
        return wait
    for key, limit in keys:
        row = rows.get(key) or LoginThrottle(key=key, failures=0, last_attempt=now)
        quiet_since = max(row.last_attempt, row.locked_until or row.last_attempt)
        if (now - quiet_since).total_seconds() > policy.window_s:
            row.failures = 0
        row.failures += 1
        row.last_attempt = now
        row.locked_until = (now + dt.timedelta(seconds=policy.backoff(row.failures, limit))
                            if row.failures >= limit else None)
        session.add(row)
    session.flush()
    return 0.0


def succeeded(session: Session, policy: Policy, username: str, address: str) -> None:
    """The password was right: the username starts afresh; the address gets this attempt back
    (only back: a user signing in must not wipe the count of guesses made from the same place)."""
    for key, limit in _keys(policy, username, address):
        row = session.exec(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).first()
        if row is None:
            continue
        if key.startswith("user:"):
            session.delete(row)
            continue
        row.failures = max(0, row.failures - 1)
        if row.failures < limit:
            row.locked_until = None
        session.add(row)


def failed(engine: Engine, policy: Policy, username: str, address: str, reason: str,
           retry_after: float = 0.0) -> None:
    """Record a refused sign-in in the event log. After a wrong password, a key at its limit is
    locked from now: the lock set when the attempt was counted ran while the hash was checked,
    and the back-off is meant to follow the failure, not its start."""
    data: dict[str, Any] = {"username": username[:64], "address": address, "reason": reason}
    if retry_after:
        data["retry_after_s"] = round(retry_after, 1)
    with write_session(engine) as session:
        if not retry_after:
            now = utcnow()
            for key, limit in _keys(policy, username, address):
                row = session.exec(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).first()
                if row is not None and row.failures >= limit:
                    row.locked_until = now + dt.timedelta(seconds=policy.backoff(row.failures, limit))
                    session.add(row)
        record(session, EVENT_FAILED, f"sign-in refused for {username[:64]!r} from {address or '?'} ({reason})",
               severity=Severity.warning, data=data)
