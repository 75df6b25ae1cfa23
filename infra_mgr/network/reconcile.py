"""Discovery's reconcile: database only. In one transaction it folds a crawl into the source of
truth: one device per identity (chassis id, serial or sysName, whatever addresses it answered on),
placed in a site by prefix or else by sysLocation; interfaces, neighbours and links with first and
last seen; and an event for each change worth telling (device new / missing / returned, serial
changed, interface up / down, neighbour changed, link new). A crash inside leaves the database as
it was.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.db import write_session
from infra_mgr.events.service import record
from infra_mgr.inventory.history import insert_tracked
from infra_mgr.inventory.models import Device, DeviceStatus, Interface, Link, Prefix, Site
from infra_mgr.network.crawl import Answer, CrawlResult, NoAnswer
from infra_mgr.network.models import DevicePoll, FailureReason, Neighbor, PollStatus
from infra_mgr.network.snmp.facts import ProbeResult
from infra_mgr.snmp.target import PollProblem

ProbeFn = Callable[..., Awaitable[ProbeResult]]  # (target[, on_neighbors=…]) -> result
AliveFn = Callable[[str, int, float], Awaitable[bool]]
Progress = Callable[[str, int, int], None]  # (address, done, total)

_HOSTNAME_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")
# Problems that make an answer unusable (walks that loop, cannot be decoded or stop short), as
# opposed to a table the device simply does not have (no_such_object, end_of_mib, no_bulk).
GARBAGE_KINDS = frozenset({"loop", "decode", "truncated", "bad_type"})
# The event each poll state is announced with when a device enters it, and its severity.
STATE_EVENTS: dict[str, tuple[str, str]] = {
    PollStatus.timeout.value: ("device.unreachable", "critical"),
    PollStatus.auth.value: ("device.auth_failed", "critical"),
    PollStatus.error.value: ("device.poll_error", "warning"),
}
_FAILURE_OF = {PollStatus.timeout.value: FailureReason.unreachable, PollStatus.auth.value: FailureReason.auth,
               PollStatus.error.value: FailureReason.garbage}



# --------------------------------------------------------------------------- reconcile (database only)


@dataclass
class Unanswered:
    address: str
    name: str | None
    reason: str


@dataclass
class Failure:
    """A device this run could not read (what the run record lists)."""

    address: str
    hostname: str | None
    device_id: int | None
    reason: str  # FailureReason
    detail: str


@dataclass
class DiscoveryReport:
    found: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unanswered: list[Unanswered] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)
    outside_allow: list[str] = field(default_factory=list)
    links_total: int = 0
    links_new: int = 0
    events: int = 0
    problems: list[PollProblem] = field(default_factory=list)
    seconds: float = 0.0
    crawl_seconds: float = 0.0
    run_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "found": len(self.found), "new": self.new, "changed": self.changed,
            "missing": self.missing, "failures": [f.__dict__ for f in self.failures],
            "unreachable": [u.__dict__ for u in self.unanswered if u.reason == "unreachable"],
            "wrong_credentials": [u.__dict__ for u in self.unanswered if u.reason == "wrong_credentials"],
            "unplaced": self.unplaced, "outside_allow_list": self.outside_allow,
            "links": self.links_total, "links_new": self.links_new, "events": self.events,
            "problems": [p.__dict__ for p in self.problems], "seconds": round(self.seconds, 2),
            "crawl_seconds": round(self.crawl_seconds, 2),
        }


def _hostname(name: str | None, address: str) -> str:
    base = _HOSTNAME_BAD.sub("-", (name or "").strip()).strip("-.")
    return base[:253] or "dev-" + address.replace(":", "-").replace(".", "-")


def _short(name: str) -> str:
    return name.split(".")[0].lower()


class _Placer:
    """Site of a device: most specific prefix holding its address, else a site named in sysLocation."""

    def __init__(self, session: Session) -> None:
        self.sites = list(session.exec(select(Site)).all())
        self.nets: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int]] = []
        for p in session.exec(select(Prefix).where(col(Prefix.site_id).is_not(None))).all():
            self.nets.append((ipaddress.ip_network(p.prefix), p.site_id or 0))
        self.nets.sort(key=lambda t: t[0].prefixlen, reverse=True)

    def place(self, addresses: Iterable[str], location: str | None) -> int | None:
        for address in addresses:
            ip = ipaddress.ip_address(address)
            for net, site_id in self.nets:
                if ip.version == net.version and ip in net:
                    return site_id
        if location:
            loc = location.casefold()
            best: tuple[int, int] | None = None
            for s in self.sites:
                for text in (s.name_ar, s.name_en, s.code):
                    if text and text.casefold() in loc and (best is None or len(text) > best[0]):
                        best = (len(text), s.id or 0)
            if best:
                return best[1]
        return None


def _identity_groups(answers: list[Answer]) -> list[list[Answer]]:
    """Answers that are the same box (shared chassis id, serial or sysName) grouped together."""
    parent = list(range(len(answers)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, a in enumerate(answers):
        f = a.result.facts
        for key in (("chassis", (f.chassis_id or "").lower()), ("serial", (f.serial or "").strip()),
                    ("name", _short(f.sys_name or ""))):
            if not key[1]:
                continue
            if key in owner:
                parent[find(i)] = find(owner[key])
            else:
                owner[key] = i
    groups: dict[int, list[Answer]] = {}
    for i, a in enumerate(answers):
        groups.setdefault(find(i), []).append(a)
    return list(groups.values())


def _remote_interface(candidates: list[Interface], port: str) -> Interface | None:
    """The interface a neighbour's port id names: by name, else by ifIndex (LLDP port id subtype
    "local" on Junos and ArubaOS), else by description, alias or MAC (port id subtype MAC)."""
    port = port.strip().lower()
    if not port:
        return None
    for test in (lambda i: i.name.lower() == port,
                 lambda i: port.isdigit() and i.if_index == int(port),
                 lambda i: port in ((i.description or "").lower(), (i.alias or "").lower(), i.mac or "")):
        match = next((i for i in candidates if test(i)), None)
        if match is not None:
            return match
    return None


class _DeviceIndex:
    """The inventory's devices by LLDP chassis id, management address, serial and hostname, loaded
    once per reconcile and kept up to date as devices are added or changed (a lookup per device
    against the database cost more than the rest of its reconcile)."""

    def __init__(self, session: Session) -> None:
        self.by_chassis: dict[str, Device] = {}
        self.by_address: dict[str, Device] = {}
        self.by_serial: dict[str, Device] = {}
        self.by_hostname: dict[str, Device] = {}
        devices = {d.id: d for d in session.exec(select(Device).order_by(col(Device.id).desc())).all()}
        for dev in devices.values():  # highest id first: the lowest id wins a shared key, as before
            self.add(dev)
        for poll in session.exec(select(DevicePoll).order_by(col(DevicePoll.device_id).desc())).all():
            if poll.chassis_id and poll.device_id in devices:
                self.by_chassis[poll.chassis_id] = devices[poll.device_id]

    def add(self, dev: Device, chassis: str = "") -> None:
        if chassis:
            self.by_chassis[chassis] = dev
        if dev.management_address:
            self.by_address[dev.management_address] = dev
        if dev.serial:
            self.by_serial[dev.serial] = dev
        self.by_hostname[dev.hostname] = dev

    def find(self, group: list[Answer]) -> Device | None:
        f = group[0].result.facts
        addresses = [a.address for a in group]
        if f.chassis_id and f.chassis_id.lower() in self.by_chassis:
            return self.by_chassis[f.chassis_id.lower()]
        found = [self.by_address.get(a) for a in addresses]
        if f.serial:
            found.append(self.by_serial.get(f.serial))
        if f.sys_name:
            found.append(self.by_hostname.get(_hostname(f.sys_name, addresses[0])))
        return min((d for d in found if d is not None), key=lambda d: d.id or 0, default=None)


class _DeviceFacts(TypedDict):
    """The probed facts copied onto a device as they are (typed so they can be passed as keywords)."""

    vendor: str
    platform: str
    model: str
    os_version: str


class Reconciler:
    def __init__(self, session: Session, report: DiscoveryReport, default_site_id: int | None) -> None:
        self.s = session
        self.r = report
        self.default_site_id = default_site_id
        self.now = utcnow()
        self.placer = _Placer(session)
        self.index = _DeviceIndex(session)

    def event(self, kind: str, message: str, severity: str = "info", device: Device | None = None,
              data: dict[str, Any] | None = None, change: bool = True) -> None:
        """Record an event; ``change``: it tells of a change to a known device's facts (the run
        counts that device as changed), not of its reachability."""
        record(self.s, kind, message, severity=severity, device_id=device.id if device else None,
               site_id=device.site_id if device else None, data=data)
        self.r.events += 1
        if change and device is not None and device.hostname not in self.r.new \
                and device.hostname not in self.r.changed:
            self.r.changed.append(device.hostname)

    def reachability(self, dev: Device, poll: DevicePoll, status: str, detail: str, announce: bool = True) -> None:
        """Set a device's poll state. Entering a failing state (unreachable, no working credential,
        unusable answers) and coming back from one are events; staying in a state is not, so a
        device that is down says so once, with the time it went down (``since``). A failure is
        also listed on the run."""
        before = poll.status
        poll.status = status
        poll.message = detail[:500]
        poll.last_polled = self.now
        if status == PollStatus.ok.value:
            poll.last_ok = self.now
        if before != status or poll.since is None:
            poll.since = self.now
        if status in _FAILURE_OF:
            self.r.failures.append(Failure(poll.address or dev.management_address or "", dev.hostname, dev.id,
                                           _FAILURE_OF[status].value, poll.message))
        if not announce or before == status:
            return
        data = {"address": poll.address, "before": before, "after": status, "reason": poll.message}
        if status in STATE_EVENTS:
            kind, severity = STATE_EVENTS[status]
            self.event(kind, f"{dev.hostname}: {poll.message}", severity, dev, data, change=False)
        elif status == PollStatus.ok.value and before in STATE_EVENTS:
            self.event("device.recovered", f"{dev.hostname} answers again ({poll.address})", "info", dev, data,
                       change=False)

    def device(self, group: list[Answer]) -> Device | None:
        best = group[0]
        f = best.result.facts
        addresses = [a.address for a in group]
        dev = self.index.find(group)
        site_id = self.placer.place(addresses, f.location) or (dev.site_id if dev else None) or self.default_site_id
        if site_id is None:  # no prefix, no location (a CLI read has none): beside the neighbour that reported it
            site_id = self.s.exec(select(Device.site_id).join(Neighbor, col(Neighbor.device_id) == col(Device.id))
                                  .where(col(Neighbor.remote_address).in_(addresses))).first()
        hostname = _hostname(f.sys_name, best.address)
        if site_id is None:
            self.r.unplaced.append(hostname)
            return None
        values: _DeviceFacts = {"vendor": f.vendor or "", "platform": f.platform or "", "model": f.model or "",
                                "os_version": f.os_version or ""}
        returned = False
        if dev is None:
            if hostname in self.index.by_hostname:
                hostname = f"{hostname}-{best.address}"
            dev = Device(site_id=site_id, hostname=hostname, management_address=best.address,
                         serial=f.serial or "", status=DeviceStatus.active.value, first_seen=self.now,
                         last_seen=self.now, **values)
            if best.address in self.index.by_address:
                dev.management_address = None
            self.s.add(dev)
            self.s.flush()
            self.r.new.append(dev.hostname)
            self.event("device.new", f"new device {dev.hostname} at {best.address}", device=dev,
                       data={"address": best.address, "vendor": dev.vendor, "platform": dev.platform})
        else:
            if f.serial and dev.serial and f.serial != dev.serial:
                self.event("device.serial_changed", f"{dev.hostname}: serial {dev.serial} → {f.serial}",
                           "warning", dev, {"before": dev.serial, "after": f.serial})
            returned = dev.status == DeviceStatus.missing.value
            if returned:
                self.event("device.returned", f"{dev.hostname} answers again", device=dev, change=False)
            for key, value in values.items():
                if value and getattr(dev, key) != value:
                    setattr(dev, key, value)
            if f.serial:
                dev.serial = f.serial
            if dev.management_address is None:
                dev.management_address = best.address
            if dev.site_id != site_id and self.placer.place(addresses, f.location) is not None:
                dev.site_id = site_id
            dev.status = DeviceStatus.active.value
            dev.first_seen = dev.first_seen or self.now
            dev.last_seen = self.now
        poll = self.s.get(DevicePoll, dev.id) or DevicePoll(device_id=dev.id or 0)
        poll.address = best.address
        poll.credential_id = best.credential_id
        poll.protocol = best.protocol  # the next discovery asks the same way first
        poll.sys_object_id = f.sys_object_id or ""
        poll.chassis_id = (f.chassis_id or "").lower()
        poll.location = (f.location or "")[:255]
        poll.uptime_s = f.uptime_s
        message = "; ".join(f"{p.operation}: {p.message}" for p in best.result.errors)
        garbage = any(p.kind in GARBAGE_KINDS for p in best.result.errors)
        self.reachability(dev, poll, PollStatus.error.value if garbage else PollStatus.ok.value, message,
                          announce=not returned)
        self.s.add(poll)
        if best.protocol == "ssh" and best.host_key is not None:  # trust on first use, as the backup does
            from infra_mgr.network.ssh.hostkeys import record_seen

            record_seen(self.s, best.address, best.port or 22, best.host_key, dev.id)
        self.index.add(dev, poll.chassis_id)
        self.r.found.append(dev.hostname)
        self.r.problems.extend(best.result.errors)
        existed = dev.hostname not in self.r.new
        if_ids = self.interfaces(dev, best.result, existed)
        self.neighbors(dev, best.result, existed, if_ids)
        return dev

    def interfaces(self, dev: Device, result: ProbeResult, existed: bool) -> dict[str, int]:
        """Create, update and remove the device's interfaces; returns name → id."""
        current = ({i.name: i for i in self.s.exec(select(Interface).where(Interface.device_id == dev.id)).all()}
                   if existed else {})  # a device created just now has none
        seen: set[str] = set()
        new_rows: list[dict[str, Any]] = []
        for fi in result.interfaces:
            name = (fi.name or fi.descr or f"if{fi.index}")[:128]
            if name in seen:
                name = f"{name} ({fi.index})"
            seen.add(name)
            values = {"if_index": fi.index, "description": (fi.descr or "")[:255], "alias": (fi.alias or "")[:255],
                      "type": (fi.type or "")[:64], "speed_bps": fi.speed_bps, "mtu": fi.mtu, "mac": fi.mac,
                      "admin_status": fi.admin_status or "unknown", "oper_status": fi.oper_status or "unknown"}
            row = current.get(name)
            if row is None:
                new_rows.append({"device_id": dev.id or 0, "name": name, **values})
                continue
            before = row.oper_status
            for key, value in values.items():
                if getattr(row, key) != value:
                    setattr(row, key, value)
            if existed and before != row.oper_status and {before, row.oper_status} & {"up"}:
                kind = "interface.up" if row.oper_status == "up" else "interface.down"
                sev = "info" if kind == "interface.up" else ("warning" if row.admin_status == "up" else "info")
                self.event(kind, f"{dev.hostname} {name} {before} → {row.oper_status}", sev, dev,
                           {"interface": name, "if_index": fi.index, "alias": row.alias,
                            "before": before, "after": row.oper_status})
        if result.interfaces:
            for name, row in current.items():
                if name not in seen:
                    self.s.delete(row)
        self.s.flush()
        ids = insert_tracked(self.s, Interface, new_rows)  # one statement, each row in the history
        names = {name: row.id for name, row in current.items() if name in seen and row.id is not None}
        names.update((row["name"], i) for row, i in zip(new_rows, ids, strict=True))
        return names

    def neighbors(self, dev: Device, result: ProbeResult, existed: bool, if_ids: dict[str, int]) -> None:
        rows = ({(n.protocol, n.local_interface, n.remote_chassis_id, n.remote_port): n
                 for n in self.s.exec(select(Neighbor).where(Neighbor.device_id == dev.id)).all()}
                if existed else {})
        new_rows: list[dict[str, Any]] = []
        seen = set()
        for n in result.neighbors:
            key = (n.protocol, (n.local_interface or "")[:128], (n.remote_chassis_id or "").lower()[:64],
                   (n.remote_port or "")[:128])
            if key in seen:
                continue
            seen.add(key)
            values = {"interface_id": if_ids.get(key[1]), "remote_system_name": (n.remote_system_name or "")[:255],
                      "remote_address": (n.remote_address or "")[:45],
                      "remote_platform": (n.remote_platform or "")[:255], "last_seen": self.now}
            row = rows.get(key)
            if row is None:
                # not inventory (no history): plain rows, inserted together below
                new_rows.append({"device_id": dev.id or 0, "protocol": key[0], "local_interface": key[1],
                                 "remote_chassis_id": key[2], "remote_port": key[3], "first_seen": self.now,
                                 **values})
                if existed:
                    self.event("neighbor.changed", f"{dev.hostname} {key[1]}: new {n.protocol} neighbour "
                               f"{n.remote_system_name or key[2]} {key[3]}", device=dev,
                               data={"interface": key[1], "remote": n.remote_system_name, "port": key[3]})
                continue
            for field_name, value in values.items():
                setattr(row, field_name, value)
        for old_key, row in rows.items():
            if old_key not in seen:
                self.event("neighbor.changed", f"{dev.hostname} {old_key[1]}: {row.protocol} neighbour "
                           f"{row.remote_system_name or old_key[2]} gone", "warning", dev,
                           {"interface": old_key[1], "remote": row.remote_system_name, "port": old_key[3],
                            "gone": True})
                self.s.delete(row)
        self.s.flush()
        if new_rows:
            self.s.connection().execute(insert(Neighbor.__table__), new_rows)  # type: ignore[attr-defined]  # SQLModel does not declare __table__

    def links(self, device_ids: set[int]) -> None:
        """Turn neighbour rows into inventory links between known interfaces of known devices."""
        polls = {p.chassis_id: p.device_id for p in self.s.exec(select(DevicePoll)).all() if p.chassis_id}
        devices = self.s.exec(select(Device)).all()
        by_name = {_short(d.hostname): d.id for d in devices}
        by_addr = {d.management_address: d.id for d in devices if d.management_address}
        ifaces: dict[int, list[Interface]] = {}
        for i in self.s.exec(select(Interface).where(col(Interface.device_id).in_(list(device_ids)))).all():
            ifaces.setdefault(i.device_id, []).append(i)
        remote_cache: dict[int, list[Interface]] = {}
        existing = {(lk.a_interface_id, lk.b_interface_id): lk for lk in self.s.exec(select(Link)).all()}
        for n in self.s.exec(select(Neighbor).where(col(Neighbor.device_id).in_(list(device_ids)))).all():
            rid = polls.get(n.remote_chassis_id) or by_name.get(_short(n.remote_system_name)) \
                or by_addr.get(n.remote_address)
            n.remote_device_id = rid
            if rid is None or n.interface_id is None:
                continue
            if rid not in remote_cache:
                remote_cache[rid] = ifaces.get(rid) or list(
                    self.s.exec(select(Interface).where(Interface.device_id == rid)).all())
            match = _remote_interface(remote_cache[rid], n.remote_port)
            if match is None or match.id == n.interface_id:
                continue
            a, b = sorted((n.interface_id, match.id or 0))
            link = existing.get((a, b))
            if link is None:
                link = Link(a_interface_id=a, b_interface_id=b, source=n.protocol, first_seen=self.now,
                            last_seen=self.now)
                self.s.add(link)
                existing[(a, b)] = link
                self.r.links_new += 1
            else:
                link.last_seen = self.now
        self.s.flush()
        self.r.links_total = len({k for k, lk in existing.items() if lk.last_seen == self.now})

    def unanswered(self, found_ids: set[int], scope_site_ids: set[int] | None, unanswered: list[NoAnswer]) -> None:
        """Every address that gave no usable answer is a device that is down: a known one takes the
        state (unreachable, or no working credential), and one never read before — named by its
        neighbours' LLDP/CDP — becomes a device too, placed by prefix, else by the site its name
        carries, else beside the neighbour that reported it, so that it shows on the map and the
        site instead of only in this run's report. One that cannot be placed stays in the report."""
        polls = {p.address: p for p in self.s.exec(select(DevicePoll)).all() if p.address}
        for na in unanswered:
            status = (PollStatus.auth if na.reason in ("wrong_credentials", "hostkey_changed")
                      else PollStatus.timeout).value
            detail = (f"{na.address} answers, but no stored SNMP credential opens it" if status == PollStatus.auth.value
                      else f"no answer from {na.address} to any SNMP credential")
            if na.reason == "hostkey_changed":
                detail = f"the SSH host key of {na.address} changed: refused until the new key is accepted"
            poll = polls.get(na.address)
            dev = self.s.get(Device, poll.device_id) if poll else self.index.by_address.get(na.address)
            if dev is not None and (dev.id in found_ids or (scope_site_ids is not None
                                                             and dev.site_id not in scope_site_ids)):
                continue
            if dev is None:
                dev = self._unread_device(na)
                if dev is None:
                    self.r.failures.append(Failure(na.address, na.name_hint, None, _FAILURE_OF[status].value, detail))
                    continue
            if poll is None:
                poll = self.s.get(DevicePoll, dev.id) or DevicePoll(device_id=dev.id or 0, address=na.address)
            self.reachability(dev, poll, status, detail)
            self.s.add(poll)
            if na.reason == "hostkey_changed" and na.host_key is not None:
                from infra_mgr.network.ssh.hostkeys import record_offered

                record_offered(self.s, na.address, na.port or 22, na.host_key, device_id=dev.id,
                               site_id=dev.site_id, hostname=dev.hostname)
            found_ids.add(dev.id or 0)  # read or not, it was asked: not "missing"

    def _unread_device(self, na: NoAnswer) -> Device | None:
        """A device known only by its address and the name its neighbours gave it."""
        site_id = self.placer.place([na.address], na.name_hint)
        if site_id is None:
            reporter = self.s.exec(select(Device.site_id).join(Neighbor, col(Neighbor.device_id) == col(Device.id))
                                   .where(col(Neighbor.remote_address) == na.address)).first()
            site_id = reporter or self.default_site_id
        if site_id is None:
            return None
        hostname = _hostname(na.name_hint, na.address)
        if hostname in self.index.by_hostname:
            hostname = f"{hostname}-{na.address}"
        dev = Device(site_id=site_id, hostname=hostname, management_address=na.address,
                     status=DeviceStatus.active.value, first_seen=self.now)
        self.s.add(dev)
        self.s.flush()
        self.index.add(dev)
        return dev

    def missing(self, found_ids: set[int], scope_site_ids: set[int] | None) -> None:
        """Known devices of the scope that this run neither read nor heard of (the ones that were
        asked and did not answer are handled by :meth:`unanswered`)."""
        stmt = select(Device, DevicePoll).join(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
        for dev, poll in self.s.exec(stmt).all():
            if dev.id in found_ids or (scope_site_ids is not None and dev.site_id not in scope_site_ids):
                continue
            self.reachability(dev, poll, PollStatus.timeout.value, "not found by this discovery", announce=False)
            self.s.add(poll)
            if dev.status != DeviceStatus.missing.value:
                dev.status = DeviceStatus.missing.value
                self.s.add(dev)
                self.r.missing.append(dev.hostname)
                self.event("device.missing", f"{dev.hostname} did not answer discovery", "warning", dev,
                           {"address": poll.address}, change=False)


def reconcile(engine: Engine, crawl: CrawlResult, *, default_site_id: int | None = None,
              scope_site_ids: set[int] | None = None, actor: str = "discovery", mark_missing: bool = True
              ) -> DiscoveryReport:
    """Fold a crawl into the source of truth in one transaction. ``mark_missing``: devices of the
    scope (one site, or every site when ``scope_site_ids`` is None) that were not found are missing;
    a run from ad-hoc seeds marks nothing missing."""
    report = DiscoveryReport()
    with write_session(engine) as session:
        session.info["actor"] = actor
        rec = Reconciler(session, report, default_site_id)
        found_ids: set[int] = set()
        # Flushes are explicit (a device, then its interfaces and neighbours): autoflush before
        # every lookup would flush each pending object on its own.
        with session.no_autoflush:
            for group in _identity_groups(crawl.answers):
                dev = rec.device(group)
                if dev is not None and dev.id is not None:
                    found_ids.add(dev.id)
        session.flush()
        rec.links(found_ids)
        rec.unanswered(found_ids, scope_site_ids, crawl.no_answer)
        if mark_missing:
            rec.missing(found_ids, scope_site_ids)
        known = {d.management_address: d.hostname for d in session.exec(select(Device)).all()
                 if d.management_address}
        for na in crawl.no_answer:
            report.unanswered.append(Unanswered(na.address, known.get(na.address) or na.name_hint, na.reason))
        report.outside_allow = sorted(crawl.outside_allow)
        session.commit()
    return report


