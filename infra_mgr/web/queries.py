"""Read-only queries behind the dashboard pages.

Pages only read: they show the source of truth and leave changes to the API and services. Each
function returns plain rows (dataclasses or tuples) so templates never trigger lazy loads, and
every list is bounded (a page size or a fixed ``limit``) so a city-sized estate cannot make a page
slow.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from infra_mgr.events.models import Event, Severity
from infra_mgr.inventory.models import Device, DeviceStatus, Interface, Link, Prefix, Site, SiteKind, SiteStatus
from infra_mgr.network.models import DevicePoll, Neighbor, PollStatus

PAGE_SIZE = 100
MAX_QUERY_LEN = 100


@dataclass(frozen=True)
class EventRow:
    id: int
    time: dt.datetime
    severity: str
    kind: str
    message: str
    site_code: str | None
    site_name_en: str | None
    site_name_ar: str | None
    hostname: str | None


@dataclass(frozen=True)
class PageInfo:
    """Where a paginated list is: 1-based page, rows shown and total."""

    page: int
    pages: int
    total: int
    start: int
    end: int

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def parse_page(raw: str | None) -> int:
    """A page number from the query string; anything odd means page 1 (never an error page)."""
    try:
        page = int(raw or "1")
    except ValueError:
        return 1
    return min(max(page, 1), 10**9)


def clean_query(raw: str | None) -> str:
    """A search box value, trimmed and bounded."""
    return (raw or "").strip()[:MAX_QUERY_LEN]


def clean_kind(raw: str | None) -> str:
    """A site kind filter; unknown kinds are ignored (show all) rather than rejected."""
    value = (raw or "").strip().lower()
    return value if value in {k.value for k in SiteKind} else ""


def _like(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _page_info(total: int, page: int, size: int = PAGE_SIZE) -> PageInfo:
    pages = max(1, -(-total // size))
    page = min(page, pages)
    start = (page - 1) * size + 1 if total else 0
    end = min(page * size, total)
    return PageInfo(page=page, pages=pages, total=total, start=start, end=end)


# --------------------------------------------------------------------------- overview


def counts(session: Session) -> dict[str, Any]:
    """Sites by kind, devices by status, and interface count for the overview cards."""
    sites_by_kind = dict(session.exec(select(Site.kind, func.count()).group_by(Site.kind)).all())
    devices_by_status = dict(session.exec(select(Device.status, func.count()).group_by(Device.status)).all())
    interfaces = session.exec(select(func.count()).select_from(Interface)).one()
    return {
        "sites_by_kind": sites_by_kind,
        "sites_total": sum(sites_by_kind.values()),
        "devices_by_status": devices_by_status,
        "devices_total": sum(devices_by_status.values()),
        "interfaces": interfaces,
    }


# --------------------------------------------------------------------------- events


def _event_rows(session: Session, *conditions: Any, limit: int, offset: int = 0) -> list[EventRow]:
    stmt = (
        select(Event.id, Event.time, Event.severity, Event.kind, Event.message,
               Site.code, Site.name_en, Site.name_ar, Device.hostname)
        .select_from(Event)
        .outerjoin(Device, col(Device.id) == col(Event.device_id))
        .outerjoin(Site, col(Site.id) == func.coalesce(col(Event.site_id), col(Device.site_id)))
        .where(*conditions)
        .order_by(col(Event.time).desc(), col(Event.id).desc())
        .offset(offset)
        .limit(limit)
    )
    return [EventRow(*row) for row in session.exec(stmt).all()]


def latest_events(session: Session, limit: int = 10) -> list[EventRow]:
    return _event_rows(session, limit=limit)


_ALERT_SEVERITIES = (Severity.warning.value, Severity.critical.value)


def alerts(session: Session, page: int) -> tuple[list[EventRow], PageInfo]:
    """Warning and critical events, newest first."""
    cond = col(Event.severity).in_(_ALERT_SEVERITIES)
    total = session.exec(select(func.count()).select_from(Event).where(cond)).one()
    info = _page_info(total, page)
    rows = _event_rows(session, cond, limit=PAGE_SIZE, offset=(info.page - 1) * PAGE_SIZE)
    return rows, info


# --------------------------------------------------------------------------- sites


def sites(session: Session, kind: str, q: str, page: int) -> tuple[list[tuple[Site, int]], PageInfo]:
    """Sites with their device counts, filtered by kind and a text search over code and names."""
    conds: list[Any] = []
    if kind:
        conds.append(col(Site.kind) == kind)
    if q:
        pattern = _like(q)
        conds.append(or_(col(Site.code).ilike(pattern, escape="\\"),
                         col(Site.name_en).ilike(pattern, escape="\\"),
                         col(Site.name_ar).ilike(pattern, escape="\\")))
    total = session.exec(select(func.count()).select_from(Site).where(*conds)).one()
    info = _page_info(total, page)
    per_site = (select(col(Device.site_id).label("site_id"), func.count().label("n"))
                .group_by(col(Device.site_id)).subquery())
    stmt = (
        select(Site, func.coalesce(per_site.c.n, 0))
        .outerjoin(per_site, per_site.c.site_id == col(Site.id))
        .where(*conds)
        .order_by(col(Site.code))
        .offset((info.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return [(site, int(n)) for site, n in session.exec(stmt).all()], info


def site_by_code(session: Session, code: str) -> Site | None:
    return session.exec(select(Site).where(col(Site.code) == code.strip().upper())).first()


def site_detail(session: Session, site: Site, devices_limit: int = 200, events_limit: int = 20) -> dict[str, Any]:
    """Everything the site page shows besides the site itself. A big site's device list is cut at
    ``devices_limit`` (the page links to the paginated Network list for the rest)."""
    prefixes = session.exec(select(Prefix).where(col(Prefix.site_id) == site.id)
                            .order_by(col(Prefix.prefix)).limit(1000)).all()
    on_site = col(Device.site_id) == site.id
    device_total = session.exec(select(func.count()).select_from(Device).where(on_site)).one()
    devices = session.exec(select(Device).where(on_site).order_by(col(Device.hostname)).limit(devices_limit)).all()
    device_ids = select(Device.id).where(on_site)
    events = _event_rows(session, or_(col(Event.site_id) == site.id, col(Event.device_id).in_(device_ids)),
                         limit=events_limit)
    return {"prefixes": list(prefixes), "devices": list(devices), "device_total": device_total, "events": events}


# --------------------------------------------------------------------------- network


def devices(session: Session, q: str, site_id: int | None, page: int) -> tuple[list[tuple[Device, Site]], PageInfo]:
    """All devices with their site, optionally of one site and searched by hostname, address, vendor or model."""
    conds: list[Any] = []
    if site_id is not None:
        conds.append(col(Device.site_id) == site_id)
    if q:
        pattern = _like(q)
        conds.append(or_(*(c.ilike(pattern, escape="\\") for c in (
            col(Device.hostname), col(Device.management_address), col(Device.vendor), col(Device.model)))))
    total = session.exec(select(func.count()).select_from(Device).where(*conds)).one()
    info = _page_info(total, page)
    stmt = (
        select(Device, Site)
        .join(Site, col(Site.id) == col(Device.site_id))
        .where(*conds)
        .order_by(col(Device.hostname))
        .offset((info.page - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE)
    )
    return [(d, s) for d, s in session.exec(stmt).all()], info


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts ``Gi1/0/2`` before ``Gi1/0/10``, as people read interface names."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", text) if part)


# --------------------------------------------------------------------------- topology and health
#
# One vocabulary for the graph, its legend, the list fallback and the device page, so a colour
# always means the same thing: ok (green), degraded (amber), down (red), never polled (grey).

STATE_OK = "ok"
STATE_DEGRADED = "degraded"
STATE_DOWN = "down"
STATE_NEVER = "never"
STATES: tuple[str, ...] = (STATE_OK, STATE_DEGRADED, STATE_DOWN, STATE_NEVER)

# The city has hundreds of devices, not tens of thousands; the caps only keep a runaway import
# from turning the network page into a multi-megabyte download (the JSON says when it was cut).
TOPOLOGY_MAX_DEVICES = 5000
TOPOLOGY_MAX_LINKS = 20000
CENTRAL_KINDS = frozenset({SiteKind.hq.value, SiteKind.datacenter.value})
# ifOperStatus values that mean "this cable carries nothing" (lowerLayerDown: e.g. a LAG member's port is down).
IF_DOWN = frozenset({"down", "lowerLayerDown"})
# Devices that exist on paper only: shown grey, but they do not make their site look degraded.
_NOT_COUNTED = frozenset({DeviceStatus.planned.value})


def device_state(status: str, poll_status: str | None, link_down: bool) -> tuple[str, str]:
    """(state, reason) of one device. The reason names the first rule that decided, worst first,
    so the page can say *why* a node is red instead of only that it is.

    ``offline`` counts as down: it is what an operator (or a poller) sets when a device stopped
    answering, which is the same thing to a person looking at the map.
    """
    if status == DeviceStatus.missing.value:
        return STATE_DOWN, "missing"
    if status == DeviceStatus.offline.value:
        return STATE_DOWN, "offline"
    if poll_status in (PollStatus.timeout.value, PollStatus.auth.value):
        return STATE_DOWN, f"poll_{poll_status}"
    if poll_status is None or poll_status == PollStatus.never.value:
        return STATE_NEVER, "never_polled"
    if poll_status != PollStatus.ok.value:
        return STATE_DEGRADED, "poll_error"
    if link_down:
        return STATE_DEGRADED, "link_down"
    return STATE_OK, "ok"


def site_state(device_states: list[str]) -> str:
    """A site's colour from its (counted) devices: any down → down; none polled → never; any
    degraded or not yet polled → degraded (not everything is known to be fine); else ok."""
    if not device_states:
        return STATE_NEVER
    if STATE_DOWN in device_states:
        return STATE_DOWN
    if all(s == STATE_NEVER for s in device_states):
        return STATE_NEVER
    if STATE_DEGRADED in device_states or STATE_NEVER in device_states:
        return STATE_DEGRADED
    return STATE_OK


def link_state(a_oper: str, b_oper: str, a_state: str, b_state: str) -> str:
    """``down`` when either end interface is down; ``up`` when both are up and both devices
    answered; ``unknown`` otherwise (an unreachable device's interface states are stale)."""
    if a_oper in IF_DOWN or b_oper in IF_DOWN:
        return "down"
    if a_oper == "up" and b_oper == "up" and STATE_DOWN not in (a_state, b_state) \
            and STATE_NEVER not in (a_state, b_state):
        return "up"
    return "unknown"


@dataclass(frozen=True)
class TopoDevice:
    id: int
    hostname: str
    site_id: int
    role: str
    status: str
    poll_status: str | None
    state: str
    reason: str


@dataclass(frozen=True)
class TopoLink:
    id: int
    source: str
    a_device_id: int
    a_interface: str
    a_oper: str
    b_device_id: int
    b_interface: str
    b_oper: str
    state: str


@dataclass(frozen=True)
class TopoSite:
    id: int
    code: str
    name_en: str
    name_ar: str
    kind: str
    state: str
    # Devices of the site by state (all shown devices, planned included).
    states: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Topology:
    sites: list[TopoSite]
    devices: list[TopoDevice]
    links: list[TopoLink]
    truncated: bool


def link_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Link)).one())


