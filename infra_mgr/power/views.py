"""The power domain's read side: what the rows mean to a reader, computed once, as typed models.

The REST API serves these models (``/api/v1/power/view``, ``/status``, ``/series``, ``/pue/daily``,
``/outages``), the dashboard renders them (``/power`` and ``/power/chain.json`` are the same
:class:`PowerView`), the CLI prints them, and the poller's live message is built here
(:func:`live_message`). Each rule lives in one function: whether a device is live and its tone
(:func:`device_live`), kW and load (:func:`infra_mgr.power.state.load_of`), what a site runs on
(:func:`site_state`), the state of a utility feed without a meter (:func:`utility_state`), the
chain's layout (:func:`chain_layout`), PUE now and per day. The browser only draws what it gets.

Read only: every function takes a session (and the telemetry store where series are read) and
writes nothing. The models are declared in :mod:`infra_mgr.power.view_models` and served from here.

Why one file of ~650 lines: every rule of what power rows mean is here, each in one function, and
the views build on one another (a device's live state feeds the chain, the site and the stream);
the models are apart in ``view_models.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlmodel import Session, col, select

from infra_mgr.common import utcnow
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Site
from infra_mgr.inventory.views import natural_key
from infra_mgr.power import autonomy
from infra_mgr.power.models import FuelTank, Outage, OutageRead, PowerDevice, PowerEdge, PowerNode
from infra_mgr.power.readings import CANONICAL
from infra_mgr.power.state import comm_grace_s, load_of
from infra_mgr.power.view_models import (  # noqa: F401 - the read side's models, served from here
    ChainBox,
    ChainEdge,
    ChainNode,
    DeviceLive,
    Gauges,
    LiveMessage,
    NodeLive,
    OpenOutage,
    OutageDetail,
    OutagePhase,
    OutageSummary,
    PowerEvent,
    PowerStatus,
    PowerView,
    PowerViewDevice,
    PueDaily,
    PueDay,
    PueNow,
    Series,
    SiteLive,
    TimelineItem,
)
from infra_mgr.telemetry.models import MetricSeries
from infra_mgr.telemetry.store import TelemetryStore

# How a power state reads at a glance: green on mains, amber on the kinetic store, diesel or bypass
# (carried, but not by the grid), red on battery or without supply; grey when the data is not live.
TONES: dict[str, str] = {
    "mains": "ok", "standby": "ok", "kinetic": "warning", "diesel": "warning", "bypass": "warning",
    "battery": "critical", "off": "critical", "failed": "critical",
}
# Flags that make any state red: the supply is about to end or is already at fault.
CRITICAL_FLAGS = frozenset({"low_battery", "low_fuel", "overload", "engine_fault"})
# What a site is running on, most serious first: the first state any live device is in names the site.
SITE_ORDER = ("battery", "kinetic", "diesel", "bypass", "mains")
# The gauges each kind of device always shows (others appear when the device reports them).
KIND_GAUGES: dict[str, tuple[str, ...]] = {
    "ups": ("battery", "load"), "drups": ("kinetic", "fuel", "load"), "genset": ("fuel", "load"),
    "pdu": ("load",), "ats": (), "meter": (),
}
GAUGES = ("battery", "kinetic", "fuel", "load")
FUEL_READINGS = ("fuel.day.level", "fuel.level", "fuel.main.level")
# The readings that say the most about each kind of device (the CLI's table shows these).
KEY_READINGS: dict[str, tuple[str, ...]] = {
    "ups": ("ups.status", "battery.charge", "battery.runtime", "input.voltage", "output.voltage", "ups.load"),
    "drups": ("drups.mode", "mains.status", "kinetic.level", "engine.state", "engine.rpm", "fuel.day.level",
              "fuel.main.level", "output.power"),
    "genset": ("engine.state", "engine.rpm", "fuel.level", "output.power", "engine.load", "engine.battery.voltage"),
    "meter": ("meter.power", "meter.voltage", "meter.energy"),
    "pdu": ("output.current", "output.power", "ups.load"),
    "ats": ("ups.status", "input.voltage"),
}
# Left-to-right order of the chain's first column, and the tie-break inside a column.
_NODE_RANK = {k: i for i, k in enumerate(("utility", "meter", "genset", "ats", "drups", "ups", "panel", "pdu",
                                          "rack"))}
CHAIN_COL_W, CHAIN_ROW_H, CHAIN_NODE_W, CHAIN_NODE_H, CHAIN_PAD = 172, 80, 142, 62, 12
EVENTS_SHOWN = 15
OUTAGES_SHOWN = 50
NODES_MAX = 2000
FUEL_LOAD_RATED_PCT = 100.0  # a generator that carries nothing now: its autonomy at its rating


# --------------------------------------------------------------------------- one device


@dataclass(frozen=True)
class Tank:
    capacity_l: float
    usable_fraction: float
    curve: dict[str, float]
    rated_kw: float
    level_reading: str


@dataclass(frozen=True)
class DeviceFacts:
    """What a device's live state is computed from: its row (or the poller's memory of it)."""

    id: int
    name: str
    kind: str
    site_id: int | None
    status: str
    state: str
    flags: tuple[str, ...]
    last_ok: dt.datetime | None
    poll_interval_s: float
    readings: dict[str, Any]
    capacity_kw: float | None = None
    tank: Tank | None = None

    @classmethod
    def of(cls, dev: PowerDevice, tank: FuelTank | None = None) -> DeviceFacts:
        return cls(dev.id or 0, dev.name, dev.kind, dev.site_id, dev.status, dev.state, tuple(dev.flags),
                   dev.last_ok, dev.poll_interval_s, dict(dev.readings), dev.capacity_kw,
                   Tank(tank.capacity_l, tank.usable_fraction, dict(tank.curve), tank.rated_kw, tank.level_reading)
                   if tank else None)

    @property
    def fuel_reading(self) -> str | None:
        if self.tank:
            return self.tank.level_reading
        return next((r for r in FUEL_READINGS if r in self.readings), None)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _r(value: float | None, digits: int = 1) -> float | None:
    return round(value, digits) if value is not None else None


def tone(state: str, flags: Iterable[str], live: bool, status: str) -> str:
    """The colour class of a power state: ok, warning, critical; ``stale`` when the device stopped
    answering or its data is older than its grace period; ``unknown`` when never read or unclassified."""
    if not live:
        return "unknown" if status == "never" else "stale"
    if CRITICAL_FLAGS.intersection(flags):
        return "critical"
    return TONES.get(state, "unknown")


def device_live(f: DeviceFacts, now: dt.datetime) -> DeviceLive:
    """A device's live state at ``now``: data older than its grace period is never shown live."""
    return DeviceLive(**_live_fields(f, now))


