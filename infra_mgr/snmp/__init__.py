"""The SNMP library: the poll engine (gufo-snmp under asyncio, bounded and hardened), the target
and problem types it speaks, and the agent liveness check.

It knows SNMP and nothing of any domain, so both the network domain (discovery, getters) and the
power domain (the SNMP UPS collector) use it without depending on each other.
"""
