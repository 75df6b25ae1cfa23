"""CLI discovery over SSH against the running lab (snmpsim city + the SSH simulator): the branch
switches that have no SNMP agent are found from their neighbour's LLDP (a crawl from the branch
gateway, no seed at them), read over SSH with the stored SSH credential, and land in the inventory
and on the topology with their identity, interfaces and links; the
CLI tells the same story as SNMP for a device that speaks both; a changed host key refuses the
device instead of trusting it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from peers import city_database
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from infra_mgr.inventory.models import Credential, Device, Interface, Link
from infra_mgr.lab.city import RunningCity
from infra_mgr.lab.city_model import City, build_city
from infra_mgr.lab.setup import CITY_ALLOW
from infra_mgr.lab.ssh_lab import CREDENTIAL_NAME, RunningSsh, configure_ssh_credential
from infra_mgr.network import views
from infra_mgr.network.discovery import discover
from infra_mgr.network.models import DevicePoll, DiscoveryTarget, TargetRole
from infra_mgr.network.ssh.cli_facts import facts_from_cli
from infra_mgr.network.ssh.collector import cli_read_one
from infra_mgr.network.ssh.facts import SshTarget
from infra_mgr.network.ssh.models import SshHostKey
from infra_mgr.network.ssh.platforms import platform_table

MASTER = b"cli-discovery-test-key"


@pytest.fixture(scope="module")
def model() -> City:
    return build_city()


def _branches(model: City) -> list[tuple[str, str, list[str]]]:
    """(site code, /29 around the branch's addresses, seeds) of each branch with an SSH-only
    switch. The seed is the branch gateway alone, as a NOC lists it: the crawl learns of the
    branch switch from the router's LLDP, and of the SSH-only switch from the branch switch's."""
    out = []
    for device in model.ssh_only:
        prefix = device.address.rsplit(".", 1)[0]
        gateway = next(d for d in model.devices if d.site == device.site and d.role == "wan-router")
        out.append((device.site, f"{prefix}.0/29", [gateway.address]))
    return out


@pytest.fixture(scope="module")
def ssh_db(city: RunningCity, city_ssh: RunningSsh, model: City,
           tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The city's database with the lab SSH credential, its crawl kept to the three branches
    (their /29s) so the test reads a dozen devices, not the whole city."""
    engine = city_database(f"sqlite:///{tmp_path_factory.mktemp('cli-db') / 'cli.db'}", MASTER, city)
    with Session(engine) as s:
        for target in s.exec(select(DiscoveryTarget).where(col(DiscoveryTarget.cidr).in_(CITY_ALLOW))).all():
            s.delete(target)
        for _, cidr, _ in _branches(model):
            s.add(DiscoveryTarget(cidr=cidr, role=TargetRole.allow.value, description="branch under test"))
        configure_ssh_credential(s, MASTER, city_ssh)
        s.commit()
    return engine


def _discover(engine: Engine, model: City) -> list[dict[str, Any]]:
    return [asyncio.run(discover(engine, MASTER, site_code=site, seeds=seeds, timeout_s=1.0, retries=1)).to_json()
            for site, _, seeds in _branches(model)]


@pytest.fixture(scope="module")
def first_runs(ssh_db: Engine, model: City) -> list[dict[str, Any]]:
    return _discover(ssh_db, model)


def test_ssh_only_switches_are_discovered_from_the_cli(ssh_db: Engine, model: City, city_ssh: RunningSsh,
                                                       first_runs: list[dict[str, Any]]) -> None:
    assert model.ssh_only
    with Session(ssh_db) as s:
        cred = s.exec(select(Credential).where(Credential.name == CREDENTIAL_NAME)).one()
        for expected in model.ssh_only:
            hostname, serial, model_name = expected.hostname, expected.serial, expected.model.model
            version, address = expected.platform.os_version, expected.address
            names = {i.name for i in expected.interfaces}
            dev = s.exec(select(Device).where(Device.hostname == hostname)).first()
            assert dev is not None, f"{hostname} not discovered: {first_runs}"
            assert (dev.serial, dev.model, dev.os_version, dev.platform, dev.vendor) == (
                serial, model_name, version, "ios", "Cisco")
            assert dev.management_address == address
            poll = s.get(DevicePoll, dev.id)
            assert poll is not None
            assert (poll.protocol, poll.credential_id, poll.status) == ("ssh", cred.id, "ok")
            got = {i.name for i in s.exec(select(Interface).where(Interface.device_id == dev.id)).all()}
            assert got == names
            key = s.exec(select(SshHostKey).where(SshHostKey.address == address,
                                                  SshHostKey.port == city_ssh.port)).first()
            assert key is not None and key.fingerprint == city_ssh.device(hostname)["host_key"]


def test_their_uplinks_are_links_to_the_branch_switch(ssh_db: Engine, model: City,
                                                      first_runs: list[dict[str, Any]]) -> None:
    with Session(ssh_db) as s:
        for expected in model.ssh_only:
            (uplink, parent, port) = expected.lldp[0]
            pairs = (uplink.name, parent.hostname, port.name)
            dev = s.exec(select(Device).where(Device.hostname == expected.hostname)).one()
            up = s.exec(select(Device).where(Device.hostname == pairs[1])).one()
            mine = s.exec(select(Interface).where(Interface.device_id == dev.id, Interface.name == pairs[0])).one()
            theirs = s.exec(select(Interface).where(Interface.device_id == up.id, Interface.name == pairs[2])).one()
            a, b = sorted((mine.id or 0, theirs.id or 0))
            assert s.exec(select(Link).where(Link.a_interface_id == a, Link.b_interface_id == b)).first(), pairs
            parent_poll = s.get(DevicePoll, up.id)
            assert parent_poll is not None and parent_poll.protocol == "snmp"


def test_they_are_found_through_lldp_and_shown_on_the_topology(ssh_db: Engine, model: City,
                                                                first_runs: list[dict[str, Any]]) -> None:
    seeds = {a for _, _, s in _branches(model) for a in s}
    assert not seeds & {d.address for d in model.ssh_only}, "no seed at an SSH-only switch"
    with Session(ssh_db) as s:
        topo = views.topology(s)
    by_host = {d.hostname: d for d in topo.devices}
    host_of = {d.id: d.hostname for d in topo.devices}
    shown = {frozenset({(host_of[lk.a_device_id], lk.a_interface), (host_of[lk.b_device_id], lk.b_interface)})
             for lk in topo.links}
    for expected in model.ssh_only:
        assert expected.hostname in by_host, f"{expected.hostname} not on the topology: {first_runs}"
        assert by_host[expected.hostname].state == "ok", by_host[expected.hostname]
        (uplink, parent, port) = expected.lldp[0]
        assert frozenset({(expected.hostname, uplink.name), (parent.hostname, port.name)}) in shown


def test_cli_facts_of_an_snmp_device_match_its_snmp_facts(ssh_db: Engine, model: City, city_ssh: RunningSsh,
                                                         first_runs: list[dict[str, Any]]) -> None:
    parent = model.ssh_only[0].lldp[0][1]  # a branch switch SNMP discovery read
    hostname, address, device_type = parent.hostname, parent.address, city_ssh.device(parent.hostname)["device_type"]
    platform = platform_table().get(device_type)
    assert platform is not None
    read = cli_read_one(SshTarget(address=address, port=city_ssh.port, device_type=device_type,
                                  username=city_ssh.username, password=city_ssh.password),
                        dict(platform.discovery))
    assert read.problem is None, read.problem
    cli = facts_from_cli(device_type, read.outputs, address)
    with Session(ssh_db) as s:
        dev = s.exec(select(Device).where(Device.hostname == hostname)).one()
        snmp_names = {i.name for i in s.exec(select(Interface).where(Interface.device_id == dev.id)).all()}
        assert (cli.facts.sys_name, cli.facts.serial) == (dev.hostname, dev.serial)
        assert cli.facts.model == dev.model and cli.facts.os_version == dev.os_version
    assert {i.name for i in cli.interfaces} == snmp_names


def test_a_second_run_reads_them_over_ssh_again(ssh_db: Engine, model: City,
                                               first_runs: list[dict[str, Any]]) -> None:
    again = _discover(ssh_db, model)
    assert all(not r["new"] for r in again), again
    with Session(ssh_db) as s:
        for expected in model.ssh_only:
            dev = s.exec(select(Device).where(Device.hostname == expected.hostname)).one()
            poll = s.get(DevicePoll, dev.id)
            assert poll is not None and (poll.protocol, poll.status) == ("ssh", "ok")


def test_a_changed_host_key_refuses_the_device(ssh_db: Engine, model: City, city_ssh: RunningSsh,
                                              first_runs: list[dict[str, Any]]) -> None:
    victim, other = model.ssh_only[0], model.ssh_only[1]
    with Session(ssh_db) as s:
        rows = {r.address: r for r in s.exec(select(SshHostKey)).all()}
        mine, theirs = rows[victim.address], rows[other.address]
        recorded = theirs.fingerprint
        mine.key_type, mine.key_b64, mine.fingerprint = theirs.key_type, theirs.key_b64, theirs.fingerprint
        s.add(mine)
        s.commit()
    seeds = [victim.lldp[0][1].address, victim.address]
    asyncio.run(discover(ssh_db, MASTER, site_code=victim.site, seeds=seeds, timeout_s=1.0, retries=1))
    with Session(ssh_db) as s:
        dev = s.exec(select(Device).where(Device.hostname == victim.hostname)).one()
        poll = s.get(DevicePoll, dev.id)
        assert poll is not None and poll.status == "auth" and "host key" in poll.message
        row = s.exec(select(SshHostKey).where(SshHostKey.address == victim.address)).one()
        assert row.fingerprint == recorded  # the recorded key stays until someone accepts the new one
        assert row.offered_fingerprint == city_ssh.device(victim.hostname)["host_key"]


# --------------------------------------------------------------------------- one login per credential

LAB_PLATFORMS = ("ios", "ios-xe", "junos", "routeros", "arubaos-switch", "aos-cx")


def _bare_database(path: str, city_ssh: RunningSsh, wrong: int = 0) -> Engine:
    """A database that knows nothing of the devices: ``wrong`` SSH credentials the lab refuses
    (tried first), then the lab's own."""
    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.inventory.credentials import CredentialCreate, build
    from infra_mgr.inventory.models import CredentialKind

    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        for n in range(wrong):
            s.add(build(MASTER, CredentialCreate(name=f"old-{n}", kind=CredentialKind.ssh_password,
                                                 username=city_ssh.username, password=f"not-it-{n}",
                                                 port=city_ssh.port, priority=n)))
        configure_ssh_credential(s, MASTER, city_ssh)
        s.commit()
    return engine


def _sessions(city_ssh: RunningSsh) -> dict[str, int]:
    """Sessions each device has served, as the simulator reports them once it applied a fresh
    (empty) control serial: every session started before this call is counted."""
    control = city_ssh.control()
    control._write(control._read(), 10.0)
    return {host: int(d.get("sessions", 0)) for host, d in control.status().get("devices", {}).items()}


def test_an_unknown_device_costs_one_login_and_its_platform_is_recognised(
        city_ssh: RunningSsh, model: City, tmp_path_factory: pytest.TempPathFactory) -> None:
    from infra_mgr.network.crawl import Answer
    from infra_mgr.network.discovery import ssh_discovery

    engine = _bare_database(str(tmp_path_factory.mktemp("cli-one") / "one.db"), city_ssh)
    devices = [[d for d in model.devices if d.platform.key == key][-1] for key in LAB_PLATFORMS]
    with Session(engine) as s:
        read = ssh_discovery(s, MASTER, 1.0)
    assert read is not None
    before = _sessions(city_ssh)

    async def all_of_them() -> list[Any]:
        return [await read(d.address, None) for d in devices]

    answers = asyncio.run(all_of_them())
    after = _sessions(city_ssh)
    for device, got in zip(devices, answers, strict=True):
        assert isinstance(got, Answer), (device.hostname, device.platform.key, got)
        assert (got.protocol, got.result.facts.sys_name, got.result.facts.platform) == (
            "ssh", device.hostname, device.platform.key)
        assert got.result.facts.serial == device.serial
        assert after.get(device.hostname, 0) - before.get(device.hostname, 0) == 1, device.hostname


def test_logins_per_address_are_capped(city_ssh: RunningSsh, model: City,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    """Five refused credentials before the right one: the address sees a few logins, not six."""
    from infra_mgr.network import discovery
    from infra_mgr.network.crawl import SshMiss

    engine = _bare_database(str(tmp_path_factory.mktemp("cli-cap") / "cap.db"), city_ssh, wrong=5)
    device = [d for d in model.devices if d.platform.key == "ios-xe"][-1]
    with Session(engine) as s:
        read = discovery.ssh_discovery(s, MASTER, 1.0)
    assert read is not None
    got = asyncio.run(read(device.address, None))
    assert isinstance(got, SshMiss), got
    assert [p.kind for p in got.problems] == ["auth"] * discovery.MAX_SSH_LOGINS
    assert discovery.MAX_SSH_LOGINS < 5


def test_the_first_key_seen_is_pinned_for_the_rest_of_the_run(
        city_ssh: RunningSsh, model: City, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No key recorded yet: the one the first login saw is the one later logins of the same run
    require, so a device swapped in mid-run never receives a credential."""
    from infra_mgr.network.crawl import Answer, SshMiss
    from infra_mgr.network.discovery import ssh_discovery

    engine = _bare_database(str(tmp_path_factory.mktemp("cli-pin") / "pin.db"), city_ssh)
    device = [d for d in model.devices if d.platform.key == "routeros"][-2]
    with Session(engine) as s:
        read = ssh_discovery(s, MASTER, 1.0)
    assert read is not None
    first = asyncio.run(read(device.address, None))
    assert isinstance(first, Answer), first
    city_ssh.control().rekey(device.hostname)
    second = asyncio.run(read(device.address, None))
    assert isinstance(second, SshMiss), second
    assert [p.kind for p in second.problems] == ["hostkey_changed"]
    assert second.host_key is not None and second.host_key != first.host_key
