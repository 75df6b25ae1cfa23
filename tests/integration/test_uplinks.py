"""Uplink identification on the discovered lab city, and a person's word over it.

Done means: every reachable branch's router WAN port and access switch uplink are found (the
designed ``branch-wan``/``branch-lan`` links of expected.json, farther end only), jed-b12-rtr's
down WAN by its alias; a manual choice survives rediscovery; a design file with a bad line
changes nothing and names file:line; every change leaves a history row with its actor.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.inventory.importer import ImportFailed
from infra_mgr.inventory.models import Device, Interface, Link, ObjectChange, Site
from infra_mgr.lab.city import RunningCity
from infra_mgr.network.discovery import discover
from infra_mgr.network.models import DevicePoll, Uplink
from infra_mgr.network.uplinks import (
    alias_says_uplink,
    clear_manual,
    identify,
    import_plan,
    nominal_speed,
    parse_speed,
    set_manual,
)

MASTER = b"uplinks-city-test-key"
# Branch devices no credential reads (no interfaces known): identification has nothing to look at.
UNREAD = {"unreachable", "wrong_community", "broken_walks"}
# Agents that drop requests at random: discovery may read them only in part, so either answer is fair.
LOSSY = {"jed-b41-rtr", "jed-b41-sw"}


@pytest.fixture(scope="module")
def city_db(city: RunningCity, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The city discovered from the HQ core, plus branch 12 from its own addresses (its WAN is down,
    so no crawl from headquarters reaches it)."""
    engine = city_database(f"sqlite:///{tmp_path_factory.mktemp('uplinks') / 'city.db'}", MASTER, city)
    asyncio.run(discover(engine, MASTER, all_sites=True, timeout_s=1.0, retries=1))
    b12 = [city.device(h)["address"] for h in ("jed-b12-rtr", "jed-b12-sw")]
    asyncio.run(discover(engine, MASTER, seeds=b12, follow=False, timeout_s=1.0, retries=1))
    return engine


def _uplinks(engine: Engine) -> dict[str, Uplink]:
    """Uplink rows by ``host:ifname``."""
    with Session(engine) as s:
        names = {i.id: i.name for i in s.exec(select(Interface)).all()}
        hosts = {d.id: d.hostname for d in s.exec(select(Device)).all()}
        return {f"{hosts[u.device_id]}:{names[u.interface_id]}": u for u in s.exec(select(Uplink)).all()}


def _designed(city: RunningCity) -> set[str]:
    """The farther end of every designed branch cable: router WAN ports and switch uplinks."""
    out = set()
    for lk in city.links:
        if lk["kind"] == "branch-wan":
            out.add(lk["a"])
        elif lk["kind"] == "branch-lan":
            out.add(lk["b"])
    return out


def test_identification_finds_every_branch_uplink(city_db: Engine, city: RunningCity) -> None:
    with Session(city_db, expire_on_commit=False) as s:
        result = identify(s, actor="test")
        s.commit()
    found = _uplinks(city_db)
    faults = {d["hostname"]: d["fault"] for d in city.devices}
    with Session(city_db) as s:
        known = {d.hostname for d in s.exec(select(Device)).all()}
    wanted = {e for e in _designed(city) if e.split(":")[0] in known and faults[e.split(":")[0]] not in UNREAD}
    assert len(wanted) > 110
    sure = {e for e in wanted if e.split(":")[0] not in LOSSY}
    assert sure - set(found) == set(), f"not identified: {sorted(sure - set(found))[:10]}"
    assert set(found) - wanted == set(), f"identified wrongly: {sorted(set(found) - wanted)[:10]}"
    assert len(sure) <= result.found <= len(wanted)

    wan12 = next(lk["a"] for lk in city.links if lk["kind"] == "branch-wan" and lk["a"].startswith("jed-b12-rtr:"))
    assert found[wan12].source == "alias", "the down WAN has no LLDP neighbour: its alias names it"
    wan01 = next(lk for lk in city.links if lk["kind"] == "branch-wan" and lk["a"].startswith("jed-b01-rtr:"))
    row = found[wan01["a"]]
    assert row.source == "lldp" and not row.manual
    assert row.expected_neighbor == wan01["b"].split(":")[0] and row.expected_neighbor_source == "first_seen"
    ifname = wan01["a"].split(":")[1]
    speed = city.interface("jed-b01-rtr", ifname)["speed_mbps"] * 10**6
    assert row.expected_speed_bps == (nominal_speed(ifname) or speed)
    assert row.expected_speed_source in ("port_name", "peer")

    with Session(city_db) as s:  # every row created was recorded, with its actor
        rows = s.exec(select(ObjectChange).where(ObjectChange.object_type == "uplink",
                                                 ObjectChange.action == "create")).all()
    assert len(rows) >= len(wanted) and {r.actor for r in rows} <= {"test", "discovery"}

    with Session(city_db) as s:  # a second identification changes nothing
        again = identify(s, actor="test")
        s.commit()
    assert again.created == [] and again.updated == []


