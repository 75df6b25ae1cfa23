"""Network tables: what discovery is told (targets), what it keeps per device, and neighbours.

The inventory owns devices, interfaces and links; this package owns the SNMP-side state of a
device (how it was last reached, its chassis id, its location string) and the raw neighbour
tables, from which it derives inventory links.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra_mgr.common import ts_field


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
    sys_object_id: str = Field(default="", sa_type=String(255))
    chassis_id: str = Field(default="", sa_type=String(64), index=True)
    location: str = Field(default="", sa_type=String(255))
    uptime_s: float | None = None
    status: str = Field(default=PollStatus.never.value, sa_type=String(16))
    message: str = Field(default="", sa_type=String(500))
    last_polled: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_ok: dt.datetime | None = ts_field(nullable=True, default_now=False)


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
