"""The city's SNMP recordings and expected.json, written from the model in ``city_model``.

Deterministic: the same YAML gives byte-identical recordings and expected.json."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra_mgr.lab.city_links import VARIATION, Counter, interface_counters
from infra_mgr.lab.city_model import (
    CDP_CACHE_ENTRY,
    ENT_PHYSICAL_ENTRY,
    EXAMPLE_YAML,
    EXPECTED_FILE,
    FAULTS,
    FLAP_PERIOD_S,
    IF_ENTRY,
    IF_NUMBER,
    IFX_ENTRY,
    IP_ADDR_ENTRY,
    LINK_AUDIT,
    LINK_AUDIT_ALTERNATIVE,
    LINK_CONDITIONS,
    LLDP_BRIDGE,
    LLDP_LOC,
    LLDP_LOC_MAN_ADDR_ENTRY,
    LLDP_LOC_PORT_ENTRY,
    LLDP_REM_ENTRY,
    LLDP_REM_MAN_ADDR_ENTRY,
    LLDP_ROUTER,
    ROLE_TRAITS,
    SNMP_ENGINE_ID,
    SYS,
    SYS_CONTACT,
    City,
    Device,
    Interface,
    branch_uplink,
    build_city,
)
from infra_mgr.lab.platforms import (
    Platform,
)
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, format_record

# --- recordings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Varied:
    """A recording line served through a snmpsim variation module (``OID|tag:module|params``)."""

    oid: str
    type: SnmpType
    module: str
    params: tuple[tuple[str, Any], ...]

    def line(self) -> str:
        params = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{self.oid}|{int(self.type)}:{self.module}|{params}"


Line = SnmpRecord | Varied


def _counter(oid: str, kind: SnmpType, counter: Counter) -> Line:
    """A counter served by the ``linkrate`` variation (the 32-bit ones wrap like the real thing);
    one that does not move is a plain value."""
    width = 32 if kind is SnmpType.COUNTER32 else 64
    if counter.rate <= 0:
        return SnmpRecord(oid, kind, counter.base % 2**width)
    return Varied(oid, kind, VARIATION, counter.params(width))


def _oper_status(oid: str, state: str) -> Line:
    if state == "flapping":  # down for the first half of every period of wall time, then up
        return Varied(oid, SnmpType.INTEGER, VARIATION, (("flap", FLAP_PERIOD_S),))
    return SnmpRecord(oid, SnmpType.INTEGER, 1 if state == "up" else 2)


def _last_change(oid: str, iface: Interface, uptime_ticks: int) -> Line:
    """ifLastChange: fixed, except on a flapping port, where it follows each transition as a real
    agent's does (sysUpTime at the last change), so a poller sees flaps between its polls."""
    if iface.oper == "flapping":
        return Varied(oid, SnmpType.TIMETICKS, VARIATION, (("lastchange", FLAP_PERIOD_S), ("u", uptime_ticks)))
    return SnmpRecord(oid, SnmpType.TIMETICKS, iface.last_change)


def _lldp_port_id(platform: Platform, iface: Interface) -> str | bytes:
    if platform.lldp_port_id == "name":
        return iface.name
    if platform.lldp_port_id == "index":
        return str(iface.if_index)
    return iface.mac


def _lldp_port_desc(platform: Platform, iface: Interface) -> str:
    if platform.lldp_port_desc == "descr":
        return iface.descr
    if platform.lldp_port_desc == "alias_or_name":
        return iface.alias or iface.descr
    return iface.name


