"""Peer kinds of the power lab: NUT, Modbus (DSE generator, DRUPS, meters) and SNMP UPS agents.

Every one of them computes what it serves from the shared outage scenario
(:mod:`infra_mgr.lab.power_scenario`, ``<lab>/outage.json``), so ``infra-mgr lab outage start``
moves them all at once. Registered in ``peers.PEER_KINDS`` under these names:

=============== ============================================ =========================================
kind            program                                      address (``info``)
=============== ============================================ =========================================
``nut``         ``python -m infra_mgr.lab.nut_sim``:         127.3.0.21:<tcp>; UPS ``dc-ups1``;
                dummy-ups + upsd + the scenario pusher       monitor and SET users
``modbus-dse``  ``python -m infra_mgr.lab.modbus_sim``       127.3.0.11:<tcp>, unit 1
``modbus-drups``  same, ``--device drups``                   127.3.0.12:<tcp>, unit 1
``modbus-meter``  same, ``--device meter``                   127.3.0.13:<tcp>, unit 1 facility, 2 IT
``snmp-ups``    snmpsim with the ``powerlab`` variation      dc-ups2 (APC) 127.3.0.22, dc-ups3
                                                             (RFC 1628) 127.3.0.23, dc-pdu1 (APC rack
                                                             PDU) 127.3.0.24, dc-ats1 (APC ATS)
                                                             127.3.0.25, community public
=============== ============================================ =========================================

Ports are free ports taken when the spec is built. NUT runs as root when we are root
(``-u root``), with ``NUT_CONFPATH``/``NUT_STATEPATH``/``NUT_ALTPIDPATH`` in the lab; its driver
socket path must stay under the kernel's 108-byte limit, so a long lab path moves the state
directory to ``/tmp`` (removed when the peer stops).
"""

from __future__ import annotations

import hashlib
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from infra_mgr.lab.modbus_sim import device_units
from infra_mgr.lab.nut_sim import NUT_BIN, NutConnection, ups_loaded, write_config
from infra_mgr.lab.peers import NUT_PORT, SnmpAgent, documented_port, snmp_agents
from infra_mgr.lab.power_scenario import (
    Outage,
    Readings,
    device_readings,
    load_outage,
    reset_outage,
    start_outage,
    stop_outage,
)
from infra_mgr.lab.power_snmp import snmp_ups_spec
from infra_mgr.lab.supervisor import PeerRecord, PeerSpec, PeerUnavailable, owns_socket, process_tree

NUT_HOST = "127.3.0.21"
NUT_UPSES = ("dc-ups1",)
MODBUS_PORT = 502  # Modbus/TCP's registered port, on each simulator's own 127.3.0.x address
MODBUS_HOSTS = {"dse": "127.3.0.11", "drups": "127.3.0.12", "meter": "127.3.0.13"}
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes with the terminating NUL; keep a margin


def _nut_state_dir(root: Path) -> tuple[Path, list[Path]]:
    state = root / "state"
    longest = max(len(str(state / f"dummy-ups-{ups}")) for ups in NUT_UPSES)
    if longest <= SOCKET_PATH_MAX:
        return state, []
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    short = Path("/tmp") / f"infra-mgr-nut-{digest}"
    return short, [short]


def nut_spec(lab_dir: Path, *, seq: bool = False, name: str = "nut") -> PeerSpec:
    """Debian's NUT (``dummy-ups`` per UPS + ``upsd``) on 127.3.0.21:<free port>, UPS ``dc-ups1``,
    kept in line with the scenario by the pusher (or playing a ``.seq`` outage loop if ``seq``)."""
    for program in ("dummy-ups", "upsd"):
        if not (NUT_BIN / program).exists():
            raise PeerUnavailable(f"nut: {NUT_BIN / program} not found (apt-get install nut-server nut-client)")
    lab = Path(lab_dir).absolute()
    root = lab / name
    config_dir = root / "etc"
    state_dir, cleanup = _nut_state_dir(root)
    host, port = NUT_HOST, documented_port(NUT_HOST, "tcp", NUT_PORT)
    monitor = ("monuser", "lab-monitor-pass")
    admin = ("labadmin", secrets.token_hex(8))

    def prepare() -> None:
        write_config(
            config_dir, state_dir, lab, host=host, port=port, upses=NUT_UPSES, monitor=monitor, admin=admin, seq=seq
        )

    def ready(pid: int) -> bool:
        if not any(owns_socket(p, "tcp", host, port) for p in process_tree(pid)):
            return False
        conn = NutConnection(host, port, timeout=0.5)
        try:
            listed = conn.list("LIST UPS")
            if not all(any(line.startswith(f"UPS {ups} ") for line in listed) for ups in NUT_UPSES):
                return False
            return all(ups_loaded(conn, ups) for ups in NUT_UPSES)
        finally:
            conn.sock.close()

    return PeerSpec(
        name=name,
        argv=[sys.executable, "-m", "infra_mgr.lab.nut_sim", "--config-dir", str(config_dir), "--lab-dir", str(lab)],
        ready=ready,
        cwd=root,
        ports={"upsd": port},
        addresses=[f"{host}:{port}/tcp"],
        info={
            "kind": "nut",
            "host": host,
            "port": port,
            "upses": list(NUT_UPSES),
            "user": monitor[0],
            "password": monitor[1],
            "url": f"nut://{monitor[0]}@{host}:{port}/{NUT_UPSES[0]}",
            "config_dir": str(config_dir),
            "mode": "seq" if seq else "pusher",
        },
        prepare=prepare,
        ready_timeout=25.0,
        cleanup=cleanup,
    )


