"""The branch link audit end to end, against the running lab city over real SNMP and ICMP.

Discovery, the lab's design file, a few poll cycles of the real poller, roll-ups, then the audit:
it must name exactly the branches the lab made wrong, each with the lab's reason, and call every
other branch ok (``expected.json``'s ``link_audit``, written from the lab's own table of
conditions). The SSH-only switches, which their branch switch's LLDP names, are read over SSH once
the lab's SSH credential is stored: probed by ICMP alone and holding no uplink, they leave their
branches ok. Then a condition changed at run time must show within two poll cycles, and go away
again once restored.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, select

from infra_mgr.inventory.models import Device
from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.setup import configure_branch_seeds
from infra_mgr.lab.ssh_lab import RunningSsh, configure_ssh_credential
from infra_mgr.network.discovery import discover
from infra_mgr.network.link_poller import LinkPoller
from infra_mgr.network.link_views import BranchAuditRead, audit_branches
from infra_mgr.network.models import DevicePoll, DeviceReach
from infra_mgr.network.uplinks import import_plan
from infra_mgr.telemetry.store import TelemetryStore

MASTER = b"link-audit-city-test-key"
GAP_S = 2.0  # between cycles: short, so the test is quick; the audit does not depend on the interval


@pytest.fixture(scope="module")
def audited(city: RunningCity, city_ssh: RunningSsh,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, LinkPoller]:
    engine = city_database(f"sqlite:///{tmp_path_factory.mktemp('audit') / 'city.db'}", MASTER, city)
    # as `infra-mgr lab configure` (and so the demo) does: every branch gateway is a seed too, so
    # branch 12, whose WAN is down, is found although no crawl from HQ crosses its dead link
    with Session(engine) as s:
        assert "jed-b12-rtr" in configure_branch_seeds(s, city)
        s.commit()
    asyncio.run(discover(engine, MASTER, all_sites=True, timeout_s=1.0, retries=1))
    # the SSH-only switches were named by LLDP and found silent; with an SSH credential stored
    # they are read over SSH (only they: the SNMP faults of other branches stay what the lab made)
    with Session(engine) as s:
        configure_ssh_credential(s, MASTER, city_ssh)
        s.commit()
    ssh_only = [d["address"] for d in city.expected["ssh_only"]["devices"]]
    asyncio.run(discover(engine, MASTER, seeds=ssh_only, follow=False, timeout_s=1.0, retries=1))
    with Session(engine) as s:
        import_plan(s, city.expected_path.parent / "uplinks.yaml", actor="test")
        s.commit()
    poller = LinkPoller(engine, MASTER)
    for n in range(4):
        if n:
            time.sleep(GAP_S)
        asyncio.run(poller.cycle())
    TelemetryStore(engine).rollup()
    return engine, poller


def _audit(engine: Engine) -> dict[str, BranchAuditRead]:
    with Session(engine) as s:
        return {a.site_code: a for a in audit_branches(s)}


def _codes(audit: BranchAuditRead) -> list[str]:
    return sorted({r.code for r in audit.reasons})


def _matches(audit: BranchAuditRead, want: dict[str, Any]) -> bool:
    options = [want] + ([want["alternative"]] if "alternative" in want else [])
    return any(audit.state == o["state"] and _codes(audit) == sorted(o["reasons"]) for o in options)


def test_the_audit_names_exactly_what_the_lab_made_wrong(audited: tuple[Engine, LinkPoller],
                                                          city: RunningCity) -> None:
    engine, _ = audited
    expected: dict[str, dict[str, Any]] = city.expected["link_audit"]
    got = _audit(engine)
    assert set(got) == set(expected), "every branch is audited, and only branches"
    wrong = {code: (got[code].state.value, _codes(got[code]), [r.text for r in got[code].reasons])
             for code, want in expected.items() if not _matches(got[code], want)}
    assert not wrong, f"audit differs from the lab's conditions: {wrong}"
    # ranked worst first, and every reason is a sentence
    with Session(engine) as s:
        ranked = audit_branches(s)
    assert [a.score for a in ranked] == sorted(a.score for a in ranked)
    assert ranked[0].state.value == "down" and "JED-B12" in {a.site_code for a in ranked if a.state.value == "down"}
    assert ranked[-1].state.value == "ok" and ranked[-1].score == 100
    for a in ranked:
        for r in a.reasons:
            assert r.text and "{" not in r.text


def test_ssh_only_switches_are_probed_by_icmp_alone(audited: tuple[Engine, LinkPoller], city: RunningCity) -> None:
    engine, _ = audited
    ssh_only = city.expected["ssh_only"]["devices"]
    assert ssh_only
    got = _audit(engine)
    with Session(engine) as s:
        for entry in ssh_only:
            dev = s.exec(select(Device).where(Device.hostname == entry["hostname"])).one()
            poll = s.get(DevicePoll, dev.id)
            assert poll is not None and (poll.protocol, poll.status) == ("ssh", "ok"), entry["hostname"]
            reach = s.get(DeviceReach, dev.id)
            assert reach is not None and reach.snmp_sent == 0 and reach.icmp_sent > 0, entry["hostname"]
            assert reach.icmp_received == reach.icmp_sent, entry["hostname"]
            branch = got[entry["site"]]
            assert branch.state.value == "ok" and not branch.reasons, (entry["site"], branch.reasons)
            assert entry["hostname"] in {r.device for r in branch.reach}


def test_reasons_carry_the_evidence(audited: tuple[Engine, LinkPoller]) -> None:
    got = _audit(audited[0])
    speed = next(r for r in got["JED-B28"].reasons if r.code == "speed")
    assert "100 Mb/s" in speed.text
    neighbor = next(r for r in got["JED-B31"].reasons if r.code == "neighbor")
    assert "jed-hq-dist2" in neighbor.text and "jed-hq-dist1" in neighbor.text
    down = next(r for r in got["JED-B12"].reasons if r.code == "link_down")
    assert "down since" in down.text
    errors = next(r for r in got["JED-B07"].reasons if r.code == "errors")
    assert 1.0 <= float(errors.params["value"]) <= 3.0, errors.params


def test_a_condition_changed_at_run_time_shows_within_two_cycles(audited: tuple[Engine, LinkPoller],
                                                                  city: RunningCity) -> None:
    engine, poller = audited
    assert _audit(engine)["JED-B03"].state.value == "ok"
    wan = next(lk["a"] for lk in city.links if lk["kind"] == "branch-wan" and lk["a"].startswith("jed-b03-rtr:"))
    control = city.link_control()
    with control.changed(wan, "down"):
        time.sleep(1.5)  # the agent re-reads its recording within a second
        for _ in range(2):
            asyncio.run(poller.cycle())
            time.sleep(GAP_S)
        during = _audit(engine)["JED-B03"]
    assert during.state.value == "down" and "link_down" in _codes(during), during.reasons
    time.sleep(1.5)
    for _ in range(2):
        asyncio.run(poller.cycle())
        time.sleep(GAP_S)
    after = _audit(engine)["JED-B03"]
    assert "link_down" not in _codes(after), after.reasons
