"""SNMP UPS agents of the power lab (on snmpsim) whose values follow the outage scenario.

Two UPSs on the generator-backed panel answer SNMP v2c (community ``public``):

* ``dc-ups2``: an APC Smart-UPS with a network management card: sysObjectID
  ``1.3.6.1.4.1.318.1.3.27`` and PowerNet-MIB ``upsBasic``/``upsAdv``/``upsHighPrec`` values.
* ``dc-ups3``: a UPS whose card speaks only RFC 1628 UPS-MIB (``1.3.6.1.2.1.33.1``); the card runs
  embedded Linux with net-snmp, so its sysObjectID is net-snmp's generic Linux one.

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

from infra_mgr.lab.peers import SYS, SYS_LOCATION, SYS_NAME, SnmpsimDevice, snmpsim_spec
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
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"
POWER_LOCATION = "أمانة جدة - مركز البيانات - غرفة الطاقة"

# host per UPS agent (127.3.0.x: the lab's power devices)
SNMP_UPS_HOSTS = {"dc-ups2": "127.3.0.22", "dc-ups3": "127.3.0.23"}


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
        return int(round(float(value or 0) * factor))  # type: ignore[arg-type]


Dynamic = tuple[SnmpType, Callable[[Context], int]]

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

DYNAMIC: dict[str, dict[str, Dynamic]] = {"dc-ups2": APC_DYNAMIC, "dc-ups3": RFC1628_DYNAMIC}


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


def snmp_value(device: str, oid: str, outage: Outage, now: float) -> int:
    """The value a dynamic OID of ``device`` has at ``now``."""
    kind_fn = DYNAMIC[device][oid.lstrip(".")]
    return kind_fn[1](Context(UPS_PROFILES[device], outage, now))


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
    """The two SNMP UPS agents, with their values as of now."""
    outage, now = load_outage(lab_dir), time.time()
    return [
        SnmpsimDevice("dc-ups2", apc_ups_records(outage, now), host=SNMP_UPS_HOSTS["dc-ups2"]),
        SnmpsimDevice("dc-ups3", rfc1628_ups_records(outage, now), host=SNMP_UPS_HOSTS["dc-ups3"]),
    ]


def snmp_ups_spec(lab_dir: Path, *, name: str = "snmp-ups") -> PeerSpec:
    """One snmpsim process serving the APC and RFC 1628 UPS agents, following the scenario."""
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