def modbus_spec(lab_dir: Path, device: str, *, unit: int = 1) -> PeerSpec:
    """A pymodbus simulator of ``device`` (``dse`` | ``drups`` | ``meter``) on its 127.3.0.x address."""
    try:
        import pymodbus  # noqa: F401
    except ImportError:
        raise PeerUnavailable("modbus: pymodbus is not installed (pip install 'pymodbus>=3.16,<3.17')") from None
    lab = Path(lab_dir).absolute()
    name = f"modbus-{device}"
    host = MODBUS_HOSTS[device]
    port = documented_port(host, "tcp", MODBUS_PORT)  # 502 as in the README, when free
    units = device_units(device, unit)
    argv = [sys.executable, "-m", "infra_mgr.lab.modbus_sim", "--host", host, "--port", str(port)]
    argv += ["--device", device, "--lab-dir", str(lab), "--unit", str(unit)]

    def ready(pid: int) -> bool:
        return owns_socket(pid, "tcp", host, port)

    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        cwd=lab,
        ports={"modbus": port},
        addresses=[f"{host}:{port}/tcp"],
        info={
            "kind": name,
            "host": host,
            "port": port,
            "unit": unit,
            "units": {u.scenario_device: u.unit for u in units},
            "map": units[0].map_name,
            "url": f"modbus://{host}:{port}/{unit}",
        },
        prepare=lambda: lab.mkdir(parents=True, exist_ok=True),
        ready_timeout=15.0,
    )


def modbus_dse_spec(lab_dir: Path) -> PeerSpec:
    """The standby generator's DSE GenComm controller."""
    return modbus_spec(lab_dir, "dse")


def modbus_drups_spec(lab_dir: Path) -> PeerSpec:
    """The diesel rotary UPS."""
    return modbus_spec(lab_dir, "drups")


def modbus_meter_spec(lab_dir: Path) -> PeerSpec:
    """The facility (unit 1) and IT (unit 2) power meters."""
    return modbus_spec(lab_dir, "meter")


POWER_KINDS = {
    "nut": nut_spec,
    "modbus-dse": modbus_dse_spec,
    "modbus-drups": modbus_drups_spec,
    "modbus-meter": modbus_meter_spec,
    "snmp-ups": snmp_ups_spec,
}


# --- what tests and tools need to reach the power peers ----------------------------------------------


@dataclass(frozen=True)
class NutEndpoint:
    """A running NUT server: where, which UPS, and the monitor user's credentials."""

    host: str
    port: int
    ups: str
    user: str
    password: str

    @classmethod
    def from_record(cls, record: PeerRecord) -> NutEndpoint:
        info = record.info
        return cls(info["host"], int(info["port"]), info["upses"][0], info["user"], info["password"])


@dataclass(frozen=True)
class ModbusEndpoint:
    """A running Modbus simulator: where, its (first) unit id and every unit by scenario device."""

    host: str
    port: int
    unit: int
    units: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: PeerRecord) -> ModbusEndpoint:
        info = record.info
        return cls(info["host"], int(info["port"]), int(info["unit"]), dict(info.get("units", {})))


@dataclass(frozen=True)
class SnmpUpsAgents:
    """The SNMP power agents (each host, port, community): the APC UPS, the RFC 1628 UPS, and —
    on the same snmpsim — the APC rack PDU and the APC ATS (None on a record from before they existed)."""

    apc: SnmpAgent
    rfc1628: SnmpAgent
    pdu: SnmpAgent | None = None
    ats: SnmpAgent | None = None

    @classmethod
    def from_record(cls, record: PeerRecord) -> SnmpUpsAgents:
        agents = {a.name: a for a in snmp_agents(record)}
        return cls(apc=agents["dc-ups2"], rfc1628=agents["dc-ups3"], pdu=agents.get("dc-pdu1"),
                   ats=agents.get("dc-ats1"))


@dataclass(frozen=True)
class OutageControl:
    """Start, stop and read the outage of one lab (what ``infra-mgr lab outage`` does)."""

    lab_dir: Path

    def start(self, fuel_scale: float = 1.0) -> Outage:
        return start_outage(self.lab_dir, fuel_scale=fuel_scale)

    def stop(self) -> Outage:
        return stop_outage(self.lab_dir)

    def reset(self) -> None:
        reset_outage(self.lab_dir)

    def read(self) -> Outage:
        return load_outage(self.lab_dir)

    def readings(self, device: str, now: float | None = None) -> Readings:
        """What the scenario says ``device`` reads (``drups``, ``dse``, ``ups:dc-ups1`` …)."""
        return device_readings(device, self.read(), now)