def device_records(device: Device) -> list[Line]:
    """Every variable of one device's recording."""
    platform, model = device.platform, device.model
    traits = ROLE_TRAITS[device.role]
    lines: list[Line] = [
        SnmpRecord(f"{SYS}.1.0", SnmpType.OCTET_STRING, device.sys_descr),
        SnmpRecord(f"{SYS}.2.0", SnmpType.OID, model.sys_object_id),
        Varied(f"{SYS}.3.0", SnmpType.TIMETICKS, "numeric", (("initial", device.uptime_ticks), ("rate", 100))),
        SnmpRecord(f"{SYS}.4.0", SnmpType.OCTET_STRING, SYS_CONTACT),
        SnmpRecord(f"{SYS}.5.0", SnmpType.OCTET_STRING, device.hostname),
        SnmpRecord(f"{SYS}.6.0", SnmpType.OCTET_STRING, f"أمانة جدة - {device.site_name_ar}"),
        SnmpRecord(f"{SYS}.7.0", SnmpType.INTEGER, traits["sys_services"]),
        SnmpRecord(IF_NUMBER, SnmpType.INTEGER, len(device.interfaces)),
        SnmpRecord(SNMP_ENGINE_ID, SnmpType.OCTET_STRING, device.engine_id),
    ]
    for iface in device.interfaces:
        lines += _interface_records(iface, device.uptime_ticks)
    lines += _ip_records(device)
    lines += _entity_records(device)
    fields = device.template_fields()
    lines += [SnmpRecord(oid, kind, template.format(**fields)) for oid, kind, template in platform.vendor_scalars]
    lines += _lldp_records(device)
    if platform.cdp_cache:
        lines += _cdp_records(device)
    return lines


def _interface_records(iface: Interface, uptime_ticks: int = 0) -> list[Line]:
    i = iface.if_index
    bps = iface.speed_mbps * 1_000_000
    c = interface_counters(iface)
    c32, c64 = SnmpType.COUNTER32, SnmpType.COUNTER64
    lines: list[Line] = [
        SnmpRecord(f"{IF_ENTRY}.1.{i}", SnmpType.INTEGER, i),
        SnmpRecord(f"{IF_ENTRY}.2.{i}", SnmpType.OCTET_STRING, iface.descr),
        SnmpRecord(f"{IF_ENTRY}.3.{i}", SnmpType.INTEGER, iface.if_type),
        SnmpRecord(f"{IF_ENTRY}.4.{i}", SnmpType.INTEGER, iface.mtu),
        SnmpRecord(f"{IF_ENTRY}.5.{i}", SnmpType.GAUGE32, min(bps, 2**32 - 1)),
        SnmpRecord(f"{IF_ENTRY}.6.{i}", SnmpType.OCTET_STRING, iface.mac),
        SnmpRecord(f"{IF_ENTRY}.7.{i}", SnmpType.INTEGER, 1 if iface.admin_up else 2),
        _oper_status(f"{IF_ENTRY}.8.{i}", iface.oper),
        _last_change(f"{IF_ENTRY}.9.{i}", iface, uptime_ticks),
        _counter(f"{IF_ENTRY}.10.{i}", c32, c["in_octets"]),
        _counter(f"{IF_ENTRY}.11.{i}", c32, c["in_pkts"]),
        _counter(f"{IF_ENTRY}.13.{i}", c32, c["in_discards"]),
        _counter(f"{IF_ENTRY}.14.{i}", c32, c["in_errors"]),
        _counter(f"{IF_ENTRY}.16.{i}", c32, c["out_octets"]),
        _counter(f"{IF_ENTRY}.17.{i}", c32, c["out_pkts"]),
        _counter(f"{IF_ENTRY}.19.{i}", c32, c["out_discards"]),
        _counter(f"{IF_ENTRY}.20.{i}", c32, c["out_errors"]),
        SnmpRecord(f"{IFX_ENTRY}.1.{i}", SnmpType.OCTET_STRING, iface.name),
        _counter(f"{IFX_ENTRY}.6.{i}", c64, c["in_octets"]),
        _counter(f"{IFX_ENTRY}.7.{i}", c64, c["in_pkts"]),
        _counter(f"{IFX_ENTRY}.10.{i}", c64, c["out_octets"]),
        _counter(f"{IFX_ENTRY}.11.{i}", c64, c["out_pkts"]),
        SnmpRecord(f"{IFX_ENTRY}.14.{i}", SnmpType.INTEGER, 1 if iface.port else 2),
        SnmpRecord(f"{IFX_ENTRY}.15.{i}", SnmpType.GAUGE32, iface.speed_mbps),
        SnmpRecord(f"{IFX_ENTRY}.16.{i}", SnmpType.INTEGER, 2),
        SnmpRecord(f"{IFX_ENTRY}.17.{i}", SnmpType.INTEGER, 1 if iface.port else 2),
        SnmpRecord(f"{IFX_ENTRY}.18.{i}", SnmpType.OCTET_STRING, iface.alias),
        SnmpRecord(f"{IFX_ENTRY}.19.{i}", SnmpType.TIMETICKS, 0),
    ]
    return lines


