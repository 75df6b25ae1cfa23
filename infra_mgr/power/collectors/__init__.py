"""Power collectors: SNMP UPS, NUT and Modbus TCP, each returning :class:`PowerReadings`.

A collector talks to one device and returns canonical readings (NUT's names, values in the units
of ``readings.CANONICAL``) with the problems it met; it never touches the database and never
raises for device trouble (timeouts, refusals, ``ERR`` replies, garbage, sentinels). Vendor
differences are data: ``power/oids.yaml`` for SNMP, ``power/maps/*.yaml`` for Modbus.

The functions are imported lazily so that importing this package costs nothing (and does not
need pymodbus) until a protocol is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from infra_mgr.power.readings import PowerReadings

if TYPE_CHECKING:
    from infra_mgr.power.collectors.modbus import read_modbus
    from infra_mgr.power.collectors.nut import NutClient, read_nut
    from infra_mgr.power.collectors.snmp_ups import power_facts_for_snmp, read_snmp_ups


class PowerCollector(Protocol):
    """What the power service schedules: one read of one device."""

    async def __call__(self) -> PowerReadings: ...


_LAZY = {"read_modbus": "modbus", "read_nut": "nut", "NutClient": "nut", "read_snmp_ups": "snmp_ups",
         "power_facts_for_snmp": "snmp_ups"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    from importlib import import_module

    return getattr(import_module(f"infra_mgr.power.collectors.{module}"), name)


__all__ = ["NutClient", "PowerCollector", "power_facts_for_snmp", "read_modbus", "read_nut", "read_snmp_ups"]