def _live_fields(f: DeviceFacts, now: dt.datetime) -> dict[str, Any]:
    """The rule behind :func:`device_live` and :func:`live_message`, as the model's fields."""
    age = (now - f.last_ok).total_seconds() if f.last_ok else None
    grace = comm_grace_s(f.poll_interval_s)
    live = f.status == "ok" and age is not None and age <= grace
    state = f.state if live else "unknown"
    r = f.readings
    kw, pct = load_of(r, f.capacity_kw)
    fuel_reading = f.fuel_reading
    battery_h = _r(autonomy.battery_autonomy_h(_num(r.get("battery.runtime"))), 2)
    fuel_h = fuel_load = fuel_at = None
    level = _num(r.get(f.tank.level_reading)) if f.tank else None
    if f.tank and level is not None:
        # At its present load while it carries one; a stopped (or silent) generator's "present
        # load" of 0 would promise the curve's idle figure, so then at its rated load, said so.
        _kw, tank_pct = load_of(r, f.tank.rated_kw)
        present = tank_pct is not None and tank_pct > 0
        fuel_load = tank_pct if present and tank_pct is not None else FUEL_LOAD_RATED_PCT
        fuel_at = "present" if present else "rated"
        fuel_h = _r(autonomy.fuel_autonomy_h(f.tank.capacity_l, level, f.tank.usable_fraction, f.tank.curve,
                                             fuel_load), 2)
    values = {"battery": _num(r.get("battery.charge")), "kinetic": _num(r.get("kinetic.level")),
              "fuel": _num(r.get(fuel_reading)) if fuel_reading else None, "load": _r(pct)}
    shown = [g for g in GAUGES if g in KIND_GAUGES.get(f.kind, ()) or values[g] is not None
             or (g == "fuel" and fuel_reading)]
    flags = list(f.flags)
    return dict(
        id=f.id, name=f.name, kind=f.kind, site_id=f.site_id, status=f.status, state=state, flags=flags, live=live,
        tone=tone(state, flags, live, f.status), stale_tone=tone("unknown", flags, False, f.status),
        last_ok=f.last_ok, data_age_s=_r(age), grace_s=grace, readings=dict(r), kw=_r(kw), load_pct=_r(pct),
        gauges=Gauges(**values, shown=shown, battery_h=battery_h, fuel_h=fuel_h, fuel_at=fuel_at),
        battery_autonomy_h=battery_h, fuel_autonomy_h=fuel_h, fuel_load_pct=_r(fuel_load))


def site_state(devices: Iterable[DeviceLive]) -> str:
    """What a site runs on, from its live devices: battery, kinetic, diesel, bypass or mains; else unknown."""
    live = {d.state for d in devices if d.live}
    return next((s for s in SITE_ORDER if s in live), "unknown")


def utility_state(fed: Sequence[DeviceLive]) -> tuple[str, str, bool]:
    """(state, tone, live) of a utility feed without its own meter: failed when a live device it
    feeds reports mains failed, on mains when the live ones it feeds do not, unknown when none is live."""
    live = [d for d in fed if d.live]
    if not live:
        return "unknown", "unknown" if fed else "none", False
    if any("mains_failed" in d.flags for d in live):
        return "failed", "critical", True
    return "mains", "ok", True


