"""SNMP power agents of the power lab (on snmpsim) whose values follow the outage scenario.

Two UPSs on the generator-backed panel, a rack PDU and a transfer switch answer SNMP v2c
(community ``public``):

* ``dc-ups2``: an APC Smart-UPS with a network management card: sysObjectID
  ``1.3.6.1.4.1.318.1.3.27`` and PowerNet-MIB ``upsBasic``/``upsAdv``/``upsHighPrec`` values.
* ``dc-ups3``: a UPS whose card speaks only RFC 1628 UPS-MIB (``1.3.6.1.2.1.33.1``); the card runs
  embedded Linux with net-snmp, so its sysObjectID is net-snmp's generic Linux one.
* ``dc-pdu1``: an APC switched rack PDU (AP8941-style, single phase, 24 outlets), sysObjectID
  ``1.3.6.1.4.1.318.1.3.4.5`` and PowerNet-MIB ``rPDU2`` values. It is fed by a UPS, so its
  values are static (the load does not move with the outage).
* ``dc-ats1``: an APC rack ATS (AP4423-style), sysObjectID ``1.3.6.1.4.1.318.1.3.11``, for
  single-corded gear: source A (preferred) is raw utility mains, source B the DRUPS-protected bus.
  When mains fails it selects B and reports redundancy lost; when mains returns it goes back to A.

How values change at run time (measured with snmpsim 1.2.2): snmpsim notices a rewritten
``.snmprec`` by its modification time in whole seconds and re-indexes it, so a regenerated
recording is served 0.01-0.07 s later, but a second rewrite within the same second is not seen at
all (until some later write); the ``writecache`` variation takes ``snmpset``, but then a pusher
must SET every value of every agent over SNMP twice a second. What
we use instead is a variation module of our own (snmpsim loads ``*.py`` from
``--variation-modules-dir``): records tagged ``<type>:powerlab`` are computed from
:mod:`infra_mgr.lab.power_scenario` at every request, so the agents follow the outage with no
delay and no pusher. A ``snmpset`` on such a record pins the value (like ``writecache``) until
the agent restarts, for tests that need a value the scenario does not produce.

The recordings are written by the lab's ``snmpsim_spec`` machinery (so ``write_snmprec``'s sorting
and encoding apply); this module then rewrites the dynamic lines with the variation tag.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from infra_mgr.lab.peers import SYS, SYS_LOCATION, SYS_NAME, SnmpsimDevice, documented_port, snmpsim_spec
from infra_mgr.lab.power_scenario import (
    PLANT,
    UPS_PROFILES,
    Outage,
    OutageReader,
    Readings,
    Timeline,
    UpsProfile,
    device_readings,
    load_outage,
)
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, format_record, sorted_records
from infra_mgr.lab.supervisor import PeerSpec

VARIATION = "powerlab"
APC = "1.3.6.1.4.1.318.1.1.1"
UPS_MIB = "1.3.6.1.2.1.33.1"
APC_SYS_OBJECT_ID = "1.3.6.1.4.1.318.1.3.27"
RPDU2 = "1.3.6.1.4.1.318.1.1.26"
ATS = "1.3.6.1.4.1.318.1.1.8"
APC_PDU_SYS_OBJECT_ID = "1.3.6.1.4.1.318.1.3.4.5"
APC_ATS_SYS_OBJECT_ID = "1.3.6.1.4.1.318.1.3.11"
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"
POWER_LOCATION = "أمانة جدة - مركز البيانات - غرفة الطاقة"

# host per UPS agent (127.3.0.x: the lab's power devices)
SNMP_PORT = 161  # the standard agent port, where `snmp probe <address>` looks without --port
SNMP_UPS_HOSTS = {"dc-ups2": "127.3.0.22", "dc-ups3": "127.3.0.23", "dc-pdu1": "127.3.0.24", "dc-ats1": "127.3.0.25"}
# the rack PDU's static readings (what the generated record says and the tests expect)
PDU_WATTS = 3420  # rPDU2DeviceStatusPower is in 0.01 kW: 342
PDU_VA = 3600  # rPDU2DeviceStatusApparentPower in 0.01 kVA: 360
PDU_AMPS = 15.6  # rPDU2PhaseStatusCurrent in 0.1 A: 156
PDU_OUTLETS = 24
ATS_MIN_VOLTS = 100.0  # below this an ATS input is dead


class Context:
    """What a dynamic OID is computed from: the UPS's readings and the outage."""

    def __init__(self, ups: UpsProfile, outage: Outage, now: float) -> None:
        self.ups = ups
        self.outage = outage
        self.now = now
        self.r: Readings = device_readings(f"ups:{ups.name}", outage, now)
        timeline = Timeline.of(outage)
        on_battery = self.r["output.source"] == "battery"
        self.seconds_on_battery = int(now - timeline.t0) if timeline and on_battery else 0
        self.line_bads = outage.totals.outages + (1 if timeline and now >= timeline.t0 else 0)

    def num(self, name: str, factor: float = 1.0) -> int:
        value = self.r[name]
        return int(round(float(value or 0) * factor))


