"""Plain typed facts that SNMP getters return and the discovery service reconciles.

This is the contract between the collector side (which knows SNMP and nothing of the database)
and the service side (which knows the database and nothing of SNMP). Unknown values are ``None``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from infra_mgr.snmp.target import PollProblem


@dataclass
class DeviceFacts:
    sys_name: str | None = None
    sys_descr: str | None = None
    sys_object_id: str | None = None
    vendor: str | None = None
    platform: str | None = None
    model: str | None = None
    serial: str | None = None
    os_version: str | None = None
    uptime_s: float | None = None
    location: str | None = None
    contact: str | None = None
    chassis_id: str | None = None  # LLDP local chassis id (often the base MAC), for de-duplication
    if_count: int | None = None  # IF-MIB ifNumber: sizes the interface walk (not shown)


@dataclass
class InterfaceFacts:
    index: int
    name: str | None = None
    descr: str | None = None
    alias: str | None = None
    type: str | None = None
    speed_bps: int | None = None
    mac: str | None = None
    mtu: int | None = None
    admin_status: str | None = None  # up | down | testing
    oper_status: str | None = None  # up | down | testing | unknown | dormant | notPresent | lowerLayerDown
    in_octets: int | None = None
    out_octets: int | None = None
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None


@dataclass
class NeighborFacts:
    local_interface: str | None
    protocol: Literal["lldp", "cdp"]
    remote_system_name: str | None = None
    remote_port: str | None = None
    remote_chassis_id: str | None = None
    remote_address: str | None = None
    remote_platform: str | None = None
    local_if_index: int | None = None


@dataclass
class IpAddressFacts:
    address: str
    prefix_length: int | None = None
    if_index: int | None = None


@dataclass
class ProbeResult:
    """Everything one poll of one device found (the shape of ``infra-mgr snmp probe --json``)."""

    address: str
    port: int
    facts: DeviceFacts = field(default_factory=DeviceFacts)
    interfaces: list[InterfaceFacts] = field(default_factory=list)
    neighbors: list[NeighborFacts] = field(default_factory=list)
    ip_addresses: list[IpAddressFacts] = field(default_factory=list)
    errors: list[PollProblem] = field(default_factory=list)
    reachable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "port": self.port,
            "facts": {k: v for k, v in asdict(self.facts).items() if k not in ("contact", "chassis_id", "if_count")},
            "interfaces": [
                {k: getattr(i, k) for k in ("index", "name", "descr", "alias", "type", "speed_bps", "mac",
                                             "admin_status", "oper_status", "in_octets", "out_octets")}
                for i in self.interfaces
            ],
            "neighbors": [
                {k: getattr(n, k) for k in ("local_interface", "protocol", "remote_system_name", "remote_port",
                                             "remote_chassis_id", "remote_address")}
                for n in self.neighbors
            ],
            "errors": [asdict(e) for e in self.errors],
        }
