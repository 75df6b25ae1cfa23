"""Every kind of lab peer by name: what ``infra-mgr lab up`` and the test fixtures start.

The registry sits above the peer modules (``peers``: single agents and PostgreSQL; ``city``;
``power_peers``), so each of them imports only what it builds on and none imports another back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from infra_mgr.lab.city import city_liar_spec, city_spec
from infra_mgr.lab.peers import liar_spec, postgres_spec, snmpsim_spec
from infra_mgr.lab.power_peers import POWER_KINDS
from infra_mgr.lab.ssh_lab import city_ssh_spec
from infra_mgr.lab.supervisor import LabError, PeerSpec


def city_peer(lab_dir: Path) -> PeerSpec:
    """The whole simulated city (~134 devices, each on its own loopback address)."""
    return city_spec(lab_dir)


def city_liar_peer(lab_dir: Path) -> PeerSpec:
    """The city's broken-walks device, served by the liar on its city address (after ``city``)."""
    return city_liar_spec(lab_dir)


def power_peer(kind: str) -> Callable[[Path], PeerSpec]:
    """A power-lab kind (``nut``, ``modbus-*``, ``snmp-ups``) from ``power_peers``."""

    def build(lab_dir: Path) -> PeerSpec:
        return POWER_KINDS[kind](lab_dir)

    build.__doc__ = f"The power lab's {kind!r} peer (see infra_mgr.lab.power_peers)."
    return build


POWER_PEERS = ("nut", "modbus-dse", "modbus-drups", "modbus-meter", "snmp-ups")

# --- registry ----------------------------------------------------------------------------------

PeerKind = Callable[[Path], PeerSpec]

PEER_KINDS: dict[str, PeerKind] = {
    "snmpsim": snmpsim_spec,
    "postgres": postgres_spec,
    "liar": liar_spec,
    "city": city_peer,
    "city-liar": city_liar_peer,
    "city-ssh": city_ssh_spec,
    **{kind: power_peer(kind) for kind in POWER_PEERS},
}

# `lab up` starts the city (the liar part needs the city's port, so it comes after) and PostgreSQL;
# the single-device `snmpsim` kind stays for tests that want one small agent.
DEFAULT_PEERS: tuple[str, ...] = ("city", "city-liar", "city-ssh", "postgres", *POWER_PEERS)


def build_spec(kind: str, lab_dir: Path) -> PeerSpec:
    """The spec of a registered peer kind (``LabError`` for an unknown one)."""
    try:
        builder = PEER_KINDS[kind]
    except KeyError:
        raise LabError(f"unknown peer {kind!r} (known: {', '.join(sorted(PEER_KINDS))})") from None
    return builder(lab_dir)
