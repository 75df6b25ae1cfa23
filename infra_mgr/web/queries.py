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
from urllib.parse import urlencode

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


# --------------------------------------------------------------------------- power page

# How a power state reads at a glance: green on mains, amber on the kinetic store, diesel or bypass
# (carried, but not by the grid), red on battery or without supply; grey when the data is not live.
POWER_TONES: dict[str, str] = {
    "mains": "ok", "standby": "ok", "kinetic": "warning", "diesel": "warning", "bypass": "warning",
    "battery": "critical", "off": "critical", "failed": "critical",
}
# Flags that make any state red: the supply is about to end or is already at fault.
POWER_CRITICAL_FLAGS = frozenset({"low_battery", "low_fuel", "overload", "engine_fault"})
# What a site is running on, most serious first: the first state any live device is in names the site.
POWER_SITE_ORDER = ("battery", "kinetic", "diesel", "bypass", "mains")
# The gauges each kind of device always shows (others appear when the device reports them).
POWER_KIND_GAUGES: dict[str, tuple[str, ...]] = {
    "ups": ("battery", "load"), "drups": ("kinetic", "fuel", "load"), "genset": ("fuel", "load"),
    "pdu": ("load",), "ats": (), "meter": (),
}
POWER_GAUGES = ("battery", "kinetic", "fuel", "load")
POWER_FUEL_READINGS = ("fuel.day.level", "fuel.level", "fuel.main.level")
# Left-to-right order of the chain's first column, and the tie-break inside a column.
_NODE_RANK = {k: i for i, k in enumerate(("utility", "meter", "genset", "ats", "drups", "ups", "panel", "pdu",
                                          "rack"))}
CHAIN_COL_W, CHAIN_ROW_H, CHAIN_NODE_W, CHAIN_NODE_H, CHAIN_PAD = 172, 80, 142, 62, 12
POWER_EVENTS_SHOWN = 15
POWER_OUTAGES_SHOWN = 50
POWER_NODES_MAX = 2000


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def power_tone(state: str, flags: list[str] | tuple[str, ...], live: bool, status: str) -> str:
    """The colour class of a power state: ok, warning, critical; ``stale`` when the device stopped
    answering or its data is older than its grace period; ``unknown`` when never read or unclassified."""
    if not live:
        return "unknown" if status == "never" else "stale"
    if POWER_CRITICAL_FLAGS.intersection(flags):
        return "critical"
    return POWER_TONES.get(state, "unknown")


def power_load(readings: dict[str, Any], capacity_kw: float | None) -> tuple[float | None, float | None]:
    """(kW, load %) from a device's readings: the power it delivers and the share of its capacity.
    Same sources and order as the service's PUE (meter, output power, UPS real power in W, load × capacity)."""
    kw = _num(readings.get("meter.power"))
    if kw is None:
        kw = _num(readings.get("output.power"))
    if kw is None and _num(readings.get("ups.realpower")) is not None:
        kw = float(readings["ups.realpower"]) / 1000.0
    pct = _num(readings.get("ups.load"))
    if pct is None:
        pct = _num(readings.get("engine.load"))
    if kw is None and pct is not None and capacity_kw:
        kw = pct / 100.0 * capacity_kw
    if pct is None and kw is not None and capacity_kw:
        pct = kw / capacity_kw * 100.0
    return (round(kw, 1) if kw is not None else None, round(pct, 1) if pct is not None else None)


def power_site_state(devices: list[dict[str, Any]]) -> str:
    """What a site runs on, from its live devices: battery, kinetic, diesel, bypass or mains; else unknown."""
    live = {d["state"] for d in devices if d["live"]}
    return next((s for s in POWER_SITE_ORDER if s in live), "unknown")


