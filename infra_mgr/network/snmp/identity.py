"""Who a device is, from what it says of itself (pure): vendor, platform and model from
sysObjectID/sysDescr and the vendor table, refined by ENTITY-MIB and vendor scalars; chassis and
port ids as people write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra_mgr.network.snmp.facts import DeviceFacts
from infra_mgr.network.snmp.parse import (
    BadType,
    Problems,
    Rows,
    assemble,
    convert,
    decode_text,
    first_text,
    format_chassis_id,
    scalars,
    single_index,
    type_name,
)
from infra_mgr.network.snmp.schema import DescrRule, Pattern, Signature, oid_tuple, tables, vendors
from infra_mgr.snmp.engine import ValueType, VarBind
from infra_mgr.snmp.target import PollProblem

# --- identity: vendor, platform, model, serial, version (pure) ---------------------------------


@dataclass
class Identity:
    vendor: str | None = None
    platform: str | None = None
    model: str | None = None
    serial: str | None = None
    os_version: str | None = None
    scalars: tuple[tuple[str, str], ...] = ()  # vendor OIDs that can fill what is still unknown
    card: bool = False  # sysDescr's model/serial are a management card's (see VendorEntry)
    signatures: tuple[Signature, ...] = ()


def identify(sys_object_id: str | None, sys_descr: str | None) -> Identity:
    """Vendor and platform from sysObjectID (longest prefix in vendors.yaml), refined by
    sysDescr rules, with model/serial/os_version extracted from sysDescr where a pattern says how."""
    descr = sys_descr if isinstance(sys_descr, str) else ""
    oid = oid_tuple(sys_object_id) if isinstance(sys_object_id, str) else None
    table = vendors()
    entry = None
    if oid is not None:
        entry = next((e for e in table.entries if oid[: len(e.prefix)] == e.prefix), None)
    ident = Identity()
    patterns: dict[str, Pattern | None] = {"version": None, "model": None, "serial": None}
    rules: Sequence[DescrRule] = table.fallback
    if entry is not None:
        ident.vendor, ident.platform, ident.scalars = entry.vendor, entry.platform, entry.scalars
        ident.card, ident.signatures = entry.card, entry.signatures
        patterns = {"version": entry.version, "model": entry.model, "serial": entry.serial}
        rules = entry.descr
    for rule in rules:
        if rule.match.search(descr):
            ident.vendor = rule.vendor or ident.vendor
            ident.platform = rule.platform or ident.platform
            for name in patterns:
                patterns[name] = getattr(rule, name) or patterns[name]
            break
    if descr:
        ident.os_version = patterns["version"].extract(descr) if patterns["version"] else None
        ident.model = patterns["model"].extract(descr) if patterns["model"] else None
        ident.serial = patterns["serial"].extract(descr) if patterns["serial"] else None
    return ident


def apply_signature(ident: Identity, values: Mapping[str, ValueType] | None) -> None:
    """The first signature whose OID answered names vendor and platform, and its scalars go first."""
    if not isinstance(values, Mapping):
        return
    for sig in ident.signatures:
        value = values.get(sig.oid)
        text = decode_text(value) if isinstance(value, bytes) else (str(value) if value is not None else "")
        if text.strip() and (sig.match is None or sig.match.search(text)):
            ident.vendor, ident.platform = sig.vendor, sig.platform or ident.platform
            ident.scalars = sig.scalars + ident.scalars
            for name, _ in sig.scalars:  # the box's own answer beats what sysDescr (its kernel) says
                if name in ("model", "serial", "os_version"):
                    setattr(ident, name, None)
            return


def _chassis(entity: Rows) -> dict[str, Any]:
    """The ENTITY-MIB row that describes the box: the first chassis (class 3) with a serial or
    model, else the first row with a serial."""
    rows = sorted(single_index(entity).items())
    for _, row in rows:
        if row.get("class") == 3 and (row.get("serial") or row.get("model")):
            return row
    for _, row in rows:
        if row.get("serial"):
            return row
    return {}












def parse_facts(system: Mapping[str, ValueType], entity: Iterable[VarBind] = (),
                vendor_values: Mapping[str, ValueType] | None = None, *, address: str = ""
                ) -> tuple[DeviceFacts, list[PollProblem]]:
    """DeviceFacts from a GET of the system and LLDP-local scalars (oid → value), the
    ENTITY-MIB varbinds and the answers to the vendor's own scalars (oid → value)."""
    problems = Problems(address)
    sysvals = scalars("system", system, problems, "facts")
    lldp = scalars("lldp_local", system, problems, "facts")
    if_number = scalars("interfaces", system, problems, "facts").get("if_number")
    entity_rows = assemble(tables()["ent_physical"], entity, problems)
    ident = identify(sysvals.get("sys_object_id"), sysvals.get("sys_descr"))
    apply_signature(ident, vendor_values)
    chassis = _chassis(entity_rows)
    extra: dict[str, str | None] = {}
    for name, oid in ident.scalars:
        value = (vendor_values or {}).get(oid) if isinstance(vendor_values, Mapping) else None
        try:
            extra[name] = convert("text", value)
        except BadType:
            problems.add("facts", "bad_type", f"vendor {name} ({oid}): expected text, got {type_name(value)}", name)
    uptime = sysvals.get("sys_uptime")
    facts = DeviceFacts(
        sys_name=sysvals.get("sys_name"),
        sys_descr=sysvals.get("sys_descr"),
        sys_object_id=sysvals.get("sys_object_id"),
        vendor=ident.vendor,
        platform=ident.platform,
        model=first_text(chassis.get("model"), extra.get("model"), ident.model),
        serial=first_text(chassis.get("serial"), extra.get("serial"), ident.serial),
        os_version=first_text(ident.os_version, extra.get("os_version"), chassis.get("software_rev")),
        uptime_s=uptime / 100 if isinstance(uptime, int) and 0 <= uptime < 2**64 else None,
        location=sysvals.get("sys_location"),
        contact=sysvals.get("sys_contact"),
        if_count=if_number if isinstance(if_number, int) and 0 <= if_number < 1_000_000 else None,
        chassis_id=format_chassis_id(lldp.get("chassis_id_subtype"), lldp.get("chassis_id")),
    )
    return facts, problems.items


# --- a neighbour's platform in a table cell (pure) ---------------------------------------------

PLATFORM_SHORT_MAX = 60


def short_platform(sys_descr: str | None) -> str:
    """A neighbour's platform in a few words: a remote's lldpRemSysDesc / cdpCachePlatform is often
    a whole multi-line sysDescr (copyright, build date, support URL) that would swamp a table.
    When the vendor table recognises the text: vendor, model (or platform) and version; otherwise
    its first line, cut at a word near :data:`PLATFORM_SHORT_MAX` characters. The caller keeps the
    full text for a tooltip."""
    descr = sys_descr if isinstance(sys_descr, str) else ""
    line = next((part.strip() for part in descr.splitlines() if part.strip()), "")
    ident = identify(None, descr)
    if ident.vendor and (ident.model or ident.os_version):
        return " ".join(x for x in (ident.vendor, ident.model or ident.platform, ident.os_version) if x)
    if len(line) <= PLATFORM_SHORT_MAX:
        return line
    cut = line[:PLATFORM_SHORT_MAX].rsplit(" ", 1)[0].rstrip(" ,;")
    return (cut or line[:PLATFORM_SHORT_MAX]) + "…"