def topology(session: Session, max_devices: int = TOPOLOGY_MAX_DEVICES,
             max_links: int = TOPOLOGY_MAX_LINKS) -> Topology:
    """The whole city as a graph: devices (decommissioned ones left out) with their state, links
    between them and sites with the state of their devices. Three bounded queries, no lazy loads."""
    dev_rows = session.exec(
        select(Device.id, Device.hostname, Device.site_id, Device.role, Device.status, DevicePoll.status)
        .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
        .where(col(Device.status) != DeviceStatus.decommissioned.value)
        .order_by(col(Device.hostname))
        .limit(max_devices + 1)
    ).all()
    ia, ib = aliased(Interface), aliased(Interface)
    link_rows = session.exec(
        select(Link.id, Link.source, ia.device_id, ia.name, ia.oper_status, ib.device_id, ib.name, ib.oper_status)
        .join(ia, ia.id == col(Link.a_interface_id))
        .join(ib, ib.id == col(Link.b_interface_id))
        .order_by(col(Link.id))
        .limit(max_links + 1)
    ).all()
    truncated = len(dev_rows) > max_devices or len(link_rows) > max_links
    dev_rows, link_rows = dev_rows[:max_devices], link_rows[:max_links]

    shown = {row[0] for row in dev_rows}
    link_down: set[int] = set()
    for _lid, _src, a_dev, _a_name, a_oper, b_dev, _b_name, b_oper in link_rows:
        if a_oper in IF_DOWN:
            link_down.add(a_dev)
        if b_oper in IF_DOWN:
            link_down.add(b_dev)

    devices: list[TopoDevice] = []
    for dev_id, hostname, site_id, role, status, poll_status in dev_rows:
        state, reason = device_state(status, poll_status, dev_id in link_down)
        devices.append(TopoDevice(dev_id, hostname, site_id, role, status, poll_status, state, reason))
    by_id = {d.id: d for d in devices}

    links = [
        TopoLink(lid, src, a_dev, a_name, a_oper, b_dev, b_name, b_oper,
                 link_state(a_oper, b_oper, by_id[a_dev].state, by_id[b_dev].state))
        for lid, src, a_dev, a_name, a_oper, b_dev, b_name, b_oper in link_rows
        if a_dev in shown and b_dev in shown
    ]

    site_ids = {d.site_id for d in devices}
    site_rows = session.exec(
        select(Site).where(or_(col(Site.status) != SiteStatus.decommissioned.value, col(Site.id).in_(site_ids)))
        .order_by(col(Site.code)).limit(max_devices)
    ).all()
    per_site: dict[int, list[TopoDevice]] = {}
    for d in devices:
        per_site.setdefault(d.site_id, []).append(d)
    sites = []
    for s in site_rows:
        members = per_site.get(s.id or 0, [])
        counted = [d.state for d in members if d.status not in _NOT_COUNTED]
        sites.append(TopoSite(s.id or 0, s.code, s.name_en, s.name_ar, s.kind, site_state(counted),
                              dict(Counter(d.state for d in members))))
    return Topology(sites=sites, devices=devices, links=links, truncated=truncated)


