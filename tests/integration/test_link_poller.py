"""The link poller against the running lab city: three cycles a few seconds apart over real SNMP and ICMP.

Done means: healthy uplinks get rates, jed-b12-rtr's WAN is down, jed-b19-sw's flapping uplink
records transitions, every branch device has a reachability row, samples are readable through
the telemetry store, a device without an agent (jed-b23-sw) is marked while the cycle completes,
and a new poller instance continues from the stored counters.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface
from infra_mgr.lab.city import RunningCity
from infra_mgr.network import linkfacts as lf
from infra_mgr.network.discovery import discover
from infra_mgr.network.link_poller import CycleResult, LinkPoller
from infra_mgr.network.models import DeviceReach, LinkStatusChange, Uplink, UplinkState
from infra_mgr.network.uplinks import import_plan
from infra_mgr.telemetry.store import TelemetryStore

MASTER = b"link-poller-test-key"


@pytest.fixture(scope="module")
def polled(city: RunningCity, tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, list[CycleResult]]:
    """A discovered city (branch 12 from its own addresses: its WAN is down), the lab's design file
    when it has one, and three poll cycles ~3 s apart."""
    engine = city_database(f"sqlite:///{tmp_path_factory.mktemp('links') / 'city.db'}", MASTER, city)
    asyncio.run(discover(engine, MASTER, all_sites=True, timeout_s=1.0, retries=1))
    b12 = [city.device(h)["address"] for h in ("jed-b12-rtr", "jed-b12-sw")]
    asyncio.run(discover(engine, MASTER, seeds=b12, follow=False, timeout_s=1.0, retries=1))
    plan = city.expected_path.parent / "uplinks.yaml"
    if plan.exists():
        with Session(engine) as s:
            import_plan(s, plan, actor="test")
            s.commit()
    results = []
    poller = LinkPoller(engine, MASTER)
    for n in range(3):
        if n:
            time.sleep(3.0)
        results.append(asyncio.run(poller.cycle()))
    return engine, results


def _states(engine: Engine) -> dict[str, UplinkState]:
    with Session(engine) as s:
        names = {i.id: i.name for i in s.exec(select(Interface)).all()}
        hosts = {d.id: d.hostname for d in s.exec(select(Device)).all()}
        ups = {u.interface_id: u.device_id for u in s.exec(select(Uplink)).all()}
        return {f"{hosts[ups[st.interface_id]]}:{names[st.interface_id]}": st
                for st in s.exec(select(UplinkState)).all() if st.interface_id in ups}


def _end(city: RunningCity, kind: str, host: str) -> str:
    side = "a" if kind == "branch-wan" else "b"
    return next(lk[side] for lk in city.links if lk["kind"] == kind and lk[side].startswith(f"{host}:"))


def test_three_cycles(polled: tuple[Engine, list[CycleResult]], city: RunningCity) -> None:
    engine, results = polled
    assert all(r.uplinks > 110 for r in results)
    states = _states(engine)
    healthy = [k for k, st in states.items() if st.in_bps is not None]
    assert len(healthy) > 90, f"only {len(healthy)} uplinks with rates"
    wan01 = states[_end(city, "branch-wan", "jed-b01-rtr")]
    assert wan01.poll_status == "ok" and wan01.oper_status == "up" and wan01.note == ""
    assert wan01.in_bps is not None and wan01.in_bps > 0 and wan01.util_pct is not None
    assert wan01.neighbor, "the current LLDP/CDP neighbour is stored beside the state"
    assert results[0].rates < results[2].rates, "the first sample of each uplink has nothing to compare with"

    wan12 = states[_end(city, "branch-wan", "jed-b12-rtr")]
    assert wan12.poll_status == "ok" and wan12.oper_status != "up"

    flap = states[_end(city, "branch-lan", "jed-b19-sw")]
    with Session(engine) as s:
        changes = s.exec(select(LinkStatusChange).where(LinkStatusChange.interface_id == flap.interface_id)).all()
        kinds = {e.kind for e in s.exec(select(Event).where(Event.kind.startswith("link."))).all()}  # type: ignore[attr-defined]
    assert sum(c.transitions for c in changes) >= 2, "a link flipping every 3 s changes between 3-s polls"
    assert kinds & {"link.down", "link.up", "link.flapping"}

    dead = "jed-b23-sw"
    # no agent: either the poll failed, or its uplink (planned from the design file) was never read
    assert dead in results[-1].failed or any(h.startswith(f"{dead}:") for h in states)
    for host, st in states.items():
        if host.startswith(f"{dead}:"):
            assert st.poll_status in ("timeout", "never", "error") and st.last_ok_ms is None


def test_reachability_and_telemetry(polled: tuple[Engine, list[CycleResult]], city: RunningCity) -> None:
    engine, results = polled
    with Session(engine) as s:
        hosts = {d.id: d.hostname for d in s.exec(select(Device)).all()}
        reach = {hosts[r.device_id]: r for r in s.exec(select(DeviceReach)).all()}
    assert len(reach) > 110 and results[-1].reach == len(reach)
    ok = reach["jed-b01-rtr"]
    assert ok.snmp_sent == 3 and ok.snmp_received == 3 and ok.snmp_rtt_ms is not None
    dead = reach["jed-b23-sw"]
    assert dead.snmp_sent == 3 and dead.snmp_received == 0
    if dead.icmp_sent:  # ICMP where this process may send it: the loopback address answers
        assert dead.icmp_received > 0

    states = _states(engine)
    wan01 = states[_end(city, "branch-wan", "jed-b01-rtr")]
    store = TelemetryStore(engine)
    series = store.series_of(lf.IF_SERIES_KIND, wan01.interface_id)
    assert {lf.S_IN_BPS, lf.S_OUT_BPS, lf.S_UTIL_PCT, lf.S_OPER_UP} <= set(series)
    _, oper = store.query(series[lf.S_OPER_UP], 0, 2**62, resolution=0)
    _, inbps = store.query(series[lf.S_IN_BPS], 0, 2**62, resolution=0)
    assert len(oper) == 3 and {p.avg for p in oper} == {1.0}
    assert len(inbps) == 2, "the first sample gives no rate, so writes no rate sample"
    dev = store.series_of(lf.DEVICE_SERIES_KIND, next(i for i, h in hosts.items() if h == "jed-b01-rtr"))
    assert lf.S_SNMP_LOSS_PCT in dev and lf.S_RTT_MS in dev


def test_a_new_poller_continues_from_stored_state(polled: tuple[Engine, list[CycleResult]],
                                                  city: RunningCity) -> None:
    engine, _ = polled
    key = _end(city, "branch-wan", "jed-b01-rtr")
    before = _states(engine)[key]
    time.sleep(1.0)
    res = asyncio.run(LinkPoller(engine, MASTER).cycle())
    after = _states(engine)[key]
    assert after.ts_ms > before.ts_ms and after.note == "" and after.in_bps is not None
    assert res.rates > 90, "a fresh instance computes rates from the stored counters at once"
