"""Read views of the network: each device's, site's and link's health, the city as a graph, and
one device with its interfaces, cabled peers and neighbours.

The rules that colour the city map live here and only here: the REST API serves these models
(``/api/v1/network/...``), the dashboard draws them and the CLI prints them, so a red site means
the same thing to a script, a person at the map and a person at a terminal.

One vocabulary: ``ok`` (green), ``degraded`` (amber), ``down`` (red), ``never`` polled (grey), and
for a site only, ``empty``: it holds no device, so there is nothing to poll and nothing to wait for.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, or_, union
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from infra_mgr.events import views as event_views
from infra_mgr.events.views import EventRow
from infra_mgr.inventory.models import (
    Device,
    DeviceRead,
    DeviceStatus,
    Interface,
    InterfaceRead,
    Link,
    LinkSource,
    Site,
    SiteKind,
    SiteRead,
    SiteStatus,
)
from infra_mgr.inventory.views import natural_key
from infra_mgr.network.models import (
    DevicePoll,
    DevicePollRead,
    DiscoveryRun,
    DiscoveryRunRead,
    Neighbor,
    NeighborRead,
    PollStatus,
)
from infra_mgr.network.snmp.identity import short_platform


class Health(StrEnum):
    ok = "ok"
    degraded = "degraded"
    down = "down"
    never = "never"
    empty = "empty"


class LinkState(StrEnum):
    up = "up"
    down = "down"
    unknown = "unknown"


STATES: tuple[str, ...] = tuple(s.value for s in Health)
# Why a device has its state, worst rule first (device_state names the first that decided).
REASONS: tuple[str, ...] = ("ok", "missing", "offline", "poll_timeout", "poll_auth", "poll_error", "never_polled",
                            "link_down")

# The city has hundreds of devices, not tens of thousands; the caps only keep a runaway import
# from turning the map into a multi-megabyte download (the answer says when it was cut).
TOPOLOGY_MAX_DEVICES = 5000
TOPOLOGY_MAX_LINKS = 20000
CENTRAL_KINDS = frozenset({SiteKind.hq.value, SiteKind.datacenter.value})
# ifOperStatus values that mean "this cable carries nothing" (lowerLayerDown: e.g. a LAG member's port is down).
IF_DOWN = frozenset({"down", "lowerLayerDown"})
# Devices that exist on paper only: shown grey, but they do not make their site look degraded.
_NOT_COUNTED = frozenset({DeviceStatus.planned.value})
SITE_PROBLEMS_SHOWN = 5
_WORST_FIRST = {Health.down: 0, Health.degraded: 1}


# --------------------------------------------------------------------------- the rules


def device_state(status: str, poll_status: str | None, link_down: bool) -> tuple[Health, str]:
    """(state, reason) of one device. The reason names the first rule that decided, worst first,
    so a person can be told *why* a node is red instead of only that it is.

    ``offline`` counts as down: it is what an operator (or a poller) sets when a device stopped
    answering, which is the same thing to a person looking at the map. A failed poll names its
    cause (no answer, or no working credential) before ``missing``, which only says that it failed.
    """
    if poll_status in (PollStatus.timeout.value, PollStatus.auth.value) and status != DeviceStatus.offline.value:
        return Health.down, f"poll_{poll_status}"
    if status == DeviceStatus.missing.value:
        return Health.down, "missing"
    if status == DeviceStatus.offline.value:
        return Health.down, "offline"
    if poll_status is None or poll_status == PollStatus.never.value:
        return Health.never, "never_polled"
    if poll_status != PollStatus.ok.value:
        return Health.degraded, "poll_error"
    if link_down:
        return Health.degraded, "link_down"
    return Health.ok, "ok"


def site_state(device_states: Iterable[str]) -> Health:
    """A site's colour from its (counted) devices: no device → empty (not "never polled": there is
    nothing to poll); any down → down; none polled → never; any degraded or not yet polled →
    degraded (not everything is known to be fine); else ok."""
    states = list(device_states)
    if not states:
        return Health.empty
    if Health.down in states:
        return Health.down
    if all(s == Health.never for s in states):
        return Health.never
    if Health.degraded in states or Health.never in states:
        return Health.degraded
    return Health.ok


def link_state(a_oper: str, b_oper: str, a_state: str, b_state: str) -> LinkState:
    """``down`` when either end interface is down; ``up`` when both are up and both devices
    answered; ``unknown`` otherwise (an unreachable device's interface states are stale)."""
    if a_oper in IF_DOWN or b_oper in IF_DOWN:
        return LinkState.down
    if a_oper == "up" and b_oper == "up" and Health.down not in (a_state, b_state) \
            and Health.never not in (a_state, b_state):
        return LinkState.up
    return LinkState.unknown


# --------------------------------------------------------------------------- models


class DeviceHealth(BaseModel):
    """A device on the map: what it is, where, and its state with the reason."""

    id: int
    hostname: str
    site_id: int
    role: str
    status: DeviceStatus
    poll_status: PollStatus | None
    state: Health
    reason: str
    detail: str = ""  # what the last poll said (e.g. which address did not answer)
    since: dt.datetime | None = None  # when the poll state last changed


class DeviceProblem(BaseModel):
    """A device of a site that is not fine, with why: what a site's row and tooltip name."""

    id: int
    hostname: str
    state: Health
    reason: str
    detail: str
    since: dt.datetime | None


class LinkHealth(BaseModel):
    """A cable between two devices with both ends' interface states and the link's state."""

    id: int
    source: LinkSource
    a_device_id: int
    a_interface: str
    a_oper: str
    b_device_id: int
    b_interface: str
    b_oper: str
    state: LinkState


class SiteHealth(BaseModel):
    """A site's state and how many of its devices are in each state (planned devices included in
    ``states``; they never make the site look degraded). ``central``: headquarters or data centre."""

    id: int
    code: str
    name_en: str
    name_ar: str
    kind: SiteKind
    status: SiteStatus
    central: bool
    state: Health
    devices: int
    states: dict[Health, int]
    problems: list[DeviceProblem] = []  # worst first, at most SITE_PROBLEMS_SHOWN


class TopologyCounts(BaseModel):
    sites: int
    devices: int
    links: int


class Topology(BaseModel):
    """The whole city as a graph. ``truncated``: more devices or links than the caps; the rest left out."""

    sites: list[SiteHealth]
    devices: list[DeviceHealth]
    links: list[LinkHealth]
    truncated: bool
    counts: TopologyCounts


# --------------------------------------------------------------------------- queries


def _down_link_ends(session: Session, device_ids: Iterable[int] | None = None) -> set[int]:
    """Devices with at least one cabled interface that is down (what ``link_down`` means)."""
    ends = union(select(col(Link.a_interface_id).label("iface")), select(col(Link.b_interface_id).label("iface")))
    linked = ends.subquery()
    stmt = (select(Interface.device_id).distinct()
            .join(linked, linked.c.iface == col(Interface.id))
            .where(col(Interface.oper_status).in_(IF_DOWN)))
    if device_ids is not None:
        stmt = stmt.where(col(Interface.device_id).in_(list(device_ids)))
    return {int(d) for d in session.exec(stmt).all()}


def _device_health(session: Session, *conditions: Any, limit: int) -> list[DeviceHealth]:
    """Devices (decommissioned ones left out) by hostname with their state, in two queries."""
    # Six columns: wider than sqlmodel's typed select(), so SQLAlchemy's select() and execute().
    rows = session.execute(
        sa_select(col(Device.id), col(Device.hostname), col(Device.site_id), col(Device.role), col(Device.status),
                  col(DevicePoll.status), col(DevicePoll.message), col(DevicePoll.since))
        .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
        .where(col(Device.status) != DeviceStatus.decommissioned.value, *conditions)
        .order_by(col(Device.hostname))
        .limit(limit)
    ).all()
    # Every device asked for: one pass over the links, not a list of thousands of ids.
    down = _down_link_ends(session, [r[0] for r in rows] if conditions else None) if rows else set()
    out = []
    for dev_id, hostname, site_id, role, status, poll_status, message, since in rows:
        state, reason = device_state(status, poll_status, dev_id in down)
        out.append(DeviceHealth(id=dev_id, hostname=hostname, site_id=site_id, role=role, status=status,
                                poll_status=poll_status, state=state, reason=reason,
                                detail=(message or "") if state != Health.ok else "", since=since))
    return out


def down_devices(session: Session, limit: int = 10) -> tuple[list[DeviceHealth], int]:
    """Devices that are down now (the map's red: no answer, no working credential, missing or
    offline), by hostname and cut at ``limit``, with how many there are in all."""
    cond = or_(col(DevicePoll.status).in_((PollStatus.timeout.value, PollStatus.auth.value)),
               col(Device.status).in_((DeviceStatus.missing.value, DeviceStatus.offline.value)))
    total = int(session.execute(
        sa_select(func.count()).select_from(Device)
        .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
        .where(col(Device.status) != DeviceStatus.decommissioned.value, cond)).scalar_one())
    rows = [d for d in _device_health(session, cond, limit=limit) if d.state == Health.down]
    return rows, total


def _site_health(site: Site, members: list[DeviceHealth]) -> SiteHealth:
    counted = [d for d in members if d.status not in _NOT_COUNTED]
    bad = sorted((d for d in counted if d.state in _WORST_FIRST), key=lambda d: (_WORST_FIRST[d.state], d.hostname))
    problems = [DeviceProblem(id=d.id, hostname=d.hostname, state=d.state, reason=d.reason, detail=d.detail,
                              since=d.since) for d in bad[:SITE_PROBLEMS_SHOWN]]
    return SiteHealth(id=site.id or 0, code=site.code, name_en=site.name_en, name_ar=site.name_ar, kind=site.kind,
                      status=site.status, central=site.kind in CENTRAL_KINDS,
                      state=site_state(d.state for d in counted) if counted or not members else Health.never,
                      devices=len(members),
                      states=dict(Counter(d.state for d in members)), problems=problems)


def _sites_of(session: Session, devices: list[DeviceHealth], limit: int,
              site_ids: list[int] | None = None) -> list[SiteHealth]:
    """Sites by code (decommissioned ones only when they still hold a shown device) with their health."""
    holding = {d.site_id for d in devices}
    stmt = select(Site).where(or_(col(Site.status) != SiteStatus.decommissioned.value, col(Site.id).in_(holding)))
    if site_ids is not None:
        stmt = stmt.where(col(Site.id).in_(site_ids))
    per_site: dict[int, list[DeviceHealth]] = {}
    for d in devices:
        per_site.setdefault(d.site_id, []).append(d)
    return [_site_health(s, per_site.get(s.id or 0, []))
            for s in session.exec(stmt.order_by(col(Site.code)).limit(limit)).all()]


def sites_health(session: Session, site_ids: Iterable[int] | None = None,
                 max_devices: int = TOPOLOGY_MAX_DEVICES) -> list[SiteHealth]:
    """Each site's state and its devices by state (all sites, or those of ``site_ids``): the same
    answer the topology gives for them."""
    ids = list(site_ids) if site_ids is not None else None
    conds = [col(Device.site_id).in_(ids)] if ids is not None else []
    devices = _device_health(session, *conds, limit=max_devices)
    return _sites_of(session, devices, max_devices, ids)


class SiteStateDetail(BaseModel):
    """A site's state and each of its devices' state with the reason (the site page's view)."""

    site: SiteHealth
    devices: dict[int, DeviceHealth]


def site_state_detail(session: Session, site_id: int, max_devices: int = TOPOLOGY_MAX_DEVICES
                      ) -> SiteStateDetail | None:
    """The site's health and its devices' states by id: the same rules the map and the Sites list use."""
    devices = _device_health(session, col(Device.site_id) == site_id, limit=max_devices)
    sites = _sites_of(session, devices, 1, [site_id])
    if not sites:
        return None
    return SiteStateDetail(site=sites[0], devices={d.id: d for d in devices})


def link_count(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Link)).one())


