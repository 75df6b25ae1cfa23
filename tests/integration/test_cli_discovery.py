"""CLI discovery over SSH against the running lab (snmpsim city + the SSH simulator): the branch
switches that have no SNMP agent are found from their neighbour's LLDP, read over SSH with the
stored SSH credential, and land in the inventory with their identity, interfaces and links; the
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
    switch. The seeds are the branch switch (SNMP) and the SSH-only switch's address: the lab's
    SNMP LLDP tables do not list the SSH-only switches unless asked to, so a crawl would not
    learn of them otherwise."""
    out = []
    for device in model.ssh_only:
        prefix = device.address.rsplit(".", 1)[0]
        out.append((device.site, f"{prefix}.0/29", [device.lldp[0][1].address, device.address]))
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