def _tanks(session: Session) -> dict[int, FuelTank]:
    return {t.power_device_id: t for t in session.exec(select(FuelTank)).all()}


def status(session: Session, now: dt.datetime | None = None) -> PowerStatus:
    """Every power device's live state, by name, and PUE now."""
    now = now or utcnow()
    tanks = _tanks(session)
    devices = session.exec(select(PowerDevice).order_by(PowerDevice.name)).all()
    return PowerStatus(devices=[device_live(DeviceFacts.of(d, tanks.get(d.id or 0)), now) for d in devices],
                       pue=pue_now(session), time=now)


def device_kw(readings: Mapping[str, Any], capacity_kw: float | None) -> float | None:
    """The kW a device's card shows (:func:`load_of`, to 0.1 kW): the one figure that the card, its
    chain node and PUE's sums all use, so the PUE note adds up to the cards beside it."""
    return _r(load_of(dict(readings), capacity_kw)[0])


# Kinds of device with an engine of their own: their output is on-site generation when it runs.
GENERATORS = frozenset({"drups", "genset"})


def generation_kw(kind: str, state: str, status: str, readings: Mapping[str, Any],
                  capacity_kw: float | None) -> float | None:
    """The kW a DRUPS or genset generates on site now: its output (as its card shows it) while its
    engine carries the load (state ``diesel``); ``None`` otherwise. During a mains outage the
    intake meter reads 0 kW, and this is what the facility runs on instead."""
    if kind not in GENERATORS or state != "diesel" or status != "ok":
        return None
    return device_kw(readings, capacity_kw)


def _downstream(start: int, succ: Mapping[int, list[int]]) -> set[int]:
    seen: set[int] = set()
    todo = list(succ.get(start, ()))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(succ.get(n, ()))
    return seen


def pue_now(session: Session) -> PueNow:
    """PUE from the latest readings of the chain's facility and IT nodes (answering devices only).

    Each side is the sum of its devices' kW exactly as their cards show it (:func:`device_kw`),
    so "IT power" is the sum of the IT cards (in the lab: the DRUPS and static UPS outputs, PUE
    category 1), not a figure from elsewhere. Facility power is one rule: what the grid intake
    (the facility nodes) delivers plus what is generated on site (:func:`generation_kw`) by a
    generator no facility meter already measures (:func:`on_site_generators`), summed by
    :func:`facility_kw`. So PUE still has a value during a mains outage, when the intake reads
    0 kW and the diesels carry the site."""
    joined = col(PowerDevice.id) == col(PowerNode.power_device_id)
    rows = session.exec(select(PowerNode, PowerDevice).join(PowerDevice, joined)
                        .where(PowerNode.pue_role != "none")).all()
    grid = it = 0.0
    have_f = have_i = False
    cats: list[int | None] = []
    seen: set[tuple[str, int]] = set()
    for node, dev in rows:
        kw = device_kw(dev.readings, dev.capacity_kw)
        if kw is None or dev.status != "ok" or (node.pue_role, dev.id or 0) in seen:
            continue
        seen.add((node.pue_role, dev.id or 0))  # a device on two nodes of one side counts once
        if node.pue_role == "facility":
            grid += kw
            have_f = True
        else:
            it += kw
            have_i = True
            cats.append(node.it_category)
    generation = _generation(session)
    facility = facility_kw(grid if have_f else None, generation)
    value = autonomy.pue(facility, it if have_i else None)
    return PueNow(pue=round(value, 3) if value else None,
                  facility_kw=round(facility, 1) if facility is not None else None,
                  it_kw=round(it, 1) if have_i else None, category=autonomy.pue_category(cats),
                  grid_kw=round(grid, 1) if have_f else None,
                  generation_kw=round(generation, 1) if generation is not None else None)


def facility_kw(grid_kw: float | None, generation_kw: float | None) -> float | None:
    """Facility power, the one rule PUE now (:func:`pue_now`) and per day (:func:`pue_daily`)
    share: what the grid intake delivers plus what is generated on site. ``None`` only when
    neither side has a figure; a side without one counts as nothing, so an outage (intake 0 kW,
    the diesels carrying the site) still has a facility figure."""
    if grid_kw is None and generation_kw is None:
        return None
    return (grid_kw or 0.0) + (generation_kw or 0.0)


def on_site_generators(session: Session) -> list[PowerDevice]:
    """The chain's generators (DRUPS, gensets) whose output counts as on-site generation: each
    device once, and only those that feed no facility meter (a meter downstream already measures
    what they deliver, and counting it twice would inflate PUE)."""
    joined = col(PowerDevice.id) == col(PowerNode.power_device_id)
    gens = session.exec(select(PowerNode, PowerDevice).join(PowerDevice, joined)
                        .where(col(PowerDevice.kind).in_(sorted(GENERATORS)))).all()
    if not gens:
        return []
    facility_nodes = set(session.exec(select(PowerNode.id).where(PowerNode.pue_role == "facility")).all())
    succ: dict[int, list[int]] = {}
    for a, b in session.exec(select(PowerEdge.from_node_id, PowerEdge.to_node_id)).all():
        succ.setdefault(a, []).append(b)
    out: dict[int, PowerDevice] = {}
    for node, dev in gens:
        if not _downstream(node.id or 0, succ) & facility_nodes:
            out.setdefault(dev.id or 0, dev)
    return list(out.values())


