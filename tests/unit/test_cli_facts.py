"""CLI discovery's parser: the lab's show/print outputs (every platform, checked against the city
model the SNMP recordings come from) and hand-written outputs in each platform's real format give
the same facts SNMP discovery would: hostname, serial, model, version, interfaces, neighbours."""

from __future__ import annotations

import pytest

from infra_mgr.lab.city_model import City, Device, build_city
from infra_mgr.lab.ssh_show import commands_for, render_show
from infra_mgr.network.ssh.cli_facts import (
    abbreviate,
    facts_from_cli,
    normalise_mac,
    parse_speed,
    parse_uptime,
    synthetic_index,
)
from infra_mgr.network.ssh.platforms import platform_table

DEVICE_TYPE = {"ios": "cisco_ios", "ios-xe": "cisco_xe", "junos": "juniper_junos", "routeros": "mikrotik_routeros",
               "arubaos-switch": "hp_procurve", "aos-cx": "aruba_aoscx"}


@pytest.fixture(scope="module")
def city() -> City:
    return build_city()


def _one_of_each(city: City) -> list[Device]:
    seen: dict[str, Device] = {}
    for d in city.devices:
        if d.platform.key in DEVICE_TYPE and d.lldp:
            seen.setdefault(d.platform.key, d)
    return list(seen.values())


def _outputs(device: Device, city: City) -> dict[str, str]:
    platform = platform_table().get(DEVICE_TYPE[device.platform.key])
    assert platform is not None
    out = {}
    for role, command in platform.discovery.items():
        text = render_show(device, city, command)
        assert text is not None, f"{device.platform.key}: the lab does not answer {command!r}"
        out[role] = text
    return out


def test_every_lab_platform_is_covered(city: City) -> None:
    assert {d.platform.key for d in _one_of_each(city)} == set(DEVICE_TYPE)


@pytest.mark.parametrize("key", sorted(DEVICE_TYPE))
def test_lab_outputs_give_the_snmp_facts(city: City, key: str) -> None:
    device = next(d for d in _one_of_each(city) if d.platform.key == key)
    result = facts_from_cli(DEVICE_TYPE[key], _outputs(device, city), device.address)
    assert result.errors == []
    f = result.facts
    assert f.sys_name == device.hostname
    assert f.serial == device.serial
    assert f.os_version == device.platform.os_version
    assert f.platform == key
    assert f.vendor
    if key != "arubaos-switch":  # these switches name only their product number (JL259A) over the CLI
        assert f.model == device.model.model
    # every port SNMP lists is there, with its status, alias and (where the CLI shows it) speed and MAC
    by_name = {i.name: i for i in result.interfaces}
    ports = [i for i in device.interfaces if i.port]
    assert ports and all(p.name in by_name for p in ports)
    for port in ports:  # plain values compared (the model's objects refer to each other: huge reprs)
        cli = by_name[port.name]
        name, admin, oper, speed, mac, alias = (port.name, port.admin_up, port.oper, port.speed_mbps,
                                                port.mac.hex(":"), port.alias)
        assert cli.admin_status == ("up" if admin else "down"), name
        if admin and oper in ("up", "down"):
            assert cli.oper_status == oper, name
        if cli.speed_bps is not None:
            assert cli.speed_bps == speed * 1_000_000, name
        if cli.mac is not None:
            assert cli.mac == mac, name
        if alias and " " not in alias:
            assert cli.alias == alias, name
    assert len({i.index for i in result.interfaces}) == len(result.interfaces)
    # LLDP: one entry per neighbour on an up port, naming it and (where the CLI shows it) its address
    lldp = [n for n in result.neighbors if n.protocol == "lldp"]
    expected = {(local.name, other.hostname) for local, other, _ in device.lldp
                if local.admin_up and local.oper in ("up", "flapping")}
    assert {(n.local_interface, n.remote_system_name) for n in lldp} == expected
    others = {d.hostname: d for d in (*city.devices, *city.ssh_only)}
    for n in lldp:
        other = others[n.remote_system_name or ""]
        assert n.remote_chassis_id == other.mac.hex(":")
        assert n.remote_address in (None, other.address)
        assert n.local_if_index == by_name[n.local_interface or ""].index
    if key != "junos":  # Junos's neighbour table has no address column
        assert all(n.remote_address for n in lldp)


