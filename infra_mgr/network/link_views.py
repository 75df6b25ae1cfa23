"""Read views of the branch link audit: each branch's verdict with its uplinks and devices, one
link's history as chart series, its flap history, and the management report's CSV.

The API serves these models, the dashboard's Links page renders them and ``infra-mgr audit links``
prints them, so a branch is "degraded, errors 0.8 %" in the same words everywhere. They read only
stored data (the uplink tables, the telemetry store) and gather it in a fixed handful of queries
whatever the number of branches: the city's 63 branches and ~130 uplinks cost the same few round
trips as one branch.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infra_mgr.common import epoch_ms
from infra_mgr.inventory.models import Device, DeviceStatus, Interface, Site, SiteKind, SiteStatus
from infra_mgr.network.audit import AuditThresholds, Translate, audit_branch, rank, reason_text, thresholds_from
from infra_mgr.network.linkfacts import (
    DEVICE_SERIES_KIND,
    IF_SERIES_KIND,
    S_ERROR_PCT,
    S_ERRORS_PS,
    S_LOSS_PCT,
    S_PKTS_PS,
    S_RTT_MS,
    S_SNMP_LOSS_PCT,
    S_UTIL_PCT,
    SERIES_UNITS,
    AuditState,
    BranchAudit,
    BranchFacts,
    LinkFacts,
    ReachFacts,
)
from infra_mgr.network.models import DevicePoll, DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.telemetry.models import MetricRollup, MetricSample, MetricSeries
from infra_mgr.telemetry.store import FIVE_MIN, RAW, Point, TelemetryStore
from infra_mgr.telemetry.store import now_ms as clock_ms

DAY_MS = 86_400_000
IF_CHART_SERIES = ("in_bps", "out_bps", "util_pct", "errors_ps", "discards_ps", "error_pct", "oper_up",
                   "rx_dbm", "tx_dbm")


# --------------------------------------------------------------------------- models


class UplinkRead(BaseModel):
    """One uplink (or an interface a person took out of the audit: ``is_uplink`` false) as last polled."""

    interface_id: int
    device_id: int
    device: str
    interface: str
    site_code: str
    source: str
    is_uplink: bool
    manual: bool
    expected_speed_bps: int | None
    expected_speed_source: str
    expected_neighbor: str
    expected_neighbor_source: str
    oper_status: str
    oper_since: dt.datetime | None
    speed_bps: int | None
    neighbor: str
    in_bps: float | None
    out_bps: float | None
    util_pct: float | None
    error_pct: float | None
    errors_ps: float | None
    discards_ps: float | None
    rx_dbm: float | None
    tx_dbm: float | None
    flaps_24h: int
    last_ok: dt.datetime | None
    poll_status: str
    note: str


class ReachRead(BaseModel):
    """A branch device's reachability over the loss window (means of its probe cycles)."""

    device: str
    device_id: int
    icmp_loss_pct: float | None
    snmp_loss_pct: float | None
    rtt_ms: float | None
    last: dt.datetime | None


class BranchAuditRead(BranchAudit):
    """The verdict with its evidence: the uplinks and devices it was drawn from."""

    site_id: int
    uplinks_detail: list[UplinkRead]
    reach: list[ReachRead]


class AuditSummary(BaseModel):
    counts: dict[AuditState, int]
    total: int
    generated_at: dt.datetime


class SeriesRead(BaseModel):
    name: str
    unit: str
    points: list[tuple[int, float, float, float]]  # (time ms, min, avg, max)


class LinkSeriesRead(BaseModel):
    interface_id: int
    device: str
    interface: str
    start_ms: int
    end_ms: int
    resolution_s: int  # 0: raw samples
    series: list[SeriesRead]


class StatusChangeRead(BaseModel):
    at: dt.datetime
    status: str
    previous: str
    transitions: int


# --------------------------------------------------------------------------- helpers


