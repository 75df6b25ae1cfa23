"""Pytest fixtures that run real peer programs (loaded by ``tests/conftest.py`` as plugin ``peers``).

Each fixture starts its peer once per session in a private lab directory and stops it (the whole
process group) at teardown. A peer whose program is not installed skips the tests that need it —
except in CI (``CI=true``), where a missing peer is a failure: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.importer import import_file
from infra_mgr.lab.city import RunningCity, city_liar_spec, city_spec, liar_available
from infra_mgr.lab.peers import SnmpAgent, postgres_spec, snmp_agents, snmpsim_spec
from infra_mgr.lab.power_peers import (
    ModbusEndpoint,
    NutEndpoint,
    OutageControl,
    SnmpUpsAgents,
    modbus_drups_spec,
    modbus_dse_spec,
    modbus_meter_spec,
    nut_spec,
    snmp_ups_spec,
)
from infra_mgr.lab.setup import configure_discovery
from infra_mgr.lab.ssh_lab import RunningSsh, city_ssh_spec
from infra_mgr.lab.supervisor import Lab, PeerRecord, PeerSpec, PeerUnavailable


def peer_unavailable(reason: str) -> NoReturn:
    """Skip, or fail when running in CI."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"peer unavailable in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def start_peer(lab: Lab, builder: Callable[[Path], PeerSpec]) -> PeerRecord:
    """Build a peer's spec (skipping/failing if its program is missing) and start it in ``lab``."""
    try:
        spec = builder(lab.lab_dir)
    except PeerUnavailable as exc:
        peer_unavailable(exc.summary)
    return lab.start(spec)


@pytest.fixture(scope="session")
def peer_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The session's lab directory; anything still running in it is stopped at the end."""
    lab = Lab(tmp_path_factory.mktemp("lab"))
    yield lab
    lab.stop_all()


@pytest.fixture(scope="session")
def postgres_url(peer_lab: Lab) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://…``) of a private PostgreSQL with database infra_mgr."""
    try:
        import psycopg  # noqa: F401  (the URL names this driver)
    except ImportError:
        peer_unavailable("psycopg is not installed (pip install 'infra-mgr[postgres]')")
    record = start_peer(peer_lab, postgres_spec)
    yield str(record.info["url"])
    peer_lab.stop(record.name)


@pytest.fixture(scope="session")
def snmpsim_agent(peer_lab: Lab) -> Iterator[SnmpAgent]:
    """The simulated Jeddah HQ core switch (``jed-hq-core1``): host, port and community."""
    record = start_peer(peer_lab, snmpsim_spec)
    yield snmp_agents(record)[0]
    peer_lab.stop(record.name)


@pytest.fixture(scope="session")
def city(peer_lab: Lab) -> Iterator[RunningCity]:
    """The simulated city (infra_mgr/lab/city.py), started once per session: ~134 devices, each on
    its own loopback address (127.1.0.x backbone, 127.2.<branch>.1 router / .2 switch), all on
    ``city.port``; ``city.expected`` is its expected.json (devices, links, faults). The
    broken-walks device is served by the liar when ``infra_mgr.lab.liar`` exists."""
    record = start_peer(peer_lab, lambda lab_dir: city_spec(lab_dir, prefer_standard_port=False))
    liar = start_peer(peer_lab, city_liar_spec) if liar_available() else None
    yield RunningCity.from_record(record, liar_running=liar is not None)
    if liar is not None:
        peer_lab.stop(liar.name)
    peer_lab.stop(record.name)


@pytest.fixture(scope="session")
def city_ssh(peer_lab: Lab, city: RunningCity) -> Iterator[RunningSsh]:
    """The city's SSH side (infra_mgr/lab/ssh_sim.py) beside the running ``city``: every device
    (and the SSH-only branch switches) on its own address, one free TCP port (``city_ssh.port``),
    user/password ``city_ssh.username``/``.password``; ``city_ssh.expected`` names which device
    hangs, refuses, pages, changes, breaks which baseline rule; ``city_ssh.control()`` changes a
    device's configuration or host key at run time."""
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        peer_unavailable("asyncssh is not installed")
    record = start_peer(peer_lab, city_ssh_spec)
    yield RunningSsh.from_record(record)
    peer_lab.stop(record.name)


EXAMPLE_CITY = Path(__file__).parents[1] / "examples" / "jeddah.yaml"


def city_database(url: str, master: bytes, city: RunningCity) -> Engine:
    """A migrated database holding the example city, its credentials and discovery targets
    pointed at the running lab city: what a whole-city discovery test starts from."""
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        import_file(s, EXAMPLE_CITY)
        configure_discovery(s, master, city)
        s.commit()
    return engine


# --- the power lab: every peer follows <lab>/outage.json (infra_mgr/lab/power_scenario.py) ---------


@pytest.fixture(scope="session")
def outage(peer_lab: Lab) -> Iterator[OutageControl]:
    """Start/stop/reset the mains outage every power peer of the session's lab follows, and read it
    (``outage.read()``, ``outage.readings("drups")``). Starts from "mains never failed"."""
    control = OutageControl(peer_lab.lab_dir)
    control.reset()
    yield control
    control.reset()


@pytest.fixture(scope="session")
def nut_server(peer_lab: Lab, outage: OutageControl) -> Iterator[NutEndpoint]:
    """NUT upsd (dummy-ups + the scenario pusher) serving UPS ``dc-ups1``: host, port, ups, user,
    password (a monitor user)."""
    record = start_peer(peer_lab, nut_spec)
    yield NutEndpoint.from_record(record)
    peer_lab.stop(record.name)


def _modbus(peer_lab: Lab, builder: Callable[[Path], PeerSpec]) -> Iterator[ModbusEndpoint]:
    try:
        import pymodbus  # noqa: F401
    except ImportError:
        peer_unavailable("pymodbus is not installed (pip install 'pymodbus>=3.16,<3.17')")
    record = start_peer(peer_lab, builder)
    yield ModbusEndpoint.from_record(record)
    peer_lab.stop(record.name)


@pytest.fixture(scope="session")
def modbus_dse(peer_lab: Lab, outage: OutageControl) -> Iterator[ModbusEndpoint]:
    """The generator's DSE GenComm controller over Modbus TCP: host, port, unit (1)."""
    yield from _modbus(peer_lab, modbus_dse_spec)


@pytest.fixture(scope="session")
def modbus_drups(peer_lab: Lab, outage: OutageControl) -> Iterator[ModbusEndpoint]:
    """The DRUPS over Modbus TCP (map infra_mgr/power/maps/drups-eurodiesel.yaml): host, port, unit (1)."""
    yield from _modbus(peer_lab, modbus_drups_spec)


@pytest.fixture(scope="session")
def modbus_meter(peer_lab: Lab, outage: OutageControl) -> Iterator[ModbusEndpoint]:
    """The power meters behind one gateway: host, port, unit 1 = facility intake; ``units`` also
    names unit 2 = IT (UPS outputs)."""
    yield from _modbus(peer_lab, modbus_meter_spec)


@pytest.fixture(scope="session")
def snmp_ups(peer_lab: Lab, outage: OutageControl) -> Iterator[SnmpUpsAgents]:
    """The SNMP UPS agents (one snmpsim): ``.apc`` (PowerNet-MIB, dc-ups2) and ``.rfc1628``
    (UPS-MIB, dc-ups3), each host, port, community."""
    record = start_peer(peer_lab, snmp_ups_spec)
    yield SnmpUpsAgents.from_record(record)
    peer_lab.stop(record.name)
