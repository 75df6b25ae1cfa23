"""Which event a notification becomes: tables of data, and one pure function that reads them.

Adding a vendor's trap means adding a row to ``TRAP_KINDS`` (and, if its varbinds matter, rows to
``VARBIND_FIELDS`` / ``VALUE_NAMES``) — never another ``if``. Trap OIDs are the SNMPv2 form; v1
traps arrive already translated by RFC 3584 (generic traps to ``snmpTraps.N``, enterprise-specific
ones to ``<enterprise>.0.<specific>``), so one row serves both versions.

Sources: RFC 3418 (SNMPv2-MIB ``snmpTraps``), RFC 2863 (IF-MIB), RFC 1628 (UPS-MIB), APC
PowerNet-MIB, CISCO-CONFIG-MAN-MIB, JUNIPER-CFGMGMT-MIB. Nothing here touches the database or SNMP.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from infra_mgr.events.models import Severity

if TYPE_CHECKING:
    from infra_mgr.network.traps import TrapFacts

MESSAGE_MAX = 1000  # event.message column


@dataclass(frozen=True)
class TrapKind:
    """One notification type and the event it becomes.

    ``message`` may use ``{who}`` (device hostname or source address), ``{interface}`` (ifName /
    ifDescr / ifIndex with the alias) and any extracted field name; extracted fields it does not
    use are appended as ``(name=value, …)``. ``overrides`` lower or raise the severity when an
    extracted field has a given value (a link an operator shut down is not a fault). ``repoll``
    asks the discovery service to poll the device now, for changes a poll would see; ``backup``
    asks the configuration backup to read the device (its configuration changed), unless a field
    named in ``backup_when`` is present with a value outside the ones listed (a Cisco device also
    notifies when its running configuration is merely *read*, e.g. by the backup itself).
    """

    name: str
    kind: str
    severity: Severity
    message: str
    repoll: bool = False
    overrides: tuple[tuple[str, Any, Severity], ...] = ()
    backup: bool = False
    backup_when: tuple[tuple[str, tuple[Any, ...]], ...] = ()


UNKNOWN_TRAP = TrapKind("unknown", "snmp.trap", Severity.info, "{who}: SNMP notification {trap_oid}")

TRAP_KINDS: Mapping[str, TrapKind] = {
    # SNMPv2-MIB snmpTraps (RFC 3418) and IF-MIB link traps (RFC 2863)
    "1.3.6.1.6.3.1.1.5.1": TrapKind("coldStart", "device.restarted", Severity.warning,
                                    "{who}: restarted (cold start)", repoll=True),
    "1.3.6.1.6.3.1.1.5.2": TrapKind("warmStart", "device.restarted", Severity.info,
                                    "{who}: restarted (warm start)", repoll=True),
    "1.3.6.1.6.3.1.1.5.3": TrapKind("linkDown", "interface.down", Severity.warning,
                                    "{who}: interface {interface} down", repoll=True,
                                    overrides=(("ifAdminStatus", "down", Severity.info),)),
    "1.3.6.1.6.3.1.1.5.4": TrapKind("linkUp", "interface.up", Severity.info,
                                    "{who}: interface {interface} up", repoll=True),
    "1.3.6.1.6.3.1.1.5.5": TrapKind("authenticationFailure", "snmp.auth_failure", Severity.warning,
                                    "{who}: rejected an SNMP request with bad credentials"),
    # UPS-MIB upsTraps (RFC 1628)
    "1.3.6.1.2.1.33.2.1": TrapKind("upsTrapOnBattery", "power.on_battery", Severity.critical,
                                   "{who}: UPS on battery", repoll=True),
    "1.3.6.1.2.1.33.2.2": TrapKind("upsTrapTestCompleted", "power.test_completed", Severity.info,
                                   "{who}: UPS self-test completed",
                                   overrides=(("upsTestResultsSummary", "doneWarning", Severity.warning),
                                              ("upsTestResultsSummary", "doneError", Severity.warning))),
    "1.3.6.1.2.1.33.2.3": TrapKind("upsTrapAlarmEntryAdded", "power.alarm_raised", Severity.warning,
                                   "{who}: UPS alarm raised", repoll=True,
                                   overrides=(("upsAlarmDescr", "upsAlarmOnBattery", Severity.critical),
                                              ("upsAlarmDescr", "upsAlarmLowBattery", Severity.critical),
                                              ("upsAlarmDescr", "upsAlarmDepletedBattery", Severity.critical),
                                              ("upsAlarmDescr", "upsAlarmShutdownImminent", Severity.critical))),
    "1.3.6.1.2.1.33.2.4": TrapKind("upsTrapAlarmEntryRemoved", "power.alarm_cleared", Severity.info,
                                   "{who}: UPS alarm cleared", repoll=True),
    # APC PowerNet-MIB (enterprise 318; v1 enterprise-specific traps 5 and 9)
    "1.3.6.1.4.1.318.0.5": TrapKind("upsOnBattery", "power.on_battery", Severity.critical,
                                    "{who}: UPS on battery", repoll=True),
    "1.3.6.1.4.1.318.0.9": TrapKind("powerRestored", "power.mains_restored", Severity.info,
                                    "{who}: UPS back on mains", repoll=True),
    # The configuration changed: CISCO-CONFIG-MAN-MIB ciscoConfigManEvent, JUNIPER-CFGMGMT-MIB jnxCmCfgChange
    "1.3.6.1.4.1.9.9.43.2.0.1": TrapKind("ciscoConfigManEvent", "config.change_notified", Severity.info,
                                         "{who}: configuration changed (device notification)", backup=True,
                                         backup_when=(("ccmHistoryEventConfigDestination",
                                                       ("running", "startup", "local")),)),
    "1.3.6.1.4.1.2636.4.5.0.1": TrapKind("jnxCmCfgChange", "config.change_notified", Severity.info,
                                         "{who}: configuration changed (device notification)", backup=True),
}

# Varbind columns worth naming in event data: column OID -> MIB object name. The instance (the
# last sub-identifier: ifIndex, upsAlarmId or 0 for scalars) is stripped before the lookup.
VARBIND_FIELDS: Mapping[str, str] = {
    "1.3.6.1.2.1.2.2.1.1": "ifIndex",
    "1.3.6.1.2.1.2.2.1.2": "ifDescr",
    "1.3.6.1.2.1.2.2.1.7": "ifAdminStatus",
    "1.3.6.1.2.1.2.2.1.8": "ifOperStatus",
    "1.3.6.1.2.1.31.1.1.1.1": "ifName",
    "1.3.6.1.2.1.31.1.1.1.18": "ifAlias",
    "1.3.6.1.2.1.33.1.2.2": "upsSecondsOnBattery",
    "1.3.6.1.2.1.33.1.2.3": "upsEstimatedMinutesRemaining",
    "1.3.6.1.2.1.33.1.6.2.1.1": "upsAlarmId",
    "1.3.6.1.2.1.33.1.6.2.1.2": "upsAlarmDescr",
    "1.3.6.1.2.1.33.1.7.3": "upsTestResultsSummary",
    "1.3.6.1.2.1.33.1.7.4": "upsTestResultsDetail",
    "1.3.6.1.2.1.33.1.9.7": "upsConfigLowBattTime",
    "1.3.6.1.4.1.9.9.43.1.1.6.1.3": "ccmHistoryEventCommandSource",
    "1.3.6.1.4.1.9.9.43.1.1.6.1.4": "ccmHistoryEventConfigSource",
    "1.3.6.1.4.1.9.9.43.1.1.6.1.5": "ccmHistoryEventConfigDestination",
}

# Entries of tables indexed by ifIndex (ifEntry, ifXEntry): a column's instance *is* the ifIndex,
# which names the interface even when the agent sent no ifIndex varbind.
IF_INDEXED_ENTRIES = frozenset(("1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1"))

_CCM_MEDIUM = {1: "erase", 2: "commandSource", 3: "running", 4: "startup", 5: "local", 6: "networkTftp",
               7: "networkRcp", 8: "networkFtp", 9: "networkScp"}
_IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent", 7: "lowerLayerDown"}

# Enumerations and well-known OIDs turned into names (RFC 2863, RFC 1628 upsWellKnownAlarms).
VALUE_NAMES: Mapping[str, Mapping[Any, str]] = {
    "ifAdminStatus": _IF_STATUS,
    "ifOperStatus": _IF_STATUS,
    "ccmHistoryEventCommandSource": {1: "commandLine", 2: "snmp"},
    "ccmHistoryEventConfigSource": _CCM_MEDIUM,
    "ccmHistoryEventConfigDestination": _CCM_MEDIUM,
    "upsTestResultsSummary": {1: "donePass", 2: "doneWarning", 3: "doneError", 4: "aborted", 5: "inProgress",
                              6: "noTestsInitiated"},
    "upsAlarmDescr": {f"1.3.6.1.2.1.33.1.6.3.{n}": name for n, name in enumerate((
        "upsAlarmBatteryBad", "upsAlarmOnBattery", "upsAlarmLowBattery", "upsAlarmDepletedBattery",
        "upsAlarmTempBad", "upsAlarmInputBad", "upsAlarmOutputBad", "upsAlarmOutputOverload", "upsAlarmOnBypass",
        "upsAlarmBypassBad", "upsAlarmOutputOffAsRequested", "upsAlarmUpsOffAsRequested", "upsAlarmChargerFailed",
        "upsAlarmUpsOutputOff", "upsAlarmUpsSystemOff", "upsAlarmFanFailure", "upsAlarmFuseFailure",
        "upsAlarmGeneralFault", "upsAlarmDiagnosticTestFailed", "upsAlarmCommunicationsLost",
        "upsAlarmAwaitingPower", "upsAlarmShutdownPending", "upsAlarmShutdownImminent", "upsAlarmTestInProgress",
    ), start=1)},
}

_INTERFACE_FIELDS = ("ifIndex", "ifName", "ifDescr", "ifAlias")


@dataclass(frozen=True)
class TrapEvent:
    """What the event log should record for one notification (the service adds device and site)."""

    kind: str
    severity: Severity
    message: str
    data: dict[str, Any]
    repoll: bool
    trap: TrapKind
    backup: bool = False  # the device's configuration changed: back it up


def lookup(trap_oid: str) -> TrapKind:
    return TRAP_KINDS.get(trap_oid, UNKNOWN_TRAP)


def extract_fields(varbinds: Mapping[str, Any]) -> dict[str, Any]:
    """Named fields from the varbinds (see ``VARBIND_FIELDS``), enumerations turned into names."""
    fields: dict[str, Any] = {}
    if_index: int | None = None
    for oid, value in varbinds.items():
        column, _, instance = oid.rpartition(".")
        name = VARBIND_FIELDS.get(column)
        if name is None:
            continue
        fields[name] = VALUE_NAMES.get(name, {}).get(value, value) if _hashable(value) else value
        if column.rpartition(".")[0] in IF_INDEXED_ENTRIES and instance.isdigit() and if_index is None:
            if_index = int(instance)
    if "ifIndex" not in fields and if_index is not None:
        fields["ifIndex"] = if_index
    return fields


def describe(facts: TrapFacts, who: str) -> TrapEvent:
    """The event for ``facts``; ``who`` names the sender in the message (hostname or address)."""
    from infra_mgr.network.traps import json_value  # the collector module imports pysnmp: load late

    trap = lookup(facts.trap_oid)
    raw = extract_fields(facts.varbinds)
    fields = {k: json_value(v) for k, v in raw.items()}  # for data: exact (bytes as hex)
    shown = {k: _display(v) for k, v in raw.items()}  # for the message: readable
    severity = trap.severity
    for field_name, value, override in trap.overrides:
        if raw.get(field_name) == value:
            severity = override
            break

    used = {name for _, name, _, _ in string.Formatter().parse(trap.message) if name}
    if "interface" in used:
        used.update(_INTERFACE_FIELDS)
    values: dict[str, Any] = {**shown, "who": who, "trap_oid": facts.trap_oid, "interface": _interface(shown)}
    message = trap.message.format_map(_Missing(values))
    extra = [f"{k}={v}" for k, v in shown.items() if k not in used]
    if extra:
        message += " (" + ", ".join(extra) + ")"

    data: dict[str, Any] = {
        "source": facts.source_address,
        "trap_oid": facts.trap_oid,
        "trap_name": trap.name if trap is not UNKNOWN_TRAP else None,
        "version": facts.version,
        "pdu": facts.pdu_type,
        "uptime_s": facts.uptime_s,
        **fields,
        "varbinds": {oid: json_value(v) for oid, v in facts.varbinds.items()},
    }
    for key in ("user", "engine_id", "agent_address", "enterprise"):
        if getattr(facts, key) is not None:
            data[key] = getattr(facts, key)
    backup = trap.backup and all(raw.get(name, allowed[0]) in allowed for name, allowed in trap.backup_when)
    return TrapEvent(trap.kind, severity, message[:MESSAGE_MAX], data, trap.repoll, trap, backup)


def _interface(fields: Mapping[str, Any]) -> str:
    """``Gi0/3 (uplink to JED-B07)``: the best name an agent gave, then the alias."""
    name = fields.get("ifName") or fields.get("ifDescr")
    if not name:
        name = f"ifIndex {fields['ifIndex']}" if "ifIndex" in fields else "(unknown)"
    alias = fields.get("ifAlias")
    return f"{name} ({alias})" if alias else str(name)


def _display(value: Any) -> Any:
    """Bytes that are not clean UTF-8 text still read as text in a message (the data keeps them)."""
    if isinstance(value, bytes | bytearray):
        return "".join(ch if ch.isprintable() else "\ufffd" for ch in bytes(value).decode("utf-8", "replace"))
    return value


def _hashable(value: Any) -> bool:
    return isinstance(value, int | str)


class _Missing(dict[str, Any]):
    """``format_map`` mapping that shows a missing field as ``?`` instead of raising."""

    def __missing__(self, key: str) -> str:
        return "?"
