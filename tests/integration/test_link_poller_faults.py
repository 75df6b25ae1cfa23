"""The link poller when things go wrong around it: a cycle whose transaction fails to commit, and
the flapping threshold taken from the audit's settings."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from peers import city_database
from sqlalchemy import Engine, event, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infra_mgr.config import Settings
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface, Site
from infra_mgr.lab.city import RunningCity
from infra_mgr.network import linkfacts as lf
from infra_mgr.network.discovery import discover
from infra_mgr.network.link_poller import CycleResult, LinkPoller
from infra_mgr.network.models import DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.snmp.target import SnmpTarget
from infra_mgr.telemetry.models import MetricSample, MetricSeries
from infra_mgr.telemetry.store import TelemetryStore

MASTER = b"link-poller-faults-key"


class CommitRefused(RuntimeError):
    pass


def test_a_rolled_back_cycle_does_not_mix_series(city: RunningCity, tmp_path: Path) -> None:
    engine = city_database(f"sqlite:///{tmp_path / 'city.db'}", MASTER, city)
    seeds = [city.device(h)["address"] for h in ("jed-b01-rtr", "jed-b01-sw", "jed-b02-rtr", "jed-b02-sw")]
    asyncio.run(discover(engine, MASTER, seeds=seeds, follow=False, timeout_s=1.0, retries=1))
    with Session(engine) as s:
        assert s.exec(select(Uplink).where(Uplink.is_uplink == True)).all(), "discovery found uplinks"  # noqa: E712

    refuse = {"left": 1}

    def fail_once(_conn: Any) -> None:
        if refuse["left"]:
            refuse["left"] -= 1
            raise CommitRefused("the database refused the commit")

    poller = LinkPoller(engine, MASTER)
    event.listen(engine, "commit", fail_once)
    try:
        with pytest.raises(CommitRefused):
            asyncio.run(poller.cycle())
    finally:
        event.remove(engine, "commit", fail_once)
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(MetricSeries)).one() == 0, "the failed cycle left nothing"
    # other series now take the ids the rolled-back transaction had handed out
    store = TelemetryStore(engine)
    decoys = {store.series_id("decoy", n, "other") for n in range(200)}

    res = asyncio.run(poller.cycle())
    assert res.samples > 0
    with Session(engine) as s:
        written = s.execute(sa_select(col(MetricSample.series_id), func.count()).group_by(
            col(MetricSample.series_id))).all()
        series = {sr.id: sr for sr in s.exec(select(MetricSeries)).all()}
        reach = s.exec(select(DeviceReach)).all()
        states = s.exec(select(UplinkState)).all()
    assert sum(n for _, n in written) == res.samples
    for sid, _ in written:
        assert sid in series and sid not in decoys, f"samples of the cycle went into series {sid}"
        assert series[sid].source_kind in (lf.IF_SERIES_KIND, lf.DEVICE_SERIES_KIND)
    oper = {series[sid].source_id for sid, _ in written if series[sid].name == lf.S_OPER_UP}
    assert oper == {st.interface_id for st in states if st.poll_status == "ok"} and oper
    snmp_loss = {series[sid].source_id for sid, _ in written if series[sid].name == lf.S_SNMP_LOSS_PCT}
    assert snmp_loss == {r.device_id for r in reach if r.snmp_sent}


def test_rates_write_packets_per_second(city: RunningCity, tmp_path: Path) -> None:
    engine = city_database(f"sqlite:///{tmp_path / 'city.db'}", MASTER, city)
    seeds = [city.device(h)["address"] for h in ("jed-b01-rtr", "jed-b01-sw")]
    asyncio.run(discover(engine, MASTER, seeds=seeds, follow=False, timeout_s=1.0, retries=1))
    poller = LinkPoller(engine, MASTER)
    asyncio.run(poller.cycle())
    asyncio.run(asyncio.sleep(1.5))
    second = asyncio.run(poller.cycle())
    assert second.rates > 0
    with Session(engine) as s:
        pkts = s.exec(select(MetricSeries).where(MetricSeries.name == lf.S_PKTS_PS)).all()
        rated = s.exec(select(UplinkState).where(col(UplinkState.in_bps).is_not(None))).all()
    assert {p.source_id for p in pkts} == {st.interface_id for st in rated}
    assert all(p.unit == "1/s" and p.source_kind == lf.IF_SERIES_KIND for p in pkts)


def test_flapping_threshold_follows_the_audit_setting(tmp_path: Path) -> None:
    from infra_mgr.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'none.db'}")
    base: dict[str, Any] = {"link_poll_interval_s": 60.0, "link_poll_concurrency": 4, "reach_count": 3,
                            "reach_timeout_s": 1.0}
    settings = Settings(link_audit={"flaps_24h": 5})
    assert LinkPoller.from_settings(engine, MASTER, settings).flaps_24h == 5
    plain = SimpleNamespace(**base, link_audit={"flaps_24h": "7"})
    assert LinkPoller.from_settings(engine, MASTER, plain).flaps_24h == 7
    assert LinkPoller.from_settings(engine, MASTER, SimpleNamespace(**base, link_audit={})).flaps_24h == 3
    assert LinkPoller(engine, MASTER).flaps_24h == 3


def _flapping_branch(engine: Engine) -> dict[str, int]:
    """A branch router with two uplinks (ifIndex 1 and 2), both identified, nothing polled yet."""
    with Session(engine) as s:
        site = Site(code="B9", name_en="Branch 9", kind="branch")
        s.add(site)
        s.flush()
        dev = Device(hostname="b9-rtr", site_id=site.id or 0, management_address="127.0.0.9")
        s.add(dev)
        s.flush()
        ids = {"site": site.id or 0, "device": dev.id or 0}
        for n in (1, 2):
            iface = Interface(device_id=dev.id or 0, name=f"GigabitEthernet0/0/{n}", if_index=n, speed_bps=10**9)
            s.add(iface)
            s.flush()
            ids[f"if{n}"] = iface.id or 0
            s.add(Uplink(interface_id=iface.id or 0, device_id=dev.id or 0, site_id=site.id or 0))
        s.commit()
    return ids


def _cycle(poller: LinkPoller, now: int, status: dict[int, str], last_change: dict[int, int]) -> CycleResult:
    """One poll cycle whose SNMP answer is made by hand (status and ifLastChange per ifIndex)."""
    plan = poller._plan(now)
    for job in plan.jobs:
        job.target = SnmpTarget(address=job.address, community="public")
    uptime = now // 10
    rows = {i: lf.CounterRow(if_index=i, hc=True, in_octets=now, out_octets=now, in_pkts=now // 1000,
                             out_pkts=now // 1000, in_errors=0, out_errors=0, in_discards=0, out_discards=0,
                             oper_status=st, last_change_cs=last_change[i], speed_bps=10**9)
            for i, st in status.items()}
    polls = {job.device_id: lf.InterfacePoll(address=job.address, ts_ms=now, uptime_cs=uptime, rows=rows)
             for job in plan.jobs}
    result = CycleResult(ts_ms=now)
    poller._write(plan, polls, {}, {}, now, result)
    return result


def test_a_flapping_link_holds_back_its_down_and_up_events(engine: Engine) -> None:
    """Polled every 20 s, uplink 1 goes down and up three times and then stays up; uplink 2 flaps
    and then stays down. After the threshold (3 transitions) no more down/up events: one
    link.flapping, then one closing event 15 min after the last transition."""
    ids = _flapping_branch(engine)
    poller = LinkPoller(engine, MASTER, flaps_24h=3)
    start = 1_800_000_000_000
    one = ["up", "down", "up", "down", "up", "down", "up"] + ["up"] * 60  # 20 min of quiet
    two = ["up", "down", "up", "down", "up", "down"] + ["down"] * 61
    last_change = {1: 0, 2: 0}
    before = {1: "", 2: ""}
    raised: dict[int, int] = {}  # cycle number -> events it raised
    for n, (a, b) in enumerate(zip(one, two, strict=True)):
        now = start + n * 20_000
        for i, st in ((1, a), (2, b)):
            if before[i] and st != before[i]:
                last_change[i] = now // 10
            before[i] = st
        got = _cycle(poller, now, {1: a, 2: b}, last_change)
        if got.events:
            raised[n] = got.events
    with Session(engine) as s:
        events = s.exec(select(Event).where(col(Event.kind).like("link.%")).order_by(col(Event.id))).all()
        changes = s.exec(select(LinkStatusChange)).all()
    assert sum(c.transitions for c in changes if c.interface_id == ids["if1"]) == 6, "every transition recorded"
    by_link = {i: [e.kind for e in events if e.data.get("interface_id") == ids[f"if{i}"]] for i in (1, 2)}
    assert by_link[1] == ["link.down", "link.up", "link.flapping", "link.stable"], by_link
    assert by_link[2] == ["link.down", "link.up", "link.flapping", "link.down"], by_link
    stable = next(e for e in events if e.kind == "link.stable")
    settled = [e for e in events if e.kind == "link.down" and e.data.get("interface_id") == ids["if2"]][-1]
    assert stable.severity == "info" and settled.severity == "critical"
    # each closing event comes with the first poll 15 min (45 polls) after the link's last transition
    assert raised == {1: 2, 2: 2, 3: 2, 5 + 45: 1, 6 + 45: 1}, raised