def _generation(session: Session) -> float | None:
    """Sum of :func:`generation_kw` over :func:`on_site_generators`; ``None`` when none of them
    generates now."""
    total: float | None = None
    for dev in on_site_generators(session):
        kw = generation_kw(dev.kind, dev.state, dev.status, dev.readings, dev.capacity_kw)
        if kw is not None:
            total = (total or 0.0) + kw
    return total


# --------------------------------------------------------------------------- the chain


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


def _edge_path(x1: int, y1: int, x2: int, y2: int) -> str:
    """An S-curve from the right side of the feeding node to the left side of the fed one
    (mirrored for right-to-left pages by the template's transform)."""
    sx, sy = x1 + CHAIN_NODE_W, y1 + CHAIN_NODE_H // 2
    tx, ty = x2, y2 + CHAIN_NODE_H // 2
    mid = (sx + tx) / 2
    return f"M{sx} {sy} C{mid:g} {sy} {mid:g} {ty} {tx} {ty}"


def _fed_devices(start: int, succ: Mapping[int, list[int]], device_of: Mapping[int, int | None],
                 known: Iterable[int]) -> list[int]:
    """The first devices a node feeds, looking through nodes without one of their own."""
    have = set(known)
    seen, found, queue = {start}, [], list(succ.get(start, []))
    while queue:
        n = queue.pop(0)
        if n in seen:
            continue
        seen.add(n)
        dev = device_of.get(n)
        if dev in have:
            found.append(dev or 0)
        else:
            queue.extend(succ.get(n, []))
    return found


def _node_live(node_id: int, kind: str, capacity_kw: float | None, dev: DeviceLive | None,
               fed: Sequence[DeviceLive] | None) -> NodeLive:
    """A node's state: its device's, a utility feed's judged from what it feeds, else none."""
    if dev is not None:
        # the node shows its device's kW (the card's figure) as a share of the node's own capacity
        kw = dev.kw
        pct = kw / capacity_kw * 100.0 if kw is not None and capacity_kw else load_of(dev.readings, capacity_kw)[1]
        return NodeLive(id=node_id, state=dev.state, tone=dev.tone, live=dev.live, kw=kw, pct=_r(pct))
    if kind == "utility":
        state, tone_, live = utility_state(fed or [])
        return NodeLive(id=node_id, state=state, tone=tone_, live=live, kw=None, pct=None)
    return NodeLive(id=node_id, state="none", tone="none", live=False, kw=None, pct=None)


def _site(sid: int | None, s: Site | None, members: Sequence[DeviceLive]) -> SiteLive:
    state = site_state(members)
    return SiteLive(id=sid, code=s.code if s else None, name_en=s.name_en if s else "",
                    name_ar=s.name_ar if s else "", state=state, tone=TONES.get(state, "unknown"),
                    not_live=sum(1 for d in members if not d.live), devices=len(members))


