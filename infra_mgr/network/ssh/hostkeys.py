"""SSH host keys (service): trust on first use, refuse a changed key, let an engineer accept it.

The first key an endpoint (address, port) presents is recorded. A later, different key is never
used: the collector refuses the session and the key it saw is kept as ``offered_*`` with a
critical event, because a changed key is either a replaced device or someone in the middle, and
only a person can tell which. :func:`accept` promotes the offered key (recorded in the audit
trail with who did it); :func:`forget` drops the record, so the next contact is a first use again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, select

from infra_mgr.common import utcnow
from infra_mgr.errors import Conflict, NotFound
from infra_mgr.events.models import Severity
from infra_mgr.events.service import record
from infra_mgr.inventory.models import Device, ObjectChange
from infra_mgr.network.ssh.facts import HostKey
from infra_mgr.network.ssh.models import SshHostKey
from infra_mgr.network.ssh.views import HostKeyRow

KeyRef = int | tuple[str, int]


def known_key(session: Session, address: str, port: int) -> HostKey | None:
    """The recorded key of an endpoint, as the collector's ``known_key``; None on first contact."""
    row = session.exec(select(SshHostKey).where(SshHostKey.address == address, SshHostKey.port == port)).first()
    return HostKey(row.key_type, row.key_b64) if row is not None else None


def known_keys(session: Session) -> dict[tuple[str, int], HostKey]:
    """Every recorded key by endpoint (one query for a whole run)."""
    return {(r.address, r.port): HostKey(r.key_type, r.key_b64) for r in session.exec(select(SshHostKey)).all()}


def record_seen(session: Session, address: str, port: int, key: HostKey, device_id: int | None) -> bool:
    """A session succeeded with ``key``: record it on first contact, else note when it was seen.
    Returns True when the key was recorded now (first use)."""
    row = session.exec(select(SshHostKey).where(SshHostKey.address == address, SshHostKey.port == port)).first()
    now = utcnow()
    if row is None:
        session.add(SshHostKey(address=address, port=port, device_id=device_id, key_type=key.key_type,
                               key_b64=key.key_b64, fingerprint=key.fingerprint, first_seen=now, last_seen=now))
        return True
    if row.fingerprint == key.fingerprint:
        row.last_seen = now
        if device_id is not None and row.device_id != device_id:
            row.device_id = device_id
        session.add(row)
    return False


def record_offered(session: Session, address: str, port: int, key: HostKey, *, device_id: int | None,
                   site_id: int | None, hostname: str) -> bool:
    """The endpoint presented ``key`` instead of the recorded one and was refused. Keeps it as the
    offered key; a critical ``ssh.hostkey_changed`` event when this key was not offered before
    (one event per new key, not one per run). Returns whether the event was written."""
    row = session.exec(select(SshHostKey).where(SshHostKey.address == address, SshHostKey.port == port)).first()
    if row is None:  # refused without a record (should not happen): keep it as a first use would
        record_seen(session, address, port, key, device_id)
        return False
    if row.offered_fingerprint == key.fingerprint:
        return False
    row.offered_key_type, row.offered_key_b64 = key.key_type, key.key_b64
    row.offered_fingerprint, row.offered_at = key.fingerprint, utcnow()
    session.add(row)
    record(session, "ssh.hostkey_changed",
           f"{hostname or address}: SSH host key changed ({row.fingerprint} → {key.fingerprint}); "
           "refused until accepted", severity=Severity.critical, site_id=site_id, device_id=device_id,
           data={"hostname": hostname, "address": address, "port": port, "recorded": row.fingerprint,
                 "offered": key.fingerprint, "key_type": key.key_type})
    return True


def _find(session: Session, ref: KeyRef) -> SshHostKey:
    if isinstance(ref, int):
        row = session.get(SshHostKey, ref)
    else:
        address, port = ref
        row = session.exec(select(SshHostKey).where(SshHostKey.address == address, SshHostKey.port == port)).first()
    if row is None:
        raise NotFound(f"no SSH host key recorded for {ref}")
    return row