def test_an_ssh_only_switch_tells_its_identity_and_its_uplink(city: City) -> None:
    assert city.ssh_only
    for device in city.ssh_only:
        result = facts_from_cli(DEVICE_TYPE[device.platform.key], _outputs(device, city), device.address)
        assert (result.facts.sys_name, result.facts.serial) == (device.hostname, device.serial)
        (uplink, parent, port) = device.lldp[0]
        assert any(n.remote_system_name == parent.hostname and n.remote_port == port.name
                   and n.remote_address == parent.address and n.local_interface == uplink.name
                   for n in result.neighbors)


def test_cisco_cdp_names_the_neighbours_with_short_local_ports(city: City) -> None:
    device = next(d for d in city.devices
                  if d.platform.key == "ios" and any(o.platform.speaks_cdp for _, o, _ in d.lldp))
    result = facts_from_cli("cisco_ios", _outputs(device, city))
    cdp = [n for n in result.neighbors if n.protocol == "cdp"]
    assert cdp
    names = {i.name for i in result.interfaces}
    for n in cdp:
        assert n.local_interface in names  # "GigabitEthernet1/0/25" printed, "Gi1/0/25" kept
        assert n.remote_address and n.remote_platform


def test_the_chassis_id_matches_the_lldp_one_snmp_reads(city: City) -> None:
    for device in _one_of_each(city):
        facts = facts_from_cli(DEVICE_TYPE[device.platform.key], _outputs(device, city)).facts
        assert facts.chassis_id in (None, device.mac.hex(":")), device.hostname


def test_the_lab_answers_nothing_for_commands_it_does_not_know(city: City) -> None:
    device = city.devices[0]
    assert render_show(device, city, "show running-config") is None
    assert render_show(device, city, "show  VERSION ") is not None  # spacing and case are the device's business
    assert "show version" in commands_for(device.platform.key)


# --------------------------------------------------------------------------- hand-written outputs

CISCO_VERSION = """\
Cisco IOS Software, C2960X Software (C2960X-UNIVERSALK9-M), Version 15.2(7)E9, RELEASE SOFTWARE (fc1)
Technical Support: http://www.cisco.com/techsupport
Compiled Fri 28-Jul-23 15:43 by mcpre

ROM: Bootstrap program is C2960X boot loader
acc-sw-7 uptime is 1 year, 2 weeks, 3 days, 4 hours, 5 minutes
System returned to ROM by power-on
System image file is "flash:c2960x-universalk9-mz.152-7.E9.bin"

cisco WS-C2960X-48FPD-L (APM86XXX) processor (revision D0) with 524288K bytes of memory.
Processor board ID FOC2222X0AB
Base Ethernet MAC Address          : 70:1F:53:AA:BB:00

Configuration register is 0xF
"""
CISCO_INTERFACES = """\
GigabitEthernet1/0/1 is up, line protocol is up (connected)
  Hardware is Gigabit Ethernet, address is 701f.53aa.bb01 (bia 701f.53aa.bb01)
  Description: uplink to core
  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec,
     reliability 255/255, txload 1/255, rxload 1/255
  Encapsulation ARPA, loopback not set
  Full-duplex, 1000Mb/s, media type is 10/100/1000BaseTX
GigabitEthernet1/0/2 is administratively down, line protocol is down (disabled)
  Hardware is Gigabit Ethernet, address is 701f.53aa.bb02 (bia 701f.53aa.bb02)
  MTU 1500 bytes, BW 10000 Kbit/sec, DLY 1000 usec,
  Encapsulation ARPA, loopback not set
"""
CISCO_LLDP = """\
------------------------------------------------
Local Intf: Gi1/0/1
Chassis id: 0c75.bd11.2200
Port id: Te1/1/3
Port Description: TenGigabitEthernet1/1/3
System Name: core-1.example

System Description:
Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a, RELEASE SOFTWARE (fc3)

Time remaining: 99 seconds
System Capabilities: B,R
Enabled Capabilities: B,R
Management Addresses:
    IP: 10.0.0.1
Auto Negotiation - not supported
Physical media capabilities - not advertised
Media Attachment Unit type - not advertised
Vlan ID: - not advertised


Total entries displayed: 1
"""
CISCO_CDP = """\
-------------------------
Device ID: core-1.example
Entry address(es):
  IP address: 10.0.0.1
Platform: cisco C9500-24Y4C,  Capabilities: Router Switch IGMP
Interface: GigabitEthernet1/0/1,  Port ID (outgoing port): TenGigabitEthernet1/1/3
Holdtime : 160 sec

Version :
Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a, RELEASE SOFTWARE (fc3)

advertisement version: 2
"""


