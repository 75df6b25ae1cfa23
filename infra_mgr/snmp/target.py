"""How to reach one SNMP agent, and what an agent did wrong: the types every user of the engine
shares (the network getters, the power collector, the trap receiver's version names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SnmpVersionName = Literal["1", "2c", "3"]


@dataclass(frozen=True)
class SnmpTarget:
    """How to reach one agent. Secrets live here only in memory, never in logs or reprs."""

    address: str
    port: int = 161
    version: SnmpVersionName = "2c"
    community: str = field(default="public", repr=False)
    user: str = ""
    auth_proto: str | None = None  # MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
    auth_key: str = field(default="", repr=False)
    priv_proto: str | None = None  # DES, AES, AES-192, AES-256
    priv_key: str = field(default="", repr=False)
    timeout_s: float = 2.0
    retries: int = 1
    max_repetitions: int = 100  # upper bound: the engine sizes each GETBULK answer to fit (engine.py)
    use_bulk: bool = True


@dataclass
class PollProblem:
    """Something an agent did wrong, reported per device; the sweep goes on."""

    address: str
    operation: str  # e.g. "facts", "walk 1.3.6.1.2.1.2.2.1", "get"
    kind: str  # timeout | auth | no_such_object | end_of_mib | no_bulk | loop | bad_type | decode | truncated
    #          | too_big | error
    message: str
