"""CLI discovery's parser (pure): the raw outputs of a device's discovery commands → the same facts
SNMP discovery returns (:class:`~infra_mgr.network.snmp.facts.ProbeResult`).

Each output is parsed by ntc-templates (TextFSM) for the platform's ``textfsm_platform``; what the
templates call a value differs by platform (``HOSTNAME`` on Cisco, ``NAME`` on RouterOS …), so one
table per kind of fact lists the template columns that feed each field, first non-empty wins —
a new platform is a new row in ``platforms.yaml`` (with its maker's name, ``vendor``, and any
``rewrites`` of output its templates do not read) and, at most, a new column name here, never a
branch on the vendor. The device is never contacted from here, and nothing here knows the database.

CLI output has no ifIndex: interfaces get a synthetic index derived from their name (stable from
one read to the next, so the inventory's rows keep theirs). Cisco prints full interface names
(``GigabitEthernet1/0/1``) where SNMP's ifName and LLDP use the short ones (``Gi1/0/1``): names
are shortened with :data:`ABBREVIATIONS` so both protocols name a port alike, and the full name
stays as the description (ifDescr's role).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from infra_mgr.network.snmp.facts import DeviceFacts, InterfaceFacts, NeighborFacts, ProbeResult
from infra_mgr.network.ssh.platforms import DISCOVERY_ROLES, SshPlatform, platform_table
from infra_mgr.snmp.target import PollProblem

Row = dict[str, Any]

# Roles whose first row describes the device, in the order their values are trusted.
DEVICE_ROLES = ("version", "system", "identity", "inventory")
NEIGHBOR_ROLES: dict[str, Literal["lldp", "cdp"]] = {"lldp": "lldp", "cdp": "cdp"}

# fact -> template columns (lower case, as ntc-templates returns them), first non-empty wins
DEVICE_FIELDS: dict[str, tuple[str, ...]] = {
    "sys_name": ("hostname", "name", "system_name"),
    "sys_descr": ("description",),
    "model": ("hardware", "model", "hardware_model", "chassis_description", "board_name", "product", "pid"),
    "serial": ("serial", "serial_number", "chassis_serial_number"),
    "os_version": ("version", "junos_version", "software_version"),
    "chassis_id": ("mac_address", "base_mac", "chassis_id"),
    "location": ("location",),
    "contact": ("contact",),
}
INTERFACE_FIELDS: dict[str, tuple[str, ...]] = {
    "name": ("interface", "name", "port"),
    "alias": ("description", "interface_desc"),
    "type": ("hardware_type", "hw_type", "type"),
    "mac": ("mac_address",),
    "mtu": ("mtu", "actual_mtu"),
    "speed": ("bandwidth", "speed", "mode"),
    "admin": ("admin_state", "link_admin", "enabled"),
    "oper": ("protocol_status", "link_status", "status"),
}
NEIGHBOR_FIELDS: dict[str, tuple[str, ...]] = {
    "local": ("local_interface", "interface"),
    "name": ("neighbor_name", "identity"),
    "port_id": ("neighbor_port_id", "interface_name", "neighbor_interface"),
    "port_desc": ("neighbor_interface_description", "neighbor_interface"),
    "chassis": ("chassis_id", "mac_address"),
    "address": ("mgmt_address", "ipv4_address", "ip_address"),
}
# the neighbour's platform: CDP names one; LLDP gives the system description (as SNMP does)
NEIGHBOR_PLATFORM: dict[str, tuple[str, ...]] = {
    "lldp": ("neighbor_description", "system_description", "platform"),
    "cdp": ("platform", "neighbor_description"),
}
# Long interface-name prefixes and the short form ifName/LLDP use (longest first).
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("TwentyFiveGigabitEthernet", "Twe"), ("TwentyFiveGigE", "Twe"), ("HundredGigabitEthernet", "Hu"),
    ("HundredGigE", "Hu"), ("FortyGigabitEthernet", "Fo"), ("TenGigabitEthernet", "Te"),
    ("AppGigabitEthernet", "Ap"), ("GigabitEthernet", "Gi"), ("FastEthernet", "Fa"), ("Port-channel", "Po"),
    ("Loopback", "Lo"), ("Tunnel", "Tu"), ("Vlan", "Vl"), ("Null", "Nu"), ("Ethernet", "Et"),
)

_UP = {"up", "r", "running", "connected", "yes", "enabled"}
_MAC_RE = re.compile(r"^(?:[0-9a-f]{2}[:\- ]?){5}[0-9a-f]{2}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$|"
                     r"^[0-9a-f]{6}-[0-9a-f]{6}$", re.I)
_UPTIME_UNITS = {"year": 365 * 86400, "week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}
_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt])?", re.I)
_SPEED_MULT = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def abbreviate(name: str) -> str:
    """``GigabitEthernet1/0/1`` → ``Gi1/0/1``; a name without a long prefix is left as it is."""
    for long, short in ABBREVIATIONS:
        if name.startswith(long) and len(name) > len(long) and not name[len(long)].isalpha():
            return short + name[len(long):]
    return name


def normalise_mac(text: str | None) -> str | None:
    """Any of the usual MAC spellings → ``aa:bb:cc:dd:ee:ff`` (SNMP's form); other text as it is."""
    if not text:
        return None
    text = text.strip()
    if _MAC_RE.match(text):
        digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    return text


def parse_speed(text: str | None) -> int | None:
    """``1000000 Kbit`` / ``25000 Mb/s`` / ``10Gb/s`` / ``1000FDx`` (Mb/s unless a unit says) → bit/s."""
    if not text:
        return None
    m = _SPEED_RE.match(text)
    if not m:
        return None
    return int(float(m.group(1)) * _SPEED_MULT[(m.group(2) or "m").lower()])


def parse_uptime(row: Row) -> float | None:
    """Seconds from a template's uptime parts (``uptime_weeks`` …) or its uptime text."""
    total, found = 0, False
    for unit, seconds in _UPTIME_UNITS.items():
        value = row.get(f"uptime_{unit}s")
        if value not in (None, ""):
            total += int(value) * seconds
            found = True
    if found:
        return float(total)
    text = str(row.get("uptime") or "")
    parts = re.findall(r"(\d+)\s*(year|week|day|hour|minute|second)s?", text)
    return float(sum(int(n) * _UPTIME_UNITS[u] for n, u in parts)) if parts else None


def _first(row: Row, columns: Sequence[str]) -> str | None:
    for column in columns:
        value = row.get(column)
        if isinstance(value, list):  # a List column (stack members, comment lines): the first
            value = next((v for v in value if v), None)
        if value not in (None, ""):
            return str(value).strip()
    return None


def _status(text: str | None, *, admin: bool) -> str | None:
    if text is None:
        return None
    t = text.strip().lower()
    if admin:
        return "up" if t in _UP else "down"
    return "up" if t in _UP or t.startswith("up") else "down"


def synthetic_index(name: str, taken: set[int]) -> int:
    """A stable ifIndex for a CLI interface: from its name, so it is the same on every read. A
    port named by a number (ArubaOS-Switch ``25``) is that number, as its ifIndex is."""
    index = int(name) if name.isdigit() and 0 < int(name) < 2**31 else zlib.crc32(name.encode()) % 2_000_000_000 + 1
    while index in taken:
        index += 1
    taken.add(index)
    return index


def parse_role(platform: SshPlatform, role: str, output: str) -> list[Row]:
    """Rows of one command's output (ntc-templates). Raises when the template rejects the text."""
    from ntc_templates.parse import parse_output  # type: ignore[import-untyped]

    for rewrite in platform.rewrites:  # real output its template does not read (platforms.yaml)
        output = re.sub(rewrite.pattern, rewrite.replace, output)
    rows = parse_output(platform=platform.textfsm_platform, command=platform.discovery[role], data=output)
    return [dict(r) for r in rows]


def device_facts(platform: SshPlatform, rows_by_role: Mapping[str, list[Row]]) -> DeviceFacts:
    values: dict[str, str] = {}
    uptime: float | None = None
    for role in DEVICE_ROLES:
        rows = rows_by_role.get(role) or []
        if not rows:
            continue
        row = rows[0]
        for fact, columns in DEVICE_FIELDS.items():
            if fact not in values and (value := _first(row, columns)):
                values[fact] = value
        if uptime is None:
            uptime = parse_uptime(row)
    model = values.get("model")
    if model:  # a product name may lead with its part number ("JL624A 8325-48Y8C"): the model is last
        model = model.split()[-1]
    version = values.get("os_version")
    if version:  # "7.12.1 (stable)" → "7.12.1"
        version = re.sub(r"\s*\(.*\)\s*$", "", version).strip() or version
    sys_descr = values.get("sys_descr") or ", ".join(
        x for x in (" ".join(x for x in (platform.label, model) if x), f"Version {version}" if version else "") if x)
    chassis = normalise_mac(values.get("chassis_id"))
    return DeviceFacts(
        sys_name=values.get("sys_name"),
        sys_descr=sys_descr or None,
        vendor=platform.vendor,
        platform=platform.match.platforms[0] if platform.match.platforms else None,
        model=model,
        serial=values.get("serial"),
        os_version=version,
        uptime_s=uptime,
        location=values.get("location"),
        contact=values.get("contact"),
        chassis_id=chassis.lower() if chassis else None,
    )


def interface_facts(rows: list[Row]) -> list[InterfaceFacts]:
    out: list[InterfaceFacts] = []
    taken: set[int] = set()
    seen: set[str] = set()
    for row in rows:
        raw = _first(row, INTERFACE_FIELDS["name"])
        if not raw:
            continue
        name = abbreviate(raw)
        if name in seen:
            continue
        seen.add(name)
        admin_text = _first(row, INTERFACE_FIELDS["admin"])
        oper_text = _first(row, INTERFACE_FIELDS["oper"])
        if admin_text is not None:
            admin = _status(admin_text, admin=True)
        else:  # Cisco "administratively down", RouterOS flag X
            link = (_first(row, ("link_status", "status")) or "").lower()
            admin = "down" if link.startswith("admin") or link == "x" else "up"
        if oper_text is not None:
            oper = _status(oper_text, admin=False)
        else:  # an empty status column is a state too (RouterOS: no R flag, not running)
            has_column = any(c in row for c in INTERFACE_FIELDS["oper"])
            oper = "down" if admin == "down" or has_column else None
        mtu = _first(row, INTERFACE_FIELDS["mtu"])
        out.append(InterfaceFacts(
            index=synthetic_index(name, taken),
            name=name,
            descr=raw,
            alias=_first(row, INTERFACE_FIELDS["alias"]) or "",
            type=_first(row, INTERFACE_FIELDS["type"]),
            speed_bps=parse_speed(_first(row, INTERFACE_FIELDS["speed"])),
            mac=normalise_mac(_first(row, INTERFACE_FIELDS["mac"])),
            mtu=int(mtu) if mtu and mtu.isdigit() else None,
            admin_status=admin,
            oper_status=oper,
        ))
    return out


def neighbor_facts(protocol: Literal["lldp", "cdp"], rows: list[Row], interfaces: list[InterfaceFacts]
                   ) -> list[NeighborFacts]:
    by_name = {i.name: i for i in interfaces}
    out: list[NeighborFacts] = []
    for row in rows:
        local_raw = _first(row, NEIGHBOR_FIELDS["local"])
        local = abbreviate(local_raw) if local_raw else None
        port_id = _first(row, NEIGHBOR_FIELDS["port_id"])
        port_desc = _first(row, NEIGHBOR_FIELDS["port_desc"])
        # as SNMP does: a MAC as port id names nothing a person knows, the description does
        remote_port = port_desc if port_id and port_desc and _MAC_RE.match(port_id) else (port_id or port_desc)
        chassis = normalise_mac(_first(row, NEIGHBOR_FIELDS["chassis"]))
        address = _first(row, NEIGHBOR_FIELDS["address"])
        local_if = by_name.get(local) if local else None
        out.append(NeighborFacts(
            local_interface=local,
            protocol=protocol,
            remote_system_name=_first(row, NEIGHBOR_FIELDS["name"]),
            remote_port=remote_port,
            remote_chassis_id=chassis.lower() if chassis and _MAC_RE.match(chassis) else chassis,
            remote_address=address if address and address != "-" else None,
            remote_platform=_first(row, NEIGHBOR_PLATFORM[protocol]),
            local_if_index=local_if.index if local_if else None,
        ))
    return out


def facts_from_cli(device_type: str, outputs: Mapping[str, str], address: str = "", port: int = 22
                   ) -> ProbeResult:
    """A device's facts from its discovery outputs (role → raw text, the roles of its platform in
    ``platforms.yaml``). An output a template cannot read is reported in ``errors`` and the other
    roles still count; a device type with no command set gives an unreachable-free empty result
    with one error."""
    result = ProbeResult(address=address, port=port)
    platform = platform_table().get(device_type)
    if platform is None or not platform.discovery:
        result.errors.append(PollProblem(address, "cli", "error", f"no discovery commands for {device_type!r}"))
        return result
    rows_by_role: dict[str, list[Row]] = {}
    for role in DISCOVERY_ROLES:
        if role not in platform.discovery:
            continue
        output = outputs.get(role, outputs.get(platform.discovery[role]))  # by role, or by command
        if output is None:
            continue
        try:
            rows_by_role[role] = parse_role(platform, role, output)
        except Exception as exc:  # noqa: BLE001 - a template rejecting the text is one role's problem
            result.errors.append(PollProblem(address, platform.discovery[role], "error",
                                             f"output not understood: {type(exc).__name__}: {str(exc)[:200]}"))
    result.facts = device_facts(platform, rows_by_role)
    result.interfaces = interface_facts(rows_by_role.get("interfaces") or [])
    for role, protocol in NEIGHBOR_ROLES.items():
        result.neighbors += neighbor_facts(protocol, rows_by_role.get(role) or [], result.interfaces)
    result.facts.if_count = len(result.interfaces) or None
    return result
