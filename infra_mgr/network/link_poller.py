"""The link poller: every branch uplink's counters and status, and every branch device's reachability.

One cycle (every ``link_poll_interval_s``, 60 s by default):

1. read the plan from the database: active uplinks with their interface index, their device's
   address and SNMP credential (decrypted in memory only, as discovery does), the stored state of
   each uplink (the previous counters: a restarted poller continues from them) and what LLDP/CDP
   sees on each uplink now;
2. ask every device once for all its uplinks (``ifpoll.poll_many``, bounded concurrency) and, at
   the same time, probe the reachability of every branch device (ICMP echoes where they may be
   sent, and single SNMP GETs of sysUpTime without retry; a device read over SSH has no SNMP
   agent by design and is probed by ICMP alone);
3. judge in memory: rates against the stored counters (``counters.rates``: a counter reset, a
   reboot or a gap gives a marked sample, never a spike), oper-status transitions
   (``counters.transitions``), flaps over 24 h;
4. write everything in **one** transaction: ``UplinkState``, ``LinkStatusChange`` and events for
   status changes (``link.down``, ``link.up``, ``link.flapping``, ``link.stable``), ``DeviceReach``
   and the telemetry samples (series names from :mod:`infra_mgr.network.linkfacts`).

A flapping link (transitions in 24 h at the audit's threshold) would otherwise raise a critical
``link.down`` whenever a poll happens to catch it down: once it flaps, its down/up events are held
back. ``link.flapping`` is raised once when it starts, and one closing event once it has gone
``flap_hold_s`` without a transition: ``link.stable`` when it settled up, ``link.down`` when it
settled down. Both are derived from the stored status changes, so a restarted poller agrees.

A device that times out, refuses our credential or answers nonsense is marked on its uplinks'
states (``poll_status`` and ``note``) and the cycle goes on. ``run()`` never stacks cycles: one that
overruns the interval is followed at once by the next, and the missed starts are logged. The
telemetry roll-up runs after each cycle and pruning hourly (scheduled here until a general scheduler
exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Engine, and_, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from infra_mgr.db import write_session
from infra_mgr.events.service import record as record_event
from infra_mgr.inventory.models import Device, DeviceStatus, Interface, Site, SiteKind
from infra_mgr.network import linkfacts as lf
from infra_mgr.network.linkfacts import COUNTERS, CounterSnapshot, InterfacePoll, RateResult, ReachResult
from infra_mgr.network.models import DevicePoll, DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.snmp.engine import SnmpEngine
from infra_mgr.snmp.target import SnmpTarget
from infra_mgr.telemetry.models import MetricSample, MetricSeries
from infra_mgr.telemetry.store import TelemetryStore

log = logging.getLogger("infra_mgr.network.links")

FLAP_WINDOW_MS = 24 * 3600 * 1000
FLAPPING_AT = 3  # transitions in 24 h that make a link "flapping": the audit's default (setting link_audit)
FLAP_HOLD_S = 900.0  # a flapping link counts as settled after this long without a transition
PRUNE_EVERY_S = 3600.0
POLL_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class UplinkRef:
    interface_id: int
    device_id: int
    site_id: int
    name: str
    if_index: int | None
    speed_bps: int | None  # the interface's speed as discovered (the running speed until polled)


@dataclass
class DeviceJob:
    device_id: int
    hostname: str
    site_id: int
    address: str
    target: SnmpTarget | None
    uplinks: list[UplinkRef] = field(default_factory=list)
    ssh: bool = False  # read over SSH (DevicePoll.protocol): no SNMP agent, no counters


@dataclass
class Plan:
    jobs: list[DeviceJob]
    reach: list[DeviceJob]  # every branch device with an address
    states: dict[int, UplinkState]  # filled inside the cycle's write transaction (rows attached to it)
    flaps_24h: dict[int, int]
    neighbors: dict[int, str]
    last_change_ms: dict[int, int] = field(default_factory=dict)  # the latest transition within 24 h


@dataclass
class CycleResult:
    """What one cycle did: counts for logs and benches, and which devices failed and why."""

    ts_ms: int
    devices: int = 0
    uplinks: int = 0
    polled_ok: int = 0  # uplinks with a fresh sample
    rates: int = 0  # uplinks whose sample gave rates
    failed: dict[str, str] = field(default_factory=dict)  # hostname -> error kind
    transitions: int = 0
    events: int = 0
    reach: int = 0
    samples: int = 0
    seconds: float = 0.0


def _secrets_target(kind: str, username: str, secrets: dict[str, Any], address: str) -> SnmpTarget:
    port = int(secrets.get("port") or 161)
    if kind == "snmp_v2c":
        return SnmpTarget(address=address, port=port, version="2c", community=secrets.get("community", ""),
                          timeout_s=POLL_TIMEOUT_S, retries=1)
    return SnmpTarget(address=address, port=port, version="3", user=username, auth_proto=secrets.get("auth_proto"),
                      auth_key=secrets.get("auth_key", ""), priv_proto=secrets.get("priv_proto"),
                      priv_key=secrets.get("priv_key", ""), timeout_s=POLL_TIMEOUT_S, retries=1)


def _status_of(status: str | None) -> str:
    return status or "unknown"


def _ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _utc_ms(when: dt.datetime) -> int:
    """Milliseconds of a stored timestamp (SQLite hands them back without a zone: they are UTC)."""
    return _ms(when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC))


def _flaps_threshold(settings: Any) -> int:
    """The audit's ``flaps_24h`` from the settings: ``link_audit_thresholds()`` where the settings
    offer it, else the ``link_audit`` mapping, else the default."""
    getter = getattr(settings, "link_audit_thresholds", None)
    if callable(getter):
        return int(getter().flaps_24h)
    audit = getattr(settings, "link_audit", None) or {}
    value = audit.get("flaps_24h", FLAPPING_AT) if isinstance(audit, dict) else getattr(audit, "flaps_24h", FLAPPING_AT)
    return int(value)


class LinkPoller:
    """Polls every uplink once per cycle; state lives in the database, so any instance continues."""

    def __init__(self, engine: Engine, master: bytes, *, interval_s: float = 60.0, concurrency: int = 64,
                 reach_count: int = 3, reach_timeout_s: float = 2.0, store: TelemetryStore | None = None,
                 snmp: SnmpEngine | None = None, icmp: bool | None = None, flaps_24h: int = FLAPPING_AT,
                 flap_hold_s: float = FLAP_HOLD_S) -> None:
        self.engine = engine
        self.master = master
        self.interval_s = interval_s
        self.concurrency = concurrency
        self.reach_count = reach_count
        self.reach_timeout_s = reach_timeout_s
        self.store = store or TelemetryStore(engine)
        self.snmp = snmp or SnmpEngine(max_concurrency=concurrency, device_deadline_s=30.0)
        self.icmp = icmp  # None: use ICMP where this process may send it
        self.flaps_24h = flaps_24h  # link.flapping when the 24-h transitions reach it (the audit's threshold)
        self.flap_hold_ms = int(flap_hold_s * 1000)  # a flapping link's quiet time before it counts as settled
        self._series: dict[tuple[str, int, str], int] = {}
        self._stop = asyncio.Event()
        self.cycles = 0
        self.overruns = 0

    @classmethod
    def from_settings(cls, engine: Engine, master: bytes, settings: Any) -> LinkPoller:
        """A poller with the settings' intervals and the audit's flapping threshold, so the
        ``link.flapping`` event and the audit's ``flapping`` reason start at the same count."""
        return cls(engine, master, interval_s=settings.link_poll_interval_s,
                   concurrency=settings.link_poll_concurrency, reach_count=settings.reach_count,
                   reach_timeout_s=settings.reach_timeout_s, flaps_24h=_flaps_threshold(settings),
                   flap_hold_s=float(getattr(settings, "link_flap_hold_s", FLAP_HOLD_S)))

    # ------------------------------------------------------------------ plan

    def _plan(self, now_ms: int) -> Plan:
        from infra_mgr.inventory.credentials import reveal
        from infra_mgr.inventory.models import Credential
        from infra_mgr.network.uplinks import current_neighbors

        with Session(self.engine) as s:
            creds = {c.id: c for c in s.exec(select(Credential).where(
                col(Credential.kind).in_(["snmp_v2c", "snmp_v3"]))).all()}
            usable = sorted((c for c in creds.values() if c.params.get("discovery", True) is not False),
                            key=lambda c: (int(c.params.get("priority", 100)), c.id or 0))
            secrets: dict[int, dict[str, Any]] = {}

            def target(cred_id: int | None, address: str) -> SnmpTarget | None:
                cred = creds.get(cred_id) if cred_id is not None else None
                cred = cred or (usable[0] if usable else None)
                if cred is None or not address:
                    return None
                if cred.id not in secrets:
                    secrets[cred.id or 0] = reveal(s, self.master, cred.id or 0)
                return _secrets_target(cred.kind, cred.username, secrets[cred.id or 0], address)

            branch_sites = set(s.exec(select(Site.id).where(Site.kind == SiteKind.branch.value)).all())
            devices: dict[int, DeviceJob] = {}
            rows = s.execute(
                sa_select(col(Device.id), col(Device.hostname), col(Device.site_id), col(Device.status),
                          col(Device.management_address), col(Device.credential_id), col(DevicePoll.address),
                          col(DevicePoll.credential_id), col(DevicePoll.protocol))
                .outerjoin(DevicePoll, col(DevicePoll.device_id) == col(Device.id))
                .where(col(Device.site_id).in_(branch_sites),
                       col(Device.status) != DeviceStatus.decommissioned.value)).all()
            for d_id, host, site_id, _status, mgmt, dev_cred, poll_addr, poll_cred, protocol in rows:
                address = poll_addr or mgmt or ""
                # a device read over SSH has no SNMP agent by design: probed by ICMP alone, never
                # with some SNMP credential that was not what opened it
                snmp = None if protocol == "ssh" else target(poll_cred or dev_cred, address)
                devices[d_id] = DeviceJob(d_id, host, site_id, address, snmp, ssh=protocol == "ssh")
            ups = s.execute(
                sa_select(col(Uplink.interface_id), col(Uplink.device_id), col(Uplink.site_id), col(Interface.name),
                          col(Interface.if_index), col(Interface.speed_bps))
                .join(Interface, col(Interface.id) == col(Uplink.interface_id))
                .where(col(Uplink.is_uplink) == True)).all()  # noqa: E712
            for i_id, d_id, site_id, name, if_index, speed in ups:
                job = devices.get(d_id)
                if job is not None:
                    job.uplinks.append(UplinkRef(i_id, d_id, site_id, name, if_index, speed))
            ids = [u[0] for u in ups]
            since = _at(now_ms - FLAP_WINDOW_MS)
            changes = s.execute(
                sa_select(col(LinkStatusChange.interface_id), func.sum(col(LinkStatusChange.transitions)),
                          func.max(col(LinkStatusChange.at)))
                .where(col(LinkStatusChange.at) >= since).group_by(col(LinkStatusChange.interface_id))).all()
            flaps = {int(i): int(n or 0) for i, n, _ in changes}
            last = {int(i): _utc_ms(at) for i, _, at in changes if isinstance(at, dt.datetime)}
            neighbors = current_neighbors(s, ids)
        jobs = [j for j in devices.values() if j.uplinks]
        reach = [j for j in devices.values() if j.address]
        return Plan(jobs, reach, {}, flaps, neighbors, last)

    # ------------------------------------------------------------------ I/O

    async def _poll(self, jobs: Sequence[DeviceJob]) -> dict[int, InterfacePoll]:
        from infra_mgr.network.snmp.ifpoll import poll_many

        work = [j for j in jobs if j.target is not None and any(u.if_index for u in j.uplinks)]
        if not work:
            return {}
        answers = await poll_many(self.snmp, [(j.target, [u.if_index for u in j.uplinks if u.if_index])
                                              for j in work if j.target is not None],
                                  concurrency=self.concurrency)
        return {j.device_id: a for j, a in zip(work, answers, strict=True)}

    async def _reach(self, jobs: Sequence[DeviceJob]) -> tuple[dict[str, ReachResult], dict[str, ReachResult]]:
        from infra_mgr.network import reach

        addresses = sorted({j.address for j in jobs})
        targets = [replace(j.target, retries=0, timeout_s=self.reach_timeout_s) for j in jobs if j.target is not None]
        use_icmp = self.icmp if self.icmp is not None else reach.icmp_available()

        async def icmp() -> dict[str, ReachResult]:
            if not use_icmp or not addresses:
                return {}
            return await reach.probe_icmp(addresses, count=self.reach_count, timeout_s=self.reach_timeout_s)

        async def snmp() -> dict[str, ReachResult]:
            if not targets:
                return {}
            return await reach.probe_snmp(self.snmp, targets, count=self.reach_count,
                                          timeout_s=self.reach_timeout_s)

        got_icmp, got_snmp = await asyncio.gather(icmp(), snmp())
        return got_icmp, got_snmp

    # ------------------------------------------------------------------ one cycle

    async def cycle(self, now_ms: int | None = None) -> CycleResult:
        """Poll every uplink and probe every branch device once, then write it all in one transaction."""
        started = time.perf_counter()
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        plan = await asyncio.to_thread(self._plan, now)
        polls, (icmp, snmp) = await asyncio.gather(self._poll(plan.jobs), self._reach(plan.reach))
        result = CycleResult(ts_ms=now, devices=len(plan.jobs), uplinks=sum(len(j.uplinks) for j in plan.jobs))
        if plan.jobs or plan.reach:  # nothing to watch yet (no branch devices): no empty transaction
            await asyncio.to_thread(self._write, plan, polls, icmp, snmp, now, result)
        result.seconds = time.perf_counter() - started
        self.cycles += 1
        return result

    def _judge(self, job: DeviceJob, poll: InterfacePoll | None, plan: Plan, now: int, result: CycleResult,
               session: Session, samples: list[tuple[str, int, str, int, float]]) -> None:
        """Fold one device's answer into its uplinks' states, changes, events and samples."""
        from infra_mgr.network.counters import rates, transitions

        if poll is not None and poll.error_kind:
            result.failed[job.hostname] = poll.error_kind
        elif job.target is None:
            result.failed[job.hostname] = "no_credential"
        for up in job.uplinks:
            st = plan.states.get(up.interface_id)
            if st is None:
                st = plan.states[up.interface_id] = UplinkState(interface_id=up.interface_id)
                session.add(st)
            st.neighbor = plan.neighbors.get(up.interface_id, "")[:253]
            row = poll.rows.get(up.if_index) if poll is not None and up.if_index is not None else None
            if up.if_index is None:
                st.poll_status, st.note = "never", "interface index unknown: not read by discovery yet"
            elif job.target is None and job.ssh:
                st.poll_status, st.note = "never", "read over SSH: no SNMP counters to poll"
            elif job.target is None:
                st.poll_status, st.note = "auth", "no SNMP credential to poll with"
            elif poll is None or poll.error_kind:
                st.poll_status = (poll.error_kind if poll else "error") or "error"
                st.note = ((poll.error if poll else "") or f"no answer ({st.poll_status})")[:255]
            elif row is None:
                st.poll_status, st.note = "error", f"the agent gave no row for ifIndex {up.if_index}"
            else:
                self._sample(st, up, poll, row, plan, now, result, session, samples, rates, transitions)

    def _sample(self, st: UplinkState, up: UplinkRef, poll: InterfacePoll, row: lf.CounterRow, plan: Plan, now: int,
                result: CycleResult, session: Session, samples: list[tuple[str, int, str, int, float]],
                rates: Any, transitions: Any) -> None:
        ts = poll.ts_ms or now
        prev = None
        if st.poll_status != "never" and st.ts_ms:
            prev = CounterSnapshot(ts_ms=st.ts_ms, uptime_cs=st.uptime_cs, hc=st.counter_bits == 64,
                                   counters={k: getattr(st, k) for k in COUNTERS})
        cur = CounterSnapshot(ts_ms=ts, uptime_cs=poll.uptime_cs, hc=row.hc,
                              counters={k: getattr(row, k) for k in COUNTERS})
        speed = row.speed_bps or up.speed_bps
        rr: RateResult = rates(prev, cur, speed)
        status = _status_of(row.oper_status)
        before = st.oper_status if prev is not None else None
        moved = transitions(before, st.last_change_cs if prev else None, status, row.last_change_cs,
                            st.uptime_cs if prev else None, poll.uptime_cs, prev.ts_ms, ts) if prev is not None else 0
        if moved:
            session.add(LinkStatusChange(interface_id=up.interface_id, at=_at(ts), status=status,
                                         previous=before or "", transitions=int(moved)))
            result.transitions += int(moved)
            self._events(up, before or "unknown", status, int(moved), plan, ts, session, result)
        elif prev is not None:
            self._settled(up, status, prev.ts_ms, plan, ts, session, result)
        if before is None or status != before or st.oper_since is None:
            if before is None and poll.uptime_cs is not None and row.last_change_cs is not None \
                    and 0 <= row.last_change_cs <= poll.uptime_cs:
                st.oper_since = _at(ts - (poll.uptime_cs - row.last_change_cs) * 10)
            else:
                st.oper_since = _at(ts)
        st.ts_ms, st.uptime_cs, st.counter_bits = ts, poll.uptime_cs, 64 if row.hc else 32
        for k in COUNTERS:
            setattr(st, k, getattr(row, k))
        st.last_change_cs, st.oper_status, st.speed_bps = row.last_change_cs, status[:16], speed
        for k in ("in_bps", "out_bps", "util_pct", "errors_ps", "discards_ps", "error_pct"):
            setattr(st, k, getattr(rr, k))
        st.rx_dbm, st.tx_dbm = row.rx_dbm, row.tx_dbm
        st.poll_status, st.note, st.last_ok_ms = "ok", (rr.note.value if rr.note else ""), ts
        result.polled_ok += 1
        kind, src = lf.IF_SERIES_KIND, up.interface_id
        samples.append((kind, src, lf.S_OPER_UP, ts, 1.0 if status == "up" else 0.0))
        if rr.note is None:
            result.rates += 1
            for name, value in ((lf.S_IN_BPS, rr.in_bps), (lf.S_OUT_BPS, rr.out_bps), (lf.S_UTIL_PCT, rr.util_pct),
                                (lf.S_ERRORS_PS, rr.errors_ps), (lf.S_DISCARDS_PS, rr.discards_ps),
                                (lf.S_ERROR_PCT, rr.error_pct), (lf.S_PKTS_PS, rr.pkts_ps)):
                if value is not None:
                    samples.append((kind, src, name, ts, float(value)))
        for name, dbm in ((lf.S_RX_DBM, row.rx_dbm), (lf.S_TX_DBM, row.tx_dbm)):
            if dbm is not None:
                samples.append((kind, src, name, ts, float(dbm)))

    def _events(self, up: UplinkRef, before: str, status: str, moved: int, plan: Plan, ts: int, session: Session,
                result: CycleResult) -> None:
        """``link.down`` / ``link.up`` when the status crosses up, unless the link is flapping;
        ``link.flapping`` once when the flaps of the last 24 h reach the threshold."""
        host = next((j.hostname for j in plan.jobs if j.device_id == up.device_id), "")
        data = {"interface": up.name, "interface_id": up.interface_id, "before": before, "after": status}
        earlier = plan.flaps_24h.get(up.interface_id, 0)
        plan.flaps_24h[up.interface_id] = earlier + moved
        plan.last_change_ms[up.interface_id] = ts
        flapping = earlier + moved >= self.flaps_24h  # then held back until it settles (see _settled)
        if not flapping and status != before and status == "up" and before != "unknown":
            record_event(session, "link.up", f"{host}: uplink {up.name} is up again", severity="info",
                         site_id=up.site_id, device_id=up.device_id, data=data)
            result.events += 1
        elif not flapping and status != before and before == "up":
            record_event(session, "link.down", f"{host}: uplink {up.name} went {status}", severity="critical",
                         site_id=up.site_id, device_id=up.device_id, data=data)
            result.events += 1
        if earlier < self.flaps_24h <= earlier + moved:
            record_event(session, "link.flapping", f"{host}: uplink {up.name} flapping ({earlier + moved} "
                         "changes in 24 h)", severity="warning", site_id=up.site_id, device_id=up.device_id,
                         data={**data, "flaps": earlier + moved})
            result.events += 1

    def _settled(self, up: UplinkRef, status: str, prev_ts: int, plan: Plan, ts: int, session: Session,
                 result: CycleResult) -> None:
        """The closing event of a flapping link, raised by the first poll at least ``flap_hold_s``
        after its last transition: ``link.stable`` when it settled up, ``link.down`` when it stays
        down (its down events were held back, so this is the one that says so)."""
        last = plan.last_change_ms.get(up.interface_id)
        if last is None or plan.flaps_24h.get(up.interface_id, 0) < self.flaps_24h:
            return
        if not prev_ts - last < self.flap_hold_ms <= ts - last:
            return
        host = next((j.hostname for j in plan.jobs if j.device_id == up.device_id), "")
        minutes = round((ts - last) / 60000)
        data = {"interface": up.name, "interface_id": up.interface_id, "after": status, "minutes": minutes,
                "flaps": plan.flaps_24h.get(up.interface_id, 0)}
        if status == "up":
            record_event(session, "link.stable", f"{host}: uplink {up.name} stable again (up, no change for "
                         f"{minutes} min)", severity="info", site_id=up.site_id, device_id=up.device_id, data=data)
        else:
            record_event(session, "link.down", f"{host}: uplink {up.name} went {status}", severity="critical",
                         site_id=up.site_id, device_id=up.device_id, data={**data, "before": "flapping"})
        result.events += 1

    def _write(self, plan: Plan, polls: dict[int, InterfacePoll], icmp: dict[str, ReachResult],
               snmp: dict[str, ReachResult], now: int, result: CycleResult) -> None:
        """Everything of the cycle in one transaction. The stored rows it updates (uplink states,
        reachability) are read inside it, one SELECT per table, and changed in place: the write
        lock is held for the writes, not for a query per row."""
        samples: list[tuple[str, int, str, int, float]] = []
        fresh: dict[tuple[str, int, str], int] = {}
        with write_session(self.engine) as session:
            ids = sorted({u.interface_id for j in plan.jobs for u in j.uplinks})
            plan.states = {st.interface_id: st for st in session.exec(select(UplinkState).where(
                col(UplinkState.interface_id).in_(ids))).all()} if ids else {}
            for job in plan.jobs:
                self._judge(job, polls.get(job.device_id), plan, now, result, session, samples)
            probed = [(job, icmp.get(job.address), snmp.get(job.address)) for job in plan.reach]
            probed = [(job, i, n) for job, i, n in probed if i is not None or n is not None]
            dev_ids = sorted({job.device_id for job, _, _ in probed})
            reach_rows = {r.device_id: r for r in session.exec(select(DeviceReach).where(
                col(DeviceReach.device_id).in_(dev_ids))).all()} if dev_ids else {}
            for job, i, n in probed:
                dr = reach_rows.get(job.device_id)
                if dr is None:
                    dr = reach_rows[job.device_id] = DeviceReach(device_id=job.device_id)
                    session.add(dr)
                dr.ts_ms, dr.icmp_sent = now, i.sent if i else 0
                dr.icmp_received, dr.icmp_rtt_ms = (i.received, i.rtt_ms) if i else (0, None)
                dr.snmp_sent = n.sent if n else 0
                dr.snmp_received, dr.snmp_rtt_ms = (n.received, n.rtt_ms) if n else (0, None)
                result.reach += 1
                kind = lf.DEVICE_SERIES_KIND
                # the echo's round trip is the path's; the SNMP one includes the busy poll loop
                rtt = i.rtt_ms if i is not None and i.received else None
                if rtt is None and n is not None and n.received:
                    rtt = n.rtt_ms
                if rtt is not None:
                    samples.append((kind, job.device_id, lf.S_RTT_MS, now, float(rtt)))
                if i is not None and i.sent:
                    samples.append((kind, job.device_id, lf.S_LOSS_PCT, now, i.loss_pct))
                if n is not None and n.sent:
                    samples.append((kind, job.device_id, lf.S_SNMP_LOSS_PCT, now, n.loss_pct))
            result.samples = self._samples(session, samples, fresh)
            session.commit()
        # Only ids the database now holds are remembered: a series created in a transaction that
        # rolled back does not exist, and its id may go to another series later.
        self._series.update(fresh)

    def _samples(self, session: Session, samples: list[tuple[str, int, str, int, float]],
                 fresh: dict[tuple[str, int, str], int]) -> int:
        """Telemetry samples inside the cycle's transaction (series created in bulk where new).

        Series ids looked up or created here go to ``fresh``, not to the cache: the caller
        remembers them once the transaction has committed."""
        if not samples:
            return 0
        conn = session.connection()
        table = MetricSeries.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
        wanted = {(k, i, n) for k, i, n, _, _ in samples} - set(self._series)
        known = fresh
        if wanted:
            kinds = {k for k, _, _ in wanted}
            ids = {i for _, i, _ in wanted}
            rows = conn.execute(sa_select(col(MetricSeries.source_kind), col(MetricSeries.source_id),
                                          col(MetricSeries.name), col(MetricSeries.id))
                                .where(and_(col(MetricSeries.source_kind).in_(kinds),
                                            col(MetricSeries.source_id).in_(ids)))).all()
            known.update({(k, i, n): int(sid) for k, i, n, sid in rows})
            missing = sorted(wanted - set(known))
            if missing:
                ins = (postgresql.insert(table) if self.engine.dialect.name == "postgresql" else sqlite.insert(table))
                conn.execute(ins.on_conflict_do_nothing(), [
                    {"source_kind": k, "source_id": i, "name": n, "unit": lf.SERIES_UNITS.get(n, "")}
                    for k, i, n in missing])
                rows = conn.execute(sa_select(col(MetricSeries.source_kind), col(MetricSeries.source_id),
                                              col(MetricSeries.name), col(MetricSeries.id))
                                    .where(and_(col(MetricSeries.source_kind).in_(kinds),
                                                col(MetricSeries.source_id).in_(ids)))).all()
                known.update({(k, i, n): int(sid) for k, i, n, sid in rows})
        sample_table = MetricSample.__table__  # type: ignore[attr-defined]  # SQLModel does not declare __table__
        ins = (postgresql.insert(sample_table) if self.engine.dialect.name == "postgresql"
               else sqlite.insert(sample_table))
        data = [{"series_id": self._series.get((k, i, n)) or known[(k, i, n)], "ts_ms": t, "value": v}
                for k, i, n, t, v in samples]
        conn.execute(ins.on_conflict_do_nothing(), data)
        return len(data)

    # ------------------------------------------------------------------ scheduling

    async def run(self) -> None:
        """Cycle every ``interval_s`` until :meth:`stop`; never two cycles at once."""
        loop = asyncio.get_running_loop()
        last_prune = 0.0
        while not self._stop.is_set():
            started = loop.time()
            try:
                res = await self.cycle()
                log.info("links: %d uplinks on %d devices in %.2f s (%d failed)", res.uplinks, res.devices,
                         res.seconds, len(res.failed))
                if res.samples:
                    await asyncio.to_thread(self.store.rollup)
                if time.monotonic() - last_prune >= PRUNE_EVERY_S:
                    await asyncio.to_thread(self.store.prune)
                    last_prune = time.monotonic()
            except Exception:  # noqa: BLE001 - a failed cycle (database busy, agent trouble) must not end polling
                log.exception("links: poll cycle failed; the next one runs on schedule")
            took = loop.time() - started
            if took > self.interval_s:
                self.overruns += 1
                missed = int(took // self.interval_s)
                log.warning("links: a cycle took %.1f s, over the %.0f s interval; %d start(s) skipped, "
                            "the next cycle starts now", took, self.interval_s, missed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, self.interval_s - took))

    def stop(self) -> None:
        self._stop.set()
