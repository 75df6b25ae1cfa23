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

from infra_mgr.lab.peers import SnmpAgent, postgres_spec, snmp_agents, snmpsim_spec
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
