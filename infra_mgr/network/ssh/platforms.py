"""Per-platform SSH command sets, as data (``platforms.yaml``), validated when loaded.

Vendor differences live here and nowhere else: which commands make the backup, which volatile
lines (timestamps, byte counts) are dropped before the text is hashed — otherwise every backup
would be a "new version" — which commands CLI discovery runs and which ntc-templates platform
parses them, and how an inventory device (vendor/platform from SNMP) maps to netmiko's
``device_type``. For an address nothing is known about yet, CLI discovery logs in once with
netmiko's generic driver (``detection.login``) and recognises the platform from what a detection
command prints (each platform's ``detect``), so a credential is tried once per device instead of
once per platform guess.
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


def _compile(pattern: str) -> str:
    """A pattern that does not compile is refused when the table loads, not at the first device."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
    return pattern


class Rewrite(_Strict):
    """Real output a template does not read, rewritten before parsing (``re.sub``)."""

    pattern: str
    replace: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _compile(value)


class Detect(_Strict):
    """How to recognise the platform on a device nothing is known about: ``pattern`` (a regex,
    searched) matches what ``command`` prints there and nowhere else."""

    command: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return _compile(value)

    def matches(self, output: str) -> bool:
        return re.search(self.pattern, output) is not None


class Detection(_Strict):
    """The login used before the platform is known: a netmiko driver that prepares nothing
    (no paging-off command of some vendor sent to a device of another)."""

    login: str = "terminal_server"


class SshPlatform(_Strict):
    device_type: str = Field(description="netmiko's device_type")
    label: str
    textfsm_platform: str = Field(description="ntc-templates' platform name for CLI discovery")
    match: PlatformMatch = PlatformMatch()
    backup: tuple[str, ...] = Field(min_length=1, description="commands whose output is the backup")
    strip: tuple[str, ...] = Field(default=(), description="regexes of volatile lines dropped before hashing")
    discovery: dict[str, str] = Field(default_factory=dict, description="role -> command")
    enable: bool = False  # needs the enable step (privileged mode) before the backup commands
    vendor: str | None = Field(default=None, description="the maker's name as SNMP discovery records it")
    rewrites: tuple[Rewrite, ...] = Field(default=(), description="output fixes before the templates parse it")
    detect: Detect | None = Field(default=None, description="recognising this platform on an unknown device")

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
    detection: Detection = Detection()

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

    def detection_commands(self) -> tuple[str, ...]:
        """The commands that recognise a platform, each once, in table order: on an unknown
        device they are run one after the other until one's output names a platform."""
        return tuple(dict.fromkeys(p.detect.command for p in self.platforms if p.detect and p.discovery))

    def recognise(self, command: str, output: str) -> SshPlatform | None:
        """The platform (with discovery commands) whose ``detect`` matches ``command``'s output;
        the first in table order when several do."""
        return next((p for p in self.platforms if p.detect and p.discovery and p.detect.command == command
                     and p.detect.matches(output)), None)

    def login_platform(self) -> SshPlatform:
        """A command set for the detection login only: netmiko's generic driver, no enable step."""
        return SshPlatform(device_type=self.detection.login, label="platform not yet known", textfsm_platform="",
                           backup=("",))


@lru_cache(maxsize=1)
def platform_table(path: Path = PLATFORMS_FILE) -> PlatformTable:
    return PlatformTable.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