def topology(session: Session, max_devices: int = TOPOLOGY_MAX_DEVICES,
             max_links: int = TOPOLOGY_MAX_LINKS) -> Topology:
    """The whole city as a graph: devices (decommissioned ones left out) with their state, links
    between shown devices and sites with the state of their devices. Bounded queries, no lazy loads."""
    devices = _device_health(session, limit=max_devices + 1)
    ia, ib = aliased(Interface), aliased(Interface)
    link_rows = session.execute(
        sa_select(col(Link.id), col(Link.source), col(ia.device_id), col(ia.name), col(ia.oper_status),
                  col(ib.device_id), col(ib.name), col(ib.oper_status))
        .join(ia, col(ia.id) == col(Link.a_interface_id))
        .join(ib, col(ib.id) == col(Link.b_interface_id))
        .order_by(col(Link.id))
        .limit(max_links + 1)
    ).all()
    truncated = len(devices) > max_devices or len(link_rows) > max_links
    devices, link_rows = devices[:max_devices], link_rows[:max_links]
    by_id = {d.id: d for d in devices}
    links = [
        LinkHealth(id=lid, source=src, a_device_id=a_dev, a_interface=a_name, a_oper=a_oper, b_device_id=b_dev,
                   b_interface=b_name, b_oper=b_oper,
                   state=link_state(a_oper, b_oper, by_id[a_dev].state, by_id[b_dev].state))
        for lid, src, a_dev, a_name, a_oper, b_dev, b_name, b_oper in link_rows
        if a_dev in by_id and b_dev in by_id
    ]
    sites = _sites_of(session, devices, max_devices)
    return Topology(sites=sites, devices=devices, links=links, truncated=truncated,
                    counts=TopologyCounts(sites=len(sites), devices=len(devices), links=len(links)))


