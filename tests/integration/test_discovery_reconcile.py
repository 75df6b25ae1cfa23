"""Reconciliation of discovered facts into the source of truth (SQLite and PostgreSQL).

The facts here are built by hand: this file tests the database side of discovery (dedup,
placement, events, links, atomicity). Talking SNMP to real agents is tested against the lab
city in ``test_discovery_city.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface, Link, ObjectChange, Prefix, Site
from infra_mgr.network.crawl import Answer, Crawler, CrawlResult, CredentialOption, NoAnswer
from infra_mgr.network.models import DevicePoll, Neighbor
from infra_mgr.network.reconcile import reconcile
from infra_mgr.network.snmp.facts import DeviceFacts, InterfaceFacts, NeighborFacts, ProbeResult
from infra_mgr.snmp.target import SnmpTarget


def _sites(engine: Engine) -> dict[str, int]:
    with Session(engine) as s:
        hq = Site(code="JED-HQ", name_en="Headquarters", name_ar="المبنى الرئيسي", kind="hq")
        br = Site(code="JED-B01", name_en="Al Balad Branch", name_ar="بلدية البلد الفرعية")
        s.add(hq)
        s.add(br)
        s.flush()
        s.add(Prefix(prefix="127.1.0.0/24", site_id=hq.id))
        s.commit()
        return {"hq": hq.id or 0, "b01": br.id or 0}


def _answer(address: str, name: str, chassis: str, *, serial: str = "", location: str = "",
            ifaces: list[tuple[str, str]] | None = None, neighbors: list[NeighborFacts] | None = None) -> Answer:
    facts = DeviceFacts(sys_name=name, sys_object_id="1.3.6.1.4.1.9.1.2494", vendor="Cisco", platform="ios",
                        model="C9300", serial=serial, location=location, chassis_id=chassis)
    interfaces = [InterfaceFacts(index=i + 1, name=n, oper_status=st, admin_status="up")
                  for i, (n, st) in enumerate(ifaces or [("Gi1/0/1", "up"), ("Gi1/0/2", "up")])]
    return Answer(address, None, ProbeResult(address, 161, facts, interfaces, neighbors or []))


def _events(engine: Engine, kind: str) -> list[Event]:
    with Session(engine) as s:
        return list(s.exec(select(Event).where(Event.kind == kind)).all())


def test_dedup_placement_links_and_events(engine: Engine) -> None:
    ids = _sites(engine)
    core = _answer("127.1.0.1", "jed-hq-core1", "00:11:22:33:44:01", serial="FOC1",
                   neighbors=[NeighborFacts("Gi1/0/1", "lldp", "jed-b01-rtr1", "Gi0/0/0", "00:11:22:33:44:02",
                                            "127.2.1.1")])
    core_again = _answer("127.1.0.99", "jed-hq-core1", "00:11:22:33:44:01", serial="FOC1")
    branch = _answer("127.2.1.1", "jed-b01-rtr1.jeddah.local", "00:11:22:33:44:02", serial="FOC2",
                     location="أمانة جدة - بلدية البلد الفرعية", ifaces=[("Gi0/0/0", "up"), ("Gi0/0/1", "up")],
                     neighbors=[NeighborFacts("Gi0/0/0", "lldp", "jed-hq-core1", "Gi1/0/1", "00:11:22:33:44:01",
                                              "127.1.0.1")])
    dead = NoAnswer("127.2.9.1", "unreachable", name_hint="jed-b09-rtr1")
    report = reconcile(engine, CrawlResult(answers=[core, core_again, branch], no_answer=[dead]))
    assert sorted(report.new) == ["jed-b01-rtr1.jeddah.local", "jed-hq-core1"]
    assert report.links_new == 1 and report.links_total == 1
    assert [(u.address, u.name, u.reason) for u in report.unanswered] == [("127.2.9.1", "jed-b09-rtr1", "unreachable")]
    with Session(engine) as s:
        devices = {d.hostname: d for d in s.exec(select(Device)).all()}
        assert len(devices) == 2, "one box seen at two addresses is one device"
        assert devices["jed-hq-core1"].site_id == ids["hq"], "placed by prefix"
        assert devices["jed-b01-rtr1.jeddah.local"].site_id == ids["b01"], "placed by Arabic sysLocation"
        link = s.exec(select(Link)).one()
        assert link.source == "lldp"
        assert s.exec(select(DevicePoll).where(DevicePoll.device_id == devices["jed-hq-core1"].id)).one().status == "ok"
    assert len(_events(engine, "device.new")) == 2

    # Second pass: an interface goes down, the serial changes, a neighbour disappears, the branch is gone.
    core2 = _answer("127.1.0.1", "jed-hq-core1", "00:11:22:33:44:01", serial="FOC9",
                    ifaces=[("Gi1/0/1", "down"), ("Gi1/0/2", "up")])
    report2 = reconcile(engine, CrawlResult(answers=[core2], no_answer=[]))
    assert report2.new == [] and report2.missing == ["jed-b01-rtr1.jeddah.local"]
    down = _events(engine, "interface.down")
    assert len(down) == 1 and down[0].data["interface"] == "Gi1/0/1" and down[0].severity == "warning"
    assert _events(engine, "device.serial_changed")[0].data == {"before": "FOC1", "after": "FOC9"}
    assert any(e.data.get("gone") for e in _events(engine, "neighbor.changed"))
    assert len(_events(engine, "device.missing")) == 1
    with Session(engine) as s:
        assert s.exec(select(Neighbor)).all() == [] or all(
            n.device_id != devices["jed-hq-core1"].id for n in s.exec(select(Neighbor)).all())
        assert s.exec(select(Device).where(Device.hostname == "jed-b01-rtr1.jeddah.local")).one().status == "missing"

    # Third pass: it is back.
    reconcile(engine, CrawlResult(answers=[core2, branch]))
    assert len(_events(engine, "device.returned")) == 1


def test_a_crash_mid_reconcile_writes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    _sites(engine)
    from infra_mgr.network import reconcile as reconcile_module

    def boom(self: object, device_ids: set[int]) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(reconcile_module.Reconciler, "links", boom)
    with pytest.raises(RuntimeError):
        reconcile(engine, CrawlResult(answers=[_answer("127.1.0.1", "jed-hq-core1", "aa:aa:aa:aa:aa:01")]))
    with Session(engine) as s:
        assert s.exec(select(Device)).all() == []
        assert s.exec(select(Interface)).all() == []
        assert s.exec(select(Event)).all() == []


def test_interfaces_created_by_discovery_are_in_the_history(engine: Engine) -> None:
    """Reconcile inserts new interfaces in one statement; each must still have its ``create``
    change, with the same snapshot the flush hook writes for an interface added through the ORM."""
    _sites(engine)
    reconcile(engine, CrawlResult(answers=[_answer("127.1.0.1", "jed-hq-core1", "aa:aa:aa:aa:aa:01")]),
              actor="discovery")
    with Session(engine) as s:
        dev = s.exec(select(Device)).one()
        rows = {i.id: i for i in s.exec(select(Interface)).all()}
        changes = s.exec(select(ObjectChange).where(ObjectChange.object_type == "interface")).all()
        assert sorted(c.object_id for c in changes) == sorted(rows) and len(rows) == 2
        assert {c.actor for c in changes} == {"discovery"} and {c.action for c in changes} == {"create"}
        by_hook = Interface(device_id=dev.id or 0, name="Gi9/9/9", if_index=99, oper_status="up", admin_status="up")
        s.add(by_hook)
        s.commit()
        hook = s.exec(select(ObjectChange).where(ObjectChange.object_id == by_hook.id,
                                                 ObjectChange.object_type == "interface")).one()
        bulk = next(c for c in changes if rows[c.object_id].name == "Gi1/0/1")
        assert set(bulk.after or {}) == set(hook.after or {})
        assert (bulk.after or {})["name"] == "Gi1/0/1" and (bulk.after or {})["oper_status"] == "up"


def test_unplaceable_device_is_reported_not_guessed(engine: Engine) -> None:
    _sites(engine)
    report = reconcile(engine, CrawlResult(answers=[_answer("127.9.9.9", "mystery", "aa:aa:aa:aa:aa:09",
                                                            location="somewhere else")]))
    assert report.unplaced == ["mystery"] and report.new == []


def test_crawl_follows_neighbours_only_inside_the_allow_list() -> None:
    """The crawl policy, with an in-memory table standing in for agents (SNMP is tested on the lab city)."""
    world = {
        "127.1.0.1": [NeighborFacts("Gi1", "lldp", "b1", "Gi0", "c2", "127.2.1.1"),
                      NeighborFacts("Gi2", "cdp", "isp-router", "Gi9", "c9", "198.51.100.7")],
        "127.2.1.1": [NeighborFacts("Gi0", "lldp", "core", "Gi1", "c1", "127.1.0.1"),
                      NeighborFacts("Gi1", "lldp", "b1-sw", "Gi24", "c3", "127.2.1.2")],
    }
    probed: list[str] = []

    async def probe(target: SnmpTarget) -> ProbeResult:
        probed.append(target.address)
        if target.address not in world:
            from infra_mgr.snmp.target import PollProblem

            return ProbeResult(target.address, 161, reachable=False,
                               errors=[PollProblem(target.address, "facts", "timeout", "no answer")])
        return ProbeResult(target.address, 161, DeviceFacts(sys_name=target.address, sys_object_id="1.3.6.1.4.1.9"),
                           neighbors=world[target.address])

    async def alive(address: str, port: int, timeout: float) -> bool:
        return False

    crawler = Crawler(probe, [CredentialOption(1, SnmpTarget(address=""))], ["127.0.0.0/8"], alive=alive)
    result = asyncio.run(crawler.run(["127.1.0.1"]))
    assert sorted(a.address for a in result.answers) == ["127.1.0.1", "127.2.1.1"]
    assert [(n.address, n.name_hint, n.reason) for n in result.no_answer] == [("127.2.1.2", "b1-sw", "unreachable")]
    assert result.outside_allow == {"198.51.100.7": "isp-router"}
    assert "198.51.100.7" not in probed


def test_crawl_goes_on_to_neighbours_reported_before_the_probe_ends() -> None:
    """With ``early``, a probe reports its neighbours as soon as it has read them: the crawl must
    start them while that probe is still reading (here the core's probe cannot finish until its
    neighbour's probe has started), and still follow the allow-list."""
    core_neighbors = [NeighborFacts("", "lldp", "b1", "Gi0", "c2", "127.2.1.1"),
                      NeighborFacts("", "cdp", "isp-router", "Gi9", "c9", "198.51.100.7")]
    started: dict[str, asyncio.Event] = {}
    probed: list[str] = []

    async def probe(target: SnmpTarget, on_neighbors=None) -> ProbeResult:  # type: ignore[no-untyped-def]
        probed.append(target.address)
        started.setdefault(target.address, asyncio.Event()).set()
        facts = DeviceFacts(sys_name=target.address, sys_object_id="1.3.6.1.4.1.9")
        if target.address != "127.1.0.1":
            return ProbeResult(target.address, 161, facts)
        assert on_neighbors is not None
        on_neighbors(core_neighbors)
        await asyncio.wait_for(started.setdefault("127.2.1.1", asyncio.Event()).wait(), 5)  # interfaces "still read"
        named = [NeighborFacts("Gi1/0/1", n.protocol, n.remote_system_name, n.remote_port, n.remote_chassis_id,
                               n.remote_address) for n in core_neighbors]
        return ProbeResult(target.address, 161, facts, neighbors=named)

    async def alive(address: str, port: int, timeout: float) -> bool:
        return False

    crawler = Crawler(probe, [CredentialOption(1, SnmpTarget(address=""))], ["127.0.0.0/8"], alive=alive, early=True)
    result = asyncio.run(crawler.run(["127.1.0.1"]))
    assert sorted(a.address for a in result.answers) == ["127.1.0.1", "127.2.1.1"]
    assert probed.count("127.2.1.1") == 1 and "198.51.100.7" not in probed
    assert result.outside_allow == {"198.51.100.7": "isp-router"}
    core = next(a for a in result.answers if a.address == "127.1.0.1")
    assert {n.local_interface for n in core.result.neighbors} == {"Gi1/0/1"}  # the complete ones are kept


def test_crawl_asks_snmp_before_ssh_every_time() -> None:
    """SSH is the fall-back of an address no SNMP credential answers, never the first question: a
    device read over SSH once (one silent run) is read over SNMP again as soon as its agent answers."""
    from infra_mgr.network.crawl import Answer, SshMiss

    order: list[tuple[str, str]] = []
    snmp_answers = {"127.1.0.1"}

    async def probe(target: SnmpTarget) -> ProbeResult:
        order.append(("snmp", target.address))
        if target.address in snmp_answers:
            return ProbeResult(target.address, 161, DeviceFacts(sys_name="core", sys_object_id="1.3.6.1.4.1.9"))
        from infra_mgr.snmp.target import PollProblem

        return ProbeResult(target.address, 161, reachable=False,
                           errors=[PollProblem(target.address, "facts", "timeout", "no answer")])

    async def ssh(address: str, preferred: int | None) -> Answer | SshMiss:
        order.append(("ssh", address))
        return Answer(address, 9, ProbeResult(address, 22, DeviceFacts(sys_name="sw2")))

    async def alive(address: str, port: int, timeout: float) -> bool:
        return False

    crawler = Crawler(probe, [CredentialOption(1, SnmpTarget(address=""))], ["127.0.0.0/8"], alive=alive, ssh=ssh)
    result = asyncio.run(crawler.run(["127.1.0.1", "127.2.3.3"], preferred={"127.1.0.1": 9, "127.2.3.3": 9}))
    assert sorted(a.address for a in result.answers) == ["127.1.0.1", "127.2.3.3"]
    assert ("ssh", "127.1.0.1") not in order  # answered over SNMP: never asked over SSH
    assert order.index(("snmp", "127.2.3.3")) < order.index(("ssh", "127.2.3.3"))