def test_manual_choice_survives_rediscovery(city_db: Engine, city: RunningCity) -> None:
    found = _uplinks(city_db)
    wan = next(lk["a"] for lk in city.links if lk["kind"] == "branch-wan" and lk["a"].startswith("jed-b03-rtr:"))
    sw = next(lk["b"] for lk in city.links if lk["kind"] == "branch-lan" and lk["b"].startswith("jed-b03-sw:"))
    with Session(city_db) as s:
        set_manual(s, found[wan].interface_id, expected_neighbor="jed-hq-core9", expected_speed_bps=10**10,
                   actor="alice")
        set_manual(s, found[sw].interface_id, is_uplink=False, actor="alice")
        s.commit()
    b03 = [city.device(h)["address"] for h in ("jed-b03-rtr", "jed-b03-sw")]
    asyncio.run(discover(city_db, MASTER, seeds=b03, timeout_s=1.0, retries=1))  # identifies at its end
    after = _uplinks(city_db)
    assert after[wan].manual and after[wan].expected_neighbor == "jed-hq-core9"
    assert after[wan].expected_neighbor_source == "manual" and after[wan].expected_speed_bps == 10**10
    assert after[sw].manual and after[sw].is_uplink is False
    with Session(city_db, expire_on_commit=False) as s:
        change = s.exec(select(ObjectChange).where(ObjectChange.object_type == "uplink",
                                                   ObjectChange.object_id == found[wan].interface_id,
                                                   ObjectChange.actor == "alice")).first()
        assert change is not None and change.after and change.after["expected_neighbor"] == "jed-hq-core9"
        back = clear_manual(s, found[wan].interface_id, actor="alice")
        s.commit()
    assert back is not None and not back.manual and back.expected_neighbor == found[wan].expected_neighbor


