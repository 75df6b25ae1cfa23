"""How each network platform of the simulated city looks over SNMP, as data.

The city generator (``city.py``) knows nothing about any vendor: everything that differs between
Cisco IOS/IOS-XE, Juniper Junos, MikroTik RouterOS, HPE ArubaOS-Switch, Aruba AOS-CX and Linux
with net-snmp + lldpd lives in the two tables below, so that a discovery bug that only shows on
one platform (a port id that is an ifIndex, a MAC instead of a name, a missing CDP cache) can be
reproduced by changing data, never by adding an ``if vendor == …`` branch.

* :data:`PLATFORMS` — per operating system: the ``sysDescr`` format (with the OS version in the
  vendor's own spelling), MAC OUI, serial-number alphabet, what LLDP advertises as port id and
  port description, whether the device speaks CDP and keeps a CISCO-CDP-MIB cache, and vendor
  scalars a poller falls back to (``jnxBoxSerialNo``, ``mtxrLicVersion`` …).
* :data:`MODELS` — per hardware model: ``sysObjectID``, ENTITY-MIB strings, serial prefix and the
  interface layout (port groups with ifDescr/ifName templates, speeds and ifIndex numbering,
  plus management/loopback/VLAN interfaces).

Platform keys follow ``infra_mgr/network/snmp/vendors.yaml`` (``ios``, ``ios-xe``, ``junos``,
``routeros``, ``arubaos-switch``, ``aos-cx``, ``linux``) so tests can compare what discovery
identified with what the city declares.

Where the identifiers come from: Cisco ``sysObjectID`` leaves are CISCO-PRODUCTS-MIB assignments
(ciscoISR4331 2068, ciscoISR4321 2093, ciscoC11114P 2505, ciscoCat9300FixedSwitchStack 2494,
ciscoCat950024Y4C 2573, ciscoCat920024P 2588, ciscoCat920048P 2589, cat29xxStack 1208) and
Juniper ones JUNIPER-CHASSIS-DEFINES-MIB jnxProductName* (EX4300 63, EX3400 131, EX2300 132,
SRX300 133, SRX340 135, EX4650 508). The HPE ``hpEtherSwitch`` (1.3.6.1.4.1.11.2.3.7.11) and Aruba
AOS-CX (1.3.6.1.4.1.47196.4.1.1.1) leaves below are plausible but NOT verified against HP-ICF-OID
/ ARUBAWIRED-NETWORKING-OID; do not build a model table from them.

Why one file of ~600 lines: it is data (one table per platform), read top to bottom when a
platform is added; splitting it would scatter each platform's description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from infra_mgr.lab.snmprec import SnmpType

# IANA ifType values used here
ETHERNET = 6
SOFTWARE_LOOPBACK = 24
PROP_VIRTUAL = 53  # VLAN interfaces, bridges, Junos logical units
OTHER = 1

# LLDP-MIB LldpPortIdSubtype values
PORT_ID_MAC = 3
PORT_ID_INTERFACE_NAME = 5
PORT_ID_LOCAL = 7

PortIdSource = Literal["name", "index", "mac"]
PortDescSource = Literal["descr", "name", "alias_or_name"]


@dataclass(frozen=True)
class PortGroup:
    """A run of identical front-panel ports, e.g. ``GigabitEthernet1/0/1-48``.

    ``role`` is what the city wires to it (``uplink``, ``access``, ``fabric``, ``wan``, ``lan``);
    ports are numbered ``first … first+count-1`` and get ifIndex ``if_index … if_index+count-1``.
    """

    role: str
    descr: str  # ifDescr template, {n} = port number
    name: str  # ifName template (the short name most platforms use)
    first: int
    count: int
    speed_mbps: int
    if_index: int
    if_type: int = ETHERNET


@dataclass(frozen=True)
class Extra:
    """A non-port interface; ``role`` ``mgmt`` is the one that carries the management address."""

    role: str
    descr: str
    name: str
    if_index: int
    if_type: int
    speed_mbps: int = 0
    mtu: int = 1500


@dataclass(frozen=True)
class Platform:
    """An operating system as seen over SNMP (see the module docstring)."""

    key: str
    vendor: str
    os_name: str
    os_version: str
    sys_descr: str  # template: {hostname} {model} {version} and any Model.descr_fields key
    mfg_name: str
    mac_ouis: tuple[str, ...]  # the vendor's OUIs; a device gets one by hash of its hostname
    serial_alphabet: str
    serial_length: int
    enterprise: int  # for the snmpEngineID (RFC 3411 format 3: enterprise + MAC)
    lldp_port_id: PortIdSource
    lldp_port_desc: PortDescSource
    speaks_cdp: bool = False  # sends CDP frames (Cisco neighbours list it in their CDP cache)
    cdp_cache: bool = False  # implements CISCO-CDP-MIB cdpCacheTable
    cdp_platform: str = ""  # cdpCachePlatform a Cisco neighbour shows, template with {model}
    cdp_version: str = ""  # cdpCacheVersion template; empty = the sysDescr
    vendor_scalars: tuple[tuple[str, SnmpType, str], ...] = ()  # (oid, type, template)

    @property
    def lldp_port_id_subtype(self) -> int:
        return {"name": PORT_ID_INTERFACE_NAME, "index": PORT_ID_LOCAL, "mac": PORT_ID_MAC}[self.lldp_port_id]


@dataclass(frozen=True)
class Model:
    """A hardware model: identity strings and interface layout."""

    key: str
    platform: str
    model: str  # entPhysicalModelName (and what CDP/sysDescr call it)
    sys_object_id: str
    ent_descr: str  # entPhysicalDescr of the chassis
    serial_prefix: str
    hardware_rev: str
    groups: tuple[PortGroup, ...]
    extras: tuple[Extra, ...]
    descr_fields: dict[str, str] = field(default_factory=dict)
    logical_units: bool = False  # Junos: each used port also has a ``<name>.0`` logical interface


_CISCO_TAIL = (
    "\r\nTechnical Support: http://www.cisco.com/techsupport\r\n"
    "Copyright (c) 1986-2023 by Cisco Systems, Inc.\r\nCompiled {compiled} by mcpre"
)

PLATFORMS: MappingProxyType[str, Platform] = MappingProxyType(
    {
        p.key: p
        for p in (
            Platform(
                key="ios-xe",
                vendor="Cisco",
                os_name="IOS-XE",
                os_version="17.9.4a",
                sys_descr=(
                    "Cisco IOS Software [Cupertino], {software} Software ({image}), Version {version}, "
                    "RELEASE SOFTWARE (fc3)" + _CISCO_TAIL
                ),
                mfg_name="Cisco Systems Inc.",
                mac_ouis=("00a3d1", "7c210e", "f87b20", "0c75bd"),
                serial_alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
                serial_length=4,
                enterprise=9,
                lldp_port_id="name",
                lldp_port_desc="descr",
                speaks_cdp=True,
                cdp_cache=True,
                cdp_platform="cisco {model}",
            ),
            Platform(
                key="ios",
                vendor="Cisco",
                os_name="IOS",
                os_version="15.2(7)E9",
                sys_descr=(
                    "Cisco IOS Software, {software} Software ({image}), Version {version}, "
                    "RELEASE SOFTWARE (fc1)" + _CISCO_TAIL
                ),
                mfg_name="Cisco Systems Inc.",
                mac_ouis=("70105c", "a0ecf9", "00f663"),
                serial_alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
                serial_length=4,
                enterprise=9,
                lldp_port_id="name",
                lldp_port_desc="descr",
                speaks_cdp=True,
                cdp_cache=True,
                cdp_platform="cisco {model}",
            ),
            Platform(
                key="junos",
                vendor="Juniper",
                os_name="Junos OS",
                os_version="21.4R3-S5.4",
                sys_descr=(
                    "Juniper Networks, Inc. {descr_model} {kind}, kernel JUNOS {version}, "
                    "Build date: 2023-08-24 05:11:09 UTC Copyright (c) 1996-2023 Juniper Networks, Inc."
                ),
                mfg_name="Juniper Networks",
                mac_ouis=("3c6104", "288a1c", "54e032", "f4b52f"),
                serial_alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
                serial_length=6,
                enterprise=2636,
                lldp_port_id="index",  # Junos advertises the SNMP ifIndex as a locally assigned port id
                lldp_port_desc="alias_or_name",
                vendor_scalars=(
                    ("1.3.6.1.4.1.2636.3.1.2.0", SnmpType.OCTET_STRING, "{ent_descr}"),  # jnxBoxDescr
                    ("1.3.6.1.4.1.2636.3.1.3.0", SnmpType.OCTET_STRING, "{serial}"),  # jnxBoxSerialNo
                ),
            ),
            Platform(
                key="routeros",
                vendor="MikroTik",
                os_name="RouterOS",
                os_version="7.12.1",
                sys_descr="RouterOS {model}",  # RouterOS really puts no version in sysDescr
                mfg_name="MikroTik",
                mac_ouis=("4c5e0c", "64d154", "b869f4", "dc2c6e"),
                serial_alphabet="0123456789ABCDEF",
                serial_length=8,
                enterprise=14988,
                lldp_port_id="name",
                lldp_port_desc="name",
                speaks_cdp=True,  # RouterOS' discovery sends CDP, LLDP and MNDP by default
                cdp_platform="MikroTik",
                cdp_version="{version} (stable)",
                vendor_scalars=(
                    ("1.3.6.1.4.1.14988.1.1.4.4.0", SnmpType.OCTET_STRING, "{version}"),  # mtxrLicVersion
                    ("1.3.6.1.4.1.14988.1.1.7.3.0", SnmpType.OCTET_STRING, "{serial}"),  # mtxrSerialNumber
                    ("1.3.6.1.4.1.14988.1.1.7.4.0", SnmpType.OCTET_STRING, "{version}"),  # mtxrFirmwareVersion
                    ("1.3.6.1.4.1.14988.1.1.7.8.0", SnmpType.OCTET_STRING, "{model}"),  # mtxrBoardName
                ),
            ),
            Platform(
                key="arubaos-switch",
                vendor="HPE",
                os_name="ArubaOS-Switch",
                os_version="WC.16.11.0015",
                sys_descr="Aruba {part} {model} Switch, revision {version}, ROM WC.16.01.0008 (Formerly ProCurve)",
                mfg_name="Hewlett Packard Enterprise",
                mac_ouis=("94f128", "883a30", "b88303"),
                serial_alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
                serial_length=6,
                enterprise=11,
                lldp_port_id="index",  # the port number, locally assigned
                lldp_port_desc="name",
                vendor_scalars=(("1.3.6.1.4.1.11.2.14.11.5.1.1.3.0", SnmpType.OCTET_STRING, "{version}"),),
            ),
            Platform(
                key="aos-cx",
                vendor="HPE Aruba",
                os_name="AOS-CX",
                os_version="GL.10.13.1040",
                sys_descr="Aruba {part} {model} {version}",
                mfg_name="Aruba",
                mac_ouis=("3821c7", "ecc1e8"),
                serial_alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789",
                serial_length=6,
                enterprise=47196,
                lldp_port_id="name",
                lldp_port_desc="name",
            ),
            Platform(
                key="linux",
                vendor="net-snmp",
                os_name="Debian GNU/Linux 12",
                os_version="6.1.0-18-amd64",
                sys_descr=(
                    "Linux {hostname} {version} #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64"
                ),
                mfg_name="PC Engines",
                mac_ouis=("000db9",),
                serial_alphabet="0123456789",
                serial_length=7,
                enterprise=8072,
                lldp_port_id="mac",  # lldpd's default: the port's MAC, with the ifname as description
                lldp_port_desc="name",
            ),
        )
    }
)


def _eth(descr: str, name: str, first: int, count: int, mbps: int, index: int, role: str) -> PortGroup:
    return PortGroup(role=role, descr=descr, name=name, first=first, count=count, speed_mbps=mbps, if_index=index)


_CAT9K = {"software": "Catalyst L3 Switch", "image": "CAT9K_IOSXE", "compiled": "Fri 20-Oct-23 10:44"}
_CISCO_SW_EXTRAS = (
    Extra("oob", "GigabitEthernet0/0", "Gi0/0", 1, ETHERNET, 1000),
    Extra("mgmt", "Vlan1", "Vl1", 70, PROP_VIRTUAL, 1000),
    Extra("null", "Null0", "Nu0", 80, OTHER),
)
_CISCO_RTR_EXTRAS = (
    Extra("oob", "GigabitEthernet0", "Gi0", 5, ETHERNET, 1000),
    Extra("null", "Null0", "Nu0", 6, OTHER),
    Extra("mgmt", "Loopback0", "Lo0", 7, SOFTWARE_LOOPBACK, 8000, mtu=1514),
)
_JUNOS_EXTRAS = (
    Extra("oob", "me0", "me0", 33, ETHERNET, 1000),
    Extra("loopback", "lo0", "lo0", 6, SOFTWARE_LOOPBACK),
    Extra("mgmt", "lo0.0", "lo0.0", 16, SOFTWARE_LOOPBACK),
    Extra("vlan", "irb", "irb", 501, PROP_VIRTUAL, 1000),
)
_JUNOS_SRX_EXTRAS = (
    Extra("oob", "fxp0", "fxp0", 1, ETHERNET, 1000),
    Extra("loopback", "lo0", "lo0", 6, SOFTWARE_LOOPBACK),
    Extra("mgmt", "lo0.0", "lo0.0", 16, SOFTWARE_LOOPBACK),
)

MODELS: MappingProxyType[str, Model] = MappingProxyType(
    {
        m.key: m
        for m in (
            # --- Cisco IOS-XE ---------------------------------------------------------------
            Model(
                key="c9500-24y4c",
                platform="ios-xe",
                model="C9500-24Y4C",
                sys_object_id="1.3.6.1.4.1.9.1.2573",
                ent_descr="Cisco Catalyst 9500 Series Chassis",
                serial_prefix="FCW",
                hardware_rev="V02",
                groups=(
                    _eth("TwentyFiveGigE1/0/{n}", "Twe1/0/{n}", 1, 24, 25000, 9, "downlink"),
                    _eth("HundredGigE1/0/{n}", "Hu1/0/{n}", 25, 4, 100000, 33, "fabric"),
                ),
                extras=(
                    Extra("oob", "GigabitEthernet0/0", "Gi0/0", 1, ETHERNET, 1000),
                    Extra("null", "Null0", "Nu0", 80, OTHER),
                    Extra("mgmt", "Loopback0", "Lo0", 81, SOFTWARE_LOOPBACK, 8000, mtu=1514),
                ),
                descr_fields=_CAT9K,
            ),
            Model(
                key="c9300-48p",
                platform="ios-xe",
                model="C9300-48P",
                sys_object_id="1.3.6.1.4.1.9.1.2494",
                ent_descr="Cisco Catalyst 9300 Series 48-port PoE+ Switch",
                serial_prefix="FOC",
                hardware_rev="V03",
                groups=(
                    _eth("GigabitEthernet1/0/{n}", "Gi1/0/{n}", 1, 48, 1000, 9, "access"),
                    _eth("TenGigabitEthernet1/1/{n}", "Te1/1/{n}", 1, 8, 10000, 57, "uplink"),
                ),
                extras=_CISCO_SW_EXTRAS,
                descr_fields=_CAT9K,
            ),
            Model(
                key="c9200-24p",
                platform="ios-xe",
                model="C9200-24P",
                sys_object_id="1.3.6.1.4.1.9.1.2588",
                ent_descr="Cisco Catalyst 9200 Series 24-port PoE+ Switch",
                serial_prefix="JAE",
                hardware_rev="V01",
                groups=(
                    _eth("GigabitEthernet1/0/{n}", "Gi1/0/{n}", 1, 24, 1000, 9, "access"),
                    _eth("GigabitEthernet1/1/{n}", "Gi1/1/{n}", 1, 4, 1000, 33, "uplink"),
                ),
                extras=_CISCO_SW_EXTRAS,
                descr_fields={"software": "Catalyst L3 Switch", "image": "CAT9K_LITE_IOSXE",
                              "compiled": "Fri 20-Oct-23 09:12"},
            ),
            Model(
                key="c9200-48p",
                platform="ios-xe",
                model="C9200-48P",
                sys_object_id="1.3.6.1.4.1.9.1.2589",
                ent_descr="Cisco Catalyst 9200 Series 48-port PoE+ Switch",
                serial_prefix="JAE",
                hardware_rev="V01",
                groups=(
                    _eth("GigabitEthernet1/0/{n}", "Gi1/0/{n}", 1, 48, 1000, 9, "access"),
                    _eth("GigabitEthernet1/1/{n}", "Gi1/1/{n}", 1, 4, 1000, 57, "uplink"),
                ),
                extras=_CISCO_SW_EXTRAS,
                descr_fields={"software": "Catalyst L3 Switch", "image": "CAT9K_LITE_IOSXE",
                              "compiled": "Fri 20-Oct-23 09:12"},
            ),
            Model(
                key="isr4331",
                platform="ios-xe",
                model="ISR4331/K9",
                sys_object_id="1.3.6.1.4.1.9.1.2068",
                ent_descr="Cisco ISR4331 Chassis",
                serial_prefix="FDO",
                hardware_rev="V05",
                groups=(
                    _eth("GigabitEthernet0/0/{n}", "Gi0/0/{n}", 0, 1, 1000, 1, "wan"),
                    _eth("GigabitEthernet0/0/{n}", "Gi0/0/{n}", 1, 2, 1000, 2, "lan"),
                ),
                extras=_CISCO_RTR_EXTRAS,
                descr_fields={"software": "ISR", "image": "X86_64_LINUX_IOSD-UNIVERSALK9-M",
                              "compiled": "Thu 19-Oct-23 23:47"},
            ),
            Model(
                key="isr4321",
                platform="ios-xe",
                model="ISR4321/K9",
                sys_object_id="1.3.6.1.4.1.9.1.2093",
                ent_descr="Cisco ISR4321 Chassis",
                serial_prefix="FDO",
                hardware_rev="V04",
                groups=(
                    _eth("GigabitEthernet0/0/{n}", "Gi0/0/{n}", 0, 1, 1000, 1, "wan"),
                    _eth("GigabitEthernet0/0/{n}", "Gi0/0/{n}", 1, 1, 1000, 2, "lan"),
                ),
                extras=_CISCO_RTR_EXTRAS,
                descr_fields={"software": "ISR", "image": "X86_64_LINUX_IOSD-UNIVERSALK9-M",
                              "compiled": "Thu 19-Oct-23 23:47"},
            ),
            Model(
                key="c1111-4p",
                platform="ios-xe",
                model="C1111-4P",
                sys_object_id="1.3.6.1.4.1.9.1.2505",
                ent_descr="Cisco C1111-4P Chassis",
                serial_prefix="FGL",
                hardware_rev="V01",
                groups=(
                    _eth("GigabitEthernet0/0/{n}", "Gi0/0/{n}", 0, 1, 1000, 1, "wan"),
                    _eth("GigabitEthernet0/1/{n}", "Gi0/1/{n}", 0, 4, 1000, 3, "lan"),
                ),
                extras=(
                    Extra("null", "Null0", "Nu0", 8, OTHER),
                    Extra("mgmt", "Loopback0", "Lo0", 9, SOFTWARE_LOOPBACK, 8000, mtu=1514),
                ),
                descr_fields={"software": "ISR", "image": "ARMV8EB_LINUX_IOSD-UNIVERSALK9_IAS-M",
                              "compiled": "Thu 19-Oct-23 22:05"},
            ),
            # --- Cisco IOS (classic) ----------------------------------------------------------
            Model(
                key="c2960x-24ps",
                platform="ios",
                model="WS-C2960X-24PS-L",
                sys_object_id="1.3.6.1.4.1.9.1.1208",
                ent_descr="WS-C2960X-24PS-L",
                serial_prefix="FOC",
                hardware_rev="V07",
                groups=(
                    _eth("GigabitEthernet1/0/{n}", "Gi1/0/{n}", 1, 24, 1000, 10101, "access"),
                    _eth("GigabitEthernet1/0/{n}", "Gi1/0/{n}", 25, 4, 1000, 10125, "uplink"),
                ),
                extras=(
                    Extra("mgmt", "Vlan1", "Vl1", 1, PROP_VIRTUAL, 1000),
                    Extra("oob", "FastEthernet0", "Fa0", 14501, ETHERNET, 100),
                    Extra("null", "Null0", "Nu0", 14502, OTHER),
                ),
                descr_fields={"software": "C2960X", "image": "C2960X-UNIVERSALK9-M", "compiled": "Fri 28-Jul-23 15:43"},
            ),
            # --- Juniper ----------------------------------------------------------------------
            Model(
                key="ex4650-48y",
                platform="junos",
                model="ex4650-48y-8c",
                sys_object_id="1.3.6.1.4.1.2636.1.1.1.2.508",
                ent_descr="Juniper EX4650-48Y-8C Switch",
                serial_prefix="WS",
                hardware_rev="REV 21",
                groups=(
                    _eth("xe-0/0/{n}", "xe-0/0/{n}", 0, 48, 10000, 526, "access"),
                    _eth("et-0/0/{n}", "et-0/0/{n}", 48, 8, 100000, 574, "fabric"),
                ),
                extras=_JUNOS_EXTRAS,
                descr_fields={"descr_model": "ex4650-48y-8c", "kind": "Ethernet Switch"},
                logical_units=True,
            ),
            Model(
                key="ex2300-24p",
                platform="junos",
                model="ex2300-24p",
                sys_object_id="1.3.6.1.4.1.2636.1.1.1.2.132",
                ent_descr="Juniper EX2300-24P Switch",
                serial_prefix="JW",
                hardware_rev="REV 14",
                groups=(
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 0, 24, 1000, 513, "access"),
                    _eth("xe-0/1/{n}", "xe-0/1/{n}", 0, 4, 10000, 537, "uplink"),
                ),
                extras=_JUNOS_EXTRAS,
                descr_fields={"descr_model": "ex2300-24p", "kind": "Ethernet Switch"},
                logical_units=True,
            ),
            Model(
                key="ex3400-24p",
                platform="junos",
                model="ex3400-24p",
                sys_object_id="1.3.6.1.4.1.2636.1.1.1.2.131",
                ent_descr="Juniper EX3400-24P Switch",
                serial_prefix="NW",
                hardware_rev="REV 18",
                groups=(
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 0, 24, 1000, 513, "access"),
                    _eth("xe-0/2/{n}", "xe-0/2/{n}", 0, 4, 10000, 541, "uplink"),
                ),
                extras=_JUNOS_EXTRAS,
                descr_fields={"descr_model": "ex3400-24p", "kind": "Ethernet Switch"},
                logical_units=True,
            ),
            Model(
                key="srx340",
                platform="junos",
                model="srx340",
                sys_object_id="1.3.6.1.4.1.2636.1.1.1.2.135",
                ent_descr="Juniper SRX340 Services Gateway",
                serial_prefix="CX",
                hardware_rev="REV 11",
                groups=(
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 0, 1, 1000, 513, "wan"),
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 1, 7, 1000, 514, "lan"),
                ),
                extras=_JUNOS_SRX_EXTRAS,
                descr_fields={"descr_model": "srx340", "kind": "internet router"},
                logical_units=True,
            ),
            Model(
                key="srx300",
                platform="junos",
                model="srx300",
                sys_object_id="1.3.6.1.4.1.2636.1.1.1.2.133",
                ent_descr="Juniper SRX300 Services Gateway",
                serial_prefix="CV",
                hardware_rev="REV 09",
                groups=(
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 0, 1, 1000, 513, "wan"),
                    _eth("ge-0/0/{n}", "ge-0/0/{n}", 1, 5, 1000, 514, "lan"),
                ),
                extras=_JUNOS_SRX_EXTRAS,
                descr_fields={"descr_model": "srx300", "kind": "internet router"},
                logical_units=True,
            ),
            # --- MikroTik ---------------------------------------------------------------------
            Model(
                key="rb5009",
                platform="routeros",
                model="RB5009UG+S+",
                sys_object_id="1.3.6.1.4.1.14988.1",
                ent_descr="RouterBOARD RB5009UG+S+",
                serial_prefix="HE",
                hardware_rev="r2",
                groups=(
                    _eth("ether{n}", "ether{n}", 1, 1, 2500, 1, "wan"),
                    _eth("ether{n}", "ether{n}", 2, 7, 1000, 2, "lan"),
                ),
                extras=(
                    Extra("sfp", "sfp-sfpplus1", "sfp-sfpplus1", 9, ETHERNET, 10000),
                    Extra("mgmt", "lo", "lo", 10, SOFTWARE_LOOPBACK, mtu=65536),
                ),
            ),
            Model(
                key="crs326",
                platform="routeros",
                model="CRS326-24G-2S+",
                sys_object_id="1.3.6.1.4.1.14988.1",
                ent_descr="RouterBOARD CRS326-24G-2S+",
                serial_prefix="D4",
                hardware_rev="r2",
                groups=(
                    _eth("ether{n}", "ether{n}", 1, 24, 1000, 1, "access"),
                    _eth("sfp-sfpplus{n}", "sfp-sfpplus{n}", 1, 2, 10000, 25, "uplink"),
                ),
                extras=(Extra("mgmt", "bridge", "bridge", 27, PROP_VIRTUAL, mtu=1500),),
            ),
            # --- HPE ArubaOS-Switch -----------------------------------------------------------
            Model(
                key="aruba-2930f-24g",
                platform="arubaos-switch",
                model="2930F-24G-4SFP",
                sys_object_id="1.3.6.1.4.1.11.2.3.7.11.181.15",
                ent_descr="Aruba JL259A 2930F-24G-4SFP Switch",
                serial_prefix="CN",
                hardware_rev="JL259A",
                groups=(
                    _eth("{n}", "{n}", 1, 24, 1000, 1, "access"),
                    _eth("{n}", "{n}", 25, 4, 1000, 25, "uplink"),
                ),
                extras=(Extra("mgmt", "DEFAULT_VLAN", "DEFAULT_VLAN", 4097, PROP_VIRTUAL),),
                descr_fields={"part": "JL259A"},
            ),
            # --- Aruba AOS-CX -----------------------------------------------------------------
            Model(
                key="aruba-8325",
                platform="aos-cx",
                model="8325-48Y8C",
                sys_object_id="1.3.6.1.4.1.47196.4.1.1.1.101",
                ent_descr="Aruba JL624A 8325-48Y8C Switch",
                serial_prefix="TW",
                hardware_rev="JL624A",
                groups=(
                    _eth("1/1/{n}", "1/1/{n}", 1, 48, 25000, 1001, "access"),
                    _eth("1/1/{n}", "1/1/{n}", 49, 8, 100000, 1049, "fabric"),
                ),
                extras=(
                    Extra("oob", "mgmt", "mgmt", 2, ETHERNET, 1000),
                    Extra("mgmt", "loopback0", "loopback0", 3, SOFTWARE_LOOPBACK),
                    Extra("vlan", "vlan1", "vlan1", 4, PROP_VIRTUAL),
                ),
                descr_fields={"part": "JL624A"},
            ),
            # --- Linux (Debian, net-snmp + lldpd on a small x86 appliance) ----------------------
            Model(
                key="apu4",
                platform="linux",
                model="apu4d4",
                sys_object_id="1.3.6.1.4.1.8072.3.2.10",
                ent_descr="PC Engines apu4 x86 router board",
                serial_prefix="13",
                hardware_rev="1.0",
                groups=(
                    _eth("eth{n}", "eth{n}", 0, 1, 1000, 2, "wan"),
                    _eth("eth{n}", "eth{n}", 1, 3, 1000, 3, "lan"),
                ),
                extras=(Extra("mgmt", "lo", "lo", 1, SOFTWARE_LOOPBACK, 10, mtu=65536),),
            ),
        )
    }
)


def platform_of(model: Model) -> Platform:
    """The platform a model runs (a KeyError here is a broken table, caught by the tests)."""
    return PLATFORMS[model.platform]