def test_hand_written_cisco() -> None:
    r = facts_from_cli("cisco_ios", {"version": CISCO_VERSION, "interfaces": CISCO_INTERFACES,
                                     "lldp": CISCO_LLDP, "cdp": CISCO_CDP})
    assert r.errors == []
    f = r.facts
    assert (f.sys_name, f.model, f.serial, f.os_version) == ("acc-sw-7", "WS-C2960X-48FPD-L", "FOC2222X0AB",
                                                             "15.2(7)E9")
    assert (f.vendor, f.platform, f.chassis_id) == ("Cisco", "ios", "70:1f:53:aa:bb:00")
    assert f.uptime_s == 365 * 86400 + 2 * 7 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60
    gi1, gi2 = r.interfaces
    assert (gi1.name, gi1.descr, gi1.alias, gi1.speed_bps, gi1.mac) == (
        "Gi1/0/1", "GigabitEthernet1/0/1", "uplink to core", 10**9, "70:1f:53:aa:bb:01")
    assert (gi1.admin_status, gi1.oper_status, gi2.admin_status, gi2.oper_status) == ("up", "up", "down", "down")
    lldp, cdp = r.neighbors
    assert (lldp.local_interface, lldp.remote_system_name, lldp.remote_port, lldp.remote_chassis_id,
            lldp.remote_address) == ("Gi1/0/1", "core-1.example", "Te1/1/3", "0c:75:bd:11:22:00", "10.0.0.1")
    assert (cdp.local_interface, cdp.remote_port, cdp.remote_platform, cdp.remote_address) == (
        "Gi1/0/1", "TenGigabitEthernet1/1/3", "cisco C9500-24Y4C", "10.0.0.1")
    assert lldp.local_if_index == gi1.index


JUNOS_VERSION = """\
Hostname: edge-ex
Model: ex2300-24p
Junos: 22.2R3.15
JUNOS OS Kernel 64-bit  [20230101.abc_builder]
JUNOS EX  Software Suite [22.2R3.15]
"""
JUNOS_HARDWARE = """\
Hardware inventory:
Item             Version  Part number  Serial number     Description
Chassis                                JW3619AN0123      EX2300-24P
"""
JUNOS_INTERFACES = """\
Physical interface: ge-0/0/0, Enabled, Physical link is Up
  Interface index: 650, SNMP ifIndex: 513
  Description: to router
  Link-level type: Ethernet, MTU: 1514, Speed: 1000mbps, Duplex: Full-Duplex
  Current address: 4c:96:14:00:00:01, Hardware address: 4c:96:14:00:00:01

  Logical interface ge-0/0/0.0 (Index 555) (SNMP ifIndex 540)
    Flags: Up SNMP-Traps 0x4004000 Encapsulation: ENET2
    Input packets : 10
    Output packets: 12
    Protocol inet, MTU: 1500

Physical interface: ge-0/0/1, Administratively down, Physical link is Down
  Interface index: 651, SNMP ifIndex: 514
  Link-level type: Ethernet, MTU: 1514, Speed: 1000mbps, Duplex: Full-Duplex
"""
JUNOS_LLDP = """\
Local Interface    Parent Interface    Chassis Id          Port info          System Name
ge-0/0/0           -                   00:0c:29:aa:bb:cc   Gi0/0/1            router-1
"""