def power_view(session: Session, *, now: dt.datetime | None = None, outage_id: int | None = None,
               with_history: bool = True) -> PowerView | None:
    """Everything the power dashboard shows: each device's live state (as ``/power/status``) with
    the page's extras, the chain with its layout and each node's live colour, what every site
    runs on, PUE now, and (``with_history``) the recent power events and the outage records with
    the selected one's timeline. ``None`` when nothing is configured (no device, no chain node)."""
    now = now or utcnow()
    devices_db = session.exec(select(PowerDevice).order_by(PowerDevice.name)).all()
    nodes_db = session.exec(select(PowerNode).order_by(col(PowerNode.id)).limit(NODES_MAX)).all()
    if not devices_db and not nodes_db:
        return None
    node_ids = {n.id for n in nodes_db}
    edges_db = [e for e in session.exec(select(PowerEdge).order_by(col(PowerEdge.id))).all()
                if e.from_node_id in node_ids and e.to_node_id in node_ids]
    tanks = _tanks(session)
    site_ids = {d.site_id for d in devices_db} | {n.site_id for n in nodes_db}
    sites_db = {s.id: s for s in session.exec(select(Site).where(col(Site.id).in_([i for i in site_ids if i])))}

    devices: list[PowerViewDevice] = []
    by_id: dict[int, PowerViewDevice] = {}
    for d in devices_db:
        facts = DeviceFacts.of(d, tanks.get(d.id or 0))
        live = device_live(facts, now)
        site = sites_db.get(d.site_id)
        dev = PowerViewDevice(**dict(live), site_code=site.code if site else None, last_state=d.state,
                              capacity_kw=d.capacity_kw, message=d.message, fuel_reading=facts.fuel_reading)
        devices.append(dev)
        by_id[dev.id] = dev

    # The chain: layout, then each node's state from its telemetry source.
    rank = sorted(nodes_db, key=lambda n: (n.site_id or 0, _NODE_RANK.get(n.kind, 99), natural_key(n.name)))
    pairs = [(e.from_node_id, e.to_node_id) for e in edges_db]
    grid = chain_layout([n.id or 0 for n in rank], pairs)
    succ: dict[int, list[int]] = {}
    for a, b in pairs:
        succ.setdefault(a, []).append(b)
    device_of = {n.id or 0: n.power_device_id for n in nodes_db}
    cols = max((c for c, _r in grid.values()), default=0) + 1
    rows = max((r for _c, r in grid.values()), default=0) + 1

    nodes: list[ChainNode] = []
    for n in rank:
        c, r = grid[n.id or 0]
        own = by_id.get(n.power_device_id or 0)
        capacity = n.capacity_kw or (own.capacity_kw if own else None)
        fed: list[int] = (_fed_devices(n.id or 0, succ, device_of, by_id)
                          if own is None and n.kind == "utility" else [])
        state = _node_live(n.id or 0, n.kind, capacity, own, [by_id[i] for i in fed])
        nodes.append(ChainNode(
            **dict(state), name=n.name, kind=n.kind, site_id=n.site_id, device_id=own.id if own else None,
            device=own.name if own else None, capacity_kw=capacity, pue_role=n.pue_role, it_category=n.it_category,
            col=c, row=r, x=CHAIN_PAD + c * CHAIN_COL_W, y=CHAIN_PAD + r * CHAIN_ROW_H, derived_from=fed))

    pos = {n.id: n for n in nodes}
    edges = [ChainEdge(id=e.id or 0, from_=e.from_node_id, to=e.to_node_id,
                       path=_edge_path(pos[e.from_node_id].x, pos[e.from_node_id].y,
                                       pos[e.to_node_id].x, pos[e.to_node_id].y)) for e in edges_db]

    def site_key(sid: int | None) -> tuple[bool, str]:
        return (sid not in sites_db, sites_db[sid].code if sid in sites_db else "")

    sites = [_site(sid, sites_db.get(sid), [d for d in devices if d.site_id == sid])
             for sid in sorted({d.site_id for d in devices}, key=site_key)]
    open_row = session.exec(select(Outage.id, Outage.started_at).where(Outage.status == "open")
                            .order_by(col(Outage.started_at).desc())).first()
    view = PowerView(
        time=now, devices=devices, nodes=nodes, edges=edges, sites=sites, pue=pue_now(session),
        chain=ChainBox(width=2 * CHAIN_PAD + (cols - 1) * CHAIN_COL_W + CHAIN_NODE_W,
                       height=2 * CHAIN_PAD + (rows - 1) * CHAIN_ROW_H + CHAIN_NODE_H,
                       node_w=CHAIN_NODE_W, node_h=CHAIN_NODE_H),
        open_outage=OpenOutage(id=open_row[0], started_at=open_row[1]) if open_row else None)
    if with_history:
        view.events = power_events(session)
        view.outages, view.outage = power_outages(session, outage_id)
    return view


# --------------------------------------------------------------------------- the live message


@dataclass
class LiveContext:
    """What the live message needs beyond one device's reading, read once per poller refresh:
    every device's facts, the chain nodes each device colours and the sites."""

    facts: dict[int, DeviceFacts] = field(default_factory=dict)
    nodes: dict[int, list[tuple[int, str, float | None]]] = field(default_factory=dict)  # device → its nodes
    utilities: dict[int, list[int]] = field(default_factory=dict)  # meterless utility node → devices it feeds
    feeds_of: dict[int, list[int]] = field(default_factory=dict)  # device → meterless utility nodes fed from it
    sites: dict[int | None, Site | None] = field(default_factory=dict)
    site_devices: dict[int | None, list[int]] = field(default_factory=dict)


def live_context(session: Session) -> LiveContext:
    """The chain and sites as the live messages see them (refreshed with the poller's device list)."""
    tanks = _tanks(session)
    ctx = LiveContext()
    for d in session.exec(select(PowerDevice)).all():
        ctx.facts[d.id or 0] = DeviceFacts.of(d, tanks.get(d.id or 0))
        ctx.site_devices.setdefault(d.site_id, []).append(d.id or 0)
    nodes_db = session.exec(select(PowerNode).order_by(col(PowerNode.id)).limit(NODES_MAX)).all()
    node_ids = {n.id for n in nodes_db}
    succ: dict[int, list[int]] = {}
    for e in session.exec(select(PowerEdge).order_by(col(PowerEdge.id))).all():
        if e.from_node_id in node_ids and e.to_node_id in node_ids:
            succ.setdefault(e.from_node_id, []).append(e.to_node_id)
    device_of = {n.id or 0: n.power_device_id for n in nodes_db}
    for n in nodes_db:
        dev = n.power_device_id if n.power_device_id in ctx.facts else None
        if dev is not None:
            capacity = n.capacity_kw or ctx.facts[dev].capacity_kw
            ctx.nodes.setdefault(dev, []).append((n.id or 0, n.kind, capacity))
        elif n.kind == "utility":
            fed = _fed_devices(n.id or 0, succ, device_of, ctx.facts)
            ctx.utilities[n.id or 0] = fed
            for i in fed:
                ctx.feeds_of.setdefault(i, []).append(n.id or 0)
    site_ids = [i for i in ctx.site_devices if i]
    found = {s.id: s for s in session.exec(select(Site).where(col(Site.id).in_(site_ids)))}
    ctx.sites = {sid: found.get(sid) for sid in ctx.site_devices}
    return ctx