class AtsContext:
    """What the ATS's dynamic OIDs are computed from: raw utility mains (the DRUPS's intake reading)
    on source A, the DRUPS output (live through the whole outage) on source B."""

    def __init__(self, outage: Outage, now: float) -> None:
        self.now = now
        drups = device_readings("drups", outage, now)
        self.volts_a = float(drups["mains.voltage"] or 0.0)
        self.volts_b = float(drups["output.voltage"] or 0.0)
        self.hz_b = float(drups["output.frequency"] or 0.0)
        self.a_ok = self.volts_a >= ATS_MIN_VOLTS
        self.b_ok = self.volts_b >= ATS_MIN_VOLTS
        self.selected = 1 if self.a_ok or not self.b_ok else 2  # prefers A; stays on A when both are dead

    @property
    def out_volts(self) -> float:
        return self.volts_a if self.selected == 1 else self.volts_b


Dynamic = tuple[SnmpType, Callable[[Any], int]]

# OID -> (type, value from the scenario): the values that move during an outage.
APC_DYNAMIC: dict[str, Dynamic] = {
    f"{APC}.2.1.1.0": (SnmpType.INTEGER, lambda c: 3 if c.r["battery.status"] == "low" else 2),  # upsBasicBatteryStatus
    f"{APC}.2.1.2.0": (SnmpType.TIMETICKS, lambda c: c.seconds_on_battery * 100),  # upsBasicBatteryTimeOnBattery
    f"{APC}.2.2.1.0": (SnmpType.GAUGE32, lambda c: c.num("battery.charge")),  # upsAdvBatteryCapacity
    f"{APC}.2.2.3.0": (SnmpType.TIMETICKS, lambda c: c.num("battery.runtime", 100)),  # upsAdvBatteryRunTimeRemaining
    f"{APC}.2.2.8.0": (SnmpType.GAUGE32, lambda c: c.num("battery.voltage")),  # upsAdvBatteryActualVoltage
    f"{APC}.2.3.1.0": (SnmpType.GAUGE32, lambda c: c.num("battery.charge", 10)),  # upsHighPrecBatteryCapacity
    f"{APC}.3.2.1.0": (SnmpType.GAUGE32, lambda c: c.num("input.voltage")),  # upsAdvInputLineVoltage
    f"{APC}.3.2.4.0": (SnmpType.GAUGE32, lambda c: c.num("input.frequency")),  # upsAdvInputFrequency
    # upsAdvInputLineFailCause: 1 noTransfer, 4 blackout
    f"{APC}.3.2.5.0": (SnmpType.INTEGER, lambda c: 4 if c.r["input.transfer.reason"] == "blackout" else 1),
    f"{APC}.3.3.1.0": (SnmpType.GAUGE32, lambda c: c.num("input.voltage", 10)),  # upsHighPrecInputLineVoltage
    # upsBasicOutputStatus: 2 onLine, 3 onBattery
    f"{APC}.4.1.1.0": (SnmpType.INTEGER, lambda c: 3 if c.r["output.source"] == "battery" else 2),
    f"{APC}.4.2.3.0": (SnmpType.GAUGE32, lambda c: c.num("ups.load")),  # upsAdvOutputLoad
    f"{APC}.4.2.4.0": (SnmpType.GAUGE32, lambda c: c.num("output.current")),  # upsAdvOutputCurrent
    f"{APC}.4.3.3.0": (SnmpType.GAUGE32, lambda c: c.num("ups.load", 10)),  # upsHighPrecOutputLoad
}