def test_plan_with_a_bad_line_changes_nothing(city_db: Engine, city: RunningCity, tmp_path: Path) -> None:
    wan = next(lk for lk in city.links if lk["kind"] == "branch-wan" and lk["a"].startswith("jed-b05-rtr:"))
    host, ifname = wan["a"].split(":")
    sw_host, sw_if = next(lk["b"] for lk in city.links if lk["kind"] == "branch-lan"
                          and lk["b"].startswith("jed-b05-sw:")).split(":")
    plan = tmp_path / "uplinks.yaml"
    plan.write_text(f"uplinks:\n  - device: {host}\n    interface: {ifname}\n"
                    f"    expected_neighbor: {wan['b'].split(':')[0]}\n    expected_speed: 1G\n"
                    f"  - device: {host}\n    interface: NoSuchPort9/9\n    expected_speed: 1G\n"
                    f"  - device: {sw_host}\n    interface: {sw_if}\n    expected_speed: fast\n", encoding="utf-8")
    before = _uplinks(city_db)
    with Session(city_db) as s, pytest.raises(ImportFailed) as err:
        import_plan(s, plan, actor="planner")
    problems = err.value.problems
    assert [p.split(": ")[0] for p in problems] == [f"{plan}:11"], problems
    assert problems[0].startswith(f"{plan}:11: expected_speed: not a speed"), problems
    assert _uplinks(city_db).keys() == before.keys()
    assert not _uplinks(city_db)[wan["a"]].manual

    plan.write_text(f"uplinks:\n  - device: {host}\n    interface: {ifname}\n"
                    f"    expected_neighbor: jed-hq-dist9\n    expected_speed: 1G\n"
                    f"  - device: {host}\n    interface: NoSuchPort9/9\n", encoding="utf-8")
    with Session(city_db) as s:
        changed = import_plan(s, plan, actor="planner")
        s.commit()
    assert [(c.line, c.device, c.interface, c.action) for c in changed] == [
        (2, host, ifname, "update"), (6, host, "NoSuchPort9/9", "skipped")]
    row = _uplinks(city_db)[wan["a"]]
    assert row.manual and row.expected_neighbor == "jed-hq-dist9" and row.expected_neighbor_source == "plan"
    assert row.expected_speed_bps == 10**9 and row.expected_speed_source == "plan"


def test_lab_design_file_imports(city_db: Engine, city: RunningCity) -> None:
    """The lab's own design file (when the lab writes one) imports without a problem."""
    plan = city.expected_path.parent / "uplinks.yaml"
    if not plan.exists():
        pytest.skip("this lab writes no uplinks.yaml design file")
    with Session(city_db) as s:
        changed = import_plan(s, plan, actor="planner")
        s.commit()
    done = [c for c in changed if c.action != "skipped"]
    assert len(done) > 100, [c for c in changed if c.action == "skipped"][:5]
    b23 = next(c for c in changed if c.device == "jed-b23-sw")
    assert b23.action == "create", "a switch never read is audited by its designed uplink"


# --------------------------------------------------------------------------- hand-built, both databases


def _branch(s: Session) -> dict[str, int]:
    """HQ switch — branch router (WAN, LLDP) — branch switch; plus a router port named by alias only."""
    hq = Site(code="HQ", name_en="HQ", kind="hq")
    br = Site(code="B1", name_en="Branch 1", kind="branch")
    s.add(hq)
    s.add(br)
    s.flush()
    ids: dict[str, int] = {}
    for host, site in (("hq-sw", hq), ("b1-rtr", br), ("b1-sw", br)):
        d = Device(hostname=host, site_id=site.id or 0)
        s.add(d)
        s.flush()
        ids[host] = d.id or 0
    ports = {("hq-sw", "TenGigabitEthernet1/0/1", ""), ("b1-rtr", "GigabitEthernet0/0/0", ""),
             ("b1-rtr", "GigabitEthernet0/0/1", ""), ("b1-sw", "Gi1/0/24", ""),
             ("b1-rtr", "Cellular0/1/0", "LTE backup - to HQ"), ("b1-sw", "Gi1/0/1", "printer")}
    for host, name, alias in sorted(ports):
        i = Interface(device_id=ids[host], name=name, alias=alias, speed_bps=10**9)
        s.add(i)
        s.flush()
        ids[f"{host}:{name}"] = i.id or 0
    for a, b in (("hq-sw:TenGigabitEthernet1/0/1", "b1-rtr:GigabitEthernet0/0/0"),
                 ("b1-rtr:GigabitEthernet0/0/1", "b1-sw:Gi1/0/24")):
        x, y = sorted((ids[a], ids[b]))
        s.add(Link(a_interface_id=x, b_interface_id=y, source="lldp"))
    s.flush()
    return ids