# --------------------------------------------------------------------------- device page


@dataclass(frozen=True)
class LinkPeer:
    """The far end of one of a device's inventory links."""

    device_id: int
    hostname: str
    interface: str
    source: str


@dataclass(frozen=True)
class InterfaceRow:
    id: int
    name: str
    alias: str
    description: str
    type: str
    speed_bps: int | None
    mtu: int | None
    mac: str | None
    admin_status: str
    oper_status: str
    peers: tuple[LinkPeer, ...]


@dataclass(frozen=True)
class NeighborRow:
    protocol: str
    local_interface: str
    remote_system_name: str
    remote_port: str
    remote_address: str
    remote_platform: str
    remote_chassis_id: str
    remote_device_id: int | None
    remote_hostname: str | None
    last_seen: dt.datetime | None


def device_by_id(session: Session, raw: str) -> Device | None:
    """A device from the id in its address; anything that is not a plausible id is simply not found."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return session.get(Device, int(raw))


def _link_peers(session: Session, device_id: int) -> dict[int, list[LinkPeer]]:
    """Own interface id -> far ends, from both sides of the link table (``a`` is the lower id)."""
    own = select(Interface.id).where(col(Interface.device_id) == device_id)
    peer, peer_dev = aliased(Interface), aliased(Device)
    out: dict[int, list[LinkPeer]] = {}
    for mine, theirs in ((Link.a_interface_id, Link.b_interface_id), (Link.b_interface_id, Link.a_interface_id)):
        stmt = (
            select(mine, peer_dev.id, peer_dev.hostname, peer.name, Link.source)
            .join(peer, peer.id == col(theirs))
            .join(peer_dev, peer_dev.id == peer.device_id)
            .where(col(mine).in_(own))
            .limit(5000)
        )
        for own_id, dev_id, hostname, name, source in session.exec(stmt).all():
            out.setdefault(own_id, []).append(LinkPeer(dev_id, hostname, name, source))
    return out


def device_detail(session: Session, device: Device, *, interfaces_limit: int = 2000, neighbors_limit: int = 1000,
                  events_limit: int = 20) -> dict[str, Any]:
    """Everything the device page shows besides the device itself, including its health state
    computed exactly as the topology graph computes it (the two must never disagree)."""
    site = session.get(Site, device.site_id)
    poll = session.get(DevicePoll, device.id)
    peers = _link_peers(session, device.id or 0)
    ifaces = session.exec(select(Interface).where(col(Interface.device_id) == device.id)
                          .order_by(col(Interface.name)).limit(interfaces_limit)).all()
    interfaces = sorted(
        (InterfaceRow(i.id or 0, i.name, i.alias, i.description, i.type, i.speed_bps, i.mtu, i.mac, i.admin_status,
                      i.oper_status, tuple(peers.get(i.id or 0, ()))) for i in ifaces),
        key=lambda row: natural_key(row.name),
    )
    interface_total = session.exec(select(func.count()).select_from(Interface)
                                   .where(col(Interface.device_id) == device.id)).one()
    remote = aliased(Device)
    nb_rows = session.exec(
        select(Neighbor, remote.hostname)
        .outerjoin(remote, remote.id == col(Neighbor.remote_device_id))
        .where(col(Neighbor.device_id) == device.id)
        .limit(neighbors_limit)
    ).all()
    neighbors = sorted(
        (NeighborRow(n.protocol, n.local_interface, n.remote_system_name, n.remote_port, n.remote_address,
                     n.remote_platform, n.remote_chassis_id, n.remote_device_id, hostname, n.last_seen)
         for n, hostname in nb_rows),
        key=lambda row: (natural_key(row.local_interface), row.protocol),
    )
    link_down = any(r.peers and r.oper_status in IF_DOWN for r in interfaces)
    state, reason = device_state(device.status, poll.status if poll else None, link_down)
    events = _event_rows(session, col(Event.device_id) == device.id, limit=events_limit)
    return {"site": site, "poll": poll, "interfaces": interfaces, "interface_total": interface_total,
            "neighbors": neighbors, "events": events, "state": state, "reason": reason}
