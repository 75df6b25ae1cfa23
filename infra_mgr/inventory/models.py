"""Inventory tables and their API schemas.

Each table has a ``*Create`` schema (validates input, forbids unknown fields), a ``*Update`` schema
(every field optional, for PATCH) and a ``*Read`` schema (what the API returns). Table classes do
not validate on construction, so input always passes through a schema first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import JSON, BigInteger, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra_mgr.common import json_field, ts_field

# --------------------------------------------------------------------------- enums


class SiteKind(StrEnum):
    branch = "branch"
    hq = "hq"
    datacenter = "datacenter"


class SiteStatus(StrEnum):
    active = "active"
    planned = "planned"
    decommissioned = "decommissioned"


class DeviceStatus(StrEnum):
    active = "active"
    planned = "planned"
    offline = "offline"
    missing = "missing"
    decommissioned = "decommissioned"


class LinkSource(StrEnum):
    lldp = "lldp"
    cdp = "cdp"
    manual = "manual"


class IPStatus(StrEnum):
    active = "active"
    reserved = "reserved"
    dhcp = "dhcp"
    deprecated = "deprecated"


class CredentialKind(StrEnum):
    snmp_v2c = "snmp_v2c"
    snmp_v3 = "snmp_v3"
    ssh_password = "ssh_password"
    ssh_key = "ssh_key"
    api_token = "api_token"
    nut = "nut"  # a NUT upsd user (username + password)


_CODE_RE = r"^[A-Z0-9][A-Z0-9_\-]{0,31}$"
_HOSTNAME_RE = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,252}$"
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _check_ip(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as exc:
        raise ValueError("not a valid IPv4 or IPv6 address") from exc


def _check_mac(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    norm = value.strip().lower().replace("-", ":").replace(".", "")
    if ":" not in norm and len(norm) == 12:
        norm = ":".join(norm[i : i + 2] for i in range(0, 12, 2))
    if not _MAC_RE.match(norm):
        raise ValueError("not a MAC address (expected aa:bb:cc:dd:ee:ff)")
    return norm


# --------------------------------------------------------------------------- site


class Site(SQLModel, table=True):
    __tablename__ = "site"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_column=Column(String(32), unique=True, nullable=False, index=True))
    name_en: str = Field(sa_type=String(200))
    name_ar: str = Field(default="", sa_type=String(200))
    kind: str = Field(default=SiteKind.branch.value, sa_type=String(16), index=True)
    status: str = Field(default=SiteStatus.active.value, sa_type=String(16), index=True)
    address: str = Field(default="", sa_type=String(500))
    latitude: float | None = None
    longitude: float | None = None
    description: str = Field(default="", sa_type=Text)
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


class SiteCreate(_In):
    code: str = PField(pattern=_CODE_RE, description="Short unique code, e.g. JED-B07")
    name_en: str = PField(min_length=1, max_length=200)
    name_ar: str = PField(default="", max_length=200)
    kind: SiteKind = SiteKind.branch
    status: SiteStatus = SiteStatus.active
    address: str = PField(default="", max_length=500)
    latitude: float | None = PField(default=None, ge=-90, le=90)
    longitude: float | None = PField(default=None, ge=-180, le=180)
    description: str = PField(default="", max_length=5000)


class SiteUpdate(_In):
    code: str | None = PField(default=None, pattern=_CODE_RE)
    name_en: str | None = PField(default=None, min_length=1, max_length=200)
    name_ar: str | None = PField(default=None, max_length=200)
    kind: SiteKind | None = None
    status: SiteStatus | None = None
    address: str | None = PField(default=None, max_length=500)
    latitude: float | None = PField(default=None, ge=-90, le=90)
    longitude: float | None = PField(default=None, ge=-180, le=180)
    description: str | None = PField(default=None, max_length=5000)


class SiteRead(_Out):
    id: int
    code: str
    name_en: str
    name_ar: str
    kind: SiteKind
    status: SiteStatus
    address: str
    latitude: float | None
    longitude: float | None
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --------------------------------------------------------------------------- device


class Device(SQLModel, table=True):
    __tablename__ = "device"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int = Field(foreign_key="site.id", index=True, ondelete="RESTRICT")
    hostname: str = Field(sa_column=Column(String(253), unique=True, nullable=False, index=True))
    management_address: str | None = Field(
        default=None, sa_column=Column(String(45), unique=True, nullable=True, index=True)
    )
    role: str = Field(default="", sa_type=String(64), index=True)
    vendor: str = Field(default="", sa_type=String(64), index=True)
    platform: str = Field(default="", sa_type=String(64))
    model: str = Field(default="", sa_type=String(128))
    serial: str = Field(default="", sa_type=String(128), index=True)
    os_version: str = Field(default="", sa_type=String(128))
    status: str = Field(default=DeviceStatus.active.value, sa_type=String(16), index=True)
    credential_id: int | None = Field(default=None, foreign_key="credential.id", ondelete="SET NULL")
    first_seen: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_seen: dt.datetime | None = ts_field(nullable=True, default_now=False)
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


class DeviceCreate(_In):
    site_id: int = PField(ge=1, le=2**63 - 1)
    hostname: str = PField(pattern=_HOSTNAME_RE)
    management_address: str | None = None
    role: str = PField(default="", max_length=64)
    vendor: str = PField(default="", max_length=64)
    platform: str = PField(default="", max_length=64)
    model: str = PField(default="", max_length=128)
    serial: str = PField(default="", max_length=128)
    os_version: str = PField(default="", max_length=128)
    status: DeviceStatus = DeviceStatus.active
    credential_id: int | None = PField(default=None, ge=1, le=2**63 - 1)

    _ip = field_validator("management_address")(_check_ip)


class DeviceUpdate(_In):
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    hostname: str | None = PField(default=None, pattern=_HOSTNAME_RE)
    management_address: str | None = None
    role: str | None = PField(default=None, max_length=64)
    vendor: str | None = PField(default=None, max_length=64)
    platform: str | None = PField(default=None, max_length=64)
    model: str | None = PField(default=None, max_length=128)
    serial: str | None = PField(default=None, max_length=128)
    os_version: str | None = PField(default=None, max_length=128)
    status: DeviceStatus | None = None
    credential_id: int | None = PField(default=None, ge=1, le=2**63 - 1)

    _ip = field_validator("management_address")(_check_ip)


class DeviceRead(_Out):
    id: int
    site_id: int
    hostname: str
    management_address: str | None
    role: str
    vendor: str
    platform: str
    model: str
    serial: str
    os_version: str
    status: DeviceStatus
    credential_id: int | None
    first_seen: dt.datetime | None
    last_seen: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


# --------------------------------------------------------------------------- interface


class Interface(SQLModel, table=True):
    __tablename__ = "interface"
    __table_args__ = (UniqueConstraint("device_id", "name", name="uq_interface_device_name"),)

    id: int | None = Field(default=None, primary_key=True)
    device_id: int = Field(foreign_key="device.id", index=True, ondelete="CASCADE")
    name: str = Field(sa_type=String(128))
    if_index: int | None = None
    description: str = Field(default="", sa_type=String(255))
    alias: str = Field(default="", sa_type=String(255))
    type: str = Field(default="", sa_type=String(64))
    speed_bps: int | None = Field(default=None, sa_type=BigInteger)
    mtu: int | None = None
    mac: str | None = Field(default=None, sa_type=String(17))
    admin_status: str = Field(default="up", sa_type=String(16))
    oper_status: str = Field(default="unknown", sa_type=String(16))
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


_IF_STATUS = r"^(up|down|testing|unknown|dormant|notPresent|lowerLayerDown)$"


class InterfaceCreate(_In):
    device_id: int = PField(ge=1, le=2**63 - 1)
    name: str = PField(min_length=1, max_length=128)
    if_index: int | None = PField(default=None, ge=1, le=2**31 - 1)
    description: str = PField(default="", max_length=255)
    alias: str = PField(default="", max_length=255)
    type: str = PField(default="", max_length=64)
    speed_bps: int | None = PField(default=None, ge=0, le=2**63 - 1)
    mtu: int | None = PField(default=None, ge=0, le=2**31 - 1)
    mac: str | None = None
    admin_status: str = PField(default="up", pattern=_IF_STATUS)
    oper_status: str = PField(default="unknown", pattern=_IF_STATUS)

    _mac = field_validator("mac")(_check_mac)


class InterfaceUpdate(_In):
    name: str | None = PField(default=None, min_length=1, max_length=128)
    if_index: int | None = PField(default=None, ge=1, le=2**31 - 1)
    description: str | None = PField(default=None, max_length=255)
    alias: str | None = PField(default=None, max_length=255)
    type: str | None = PField(default=None, max_length=64)
    speed_bps: int | None = PField(default=None, ge=0, le=2**63 - 1)
    mtu: int | None = PField(default=None, ge=0, le=2**31 - 1)
    mac: str | None = None
    admin_status: str | None = PField(default=None, pattern=_IF_STATUS)
    oper_status: str | None = PField(default=None, pattern=_IF_STATUS)

    _mac = field_validator("mac")(_check_mac)


class InterfaceRead(_Out):
    id: int
    device_id: int
    name: str
    if_index: int | None
    description: str
    alias: str
    type: str
    speed_bps: int | None
    mtu: int | None
    mac: str | None
    admin_status: str
    oper_status: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --------------------------------------------------------------------------- link


class Link(SQLModel, table=True):
    """A cable (or logical adjacency) between two interfaces; ``a`` is the lower interface id."""

    __tablename__ = "link"
    __table_args__ = (UniqueConstraint("a_interface_id", "b_interface_id", name="uq_link_ends"),)

    id: int | None = Field(default=None, primary_key=True)
    a_interface_id: int = Field(foreign_key="interface.id", index=True, ondelete="CASCADE")
    b_interface_id: int = Field(foreign_key="interface.id", index=True, ondelete="CASCADE")
    source: str = Field(default=LinkSource.manual.value, sa_type=String(16))
    first_seen: dt.datetime = ts_field()
    last_seen: dt.datetime = ts_field()


class LinkCreate(_In):
    a_interface_id: int = PField(ge=1, le=2**63 - 1)
    b_interface_id: int = PField(ge=1, le=2**63 - 1)
    source: LinkSource = LinkSource.manual


class LinkUpdate(_In):
    source: LinkSource | None = None


class LinkRead(_Out):
    id: int
    a_interface_id: int
    b_interface_id: int
    source: LinkSource
    first_seen: dt.datetime
    last_seen: dt.datetime


# --------------------------------------------------------------------------- IPAM


class Prefix(SQLModel, table=True):
    __tablename__ = "prefix"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(sa_column=Column(String(49), unique=True, nullable=False, index=True))
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="SET NULL")
    role: str = Field(default="", sa_type=String(32))
    description: str = Field(default="", sa_type=String(255))
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


def _check_prefix(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"not a valid network in CIDR form with host bits zero ({exc})") from exc


class PrefixCreate(_In):
    prefix: str = PField(description="CIDR, e.g. 10.64.7.0/24", max_length=49)
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    role: str = PField(default="", max_length=32)
    description: str = PField(default="", max_length=255)

    _p = field_validator("prefix")(_check_prefix)


class PrefixUpdate(_In):
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    role: str | None = PField(default=None, max_length=32)
    description: str | None = PField(default=None, max_length=255)


class PrefixRead(_Out):
    id: int
    prefix: str
    site_id: int | None
    role: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


class IPAddress(SQLModel, table=True):
    """One host address. Unique over the estate (one routing domain), which is also what makes
    concurrent next-free allocation safe: a collision is a constraint error, never a duplicate."""

    __tablename__ = "ip_address"
    __table_args__ = (Index("ix_ip_address_prefix_id", "prefix_id"),)

    id: int | None = Field(default=None, primary_key=True)
    address: str = Field(sa_column=Column(String(45), unique=True, nullable=False))
    prefix_id: int | None = Field(default=None, foreign_key="prefix.id", ondelete="SET NULL")
    prefix_length: int = 32
    status: str = Field(default=IPStatus.active.value, sa_type=String(16))
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True, ondelete="SET NULL")
    interface_id: int | None = Field(default=None, foreign_key="interface.id", ondelete="SET NULL")
    dns_name: str = Field(default="", sa_type=String(253))
    description: str = Field(default="", sa_type=String(255))
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


class IPAddressCreate(_In):
    address: str = PField(max_length=45)
    status: IPStatus = IPStatus.active
    device_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    interface_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    dns_name: str = PField(default="", max_length=253)
    description: str = PField(default="", max_length=255)

    _ip = field_validator("address")(_check_ip)


class IPAddressUpdate(_In):
    status: IPStatus | None = None
    device_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    interface_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    dns_name: str | None = PField(default=None, max_length=253)
    description: str | None = PField(default=None, max_length=255)


class IPAddressRead(_Out):
    id: int
    address: str
    prefix_id: int | None
    prefix_length: int
    status: IPStatus
    device_id: int | None
    interface_id: int | None
    dns_name: str
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


class AllocateRequest(_In):
    """Ask for the next free host address of a prefix."""

    status: IPStatus = IPStatus.active
    device_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    interface_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    dns_name: str = PField(default="", max_length=253)
    description: str = PField(default="", max_length=255)


# --------------------------------------------------------------------------- credentials


class Credential(SQLModel, table=True):
    """Secrets to reach devices. ``params`` holds the non-secret part (protocols, port, user);
    ``secret_ciphertext`` the encrypted secret part, never returned by the API."""

    __tablename__ = "credential"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(100), unique=True, nullable=False))
    kind: str = Field(sa_type=String(16))
    username: str = Field(default="", sa_type=String(128))
    params: dict[str, Any] = json_field()
    secret_ciphertext: str = Field(default="", sa_type=Text)
    description: str = Field(default="", sa_type=String(255))
    created_at: dt.datetime = ts_field()
    updated_at: dt.datetime = ts_field()


# --------------------------------------------------------------------------- history


class ObjectChange(SQLModel, table=True):
    """History of every inventory change: who, when, before → after (secrets redacted)."""

    __tablename__ = "object_change"
    __table_args__ = (Index("ix_object_change_object", "object_type", "object_id"),)

    id: int | None = Field(default=None, primary_key=True)
    time: dt.datetime = ts_field(index=True)
    actor: str = Field(default="system", sa_type=String(128))
    action: str = Field(sa_type=String(8))
    object_type: str = Field(sa_type=String(32))
    object_id: int
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class ObjectChangeRead(_Out):
    id: int
    time: dt.datetime
    actor: str
    action: str
    object_type: str
    object_id: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