RFC1628_DYNAMIC: dict[str, Dynamic] = {
    f"{UPS_MIB}.2.1.0": (SnmpType.INTEGER, lambda c: 3 if c.r["battery.status"] == "low" else 2),  # upsBatteryStatus
    f"{UPS_MIB}.2.2.0": (SnmpType.INTEGER, lambda c: c.seconds_on_battery),  # upsSecondsOnBattery
    f"{UPS_MIB}.2.3.0": (SnmpType.INTEGER, lambda c: c.num("battery.runtime", 1 / 60)),  # upsEstimatedMinutesRemaining
    f"{UPS_MIB}.2.4.0": (SnmpType.INTEGER, lambda c: c.num("battery.charge")),  # upsEstimatedChargeRemaining
    f"{UPS_MIB}.2.5.0": (SnmpType.INTEGER, lambda c: c.num("battery.voltage", 10)),  # upsBatteryVoltage (0.1 V)
    f"{UPS_MIB}.3.1.0": (SnmpType.COUNTER32, lambda c: 4 + c.line_bads),  # upsInputLineBads
    f"{UPS_MIB}.3.3.1.2.1": (SnmpType.INTEGER, lambda c: c.num("input.frequency", 10)),  # upsInputFrequency (0.1 Hz)
    f"{UPS_MIB}.3.3.1.3.1": (SnmpType.INTEGER, lambda c: c.num("input.voltage")),  # upsInputVoltage
    f"{UPS_MIB}.4.1.0": (SnmpType.INTEGER, lambda c: 5 if c.r["output.source"] == "battery" else 3),  # upsOutputSource
    f"{UPS_MIB}.4.4.1.3.1": (SnmpType.INTEGER, lambda c: c.num("output.current", 10)),  # upsOutputCurrent (0.1 A)
    f"{UPS_MIB}.4.4.1.4.1": (SnmpType.INTEGER, lambda c: c.num("ups.realpower")),  # upsOutputPower (W)
    f"{UPS_MIB}.4.4.1.5.1": (SnmpType.INTEGER, lambda c: c.num("ups.load")),  # upsOutputPercentLoad
    f"{UPS_MIB}.6.1.0": (SnmpType.GAUGE32, lambda c: 1 if c.r["output.source"] == "battery" else 0),  # upsAlarmsPresent
}

ATS_DYNAMIC: dict[str, Dynamic] = {
    f"{ATS}.5.1.2.0": (SnmpType.INTEGER, lambda c: c.selected),  # atsStatusSelectedSource: 1 A, 2 B
    # atsStatusRedundancyState: 1 atsRedundancyLost, 2 atsFullyRedundant
    f"{ATS}.5.1.3.0": (SnmpType.INTEGER, lambda c: 2 if c.a_ok and c.b_ok else 1),
    # atsStatusVoltageOutStatus: 1 fail, 2 ok
    f"{ATS}.5.1.15.0": (SnmpType.INTEGER, lambda c: 2 if c.out_volts >= ATS_MIN_VOLTS else 1),
    f"{ATS}.5.3.3.1.3.1.1.1": (SnmpType.INTEGER, lambda c: round(c.volts_a)),  # atsInputVoltage A
    f"{ATS}.5.3.3.1.3.2.1.1": (SnmpType.INTEGER, lambda c: round(c.volts_b)),  # atsInputVoltage B
    # atsInputFrequency of B: -1 while B is dead (no frequency to measure)
    f"{ATS}.5.3.2.1.4.2": (SnmpType.INTEGER, lambda c: round(c.hz_b) if c.b_ok else -1),
    f"{ATS}.5.4.5.1.6.1": (SnmpType.INTEGER, lambda c: round(c.out_volts)),  # atsOutputBankOutputVoltage
}

DYNAMIC: dict[str, dict[str, Dynamic]] = {"dc-ups2": APC_DYNAMIC, "dc-ups3": RFC1628_DYNAMIC, "dc-pdu1": {},
                                          "dc-ats1": ATS_DYNAMIC}