def live_message(ctx: LiveContext, facts: DeviceFacts, latest: Mapping[int, DeviceLive], now: dt.datetime
                 ) -> LiveMessage:
    """The stream's message for one reading: the device's live state (:func:`device_live`'s
    rule; the message is itself that device's :class:`DeviceLive`), its chain nodes, the utility
    feeds judged from it and its site's state. ``latest`` holds the other devices' last live
    states (those missing are taken from ``ctx`` as read). Validated once: it runs per reading."""
    live = LiveMessage(**_live_fields(facts, now), time=now)

    def other(i: int) -> DeviceLive:
        return live if i == live.id else latest.get(i) or device_live(ctx.facts[i], now)

    nodes = [_node_live(nid, kind, cap, live, None) for nid, kind, cap in ctx.nodes.get(live.id, ())]
    for nid in ctx.feeds_of.get(live.id, ()):
        nodes.append(_node_live(nid, "utility", None, None, [other(i) for i in ctx.utilities.get(nid, ())]))
    site = None
    if live.site_id in ctx.site_devices:
        site = _site(live.site_id, ctx.sites.get(live.site_id),
                     [other(i) for i in ctx.site_devices[live.site_id] if i in ctx.facts])
    live.nodes, live.site = nodes, site
    return live


def live_message_of(session: Session, device_id: int, now: dt.datetime | None = None) -> LiveMessage:
    """The live message of a device as its row stands (what the poller sends after writing it)."""
    now = now or utcnow()
    ctx = live_context(session)
    return live_message(ctx, ctx.facts[device_id], {}, now)


def with_reading(facts: DeviceFacts, *, status: str, state: str, flags: Iterable[str], last_ok: dt.datetime | None,
                 readings: dict[str, Any]) -> DeviceFacts:
    """``facts`` as a newer reading left them (the poller's memory of the device)."""
    return replace(facts, status=status, state=state, flags=tuple(sorted(flags)), last_ok=last_ok, readings=readings)


# --------------------------------------------------------------------------- events and outages


def power_events(session: Session, limit: int = EVENTS_SHOWN) -> list[PowerEvent]:
    """The latest power events (``power.*``), newest first, as the stream sends them."""
    rows = session.exec(select(Event).where(col(Event.kind).like("power.%"))
                        .order_by(col(Event.time).desc(), col(Event.id).desc()).limit(limit)).all()
    return [PowerEvent(time=e.time, kind=e.kind, severity=e.severity, message=e.message,
                       device=(e.data or {}).get("power_device") or "",
                       data=e.data if isinstance(e.data, dict) else {}) for e in rows]


def _since(start: dt.datetime, when: dt.datetime | None) -> float | None:
    return round((when - start).total_seconds(), 1) if when is not None else None


def outage_read(o: Outage) -> OutageRead:
    """An outage record with the seconds from its start to the diesel taking the load."""
    read = OutageRead.model_validate(o)
    if o.diesel_on_load_at:
        read.seconds_to_diesel = round((o.diesel_on_load_at - o.started_at).total_seconds(), 2)
    return read


def outages(session: Session, limit: int = 20) -> list[OutageRead]:
    """Outage records, newest first."""
    return [outage_read(o) for o in session.exec(select(Outage).order_by(col(Outage.id).desc()).limit(limit)).all()]


def _summary(o: Outage) -> OutageSummary:
    return OutageSummary(id=o.id or 0, site_id=o.site_id, status=o.status, started_at=o.started_at,
                         ended_at=o.ended_at, duration_s=_since(o.started_at, o.ended_at),
                         seconds_to_diesel=_since(o.started_at, o.diesel_on_load_at),
                         min_battery_charge=o.min_battery_charge, min_kinetic_level=o.min_kinetic_level,
                         diesel_run_s=o.diesel_run_s, fuel_used_l=o.fuel_used_l)


