"""What the lab's SSH devices answer to show/print commands, in each platform's real format.

The SSH simulator (``ssh_sim``) calls :func:`render_show` for every command that is not a
configuration dump or a session-preparation command. The text is built from the same city model
the SNMP recordings are written from, so both protocols tell the same story: hostname, serial,
model, version, interface names, speeds, status and descriptions, and the LLDP/CDP neighbours with
their management addresses. The formats are the ones ntc-templates parses (the outputs are
checked against those templates by the tests), so a real CLI-discovery client reads them as it
would read a device.

Volatile values that a real device would show (counters, timers) are fixed: the output of one
command is the same on every read, which keeps configuration and discovery tests deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from infra_mgr.lab.city_model import SYS_CONTACT, City, Device, Interface

Renderer = Callable[[Device, City], str]

# The lab platform key (``platforms.py``) each device answers as; its commands are below.
_CISCO = ("ios", "ios-xe")


def _norm(command: str) -> str:
    return " ".join(command.strip().split()).lower()


def _mac_dotted(mac: bytes) -> str:
    h = mac.hex()
    return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"


def _mac_colon(mac: bytes) -> str:
    return mac.hex(":")


def _mac_dash(mac: bytes) -> str:
    h = mac.hex()
    return f"{h[:6]}-{h[6:]}"


def _descr_lines(device: Device) -> list[str]:
    return [line for line in device.sys_descr.replace("\r\n", "\n").split("\n") if line.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r\n", " ").replace('"', "'").split())


def _uptime_s(device: Device) -> int:
    return device.uptime_ticks // 100


def _uptime_parts(seconds: int) -> tuple[int, int, int, int, int]:
    weeks, rest = divmod(seconds, 7 * 86400)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return weeks, days, hours, minutes, secs


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _oper_up(iface: Interface) -> bool:
    # A flapping port is shown up: the CLI is read once, the SNMP recording alternates.
    return iface.admin_up and iface.oper in ("up", "flapping")


def _lldp_port_id(device: Device, iface: Interface) -> str:
    """The port id the device sends in LLDP, as its SNMP recording has it."""
    kind = device.platform.lldp_port_id
    if kind == "name":
        return iface.name
    if kind == "index":
        return str(iface.if_index)
    return _mac_colon(iface.mac)


def _lldp_port_desc(device: Device, iface: Interface) -> str:
    kind = device.platform.lldp_port_desc
    if kind == "descr":
        return iface.descr
    if kind == "alias_or_name":
        return iface.alias or iface.descr
    return iface.name


def _neighbours(device: Device) -> list[tuple[Interface, Device, Interface]]:
    """LLDP neighbours whose link is up (what the device would hear right now)."""
    return [(local, other, remote) for local, other, remote in device.lldp if _oper_up(local)]


# --------------------------------------------------------------------------- Cisco IOS / IOS-XE


def _cisco_version(device: Device, city: City) -> str:
    weeks, days, hours, minutes, _ = _uptime_parts(_uptime_s(device))
    uptime = ", ".join((_plural(weeks, "week"), _plural(days, "day"), _plural(hours, "hour"),
                        _plural(minutes, "minute")))
    image = "bootflash:packages.conf" if device.platform.key == "ios-xe" else "flash:c2960x-universalk9-mz.bin"
    ports = sum(1 for i in device.interfaces if i.port)
    lines = [
        *_descr_lines(device),
        "",
        "ROM: IOS-XE ROMMON" if device.platform.key == "ios-xe" else "ROM: Bootstrap program is C2960X boot loader",
        f"{device.hostname} uptime is {uptime}",
        "System returned to ROM by Reload Command",
        f'System image file is "{image}"',
        "Last reload reason: Reload Command",
        "",
        f"cisco {device.model.model} (X86) processor with 1863083K/6147K bytes of memory.",
        f"Processor board ID {device.serial}",
        f"{ports} Gigabit Ethernet interfaces",
        "2048K bytes of non-volatile configuration memory.",
        "",
        f"Base Ethernet MAC Address          : {_mac_colon(device.mac)}",
        "",
        "Configuration register is 0x102",
    ]
    return "\n".join(lines) + "\n"


def _cisco_hardware(iface: Interface) -> str:
    if iface.role == "mgmt" and iface.name.startswith(("Lo", "Vl")):
        return "Loopback" if iface.name.startswith("Lo") else "EtherSVI"
    if iface.role == "null":
        return "Unknown"
    speed = iface.speed_mbps
    if speed >= 100_000:
        return "Hundred Gigabit Ethernet"
    if speed >= 25_000:
        return "Twenty Five Gigabit Ethernet"
    if speed >= 10_000:
        return "Ten Gigabit Ethernet"
    if speed >= 1000:
        return "Gigabit Ethernet"
    return "Fast Ethernet"


def _cisco_interfaces(device: Device, city: City) -> str:
    out: list[str] = []
    for iface in device.interfaces:
        if not iface.admin_up:
            state, proto = "administratively down", "down"
        else:
            state = proto = "up" if _oper_up(iface) else "down"
        out.append(f"{iface.descr} is {state}, line protocol is {proto}")
        hardware = _cisco_hardware(iface)
        if iface.mac:
            mac = _mac_dotted(iface.mac)
            out.append(f"  Hardware is {hardware}, address is {mac} (bia {mac})")
        else:
            out.append(f"  Hardware is {hardware}")
        if iface.alias:
            out.append(f"  Description: {iface.alias}")
        if iface.role == "mgmt" and device.address:
            out.append(f"  Internet address is {device.address}/32")
        out.append(f"  MTU {iface.mtu} bytes, BW {iface.speed_mbps * 1000} Kbit/sec, DLY 10 usec, ")
        out.append("     reliability 255/255, txload 1/255, rxload 1/255")
        out.append("  Encapsulation ARPA, loopback not set")
        if iface.port and iface.mac:
            speed = f"{iface.speed_mbps}Mb/s" if iface.speed_mbps < 1000 else f"{iface.speed_mbps // 1000}Gb/s"
            out.append(f"  Full-duplex, {speed}, media type is 10/100/1000BaseTX")
        out.append("  Last input never, output never, output hang never")
        out.append("  Queueing strategy: fifo")
        out.append("  5 minute input rate 0 bits/sec, 0 packets/sec")
        out.append("  5 minute output rate 0 bits/sec, 0 packets/sec")
    return "\n".join(out) + "\n"


def _cisco_lldp(device: Device, city: City) -> str:
    out: list[str] = []
    entries = _neighbours(device)
    for local, other, remote in entries:
        out += [
            "------------------------------------------------",
            f"Local Intf: {local.name}",
            f"Chassis id: {_mac_dotted(other.mac)}",
            f"Port id: {_lldp_port_id(other, remote)}",
            f"Port Description: {_lldp_port_desc(other, remote)}",
            f"System Name: {other.hostname}",
            "",
            "System Description: ",
            *_descr_lines(other),
            "",
            "Time remaining: 112 seconds",
            "System Capabilities: B,R",
            "Enabled Capabilities: B,R",
            "Management Addresses:",
            f"    IP: {other.address}",
            "Auto Negotiation - not supported",
            "Physical media capabilities - not advertised",
            "Media Attachment Unit type - not advertised",
            "Vlan ID: - not advertised",
            "",
        ]
    out += ["", f"Total entries displayed: {len(entries)}", ""]
    return "\n".join(out)


def _cisco_cdp(device: Device, city: City) -> str:
    out: list[str] = []
    for local, other, remote in _neighbours(device):
        plat = other.platform
        if not plat.speaks_cdp:
            continue
        fields = other.template_fields()
        version = plat.cdp_version.format(**fields) if plat.cdp_version else other.sys_descr
        out += [
            "-------------------------",
            f"Device ID: {other.hostname}",
            "Entry address(es): ",
            f"  IP address: {other.address}",
            f"Platform: {plat.cdp_platform.format(**fields)},  Capabilities: Router Switch IGMP ",
            f"Interface: {local.descr},  Port ID (outgoing port): {remote.descr}",
            "Holdtime : 145 sec",
            "",
            "Version :",
            *[line for line in version.replace("\r\n", "\n").split("\n") if line.strip()],
            "",
            "advertisement version: 2",
            "Management address(es): ",
            f"  IP address: {other.address}",
            "",
        ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- Juniper Junos


def _junos_version(device: Device, city: City) -> str:
    version = device.platform.os_version
    return "\n".join([
        "fpc0:",
        "--------------------------------------------------------------------------",
        f"Hostname: {device.hostname}",
        f"Model: {device.model.model}",
        f"Junos: {version}",
        f"JUNOS OS Kernel 64-bit  [{version}]",
        f"JUNOS OS libs [{version}]",
        f"JUNOS EX  Software Suite [{version}]",
        "",
    ]) + "\n"


def _junos_hardware(device: Device, city: City) -> str:
    return "\n".join([
        "Hardware inventory:",
        "Item             Version  Part number  Serial number     Description",
        f"Chassis                                {device.serial:<17} {device.model.model}",
        f"Routing Engine 0 REV 01   650-044930   {device.serial}0 RE-{device.model.model}",
        "",
    ]) + "\n"


def _junos_interfaces(device: Device, city: City) -> str:
    out: list[str] = []
    for iface in device.interfaces:
        up = "Up" if _oper_up(iface) else "Down"
        if "." in iface.name:
            out += [
                f"  Logical interface {iface.name} (Index {iface.if_index}) (SNMP ifIndex {iface.if_index})",
                f"    Flags: {up} SNMP-Traps 0x4004000 Encapsulation: ENET2",
                "    Input packets : 0",
                "    Output packets: 0",
                f"    Protocol inet, MTU: {iface.mtu}",
                "",
            ]
            continue
        enabled = "Enabled" if iface.admin_up else "Administratively down"
        speed = (f"{iface.speed_mbps // 1000}Gbps" if iface.speed_mbps >= 1000 else f"{iface.speed_mbps}mbps") \
            if iface.speed_mbps else "Unspecified"
        out += [
            f"Physical interface: {iface.name}, {enabled}, Physical link is {up}",
            f"  Interface index: {iface.if_index}, SNMP ifIndex: {iface.if_index}",
        ]
        if iface.alias:
            out.append(f"  Description: {iface.alias}")
        out.append(f"  Link-level type: Ethernet, MTU: {iface.mtu + 14}, Speed: {speed}, Duplex: Full-Duplex")
        if iface.mac:
            out.append(f"  Current address: {_mac_colon(iface.mac)}, Hardware address: {_mac_colon(iface.mac)}")
        out += ["  Input rate     : 0 bps (0 pps)", "  Output rate    : 0 bps (0 pps)", ""]
    return "\n".join(out) + "\n"


def _junos_lldp(device: Device, city: City) -> str:
    out = [f"{'Local Interface':<19}{'Parent Interface':<20}{'Chassis Id':<20}{'Port info':<19}System Name"]
    for local, other, remote in _neighbours(device):
        port = _lldp_port_desc(other, remote) if other.platform.lldp_port_id != "name" else remote.name
        port = port if port and " " not in port else _lldp_port_id(other, remote)
        out.append(f"{local.name:<19}{'-':<20}{_mac_colon(other.mac):<20}{port:<19}{other.hostname}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- MikroTik RouterOS


def _ros_identity(device: Device, city: City) -> str:
    return f"  name: {device.hostname}\n"


def _ros_resource(device: Device, city: City) -> str:
    weeks, days, hours, minutes, secs = _uptime_parts(_uptime_s(device))
    rows = [
        ("uptime", f"{weeks}w{days}d{hours}h{minutes}m{secs}s"),
        ("version", f"{device.platform.os_version} (stable)"),
        ("build-time", "Nov/17/2023 11:38:45"),
        ("factory-software", "7.0.4"),
        ("free-memory", "812.4MiB"),
        ("total-memory", "1024.0MiB"),
        ("cpu", "ARM64"),
        ("cpu-count", "4"),
        ("cpu-frequency", "1400MHz"),
        ("cpu-load", "1%"),
        ("free-hdd-space", "902.2MiB"),
        ("total-hdd-space", "1024.0MiB"),
        ("write-sect-since-reboot", "1234"),
        ("write-sect-total", "56789"),
        ("bad-blocks", "0%"),
        ("architecture-name", "arm64"),
        ("board-name", device.model.model),
        ("platform", "MikroTik"),
    ]
    return "\n".join(f"{k:>25}: {v}" for k, v in rows) + "\n"


def _ros_routerboard(device: Device, city: City) -> str:
    rows = [
        ("routerboard", "yes"),
        ("board-name", device.model.model),
        ("model", device.model.model),
        ("revision", "r3"),
        ("serial-number", device.serial),
        ("firmware-type", "70x0"),
        ("factory-firmware", "7.4"),
        ("current-firmware", device.platform.os_version),
        ("upgrade-firmware", device.platform.os_version),
    ]
    return "\n".join(f"{k:>18}: {v}" for k, v in rows) + "\n"


def _ros_interfaces(device: Device, city: City) -> str:
    out = ["Flags: D - dynamic, X - disabled, R - running, S - slave ", ""]
    for n, iface in enumerate(device.interfaces):
        flag = "X" if not iface.admin_up else ("R" if _oper_up(iface) else " ")
        kind = "loopback" if iface.role == "mgmt" else "ether"
        mac = f" mac-address={iface.mac.hex(':').upper()}" if iface.mac else ""
        body = (f'name="{iface.name}" default-name="{iface.name}" type="{kind}" mtu={iface.mtu} '
                f"actual-mtu={iface.mtu} l2mtu={iface.mtu + 14} max-l2mtu=9796{mac} link-downs=0")
        if iface.alias:
            out.append(f"{n:>2}  {flag}  ;;; {iface.alias}")
            out.append(f"        {body}")
        else:
            out.append(f"{n:>2}  {flag}  {body}")
        out.append("")
    return "\n".join(out) + "\n"


def _ros_neighbours(device: Device, city: City) -> str:
    out: list[str] = []
    for n, (local, other, remote) in enumerate(_neighbours(device)):
        # one line per entry: the parser reads an entry's fields from the line that ends it
        out.append(f'{n:>2} interface={local.name} address={other.address} address4={other.address} '
                   f'mac-address={other.mac.hex(":").upper()} identity="{other.hostname}" '
                   f'platform="{other.platform.vendor}" version="{other.platform.os_version}" '
                   f'unpack=none age=25s uptime=3w2d4h software-id="" board="{other.model.model}" '
                   f'ipv6=no interface-name="{_lldp_port_id(other, remote)}" '
                   f'system-description="{_one_line(other.sys_descr)}" system-caps=bridge,router '
                   "system-caps-enabled=bridge,router")
        out.append("")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HPE ArubaOS-Switch (ProCurve)


def _procurve_version(device: Device, city: City) -> str:
    version = device.platform.os_version
    return f"Image stamp:    /ws/swbuildm/rel_{version.lower()}/code/build/lvm(swbuildm_rel)\n" \
           f"                Oct 30 2023 11:35:23\n                {version}\n                1106\n" \
           "Boot Image:     Primary\n"


def _procurve_rom(device: Device) -> str:
    match = re.search(r"ROM (\S+)", device.sys_descr)
    return match.group(1) if match else "WC.16.01.0008"


def _procurve_system(device: Device, city: City) -> str:
    days = _uptime_s(device) // 86400
    return "\n".join([
        "",
        " Status and Counters - General System Information",
        "",
        f"  System Name        : {device.hostname}",
        f"  System Contact     : {SYS_CONTACT}",
        f"  System Location    : {device.site_name_ar}",
        "  MAC Age Time (sec) : 300",
        "  Time Zone          : 180",
        "  Daylight Time Rule : None",
        "",
        f"  Software revision  : {device.platform.os_version:<20} Base MAC Addr      : {_mac_dash(device.mac)}",
        f"  ROM Version        : {_procurve_rom(device):<20} Serial Number      : {device.serial}",
        "  Allow V1 Modules   : No",
        "",
        f"  Up Time            : {_plural(days, 'day'):<20} Memory   - Total   : 339,329,536",
        "  CPU Util (%)       : 3                    Free    : 217,516,544",
        "",
        "  IP Mgmt  - Pkts Rx : 1,234                Packet   - Total   : 6600",
        "             Pkts Tx : 1,200                Buffers    Free    : 4330",
        "                                            Lowest  : 4200",
        "                                            Missed  : 0",
        "",
    ]) + "\n"


def _procurve_local(device: Device, city: City) -> str:
    out = [
        "",
        " LLDP Local Device Information",
        "",
        "  Chassis Type : mac-address",
        f"  Chassis Id   : {_mac_dash(device.mac)}",
        f"  System Name  : {device.hostname}",
        f"  System Description : {_one_line(device.sys_descr)}",
        "  System Capabilities Supported: bridge, router",
        "  System Capabilities Enabled: bridge",
        "",
        "  Management Address  :",
        "     Type: ipv4",
        f"     Address: {device.address}",
        "",
        " LLDP Port Information",
        "",
        "  Port     PortType PortId   PortDesc",
        "  -------- -------- -------- --------",
    ]
    out += [f"  {i.name:<8} local    {i.if_index:<8} {i.name}" for i in device.interfaces if i.port]
    return "\n".join(out) + "\n"


def _procurve_interfaces(device: Device, city: City) -> str:
    out = [
        "",
        " Status and Counters - Port Status",
        "",
        "                  | Intrusion                           MDI  Flow  Bcast",
        "  Port  Type      | Alert     Enabled Status Mode       Mode Ctrl  Limit",
        "  ----- --------- + --------- ------- ------ ---------- ---- ---- -----",
    ]
    for i in device.interfaces:
        if not i.port:
            continue
        kind = "100/1000T" if i.speed_mbps <= 1000 else "SFP+SR"
        out.append(f"  {i.name:<5} {kind:<9} | No        {'Yes' if i.admin_up else 'No':<7} "
                   f"{'Up' if _oper_up(i) else 'Down':<6} {f'{i.speed_mbps}FDx':<10} Auto off  0")
    return "\n".join(out) + "\n"


def _procurve_lldp(device: Device, city: City) -> str:
    out = ["", " LLDP Remote Device Information Detail", ""]
    for n, (local, other, remote) in enumerate(_neighbours(device)):
        if n:
            out.append("-" * 78)
        out += [
            f"  Local Port   : {local.name}",
            "  ChassisType  : mac-address",
            f"  ChassisId    : {_mac_dash(other.mac)}",
            "  PortType     : interface-name" if other.platform.lldp_port_id == "name" else "  PortType     : local",
            f"  PortId       : {_lldp_port_id(other, remote)}",
            f"  SysName      : {other.hostname}",
            f"  System Descr : {_one_line(other.sys_descr)}",
            f"  PortDescr    : {_lldp_port_desc(other, remote)}",
            "  Pvid         : ",
            "",
            "  System Capabilities Supported  : bridge, router",
            "  System Capabilities Enabled    : bridge, router",
            "",
            "  Remote Management Address",
            "     Type    : ipv4",
            f"     Address : {other.address}",
            "",
        ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- HPE Aruba AOS-CX


def _aoscx_system(device: Device, city: City) -> str:
    weeks, days, hours, minutes, _ = _uptime_parts(_uptime_s(device))
    part = device.sys_descr.split()[1] if len(device.sys_descr.split()) > 2 else ""
    return "\n".join([
        f"{'Hostname':<32}: {device.hostname}",
        f"{'System Description':<32}: {device.platform.os_version}",
        f"{'System Contact':<32}: {SYS_CONTACT}",
        f"{'System Location':<32}: {device.site_name_ar}",
        "",
        f"{'Vendor':<32}: Aruba",
        f"{'Product Name':<32}: {part} {device.model.model}".rstrip(),
        f"{'Chassis Serial Nbr':<32}: {device.serial}",
        f"{'Base MAC Address':<32}: {_mac_dash(device.mac)}",
        f"{'ArubaOS-CX Version':<32}: {device.platform.os_version}",
        "",
        f"{'Time Zone':<32}: UTC",
        "",
        f"{'Up Time':<32}: {_plural(weeks, 'week')}, {_plural(days, 'day')}, {_plural(hours, 'hour')}, "
        f"{_plural(minutes, 'minute')}",
        f"{'CPU Util (%)':<32}: 5",
        f"{'Memory Usage (%)':<32}: 20",
        "",
    ]) + "\n"


def _aoscx_interfaces(device: Device, city: City) -> str:
    out: list[str] = []
    for i in device.interfaces:
        out += [
            f"Interface {i.name} is {'up' if _oper_up(i) else 'down'}",
            f" Admin state is {'up' if i.admin_up else 'down'}",
            " Link transitions: 1",
            f" Description: {i.alias}",
        ]
        if i.mac:
            out.append(f" Hardware: Ethernet, MAC Address: {_mac_colon(i.mac)}")
        out.append(f" MTU {i.mtu}")
        if i.port:
            out += [" Type SFP+DAC3", " Full-duplex", " qos trust none", f" Speed {i.speed_mbps} Mb/s",
                    " Auto-negotiation is off", " Flow-control: off", " Error-control: off"]
        out.append("")
    return "\n".join(out) + "\n"


def _aoscx_lldp(device: Device, city: City) -> str:
    out: list[str] = []
    for local, other, remote in _neighbours(device):
        out += [
            f"{'Port':<31}: {local.name}",
            f"{'Neighbor Entries':<31}: 1",
            f"{'Neighbor Chassis-Name':<31}: {other.hostname}",
            f"{'Neighbor Chassis-Description':<31}: {_one_line(other.sys_descr)}",
            f"{'Neighbor Chassis-ID':<31}: {_mac_colon(other.mac)}",
            f"{'Neighbor Management-Address':<31}: {other.address}",
            f"{'Chassis Capabilities Available':<31}: Bridge, Router",
            f"{'Chassis Capabilities Enabled':<31}: Bridge, Router",
            f"{'Neighbor Port-ID':<31}: {_lldp_port_id(other, remote)}",
            f"{'Neighbor Port-Desc':<31}: {_lldp_port_desc(other, remote)} ",
            f"{'TTL':<31}: 120",
            "-" * 66,
        ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the command table

# (lab platform keys, normalised command) -> renderer. Commands are matched whole, after
# collapsing spaces and case; abbreviations are not expanded (discovery sends them in full).
_COMMANDS: dict[tuple[str, ...], dict[str, Renderer]] = {
    _CISCO: {
        "show version": _cisco_version,
        "show interfaces": _cisco_interfaces,
        "show lldp neighbors detail": _cisco_lldp,
        "show cdp neighbors detail": _cisco_cdp,
    },
    ("junos",): {
        "show version": _junos_version,
        "show chassis hardware": _junos_hardware,
        "show interfaces": _junos_interfaces,
        "show lldp neighbors": _junos_lldp,
    },
    ("routeros",): {
        "/system identity print": _ros_identity,
        "/system resource print": _ros_resource,
        "/system routerboard print": _ros_routerboard,
        "/interface print detail": _ros_interfaces,
        "/ip neighbor print detail": _ros_neighbours,
    },
    ("arubaos-switch",): {
        "show version": _procurve_version,
        "show system": _procurve_system,
        "show lldp info local-device": _procurve_local,
        "show interfaces brief": _procurve_interfaces,
        "show lldp info remote-device detail": _procurve_lldp,
    },
    ("aos-cx",): {
        "show system": _aoscx_system,
        "show interface": _aoscx_interfaces,
        "show lldp neighbors-info detail": _aoscx_lldp,
    },
}


def render_show(device: Device, city: City, command: str) -> str | None:
    """The device's answer to ``command``; None when its platform has no such command here (the
    simulator then answers as the platform does to an unknown command)."""
    wanted = _norm(command)
    for keys, table in _COMMANDS.items():
        if device.platform.key in keys:
            renderer = table.get(wanted)
            return renderer(device, city) if renderer else None
    return None


def commands_for(platform_key: str) -> tuple[str, ...]:
    """The show/print commands a lab platform answers (for the simulator's help and the tests)."""
    for keys, table in _COMMANDS.items():
        if platform_key in keys:
            return tuple(table)
    return ()
