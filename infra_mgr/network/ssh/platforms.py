"""Per-platform SSH command sets, as data (``platforms.yaml``), validated when loaded.

Vendor differences live here and nowhere else: which commands make the backup, which volatile
lines (timestamps, byte counts) are dropped before the text is hashed — otherwise every backup
would be a "new version" — which commands CLI discovery runs and which ntc-templates platform
parses them, and how an inventory device (vendor/platform from SNMP) maps to netmiko's
``device_type``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

PLATFORMS_FILE = Path(__file__).with_name("platforms.yaml")
DISCOVERY_ROLES = ("version", "system", "identity", "inventory", "interfaces", "lldp", "cdp")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlatformMatch(_Strict):
    """An inventory device is of this platform when its ``platform`` (as SNMP discovery set it)
    equals one of ``platforms``, or its vendor matches ``vendor`` (a regex) when given."""

    platforms: tuple[str, ...] = ()
    vendor: str | None = None


class SshPlatform(_Strict):
    device_type: str = Field(description="netmiko's device_type")
    label: str
    textfsm_platform: str = Field(description="ntc-templates' platform name for CLI discovery")
    match: PlatformMatch = PlatformMatch()
    backup: tuple[str, ...] = Field(min_length=1, description="commands whose output is the backup")
    strip: tuple[str, ...] = Field(default=(), description="regexes of volatile lines dropped before hashing")
    discovery: dict[str, str] = Field(default_factory=dict, description="role -> command")
    enable: bool = False  # needs the enable step (privileged mode) before the backup commands

    @field_validator("strip")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            re.compile(pattern)
        return value

    @field_validator("discovery")
    @classmethod
    def _roles(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(DISCOVERY_ROLES)
        if unknown:
            raise ValueError(f"unknown discovery roles {sorted(unknown)}; known: {', '.join(DISCOVERY_ROLES)}")
        return value

    def volatile(self, line: str) -> bool:
        return any(re.search(p, line) for p in self.strip)


class PlatformTable(_Strict):
    platforms: tuple[SshPlatform, ...]

    def get(self, device_type: str) -> SshPlatform | None:
        return next((p for p in self.platforms if p.device_type == device_type), None)

    def for_device(self, platform: str, vendor: str) -> SshPlatform | None:
        """The command set for an inventory device, from what SNMP discovery recorded."""
        for p in self.platforms:
            if platform and platform in p.match.platforms:
                return p
        for p in self.platforms:
            if p.match.vendor and vendor and re.search(p.match.vendor, vendor, re.I):
                return p
        return None


@lru_cache(maxsize=1)
def platform_table(path: Path = PLATFORMS_FILE) -> PlatformTable:
    return PlatformTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
