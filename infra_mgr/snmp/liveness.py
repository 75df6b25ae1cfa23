"""Is an SNMP agent there at all? Tells "wrong credentials" from "unreachable".

A v2c agent silently drops a request with a community it does not know, so a wrong community
and a dead host look the same. Any v3-capable agent, though, answers an engine-ID discovery
request (a v3 GET with no user) with a Report — without any credential. net-snmp, snmpsim and
most network OSes do; an agent that does not is reported as unreachable, which is the safe side.
"""

from __future__ import annotations

import asyncio

from gufo.snmp import SnmpVersion, User
from gufo.snmp.aio import SnmpSession


async def agent_alive(address: str, port: int = 161, timeout_s: float = 1.0) -> bool:
    """True when an SNMP engine answers engine-ID discovery at ``address:port``. Opening the socket
    is inside the guard: the kernel refuses some destinations (a broadcast address: ``EACCES``, an
    unroutable one: ``ENETUNREACH``) when the session is made, and that is one device not
    answering, never a failed run."""
    try:
        session = SnmpSession(addr=address, port=port, user=User("infra-mgr-probe"), version=SnmpVersion.v3,
                              timeout=timeout_s)
        await asyncio.wait_for(session.refresh(), timeout_s + 0.5)
        return bool(session.get_engine_id())
    except Exception:  # noqa: BLE001 - any failure here means "no engine answered"
        return False