def _ip_records(device: Device) -> list[Line]:
    """ipAddrTable: the management loopback address and the YAML plan's addresses."""
    entries = [(device.address, "255.255.255.255", device.mgmt.if_index)]
    units = {id(i.logical_of): i for i in device.interfaces if i.logical_of is not None}
    for address, mask, role in device.plan_addresses:
        iface = next((i for i in device.interfaces if i.role == role and (i.peer is not None or role == "mgmt")), None)
        if iface is not None:  # Junos puts addresses on the logical unit, not the port
            entries.append((address, mask, units.get(id(iface), iface).if_index))
    lines: list[Line] = []
    for address, mask, if_index in entries:
        lines += [
            SnmpRecord(f"{IP_ADDR_ENTRY}.1.{address}", SnmpType.IP_ADDRESS, address),
            SnmpRecord(f"{IP_ADDR_ENTRY}.2.{address}", SnmpType.INTEGER, if_index),
            SnmpRecord(f"{IP_ADDR_ENTRY}.3.{address}", SnmpType.IP_ADDRESS, mask),
            SnmpRecord(f"{IP_ADDR_ENTRY}.4.{address}", SnmpType.INTEGER, 1),
        ]
    return lines


def _entity_records(device: Device) -> list[Line]:
    """The ENTITY-MIB chassis entry: model and the (unique) serial number."""
    model, platform = device.model, device.platform
    e = f"{ENT_PHYSICAL_ENTRY}"
    return [
        SnmpRecord(f"{e}.2.1", SnmpType.OCTET_STRING, model.ent_descr),
        SnmpRecord(f"{e}.4.1", SnmpType.INTEGER, 0),
        SnmpRecord(f"{e}.5.1", SnmpType.INTEGER, 3),  # chassis(3)
        SnmpRecord(f"{e}.6.1", SnmpType.INTEGER, -1),
        SnmpRecord(f"{e}.7.1", SnmpType.OCTET_STRING, "Chassis"),
        SnmpRecord(f"{e}.8.1", SnmpType.OCTET_STRING, model.hardware_rev),
        SnmpRecord(f"{e}.9.1", SnmpType.OCTET_STRING, ""),
        SnmpRecord(f"{e}.10.1", SnmpType.OCTET_STRING, platform.os_version),
        SnmpRecord(f"{e}.11.1", SnmpType.OCTET_STRING, device.serial),
        SnmpRecord(f"{e}.12.1", SnmpType.OCTET_STRING, platform.mfg_name),
        SnmpRecord(f"{e}.13.1", SnmpType.OCTET_STRING, model.model),
        SnmpRecord(f"{e}.16.1", SnmpType.INTEGER, 2),  # isFRU false
    ]


def _addr_index(address: str) -> str:
    """An IPv4 management address as a LLDP-MIB index: subtype ipV4(1), length 4, the octets."""
    return f"1.4.{address}"