def test_rules_on_a_small_network(engine: Engine) -> None:
    with Session(engine) as s:
        ids = _branch(s)
        result = identify(s, actor="test")
        s.commit()
    with Session(engine) as s:
        rows = {u.interface_id: u for u in s.exec(select(Uplink)).all()}
    assert set(rows) == {ids["b1-rtr:GigabitEthernet0/0/0"], ids["b1-sw:Gi1/0/24"], ids["b1-rtr:Cellular0/1/0"]}
    assert result.found == 3 and result.branches_without == []
    wan = rows[ids["b1-rtr:GigabitEthernet0/0/0"]]
    assert (wan.source, wan.expected_neighbor, wan.expected_speed_bps) == ("lldp", "hq-sw", 10**9)
    lte = rows[ids["b1-rtr:Cellular0/1/0"]]
    assert lte.source == "alias" and lte.expected_speed_bps is None and lte.expected_speed_source == ""

    with Session(engine) as s:  # the cable moves: the pinned neighbour stays, so the drift shows
        lk = s.exec(select(Link)).first()
        assert lk is not None
        s.delete(lk)
        s.flush()
        again = identify(s, actor="test")
        s.commit()
    assert again.updated == [] or ids["b1-rtr:GigabitEthernet0/0/0"] not in again.updated
    with Session(engine) as s:
        kept = s.get(Uplink, ids["b1-rtr:GigabitEthernet0/0/0"])
    assert kept is not None and kept.expected_neighbor == "hq-sw", "an uplink whose link vanished stays"


def test_a_switch_read_over_ssh_holds_no_uplink(engine: Engine) -> None:
    """An access switch below the branch switch, read over SSH (no SNMP counters): its end of the
    cable is not an uplink, even with an uplink alias, and the branch switch's end is nearer
    headquarters, so that cable is not audited at all; the branch's own uplinks stay."""
    with Session(engine) as s:
        ids = _branch(s)
        sw2 = Device(hostname="b1-sw2", site_id=s.exec(select(Site.id).where(Site.code == "B1")).one() or 0)
        s.add(sw2)
        s.flush()
        theirs = Interface(device_id=sw2.id or 0, name="Gi0/1", alias="uplink to b1-sw", speed_bps=10**9)
        mine = Interface(device_id=ids["b1-sw"], name="Gi1/0/23", speed_bps=10**9)
        s.add(theirs)
        s.add(mine)
        s.flush()
        x, y = sorted((theirs.id or 0, mine.id or 0))
        s.add(Link(a_interface_id=x, b_interface_id=y, source="lldp"))
        s.add(DevicePoll(device_id=sw2.id or 0, address="127.0.0.9", protocol="ssh"))
        cable = {x, y}
        identify(s, actor="test")
        s.commit()
    with Session(engine) as s:
        rows = {u.interface_id for u in s.exec(select(Uplink)).all()}
    assert rows == {ids["b1-rtr:GigabitEthernet0/0/0"], ids["b1-sw:Gi1/0/24"], ids["b1-rtr:Cellular0/1/0"]}
    assert not rows & cable


def test_data_tables() -> None:
    assert parse_speed("1G") == 10**9 and parse_speed("100M") == 10**8 and parse_speed("2.5G") == 2_500_000_000
    assert parse_speed(10_000) == 10_000
    for bad in ("fast", "0", "-1G", ""):
        with pytest.raises(ValueError):
            parse_speed(bad)
    assert nominal_speed("TenGigabitEthernet1/1/1") == 10**10
    assert nominal_speed("GigabitEthernet0/0/0") == nominal_speed("ge-0/0/0") == nominal_speed("ether1") == 10**9
    assert nominal_speed("Te1/1/1") == 10**10 and nominal_speed("xe-0/0/1") == 10**10
    assert nominal_speed("FastEthernet0/1") == 10**8
    assert nominal_speed("Vlan1") is None and nominal_speed("1/1/1") is None
    assert alias_says_uplink("وصلة إلى المبنى الرئيسي") and alias_says_uplink("وصلة إلى مركز البيانات")
    assert alias_says_uplink("وصلة صاعدة إلى موجه الفرع") and alias_says_uplink("MPLS to HQ")
    assert alias_says_uplink("WAN - STC circuit") and alias_says_uplink("Uplink")
    assert not alias_says_uplink("وصلة إلى مبدل الفرع"), "the router's port toward its own switch"
    assert not alias_says_uplink("printer") and not alias_says_uplink("")


