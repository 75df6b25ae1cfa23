"""Power tables: monitored devices, the power chain, fuel tanks and outage records."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import JSON, Column, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from infra_mgr.common import json_field, ts_field


class PowerKind(StrEnum):
    ups = "ups"
    drups = "drups"
    genset = "genset"
    ats = "ats"
    pdu = "pdu"
    meter = "meter"


class NodeKind(StrEnum):
    utility = "utility"
    ats = "ats"
    drups = "drups"
    genset = "genset"
    ups = "ups"
    panel = "panel"
    pdu = "pdu"
    rack = "rack"
    meter = "meter"


class PueRole(StrEnum):
    none = "none"
    facility = "facility"  # total facility power (utility intake)
    it = "it"  # IT equipment power


def _source_scheme(value: str) -> str:
    """A known scheme, and no secret in the query string: only the userinfo's secret is split off
    and encrypted, so a ``?community=`` or ``?password=`` would be stored and shown in clear."""
    from infra_mgr.url_secrets import secret_params

    if value.split("://", 1)[0] not in ("snmp", "nut", "modbus"):
        raise ValueError("must start with snmp://, nut:// or modbus://")
    found = secret_params(value)
    if found:
        raise ValueError(f"no secret in the query string ({', '.join(found)}): put it in the URL's userinfo")
    return value


class PowerDevice(SQLModel, table=True):
    """A source of power telemetry (UPS, DRUPS, genset controller, meter) and its live state."""

    __tablename__ = "power_device"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    kind: str = Field(sa_type=String(16))
    source: str = Field(sa_type=String(255), description="snmp://***@HOST:PORT, nut://USER:***@HOST:PORT/UPS, "
                                                         "modbus://…: any secret in it masked")
    # The masked part of ``source`` (community, password), encrypted (see ``power/sources.py``).
    source_secret: str = Field(default="", sa_column=Column(String(1024), nullable=False, server_default=""))
    credential_id: int | None = Field(default=None, foreign_key="credential.id", ondelete="SET NULL")
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="SET NULL")
    capacity_kw: float | None = None
    critical: bool = True
    poll_interval_s: float = 1.0
    enabled: bool = True
    status: str = Field(default="never", sa_type=String(16))  # ok | comm_lost | never
    state: str = Field(default="unknown", sa_type=String(16))  # mains | battery | kinetic | diesel | bypass | off
    flags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    readings: dict[str, Any] = json_field()
    message: str = Field(default="", sa_type=String(500))
    last_ok: dt.datetime | None = ts_field(nullable=True, default_now=False)
    created_at: dt.datetime = ts_field()


class PowerDeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PField(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    kind: PowerKind
    source: str = PField(max_length=255, description="snmp://COMMUNITY@HOST:PORT, nut://HOST:PORT/UPS, "
                                                      "modbus://HOST:PORT/UNIT?map=NAME")
    credential_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    capacity_kw: float | None = PField(default=None, gt=0, le=1e6, strict=True)  # true is not 1.0 kW
    critical: bool = True
    poll_interval_s: float = PField(default=1.0, ge=0.5, le=300)
    enabled: bool = True

    @field_validator("source")
    @classmethod
    def _scheme(cls, value: str) -> str:
        return _source_scheme(value)


class PowerDeviceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = PField(default=None, max_length=255,
                                description="A new URL; the masked URL a read returned keeps the stored secret")
    credential_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    capacity_kw: float | None = PField(default=None, gt=0, le=1e6, strict=True)  # true is not 1.0 kW
    critical: bool | None = None
    poll_interval_s: float | None = PField(default=None, ge=0.5, le=300)
    enabled: bool | None = None

    @field_validator("source")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        return None if value is None else _source_scheme(value)


class PowerDeviceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: PowerKind
    source: str
    credential_id: int | None
    site_id: int | None
    capacity_kw: float | None
    critical: bool
    poll_interval_s: float
    enabled: bool
    status: str
    state: str
    flags: list[str]
    readings: dict[str, Any]
    message: str
    last_ok: dt.datetime | None
    created_at: dt.datetime

    @field_validator("source", mode="before")
    @classmethod
    def _masked(cls, value: Any) -> Any:
        """Never a secret, even from a row written around the API (stored rows are masked already)."""
        from infra_mgr.url_secrets import mask_source

        return mask_source(value) if isinstance(value, str) else value


class PowerNode(SQLModel, table=True):
    """One element of the power chain: utility feed, ATS, DRUPS/UPS, panel, PDU, rack, meter."""

    __tablename__ = "power_node"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    kind: str = Field(sa_type=String(16))
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="SET NULL")
    capacity_kw: float | None = None
    power_device_id: int | None = Field(default=None, foreign_key="power_device.id", ondelete="SET NULL")
    pue_role: str = Field(default=PueRole.none.value, sa_type=String(16))
    it_category: int | None = None  # The Green Grid measurement category of an IT meter: 1 UPS, 2 PDU, 3 IT input


class PowerNodeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PField(min_length=1, max_length=64)
    kind: NodeKind
    site_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    capacity_kw: float | None = PField(default=None, gt=0, le=1e6, strict=True)  # true is not 1.0 kW
    power_device_id: int | None = PField(default=None, ge=1, le=2**63 - 1)
    pue_role: PueRole = PueRole.none
    it_category: int | None = PField(default=None, ge=1, le=3, strict=True)  # nor category 1


class PowerNodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: NodeKind
    site_id: int | None
    capacity_kw: float | None
    power_device_id: int | None
    pue_role: PueRole
    it_category: int | None


class PowerEdge(SQLModel, table=True):
    """Power flows from ``from_node`` to ``to_node`` (a chain may branch and join: A/B feeds)."""

    __tablename__ = "power_edge"
    __table_args__ = (UniqueConstraint("from_node_id", "to_node_id", name="uq_power_edge"),)

    id: int | None = Field(default=None, primary_key=True)
    from_node_id: int = Field(foreign_key="power_node.id", index=True, ondelete="CASCADE")
    to_node_id: int = Field(foreign_key="power_node.id", index=True, ondelete="CASCADE")


class PowerEdgeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_node_id: int = PField(ge=1, le=2**63 - 1)
    to_node_id: int = PField(ge=1, le=2**63 - 1)


class PowerEdgeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_node_id: int
    to_node_id: int


class FuelTank(SQLModel, table=True):
    """Fuel for an engine: capacity, usable fraction and the engine's consumption curve (L/h by load %)."""

    __tablename__ = "fuel_tank"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    power_device_id: int = Field(foreign_key="power_device.id", index=True, ondelete="CASCADE")
    capacity_l: float
    usable_fraction: float = 0.85
    level_reading: str = Field(default="fuel.level", sa_type=String(64))
    rated_kw: float
    curve: dict[str, float] = json_field()  # {"25": 42, "50": 70, "75": 100, "100": 135}


class FuelTankCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PField(min_length=1, max_length=64)
    power_device_id: int = PField(ge=1, le=2**63 - 1)
    capacity_l: float = PField(gt=0, le=1e7)
    usable_fraction: float = PField(default=0.85, gt=0, le=1)
    level_reading: str = PField(default="fuel.level", max_length=64)
    rated_kw: float = PField(gt=0, le=1e6)
    curve: dict[str, float] = PField(description="litres per hour at load %, e.g. {'25': 42, '100': 135}")

    @field_validator("curve")
    @classmethod
    def _curve(cls, value: dict[str, float]) -> dict[str, float]:
        try:
            points = {float(k): float(v) for k, v in value.items()}
        except ValueError as exc:
            raise ValueError("keys must be load percentages and values litres per hour") from exc
        if len(points) < 2 or any(not 0 <= k <= 110 or v <= 0 for k, v in points.items()):
            raise ValueError("needs at least two points, load 0-110 %, consumption > 0")
        return {str(k): v for k, v in sorted(points.items())}


class FuelTankRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    power_device_id: int
    capacity_l: float
    usable_fraction: float
    level_reading: str
    rated_kw: float
    curve: dict[str, float]


class Outage(SQLModel, table=True):
    """One mains failure at a site, from failure to retransfer, with its timeline and figures."""

    __tablename__ = "power_outage"

    id: int | None = Field(default=None, primary_key=True)
    site_id: int | None = Field(default=None, foreign_key="site.id", index=True, ondelete="SET NULL")
    status: str = Field(default="open", sa_type=String(8))
    started_at: dt.datetime = ts_field(index=True)
    diesel_cranking_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    diesel_on_load_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    mains_restored_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    ended_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    min_battery_charge: float | None = None
    min_kinetic_level: float | None = None
    fuel_start_pct: float | None = None
    fuel_end_pct: float | None = None
    fuel_used_l: float | None = None
    diesel_run_s: float | None = None
    timeline: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class OutageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    site_id: int | None
    status: str
    started_at: dt.datetime
    diesel_cranking_at: dt.datetime | None
    diesel_on_load_at: dt.datetime | None
    mains_restored_at: dt.datetime | None
    ended_at: dt.datetime | None
    min_battery_charge: float | None
    min_kinetic_level: float | None
    fuel_used_l: float | None
    diesel_run_s: float | None
    seconds_to_diesel: float | None = None
    timeline: list[dict[str, Any]]
