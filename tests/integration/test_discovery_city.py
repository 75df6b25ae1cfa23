"""Discovering the simulated city from the HQ core's address alone, over real SNMP (snmpsim + the liar).

Done means: every reachable device and every designed link (that LLDP/CDP can see) is found, the
unreachable and wrong-credential devices are reported by name, the crawl never leaves the
allow-list, one box is one device, devices land in their sites by sysLocation, and a second run
records changes as events.
"""

from __future__ import annotations

import asyncio

import pytest
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Device, Interface, Link, Site
from infra_mgr.lab.city import RunningCity
from infra_mgr.network.discovery import discover
from infra_mgr.network.models import DevicePoll

MASTER = b"discovery-city-test-key"
SILENT = {"unreachable", "wrong_community"}  # faults that keep a device from answering our credentials

# SQLite only: a whole-city crawl takes half a minute against snmpsim, and reconciliation on
# PostgreSQL is covered, with the same code, by test_discovery_reconcile.py.


@pytest.fixture(scope="module")
def city_db(city: RunningCity, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return city_database(f"sqlite:///{tmp_path_factory.mktemp('city-db') / 'city.db'}", MASTER, city)


@pytest.fixture(scope="module")
def first_run(city_db: Engine) -> dict:  # type: ignore[type-arg]
    report = _run(city_db, all_sites=True)
    print(f"discovery of the city: {report['found']} devices, {report['links']} links in {report['seconds']} s "
          f"(crawl {report['crawl_seconds']} s)")
    return report


def _run(engine: Engine, **kw: object) -> dict:  # type: ignore[type-arg]
    report = asyncio.run(discover(engine, MASTER, timeout_s=1.0, retries=1, **kw))  # type: ignore[arg-type]
    return report.to_json()


def _reachable(city: RunningCity, start: str) -> set[str]:
    """Devices a crawl can learn of: through links that are up and seen by LLDP/CDP, never through a
    device whose tables cannot be read (no answer, or walks that loop)."""
    expected = {d["hostname"]: d for d in city.devices}
    opaque = SILENT | {"broken_walks"}
    graph: dict[str, set[str]] = {}
    for lk in city.links:
        if lk["state"] != "down" and (lk["lldp"] or lk["cdp"]):
            a, b = lk["a"].split(":")[0], lk["b"].split(":")[0]
            graph.setdefault(a, set()).add(b)
            graph.setdefault(b, set()).add(a)
    seen, todo = {start}, [start]
    while todo:
        host = todo.pop()
        if expected[host]["fault"] in opaque:
            continue
        for nxt in graph.get(host, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_whole_city_from_the_hq_core(city_db: Engine, city: RunningCity, first_run: dict) -> None:  # type: ignore[type-arg]
    report = first_run
    expected = {d["hostname"]: d for d in city.devices}
    answering = {h for h in _reachable(city, "jed-hq-core1") if expected[h]["fault"] not in SILENT}
    assert len(answering) > 120
    with Session(city_db) as s:
        devices = {d.hostname: d for d in s.exec(select(Device)).all()}
        sites = {x.id: x.code for x in s.exec(select(Site)).all()}
        polls = {p.device_id: p for p in s.exec(select(DevicePoll)).all()}
        ifname = {i.id: (i.device_id, i.name) for i in s.exec(select(Interface)).all()}
        links = s.exec(select(Link)).all()
    # the devices no credential reads are devices too (down, with the reason), named by their neighbours;
    # the SSH-only switches are among them here (their branch switch's LLDP names them, and this
    # database holds no SSH credential)
    ssh_only = {d["hostname"]: d for d in city.expected["ssh_only"]["devices"]}
    assert ssh_only and not set(ssh_only) & set(expected)
    expected.update(ssh_only)
    silent = {city.with_fault(f)["hostname"] for f in SILENT} | set(ssh_only)
    assert set(devices) == answering | silent, \
        f"missing {(answering | silent) - set(devices)}, extra {set(devices) - answering - silent}"
    for host in silent:
        assert sites[devices[host].site_id] == expected[host]["site"], host
        assert polls[devices[host].id].status in ("timeout", "auth"), host
    for host, dev in devices.items():
        if host in silent:
            continue
        assert sites[dev.site_id] == expected[host]["site"], host
        assert dev.serial == expected[host]["serial"], host
        assert dev.management_address == expected[host]["address"]
    assert devices["jed-b45-rtr"].vendor and polls[devices["jed-b45-rtr"].id].status == "ok", "v3-only device found"

    unreachable = {u["name"] for u in report["unreachable"]}
    wrong = {u["name"] for u in report["wrong_credentials"]}
    assert city.with_fault("unreachable")["hostname"] in unreachable
    assert set(ssh_only) <= unreachable, unreachable
    assert city.with_fault("wrong_community")["hostname"] in wrong
    assert report["outside_allow_list"] == []

    broken = city.with_fault("broken_walks")["hostname"]
    assert any(p["kind"] == "loop" and p["address"] == expected[broken]["address"] for p in report["problems"])

    # every designed link that LLDP/CDP can see, between two devices that answer properly
    host_of = {dev.id: h for h, dev in devices.items()}
    found = set()
    for lk in links:
        a, b = ifname[lk.a_interface_id], ifname[lk.b_interface_id]
        found.add(frozenset({f"{host_of[a[0]]}:{a[1]}", f"{host_of[b[0]]}:{b[1]}"}))
    visible_faulty = SILENT | {"broken_walks"}
    designed = {frozenset({lk["a"], lk["b"]}) for lk in city.links
                if (lk["lldp"] or lk["cdp"]) and all(e.split(":")[0] in answering
                                                     and expected[e.split(":")[0]]["fault"] not in visible_faulty
                                                     for e in (lk["a"], lk["b"]))}
    assert designed - found == set(), f"{len(designed - found)} designed links not found"
    assert report["links"] >= len(designed)
    with Session(city_db) as s:
        assert len(s.exec(select(Event).where(Event.kind == "device.new")).all()) == len(answering)
    # Arabic text arrives intact
    with Session(city_db) as s:
        poll = s.exec(select(DevicePoll).join(Device, Device.id == DevicePoll.device_id)
                      .where(Device.hostname == "jed-b01-rtr")).one()
    assert poll.location == expected["jed-b01-rtr"]["sys_location"]


def test_second_run_records_changes_not_duplicates(city_db: Engine, city: RunningCity,
                                                   first_run: dict) -> None:  # type: ignore[type-arg]
    first = first_run
    with Session(city_db) as s:
        n_devices = len(s.exec(select(Device)).all())
        n_links = len(s.exec(select(Link)).all())
    second = _run(city_db, all_sites=True)
    assert second["new"] == [] and second["links_new"] == 0
    with Session(city_db) as s:
        assert len(s.exec(select(Device)).all()) == n_devices
        assert len(s.exec(select(Link)).all()) == n_links
        flaps = s.exec(select(Event).where(Event.kind.in_(["interface.up", "interface.down"]))).all()  # type: ignore[attr-defined]
    flapping = city.with_fault("flapping")["hostname"]
    # the flapping uplink changes every 3 s: across two runs it may or may not have moved, but any
    # interface event must be about a device whose link the city makes change
    assert all(flapping in e.message or "jed-b19" in e.message for e in flaps), [e.message for e in flaps]
    assert first["found"] == second["found"]


def test_a_seed_range_finds_what_no_neighbour_names(city_db: Engine, city: RunningCity,
                                                    first_run: dict) -> None:  # type: ignore[type-arg]
    """A branch whose uplink is down is invisible to the crawl; sweeping its range finds it."""
    cut_off = city.with_fault("uplink_down")
    prefix = cut_off["address"].rsplit(".", 1)[0] + ".0/29"
    report = _run(city_db, seeds=[prefix])
    assert cut_off["hostname"] in report["new"]


def test_rediscovery_reads_every_known_device(city_db: Engine, city: RunningCity,
                                              first_run: dict) -> None:  # type: ignore[type-arg]
    """The daily run asks every device it knows, not only those a neighbour names: a branch whose
    uplink is down, once known, is read again by the next city run instead of being marked missing."""
    cut_off = city.with_fault("uplink_down")
    _run(city_db, seeds=[cut_off["address"].rsplit(".", 1)[0] + ".0/29"])
    with Session(city_db) as s:
        dev = s.exec(select(Device).where(Device.hostname == cut_off["hostname"])).one()
        before = s.exec(select(DevicePoll).where(DevicePoll.device_id == dev.id)).one().last_polled
    report = _run(city_db, all_sites=True)
    assert cut_off["hostname"] not in report["missing"]
    with Session(city_db) as s:
        dev = s.exec(select(Device).where(Device.hostname == cut_off["hostname"])).one()
        after = s.exec(select(DevicePoll).where(DevicePoll.device_id == dev.id)).one().last_polled
    assert dev.status != "missing" and before is not None and after is not None and after > before


def test_site_scope_and_allow_list(city_db: Engine, city: RunningCity, first_run: dict) -> None:  # type: ignore[type-arg]
    core = city.device("jed-hq-core1")
    # a seed outside the allow-list of a site run is still allowed (it was asked for), its neighbours
    # outside the allow-list are listed, not followed
    with Session(city_db) as s:
        from infra_mgr.network.models import DiscoveryTarget

        for t in s.exec(select(DiscoveryTarget).where(DiscoveryTarget.role == "allow")).all():
            s.delete(t)
        s.commit()
    narrow = _run(city_db, seeds=[f"{core['address']}/32"])
    assert narrow["found"] == 1
    assert set(narrow["outside_allow_list"]) >= {city.device("jed-hq-core2")["address"]}


def test_repoll_of_one_device_after_a_trap(city_db: Engine, city: RunningCity, first_run: dict) -> None:  # type: ignore[type-arg]
    """What a linkDown trap triggers: that one device is read again, nothing else is touched."""
    from infra_mgr.network.discovery import repoll_device

    with Session(city_db) as s:
        dev = s.exec(select(Device).where(Device.hostname == "jed-b19-rtr")).one()
        before = s.exec(select(DevicePoll).where(DevicePoll.device_id == dev.id)).one().last_polled
    report = asyncio.run(repoll_device(city_db, MASTER, dev.id or 0))
    assert report is not None and report.found == ["jed-b19-rtr"] and report.missing == []
    with Session(city_db) as s:
        after = s.exec(select(DevicePoll).where(DevicePoll.device_id == dev.id)).one().last_polled
    assert after is not None and before is not None and after > before