# --------------------------------------------------------------------------- one device


class LinkPeer(BaseModel):
    """The far end of one of a device's inventory links."""

    device_id: int
    hostname: str
    interface: str
    source: LinkSource


class InterfaceLinks(InterfaceRead):
    """An interface with the far ends of the links cabled to it."""

    peers: list[LinkPeer]


class NeighborSeen(NeighborRead):
    """An LLDP/CDP neighbour with the hostname of the inventory device it was matched to, if any.

    ``remote_port`` is named as a person knows it: a bare number (Junos sends its ifIndex as a
    locally assigned port id) becomes the remote device's interface of that ifIndex when the
    remote is in the inventory; ``remote_port_id`` keeps what the device said. ``platform_short``
    is the few words a table shows; ``remote_platform`` stays whole for a tooltip. The same remote
    port reported by CDP and LLDP is one row (``protocols`` names both)."""

    remote_hostname: str | None
    remote_port_id: str = ""
    protocols: list[str] = []  # every protocol that reported this neighbour (``protocol`` is the first)
    platform_short: str = ""


class DeviceDetail(BaseModel):
    """Everything a device's page shows. ``state``/``reason`` are computed exactly as on the map
    (the two must never disagree); interfaces are in the order people count them and cut at a
    limit (``interface_total`` says how many there are)."""

    device: DeviceRead
    site: SiteRead
    poll: DevicePollRead | None
    state: Health
    reason: str
    interfaces: list[InterfaceLinks]
    interface_total: int
    neighbors: list[NeighborSeen]
    events: list[EventRow]