PLAN_B1 = """uplinks:
  - device: b1-rtr
    interface: GigabitEthernet0/0/0
    expected_neighbor: hq-dist1
    expected_speed: 1G
"""


def test_design_file_rows_say_so(engine: Engine) -> None:
    with Session(engine) as s:
        ids = _branch(s)
        identify(s, actor="test")
        import_plan(s, PLAN_B1, actor="planner")
        s.commit()
    with Session(engine) as s:
        wan = s.get(Uplink, ids["b1-rtr:GigabitEthernet0/0/0"])
        other = s.get(Uplink, ids["b1-sw:Gi1/0/24"])
    assert wan is not None and other is not None
    assert (wan.source, wan.expected_neighbor, wan.expected_neighbor_source) == ("plan", "hq-dist1", "plan")
    assert other.source == "lldp"
    with Session(engine) as s:  # a person's word on top of the design is "set by hand"
        row = set_manual(s, ids["b1-rtr:GigabitEthernet0/0/0"], expected_speed_bps=10**8, actor="ops")
        s.commit()
        assert (row.source, row.expected_speed_source, row.expected_neighbor_source) == ("manual", "manual", "plan")


def test_clearing_a_hand_override_keeps_the_design(engine: Engine) -> None:
    """The design says hq-dist1 while the cable goes to hq-sw: taking the port out of the audit by
    hand and giving it back must not learn the wrong cable as the expectation."""
    with Session(engine) as s:
        ids = _branch(s)
        identify(s, actor="test")
        import_plan(s, PLAN_B1, actor="planner")
        s.commit()
    wan_id = ids["b1-rtr:GigabitEthernet0/0/0"]
    with Session(engine) as s:
        row = set_manual(s, wan_id, is_uplink=False, actor="ops")
        s.commit()
        assert row.is_uplink is False and row.source == "manual"
        assert (row.expected_neighbor, row.expected_neighbor_source) == ("hq-dist1", "plan"), "not touched"
        assert (row.expected_speed_bps, row.expected_speed_source) == (10**9, "plan")
    with Session(engine) as s:
        back = clear_manual(s, wan_id, actor="ops")
        s.commit()
        assert back is not None
        assert (back.is_uplink, back.manual, back.source) == (True, True, "plan")
        assert (back.expected_neighbor, back.expected_neighbor_source) == ("hq-dist1", "plan")
        assert (back.expected_speed_bps, back.expected_speed_source) == (10**9, "plan")
    with Session(engine) as s:  # a hand-set speed on a design row: clearing undoes only that
        set_manual(s, wan_id, expected_speed_bps=10**8, actor="ops")
        s.commit()
    with Session(engine) as s:
        back = clear_manual(s, wan_id, actor="ops")
        s.commit()
        assert back is not None
        assert (back.expected_speed_bps, back.expected_speed_source) == (10**9, "port_name")
        assert (back.expected_neighbor, back.expected_neighbor_source) == ("hq-dist1", "plan")
        assert (back.is_uplink, back.source) == (True, "plan")
        identify(s, actor="test")  # rediscovery leaves the design's row alone
        s.commit()
    with Session(engine) as s:
        kept = s.get(Uplink, wan_id)
        assert kept is not None and kept.source == "plan" and kept.manual
    with Session(engine) as s:  # a row only a person ever set goes back to identification entirely
        sw = ids["b1-sw:Gi1/0/24"]
        set_manual(s, sw, is_uplink=False, expected_neighbor="b1-rtr-x", actor="ops")
        s.commit()
        again = clear_manual(s, sw, actor="ops")
        s.commit()
        assert again is not None and (again.manual, again.source, again.is_uplink) == (False, "lldp", True)
        assert (again.expected_neighbor, again.expected_neighbor_source) == ("b1-rtr", "first_seen")