def _dt(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def p95(values: Sequence[float]) -> float | None:
    """Nearest-rank 95th percentile (the value 95 % of the buckets stay at or below)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _window_means(session: Session, kind: str, ids: Iterable[int], names: Sequence[str], since_ms: int,
                  until_ms: int) -> dict[tuple[int, str], tuple[float, int, int, int]]:
    """(source id, name) → (mean, samples, last time ms, samples above zero) of the raw samples in
    the window: one query."""
    ids = list(ids)
    if not ids:
        return {}
    s, m = MetricSample, MetricSeries
    rows = session.execute(sa_select(col(m.source_id), col(m.name), func.avg(col(s.value)), func.count(),
                                  func.max(col(s.ts_ms)), func.sum(case((col(s.value) > 0, 1), else_=0)))
                        .join(s, col(s.series_id) == col(m.id))
                        .where(col(m.source_kind) == kind, col(m.source_id).in_(ids), col(m.name).in_(names),
                               col(s.ts_ms) > since_ms, col(s.ts_ms) <= until_ms)
                        .group_by(col(m.source_id), col(m.name))).all()
    return {(int(sid), str(name)): (float(avg), int(n), int(last), int(pos or 0))
            for sid, name, avg, n, last, pos in rows}


def _error_share(means: dict[tuple[int, str], tuple[float, int, int, int]], interface_id: int) -> float | None:
    """Errors as % of the packets over the window: all the window's errors over all its packets (the
    samples are per-cycle rates over equal intervals, so a ratio of means is a ratio of sums). Not
    the mean of each sample's share: one quiet night minute with 2 errors in 4 packets would weigh
    as much as a busy hour. Series written before packets were kept fall back to that mean."""
    errors, packets = means.get((interface_id, S_ERRORS_PS)), means.get((interface_id, S_PKTS_PS))
    if errors is not None and packets is not None and packets[1] == errors[1]:
        total = errors[0] + packets[0]
        return 100.0 * errors[0] / total if total > 0 else 0.0
    share = means.get((interface_id, S_ERROR_PCT))
    return share[0] if share else None


def _util_p95(session: Session, interface_ids: Sequence[int], since_ms: int, until_ms: int) -> dict[int, float]:
    """p95 of 5-minute utilisation per interface over the window: the 5-minute roll-ups, plus the raw
    samples newer than a series' last roll-up grouped into 5-minute buckets here (the roll-up job runs
    on its own schedule; the newest minutes must count). Only the top slice of each series' buckets
    leaves the database (a window function ranks them), not a week of buckets per link."""
    if not interface_ids:
        return {}
    m, r, s = MetricSeries, MetricRollup, MetricSample
    series: dict[int, int] = {int(a): int(b) for a, b in session.execute(sa_select(col(m.id), col(m.source_id)).where(
        col(m.source_kind) == IF_SERIES_KIND, col(m.name) == S_UTIL_PCT, col(m.source_id).in_(interface_ids))).all()}
    if not series:
        return {}
    width = FIVE_MIN * 1000
    last_bucket: dict[int, int] = {int(a): int(b) for a, b in session.execute(
        sa_select(col(r.series_id), func.max(col(r.bucket_ms))).where(
        col(r.series_id).in_(series), col(r.resolution_s) == FIVE_MIN).group_by(col(r.series_id))).all()}
    # Raw samples newer than each series' last roll-up bucket (all of the window when there is none).
    tail_from = min((int(last_bucket.get(sid, since_ms - width)) + width for sid in series), default=since_ms)
    raw = session.execute(sa_select(col(s.series_id), col(s.ts_ms), col(s.value)).where(
        col(s.series_id).in_(series), col(s.ts_ms) >= max(tail_from, since_ms), col(s.ts_ms) <= until_ms)).all()
    tail: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for sid, ts, value in raw:
        start = int(last_bucket.get(sid, since_ms - width)) + width
        if ts >= start:
            tail[int(sid)][(int(ts) // width) * width].append(float(value))
    extra = {sid: [sum(v) / len(v) for v in buckets.values()] for sid, buckets in tail.items()}
    margin = max((len(v) for v in extra.values()), default=0) + 2
    rn = func.row_number().over(partition_by=col(r.series_id), order_by=col(r.avg).desc()).label("rn")
    n = func.count().over(partition_by=col(r.series_id)).label("n")
    ranked = sa_select(col(r.series_id).label("sid"), col(r.avg).label("v"), rn, n).where(
        col(r.series_id).in_(series), col(r.resolution_s) == FIVE_MIN, col(r.bucket_ms) > since_ms - width,
        col(r.bucket_ms) <= until_ms).subquery()
    # The top ceil(5 % of all buckets) + margin values of each series decide its p95.
    top = session.execute(sa_select(ranked.c.sid, ranked.c.v, ranked.c.n).where(
        ranked.c.rn <= func.floor(ranked.c.n * 0.05) + margin)).all()
    counts: dict[int, int] = {}
    tops: dict[int, list[float]] = defaultdict(list)
    for sid, v, cnt in top:
        counts[int(sid)] = int(cnt)
        tops[int(sid)].append(float(v))
    out: dict[int, float] = {}
    for sid, iface in series.items():
        total = counts.get(sid, 0) + len(extra.get(sid, []))
        if total == 0:
            continue
        values = sorted(tops.get(sid, []) + extra.get(sid, []), reverse=True)
        k = max(1, math.ceil(0.95 * total))  # nearest rank from the bottom → (total - k + 1)-th from the top
        idx = min(total - k, len(values) - 1)
        out[int(iface)] = values[idx]
    return out


def _uplink_rows(session: Session, site_ids: Sequence[int] | None, device_id: int | None = None,
                 interface_id: int | None = None) -> list[tuple[Uplink, UplinkState | None, str, str, str, int]]:
    """Uplink rows with their state, interface name, hostname, site code and site id: one query."""
    stmt = (sa_select(Uplink, UplinkState, col(Interface.name), col(Device.hostname), col(Site.code), col(Site.id))
            .join(Interface, col(Interface.id) == col(Uplink.interface_id))
            .join(Device, col(Device.id) == col(Uplink.device_id))
            .join(Site, col(Site.id) == col(Uplink.site_id))
            .outerjoin(UplinkState, col(UplinkState.interface_id) == col(Uplink.interface_id)))
    if site_ids is not None:
        stmt = stmt.where(col(Uplink.site_id).in_(site_ids))
    if device_id is not None:
        stmt = stmt.where(col(Uplink.device_id) == device_id)
    if interface_id is not None:
        stmt = stmt.where(col(Uplink.interface_id) == interface_id)
    rows = session.execute(stmt.order_by(col(Site.code), col(Device.hostname), col(Interface.name))).all()
    return [(u, st, str(name), str(host), str(code), int(sid or 0)) for u, st, name, host, code, sid in rows]


def _flaps(session: Session, interface_ids: Sequence[int], since_ms: int) -> dict[int, int]:
    if not interface_ids:
        return {}
    since = _dt(since_ms)
    rows = session.execute(sa_select(col(LinkStatusChange.interface_id), func.sum(col(LinkStatusChange.transitions)))
                        .where(col(LinkStatusChange.interface_id).in_(interface_ids),
                               col(LinkStatusChange.at) > since)
                        .group_by(col(LinkStatusChange.interface_id))).all()
    return {int(i): int(n or 0) for i, n in rows}


def _uplink_read(u: Uplink, st: UplinkState | None, name: str, host: str, code: str, flaps: int) -> UplinkRead:
    return UplinkRead(
        interface_id=u.interface_id, device_id=u.device_id, device=host, interface=name, site_code=code,
        source=u.source, is_uplink=u.is_uplink, manual=u.manual, expected_speed_bps=u.expected_speed_bps,
        expected_speed_source=u.expected_speed_source, expected_neighbor=u.expected_neighbor,
        expected_neighbor_source=u.expected_neighbor_source,
        oper_status=st.oper_status if st else "unknown", oper_since=st.oper_since if st else None,
        speed_bps=st.speed_bps if st else None, neighbor=st.neighbor if st else "",
        in_bps=st.in_bps if st else None, out_bps=st.out_bps if st else None, util_pct=st.util_pct if st else None,
        error_pct=st.error_pct if st else None, errors_ps=st.errors_ps if st else None,
        discards_ps=st.discards_ps if st else None, rx_dbm=st.rx_dbm if st else None,
        tx_dbm=st.tx_dbm if st else None, flaps_24h=flaps, last_ok=_dt(st.last_ok_ms) if st else None,
        poll_status=st.poll_status if st else "never", note=st.note if st else "")


def _audited_sites(session: Session, site_code: str | None) -> list[Site]:
    """Every live branch, or the one site asked for (whatever its kind: a person asked for it)."""
    stmt = select(Site)
    if site_code is not None:
        stmt = stmt.where(col(Site.code) == site_code)
    else:
        stmt = stmt.where(col(Site.kind) == SiteKind.branch.value,
                          col(Site.status) != SiteStatus.decommissioned.value)
    return list(session.exec(stmt.order_by(col(Site.code))).all())


# --------------------------------------------------------------------------- the audit


def audit_branches(session: Session, store: TelemetryStore | None = None, *, site_code: str | None = None,
                   now_ms: int | None = None, thresholds: AuditThresholds | None = None) -> list[BranchAuditRead]:
    """Every branch's audit (or one site's), worst first. ``store`` is accepted for symmetry with the
    series view; the audit reads the telemetry tables through ``session`` in the same transaction."""
    del store
    now = now_ms if now_ms is not None else clock_ms()
    th = thresholds or _default_thresholds()
    sites = _audited_sites(session, site_code)
    if not sites:
        return []
    site_ids = [s.id or 0 for s in sites]
    uplinks = _uplink_rows(session, site_ids)
    audited = [row for row in uplinks if row[0].is_uplink]
    if_ids = [u.interface_id for u, *_ in uplinks]
    flaps = _flaps(session, if_ids, now - DAY_MS)
    errs = _window_means(session, IF_SERIES_KIND, [u.interface_id for u, *_ in audited],
                         [S_ERROR_PCT, S_ERRORS_PS, S_PKTS_PS],
                         now - th.error_window_s * 1000, now)
    util = _util_p95(session, [u.interface_id for u, *_ in audited], now - th.util_window_s * 1000, now)

    # Devices probed for reachability: those holding an uplink, and any other with a probe row.
    devices: dict[int, tuple[str, int]] = {u.device_id: (host, sid) for u, _, _, host, _, sid in audited}
    for dev_id, host, sid in session.exec(select(Device.id, Device.hostname, Device.site_id)
                                          .join(DeviceReach, col(DeviceReach.device_id) == col(Device.id))
                                          .where(col(Device.site_id).in_(site_ids))).all():
        devices.setdefault(int(dev_id or 0), (str(host), int(sid)))
    since = now - th.loss_window_s * 1000
    means = _window_means(session, DEVICE_SERIES_KIND, devices, [S_LOSS_PCT, S_SNMP_LOSS_PCT, S_RTT_MS], since, now)
    last_probe = {r.device_id: r for r in session.exec(select(DeviceReach).where(
        col(DeviceReach.device_id).in_(list(devices)))).all()}

    by_site_links: dict[int, list[LinkFacts]] = defaultdict(list)
    by_site_detail: dict[int, list[UplinkRead]] = defaultdict(list)
    for u, st, name, host, code, sid in uplinks:
        read = _uplink_read(u, st, name, host, code, flaps.get(u.interface_id, 0))
        by_site_detail[sid].append(read)
        if not u.is_uplink:
            continue
        err_share = _error_share(errs, u.interface_id)
        by_site_links[sid].append(LinkFacts(
            interface_id=u.interface_id, device=host, interface=name, oper_status=read.oper_status,
            oper_since_ms=epoch_ms(read.oper_since), flaps_24h=read.flaps_24h,
            error_pct=err_share if err_share is not None else read.error_pct, speed_bps=read.speed_bps,
            expected_speed_bps=u.expected_speed_bps, expected_speed_source=u.expected_speed_source,
            neighbor=read.neighbor, expected_neighbor=u.expected_neighbor,
            expected_neighbor_source=u.expected_neighbor_source, util_p95_pct=util.get(u.interface_id),
            last_sample_ms=st.last_ok_ms if st else None, note=read.note))

    by_site_reach: dict[int, list[tuple[ReachFacts, ReachRead]]] = defaultdict(list)
    for dev_id, (host, sid) in sorted(devices.items(), key=lambda kv: kv[1][0]):
        by_site_reach[sid].append(_reach(dev_id, host, means, last_probe.get(dev_id), since))

    with_uplink = {u.device_id for u, *_ in uplinks}  # any row: "not an uplink" is a person's decision
    unwatched: dict[int, list[str]] = defaultdict(list)
    for dev_id, host, sid, protocol in session.exec(
            select(Device.id, Device.hostname, Device.site_id, DevicePoll.protocol)
            .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
            .where(col(Device.site_id).in_(site_ids), col(Device.status) != DeviceStatus.decommissioned.value)).all():
        # a device read over SSH holds no uplink by design (no SNMP counters): its reachability is its watch
        if dev_id not in with_uplink and protocol != "ssh":
            unwatched[int(sid)].append(str(host))

    out = []
    for site in sites:
        sid = site.id or 0
        branch = BranchFacts(site_code=site.code, site_name_en=site.name_en, site_name_ar=site.name_ar, now_ms=now,
                             links=by_site_links.get(sid, []), reach=[f for f, _ in by_site_reach.get(sid, [])],
                             devices_without_uplink=unwatched.get(sid, []))
        verdict = audit_branch(branch, th)
        out.append(BranchAuditRead(**verdict.model_dump(), site_id=sid, uplinks_detail=by_site_detail.get(sid, []),
                                   reach=[r for _, r in by_site_reach.get(sid, [])]))
    return rank(out)


def _reach(dev_id: int, host: str, means: dict[tuple[int, str], tuple[float, int, int, int]],
           probe: DeviceReach | None, since_ms: int) -> tuple[ReachFacts, ReachRead]:
    """A device's reachability over the window: the means of its telemetry samples; without any,
    its last stored probe when that falls in the window (one cycle is still evidence)."""
    icmp, snmp, rtt = (means.get((dev_id, n)) for n in (S_LOSS_PCT, S_SNMP_LOSS_PCT, S_RTT_MS))
    icmp_pct, snmp_pct = (icmp[0] if icmp else None), (snmp[0] if snmp else None)
    rtt_ms = rtt[0] if rtt else None
    probes = max(icmp[1] if icmp else 0, snmp[1] if snmp else 0)
    lossy = max(icmp[3] if icmp else 0, snmp[3] if snmp else 0)  # cycles that lost a probe (at least)
    last = max((x[2] for x in (icmp, snmp, rtt) if x), default=None)
    if probes == 0 and probe is not None and probe.ts_ms > since_ms:
        icmp_pct = 100.0 * (probe.icmp_sent - probe.icmp_received) / probe.icmp_sent if probe.icmp_sent else None
        snmp_pct = 100.0 * (probe.snmp_sent - probe.snmp_received) / probe.snmp_sent if probe.snmp_sent else None
        rtt_ms = probe.icmp_rtt_ms if probe.icmp_rtt_ms is not None else probe.snmp_rtt_ms
        probes, last = 1, probe.ts_ms
        lossy = int(bool(icmp_pct) or bool(snmp_pct))
    if last is None and probe is not None and probe.ts_ms:
        last = probe.ts_ms
    return (ReachFacts(device=host, icmp_loss_pct=icmp_pct, snmp_loss_pct=snmp_pct, rtt_ms=rtt_ms, probes=probes,
                       last_sample_ms=last, lossy_cycles=lossy),
            ReachRead(device=host, device_id=dev_id, icmp_loss_pct=icmp_pct, snmp_loss_pct=snmp_pct, rtt_ms=rtt_ms,
                      last=_dt(last)))


def _default_thresholds() -> AuditThresholds:
    from infra_mgr.config import get_settings

    return thresholds_from(get_settings())


def audit_summary(session: Session, store: TelemetryStore | None = None, *, site_code: str | None = None,
                  now_ms: int | None = None, thresholds: AuditThresholds | None = None,
                  audits: list[BranchAuditRead] | None = None) -> AuditSummary:
    """How many branches are in each state (every state present, zero or not)."""
    now = now_ms if now_ms is not None else clock_ms()
    if audits is None:
        audits = audit_branches(session, store, site_code=site_code, now_ms=now, thresholds=thresholds)
    counts = {state: 0 for state in AuditState}
    for a in audits:
        counts[a.state] += 1
    return AuditSummary(counts=counts, total=len(audits), generated_at=_dt(now) or dt.datetime.now(dt.UTC))


def uplinks(session: Session, *, site_code: str | None = None, device: str | None = None) -> list[UplinkRead]:
    """Uplinks (and interfaces kept out by hand) with their last polled state; filter by site and device."""
    site_ids: list[int] | None = None
    if site_code is not None:
        site_ids = [int(i or 0) for i in session.exec(select(Site.id).where(col(Site.code) == site_code)).all()]
    device_id: int | None = None
    if device is not None:
        found = session.exec(select(Device.id).where(col(Device.hostname) == device)).first()
        if found is None:
            return []
        device_id = int(found)
    rows = _uplink_rows(session, site_ids, device_id)
    flaps = _flaps(session, [u.interface_id for u, *_ in rows], clock_ms() - DAY_MS)
    return [_uplink_read(u, st, name, host, code, flaps.get(u.interface_id, 0))
            for u, st, name, host, code, _ in rows]


def interface_id_of(session: Session, device: str, interface: str) -> int | None:
    """The id of a device's interface named so (None when there is none)."""
    found = session.exec(select(Interface.id).join(Device, col(Device.id) == col(Interface.device_id))
                         .where(col(Device.hostname) == device, col(Interface.name) == interface)).first()
    return int(found) if found is not None else None