def _lldp_records(device: Device) -> list[Line]:
    platform = device.platform
    traits = ROLE_TRAITS[device.role]
    caps = bytes([LLDP_BRIDGE | LLDP_ROUTER])
    lines: list[Line] = [
        SnmpRecord(f"{LLDP_LOC}.1.0", SnmpType.INTEGER, 4),  # chassis id subtype macAddress(4)
        SnmpRecord(f"{LLDP_LOC}.2.0", SnmpType.OCTET_STRING, device.mac),
        SnmpRecord(f"{LLDP_LOC}.3.0", SnmpType.OCTET_STRING, device.hostname),
        SnmpRecord(f"{LLDP_LOC}.4.0", SnmpType.OCTET_STRING, device.sys_descr),
        SnmpRecord(f"{LLDP_LOC}.5.0", SnmpType.OCTET_STRING, caps),
        SnmpRecord(f"{LLDP_LOC}.6.0", SnmpType.OCTET_STRING, bytes([traits["lldp_caps"]])),
    ]
    for iface in device.interfaces:
        if iface.port:
            n = iface.if_index
            lines += [
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.2.{n}", SnmpType.INTEGER, platform.lldp_port_id_subtype),
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.3.{n}", SnmpType.OCTET_STRING, _lldp_port_id(platform, iface)),
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.4.{n}", SnmpType.OCTET_STRING, _lldp_port_desc(platform, iface)),
            ]
    man = f"{_addr_index(device.address)}"
    lines += [
        SnmpRecord(f"{LLDP_LOC_MAN_ADDR_ENTRY}.3.{man}", SnmpType.INTEGER, 5),  # length incl. subtype
        SnmpRecord(f"{LLDP_LOC_MAN_ADDR_ENTRY}.4.{man}", SnmpType.INTEGER, 2),  # ifIndex
        SnmpRecord(f"{LLDP_LOC_MAN_ADDR_ENTRY}.5.{man}", SnmpType.INTEGER, device.mgmt.if_index),
        SnmpRecord(f"{LLDP_LOC_MAN_ADDR_ENTRY}.6.{man}", SnmpType.OID, "0.0"),
    ]
    for rem_index, (local, neighbour, remote) in enumerate(device.lldp, start=1):
        nplat = neighbour.platform
        index = f"0.{local.if_index}.{rem_index}"
        lines += [
            SnmpRecord(f"{LLDP_REM_ENTRY}.4.{index}", SnmpType.INTEGER, 4),
            SnmpRecord(f"{LLDP_REM_ENTRY}.5.{index}", SnmpType.OCTET_STRING, neighbour.mac),
            SnmpRecord(f"{LLDP_REM_ENTRY}.6.{index}", SnmpType.INTEGER, nplat.lldp_port_id_subtype),
            SnmpRecord(f"{LLDP_REM_ENTRY}.7.{index}", SnmpType.OCTET_STRING, _lldp_port_id(nplat, remote)),
            SnmpRecord(f"{LLDP_REM_ENTRY}.8.{index}", SnmpType.OCTET_STRING, _lldp_port_desc(nplat, remote)),
            SnmpRecord(f"{LLDP_REM_ENTRY}.9.{index}", SnmpType.OCTET_STRING, neighbour.hostname),
            SnmpRecord(f"{LLDP_REM_ENTRY}.10.{index}", SnmpType.OCTET_STRING, neighbour.sys_descr),
            SnmpRecord(f"{LLDP_REM_ENTRY}.11.{index}", SnmpType.OCTET_STRING, caps),
            SnmpRecord(f"{LLDP_REM_ENTRY}.12.{index}", SnmpType.OCTET_STRING,
                       bytes([ROLE_TRAITS[neighbour.role]["lldp_caps"]])),
        ]
        rman = f"{index}.{_addr_index(neighbour.address)}"
        lines += [
            SnmpRecord(f"{LLDP_REM_MAN_ADDR_ENTRY}.3.{rman}", SnmpType.INTEGER, 2),
            SnmpRecord(f"{LLDP_REM_MAN_ADDR_ENTRY}.4.{rman}", SnmpType.INTEGER, neighbour.mgmt.if_index),
            SnmpRecord(f"{LLDP_REM_MAN_ADDR_ENTRY}.5.{rman}", SnmpType.OID, "0.0"),
        ]
    return lines


def _cdp_records(device: Device) -> list[Line]:
    """cdpCacheTable of a Cisco device: its up neighbours that send CDP (Cisco and MikroTik)."""
    lines: list[Line] = []
    for device_index, (local, neighbour, remote) in enumerate(
        (entry for entry in device.lldp if entry[1].platform.speaks_cdp), start=1
    ):
        nplat = neighbour.platform
        index = f"{local.if_index}.{device_index}"
        fields = neighbour.template_fields()
        lines += [
            SnmpRecord(f"{CDP_CACHE_ENTRY}.3.{index}", SnmpType.INTEGER, 1),  # ip(1)
            SnmpRecord(f"{CDP_CACHE_ENTRY}.4.{index}", SnmpType.OCTET_STRING, socket.inet_aton(neighbour.address)),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.5.{index}", SnmpType.OCTET_STRING,
                       nplat.cdp_version.format(**fields) if nplat.cdp_version else neighbour.sys_descr),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.6.{index}", SnmpType.OCTET_STRING, neighbour.hostname),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.7.{index}", SnmpType.OCTET_STRING, remote.descr),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.8.{index}", SnmpType.OCTET_STRING, nplat.cdp_platform.format(**fields)),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.9.{index}", SnmpType.OCTET_STRING,
                       ROLE_TRAITS[neighbour.role]["cdp_caps"].to_bytes(4, "big")),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.11.{index}", SnmpType.INTEGER, 1),
            SnmpRecord(f"{CDP_CACHE_ENTRY}.12.{index}", SnmpType.INTEGER, 3),  # fullduplex(3)
        ]
    return lines


