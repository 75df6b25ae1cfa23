"""Imports every table so ``SQLModel.metadata`` is complete (Alembic and tests rely on it)."""

from infra_mgr.auth.models import ApiToken, AuditLog, User
from infra_mgr.events.models import Event
from infra_mgr.inventory.models import Credential, Device, Interface, IPAddress, Link, ObjectChange, Prefix, Site
from infra_mgr.network.models import (
    DevicePoll,
    DeviceReach,
    DiscoveryTarget,
    LinkStatusChange,
    Neighbor,
    Uplink,
    UplinkState,
)
from infra_mgr.network.ssh.models import BackupRun, ComplianceFinding, ConfigBackupState, ConfigVersion, SshHostKey
from infra_mgr.power.models import FuelTank, Outage, PowerDevice, PowerEdge, PowerNode
from infra_mgr.telemetry.models import MetricRollup, MetricSample, MetricSeries

__all__ = [
    "BackupRun", "ComplianceFinding", "ConfigBackupState", "ConfigVersion", "SshHostKey",
    "ApiToken", "AuditLog", "Credential", "Device", "DevicePoll", "DiscoveryTarget", "Event", "IPAddress",
    "Interface", "Link", "MetricRollup", "MetricSample", "MetricSeries", "Neighbor", "ObjectChange", "Prefix",
    "Site", "User", "FuelTank", "Outage", "PowerDevice", "PowerEdge", "PowerNode", "DeviceReach",
    "LinkStatusChange", "Uplink", "UplinkState",
]