def uplink(session: Session, interface_id: int) -> UplinkRead | None:
    """One uplink row (None when the interface has none)."""
    rows = _uplink_rows(session, None, interface_id=interface_id)
    if not rows:
        return None
    u, st, name, host, code, _ = rows[0]
    flaps = _flaps(session, [interface_id], clock_ms() - DAY_MS)
    return _uplink_read(u, st, name, host, code, flaps.get(interface_id, 0))


# --------------------------------------------------------------------------- one link's history


def interface_label(session: Session, interface_id: int) -> tuple[str, str] | None:
    """(hostname, interface name) of an interface, None when there is no such interface."""
    row = session.exec(select(Device.hostname, Interface.name).join(Device, col(Device.id) == col(Interface.device_id))
                       .where(col(Interface.id) == interface_id)).first()
    return (str(row[0]), str(row[1])) if row else None


def _tail_points(store: TelemetryStore, series_id: int, after_ms: int, end_ms: int, res: int) -> list[Point]:
    """Raw samples newer than the last roll-up, grouped into buckets of the chart's resolution, so the
    newest minutes show before the roll-up job has run."""
    _, raw = store.query(series_id, after_ms, end_ms, resolution=RAW)
    width = res * 1000
    buckets: dict[int, list[float]] = defaultdict(list)
    for p in raw:
        buckets[(p.ts_ms // width) * width].append(p.avg)
    return [Point(b, min(v), sum(v) / len(v), max(v)) for b, v in sorted(buckets.items())]


def link_series(session: Session, store: TelemetryStore, interface_id: int, start_ms: int, end_ms: int,
                names: Sequence[str] | None = None, max_points: int = 600,
                now_ms: int | None = None) -> LinkSeriesRead | None:
    """One uplink's chart data at the store's resolution for the range (raw, 5-minute or hourly);
    None when the interface does not exist. Series never written are left out."""
    label = interface_label(session, interface_id)
    if label is None:
        return None
    now = now_ms if now_ms is not None else clock_ms()
    res = store.resolution_for(start_ms, end_ms, max_points, now=now, kind=IF_SERIES_KIND)
    have = store.series_of(IF_SERIES_KIND, interface_id)
    wanted = [n for n in (names or IF_CHART_SERIES) if n in have]
    out = []
    for name in wanted:
        _, pts = store.query(have[name], start_ms, end_ms, resolution=res)
        if res != RAW:
            after = (pts[-1].ts_ms + res * 1000) if pts else start_ms
            if after <= end_ms:
                pts += _tail_points(store, have[name], after, end_ms, res)
        out.append(SeriesRead(name=name, unit=SERIES_UNITS.get(name, ""),
                              points=[(p.ts_ms, p.min, p.avg, p.max) for p in pts]))
    return LinkSeriesRead(interface_id=interface_id, device=label[0], interface=label[1], start_ms=start_ms,
                          end_ms=end_ms, resolution_s=res, series=out)


def flap_history(session: Session, interface_id: int, since: dt.datetime | None = None,
                 limit: int = 200) -> list[StatusChangeRead]:
    """An uplink's status changes, newest first."""
    stmt = select(LinkStatusChange).where(col(LinkStatusChange.interface_id) == interface_id)
    if since is not None:
        stmt = stmt.where(col(LinkStatusChange.at) >= since)
    rows = session.exec(stmt.order_by(col(LinkStatusChange.at).desc(), col(LinkStatusChange.id).desc())
                        .limit(limit)).all()
    return [StatusChangeRead(at=r.at, status=r.status, previous=r.previous, transitions=r.transitions) for r in rows]


# --------------------------------------------------------------------------- the management report


def audit_csv(audits: Iterable[BranchAudit], t: Translate) -> str:
    """One row per branch: code, name, state, score, uplinks and the reasons in ``t``'s language.
    Starts with a UTF-8 byte-order mark: without it Excel reads the file as the local code page
    and the Arabic names and sentences come out garbled."""
    lang = getattr(t, "lang", "en")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([t("audit.csv.site"), t("audit.csv.name"), t("audit.csv.state"), t("audit.csv.score"),
                t("audit.csv.uplinks"), t("audit.csv.reasons")])
    for a in audits:
        name = a.site_name_ar if lang == "ar" and a.site_name_ar else a.site_name_en
        reasons = "; ".join(_reason_line(r, t) for r in a.reasons)
        w.writerow([_cell(a.site_code), _cell(name), t(f"audit.state.{a.state.value}"), a.score, a.uplinks,
                    _cell(reasons)])
    return "\ufeff" + buf.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula (a site name or an
    interface alias can be anything) gets a leading apostrophe, which Excel and LibreOffice hide."""
    return "'" + text if text.lstrip(" ").startswith(_FORMULA_START) else text


def _reason_line(reason: Any, t: Translate) -> str:
    text = reason_text(reason, t)
    return f"{reason.device}: {text}" if reason.device and reason.device not in text else text