def recording_text(lines: Iterable[Line]) -> str:
    """snmprec text in numeric OID order (snmpsim walks the file in line order)."""
    ordered = sorted(lines, key=lambda line: tuple(map(int, line.oid.split("."))))  # numeric OID order
    for before, after in zip(ordered, ordered[1:], strict=False):
        if before.oid == after.oid:
            raise ValueError(f"duplicate OID in recording: {before.oid}")
    return "".join((line.line() if isinstance(line, Varied) else format_record(line)) + "\n" for line in ordered)


def _write_if_changed(path: Path, text: str) -> None:
    """Atomic write that leaves an unchanged file alone (snmpsim re-indexes a file whose mtime moved)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


def transport_id(position: int) -> str:
    """snmpsim's transport endpoint OID for the ``position``-th ``--agent-udpv4-endpoint``."""
    return f"1.3.6.1.6.1.1.{position}"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # snmpsim's own naming, not a security use


def recording_path(device: Device, position: int) -> str:
    """Where a served device's recording lives, relative to the data dir (see module docstring)."""
    if device.v3 is not None:
        return f"{transport_id(position)}.snmprec"
    return f"{_md5(device.community or '')}/{transport_id(position)}.snmprec"


def served(city: City) -> list[Device]:
    """The devices snmpsim serves, in endpoint order."""
    return [d for d in city.devices if d.served_by == "snmpsim"]


def expected_data(city: City) -> dict[str, Any]:
    """The machine-readable truth about the city (``expected.json``)."""
    positions = {d.hostname: p for p, d in enumerate(served(city))}

    def entry(d: Device) -> dict[str, Any]:
        snmp: dict[str, Any] = {"version": "3", **d.v3} if d.v3 else {"version": "2c", "community": d.community}
        return (
            {
                "hostname": d.hostname,
                "site": d.site,
                "role": d.role,
                "address": d.address,
                "platform": d.platform.key,
                "vendor": d.platform.vendor,
                "os": d.platform.os_name,
                "os_version": d.platform.os_version,
                "model": d.model.model,
                "sys_object_id": d.model.sys_object_id,
                "sys_descr": d.sys_descr,
                "sys_location": f"أمانة جدة - {d.site_name_ar}",
                "serial": d.serial,
                "chassis_id": d.mac.hex(":"),
                "engine_id": d.engine_id.hex(),
                "fault": d.fault,
                "served_by": d.served_by,
                "snmp": snmp,
                "recording": f"data/{recording_path(d, positions[d.hostname])}" if d.hostname in positions else None,
                "interfaces": [
                    {
                        "index": i.if_index,
                        "name": i.name,
                        "descr": i.descr,
                        "alias": i.alias,
                        "speed_mbps": i.speed_mbps,
                        "admin": "up" if i.admin_up else "down",
                        "oper": i.oper,
                    }
                    for i in d.interfaces
                ],
            }
        )

    devices = [entry(d) for d in city.devices]
    # branch switches that answer SSH only (no SNMP agent, no recording): their own key
    ssh_only = [entry(d) for d in getattr(city, "ssh_only", [])]
    links = [
        {
            "a": f"{link.a[0].hostname}:{link.a[1].name}",
            "b": f"{link.b[0].hostname}:{link.b[1].name}",
            "kind": link.kind,
            "state": link.state,
            "lldp": link.state != "down",
            "cdp": link.state != "down"
            and (
                (link.a[0].platform.cdp_cache and link.b[0].platform.speaks_cdp)
                or (link.b[0].platform.cdp_cache and link.a[0].platform.speaks_cdp)
            ),
        }
        for link in city.links
    ]
    faults = [{"fault": f.name, "host": f.host, "port_role": f.port_role, "description": f.description} for f in FAULTS]
    conditions = [
        {"condition": c.name, "host": c.host, "port_role": c.port_role, "description": c.description}
        for c in LINK_CONDITIONS
    ]
    return {
        "generator": "infra_mgr.lab.city",
        "format": 1,
        "devices": devices,
        "links": links,
        "ssh_only": {
            "devices": ssh_only,
            "links": [
                {"a": f"{lk.a[0].hostname}:{lk.a[1].name}", "b": f"{lk.b[0].hostname}:{lk.b[1].name}",
                 "kind": lk.kind, "state": lk.state, "lldp": lk.a[1].peer is not None,
                 "cdp": lk.a[1].peer is not None and lk.a[0].platform.cdp_cache and lk.b[0].platform.speaks_cdp}
                for lk in getattr(city, "ssh_only_links", [])
            ],
        },
        "faults": faults,
        "link_conditions": conditions,
        "link_audit": link_audit(city),
    }


