"""Network tables: what discovery is told (targets), what it keeps per device, and neighbours.

The inventory owns devices, interfaces and links; this package owns the SNMP-side state of a
device (how it was last reached, its chassis id, its location string) and the raw neighbour
tables, from which it derives inventory links.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra_mgr.common import json_field, ts_field


class TargetRole(StrEnum):
    seed = "seed"  # an address (or range) to start from
    allow = "allow"  # the crawl may follow neighbours into this range, never outside the allow-list


class PollStatus(StrEnum):
    ok = "ok"
    timeout = "timeout"
    auth = "auth"
    error = "error"
    never = "never"


class DiscoveryTarget(SQLModel, table=True):
    __tablename__ = "discovery_target"
    __table_args__ = (UniqueConstraint("cidr", "role", name="uq_discovery_target"),)

    id: int | None = Field(default=None, primary_key=True)
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="CASCADE")
    cidr: str = Field(sa_type=String(49))
    role: str = Field(default=TargetRole.seed.value, sa_type=String(8))
    description: str = Field(default="", sa_type=String(255))
    created_at: dt.datetime = ts_field()


class DiscoveryTargetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    cidr: str = PField(max_length=49, description="An address or a CIDR range, e.g. 127.2.0.0/16")
    role: TargetRole = TargetRole.seed
    description: str = PField(default="", max_length=255)

    @field_validator("cidr")
    @classmethod
    def _net(cls, value: str) -> str:
        try:
            return str(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ValueError("not an address or CIDR range") from exc

    @model_validator(mode="after")
    def _sized(self) -> DiscoveryTargetCreate:
        problem = target_problem(self.cidr, self.role)
        if problem:
            raise ValueError(f"cidr: {problem}")
        return self


# An allow-list entry is only matched against, never swept, so it may be wide, but not the whole
# address space: that would let a crawl follow neighbours anywhere.
MIN_ALLOW_PREFIX = {4: 8, 6: 32}


# Broadcast addresses with a fixed mask: the limited broadcast and the loopback net's (127/8).
# The kernel refuses to send to them (EACCES) and no device answers there.
_BROADCASTS = frozenset({ipaddress.IPv4Address("255.255.255.255"), ipaddress.IPv4Address("127.255.255.255")})


def not_device_range(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """True when no device can be at ``net``: unspecified, multicast, reserved (240/4; IPv6's
    reserved blocks except loopback) or a broadcast address on its own."""
    first = net.network_address
    if first.is_unspecified or net.is_multicast:
        return True
    if first.is_reserved and not first.is_loopback:
        return True
    return net.num_addresses == 1 and first in _BROADCASTS


def seed_address(value: str) -> str:
    """A seed given to one run, checked as a stored seed target would be (pydantic validator: the
    error lands on the seed's own index)."""
    problem = target_problem(value, TargetRole.seed.value)
    if problem:
        raise ValueError(problem)
    return value


def target_problem(cidr: str, role: str) -> str | None:
    """Why a discovery target cannot be used (None when it can). A seed range is swept address by
    address, so it must stay within the crawl's range limit; an unspecified or multicast address
    is never a device."""
    from infra_mgr.network.crawl import MAX_RANGE_HOSTS

    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return "not an address or CIDR range"
    if not_device_range(net):
        return f"{net} is not a range of device addresses"
    if role == TargetRole.allow.value:
        if net.prefixlen < MIN_ALLOW_PREFIX[net.version]:
            return (f"{net} is wider than an allow-list entry may be "
                    f"(at most /{MIN_ALLOW_PREFIX[net.version]} for IPv{net.version})")
        return None
    if net.num_addresses > MAX_RANGE_HOSTS + 2:
        return f"{net} has more than {MAX_RANGE_HOSTS} hosts to sweep; split it into smaller seed ranges"
    return None


class DiscoveryTargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int | None
    cidr: str
    role: TargetRole
    description: str
    created_at: dt.datetime


class DevicePoll(SQLModel, table=True):
    """SNMP-side state of one inventory device: how it answered the last time it was polled."""

    __tablename__ = "device_poll"

    device_id: int = Field(foreign_key="device.id", primary_key=True, ondelete="CASCADE")
    address: str = Field(default="", sa_type=String(45))
    credential_id: int | None = Field(default=None, foreign_key="credential.id", ondelete="SET NULL")
    protocol: str = Field(default="snmp", sa_type=String(8))  # snmp | ssh: how discovery last read it
    sys_object_id: str = Field(default="", sa_type=String(255))
    chassis_id: str = Field(default="", sa_type=String(64), index=True)
    location: str = Field(default="", sa_type=String(255))
    uptime_s: float | None = None
    status: str = Field(default=PollStatus.never.value, sa_type=String(16))
    message: str = Field(default="", sa_type=String(500))
    last_polled: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_ok: dt.datetime | None = ts_field(nullable=True, default_now=False)
    # When ``status`` last changed: "unreachable since 02:10" is what a person needs, not the last poll.
    since: dt.datetime | None = ts_field(nullable=True, default_now=False)


class DevicePollRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: int
    address: str
    credential_id: int | None
    sys_object_id: str
    chassis_id: str
    location: str
    uptime_s: float | None
    status: PollStatus
    message: str
    last_polled: dt.datetime | None
    last_ok: dt.datetime | None
    since: dt.datetime | None


class FailureReason(StrEnum):
    """Why discovery could not read a device (what a run lists and a device's state says)."""

    unreachable = "unreachable"  # no answer at all: nothing listens, or the network does not get there
    auth = "auth"  # something answers on the SNMP port, but no stored credential opens it
    garbage = "garbage"  # it answered, but with walks that loop, cannot be decoded or stop short


class RunStatus(StrEnum):
    running = "running"
    ok = "ok"  # the run completed (devices that failed are listed in its failures)
    failed = "failed"  # the run itself broke (``error`` says how); nothing it read was kept


class DiscoveryRun(SQLModel, table=True):
    """One discovery run as it happened: when, for how long, asked by whom, over what, what it found
    and which devices it could not read and why. Written by the discovery service, read-only to all."""

    __tablename__ = "discovery_run"

    id: int | None = Field(default=None, primary_key=True)
    started_at: dt.datetime = ts_field(index=True)
    finished_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    duration_s: float | None = None
    trigger: str = Field(default="manual", sa_type=String(16))
    actor: str = Field(default="", sa_type=String(64))
    scope: str = Field(default="", sa_type=String(255))
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default=RunStatus.running.value, sa_type=String(16))
    error: str = Field(default="", sa_type=String(1000))
    found: int = 0
    new: int = 0
    changed: int = 0
    missing: int = 0
    links: int = 0
    links_new: int = 0
    events: int = 0
    # {"new": [...], "changed": [...], "missing": [...]} hostnames, and failures (see RunFailure)
    devices: dict[str, Any] = json_field()
    failures: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class RunFailure(BaseModel):
    """A device a run could not read: its address, the name it goes by, and why."""

    address: str
    hostname: str | None = None
    device_id: int | None = None
    reason: FailureReason
    detail: str = ""


class DiscoveryRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    duration_s: float | None
    trigger: str
    actor: str
    scope: str
    targets: list[str]
    status: RunStatus
    error: str
    found: int
    new: int
    changed: int
    missing: int
    links: int
    links_new: int
    events: int
    new_devices: list[str]
    changed_devices: list[str]
    missing_devices: list[str]
    failures: list[RunFailure]

    @classmethod
    def of(cls, run: DiscoveryRun) -> DiscoveryRunRead:
        """The stored row as the API, the Jobs page and the CLI show it."""
        devices = run.devices or {}
        return cls(**{k: getattr(run, k) for k in cls.model_fields
                      if k not in ("new_devices", "changed_devices", "missing_devices", "failures")},
                   new_devices=devices.get("new", []), changed_devices=devices.get("changed", []),
                   missing_devices=devices.get("missing", []),
                   failures=[RunFailure.model_validate(f) for f in run.failures or []])


class Neighbor(SQLModel, table=True):
    """One row of a device's LLDP or CDP table, as last seen."""

    __tablename__ = "neighbor"
    __table_args__ = (
        UniqueConstraint("device_id", "protocol", "local_interface", "remote_chassis_id", "remote_port",
                         name="uq_neighbor"),
        Index("ix_neighbor_remote_device", "remote_device_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True, ondelete="CASCADE")
    interface_id: int | None = Field(default=None, foreign_key="interface.id", ondelete="SET NULL")
    protocol: str = Field(sa_type=String(8))
    local_interface: str = Field(default="", sa_type=String(128))
    remote_system_name: str = Field(default="", sa_type=String(255))
    remote_port: str = Field(default="", sa_type=String(128))
    remote_chassis_id: str = Field(default="", sa_type=String(64))
    remote_address: str = Field(default="", sa_column=Column(String(45), nullable=False, default=""))
    remote_platform: str = Field(default="", sa_type=String(255))
    remote_device_id: int | None = Field(default=None, foreign_key="device.id", ondelete="SET NULL")
    first_seen: dt.datetime = ts_field()
    last_seen: dt.datetime = ts_field()


class NeighborRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: int
    interface_id: int | None
    protocol: str
    local_interface: str
    remote_system_name: str
    remote_port: str
    remote_chassis_id: str
    remote_address: str
    remote_platform: str
    remote_device_id: int | None
    first_seen: dt.datetime
    last_seen: dt.datetime


# --------------------------------------------------------------------------- branch link audit


class UplinkSource(StrEnum):
    """How an interface became an uplink: seen leading toward headquarters, named so, set by a person,
    or taken from the uplink design file."""

    lldp = "lldp"
    alias = "alias"
    manual = "manual"
    plan = "plan"


class Uplink(SQLModel, table=True):
    """An interface that leads from a branch toward headquarters or the WAN, and what it should look like.

    Found by identification (LLDP/CDP links toward HQ, or the interface's alias) and kept across
    rediscovery; a person's choice (``manual``) is never changed by identification — including
    ``is_uplink = False``, which keeps an interface out of the audit for good. The expectations
    (speed, neighbour) say where they came from, so the audit's reasons can name their source.
    """

    __tablename__ = "uplink"

    interface_id: int = Field(foreign_key="interface.id", primary_key=True, ondelete="CASCADE")
    device_id: int = Field(foreign_key="device.id", index=True, ondelete="CASCADE")
    site_id: int = Field(foreign_key="site.id", index=True, ondelete="CASCADE")
    source: str = Field(default=UplinkSource.lldp.value, sa_type=String(16))
    is_uplink: bool = True
    manual: bool = False
    expected_speed_bps: int | None = Field(default=None, sa_type=BigInteger)
    expected_speed_source: str = Field(default="", sa_type=String(16))
    expected_neighbor: str = Field(default="", sa_type=String(253))
    expected_neighbor_source: str = Field(default="", sa_type=String(16))
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


class UplinkState(SQLModel, table=True):
    """The poller's memory of one uplink: the last raw counters and what was derived from them.

    Kept in the database, not in a process, so a restarted (or another) poller computes the next
    rate from the last stored sample instead of losing a cycle. ``note`` says why the last sample
    gave no rate (first sample, counter reset, agent rebooted, no answer).
    """

    __tablename__ = "uplink_state"

    interface_id: int = Field(foreign_key="interface.id", primary_key=True, ondelete="CASCADE")
    ts_ms: int = Field(default=0, sa_type=BigInteger)
    uptime_cs: int | None = Field(default=None, sa_type=BigInteger)
    counter_bits: int = 64
    in_octets: int | None = Field(default=None, sa_type=BigInteger)
    out_octets: int | None = Field(default=None, sa_type=BigInteger)
    in_pkts: int | None = Field(default=None, sa_type=BigInteger)
    out_pkts: int | None = Field(default=None, sa_type=BigInteger)
    in_errors: int | None = Field(default=None, sa_type=BigInteger)
    out_errors: int | None = Field(default=None, sa_type=BigInteger)
    in_discards: int | None = Field(default=None, sa_type=BigInteger)
    out_discards: int | None = Field(default=None, sa_type=BigInteger)
    last_change_cs: int | None = Field(default=None, sa_type=BigInteger)
    oper_status: str = Field(default="unknown", sa_type=String(16))
    oper_since: dt.datetime | None = ts_field(nullable=True, default_now=False)
    speed_bps: int | None = Field(default=None, sa_type=BigInteger)
    neighbor: str = Field(default="", sa_type=String(253))
    in_bps: float | None = None
    out_bps: float | None = None
    util_pct: float | None = None
    errors_ps: float | None = None
    discards_ps: float | None = None
    error_pct: float | None = None
    rx_dbm: float | None = None
    tx_dbm: float | None = None
    poll_status: str = Field(default="never", sa_type=String(16))
    note: str = Field(default="", sa_type=String(255))
    last_ok_ms: int | None = Field(default=None, sa_type=BigInteger)


class LinkStatusChange(SQLModel, table=True):
    """An uplink's oper status seen changing between two polls: the flap history.

    ``transitions`` counts what one observation proves: the status differs (1), or ifLastChange
    moved while the status is the same (2: it went and came back between polls).
    """

    __tablename__ = "link_status_change"
    __table_args__ = (Index("ix_link_status_change_if_at", "interface_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    interface_id: int = Field(foreign_key="interface.id", ondelete="CASCADE")
    at: dt.datetime = ts_field()
    status: str = Field(sa_type=String(16))
    previous: str = Field(default="", sa_type=String(16))
    transitions: int = 1


class DeviceReach(SQLModel, table=True):
    """The last reachability probe of a device: ICMP echo where it may be sent, and SNMP round trips.

    Both are kept because they answer different questions: an echo answer proves the box and the
    path are up; an SNMP answer proves the agent (and the management path our polls use) works.
    A device that answers ping but never SNMP is not "lossy", it is unmanageable.
    """

    __tablename__ = "device_reach"

    device_id: int = Field(foreign_key="device.id", primary_key=True, ondelete="CASCADE")
    ts_ms: int = Field(default=0, sa_type=BigInteger)
    icmp_sent: int = 0
    icmp_received: int = 0
    icmp_rtt_ms: float | None = None
    snmp_sent: int = 0
    snmp_received: int = 0
    snmp_rtt_ms: float | None = None
