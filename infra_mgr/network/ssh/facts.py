"""Plain typed facts the SSH collector returns and the services store: the contract between the
side that knows SSH (netmiko, paramiko; never the database) and the side that knows the database.

A configuration leaves the collector already masked (:mod:`infra_mgr.network.ssh.masking`): the
unmasked text exists only in the collector's memory while it is being read.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from infra_mgr.network.snmp.facts import ProbeResult


class SshFailure(StrEnum):
    """Why a device could not be read over SSH (one reason per attempt, shown to people in words)."""

    unreachable = "unreachable"  # nothing listens / connection refused / no route
    timeout = "timeout"  # connected, then no answer in time (hangs after login, slow banner beyond the limit)
    auth = "auth"  # the credential was refused
    hostkey_changed = "hostkey_changed"  # the key differs from the recorded one: refused until accepted
    dropped = "dropped"  # the session closed in the middle
    paging = "paging"  # output stopped at a pager prompt (--More--) that could not be turned off
    command = "command"  # the device rejected a command (% Invalid input …)
    no_credential = "no_credential"  # no SSH credential stored for the device
    unsupported = "unsupported"  # no command set for the device's platform
    error = "error"  # anything else (the message says what)


@dataclass(frozen=True)
class HostKey:
    """A server's public host key, as known_hosts stores it."""

    key_type: str  # e.g. ssh-ed25519
    key_b64: str  # the public key blob, base64

    @property
    def fingerprint(self) -> str:
        """OpenSSH's form: ``SHA256:`` and the unpadded base64 of the blob's SHA-256."""
        digest = hashlib.sha256(base64.b64decode(self.key_b64)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class Secret(str):
    """A secret as text: it works wherever text does (paramiko, netmiko), but its repr is a
    placeholder, so a target printed whole, or turned into a dict by ``dataclasses.asdict`` and
    printed, shows no password or key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<hidden>'"


def _hide(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and not isinstance(value, Secret):
            object.__setattr__(obj, name, Secret(value))  # frozen dataclass: set once, at creation


@dataclass(frozen=True)
class JumpHost:
    """A bastion the session is tunnelled through (direct-tcpip)."""

    address: str
    port: int = 22
    username: str = ""
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    passphrase: str | None = field(default=None, repr=False)
    known_key: HostKey | None = None  # None: first contact, the key seen is returned as ``jump_key``

    def __post_init__(self) -> None:
        _hide(self, "password", "private_key", "passphrase")


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to open one session. ``device_type`` is netmiko's name (cisco_ios, …)."""

    address: str
    device_type: str
    username: str
    port: int = 22
    password: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)  # PEM/OpenSSH text
    passphrase: str | None = field(default=None, repr=False)
    enable_secret: str | None = field(default=None, repr=False)
    jump: JumpHost | None = None
    known_key: HostKey | None = None  # None: first contact, the key seen is recorded (and returned)
    credential_id: int | None = None
    connect_timeout_s: float = 10.0
    auth_timeout_s: float = 10.0
    command_timeout_s: float = 30.0
    banner_timeout_s: float = 15.0
    # A command whose output is still arriving after this long is abandoned (a device that never
    # stops sending resets every quiet-time limit). None: four command timeouts, at least 120 s.
    command_deadline_s: float | None = None

    def __post_init__(self) -> None:
        _hide(self, "password", "private_key", "passphrase", "enable_secret")

    def __repr__(self) -> str:  # never print a secret, whatever logs the target
        return f"SshTarget({self.username}@{self.address}:{self.port}, {self.device_type})"


@dataclass
class SshProblem:
    kind: SshFailure
    message: str


@dataclass
class BackupResult:
    """One device's backup attempt. ``config`` is masked; None when the attempt failed."""

    address: str
    port: int
    device_type: str
    config: str | None = None
    host_key: HostKey | None = None  # the key the server presented (also on a hostkey_changed refusal)
    problem: SshProblem | None = None
    seconds: float = 0.0
    prompt: str = ""  # the device prompt seen (its hostname, mostly)
    started_at: datetime | None = None  # UTC, when the session was opened: the text is as of then
    jump_key: HostKey | None = None  # the key the jump host presented (also on a hostkey_changed refusal)

    @property
    def ok(self) -> bool:
        return self.problem is None and self.config is not None


@dataclass
class CliProbeResult:
    """CLI discovery of one device over SSH: the same facts the SNMP getters return."""

    address: str
    port: int
    device_type: str
    result: ProbeResult
    host_key: HostKey | None = None
    problem: SshProblem | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # command -> raw output (tests, debugging)