def power_outages(session: Session, selected: int | None = None, limit: int = OUTAGES_SHOWN
                  ) -> tuple[list[OutageSummary], OutageDetail | None]:
    """Outage records newest first, and the selected one (default: the newest) with its timeline:
    the phases (mains failed → kinetic/battery → diesel cranking → on load → mains restored →
    retransfer) at their offsets from the start, and every recorded event. An unknown id shows the newest."""
    rows = session.exec(select(Outage).order_by(col(Outage.started_at).desc(), col(Outage.id).desc())
                        .limit(limit)).all()
    chosen = next((o for o in rows if o.id == selected), None) or (session.get(Outage, selected) if selected else None)
    if chosen is None and rows:  # none asked for, or an id that does not exist: the newest
        chosen = rows[0]
    detail = None
    if chosen is not None:
        start = chosen.started_at
        events = []
        for item in chosen.timeline:
            try:
                when: dt.datetime | None = dt.datetime.fromisoformat(str(item.get("time")))
            except ValueError:
                when = None
            if when is not None and when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            events.append(TimelineItem(time=when, offset_s=_since(start, when), kind=str(item.get("kind", "")),
                                       device=str(item.get("device", "")), message=str(item.get("message", "")),
                                       data=item["data"] if isinstance(item.get("data"), dict) else {}))
        ride = next((e for e in events if e.kind in ("power.on_kinetic", "power.on_battery")), None)
        phases = [
            OutagePhase(phase="mains_failed", time=start, offset_s=0.0),
            OutagePhase(phase="ride_through", time=ride.time if ride else None,
                        offset_s=ride.offset_s if ride else None),
            *(OutagePhase(phase=p, time=t, offset_s=_since(start, t)) for p, t in (
                ("diesel_cranking", chosen.diesel_cranking_at), ("diesel_on_load", chosen.diesel_on_load_at),
                ("mains_restored", chosen.mains_restored_at), ("retransfer", chosen.ended_at))),
        ]
        detail = OutageDetail(**dict(_summary(chosen)), timeline=events,
                              ride_through=ride.kind.removeprefix("power.on_") if ride else None, phases=phases)
    return [_summary(o) for o in rows], detail


# --------------------------------------------------------------------------- series and PUE per day


def series(store: TelemetryStore, device_id: int, name: str, start: dt.datetime, end: dt.datetime,
           max_points: int) -> Series:
    """A reading of a device between ``start`` and ``end``, at the store's resolution for ``max_points``."""
    unit = CANONICAL[name][0]
    sid = store.series_of("power_device", device_id).get(name)
    if sid is None:
        return Series(resolution_s=0, points=[], unit=unit)
    res, pts = store.query(sid, int(start.timestamp() * 1000), int(end.timestamp() * 1000), max_points)
    return Series(resolution_s=res, unit=unit, points=[(p.ts_ms, p.min, p.avg, p.max) for p in pts])


def _kw_series(ids: Mapping[str, int], capacity_kw: float | None) -> tuple[int, str] | None:
    """(series id, reading name) of a device's stored power, in :func:`load_of`'s order:
    ``meter.power``, ``output.power``, ``ups.realpower`` (W), else ``ups.load`` with a capacity."""
    for name in ("meter.power", "output.power", "ups.realpower"):
        if name in ids:
            return ids[name], name
    if "ups.load" in ids and capacity_kw:
        return ids["ups.load"], "ups.load"
    return None


def _diesel_spans(session: Session, start: dt.datetime, end: dt.datetime) -> dict[int | None, list[tuple[int, int]]]:
    """Per site, the (ms, ms) spans in which its generators carried the load between ``start`` and
    ``end``: from an outage's diesel on load to its retransfer (still open: to ``end``). The
    readings store keeps numbers only, not states, so this is when a generator was ``diesel``."""
    rows = session.exec(select(Outage).where(col(Outage.diesel_on_load_at).is_not(None),
                                             col(Outage.diesel_on_load_at) < end)).all()
    spans: dict[int | None, list[tuple[int, int]]] = {}
    for o in rows:
        on, off = o.diesel_on_load_at, o.ended_at or end
        if on is None or off < start:
            continue
        on, off = (t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in (on, off))
        spans.setdefault(o.site_id, []).append((int(on.timestamp() * 1000), int(off.timestamp() * 1000)))
    return spans


def _day_mean(store: TelemetryStore, sid: int, d0: dt.datetime, d1: dt.datetime, kw_at: Any) -> float | None:
    """The mean over a day of ``kw_at(ms, value)`` on a series' stored points (``None`` without
    points; a point where ``kw_at`` gives ``None`` counts as 0 kW)."""
    _, pts = store.query(sid, int(d0.timestamp() * 1000), int(d1.timestamp() * 1000) - 1, 400)
    if not pts:
        return None
    return sum(kw_at(p.ts_ms, p.avg) or 0.0 for p in pts) / len(pts)


