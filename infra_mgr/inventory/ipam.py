"""IP address management: the atomic next-free allocation.

Two guards make concurrent allocation from one prefix collision-free on both databases:
the transaction first takes a lock (SQLite: ``BEGIN IMMEDIATE`` via ``write_session``;
PostgreSQL: ``SELECT … FOR UPDATE`` on the prefix row), then the unique constraint on
``ip_address.address`` turns any remaining race into a retry rather than a duplicate.

The whole allocation — the prefix's existence, the caller's references, the choice and the
insert — is one transaction on one pooled connection: a request that held a second connection
while waiting for this one would deadlock the pool under load.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col

from infra_mgr.db import is_sqlite, write_session
from infra_mgr.errors import Conflict, NotFound
from infra_mgr.inventory.models import AllocateRequest, IPAddress, Prefix

_RETRIES = 20
_RETRYABLE_SQLSTATES = {"40001", "40P01"}  # PostgreSQL serialization failure, deadlock detected


def first_free(network: ipaddress.IPv4Network | ipaddress.IPv6Network, used: set[str]) -> str | None:
    """Lowest usable host address of ``network`` not in ``used`` (network/broadcast excluded)."""
    for host in network.hosts():
        text = str(host)
        if text not in used:
            return text
    return None


def _allocate_once(session: Session, prefix_id: int, req: AllocateRequest,
                   check: Callable[[Session], None] | None) -> IPAddress:
    stmt = select(Prefix).where(col(Prefix.id) == prefix_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    prefix = session.execute(stmt).scalar_one_or_none()
    if prefix is None:
        raise NotFound(f"prefix {prefix_id} not found")
    if check is not None:
        check(session)
    network = ipaddress.ip_network(prefix.prefix)
    used = set(session.execute(select(col(IPAddress.address)).where(col(IPAddress.prefix_id) == prefix_id)).scalars())
    # Addresses entered without a prefix link still occupy space: check the candidate globally too.
    while True:
        candidate = first_free(network, used)
        if candidate is None:
            raise Conflict(f"prefix {prefix.prefix} has no free address", field="prefix")
        taken = session.execute(select(col(IPAddress.id)).where(col(IPAddress.address) == candidate)).first()
        if taken is None:
            break
        used.add(candidate)
    ip = IPAddress(address=candidate, prefix_id=prefix_id, prefix_length=network.prefixlen,
                   status=req.status.value, device_id=req.device_id, interface_id=req.interface_id,
                   dns_name=req.dns_name, description=req.description)
    session.add(ip)
    session.flush()
    return ip


def _retryable(engine: Engine, exc: Exception) -> bool:
    """A lost race is retried; a database that is busy or gone is not. On SQLite an
    OperationalError means the write lock stayed taken for the whole busy timeout: retrying would
    multiply that wait, so it goes to the caller (the API answers 503)."""
    if isinstance(exc, IntegrityError):
        return True
    return not is_sqlite(engine) and getattr(getattr(exc, "orig", None), "sqlstate", None) in _RETRYABLE_SQLSTATES


def allocate_next(engine: Engine, prefix_id: int, req: AllocateRequest, actor: str | None = None,
                  check: Callable[[Session], None] | None = None) -> IPAddress:
    """Allocate and commit the next free address of a prefix; safe under concurrency.

    ``check`` runs inside the allocation's transaction once the prefix is known to exist (the API
    validates the request's references there), so no second connection or transaction is needed.
    """
    delay = 0.005
    for attempt in range(_RETRIES):
        try:
            with write_session(engine) as session:
                if actor:
                    session.info["actor"] = actor
                ip = _allocate_once(session, prefix_id, req, check)
            return ip
        except (IntegrityError, OperationalError) as exc:
            if attempt == _RETRIES - 1 or not _retryable(engine, exc):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
    raise RuntimeError("unreachable")


def prefix_for_address(session: Session, address: str) -> Prefix | None:
    """The most specific stored prefix containing ``address`` (used when an IP is created by hand)."""
    ip = ipaddress.ip_address(address)
    best: Prefix | None = None
    best_len = -1
    for pfx in session.execute(select(Prefix)).scalars():
        net = ipaddress.ip_network(pfx.prefix)
        if ip.version == net.version and ip in net and net.prefixlen > best_len:
            best, best_len = pfx, net.prefixlen
    return best