def test_hand_written_junos() -> None:
    r = facts_from_cli("juniper_junos", {"version": JUNOS_VERSION, "inventory": JUNOS_HARDWARE,
                                         "interfaces": JUNOS_INTERFACES, "lldp": JUNOS_LLDP})
    assert r.errors == []
    assert (r.facts.sys_name, r.facts.model, r.facts.serial, r.facts.os_version) == (
        "edge-ex", "ex2300-24p", "JW3619AN0123", "22.2R3.15")
    names = {i.name: i for i in r.interfaces}
    assert set(names) == {"ge-0/0/0", "ge-0/0/0.0", "ge-0/0/1"}
    assert names["ge-0/0/0"].alias == "to router"
    assert (names["ge-0/0/1"].admin_status, names["ge-0/0/1"].oper_status) == ("down", "down")
    (n,) = r.neighbors
    assert (n.local_interface, n.remote_system_name, n.remote_port, n.remote_chassis_id) == (
        "ge-0/0/0", "router-1", "Gi0/0/1", "00:0c:29:aa:bb:cc")


ROS_IDENTITY = "  name: branch-gw\n"
ROS_RESOURCE = """\
                   uptime: 2w3d4h5m6s
                  version: 7.15.3 (stable)
               board-name: hAP ax3
                 platform: MikroTik
"""
ROS_ROUTERBOARD = """\
       routerboard: yes
        board-name: hAP ax3
             model: C53UiG+5HPaxD2HPaxD
     serial-number: HGJ09ABCDEF
"""
ROS_INTERFACES = """\
Flags: D - dynamic, X - disabled, R - running, S - slave

 0  R  ;;; to HQ
       name="ether1" default-name="ether1" type="ether" mtu=1500 actual-mtu=1500 l2mtu=1568 max-l2mtu=9214 \
mac-address=48:A9:8A:00:00:01 link-downs=0
 1  X  name="ether2" default-name="ether2" type="ether" mtu=1500 actual-mtu=1500 l2mtu=1568 max-l2mtu=9214 \
mac-address=48:A9:8A:00:00:02 link-downs=0
"""
ROS_NEIGHBORS = (' 0 interface=ether1 address=10.9.0.1 mac-address=70:1F:53:AA:BB:00 identity="core-1" '
                 'platform="Cisco" version="17.9" interface-name="Gi1/0/7" system-caps=bridge,router\n')


def test_hand_written_routeros() -> None:
    r = facts_from_cli("mikrotik_routeros", {"identity": ROS_IDENTITY, "system": ROS_RESOURCE,
                                             "inventory": ROS_ROUTERBOARD, "interfaces": ROS_INTERFACES,
                                             "lldp": ROS_NEIGHBORS})
    assert r.errors == []
    f = r.facts
    assert (f.sys_name, f.serial, f.os_version, f.vendor) == ("branch-gw", "HGJ09ABCDEF", "7.15.3", "MikroTik")
    assert f.uptime_s == 2 * 7 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6
    e1, e2 = r.interfaces
    assert (e1.name, e1.alias, e1.oper_status, e1.mac) == ("ether1", "to HQ", "up", "48:a9:8a:00:00:01")
    assert (e2.admin_status, e2.oper_status) == ("down", "down")
    (n,) = r.neighbors
    assert (n.local_interface, n.remote_system_name, n.remote_port, n.remote_address, n.remote_chassis_id) == (
        "ether1", "core-1", "Gi1/0/7", "10.9.0.1", "70:1f:53:aa:bb:00")