def _link_peers(session: Session, device_id: int) -> dict[int, list[LinkPeer]]:
    """Own interface id -> far ends, from both sides of the link table (``a`` is the lower id)."""
    own = select(Interface.id).where(col(Interface.device_id) == device_id)
    peer, peer_dev = aliased(Interface), aliased(Device)
    out: dict[int, list[LinkPeer]] = {}
    for mine, theirs in ((Link.a_interface_id, Link.b_interface_id), (Link.b_interface_id, Link.a_interface_id)):
        stmt = (
            sa_select(col(mine), col(peer_dev.id), col(peer_dev.hostname), col(peer.name), col(Link.source))
            .join(peer, col(peer.id) == col(theirs))
            .join(peer_dev, col(peer_dev.id) == col(peer.device_id))
            .where(col(mine).in_(own))
            .limit(5000)
        )
        for own_id, dev_id, hostname, name, source in session.execute(stmt).all():
            out.setdefault(own_id, []).append(LinkPeer(device_id=dev_id, hostname=hostname, interface=name,
                                                       source=source))
    return out


def _port_named(ifaces: list[Interface], port: str) -> str | None:
    """The interface a port id names outright: its own name, or its ifIndex (a bare number)."""
    for i in ifaces:
        if i.name == port:
            return i.name
    if port.isdigit() and len(port) < 10:
        for i in ifaces:
            if i.if_index is not None and str(i.if_index) == port:
                return i.name
    return None