def link_audit(city: City) -> dict[str, dict[str, Any]]:
    """What the branch link audit must conclude per branch site (:data:`LINK_AUDIT`, else ok)."""
    sites = sorted({d.site for d in city.devices if d.role in ("wan-router", "access-switch")},
                   key=lambda code: int("".join(ch for ch in code if ch.isdigit()) or 0))
    out: dict[str, dict[str, Any]] = {}
    for code in sites:
        state, reasons, note = LINK_AUDIT.get(code, ("ok", (), ""))
        entry: dict[str, Any] = {"state": state, "reasons": list(reasons)}
        if note:
            entry["note"] = note
        if code in LINK_AUDIT_ALTERNATIVE:
            alt_state, alt_reasons = LINK_AUDIT_ALTERNATIVE[code]
            entry["alternative"] = {"state": alt_state, "reasons": list(alt_reasons)}
        out[code] = entry
    return out


def speed_text(mbps: int) -> str:
    """A speed as the design file writes it: 100M, 1G, 2.5G, 10G."""
    return f"{mbps / 1000:g}G" if mbps >= 1000 else f"{mbps}M"


def uplinks_design(city: City) -> dict[str, Any]:
    """The design file: every branch router's WAN port (designed neighbour: :func:`branch_uplink`)
    and every access switch's uplink (designed neighbour: its router), with the designed speed."""
    rows: list[dict[str, Any]] = []
    for device in city.devices:
        if device.role not in ("wan-router", "access-switch"):
            continue
        role = "wan" if device.role == "wan-router" else "uplink"
        for iface in device.interfaces:
            if iface.role != role or iface.peer is None:
                continue
            if role == "wan":
                neighbour = branch_uplink(int("".join(ch for ch in device.hostname.split("-")[1] if ch.isdigit())))
            else:
                neighbour = iface.peer[0].hostname
            rows.append({"device": device.hostname, "interface": iface.name, "expected_neighbor": neighbour,
                         "expected_speed": speed_text(iface.design_mbps)})
    return {"uplinks": rows}


UPLINKS_FILE = "uplinks.yaml"


STUB = "1.3.6.1.2.1.1.1.0|4|infra-mgr city: registers a community; never served\n"


def write_recordings(out_dir: Path, city: City, only: set[str] | None = None) -> None:
    """Write the recordings into ``out_dir/data`` (unchanged files are left alone, so snmpsim only
    re-reads what changed); stale recordings from an earlier city are removed. ``only``: just
    these hostnames' recordings (a run-time change), nothing removed."""
    data_dir = out_dir / "data"
    wanted: dict[Path, str] = {}
    for position, device in enumerate(served(city)):
        if only is not None and device.hostname not in only:
            continue
        wanted[data_dir / recording_path(device, position)] = recording_text(device_records(device))
        if device.community:
            wanted[data_dir / f"{device.community}.snmprec"] = STUB
    if data_dir.exists() and only is None:
        for old in data_dir.rglob("*.snmprec"):
            if old not in wanted:
                old.unlink()
    for path, text in wanted.items():
        _write_if_changed(path, text)


def write_city(out_dir: Path, yaml_path: Path = EXAMPLE_YAML, city: City | None = None) -> dict[str, Any]:
    """Generate the recordings, expected.json and the design file uplinks.yaml into ``out_dir``
    (``data/`` + ``expected.json`` + ``uplinks.yaml``). Returns the expected data."""
    import yaml

    city = city or build_city(yaml_path)
    write_recordings(out_dir, city)
    design = yaml.safe_dump(uplinks_design(city), allow_unicode=True, sort_keys=False, width=200)
    header = "# The designed uplinks of every branch (infra-mgr uplinks import)\n"
    _write_if_changed(out_dir / UPLINKS_FILE, header + design)
    expected = expected_data(city)
    _write_if_changed(out_dir / EXPECTED_FILE, json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    return expected