def _system(descr: str, object_id: str, name: str) -> list[SnmpRecord]:
    return [
        SnmpRecord(f"{SYS}.1.0", SnmpType.OCTET_STRING, descr),
        SnmpRecord(f"{SYS}.2.0", SnmpType.OID, object_id),
        SnmpRecord(f"{SYS}.3.0", SnmpType.TIMETICKS, 98_765_432),
        SnmpRecord(f"{SYS}.4.0", SnmpType.OCTET_STRING, "Power team <power@jeddah.example>"),
        SnmpRecord(SYS_NAME, SnmpType.OCTET_STRING, name),
        SnmpRecord(SYS_LOCATION, SnmpType.OCTET_STRING, POWER_LOCATION),
        SnmpRecord(f"{SYS}.7.0", SnmpType.INTEGER, 72),
    ]


def _dynamic_records(name: str, outage: Outage, now: float) -> list[SnmpRecord]:
    ctx = Context(UPS_PROFILES[name], outage, now)
    return [SnmpRecord(oid, kind, fn(ctx)) for oid, (kind, fn) in DYNAMIC[name].items()]


def apc_ups_records(outage: Outage | None = None, now: float | None = None) -> list[SnmpRecord]:
    """The APC UPS ``dc-ups2``: static identity and ratings plus the scenario's values at ``now``."""
    ups = UPS_PROFILES["dc-ups2"]
    descr = f"APC Web/SNMP Management Card (MB:v4.1.0 PF:v6.9.6 MN:AP9631 HR:05 SN:{ups.serial}) {ups.model}"
    records = _system(descr, APC_SYS_OBJECT_ID, ups.name) + [
        SnmpRecord(f"{APC}.1.1.1.0", SnmpType.OCTET_STRING, ups.model),  # upsBasicIdentModel
        SnmpRecord(f"{APC}.1.1.2.0", SnmpType.OCTET_STRING, ups.name),  # upsBasicIdentName
        SnmpRecord(f"{APC}.1.2.1.0", SnmpType.OCTET_STRING, ups.firmware),  # upsAdvIdentFirmwareRevision
        SnmpRecord(f"{APC}.1.2.2.0", SnmpType.OCTET_STRING, "03/14/2022"),  # upsAdvIdentDateOfManufacture
        SnmpRecord(f"{APC}.1.2.3.0", SnmpType.OCTET_STRING, ups.serial),  # upsAdvIdentSerialNumber
        SnmpRecord(f"{APC}.2.1.3.0", SnmpType.OCTET_STRING, "06/02/2024"),  # upsBasicBatteryLastReplaceDate
        SnmpRecord(f"{APC}.2.2.2.0", SnmpType.GAUGE32, 26),  # upsAdvBatteryTemperature
        SnmpRecord(f"{APC}.2.2.4.0", SnmpType.INTEGER, 1),  # upsAdvBatteryReplaceIndicator: no
        SnmpRecord(f"{APC}.4.2.1.0", SnmpType.GAUGE32, int(PLANT.mains_voltage)),  # upsAdvOutputVoltage
        SnmpRecord(f"{APC}.4.2.2.0", SnmpType.GAUGE32, int(PLANT.mains_frequency)),  # upsAdvOutputFrequency
    ]
    return records + _dynamic_records(ups.name, outage or Outage(), time.time() if now is None else now)