PROCURVE_SYSTEM = """\

 Status and Counters - General System Information

  System Name        : floor2-sw
  System Contact     : noc
  System Location    : Floor 2
  MAC Age Time (sec) : 300
  Time Zone          : 0
  Daylight Time Rule : None

  Software revision  : WC.16.10.0012        Base MAC Addr      : 9457a5-001100
  ROM Version        : WC.16.01.0008        Serial Number      : CN80HKX0AB
  Allow V1 Modules   : No

  Up Time            : 12 days              Memory   - Total   : 339,329,536
  CPU Util (%)       : 0                    Free    : 217,516,544

  IP Mgmt  - Pkts Rx : 75                   Packet   - Total   : 6600
             Pkts Tx : 60                   Buffers    Free    : 4330
                                            Lowest  : 4200
                                            Missed  : 0
"""
PROCURVE_LOCAL = """\

 LLDP Local Device Information

  Chassis Type : mac-address
  Chassis Id   : 9457a5-001100
  System Name  : floor2-sw
  System Description : Aruba JL258A 2930F-8G-PoE+-2SFP+ Switch, revision WC.16.10.0012, ROM WC.16.01.0008
  System Capabilities Supported: bridge, router
  System Capabilities Enabled: bridge

  Management Address  :
     Type: ipv4
     Address: 10.2.0.5

 LLDP Port Information

  Port     PortType PortId   PortDesc
  -------- -------- -------- --------
  1        local    1        1
"""
PROCURVE_BRIEF = """\

 Status and Counters - Port Status

                  | Intrusion                           MDI  Flow  Bcast
  Port  Type      | Alert     Enabled Status Mode       Mode Ctrl  Limit
  ----- --------- + --------- ------- ------ ---------- ---- ---- -----
  1     100/1000T | No        Yes     Up     1000FDx    MDIX off  0
  2     100/1000T | No        No      Down   100FDx     Auto off  0
"""
PROCURVE_LLDP = """\

 LLDP Remote Device Information Detail

  Local Port   : 1
  ChassisType  : mac-address
  ChassisId    : 701f53-aabb00
  PortType     : interface-name
  PortId       : Gi1/0/9
  SysName      : core-1
  System Descr : Cisco IOS Software, C2960X Software
  PortDescr    : GigabitEthernet1/0/9
  Pvid         :

  System Capabilities Supported  : bridge, router
  System Capabilities Enabled    : bridge, router

  Remote Management Address
     Type    : ipv4
     Address : 10.2.0.1
"""


def test_hand_written_procurve() -> None:
    r = facts_from_cli("hp_procurve", {"system": PROCURVE_SYSTEM, "inventory": PROCURVE_LOCAL,
                                       "interfaces": PROCURVE_BRIEF, "lldp": PROCURVE_LLDP})
    assert r.errors == []
    f = r.facts
    assert (f.sys_name, f.serial, f.os_version, f.model, f.chassis_id) == (
        "floor2-sw", "CN80HKX0AB", "WC.16.10.0012", "JL258A", "94:57:a5:00:11:00")
    assert f.sys_descr and f.sys_descr.startswith("Aruba JL258A")
    assert f.uptime_s == 12 * 86400
    p1, p2 = r.interfaces
    assert (p1.name, p1.index, p1.speed_bps, p1.oper_status) == ("1", 1, 10**9, "up")
    assert (p2.admin_status, p2.speed_bps) == ("down", 10**8)
    (n,) = r.neighbors
    assert (n.local_interface, n.remote_system_name, n.remote_port, n.remote_chassis_id, n.remote_address) == (
        "1", "core-1", "Gi1/0/9", "70:1f:53:aa:bb:00", "10.2.0.1")