def _device(session: Session, row: SshHostKey) -> Device | None:
    return session.get(Device, row.device_id) if row.device_id is not None else None


def _audit(session: Session, actor: str, action: str, row: SshHostKey, before: Mapping[str, Any] | None,
           after: Mapping[str, Any] | None) -> None:
    """Host keys are not inventory rows, so the flush hook does not trace them: write the change
    into the same history (who, when, before → after) by hand."""
    session.flush()
    session.connection().execute(insert(ObjectChange.__table__),  # type: ignore[attr-defined]  # SQLModel does not declare __table__
                                 [dict(time=utcnow(), actor=actor or "system", action=action,
                                       object_type="ssh_host_key", object_id=row.id or 0,
                                       before=dict(before) if before else None,
                                       after=dict(after) if after else None)])


def accept(session: Session, ref: KeyRef, actor: str, fingerprint: str) -> HostKeyRow:
    """Trust the key the endpoint offered (after an engineer checked it): the next backup connects.

    ``fingerprint`` is the one the engineer checked. The offered key is replaced by any newer
    refused key (:func:`record_offered`), so accepting "whatever is offered now" could trust a key
    nobody looked at; a different fingerprint is refused with the one actually waiting."""
    row = _find(session, ref)
    if not row.offered_fingerprint:
        raise Conflict(f"{row.address}:{row.port} has no refused key to accept")
    given = fingerprint.strip()
    if given != row.offered_fingerprint:
        raise Conflict(f"{row.address}:{row.port} offers {row.offered_fingerprint}, not {given or '(none)'}; "
                       "check that key and accept it by its fingerprint", field="fingerprint")
    before = {"fingerprint": row.fingerprint, "key_type": row.key_type}
    now = utcnow()
    row.key_type, row.key_b64, row.fingerprint = row.offered_key_type, row.offered_key_b64, row.offered_fingerprint
    row.offered_key_type = row.offered_key_b64 = row.offered_fingerprint = ""
    row.offered_at = None
    row.accepted_by, row.accepted_at = actor or "system", now
    row.first_seen = row.last_seen = now
    session.add(row)
    device = _device(session, row)
    who = device.hostname if device else row.address
    record(session, "ssh.hostkey_accepted", f"{who}: new SSH host key {row.fingerprint} accepted by {actor}",
           severity=Severity.info, site_id=device.site_id if device else None, device_id=row.device_id,
           data={"hostname": device.hostname if device else "", "address": row.address, "port": row.port,
                 "previous": before["fingerprint"], "fingerprint": row.fingerprint, "actor": actor})
    _audit(session, actor, "update", row, before, {"fingerprint": row.fingerprint, "key_type": row.key_type})
    return to_row(row, device.hostname if device else None)


def forget(session: Session, ref: KeyRef, actor: str) -> None:
    """Drop an endpoint's record: its next contact records whatever key it presents."""
    row = _find(session, ref)
    device = _device(session, row)
    before = {"fingerprint": row.fingerprint, "key_type": row.key_type, "address": row.address, "port": row.port}
    record(session, "ssh.hostkey_forgotten", f"{device.hostname if device else row.address}: SSH host key "
           f"{row.fingerprint} forgotten by {actor}", severity=Severity.warning,
           site_id=device.site_id if device else None, device_id=row.device_id,
           data={"hostname": device.hostname if device else "", "address": row.address, "port": row.port,
                 "fingerprint": row.fingerprint, "actor": actor})
    _audit(session, actor, "delete", row, before, None)
    session.delete(row)


def to_row(row: SshHostKey, hostname: str | None) -> HostKeyRow:
    return HostKeyRow(id=row.id or 0, device_id=row.device_id, hostname=hostname, address=row.address,
                      port=row.port, key_type=row.key_type, fingerprint=row.fingerprint,
                      first_seen=row.first_seen, last_seen=row.last_seen,
                      offered_fingerprint=row.offered_fingerprint, offered_at=row.offered_at,
                      accepted_by=row.accepted_by, accepted_at=row.accepted_at)