def rfc1628_ups_records(outage: Outage | None = None, now: float | None = None) -> list[SnmpRecord]:
    """The RFC 1628 UPS ``dc-ups3``: UPS-MIB identity, battery, input, output and alarms."""
    ups = UPS_PROFILES["dc-ups3"]
    descr = "Linux ups-card 4.14.98 #1 PREEMPT armv7l"
    records = _system(descr, NET_SNMP_LINUX, ups.name) + [
        SnmpRecord(f"{UPS_MIB}.1.1.0", SnmpType.OCTET_STRING, ups.mfr),  # upsIdentManufacturer
        SnmpRecord(f"{UPS_MIB}.1.2.0", SnmpType.OCTET_STRING, ups.model),  # upsIdentModel
        SnmpRecord(f"{UPS_MIB}.1.3.0", SnmpType.OCTET_STRING, ups.firmware),  # upsIdentUPSSoftwareVersion
        SnmpRecord(f"{UPS_MIB}.1.4.0", SnmpType.OCTET_STRING, "NetCard 2.1.7"),  # upsIdentAgentSoftwareVersion
        SnmpRecord(f"{UPS_MIB}.1.5.0", SnmpType.OCTET_STRING, ups.name),  # upsIdentName
        SnmpRecord(f"{UPS_MIB}.2.7.0", SnmpType.INTEGER, 27),  # upsBatteryTemperature
        SnmpRecord(f"{UPS_MIB}.3.2.0", SnmpType.INTEGER, 1),  # upsInputNumLines
        SnmpRecord(f"{UPS_MIB}.3.3.1.1.1", SnmpType.INTEGER, 1),  # upsInputLineIndex
        SnmpRecord(f"{UPS_MIB}.4.2.0", SnmpType.INTEGER, int(PLANT.mains_frequency * 10)),  # upsOutputFrequency
        SnmpRecord(f"{UPS_MIB}.4.3.0", SnmpType.INTEGER, 1),  # upsOutputNumLines
        SnmpRecord(f"{UPS_MIB}.4.4.1.1.1", SnmpType.INTEGER, 1),  # upsOutputLineIndex
        SnmpRecord(f"{UPS_MIB}.4.4.1.2.1", SnmpType.INTEGER, int(PLANT.mains_voltage)),  # upsOutputVoltage
        SnmpRecord(f"{UPS_MIB}.9.1.0", SnmpType.INTEGER, int(PLANT.mains_voltage)),  # upsConfigInputVoltage
        SnmpRecord(f"{UPS_MIB}.9.3.0", SnmpType.INTEGER, int(PLANT.mains_voltage)),  # upsConfigOutputVoltage
        SnmpRecord(f"{UPS_MIB}.9.5.0", SnmpType.INTEGER, int(ups.capacity_w / 1000 * 1111)),  # upsConfigOutputVA
        SnmpRecord(f"{UPS_MIB}.9.6.0", SnmpType.INTEGER, int(ups.capacity_w)),  # upsConfigOutputPower
    ]
    return records + _dynamic_records(ups.name, outage or Outage(), time.time() if now is None else now)