AOSCX_SYSTEM = """\
Hostname                        : dc-leaf-1
System Description              : FL.10.10.1030
System Contact                  : noc
System Location                 : dc

Vendor                          : Aruba
Product Name                    : JL658A 6300M 24SFP+ 4SFP56 Swch
Chassis Serial Nbr              : SG9ZKMX0AB
Base MAC Address                : 088134-aa0000
ArubaOS-CX Version              : FL.10.10.1030

Time Zone                       : UTC

Up Time                         : 1 week, 2 days, 3 hours, 4 minutes
CPU Util (%)                    : 2
Memory Usage (%)                : 23
"""
AOSCX_INTERFACE = """\
Interface 1/1/1 is up
 Admin state is up
 Link transitions: 3
 Description: server-7
 Hardware: Ethernet, MAC Address: 08:81:34:aa:00:01
 MTU 9198
 Speed 10000 Mb/s

Interface 1/1/2 is down
 Admin state is down
 Description:
 MTU 1500

"""
AOSCX_LLDP = """\
Port                           : 1/1/1
Neighbor Entries               : 1
Neighbor Chassis-Name          : server-7
Neighbor Chassis-Description   : Debian GNU/Linux 12
Neighbor Chassis-ID            : 52:54:00:12:34:56
Neighbor Management-Address    : 10.3.0.7
Chassis Capabilities Available : Bridge, Router
Chassis Capabilities Enabled   : Router
Neighbor Port-ID               : 52:54:00:12:34:57
Neighbor Port-Desc             : eno1{trailing}
TTL                            : 120
------------------------------------------------------------------
""".format(trailing=" ")  # the template wants the space AOS-CX leaves after the description


def test_hand_written_aoscx() -> None:
    r = facts_from_cli("aruba_aoscx", {"system": AOSCX_SYSTEM, "interfaces": AOSCX_INTERFACE, "lldp": AOSCX_LLDP})
    assert r.errors == []
    f = r.facts
    assert (f.sys_name, f.serial, f.os_version, f.vendor, f.platform, f.chassis_id) == (
        "dc-leaf-1", "SG9ZKMX0AB", "FL.10.10.1030", "HPE Aruba", "aos-cx", "08:81:34:aa:00:00")
    assert f.uptime_s == 7 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60
    i1, i2 = r.interfaces
    assert (i1.alias, i1.speed_bps, i1.mtu, i1.mac) == ("server-7", 10**10, 9198, "08:81:34:aa:00:01")
    assert (i2.admin_status, i2.oper_status) == ("down", "down")
    (n,) = r.neighbors
    assert n.remote_port == "eno1"  # a MAC as port id: the description names the port
    assert (n.remote_system_name, n.remote_address) == ("server-7", "10.3.0.7")


# --------------------------------------------------------------------------- rules and failures


def test_small_rules() -> None:
    assert abbreviate("TwentyFiveGigE1/0/1") == "Twe1/0/1"
    assert abbreviate("GigabitEthernet0/0/1.100") == "Gi0/0/1.100"
    assert abbreviate("Vlan1") == "Vl1"
    assert abbreviate("ether1") == "ether1"
    assert abbreviate("Ethernetfoo") == "Ethernetfoo"
    assert normalise_mac("701F.53AA.BB00") == normalise_mac("701f53-aabb00") == "70:1f:53:aa:bb:00"
    assert normalise_mac("router-1") == "router-1"
    assert parse_speed("1000000 Kbit") == parse_speed("1Gb/s") == parse_speed("1000FDx") == 10**9
    assert parse_speed("auto") is None
    assert parse_uptime({"uptime": "3 days, 2 hours"}) == 3 * 86400 + 7200
    taken: set[int] = set()
    a = synthetic_index("Gi1/0/1", taken)
    assert a == synthetic_index("Gi1/0/1", set())  # stable from one read to the next
    assert synthetic_index("Gi1/0/1", taken) != a  # but unique within a device


def test_an_output_the_template_rejects_is_reported_and_the_rest_kept() -> None:
    r = facts_from_cli("cisco_ios", {"version": CISCO_VERSION, "lldp": "% Invalid output\nthat no template reads\n"})
    assert r.facts.sys_name == "acc-sw-7"
    assert [e.operation for e in r.errors] == ["show lldp neighbors detail"]
    assert r.neighbors == []