def chain_layout(node_ids: list[int], edges: list[tuple[int, int]]) -> dict[int, tuple[int, int]]:
    """(column, row) of each node of the power chain, drawn left to right.

    The column is the longest path from a node without feeders, so utility → ATS → DRUPS → UPS →
    panel → PDU → rack read in that order whatever the branching; inside a column nodes follow the
    mean row of their feeders (and never sit above it), so a plain chain is a straight line and
    branches fan out below. Separate chains (other sites, A/B feeds never joined) are stacked.
    ``node_ids`` is the tie-break order; edges to unknown nodes and cycles are tolerated.
    """
    order = {n: i for i, n in enumerate(node_ids)}
    succ: dict[int, list[int]] = {n: [] for n in node_ids}
    pred: dict[int, list[int]] = {n: [] for n in node_ids}
    for a, b in edges:
        if a in order and b in order and a != b and b not in succ[a]:
            succ[a].append(b)
            pred[b].append(a)
    # Weakly connected components, in the order of their first node.
    comp: dict[int, int] = {}
    for n in node_ids:
        if n in comp:
            continue
        comp[n], stack = n, [n]
        while stack:
            m = stack.pop()
            for k in succ[m] + pred[m]:
                if k not in comp:
                    comp[k] = n
                    stack.append(k)
    # Longest-path columns (Kahn's order; nodes on a cycle go one right of what feeds them).
    col_of: dict[int, int] = {}
    indeg = {n: len(pred[n]) for n in node_ids}
    ready = [n for n in node_ids if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        col_of.setdefault(n, 0)
        for k in succ[n]:
            col_of[k] = max(col_of.get(k, 0), col_of[n] + 1)
            indeg[k] -= 1
            if indeg[k] == 0:
                ready.append(k)
    for n in node_ids:
        if n not in col_of:
            col_of[n] = 1 + max((col_of.get(p, 0) for p in pred[n]), default=-1)
    out: dict[int, tuple[int, int]] = {}
    top = 0
    for root in dict.fromkeys(comp[n] for n in node_ids):
        members = [n for n in node_ids if comp[n] == root]
        rows: dict[int, float] = {}
        height = 0
        for c in sorted({col_of[n] for n in members}):
            column = sorted((n for n in members if col_of[n] == c),
                            key=lambda n: (_barycentre(n, pred, rows), order[n]))
            next_free = 0
            for n in column:
                row = max(next_free, round(_barycentre(n, pred, rows)))
                rows[n] = row
                next_free = row + 1
            height = max(height, next_free)
        for n in members:
            out[n] = (col_of[n], top + int(rows[n]))
        top += max(height, 1)
    return out


def _barycentre(node: int, pred: dict[int, list[int]], rows: dict[int, float]) -> float:
    """Mean row of a node's already placed feeders (-1 when it has none)."""
    placed = [rows[p] for p in pred[node] if p in rows]
    return sum(placed) / len(placed) if placed else -1.0


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _gauges(kind: str, readings: dict[str, Any], capacity_kw: float | None, fuel_reading: str | None,
            status_item: dict[str, Any]) -> dict[str, Any]:
    """The gauge values of a device (None when not reported) and which gauges it shows."""
    _kw, load = power_load(readings, capacity_kw)
    values = {
        "battery": _num(readings.get("battery.charge")),
        "kinetic": _num(readings.get("kinetic.level")),
        "fuel": _num(readings.get(fuel_reading)) if fuel_reading else None,
        "load": load,
    }
    shown = [g for g in POWER_GAUGES
             if g in POWER_KIND_GAUGES.get(kind, ()) or values[g] is not None or (g == "fuel" and fuel_reading)]
    return {**values, "shown": shown, "battery_h": status_item.get("battery_autonomy_h"),
            "fuel_h": status_item.get("fuel_autonomy_h")}


def power_view(session: Session, status: list[dict[str, Any]], pue: dict[str, Any], *,
               now: dt.datetime | None = None, outage_id: int | None = None, with_history: bool = True
               ) -> dict[str, Any] | None:
    """Everything the power page shows, as JSON-ready data (the page's script reads the same).

    ``status`` and ``pue`` come from ``PowerService.status()`` and ``pue_now()`` so the page never
    disagrees with ``/api/v1/power/status``; this adds the chain with its layout and each node's
    live colour, the gauges, what every site runs on, and (``with_history``) the recent power
    events and the outage records with the selected one's timeline. ``None`` when nothing is
    configured (no power device and no chain node).
    """
    from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerEdge, PowerNode

    now = now or dt.datetime.now(dt.UTC)
    devices_db = {d.id: d for d in session.exec(select(PowerDevice)).all()}
    nodes_db = session.exec(select(PowerNode).order_by(col(PowerNode.id)).limit(POWER_NODES_MAX)).all()
    if not devices_db and not nodes_db:
        return None
    node_ids = {n.id for n in nodes_db}
    edges_db = [e for e in session.exec(select(PowerEdge).order_by(col(PowerEdge.id))).all()
                if e.from_node_id in node_ids and e.to_node_id in node_ids]
    tanks = {t.power_device_id: t for t in session.exec(select(FuelTank)).all()}
    site_ids = {d.site_id for d in devices_db.values()} | {n.site_id for n in nodes_db}
    sites_db = {s.id: s for s in session.exec(select(Site).where(col(Site.id).in_([i for i in site_ids if i])))}

    devices: list[dict[str, Any]] = []
    by_id: dict[int, dict[str, Any]] = {}
    for item in status:
        d = devices_db.get(item["id"])
        if d is None:
            continue
        tank = tanks.get(d.id or 0)
        fuel_reading = tank.level_reading if tank else next((r for r in POWER_FUEL_READINGS if r in d.readings), None)
        kw, _pct = power_load(d.readings, d.capacity_kw)
        site = sites_db.get(d.site_id)
        dev = {
            "id": d.id, "name": d.name, "kind": d.kind, "site_id": d.site_id, "site_code": site.code if site else None,
            "status": d.status, "state": item["state"], "last_state": d.state, "flags": list(d.flags),
            "live": item["live"], "last_ok": _iso(d.last_ok), "data_age_s": item["data_age_s"],
            "grace_s": max(3.0, d.poll_interval_s * 3), "capacity_kw": d.capacity_kw, "message": d.message,
            "readings": dict(d.readings), "fuel_reading": fuel_reading, "kw": kw,
            "gauges": _gauges(d.kind, d.readings, d.capacity_kw, fuel_reading, item),
            "tone": power_tone(item["state"], d.flags, item["live"], d.status),
        }
        devices.append(dev)
        by_id[d.id or 0] = dev

    # The chain: layout, then each node's state from its telemetry source. A utility feed without a
    # meter of its own takes its state from the first devices it feeds (mains failed there → failed).
    rank = sorted(nodes_db, key=lambda n: (n.site_id or 0, _NODE_RANK.get(n.kind, 99), natural_key(n.name)))
    pairs = [(e.from_node_id, e.to_node_id) for e in edges_db]
    grid = chain_layout([n.id or 0 for n in rank], pairs)
    succ: dict[int, list[int]] = {}
    for a, b in pairs:
        succ.setdefault(a, []).append(b)
    node_by_id = {n.id: n for n in nodes_db}
    cols = max((c for c, _r in grid.values()), default=0) + 1
    rows = max((r for _c, r in grid.values()), default=0) + 1
    width = 2 * CHAIN_PAD + (cols - 1) * CHAIN_COL_W + CHAIN_NODE_W
    height = 2 * CHAIN_PAD + (rows - 1) * CHAIN_ROW_H + CHAIN_NODE_H

    def fed_devices(start: int) -> list[int]:
        seen, found, queue = {start}, [], list(succ.get(start, []))
        while queue:
            n = queue.pop(0)
            if n in seen:
                continue
            seen.add(n)
            node = node_by_id[n]
            if node.power_device_id in by_id:
                found.append(node.power_device_id or 0)
            else:
                queue.extend(succ.get(n, []))
        return found

    nodes: list[dict[str, Any]] = []
    for n in rank:
        c, r = grid[n.id or 0]
        dev = by_id.get(n.power_device_id or 0)
        node: dict[str, Any] = {
            "id": n.id, "name": n.name, "kind": n.kind, "site_id": n.site_id, "device_id": dev["id"] if dev else None,
            "device": dev["name"] if dev else None, "capacity_kw": n.capacity_kw or (dev or {}).get("capacity_kw"),
            "pue_role": n.pue_role, "it_category": n.it_category, "col": c, "row": r,
            "x": CHAIN_PAD + c * CHAIN_COL_W, "y": CHAIN_PAD + r * CHAIN_ROW_H, "derived_from": [],
        }
        if dev:
            kw, pct = power_load(dev["readings"], node["capacity_kw"])
            node.update(state=dev["state"], tone=dev["tone"], live=dev["live"], kw=kw, pct=pct)
        elif n.kind == "utility":
            fed = fed_devices(n.id or 0)
            node.update(derived_from=fed, kw=None, pct=None, **utility_state([by_id[i] for i in fed]))
        else:
            node.update(state="none", tone="none", live=False, kw=None, pct=None)
        nodes.append(node)

    pos = {n["id"]: n for n in nodes}
    edges = []
    for e in edges_db:
        a, b = pos[e.from_node_id], pos[e.to_node_id]
        edges.append({"id": e.id, "from": e.from_node_id, "to": e.to_node_id,
                      "path": _edge_path(a["x"], a["y"], b["x"], b["y"])})

    sites: list[dict[str, Any]] = []
    def site_key(sid: int | None) -> tuple[bool, str]:
        return (sid not in sites_db, sites_db[sid].code if sid in sites_db else "")

    for sid in sorted({d["site_id"] for d in devices}, key=site_key):
        members = [d for d in devices if d["site_id"] == sid]
        s = sites_db.get(sid)
        sites.append({"id": sid, "code": s.code if s else None, "name_en": s.name_en if s else "",
                      "name_ar": s.name_ar if s else "", "state": power_site_state(members),
                      "not_live": sum(1 for d in members if not d["live"]), "devices": len(members)})

    view: dict[str, Any] = {
        "time": now.isoformat(), "devices": devices, "nodes": nodes, "edges": edges, "sites": sites, "pue": pue,
        "chain": {"width": width, "height": height, "node_w": CHAIN_NODE_W, "node_h": CHAIN_NODE_H},
        "open_outage": None,
    }
    open_row = session.exec(select(Outage.id, Outage.started_at).where(Outage.status == "open")
                            .order_by(col(Outage.started_at).desc())).first()
    if open_row:
        view["open_outage"] = {"id": open_row[0], "started_at": _iso(open_row[1])}
    if with_history:
        view["events"] = power_events(session)
        view["outages"], view["outage"] = power_outages(session, outage_id)
    return view


def utility_state(fed: list[dict[str, Any]]) -> dict[str, Any]:
    """A utility feed without its own meter: failed when a live device it feeds reports mains failed,
    on mains when the live ones it feeds do not, unknown when none of them is live."""
    live = [d for d in fed if d["live"]]
    if not live:
        return {"state": "unknown", "tone": "unknown" if fed else "none", "live": False}
    if any("mains_failed" in d["flags"] for d in live):
        return {"state": "failed", "tone": "critical", "live": True}
    return {"state": "mains", "tone": "ok", "live": True}


def _edge_path(x1: int, y1: int, x2: int, y2: int) -> str:
    """An S-curve from the right side of the feeding node to the left side of the fed one
    (mirrored for right-to-left pages by the template's transform)."""
    sx, sy = x1 + CHAIN_NODE_W, y1 + CHAIN_NODE_H // 2
    tx, ty = x2, y2 + CHAIN_NODE_H // 2
    mid = (sx + tx) / 2
    return f"M{sx} {sy} C{mid:g} {sy} {mid:g} {ty} {tx} {ty}"


def power_events(session: Session, limit: int = POWER_EVENTS_SHOWN) -> list[dict[str, Any]]:
    """The latest power events (``power.*``), newest first, as the stream sends them."""
    rows = session.exec(select(Event).where(col(Event.kind).like("power.%"))
                        .order_by(col(Event.time).desc(), col(Event.id).desc()).limit(limit)).all()
    return [{"time": _iso(e.time), "kind": e.kind, "severity": e.severity, "message": e.message,
             "device": (e.data or {}).get("power_device") or ""} for e in rows]


def _since(start: dt.datetime, when: dt.datetime | None) -> float | None:
    return round((when - start).total_seconds(), 1) if when is not None else None


def power_outages(session: Session, selected: int | None = None, limit: int = POWER_OUTAGES_SHOWN
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Outage records newest first, and the selected one (default: the newest) with its timeline:
    the phases (mains failed → kinetic/battery → diesel cranking → on load → mains restored →
    retransfer) at their offsets from the start, and every recorded event. An unknown id shows the newest."""
    from infra_mgr.power.models import Outage

    rows = session.exec(select(Outage).order_by(col(Outage.started_at).desc(), col(Outage.id).desc())
                        .limit(limit)).all()
    chosen = next((o for o in rows if o.id == selected), None) or (session.get(Outage, selected) if selected else None)
    if chosen is None and rows:  # none asked for, or an id that does not exist: the newest
        chosen = rows[0]

    def summary(o: Outage) -> dict[str, Any]:
        return {"id": o.id, "site_id": o.site_id, "status": o.status, "started_at": _iso(o.started_at),
                "ended_at": _iso(o.ended_at), "duration_s": _since(o.started_at, o.ended_at),
                "seconds_to_diesel": _since(o.started_at, o.diesel_on_load_at),
                "min_battery_charge": o.min_battery_charge, "min_kinetic_level": o.min_kinetic_level,
                "diesel_run_s": o.diesel_run_s, "fuel_used_l": o.fuel_used_l}

    detail = None
    if chosen is not None:
        start = chosen.started_at
        events = []
        for item in chosen.timeline:
            try:
                when = dt.datetime.fromisoformat(str(item.get("time")))
            except ValueError:
                when = None
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            events.append({"time": _iso(when), "offset_s": _since(start, when), "kind": str(item.get("kind", "")),
                           "device": str(item.get("device", "")), "message": str(item.get("message", ""))})
        ride = next((e for e in events if e["kind"] in ("power.on_kinetic", "power.on_battery")), {})
        phases = [
            ("mains_failed", _iso(start), 0.0),
            ("ride_through", ride.get("time"), ride.get("offset_s")),
            ("diesel_cranking", _iso(chosen.diesel_cranking_at), _since(start, chosen.diesel_cranking_at)),
            ("diesel_on_load", _iso(chosen.diesel_on_load_at), _since(start, chosen.diesel_on_load_at)),
            ("mains_restored", _iso(chosen.mains_restored_at), _since(start, chosen.mains_restored_at)),
            ("retransfer", _iso(chosen.ended_at), _since(start, chosen.ended_at)),
        ]
        ride_kind = str(ride["kind"]).removeprefix("power.on_") if ride else None
        detail = {**summary(chosen), "timeline": events, "ride_through": ride_kind,
                  "phases": [{"phase": p, "time": t, "offset_s": s} for p, t, s in phases]}
    return [summary(o) for o in rows], detail


def parse_id(raw: str | None) -> int | None:
    """An object id from a query parameter; anything that is not a plausible id is ``None``."""
    value = (raw or "").strip()
    if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
        return None
    return int(value)


# --------------------------------------------------------------------------- power page: readings chart

# The ranges of the readings chart: key → (seconds, max_points asked of /api/v1/power/series). The
# point budgets pick the store's resolution (TelemetryStore.resolution_for): 1 h of raw samples,
# 6 h and 24 h of 5-minute roll-ups, 7 days of 5-minute and 90 days of hourly ones.
POWER_CHART_RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 720), "6h": (6 * 3600, 600), "24h": (86400, 600), "7d": (7 * 86400, 2016), "90d": (90 * 86400, 2160),
}
POWER_CHART_DEFAULT_RANGE = "1h"
POWER_CHART_LIVE_MAX_S = 6 * 3600  # ranges up to this are redrawn every few seconds
POWER_CHART_DEFAULT_READING = "battery.charge"
# The unit of a canonical reading → the id of its display string (``runit.<id>`` in web/i18n).
POWER_UNIT_KEYS = {"%": "pct", "V": "v", "A": "a", "Hz": "hz", "W": "w", "kW": "kw", "kWh": "kwh", "°C": "c",
                   "kPa": "kpa", "rpm": "rpm", "s": "s", "count": "count", "L": "l"}


def power_chart_readings(session: Session, devices: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Device id → the canonical numeric readings it can chart, in ``CANONICAL``'s order: those
    stored in the telemetry store (one query for every device) and those it reports now."""
    from infra_mgr.power.readings import CANONICAL
    from infra_mgr.telemetry.models import MetricSeries

    stored: dict[int, set[str]] = {}
    for source_id, name in session.exec(select(MetricSeries.source_id, MetricSeries.name)
                                        .where(MetricSeries.source_kind == "power_device")).all():
        stored.setdefault(int(source_id), set()).add(name)
    order = {name: i for i, name in enumerate(CANONICAL)}
    out: dict[int, list[str]] = {}
    for d in devices:
        names = set(stored.get(d["id"], set()))
        names |= {k for k, v in (d.get("readings") or {}).items()
                  if isinstance(v, int | float) and not isinstance(v, bool)}
        out[d["id"]] = sorted((n for n in names if n in CANONICAL and CANONICAL[n][0] != "text"), key=order.__getitem__)
    return out


def power_chart(session: Session, devices: list[dict[str, Any]], device: str | None, reading: str | None,
                range_key: str | None, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the Readings card shows: every power device with its chartable readings, and the
    selection — from ``?chart_device=&chart_reading=&chart_range=`` when valid, else the first
    critical UPS or DRUPS with readings and its ``battery.charge`` (or its first reading) over 1 h.
    ``src`` is the series request for that selection (the link shown without JavaScript)."""
    from infra_mgr.power.models import PowerDevice
    from infra_mgr.power.readings import CANONICAL

    now = now or dt.datetime.now(dt.UTC)
    readings = power_chart_readings(session, devices)
    critical = {int(i): bool(c) for i, c in session.exec(select(PowerDevice.id, PowerDevice.critical)).all()}
    ids = [d["id"] for d in devices]
    chosen = parse_id(device)
    if chosen not in readings:
        with_data = [d for d in devices if readings.get(d["id"])]
        first = next((d for d in with_data if critical.get(d["id"]) and d["kind"] in ("ups", "drups")), None)
        chosen = (first or (with_data[0] if with_data else None) or {"id": ids[0] if ids else None})["id"]
    names = readings.get(chosen or 0, [])
    name = reading if reading in names else (
        POWER_CHART_DEFAULT_READING if POWER_CHART_DEFAULT_READING in names else (names[0] if names else None))
    key = range_key if range_key in POWER_CHART_RANGES else POWER_CHART_DEFAULT_RANGE
    seconds, max_points = POWER_CHART_RANGES[key]
    src = None
    if chosen is not None and name is not None:
        end = now.astimezone(dt.UTC).replace(microsecond=0)
        start = end - dt.timedelta(seconds=seconds)
        src = "/api/v1/power/series?" + urlencode({
            "device_id": chosen, "name": name, "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "max_points": max_points})
    return {
        "devices": [{"id": d["id"], "name": d["name"], "kind": d["kind"],
                     "readings": [{"name": n, "unit": CANONICAL[n][0]} for n in readings.get(d["id"], [])]}
                    for d in devices],
        "device": chosen, "reading": name, "range": key, "src": src,
        "ranges": {k: {"seconds": s, "max_points": p, "live": s <= POWER_CHART_LIVE_MAX_S}
                   for k, (s, p) in POWER_CHART_RANGES.items()},
    }