def apc_pdu_records() -> list[SnmpRecord]:
    """The APC rack PDU ``dc-pdu1``: rPDU2 identity, properties, device and phase 1 status (static)."""
    serial, model = "5A2211E01234", "AP8941"
    descr = f"APC Web/SNMP Management Card (MB:v4.3.6 PF:v7.0.4 PN:apc_hw05_aos_704.bin) {model} SN:{serial}"
    dev, phase = f"{RPDU2}.4.3.1", f"{RPDU2}.6.3.1"
    return _system(descr, APC_PDU_SYS_OBJECT_ID, "dc-pdu1") + [
        SnmpRecord(f"{RPDU2}.2.1.1.1", SnmpType.INTEGER, 1),  # rPDU2IdentIndex
        SnmpRecord(f"{RPDU2}.2.1.3.1", SnmpType.OCTET_STRING, "dc-pdu1"),  # rPDU2IdentName
        SnmpRecord(f"{RPDU2}.2.1.6.1", SnmpType.OCTET_STRING, "v7.0.4"),  # rPDU2IdentFirmwareRev
        SnmpRecord(f"{RPDU2}.2.1.8.1", SnmpType.OCTET_STRING, model),  # rPDU2IdentModelNumber
        SnmpRecord(f"{RPDU2}.2.1.9.1", SnmpType.OCTET_STRING, serial),  # rPDU2IdentSerialNumber
        SnmpRecord(f"{RPDU2}.4.2.1.4.1", SnmpType.INTEGER, PDU_OUTLETS),  # rPDU2DevicePropertiesNumOutlets
        SnmpRecord(f"{RPDU2}.4.2.1.7.1", SnmpType.INTEGER, 1),  # rPDU2DevicePropertiesNumPhases
        SnmpRecord(f"{dev}.4.1", SnmpType.INTEGER, 2),  # rPDU2DeviceStatusLoadState: normal
        SnmpRecord(f"{dev}.5.1", SnmpType.INTEGER, PDU_WATTS // 10),  # rPDU2DeviceStatusPower (0.01 kW)
        SnmpRecord(f"{dev}.9.1", SnmpType.INTEGER, 187_452),  # rPDU2DeviceStatusEnergy (0.1 kWh)
        SnmpRecord(f"{dev}.16.1", SnmpType.INTEGER, PDU_VA // 10),  # rPDU2DeviceStatusApparentPower (0.01 kVA)
        SnmpRecord(f"{dev}.17.1", SnmpType.INTEGER, 95),  # rPDU2DeviceStatusPowerFactor (0.01)
        SnmpRecord(f"{phase}.3.1", SnmpType.INTEGER, 1),  # rPDU2PhaseStatusNumber
        SnmpRecord(f"{phase}.4.1", SnmpType.INTEGER, 2),  # rPDU2PhaseStatusLoadState: normal
        SnmpRecord(f"{phase}.5.1", SnmpType.GAUGE32, round(PDU_AMPS * 10)),  # rPDU2PhaseStatusCurrent (0.1 A)
        SnmpRecord(f"{phase}.6.1", SnmpType.INTEGER, int(PLANT.mains_voltage)),  # rPDU2PhaseStatusVoltage (V)
    ]


def apc_ats_records(outage: Outage | None = None, now: float | None = None) -> list[SnmpRecord]:
    """The APC ATS ``dc-ats1``: identity and configuration plus the scenario's sources at ``now``."""
    serial, model = "5A1516T15268", "AP4423"
    descr = f"APC Web/SNMP Management Card (MB:v3.9.2 PF:v6.5.6 PN:apc_hw05_aos_656.bin) {model} SN:{serial}"
    records = _system(descr, APC_ATS_SYS_OBJECT_ID, "dc-ats1") + [
        SnmpRecord(f"{ATS}.1.2.0", SnmpType.OCTET_STRING, "6.5.6"),  # atsIdentFirmwareRev
        SnmpRecord(f"{ATS}.1.5.0", SnmpType.OCTET_STRING, model),  # atsIdentModelNumber
        SnmpRecord(f"{ATS}.1.6.0", SnmpType.OCTET_STRING, serial),  # atsIdentSerialNumber
        SnmpRecord(f"{ATS}.1.7.0", SnmpType.INTEGER, int(PLANT.mains_voltage)),  # atsIdentNominalLineVoltage
        SnmpRecord(f"{ATS}.4.2.0", SnmpType.INTEGER, 1),  # atsConfigPreferredSource: sourceA
        SnmpRecord(f"{ATS}.5.1.4.0", SnmpType.INTEGER, 2),  # atsStatusOverCurrentState: atsCurrentOK
        SnmpRecord(f"{ATS}.5.3.1.0", SnmpType.INTEGER, 2),  # atsNumInputs
        SnmpRecord(f"{ATS}.5.3.2.1.4.1", SnmpType.INTEGER, int(PLANT.mains_frequency)),  # atsInputFrequency A
        SnmpRecord(f"{ATS}.5.4.2.1.4.1", SnmpType.INTEGER, int(PLANT.mains_frequency)),  # atsOutputFrequency
        SnmpRecord(f"{ATS}.5.4.5.1.4.1", SnmpType.GAUGE32, 88),  # atsOutputBankCurrent (0.1 A)
        SnmpRecord(f"{ATS}.5.4.5.1.15.1", SnmpType.INTEGER, 1883),  # atsOutputBankPower (W)
    ]
    now = time.time() if now is None else now
    ctx = AtsContext(outage or Outage(), now)
    return records + [SnmpRecord(oid, kind, fn(ctx)) for oid, (kind, fn) in ATS_DYNAMIC.items()]


def _context(device: str, outage: Outage, now: float) -> Any:
    return AtsContext(outage, now) if device == "dc-ats1" else Context(UPS_PROFILES[device], outage, now)


def snmp_value(device: str, oid: str, outage: Outage, now: float) -> int:
    """The value a dynamic OID of ``device`` has at ``now``."""
    kind_fn = DYNAMIC[device][oid.lstrip(".")]
    return kind_fn[1](_context(device, outage, now))


# --- the snmpsim variation module --------------------------------------------------------------------


def make_variation(lab_dir: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``init``, ``variate`` and ``shutdown`` of the ``powerlab`` variation module for one lab.

    A record ``OID|<tag>:powerlab|dev=<ups>`` is answered with :func:`snmp_value`; a SET pins it.
    """
    reader = OutageReader(lab_dir)
    pinned: dict[str, Any] = {}

    def init(**context: Any) -> None:
        return None

    def variate(oid: Any, tag: str, value: Any, **context: Any) -> tuple[Any, str, Any]:
        if not context["nextFlag"] and not context["exactMatch"]:
            return context["origOid"], tag, context["errorStatus"]
        key = str(oid)
        if context["setFlag"]:
            pinned[key] = context["origValue"]
            return oid, tag, context["origValue"]
        if key in pinned:
            return oid, tag, pinned[key]
        settings = dict(part.split("=", 1) for part in str(value).split(",") if "=" in part)
        try:
            return oid, tag, snmp_value(settings["dev"], key, reader.get(), time.time())
        except Exception:  # a broken record must not take the agent down: answer "no such instance"
            return oid, tag, context["errorStatus"]

    def shutdown(**context: Any) -> None:
        return None

    return init, variate, shutdown


def _variation_shim(lab_dir: Path) -> str:
    root = Path(__file__).resolve().parents[2]
    return (
        "# Generated by infra_mgr.lab.power_snmp: snmpsim executes this file as its 'powerlab' variation.\n"
        "import sys\n"
        f"if {str(root)!r} not in sys.path:\n"
        f"    sys.path.insert(0, {str(root)!r})\n"
        "from infra_mgr.lab.power_snmp import make_variation\n"
        f"init, variate, shutdown = make_variation({str(lab_dir)!r})\n"
    )


def write_dynamic_recording(path: Path, records: list[SnmpRecord], device: str) -> None:
    """Rewrite a recording so the device's dynamic OIDs go through the ``powerlab`` variation."""
    dynamic = DYNAMIC[device]
    lines = []
    for record in sorted_records(records):
        if record.oid in dynamic:
            lines.append(f"{record.oid}|{int(record.type)}:{VARIATION}|dev={device}")
        else:
            lines.append(format_record(record))
    text = "".join(line + "\n" for line in lines)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def snmp_ups_devices(lab_dir: Path) -> list[SnmpsimDevice]:
    """The SNMP power agents (two UPSs, the rack PDU, the ATS), with their values as of now, each on
    UDP 161 of its own address when that is free (the README's ``snmp probe 127.3.0.22``), else on a
    free port the lab reports."""
    outage, now = load_outage(lab_dir), time.time()

    def at(name: str, records: list[SnmpRecord]) -> SnmpsimDevice:
        host = SNMP_UPS_HOSTS[name]
        return SnmpsimDevice(name, records, host=host, port=documented_port(host, "udp", SNMP_PORT))

    return [
        at("dc-ups2", apc_ups_records(outage, now)),
        at("dc-ups3", rfc1628_ups_records(outage, now)),
        at("dc-pdu1", apc_pdu_records()),
        at("dc-ats1", apc_ats_records(outage, now)),
    ]


def snmp_ups_spec(lab_dir: Path, *, name: str = "snmp-ups") -> PeerSpec:
    """One snmpsim process serving the APC and RFC 1628 UPS, rack PDU and ATS agents, following the
    scenario."""
    lab = Path(lab_dir).absolute()
    devices = snmp_ups_devices(lab)
    spec = snmpsim_spec(lab, devices, name=name)
    root = lab / name
    variation_dir = root / "variation"
    data_dir = Path(spec.info["data_dir"])
    base_prepare = spec.prepare

    def prepare() -> None:
        if base_prepare is not None:
            base_prepare()
        variation_dir.mkdir(parents=True, exist_ok=True)
        (variation_dir / f"{VARIATION}.py").write_text(_variation_shim(lab), encoding="utf-8")
        for device in devices:
            path = data_dir / device.name / f"{device.community}.snmprec"
            write_dynamic_recording(path, list(device.records), device.name)

    argv = [spec.argv[0], f"--variation-modules-dir={variation_dir}", *spec.argv[1:]]
    return replace(spec, argv=argv, prepare=prepare, info={**spec.info, "kind": "snmp-ups"})