def test_outputs_may_be_keyed_by_command() -> None:
    r = facts_from_cli("cisco_ios", {"show version": CISCO_VERSION})
    assert r.facts.serial == "FOC2222X0AB"


def test_unknown_device_type() -> None:
    r = facts_from_cli("no_such_os", {"version": CISCO_VERSION})
    assert r.facts.sys_name is None and r.errors and "no_such_os" in r.errors[0].message


# --------------------------------------------------------------------------- platforms as data


def test_vendor_and_rewrites_are_platform_data() -> None:
    """The maker's name and the output fixes come from platforms.yaml, not from tables in code."""
    import infra_mgr.network.ssh.cli_facts as cli_facts

    assert not hasattr(cli_facts, "VENDOR_OF") and not hasattr(cli_facts, "REWRITES")
    table = platform_table()
    assert all(p.vendor for p in table.platforms)
    junos = table.get("juniper_junos")
    assert junos is not None and junos.rewrites
    r = facts_from_cli("juniper_junos", {"version": JUNOS_VERSION})
    assert r.facts.vendor == junos.vendor == "Juniper"
    # the rewrite reads an administratively down port the template alone would not
    down = ("Physical interface: ge-0/0/9, Administratively down, Physical link is Down\n"
            "  Interface index: 137, SNMP ifIndex: 520\n  Link-level type: Ethernet, MTU: 1514, Speed: 1000mbps\n")
    r = facts_from_cli("juniper_junos", {"interfaces": down})
    assert [(i.name, i.admin_status) for i in r.interfaces] == [("ge-0/0/9", "down")]


def test_a_pattern_that_does_not_compile_is_refused() -> None:
    from pydantic import ValidationError

    from infra_mgr.network.ssh.platforms import Detect, Rewrite

    with pytest.raises(ValidationError):
        Detect(command="show version", pattern="(unclosed")
    with pytest.raises(ValidationError):
        Rewrite(pattern="[", replace="")


def _detect(answer: dict[str, str | None]) -> str | None:
    """What CLI discovery does on an unknown device: detection commands in order until one's
    output names a platform (None: the device rejected the command)."""
    table = platform_table()
    for command in table.detection_commands():
        output = answer.get(command)
        if output is None:
            continue
        found = table.recognise(command, output)
        if found is not None:
            return found.device_type
    return None


@pytest.mark.parametrize("key", sorted(DEVICE_TYPE))
def test_each_lab_platform_is_recognised_from_its_detection_output(city: City, key: str) -> None:
    device = next(d for d in city.devices if d.platform.key == key)
    answers = {c: render_show(device, city, c) for c in platform_table().detection_commands()}
    assert _detect(answers) == DEVICE_TYPE[key]


def test_real_detection_outputs_name_their_platform() -> None:
    xe = ("Cisco IOS XE Software, Version 17.09.04a\nCisco IOS Software [Cupertino], Catalyst L3 Switch "
          "Software (CAT9K_IOSXE), Version 17.9.4a, RELEASE SOFTWARE (fc3)\n")
    nxos = "Cisco Nexus Operating System (NX-OS) Software\nTAC support: http://www.cisco.com/tac\n"
    arista = "Arista DCS-7050SX3-48YC8-R\nHardware version: 11.00\nSoftware image version: 4.30.1F\n"
    forti = "Version: FortiGate-60F v7.2.5,build1517,230606 (GA.F)\nSerial-Number: FGT60FTK00000000\n"
    assert _detect({"show version": CISCO_VERSION}) == "cisco_ios"
    assert _detect({"show version": xe}) == "cisco_xe"
    assert _detect({"show version": nxos}) == "cisco_nxos"
    assert _detect({"show version": JUNOS_VERSION}) == "juniper_junos"
    assert _detect({"show version": arista}) == "arista_eos"
    assert _detect({"get system status": forti}) == "fortinet"
    # a Linux shell names no platform with discovery commands
    assert _detect({c: "-bash: x: command not found\n" for c in platform_table().detection_commands()}) is None