def _port_described(ifaces: list[Interface], port: str) -> str | None:
    """The one interface whose description or alias is the port id (Junos may send either);
    ``None`` when none or several match, since a shared description names no port."""
    text = port.strip().casefold()
    if not text:
        return None
    hits = {i.name for i in ifaces if text in (i.description.strip().casefold(), i.alias.strip().casefold())}
    return hits.pop() if len(hits) == 1 else None


def _remote_port_names(session: Session, device_id: int, rows: list[Neighbor]) -> dict[int, str]:
    """Neighbour id -> the remote device's own name of the port, for neighbours whose remote
    device is in the inventory. A port id may be a name, an ifIndex (Junos: locally assigned) or
    a description a person wrote, which may be the same on several ports: a name or ifIndex
    decides first, then the remote's own LLDP/CDP row that points back at this device's port,
    and a description or alias of a single port only last. An id nothing matches stays as said."""
    known = [n for n in rows if n.remote_device_id and n.id is not None]
    if not known:
        return {}
    remote_ids = {n.remote_device_id for n in known if n.remote_device_id}
    by_dev: dict[int, list[Interface]] = {}
    for i in session.exec(select(Interface).where(col(Interface.device_id).in_(remote_ids | {device_id}))
                          .limit(50000)).all():
        by_dev.setdefault(i.device_id, []).append(i)
    own = by_dev.get(device_id, [])
    back: dict[int, list[Neighbor]] = {}
    for r in session.exec(select(Neighbor).where(col(Neighbor.device_id).in_(remote_ids),
                                                 col(Neighbor.remote_device_id) == device_id).limit(5000)).all():
        back.setdefault(r.device_id, []).append(r)

    def mine(port: str) -> str:
        return _port_named(own, port) or _port_described(own, port) or port

    out: dict[int, str] = {}
    for n in known:
        theirs = by_dev.get(n.remote_device_id or 0, [])
        local = _port_named(own, n.local_interface) or n.local_interface
        pointing = {r.local_interface for r in back.get(n.remote_device_id or 0, [])
                    if r.local_interface and mine(r.remote_port) == local}
        name = (_port_named(theirs, n.remote_port)
                or (pointing.pop() if len(pointing) == 1 else None)
                or _port_described(theirs, n.remote_port))
        if name:
            out[n.id or 0] = name
    return out


def _merged(rows: list[NeighborSeen]) -> list[NeighborSeen]:
    """One row per remote device and port seen on a local port: a device that speaks both CDP
    and LLDP (MikroTik does) is one neighbour, listed with both protocols; the platform kept is the
    most telling (longest) of what they said."""
    groups: dict[tuple[str, str, str], list[NeighborSeen]] = {}
    for r in rows:
        who = str(r.remote_device_id) if r.remote_device_id else \
            (r.remote_system_name or r.remote_chassis_id or r.remote_address).casefold()
        groups.setdefault((r.local_interface, who, r.remote_port.casefold()), []).append(r)
    out = []
    for same in groups.values():
        best = max(same, key=lambda r: len(r.remote_platform))
        protocols = sorted({r.protocol for r in same})
        out.append(best.model_copy(update={"protocols": protocols, "protocol": protocols[0],
                                           "remote_address": next((r.remote_address for r in same
                                                                   if r.remote_address), "")}))
    return out


