"""Pure SNMP value handling: converting varbinds to typed values, assembling table rows, and
parsing interfaces, LLDP/CDP neighbours and IP addresses into facts. No I/O: tested with
recorded varbinds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from infra_mgr.network.snmp.facts import (
    InterfaceFacts,
    IpAddressFacts,
    NeighborFacts,
)
from infra_mgr.network.snmp.schema import Table, enums, oid_tuple, scalar_groups, tables
from infra_mgr.snmp.engine import ValueType, VarBind
from infra_mgr.snmp.target import PollProblem

UINT32_MAX = 2**32 - 1

# --- value conversion (pure) -------------------------------------------------------------------


def decode_text(raw: bytes) -> str:
    """Bytes an agent sent as text, by the module's rule: UTF-8 exactly, else ``\\xNN`` escapes."""
    data = raw.rstrip(b"\x00")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace")


def format_mac(raw: bytes) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` (any length, lower case); None for an empty address."""
    return ":".join(f"{b:02x}" for b in raw) if raw else None




class BadType(Exception):
    pass


def convert(kind: str, value: ValueType) -> Any:
    """A raw value as a column of type ``kind`` wants it (see tables.yaml); ``BadType`` if the
    agent sent the wrong SNMP type. ``None`` (absent, or NULL) stays ``None``."""
    if value is None:
        return None
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise BadType
    if kind == "text":
        if isinstance(value, bytes):
            return decode_text(value)
        if isinstance(value, str):  # a library that decodes for us (or an OID sent as text)
            return value
        raise BadType
    if kind == "bytes":
        if isinstance(value, bytes):
            return value
        raise BadType
    if kind == "oid":
        if isinstance(value, str) and oid_tuple(value) is not None:
            return value.strip(".")
        raise BadType
    if kind == "ip":
        if isinstance(value, bytes) and len(value) == 4:
            return str(ipaddress.IPv4Address(value))
        if isinstance(value, str):
            try:
                return str(ipaddress.IPv4Address(value))
            except ValueError:
                raise BadType from None
        raise BadType
    raise ValueError(f"unknown column type {kind!r}")


def type_name(value: ValueType) -> str:
    return type(value).__name__


class Problems:
    """Problems found while parsing one device's data, one per (operation, kind, field)."""

    def __init__(self, address: str = "") -> None:
        self.address = address
        self.items: list[PollProblem] = []
        self._seen: set[tuple[str, str, str]] = set()

    def add(self, operation: str, kind: str, message: str, key: str = "") -> None:
        if (operation, kind, key) not in self._seen:
            self._seen.add((operation, kind, key))
            self.items.append(PollProblem(self.address, operation, kind, message))


# --- tables (pure) -----------------------------------------------------------------------------

Rows = dict[tuple[int, ...], dict[str, Any]]


def assemble(table: Table, varbinds: Iterable[VarBind], problems: Problems) -> Rows:
    """Group a table's varbinds into rows: index (the OID suffix after ``entry.column``, as a
    tuple of ints) → column name → converted value. Varbinds outside the table, of columns we do
    not read, or with a malformed index are skipped; wrong types are one ``bad_type`` problem per
    column and leave the field out."""
    prefix = table.entry + "."
    cut = len(prefix)
    by_id = {c.id: c for c in table.columns}
    rows: Rows = {}
    operation = f"walk {table.name}"
    for item in varbinds:
        try:
            oid, value = item
        except (TypeError, ValueError):
            continue
        if not isinstance(oid, str) or not oid.startswith(prefix):
            continue
        col_text, _, index_text = oid[cut:].partition(".")
        if not col_text.isdigit() or not index_text:
            continue
        column = by_id.get(int(col_text))
        if column is None:
            continue
        index = oid_tuple(index_text)
        if index is None:
            continue
        try:
            converted = convert(column.type, value)
        except BadType:
            problems.add(operation, "bad_type",
                         f"{table.name}.{column.name}: expected {column.type}, got {type_name(value)} "
                         f"(first at {oid})", column.name)
            continue
        if converted is not None:
            rows.setdefault(index, {})[column.name] = converted
    return rows


def single_index(rows: Rows) -> dict[int, dict[str, Any]]:
    """Rows indexed by one integer (ifIndex, entPhysicalIndex, port number); others dropped."""
    return {index[0]: row for index, row in rows.items() if len(index) == 1}


def scalars(group: str, values: Mapping[str, ValueType], problems: Problems, operation: str) -> dict[str, Any]:
    """Named, converted values of a scalar group from a GET answer (oid → raw value)."""
    out: dict[str, Any] = {}
    for scalar in scalar_groups()[group]:
        value = values.get(scalar.oid) if isinstance(values, Mapping) else None
        try:
            converted = convert(scalar.type, value)
        except BadType:
            problems.add(operation, "bad_type", f"{scalar.name} ({scalar.oid}): expected {scalar.type}, "
                                                f"got {type_name(value)}", scalar.name)
            continue
        if converted is not None:
            out[scalar.name] = converted
    return out




# --- interfaces (pure) -------------------------------------------------------------------------


def _enum_name(names: dict[int, str], value: object) -> str | None:
    """The name of an enumerated INTEGER (None for a code the table lacks or a value of another type)."""
    return names.get(value) if isinstance(value, int) else None


def parse_interfaces(if_table: Iterable[VarBind], ifx_table: Iterable[VarBind] = (), *, address: str = ""
                     ) -> tuple[list[InterfaceFacts], list[PollProblem]]:
    """InterfaceFacts from ifTable and ifXTable varbinds: 64-bit HC octet counters preferred;
    speed from ifSpeed unless it is missing or saturated (4294967295), then ifHighSpeed × 10⁶;
    name from ifName, else ifDescr; statuses and ifType by name (tables.yaml enums)."""
    problems = Problems(address)
    base = single_index(assemble(tables()["if_table"], if_table, problems))
    ext = single_index(assemble(tables()["ifx_table"], ifx_table, problems))
    names = enums()
    out: list[InterfaceFacts] = []
    for index in sorted(set(base) | set(ext)):
        if index <= 0:
            continue
        row, xrow = base.get(index, {}), ext.get(index, {})
        speed = row.get("if_speed")
        high = xrow.get("if_high_speed")
        if (speed is None or speed >= UINT32_MAX) and high is not None and high >= 0:
            speed = high * 1_000_000
        if_type = row.get("if_type")
        mac = row.get("if_phys_address")
        out.append(InterfaceFacts(
            index=index,
            name=first_text(xrow.get("if_name"), row.get("if_descr")),
            descr=row.get("if_descr"),
            alias=xrow.get("if_alias") or None,
            type=names["if_type"].get(if_type, str(if_type)) if if_type is not None else None,
            speed_bps=speed if speed is None or speed >= 0 else None,
            mac=format_mac(mac) if isinstance(mac, bytes) else None,
            mtu=row.get("if_mtu"),
            admin_status=_enum_name(names["if_status_admin"], row.get("if_admin_status")),
            oper_status=_enum_name(names["if_status_oper"], row.get("if_oper_status")),
            in_octets=_first_int(xrow.get("if_hc_in_octets"), row.get("if_in_octets")),
            out_octets=_first_int(xrow.get("if_hc_out_octets"), row.get("if_out_octets")),
            in_errors=row.get("if_in_errors"),
            out_errors=row.get("if_out_errors"),
            in_discards=row.get("if_in_discards"),
            out_discards=row.get("if_out_discards"),
        ))
    return out, problems.items


def _first_int(*values: Any) -> int | None:
    return next((v for v in values if isinstance(v, int)), None)


# --- neighbours (pure) -------------------------------------------------------------------------


class _InterfaceIndex:
    """Find a local interface by ifIndex or by a name an agent used for it (ifName first, then
    ifDescr, then ifAlias: an alias may repeat another port's name)."""

    def __init__(self, interfaces: Iterable[InterfaceFacts]) -> None:
        self.by_index: dict[int, InterfaceFacts] = {}
        self._by_text: tuple[dict[str, InterfaceFacts], ...] = ({}, {}, {})
        for i in interfaces:
            self.by_index[i.index] = i
            for table, text in zip(self._by_text, (i.name, i.descr, i.alias), strict=True):
                if text:
                    table.setdefault(text, i)

    def by_text(self, text: str | None) -> InterfaceFacts | None:
        if not text:
            return None
        return next((table[text] for table in self._by_text if text in table), None)

    def name_of(self, if_index: int | None) -> str | None:
        found = self.by_index.get(if_index) if if_index is not None else None
        return found.name if found else None


def parse_lldp(remote: Iterable[VarBind], man_addr: Iterable[VarBind] = (), local_ports: Iterable[VarBind] = (),
               interfaces: Iterable[InterfaceFacts] = (), *, address: str = ""
               ) -> tuple[list[NeighborFacts], list[PollProblem]]:
    """LLDP neighbours from lldpRemTable, lldpRemManAddrTable and lldpLocPortTable varbinds.

    The local interface of a neighbour: lldpRemLocalPortNum is a row of lldpLocPortTable, whose
    port id (or description) names an interface (ifName, ifDescr or ifAlias); failing that the
    port number is taken as an ifIndex when one exists; failing that, the agent's own text.
    The remote port: see :func:`remote_port_name`. The remote address: the first IPv4 management address, else IPv6.
    """
    problems = Problems(address)
    table_set = tables()
    rem = assemble(table_set["lldp_rem"], remote, problems)
    ports = single_index(assemble(table_set["lldp_loc_port"], local_ports, problems))
    known = _InterfaceIndex(interfaces)
    addresses = _lldp_man_addresses(assemble(table_set["lldp_rem_man_addr"], man_addr, problems))
    out: list[NeighborFacts] = []
    for index, row in sorted(rem.items()):
        if len(index) != 3:
            continue
        _, port_num, _ = index
        local_if: InterfaceFacts | None = None
        local_text: str | None = None
        port = ports.get(port_num, {})
        if port:
            port_id = format_port_id(port.get("port_id_subtype"), port.get("port_id"))
            local_if = known.by_text(port_id) or known.by_text(port.get("port_desc"))
            # a MAC or address as port id names nothing a person knows: prefer the description
            by_address = port.get("port_id_subtype") in (3, 4)
            local_text = first_text(*((port.get("port_desc"), port_id) if by_address
                                       else (port_id, port.get("port_desc"))))
        if local_if is None:
            local_if = known.by_index.get(port_num)
        remote_port = remote_port_name(row.get("port_id_subtype"), row.get("port_id"), row.get("port_desc"))
        out.append(NeighborFacts(
            local_interface=local_if.name if local_if else (local_text or str(port_num)),
            protocol="lldp",
            remote_system_name=first_text(row.get("sys_name")),
            remote_port=remote_port,
            remote_chassis_id=format_chassis_id(row.get("chassis_id_subtype"), row.get("chassis_id")),
            remote_address=addresses.get(index),
            remote_platform=first_text(row.get("sys_desc")),
            local_if_index=local_if.index if local_if else None,
        ))
    return out, problems.items


def _lldp_man_addresses(rows: Rows) -> dict[tuple[int, ...], str]:
    """(timeMark, localPort, remIndex) → management address. The index goes on with the address
    subtype (1 IPv4, 2 IPv6) and the address, length-prefixed as an OCTET STRING index should be
    (some agents leave the length out: accepted when the rest has the address's exact size)."""
    found: dict[tuple[int, ...], list[tuple[int, str]]] = {}
    for index in rows:
        if len(index) < 5:
            continue
        key, subtype, rest = index[:3], index[3], index[4:]
        if rest and rest[0] == len(rest) - 1:
            rest = rest[1:]
        if any(b > 255 for b in rest):
            continue
        if subtype == 1 and len(rest) == 4:
            found.setdefault(key, []).append((0, str(ipaddress.IPv4Address(bytes(rest)))))
        elif subtype == 2 and len(rest) == 16:
            found.setdefault(key, []).append((1, str(ipaddress.IPv6Address(bytes(rest)))))
    return {key: sorted(values)[0][1] for key, values in found.items()}


def _cdp_address(address_type: Any, raw: Any) -> str | None:
    """cdpCacheAddress: 4 octets of IPv4 when cdpCacheAddressType is ip(1); 16 octets of IPv6
    (type 20 on IOS); some agents send it as text."""
    if isinstance(raw, bytes):
        if len(raw) == 4 and address_type in (1, None):
            return str(ipaddress.IPv4Address(raw))
        if len(raw) == 16:
            return str(ipaddress.IPv6Address(raw))
        try:
            return str(ipaddress.ip_address(raw.decode("ascii").strip()))
        except (UnicodeDecodeError, ValueError):
            return None
    return None


def parse_cdp(cache: Iterable[VarBind], interfaces: Iterable[InterfaceFacts] = (), *, address: str = ""
              ) -> tuple[list[NeighborFacts], list[PollProblem]]:
    """CDP neighbours from cdpCacheTable varbinds (index cdpCacheIfIndex.cdpCacheDeviceIndex):
    device id, port, address and platform; the local interface is the ifIndex's name."""
    problems = Problems(address)
    rows = assemble(tables()["cdp_cache"], cache, problems)
    known = _InterfaceIndex(interfaces)
    out: list[NeighborFacts] = []
    for index, row in sorted(rows.items()):
        if len(index) != 2:
            continue
        if_index = index[0]
        out.append(NeighborFacts(
            local_interface=known.name_of(if_index) or str(if_index),
            protocol="cdp",
            remote_system_name=first_text(row.get("device_id")),
            remote_port=first_text(row.get("device_port")),
            remote_chassis_id=None,
            remote_address=_cdp_address(row.get("address_type"), row.get("address")),
            remote_platform=first_text(row.get("platform")),
            local_if_index=if_index if if_index in known.by_index else None,
        ))
    return out, problems.items


# --- addresses, ARP, MAC table (pure) ----------------------------------------------------------


def _inet_address(index: Sequence[int]) -> tuple[str | None, Sequence[int]]:
    """An InetAddressType + InetAddress index prefix (type, length, octets…) → (address, rest).
    Types 1 ipv4, 2 ipv6, 3 ipv4z, 4 ipv6z (zone index dropped)."""
    if len(index) < 2:
        return None, ()
    kind, length = index[0], index[1]
    octets, rest = index[2 : 2 + length], index[2 + length :]
    if len(octets) != length or any(o > 255 for o in octets):
        return None, ()
    raw = bytes(octets)
    if kind in (1, 3) and len(raw) in (4, 8):
        return str(ipaddress.IPv4Address(raw[:4])), rest
    if kind in (2, 4) and len(raw) in (16, 20):
        return str(ipaddress.IPv6Address(raw[:16])), rest
    return None, ()


def _prefix_length(netmask: str | None) -> int | None:
    if not netmask:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None  # not a contiguous mask


def parse_ip_addresses(ip_address: Iterable[VarBind] = (), ip_addr: Iterable[VarBind] = (), *, address: str = ""
                       ) -> tuple[list[IpAddressFacts], list[PollProblem]]:
    """Interface addresses from ipAddressTable (IPv4 and IPv6; prefix length is the last arc of
    ipAddressPrefix) and the older ipAddrTable (IPv4, netmask); the newer table wins."""
    problems = Problems(address)
    table_set = tables()
    found: dict[str, IpAddressFacts] = {}
    for index, row in assemble(table_set["ip_address"], ip_address, problems).items():
        addr, rest = _inet_address(index)
        if addr is None or rest or row.get("type") == 3:  # 3 = broadcast
            continue
        prefix = oid_tuple(row.get("prefix", "")) if row.get("prefix") else None
        length = prefix[-1] if prefix and len(prefix) > 2 and prefix[-1] <= 128 else None
        found[addr] = IpAddressFacts(addr, length, row.get("if_index"))
    for index, row in assemble(table_set["ip_addr"], ip_addr, problems).items():
        if len(index) != 4 or any(o > 255 for o in index):
            continue
        addr = ".".join(map(str, index))
        known = found.get(addr)
        length = _prefix_length(row.get("netmask"))
        if known is None:
            found[addr] = IpAddressFacts(addr, length, row.get("if_index"))
        else:
            known.prefix_length = known.prefix_length if known.prefix_length is not None else length
            known.if_index = known.if_index if known.if_index is not None else row.get("if_index")
    return sorted(found.values(), key=lambda a: (":" in a.address, a.address)), problems.items






def first_text(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def format_chassis_id(subtype: Any, raw: Any) -> str | None:
    """An LLDP chassis id by its subtype (LldpChassisIdSubtype): 4 macAddress → aa:bb:…,
    5 networkAddress → the IP (first octet is the IANA family: 1 IPv4, 2 IPv6), others → text."""
    if not isinstance(raw, bytes) or not raw:
        return raw if isinstance(raw, str) and raw else None
    if subtype == 4:
        return format_mac(raw)
    if subtype == 5:
        return _network_address(raw) or _text_or_hex(raw)
    return _text_or_hex(raw)


def format_port_id(subtype: Any, raw: Any) -> str | None:
    """An LLDP port id by its subtype (LldpPortIdSubtype): 3 macAddress, 4 networkAddress,
    others (interfaceAlias, interfaceName, local, …) → text."""
    if not isinstance(raw, bytes) or not raw:
        return raw if isinstance(raw, str) and raw else None
    if subtype == 3:
        return format_mac(raw)
    if subtype == 4:
        return _network_address(raw) or _text_or_hex(raw)
    return _text_or_hex(raw)


# LldpPortIdSubtype values whose port id names nothing a person knows: a MAC (3), a network
# address (4) or a number the agent assigned locally (7) — Junos sends the port's ifIndex there.
_OPAQUE_PORT_IDS = (3, 4, 7)


def remote_port_name(subtype: Any, raw: Any, port_desc: Any) -> str | None:
    """The remote port as a person names it: the port id, unless it is opaque (a MAC, an address
    or a locally assigned number such as Junos's ``612``) and lldpRemPortDesc says more
    (``ge-0/1/2``). With no description the id is kept: the view can still resolve a number to an
    interface name when the remote device is in the inventory."""
    port_id = format_port_id(subtype, raw)
    if subtype in _OPAQUE_PORT_IDS:
        return first_text(port_desc, port_id)
    return first_text(port_id, port_desc)


def _network_address(raw: bytes) -> str | None:
    family, address = raw[0], raw[1:]
    if family == 1 and len(address) == 4:
        return str(ipaddress.IPv4Address(address))
    if family == 2 and len(address) == 16:
        return str(ipaddress.IPv6Address(address))
    return None


def _text_or_hex(raw: bytes) -> str:
    """Text if the bytes are printable UTF-8, else colon-separated hex (ids are often binary)."""
    try:
        text = raw.rstrip(b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return format_mac(raw) or ""
    if text and text.isprintable():
        return text
    return format_mac(raw) or ""