def pue_daily(session: Session, store: TelemetryStore, days: int, now: dt.datetime | None = None) -> PueDaily:
    """PUE per day over the last ``days`` (today included): the day's mean facility kW ÷ mean IT kW
    from the stored power readings, by the same rules as PUE now: the same devices, the same kW
    rule (:func:`load_of`), and facility = grid intake + on-site generation (:func:`facility_kw`),
    where a generator's stored output counts as generation (:func:`generation_kw`) while its site's
    outage had it on load. So an outage day's facility figure is not only what the intake saw.
    A day without stored readings on a side has ``None`` there, never 0: no data is shown as no
    data (``has_data`` is false when no day has a PUE)."""
    rows = session.exec(select(PowerNode, PowerDevice)
                        .join(PowerDevice, col(PowerDevice.id) == col(PowerNode.power_device_id))
                        .where(PowerNode.pue_role != "none")).all()
    end = now or utcnow()
    day0 = (end - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    sources: dict[tuple[str, int], tuple[int, str, float | None]] = {}
    for node, dev in rows:
        found = _kw_series(store.series_of("power_device", dev.id or 0), dev.capacity_kw)
        if found is not None:
            sources.setdefault((node.pue_role, dev.id or 0), (*found, dev.capacity_kw))
    generators = []
    for dev in on_site_generators(session):
        found = _kw_series(store.series_of("power_device", dev.id or 0), dev.capacity_kw)
        if found is not None:
            generators.append((dev, *found))
    spans = _diesel_spans(session, day0, end) if generators else {}
    out = []
    for i in range(days):
        d0 = day0 + dt.timedelta(days=i)
        d1 = d0 + dt.timedelta(days=1)
        sums: dict[str, float | None] = {"facility": None, "it": None}
        for (role, _dev), (sid, name, cap) in sources.items():
            mean = _day_mean(store, sid, d0, d1, lambda _ms, v, n=name, c=cap: load_of({n: v}, c)[0])
            if mean is not None:
                sums[role] = (sums[role] or 0.0) + mean
        generation: float | None = None
        for dev, sid, name in generators:
            site_spans = spans.get(dev.site_id, [])

            def generated(ms: int, v: float, dev: PowerDevice = dev, name: str = name,
                          site_spans: list[tuple[int, int]] = site_spans) -> float | None:
                state = "diesel" if any(a <= ms <= b for a, b in site_spans) else "mains"
                return generation_kw(dev.kind, state, "ok", {name: v}, dev.capacity_kw)

            if any(a < int(d1.timestamp() * 1000) and b >= int(d0.timestamp() * 1000) for a, b in site_spans):
                mean = _day_mean(store, sid, d0, d1, generated)
                if mean:
                    generation = (generation or 0.0) + mean
        f_kw, i_kw = facility_kw(sums["facility"], generation), sums["it"]
        value = f_kw / i_kw if f_kw and i_kw and f_kw > 0 and i_kw > 0 else None
        out.append(PueDay(day=d0.date(), pue=round(value, 3) if value else None,
                          facility_kw_avg=round(f_kw, 1) if f_kw is not None else None,
                          it_kw_avg=round(i_kw, 1) if i_kw is not None else None,
                          grid_kw_avg=_r(sums["facility"]), generation_kw_avg=_r(generation)))
    cats = [n.it_category for n, _d in rows if n.pue_role == "it" and n.it_category]
    return PueDaily(days=out, category=min(cats) if cats else None,
                    has_data=any(d.pue is not None for d in out))


# --------------------------------------------------------------------------- the readings chart

# The ranges of the readings chart: key → (seconds, max_points asked of /api/v1/power/series). The
# point budgets pick the store's resolution (TelemetryStore.resolution_for): 1 h of raw samples,
# 6 h and 24 h of 5-minute roll-ups, 7 days of 5-minute and 90 days of hourly ones.
CHART_RANGES: dict[str, tuple[int, int]] = {
    "1h": (3600, 720), "6h": (6 * 3600, 600), "24h": (86400, 600), "7d": (7 * 86400, 2016), "90d": (90 * 86400, 2160),
}
CHART_DEFAULT_RANGE = "1h"
CHART_LIVE_MAX_S = 6 * 3600  # ranges up to this are redrawn every few seconds
CHART_DEFAULT_READING = "battery.charge"


def chart_readings(session: Session, devices: Sequence[DeviceLive]) -> dict[int, list[str]]:
    """Device id → the canonical numeric readings it can chart, in ``CANONICAL``'s order: those
    stored in the telemetry store (one query for every device) and those it reports now."""
    stored: dict[int, set[str]] = {}
    for source_id, name in session.exec(select(MetricSeries.source_id, MetricSeries.name)
                                        .where(MetricSeries.source_kind == "power_device")).all():
        stored.setdefault(int(source_id), set()).add(name)
    order = {name: i for i, name in enumerate(CANONICAL)}
    out: dict[int, list[str]] = {}
    for d in devices:
        names = set(stored.get(d.id, set()))
        names |= {k for k, v in d.readings.items() if _num(v) is not None}
        out[d.id] = sorted((n for n in names if n in CANONICAL and CANONICAL[n][0] != "text"), key=order.__getitem__)
    return out


def critical_ids(session: Session) -> set[int]:
    """The ids of the devices marked critical (polled every second)."""
    return {i for i, c in session.exec(select(PowerDevice.id, PowerDevice.critical)).all() if c and i is not None}