def device_detail(session: Session, device_id: int, *, interfaces_limit: int = 2000, neighbors_limit: int = 1000,
                  events_limit: int = 20) -> DeviceDetail | None:
    """One device with its site, poll state, health, interfaces and their peers, neighbours and
    newest events; ``None`` when there is no such device."""
    device = session.get(Device, device_id)
    if device is None:
        return None
    site = session.get(Site, device.site_id)
    poll = session.get(DevicePoll, device_id)
    peers = _link_peers(session, device_id)
    ifaces = session.exec(select(Interface).where(col(Interface.device_id) == device_id)
                          .order_by(col(Interface.name)).limit(interfaces_limit)).all()
    interfaces = sorted(
        (InterfaceLinks(**InterfaceRead.model_validate(i).model_dump(), peers=peers.get(i.id or 0, []))
         for i in ifaces),
        key=lambda row: natural_key(row.name),
    )
    interface_total = int(session.exec(select(func.count()).select_from(Interface)
                                       .where(col(Interface.device_id) == device_id)).one())
    remote = aliased(Device)
    nb_rows = session.exec(
        select(Neighbor, remote.hostname)
        .outerjoin(remote, col(remote.id) == col(Neighbor.remote_device_id))
        .where(col(Neighbor.device_id) == device_id)
        .limit(neighbors_limit)
    ).all()
    names = _remote_port_names(session, device_id, [n for n, _ in nb_rows])
    neighbors = sorted(
        _merged([NeighborSeen(**{**NeighborRead.model_validate(n).model_dump(),
                                 "remote_port": names.get(n.id or 0, n.remote_port)},
                              remote_hostname=hostname, remote_port_id=n.remote_port, protocols=[n.protocol],
                              platform_short=short_platform(n.remote_platform))
                 for n, hostname in nb_rows]),
        key=lambda row: (natural_key(row.local_interface), row.protocol),
    )
    state, reason = device_state(device.status, poll.status if poll else None,
                                 device_id in _down_link_ends(session, [device_id]))
    return DeviceDetail(device=DeviceRead.model_validate(device), site=SiteRead.model_validate(site),
                        poll=DevicePollRead.model_validate(poll) if poll else None, state=state, reason=reason,
                        interfaces=interfaces, interface_total=interface_total, neighbors=neighbors,
                        events=event_views.of_device(session, device_id, limit=events_limit))


# --------------------------------------------------------------------------- discovery runs


def discovery_runs(session: Session, limit: int = 50, before: int | None = None) -> list[DiscoveryRunRead]:
    """Discovery runs, newest first (``before``: only runs with a smaller id, for paging)."""
    stmt = select(DiscoveryRun)
    if before is not None:
        stmt = stmt.where(col(DiscoveryRun.id) < before)
    rows = session.exec(stmt.order_by(col(DiscoveryRun.id).desc()).limit(limit)).all()
    return [DiscoveryRunRead.of(r) for r in rows]


def discovery_run(session: Session, run_id: int) -> DiscoveryRunRead | None:
    """One run with everything it found and every device it could not read; None if unknown."""
    run = session.get(DiscoveryRun, run_id)
    return DiscoveryRunRead.of(run) if run is not None else None


def run_summary(run: DiscoveryRunRead) -> list[str]:
    """A run as plain lines (what the CLI prints): the same fields the API and the Jobs page show."""
    took = f"{run.duration_s:.1f} s" if run.duration_s is not None else "still running"
    lines = [f"discovery run {run.id} ({run.trigger}, by {run.actor or '-'}, {run.scope}): {run.status.value}, "
             f"started {run.started_at:%Y-%m-%d %H:%M:%S} UTC, {took}",
             f"  found {run.found} devices ({run.new} new, {run.changed} changed, {run.missing} missing), "
             f"{run.links} links ({run.links_new} new), {run.events} events"]
    if run.error:
        lines.append(f"  error: {run.error}")
    for f in run.failures:
        lines.append(f"  failed: {f.hostname or '?'} {f.address}: {f.reason.value}: {f.detail}")
    return lines
