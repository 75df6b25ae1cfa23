"""The simulated city: Jeddah's network generated from ``examples/jeddah.yaml`` and served by snmpsim.

``infra-mgr lab up`` starts it (peer kind ``city``). What it is:

* **Devices (134 for the example)** — headquarters: two core switches (Cisco C9500) and two
  distribution switches (Cisco C9300); data centre: two Juniper EX4650 and two Aruba 8325;
  each of the 63 branches: a WAN router and an access switch, of mixed platforms taken in turn
  from :data:`BRANCH_KITS` (Cisco IOS-XE and IOS, Juniper Junos, MikroTik RouterOS, ArubaOS-Switch,
  Linux with net-snmp + lldpd). How each platform looks is data in ``platforms.py``.
* **Topology** — core1 ↔ core2; each core ↔ each distribution switch; each core ↔ each of the
  two EX4650; EX4650 ↔ EX4650; each Aruba 8325 ↔ each EX4650. Branch N's router uplinks to
  ``jed-hq-dist1`` (N odd) or ``jed-hq-dist2`` (N even), except every tenth branch, which uplinks
  to the data centre (``jed-dc-sw1``/``sw2``); its access switch uplinks to its router. Every
  link that is up is in the LLDP remote table of both ends (with the neighbour's management
  address), and in the CDP cache of a Cisco end whose neighbour speaks CDP (Cisco, MikroTik).
* **Address plan** — every device is reached at its own loopback address, all on one UDP port
  (161 when free and we may bind it, else one free port shared by all; see ``expected.json``'s
  consumers: the peer record's ``info["port"]``)::

      HQ   127.1.0.1 core1   127.1.0.2 core2   127.1.0.3 dist1   127.1.0.4 dist2
      DC   127.1.0.11 … 127.1.0.14  jed-dc-sw1 … jed-dc-sw4
      JED-B<N>  127.2.<N>.1 router (jed-b<NN>-rtr)   127.2.<N>.2 access switch (jed-b<NN>-sw)

  The same addresses are the LLDP/CDP management addresses, so a crawler can follow them.
  ipAddrTable also carries the YAML's plan addresses: router LAN gateway and WAN /30 end, access
  switch management address.
* **Faults** — one table, :data:`FAULTS`, just below.
* **Moving values** — snmpsim's ``numeric`` variation module: sysUpTime, octet and packet
  counters (HC and 32-bit with wrap) advance with time since the agent started; the errored
  interface's ifInErrors/ifInDiscards rise; the flapping link's ifOperStatus is
  ``sin``-driven and alternates up/down every :data:`FLAP_PERIOD_S` / 2 seconds.
* **expected.json** next to the recordings: every device (hostname, site, role, address,
  platform, vendor, model, serial, chassis id, sysObjectID, credentials, fault, interfaces) and
  every designed link (``"host:ifName"`` ↔ ``"host:ifName"``, with whether LLDP/CDP show it).
  Deterministic: the same YAML gives byte-identical recordings and expected.json.

How one process gives 130 devices their own IPs, fast
-----------------------------------------------------
One SNMP engine per device costs ~0.15 s of CPU each (pysnmp loads its MIB modules per engine):
measured here for 134 devices, 20–41 s in one process and 13–27 s split over two processes on
the two cores (depending on what else runs). snmpsim's own
answer — pick the recording by transport endpoint, ``<data>/<md5(community)>/<transport-id>.snmprec``
— is broken in snmpsim 1.2.2 with pysnmp 7: snmpsim overrides ``handleMgmtOperation`` (the old
pysnmp name), which pysnmp 7 never calls, so every endpoint answers with the plain community's
recording. ``python -m infra_mgr.lab.city serve …`` runs snmpsim's responder with that selection
put back on pysnmp 7's ``handle_management_operation``: candidates come from snmpsim's own
``datafile.probe_context`` and only those naming the request's transport endpoint are accepted,
so an endpoint without a recording for the community (or for SNMPv3) stays silent like a real
agent given a wrong community. One engine, one endpoint per device. snmpsim is single-threaded,
so ``serve`` runs one such snmpsim worker per CPU (at least two), each holding a round-robin share
of the endpoints and loading only their recordings, and answers reads from an in-memory copy of
each recording (snmpsim's own evaluation and variation modules, without its per-call file
index work): ~0.2 ms of agent CPU per varbind instead of ~0.32, spread over the cores; the city
is up in ~4–5 s. Details at "snmpsim with per-endpoint recordings" below. The layout::

    <lab>/city/data/public.snmprec                              registers the community (never served)
    <lab>/city/data/<md5(public)>/1.3.6.1.6.1.1.<i>.snmprec     device on endpoint i, v2c "public"
    <lab>/city/data/<md5(other)>/1.3.6.1.6.1.1.<i>.snmprec      the wrong-community device
    <lab>/city/data/1.3.6.1.6.1.1.<i>.snmprec                   the SNMPv3-only device (empty context)
    <lab>/city/expected.json

All devices share the engine; its snmpEngineID is the v3 device's, and every recording also
carries its device's own snmpEngineID (RFC 3411 format 3: enterprise + MAC) for v2c readers.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import ipaddress
import json
import math
import os
import random
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from infra_mgr.lab.platforms import (
    MODELS,
    PROP_VIRTUAL,
    SOFTWARE_LOOPBACK,
    Extra,
    Model,
    Platform,
    PortGroup,
    platform_of,
)
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, format_record
from infra_mgr.lab.supervisor import Lab, LabError, PeerRecord, PeerSpec, PeerUnavailable, free_port

EXAMPLE_YAML = Path(__file__).resolve().parents[2] / "examples" / "jeddah.yaml"
EXPECTED_FILE = "expected.json"
STANDARD_PORT = 161

# --- faults on purpose: one table ---------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """A deliberate defect of one device (or of one of its links: ``port_role`` names which)."""

    name: str
    host: str
    port_role: str | None
    description: str


FLAP_PERIOD_S = 6.0  # the flapping link is down for half of this, then up for half
ERRORS_PER_S = 3  # ifInErrors rate on the errored interface
DISCARDS_PER_S = 7  # ifInDiscards rate on the errored interface
WRONG_COMMUNITY = "jed-noc-ro"  # the only community the wrong-community device answers
LIAR_COMMUNITY = "loop"  # the liar's behaviour for the broken-walks device (picked by community)
V3_USER = {
    "user": "jed-noc-v3",
    "auth_proto": "SHA",
    "auth_key": "jeddah-auth-2024",
    "priv_proto": "AES",
    "priv_key": "jeddah-priv-2024",
}

FAULTS: tuple[Fault, ...] = (
    Fault("errors", "jed-b07-rtr", "wan", f"WAN port: ifInErrors +{ERRORS_PER_S}/s, ifInDiscards +{DISCARDS_PER_S}/s"),
    Fault("uplink_down", "jed-b12-rtr", "wan", "WAN uplink admin up, oper down at both ends; no LLDP/CDP across it"),
    Fault("flapping", "jed-b19-sw", "uplink", f"uplink to its router: oper status flips every {FLAP_PERIOD_S / 2:g} s"),
    Fault("unreachable", "jed-b23-sw", None, "listed and seen by its router's LLDP, but no agent on its address"),
    Fault("wrong_community", "jed-b34-rtr", None, f"answers only community {WRONG_COMMUNITY!r}; 'public' times out"),
    Fault("v3_only", "jed-b45-rtr", None, "SNMPv3 authPriv (SHA/AES) only; every v2c community times out"),
    Fault("broken_walks", "jed-b55-sw", None, f"served by the liar: community {LIAR_COMMUNITY!r} loops GETNEXT"),
)

# --- the estate -----------------------------------------------------------------------------------

# (router model, access switch model) of branch N is BRANCH_KITS[(N - 1) % len(BRANCH_KITS)]
BRANCH_KITS: tuple[tuple[str, str], ...] = (
    ("isr4331", "c9200-24p"),
    ("srx340", "ex2300-24p"),
    ("isr4321", "c2960x-24ps"),
    ("rb5009", "crs326"),
    ("c1111-4p", "aruba-2930f-24g"),
    ("apu4", "aruba-2930f-24g"),
    ("isr4331", "c9200-48p"),
    ("srx300", "ex3400-24p"),
)

# hostname, site code, role, model key, address
BACKBONE: tuple[tuple[str, str, str, str, str], ...] = (
    ("jed-hq-core1", "JED-HQ", "core", "c9500-24y4c", "127.1.0.1"),
    ("jed-hq-core2", "JED-HQ", "core", "c9500-24y4c", "127.1.0.2"),
    ("jed-hq-dist1", "JED-HQ", "distribution", "c9300-48p", "127.1.0.3"),
    ("jed-hq-dist2", "JED-HQ", "distribution", "c9300-48p", "127.1.0.4"),
    ("jed-dc-sw1", "JED-DC", "datacenter", "ex4650-48y", "127.1.0.11"),
    ("jed-dc-sw2", "JED-DC", "datacenter", "ex4650-48y", "127.1.0.12"),
    ("jed-dc-sw3", "JED-DC", "datacenter", "aruba-8325", "127.1.0.13"),
    ("jed-dc-sw4", "JED-DC", "datacenter", "aruba-8325", "127.1.0.14"),
)

# a host, its port group, b host, its port group, link kind
BACKBONE_LINKS: tuple[tuple[str, str, str, str, str], ...] = (
    ("jed-hq-core1", "fabric", "jed-hq-core2", "fabric", "core-core"),
    ("jed-hq-core1", "downlink", "jed-hq-dist1", "uplink", "core-distribution"),
    ("jed-hq-core1", "downlink", "jed-hq-dist2", "uplink", "core-distribution"),
    ("jed-hq-core2", "downlink", "jed-hq-dist1", "uplink", "core-distribution"),
    ("jed-hq-core2", "downlink", "jed-hq-dist2", "uplink", "core-distribution"),
    ("jed-hq-core1", "fabric", "jed-dc-sw1", "fabric", "core-datacenter"),
    ("jed-hq-core1", "fabric", "jed-dc-sw2", "fabric", "core-datacenter"),
    ("jed-hq-core2", "fabric", "jed-dc-sw1", "fabric", "core-datacenter"),
    ("jed-hq-core2", "fabric", "jed-dc-sw2", "fabric", "core-datacenter"),
    ("jed-dc-sw1", "fabric", "jed-dc-sw2", "fabric", "datacenter-peer"),
    ("jed-dc-sw3", "fabric", "jed-dc-sw1", "fabric", "datacenter-leaf"),
    ("jed-dc-sw3", "fabric", "jed-dc-sw2", "fabric", "datacenter-leaf"),
    ("jed-dc-sw4", "fabric", "jed-dc-sw1", "fabric", "datacenter-leaf"),
    ("jed-dc-sw4", "fabric", "jed-dc-sw2", "fabric", "datacenter-leaf"),
)


def branch_uplink(number: int) -> str:
    """Which backbone switch branch ``number``'s router uplinks to."""
    if number % 10 == 0:
        return "jed-dc-sw1" if (number // 10) % 2 else "jed-dc-sw2"
    return "jed-hq-dist1" if number % 2 else "jed-hq-dist2"


# LLDP-MIB LldpSystemCapabilitiesMap (BITS, first octet MSB = bit 0): bridge(2), router(4)
LLDP_BRIDGE, LLDP_ROUTER = 0x20, 0x08
# CISCO-CDP-MIB cdpCacheCapabilities: router 0x01, switch 0x08, IGMP 0x20
ROLE_TRAITS: dict[str, dict[str, int]] = {
    "core": {"lldp_caps": LLDP_BRIDGE | LLDP_ROUTER, "cdp_caps": 0x29, "sys_services": 6},
    "distribution": {"lldp_caps": LLDP_BRIDGE | LLDP_ROUTER, "cdp_caps": 0x29, "sys_services": 6},
    "datacenter": {"lldp_caps": LLDP_BRIDGE | LLDP_ROUTER, "cdp_caps": 0x29, "sys_services": 6},
    "wan-router": {"lldp_caps": LLDP_ROUTER, "cdp_caps": 0x21, "sys_services": 78},
    "access-switch": {"lldp_caps": LLDP_BRIDGE, "cdp_caps": 0x28, "sys_services": 2},
}

ALIAS_TO_HQ = "وصلة إلى المبنى الرئيسي"
ALIAS_TO_DC = "وصلة إلى مركز البيانات"
ALIAS_ROUTER_LAN = "وصلة إلى مبدل الفرع"
ALIAS_SWITCH_UPLINK = "وصلة صاعدة إلى موجه الفرع"
ACCESS_ALIASES: tuple[str, ...] = (
    "",
    "",
    "",
    "طابعة - قسم الرخص",
    "نقطة وصول لاسلكية",
    "هاتف - خدمة العملاء",
    "حاسب - شؤون الموظفين",
    "كاميرا المراقبة - المدخل",
)
SYS_CONTACT = "NOC Jeddah Municipality <noc@jeddah.example>"

# --- OIDs ---------------------------------------------------------------------------------------

SYS = "1.3.6.1.2.1.1"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IP_ADDR_ENTRY = "1.3.6.1.2.1.4.20.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
ENT_PHYSICAL_ENTRY = "1.3.6.1.2.1.47.1.1.1.1"
SNMP_ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
LLDP_LOC = "1.0.8802.1.1.2.1.3"
LLDP_LOC_PORT_ENTRY = f"{LLDP_LOC}.7.1"
LLDP_LOC_MAN_ADDR_ENTRY = f"{LLDP_LOC}.8.1"
LLDP_REM_ENTRY = "1.0.8802.1.1.2.1.4.1.1"
LLDP_REM_MAN_ADDR_ENTRY = "1.0.8802.1.1.2.1.4.2.1"
CDP_CACHE_ENTRY = "1.3.6.1.4.1.9.9.23.1.2.1.1"

# --- the model of the city ----------------------------------------------------------------------


@dataclass(eq=False)
class Interface:
    """One row of ifTable as the generator plans it."""

    if_index: int
    descr: str
    name: str
    if_type: int
    speed_mbps: int
    mtu: int
    role: str
    port: bool  # a front-panel port (has an LLDP local port entry)
    mac: bytes
    admin_up: bool = True
    oper: str = "down"  # up | down | flapping
    alias: str = ""
    peer: tuple[Device, Interface] | None = None
    link_state: str | None = None  # up | down | flapping when linked
    in_rate: int = 0  # octets per second while up
    out_rate: int = 0
    in_octets: int = 0  # initial values
    out_octets: int = 0
    in_errors: int = 0
    in_discards: int = 0
    errors_rate: int = 0  # > 0 on the errored interface
    discards_rate: int = 0
    last_change: int = 0
    logical_of: Interface | None = None  # Junos "<port>.0" units


@dataclass(eq=False)
class Device:
    """One simulated device and everything its recording is made from."""

    hostname: str
    site: str
    site_name_ar: str
    role: str
    model: Model
    address: str
    rng: random.Random
    serial: str = ""
    mac: bytes = b""
    uptime_ticks: int = 0
    fault: str | None = None
    community: str | None = "public"
    v3: dict[str, str] | None = None
    served_by: str | None = "snmpsim"  # snmpsim | liar | None (unreachable)
    interfaces: list[Interface] = field(default_factory=list)
    plan_addresses: list[tuple[str, str, str]] = field(default_factory=list)  # (address, mask, interface role)
    lldp: list[tuple[Interface, Device, Interface]] = field(default_factory=list)  # local port, neighbour, its port
    used: set[int] = field(default_factory=set)  # ifIndexes taken by links

    @property
    def platform(self) -> Platform:
        return platform_of(self.model)

    @property
    def engine_id(self) -> bytes:
        """RFC 3411 snmpEngineID, format 3 (enterprise number with the top bit set, then a MAC)."""
        return (0x80000000 | self.platform.enterprise).to_bytes(4, "big") + b"\x03" + self.mac

    @property
    def mgmt(self) -> Interface:
        return next(i for i in self.interfaces if i.role == "mgmt")

    def template_fields(self) -> dict[str, str]:
        """What the platform's sysDescr and vendor-scalar templates may name."""
        return {
            "hostname": self.hostname,
            "model": self.model.model,
            "version": self.platform.os_version,
            "serial": self.serial,
            "ent_descr": self.model.ent_descr,
            **self.model.descr_fields,
        }

    @property
    def sys_descr(self) -> str:
        return self.platform.sys_descr.format(**self.template_fields())

    def take(self, role: str) -> Interface:
        """The next free front-panel port of a port group (links are wired in a fixed order)."""
        for interface in self.interfaces:
            if interface.role == role and interface.port and interface.if_index not in self.used:
                self.used.add(interface.if_index)
                return interface
        raise ValueError(f"{self.hostname}: no free {role!r} port left on a {self.model.model}")


@dataclass(eq=False)
class Link:
    """A designed cable between two ports; ``state`` is up, down or flapping."""

    a: tuple[Device, Interface]
    b: tuple[Device, Interface]
    kind: str
    state: str = "up"


@dataclass
class City:
    devices: list[Device]
    links: list[Link]

    def device(self, hostname: str) -> Device:
        return next(d for d in self.devices if d.hostname == hostname)


def _mac(oui: str, address: str, offset: int = 0) -> bytes:
    """A MAC unique in the city by construction: the vendor OUI, 16 bits that are a fixed
    permutation of the device's address (its last two octets), and an interface offset
    (0 = the chassis), so chassis ids and port MACs never collide between devices."""
    third, fourth = (int(x) for x in address.split(".")[2:])
    code = ((third << 8 | fourth) * 40503 + 0x5BD1) % 65536  # odd multiplier: a bijection
    return bytes.fromhex(oui) + bytes([code >> 8, code & 0xFF, offset])


def _build_interfaces(device: Device) -> None:
    """ifTable rows of a model: its port groups, then its extra interfaces, ordered by ifIndex."""
    rows: list[Interface] = []
    for group in device.model.groups:
        for k in range(group.count):
            rows.append(_port(device, group, group.first + k, group.if_index + k, len(rows) + 1))
    for extra in device.model.extras:
        rows.append(_extra(device, extra, len(rows) + 1))
    if len(rows) > 250:
        raise ValueError(f"{device.model.key}: more than 250 interfaces do not fit the MAC plan")
    indexes = [r.if_index for r in rows]
    if len(set(indexes)) != len(indexes):
        raise ValueError(f"{device.model.key}: duplicate ifIndex in the platform table")
    device.interfaces = sorted(rows, key=lambda r: r.if_index)


def _port(device: Device, group: PortGroup, number: int, if_index: int, offset: int) -> Interface:
    return Interface(
        if_index=if_index,
        descr=group.descr.format(n=number),
        name=group.name.format(n=number),
        if_type=group.if_type,
        speed_mbps=group.speed_mbps,
        mtu=1500 if device.model.platform != "junos" else 1514,
        role=group.role,
        port=True,
        mac=device.mac[:5] + bytes([offset]),
    )


def _extra(device: Device, extra: Extra, offset: int) -> Interface:
    up = extra.role in ("mgmt", "loopback", "null", "vlan") or device.role in ("core", "datacenter")
    return Interface(
        if_index=extra.if_index,
        descr=extra.descr,
        name=extra.name,
        if_type=extra.if_type,
        speed_mbps=extra.speed_mbps,
        mtu=extra.mtu,
        role=extra.role,
        port=False,
        mac=b"" if extra.if_type == SOFTWARE_LOOPBACK else device.mac[:5] + bytes([offset]),
        oper="up" if up else "down",
    )


def _new_device(hostname: str, site: dict[str, Any], role: str, model_key: str, address: str) -> Device:
    model = MODELS[model_key]
    rng = random.Random(f"jeddah-city:{hostname}")  # same hostname, same device, on every run
    device = Device(hostname, site["code"], site.get("name_ar") or site["name_en"], role, model, address, rng)
    platform = device.platform
    device.mac = _mac(platform.mac_ouis[rng.randrange(len(platform.mac_ouis))], address)
    body = "".join(rng.choice(platform.serial_alphabet) for _ in range(platform.serial_length))
    if platform.key in ("ios-xe", "ios"):  # Cisco: plant code + year/week + 4 characters
        body = f"{rng.randrange(18, 25)}{rng.randrange(1, 53):02d}{body}"
    device.serial = f"{model.serial_prefix}{body}"
    device.uptime_ticks = rng.randrange(30 * 86400 * 100, 400 * 86400 * 100)
    _build_interfaces(device)
    return device


def _connect(a: tuple[Device, str], b: tuple[Device, str], kind: str) -> Link:
    (da, role_a), (db, role_b) = a, b
    ia, ib = da.take(role_a), db.take(role_b)
    ia.peer, ib.peer = (db, ib), (da, ia)
    return Link((da, ia), (db, ib), kind)


def load_sites(yaml_path: Path) -> list[dict[str, Any]]:
    """The sites of the YAML city file (only the fields the generator uses are required)."""
    data = yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8"))
    sites = data.get("sites") if isinstance(data, dict) else None
    if not isinstance(sites, list):
        raise LabError(f"{yaml_path}: no 'sites' list")
    return sites


def _branch_number(code: str) -> int:
    digits = "".join(ch for ch in code.rsplit("-", 1)[-1] if ch.isdigit())
    if not digits or not 1 <= int(digits) <= 254:
        raise LabError(f"branch code {code!r}: expected a number 1..254 at the end (it becomes 127.2.<N>.x)")
    return int(digits)


def _prefix(site: dict[str, Any], role: str) -> ipaddress.IPv4Network | None:
    for entry in site.get("prefixes") or []:
        if entry.get("role") == role:
            return ipaddress.ip_network(entry["prefix"])
    return None


def build_city(yaml_path: Path = EXAMPLE_YAML) -> City:
    """The whole city as plain objects: devices, interfaces, links, faults applied."""
    sites = load_sites(yaml_path)
    by_code = {s["code"]: s for s in sites}
    for code in ("JED-HQ", "JED-DC"):
        if code not in by_code:
            raise LabError(f"{yaml_path}: site {code} is missing (the backbone lives there)")
    devices = [_new_device(h, by_code[code], role, model, addr) for h, code, role, model, addr in BACKBONE]
    named = {d.hostname: d for d in devices}
    links = [_connect((named[a], ra), (named[b], rb), kind) for a, ra, b, rb, kind in BACKBONE_LINKS]

    branches = sorted((s for s in sites if s.get("kind") == "branch"), key=lambda s: _branch_number(s["code"]))
    for site in branches:
        n = _branch_number(site["code"])
        router_model, switch_model = BRANCH_KITS[(n - 1) % len(BRANCH_KITS)]
        router = _new_device(f"jed-b{n:02d}-rtr", site, "wan-router", router_model, f"127.2.{n}.1")
        switch = _new_device(f"jed-b{n:02d}-sw", site, "access-switch", switch_model, f"127.2.{n}.2")
        devices += [router, switch]
        upstream = named[branch_uplink(n)]
        wan = _connect((router, "wan"), (upstream, "access"), "branch-wan")
        lan = _connect((router, "lan"), (switch, "uplink"), "branch-lan")
        links += [wan, lan]
        wan.a[1].alias = ALIAS_TO_DC if upstream.site == "JED-DC" else ALIAS_TO_HQ
        wan.b[1].alias = f"وصلة إلى {router.site_name_ar}"
        lan.a[1].alias, lan.b[1].alias = ALIAS_ROUTER_LAN, ALIAS_SWITCH_UPLINK
        for prefix_role, device, host, iface_role in (
            ("users", router, 1, "lan"),
            ("wan", router, 2, "wan"),
            ("management", switch, 2, "mgmt"),
        ):
            net = _prefix(site, prefix_role)
            if net is not None:
                device.plan_addresses.append((str(net.network_address + host), str(net.netmask), iface_role))

    hostnames = [d.hostname for d in devices]
    if len(set(hostnames)) != len(hostnames) or len({d.address for d in devices}) != len(devices):
        raise LabError("city: duplicate hostname or address (two branches with the same number?)")
    for link in links:
        a_dev, a_if = link.a
        b_dev, b_if = link.b
        if not a_if.alias and a_dev.role in ("core", "distribution", "datacenter"):
            a_if.alias = f"to {b_dev.hostname} {b_if.name}"
        if not b_if.alias and b_dev.role in ("core", "distribution", "datacenter"):
            b_if.alias = f"to {a_dev.hostname} {a_if.name}"
    city = City(devices, links)
    _apply_faults(city)
    _settle_states(city)
    _check_unique(city)
    return city


def _fault_link(device: Device, port_role: str, city: City) -> Link:
    for link in city.links:
        for dev, iface in (link.a, link.b):
            if dev is device and iface.role == port_role:
                return link
    raise LabError(f"fault table: {device.hostname} has no linked {port_role!r} port")


def _apply_faults(city: City) -> None:
    """Turn the FAULTS table into device/link settings (unknown hosts are table errors)."""
    names = {d.hostname: d for d in city.devices}
    for fault in FAULTS:
        device = names.get(fault.host)
        if device is None:
            raise LabError(f"fault table: no device {fault.host!r} in this city")
        device.fault = fault.name
        if fault.name == "errors" and fault.port_role:
            link = _fault_link(device, fault.port_role, city)
            iface = link.a[1] if link.a[0] is device else link.b[1]
            iface.errors_rate, iface.discards_rate = ERRORS_PER_S, DISCARDS_PER_S
        elif fault.name in ("uplink_down", "flapping") and fault.port_role:
            _fault_link(device, fault.port_role, city).state = "down" if fault.name == "uplink_down" else "flapping"
        elif fault.name == "unreachable":
            device.served_by = None
        elif fault.name == "wrong_community":
            device.community = WRONG_COMMUNITY
        elif fault.name == "v3_only":
            device.community, device.v3 = None, dict(V3_USER)
        elif fault.name == "broken_walks":
            device.served_by, device.community = "liar", LIAR_COMMUNITY


def _settle_states(city: City) -> None:
    """Oper status, aliases, counters and rates of every interface (deterministic per device)."""
    for link in city.links:
        for _, iface in (link.a, link.b):
            iface.link_state = link.state
            iface.oper = link.state
    for device in city.devices:
        rng = device.rng
        for iface in device.interfaces:
            if iface.port and iface.peer is None:
                _unused_port(device, iface, rng)
            if iface.oper in ("up", "flapping"):
                share = (0.02, 0.35) if iface.peer else (0.0005, 0.03)
                bps = max(iface.speed_mbps, 10) * 125_000
                iface.in_rate = max(1, int(bps * rng.uniform(*share)))
                iface.out_rate = max(1, int(bps * rng.uniform(*share)))
                iface.in_octets = rng.randrange(10**9, 10**13)
                iface.out_octets = rng.randrange(10**9, 10**13)
                iface.in_errors = rng.randrange(0, 40) if iface.port else 0
                iface.in_discards = rng.randrange(0, 400) if iface.port else 0
            iface.last_change = rng.randrange(device.uptime_ticks // 2, device.uptime_ticks)
        if device.model.logical_units:
            _add_logical_units(device)
        device.lldp = [
            (iface, *iface.peer)
            for iface in device.interfaces
            if iface.peer is not None and iface.link_state != "down"
        ]


def _unused_port(device: Device, iface: Interface, rng: random.Random) -> None:
    draw = rng.random()
    if device.role == "access-switch" and iface.role == "access":
        if draw < 0.1:
            iface.admin_up, iface.oper = False, "down"
        elif draw < 0.7:
            iface.oper = "up"
            iface.alias = ACCESS_ALIASES[rng.randrange(len(ACCESS_ALIASES))]
    elif device.role == "datacenter" and iface.role == "access" and draw < 0.5:
        iface.oper = "up"
        iface.alias = f"hv-{device.hostname[-1]}{iface.if_index % 100:02d} (Proxmox)"
    elif draw < 0.05:
        iface.admin_up = False


def _add_logical_units(device: Device) -> None:
    """Junos lists ``<port>.0`` beside every cabled port (ifType propVirtual, after the ports)."""
    next_index = 1000
    units = []
    for iface in device.interfaces:
        if iface.port and iface.peer is not None:
            units.append(
                Interface(
                    if_index=next_index,
                    descr=f"{iface.descr}.0",
                    name=f"{iface.name}.0",
                    if_type=PROP_VIRTUAL,
                    speed_mbps=iface.speed_mbps,
                    mtu=1500,
                    role="unit",
                    port=False,
                    mac=iface.mac,
                    oper="up" if iface.oper != "down" else "down",
                    in_rate=iface.in_rate,
                    out_rate=iface.out_rate,
                    in_octets=iface.in_octets // 2,
                    out_octets=iface.out_octets // 2,
                    last_change=iface.last_change,
                    logical_of=iface,
                )
            )
            next_index += 1
    device.interfaces = sorted(device.interfaces + units, key=lambda i: i.if_index)


def _check_unique(city: City) -> None:
    for attribute in ("serial", "mac"):
        values = [getattr(d, attribute) for d in city.devices]
        if len(set(values)) != len(values):
            raise LabError(f"city: two devices drew the same {attribute}; change a hostname seed")


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


def _counter(oid: str, kind: SnmpType, initial: int, rate: float) -> Line:
    """A counter that advances by ``rate`` per second (32-bit ones wrap like the real thing)."""
    if rate <= 0:
        return SnmpRecord(oid, kind, initial % (2**32) if kind is SnmpType.COUNTER32 else initial)
    if kind is SnmpType.COUNTER32:
        params = (("initial", initial % 2**32), ("rate", rate), ("max", 2**32 - 1), ("wrap", 1))
        return Varied(oid, kind, "numeric", params)
    return Varied(oid, kind, "numeric", (("initial", initial), ("rate", rate)))


def _oper_status(oid: str, state: str) -> Line:
    if state == "flapping":
        # numeric: v = sin(t * rate) * scale + offset + min, clamped to [min, max]: 2 (down) for
        # the first half period after the agent starts, then 1 (up), and so on.
        rate = round(2 * math.pi / FLAP_PERIOD_S, 6)
        params = (("function", "sin"), ("rate", rate), ("scale", 1000), ("offset", 1.5), ("min", 1), ("max", 2))
        return Varied(oid, SnmpType.INTEGER, "numeric", params)
    return SnmpRecord(oid, SnmpType.INTEGER, 1 if state == "up" else 2)


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
        lines += _interface_records(iface)
    lines += _ip_records(device)
    lines += _entity_records(device)
    fields = device.template_fields()
    lines += [SnmpRecord(oid, kind, template.format(**fields)) for oid, kind, template in platform.vendor_scalars]
    lines += _lldp_records(device)
    if platform.cdp_cache:
        lines += _cdp_records(device)
    return lines


def _interface_records(iface: Interface) -> list[Line]:
    i = iface.if_index
    moving = iface.oper in ("up", "flapping")
    bps = iface.speed_mbps * 1_000_000
    in_pkts, out_pkts = iface.in_octets // 700, iface.out_octets // 700
    in_pps, out_pps = (iface.in_rate // 700, iface.out_rate // 700) if moving else (0, 0)
    in_rate, out_rate = (iface.in_rate, iface.out_rate) if moving else (0, 0)
    lines: list[Line] = [
        SnmpRecord(f"{IF_ENTRY}.1.{i}", SnmpType.INTEGER, i),
        SnmpRecord(f"{IF_ENTRY}.2.{i}", SnmpType.OCTET_STRING, iface.descr),
        SnmpRecord(f"{IF_ENTRY}.3.{i}", SnmpType.INTEGER, iface.if_type),
        SnmpRecord(f"{IF_ENTRY}.4.{i}", SnmpType.INTEGER, iface.mtu),
        SnmpRecord(f"{IF_ENTRY}.5.{i}", SnmpType.GAUGE32, min(bps, 2**32 - 1)),
        SnmpRecord(f"{IF_ENTRY}.6.{i}", SnmpType.OCTET_STRING, iface.mac),
        SnmpRecord(f"{IF_ENTRY}.7.{i}", SnmpType.INTEGER, 1 if iface.admin_up else 2),
        _oper_status(f"{IF_ENTRY}.8.{i}", iface.oper),
        SnmpRecord(f"{IF_ENTRY}.9.{i}", SnmpType.TIMETICKS, iface.last_change),
        _counter(f"{IF_ENTRY}.10.{i}", SnmpType.COUNTER32, iface.in_octets, in_rate),
        _counter(f"{IF_ENTRY}.11.{i}", SnmpType.COUNTER32, in_pkts, in_pps),
        _counter(f"{IF_ENTRY}.13.{i}", SnmpType.COUNTER32, iface.in_discards, iface.discards_rate),
        _counter(f"{IF_ENTRY}.14.{i}", SnmpType.COUNTER32, iface.in_errors, iface.errors_rate),
        _counter(f"{IF_ENTRY}.16.{i}", SnmpType.COUNTER32, iface.out_octets, out_rate),
        _counter(f"{IF_ENTRY}.17.{i}", SnmpType.COUNTER32, out_pkts, out_pps),
        SnmpRecord(f"{IF_ENTRY}.19.{i}", SnmpType.COUNTER32, 0),
        SnmpRecord(f"{IF_ENTRY}.20.{i}", SnmpType.COUNTER32, 0),
        SnmpRecord(f"{IFX_ENTRY}.1.{i}", SnmpType.OCTET_STRING, iface.name),
        _counter(f"{IFX_ENTRY}.6.{i}", SnmpType.COUNTER64, iface.in_octets, in_rate),
        _counter(f"{IFX_ENTRY}.7.{i}", SnmpType.COUNTER64, in_pkts, in_pps),
        _counter(f"{IFX_ENTRY}.10.{i}", SnmpType.COUNTER64, iface.out_octets, out_rate),
        _counter(f"{IFX_ENTRY}.11.{i}", SnmpType.COUNTER64, out_pkts, out_pps),
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
    devices = []
    for d in city.devices:
        snmp: dict[str, Any] = {"version": "3", **d.v3} if d.v3 else {"version": "2c", "community": d.community}
        devices.append(
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
    return {"generator": "infra_mgr.lab.city", "format": 1, "devices": devices, "links": links, "faults": faults}


STUB = "1.3.6.1.2.1.1.1.0|4|infra-mgr city: registers a community; never served\n"


def write_city(out_dir: Path, yaml_path: Path = EXAMPLE_YAML, city: City | None = None) -> dict[str, Any]:
    """Generate the recordings and expected.json into ``out_dir`` (``data/`` + ``expected.json``);
    stale recordings from an earlier city are removed. Returns the expected data."""
    city = city or build_city(yaml_path)
    data_dir = out_dir / "data"
    wanted: dict[Path, str] = {}
    for position, device in enumerate(served(city)):
        wanted[data_dir / recording_path(device, position)] = recording_text(device_records(device))
        if device.community:
            wanted[data_dir / f"{device.community}.snmprec"] = STUB
    if data_dir.exists():
        for old in data_dir.rglob("*.snmprec"):
            if old not in wanted:
                old.unlink()
    for path, text in wanted.items():
        _write_if_changed(path, text)
    expected = expected_data(city)
    _write_if_changed(out_dir / EXPECTED_FILE, json.dumps(expected, ensure_ascii=False, indent=1) + "\n")
    return expected


# --- the lab peer -------------------------------------------------------------------------------


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pick_port(hosts: Sequence[str], prefer_standard: bool = True) -> int:
    """One UDP port free on every city address: 161 when allowed and free, else a random one."""
    if prefer_standard and all(_bindable(h, STANDARD_PORT) for h in hosts):
        return STANDARD_PORT
    for _ in range(50):
        port = free_port(hosts[0], "udp")
        if all(_bindable(h, port) for h in hosts):
            return port
    raise LabError("city: no UDP port is free on every city address")


def _udp_inodes(wanted: set[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """Inode of the socket bound to each wanted (host, port), read from /proc/net/udp once."""
    keys = {f"{socket.inet_aton(h)[::-1].hex().upper()}:{p:04X}": (h, p) for h, p in wanted}
    found: dict[tuple[str, int], str] = {}
    with contextlib.suppress(OSError), open("/proc/net/udp") as table:
        next(table)
        for line in table:
            cols = line.split()
            if cols[1] in keys:
                found[keys[cols[1]]] = cols[9]
    return found


def _owns_all(pids: Iterable[int], endpoints: set[tuple[str, int]]) -> bool:
    """Whether the processes ``pids`` together hold the sockets of every endpoint (snmpsim logs
    success on bind failure, so a port taken by someone else would otherwise look ready)."""
    inodes = _udp_inodes(endpoints)
    if len(inodes) != len(endpoints):
        return False
    held = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    held.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return all(f"socket:[{inode}]" in held for inode in inodes.values())


def city_spec(
    lab_dir: Path,
    *,
    yaml_path: Path = EXAMPLE_YAML,
    port: int | None = None,
    prefer_standard_port: bool = True,
    name: str = "city",
    log_level: str = "error",
    workers: int | None = None,
) -> PeerSpec:
    """The city: every device on its own loopback address, same port, served by ``workers``
    snmpsim processes (default :func:`default_workers`) under one ``serve`` supervisor."""
    from infra_mgr.lab.peers import SYS_NAME, snmp_get, snmpsim_program

    snmpsim_program()  # PeerUnavailable when snmpsim is not installed
    root = Path(lab_dir).absolute() / name
    data_dir, cache_dir, stats_dir = root / "data", root / "cache", root / "stats"
    city = build_city(yaml_path)
    devices = served(city)
    v3_devices = [d for d in devices if d.v3]
    if len(v3_devices) > 1:
        raise LabError("city: one SNMPv3-only device at most (they share the engine)")
    hosts = [d.address for d in city.devices]
    chosen = port if port is not None else pick_port(hosts, prefer_standard=prefer_standard_port)
    argv = [sys.executable, "-m", "infra_mgr.lab.city", "serve", f"--workers={workers or default_workers()}"]
    argv += [f"--stats-dir={stats_dir}", f"--cache-dir={cache_dir}", f"--log-level={log_level}"]
    engine_id = v3_devices[0].engine_id.hex() if v3_devices else "auto"
    argv += [f"--v3-engine-id={engine_id}"]
    if v3_devices:
        v3 = v3_devices[0].v3 or {}
        argv += [f"--v3-user={v3['user']}", f"--v3-auth-key={v3['auth_key']}", f"--v3-auth-proto={v3['auth_proto']}"]
        argv += [f"--v3-priv-key={v3['priv_key']}", f"--v3-priv-proto={v3['priv_proto']}"]
    argv += [f"--data-dir={data_dir}"]
    argv += [f"--agent-udpv4-endpoint={d.address}:{chosen}" for d in devices]
    agents = [
        {"name": d.hostname, "host": d.address, "port": chosen, "community": d.community}
        for d in devices
        if d.community
    ]
    liar = next((d for d in city.devices if d.served_by == "liar"), None)
    endpoints = {(d.address, chosen) for d in devices}
    answered: set[str] = set()

    def prepare() -> None:
        write_city(root, yaml_path, city)
        cache_dir.mkdir(parents=True, exist_ok=True)

    def ready(pid: int) -> bool:
        from infra_mgr.lab.supervisor import process_tree

        if not _owns_all(process_tree(pid), endpoints):
            return False
        for agent in agents:
            if agent["name"] not in answered:
                got = snmp_get(agent["host"], chosen, agent["community"], SYS_NAME, timeout=0.5)[1]
                if got != agent["name"].encode():
                    raise LabError(f"city: {agent['host']} answered as {got!r}, not {agent['name']}")
                answered.add(agent["name"])
        return True

    info: dict[str, Any] = {
        "port": chosen,
        "expected": str(root / EXPECTED_FILE),
        "data_dir": str(data_dir),
        "stats_dir": str(stats_dir),
        "workers": workers or default_workers(),
        "devices": len(city.devices),
        "agents": agents,
        "v3": {"host": v3_devices[0].address, "port": chosen, **(v3_devices[0].v3 or {})} if v3_devices else None,
        "liar": {"host": liar.address, "port": chosen, "community": liar.community} if liar else None,
    }
    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        env={"SNMPSIM_ALLOW_ROOT": "true"},
        cwd=root,
        ports={"snmp": chosen},
        addresses=[f"{d.address}:{chosen}/udp" for d in devices],
        info=info,
        prepare=prepare,
        ready_timeout=90.0,
    )


@dataclass(frozen=True)
class RunningCity:
    """A started city as tests and tools use it: expected.json's data plus the shared UDP port."""

    expected: dict[str, Any]
    port: int
    expected_path: Path
    liar_running: bool = False

    @classmethod
    def from_record(cls, record: PeerRecord, liar_running: bool = False) -> RunningCity:
        path = Path(record.info["expected"])
        return cls(json.loads(path.read_text(encoding="utf-8")), int(record.info["port"]), path, liar_running)

    @property
    def devices(self) -> list[dict[str, Any]]:
        return list(self.expected["devices"])

    @property
    def links(self) -> list[dict[str, Any]]:
        return list(self.expected["links"])

    def device(self, hostname: str) -> dict[str, Any]:
        for device in self.expected["devices"]:
            if device["hostname"] == hostname:
                return dict(device)
        raise KeyError(hostname)

    def with_fault(self, fault: str) -> dict[str, Any]:
        return next(d for d in self.expected["devices"] if d["fault"] == fault)

    def interface(self, hostname: str, name: str) -> dict[str, Any]:
        """One interface of a device by ifName (``"jed-b01-rtr", "Gi0/0/0"``)."""
        return next(i for i in self.device(hostname)["interfaces"] if i["name"] == name)

    def v2c_agents(self) -> list[tuple[str, str, str]]:
        """(hostname, address, community) of every device that answers SNMPv2c from snmpsim."""
        return [
            (d["hostname"], d["address"], d["snmp"]["community"])
            for d in self.expected["devices"]
            if d["served_by"] == "snmpsim" and d["snmp"]["version"] == "2c"
        ]


def liar_available() -> bool:
    """Whether the lying agent (another developer's ``infra_mgr.lab.liar``) is installed."""
    import importlib.util

    return importlib.util.find_spec("infra_mgr.lab.liar") is not None


def city_liar_spec(lab_dir: Path, *, name: str = "city-liar", city_name: str = "city") -> PeerSpec:
    """The broken-walks device: the liar agent bound to its city address and the city's port.
    Start it after the city (it reads the port from the city's peer record)."""
    from infra_mgr.lab.peers import SYS_NAME, snmp_get
    from infra_mgr.lab.supervisor import owns_socket

    if not liar_available():
        raise PeerUnavailable("city-liar: infra_mgr.lab.liar is not installed yet (the broken-walks device is silent)")
    record = Lab(lab_dir).record(city_name)
    if record is None or not record.info.get("liar"):
        raise LabError("city-liar: start the city first (infra-mgr lab up --only city)")
    host, port = record.info["liar"]["host"], int(record.info["liar"]["port"])
    device = next(d for d in RunningCity.from_record(record).devices if d["address"] == host)
    return PeerSpec(
        name=name,
        # It is the city's device (name, place, serial) and every walk of it loops, whatever the community.
        argv=[sys.executable, "-m", "infra_mgr.lab.liar", "--host", host, "--port", str(port),
              "--name", device["hostname"], "--location", device["sys_location"], "--serial", device["serial"],
              "--always", record.info["liar"]["community"]],
        ready=lambda pid: owns_socket(pid, "udp", host, port) and bool(snmp_get(host, port, "public", SYS_NAME)),
        cwd=Path(lab_dir).absolute(),
        ports={"snmp": port},
        addresses=[f"{host}:{port}/udp"],
        info={"host": host, "port": port, "community": record.info["liar"]["community"]},
    )


# --- snmpsim with per-endpoint recordings (python -m infra_mgr.lab.city serve …) ----------------
#
# ``serve`` is a small supervisor: it splits the ``--agent-udpv4-endpoint``s round-robin over
# ``--workers`` snmpsim processes (default one per CPU, at least two: snmpsim is single-threaded
# and was the whole wall time of a city discovery), each started as
# ``serve --worker-positions=…`` in the same process group (the lab supervisor stops the city by
# group) and killed by the kernel if the supervisor dies (PR_SET_PDEATHSIG). A worker loads only
# the recordings of its own endpoints. Measured with the LibreNMS-way walk of
# ``bench/city_discovery.py`` (84,933 varbinds), before these hooks: 0.32 ms of snmpsim CPU per
# varbind; the profile was ~40 % snmpsim's data-file path (per GETBULK repetition it formats
# log messages it then drops, stat()s the file, builds a call context with pyasn1 objects, and
# re-parses the record line), ~4 % our endpoint selection, the rest pysnmp/pyasn1 message work.

UDP_DOMAIN = (1, 3, 6, 1, 6, 1, 1)  # pysnmp's UDP/IPv4 transport domain; endpoint i is UDP_DOMAIN + (i,)
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WORKER_PARENT_ENV = "INFRA_MGR_CITY_PARENT"  # a worker exits at once if its parent is already gone
STATS_FILE = "{pid}.json"


def default_workers() -> int:
    """One snmpsim process per CPU this process may run on, and never fewer than two."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(2, cpus)


@dataclass
class _Counters:
    """What a worker answered, dumped on SIGUSR1 so a benchmark can divide CPU by work."""

    requests: int = 0
    varbinds: int = 0


_COUNTERS = _Counters()


def _install_endpoint_selection(positions: Sequence[int] | None = None) -> None:
    """Make snmpsim 1.2 pick the recording by transport endpoint again, on pysnmp 7.

    snmpsim's responder classes override ``handleMgmtOperation``; pysnmp 7 calls
    ``handle_management_operation``, so snmpsim's context probing never runs. This wraps pysnmp's
    method: candidates are snmpsim's own (``datafile.probe_context``), restricted to those naming
    the request's transport endpoint; when none has a recording the request is dropped (a real
    agent ignores a community it does not know). The answer depends only on the endpoint, the
    client address and the context, so it is computed once per such tuple (probing cost ~4 % of
    the agent's CPU when done per request). ``positions`` maps a worker's local endpoint number
    (snmpsim numbers its own endpoints from 0) to the city-wide one that names the recording.
    It also counts requests and response varbinds (:func:`city_counters`).
    """
    from pysnmp.entity.rfc3413 import cmdrsp
    from pysnmp.error import PySnmpError
    from snmpsim import datafile
    from snmpsim.commands import responder

    chosen: dict[tuple[Any, ...], bytes | None] = {}

    def probe(self: Any, engine: Any, ctx: dict[str, Any]) -> bytes | None:
        domain = tuple(ctx["transportDomain"])
        if positions is not None and domain[:-1] == UDP_DOMAIN:
            domain = UDP_DOMAIN + (positions[domain[-1]],)
        domain_text = ".".join(str(x) for x in domain)
        context_engine_id = ctx["contextEngineId"]
        label = datafile.SELF_LABEL if context_engine_id == engine.snmpEngineID else context_engine_id.prettyPrint()
        context_name = ctx["contextName"].prettyPrint()
        for candidate in datafile.probe_context(domain, ctx["transportAddress"], label, context_name):
            if domain_text not in candidate.decode(errors="replace").split("/"):
                continue
            key = hashlib.md5(candidate).hexdigest().encode() if len(candidate) > 32 else candidate
            try:
                self.snmpContext.get_mib_instrum(key)
            except PySnmpError:
                continue
            return key
        return None

    def select(self: Any, engine: Any) -> bytes | None:
        ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        memo = (
            tuple(ctx["transportDomain"]),
            ctx["transportAddress"][0],
            bytes(ctx["contextEngineId"]),
            bytes(ctx["contextName"]),
        )
        try:
            return chosen[memo]
        except KeyError:
            pass
        if len(chosen) > 10_000:  # v3 context engine IDs come from the wire: keep the memo bounded
            chosen.clear()
        key = chosen[memo] = probe(self, engine, ctx)
        return key

    def wrap(base: type) -> Any:
        def handle_management_operation(self: Any, engine: Any, state_ref: Any, context_name: Any, pdu: Any) -> None:
            _COUNTERS.requests += 1
            key = select(self, engine)
            if key is None:
                self.release_state_information(state_ref)
                return
            base.handle_management_operation(self, engine, state_ref, key, pdu)

        return handle_management_operation

    def send_varbinds(self: Any, engine: Any, state_ref: Any, status: Any, index: Any, var_binds: Any) -> None:
        _COUNTERS.varbinds += len(var_binds)
        cmdrsp.CommandResponderBase.send_varbinds(self, engine, state_ref, status, index, var_binds)

    pairs = (
        (responder.GetCommandResponder, cmdrsp.GetCommandResponder),
        (responder.SetCommandResponder, cmdrsp.SetCommandResponder),
        (responder.NextCommandResponder, cmdrsp.NextCommandResponder),
        (responder.BulkCommandResponder, cmdrsp.BulkCommandResponder),
    )
    for ours, base in pairs:
        if "handle_management_operation" in vars(ours) or "send_varbinds" in vars(ours):
            raise RuntimeError(f"{ours.__name__} already defines handle_management_operation: re-check this shim")
        ours.handle_management_operation = wrap(base)
        ours.send_varbinds = send_varbinds


class _Unsupported(Exception):
    """A recording the in-memory table does not model (subtree lines, unsorted): snmpsim serves it."""


class _Recording:
    """One ``.snmprec`` held in memory, answering exactly as snmpsim's ``DataFile`` does.

    snmpsim's own path, per GETBULK *repetition* (25 per request), stat()s the text file, formats
    request and response log lines at any log level, builds a call context holding new pyasn1
    objects, looks the OID up in a dbm index, seeks and re-parses the text line and rebuilds the
    value. Here: a sorted list of OID tuples and ``bisect``; a line without a variation module is
    evaluated by snmpsim once and its (oid, value) reused; a line with one (``numeric``) goes
    through snmpsim's own ``evaluate_value`` on every read with the context keys snmpsim gives it,
    so moving values, faults and variation semantics are snmpsim's. What mirrors
    ``DataFile.process_var_binds``: GET of an absent OID answers noSuchInstance (unless the next
    line is varied: that line is asked, as snmpsim does), GETNEXT answers the next line, the end
    answers endOfMibView, a variation module answering endOfMib skips to the next line, and an
    evaluation error answers the error status. The file is re-read when its mtime changes (checked
    at most once a second; snmpsim checks on every call).
    """

    RECHECK_S = 1.0

    def __init__(self, path: str, parser: Any, modules: Any) -> None:
        self.path, self.parser, self.modules = path, parser, modules
        self._load()

    def _load(self) -> None:
        import time

        self.mtime = os.stat(self.path)[8]
        self.checked = time.monotonic()
        keys: list[tuple[int, ...]] = []
        entries: list[tuple[Any, str, str]] = []
        with self.parser.open(self.path) as text:
            for line in text:
                stripped = line.strip()
                if not stripped or stripped.startswith(b"#"):
                    continue
                oid_text, tag, value = self.parser.grammar.parse(line)
                if tag.startswith(":"):
                    raise _Unsupported(f"{self.path}: subtree record {oid_text}")
                oid = self.parser.evaluate_oid(oid_text)
                key = tuple(oid)
                if keys and key <= keys[-1]:
                    raise _Unsupported(f"{self.path}: not in OID order at {oid_text}")
                keys.append(key)
                entries.append((oid, tag, value))
        self.keys, self.entries = keys, entries
        self.static: dict[int, tuple[Any, Any]] = {}

    def fresh(self) -> None:
        """Re-read the file if it changed (snmpsim serves an edited recording without a restart)."""
        import time

        now = time.monotonic()
        if now - self.checked >= self.RECHECK_S:
            self.checked = now
            if os.stat(self.path)[8] != self.mtime:
                self._load()

    def _evaluate(
        self, asked: Any, oid: Any, tag: str, text: str, context: dict[str, Any], error_status: Any
    ) -> tuple[Any, Any]:
        """snmpsim's evaluation of one line; any error answers the error status, as in snmpsim."""
        from pysnmp.smi.error import MibOperationError
        from snmpsim import log
        from snmpsim.error import NoDataNotification

        try:
            got_oid, _, got = self.parser.evaluate_value(oid, tag, text, **context)
        except (NoDataNotification, MibOperationError):
            raise
        except Exception as exc:
            log.error(f"data error at {self.path} for {asked}: {exc}")
            return asked, error_status
        return got_oid, got

    def answer(self, oid: Any, value: Any, next_flag: bool, context: dict[str, Any]) -> tuple[Any, Any]:
        """The (oid, value) snmpsim would answer for one requested varbind."""
        from bisect import bisect_left

        from pysnmp.smi import exval

        error_status = exval.endOfMib if next_flag else exval.noSuchInstance
        key = tuple(oid)
        i = bisect_left(self.keys, key)
        exact = i < len(self.keys) and self.keys[i] == key
        if exact and next_flag:
            i += 1
        while i < len(self.entries):
            line_oid, tag, text = self.entries[i]
            varied = ":" in tag
            if not varied:
                if not next_flag and not exact:
                    return oid, error_status
                cached = self.static.get(i)
                if cached is None:
                    context = dict(context, nextFlag=True, exactMatch=True, setFlag=False)
                    got = self._evaluate(oid, line_oid, tag, text, context, error_status)
                    if got[1] is error_status:
                        return got
                    cached = self.static[i] = got
                return cached
            call = dict(
                context,
                origOid=oid,
                origValue=value,
                dataFile=self.path,
                subtreeFlag=False,
                exactMatch=exact,
                errorStatus=error_status,
                variationModules=self.modules,
            )
            got_oid, got = self._evaluate(oid, line_oid, tag, text, call, error_status)
            if got is exval.endOfMib:  # the module declines this line: snmpsim moves on
                if next_flag:
                    exact, i = True, i + 1
                    continue
                if exact:
                    break
                exact = True  # snmpsim asks a GET's line once more as an exact match
                continue
            return got_oid, got
        return oid, error_status


def _fast_instrum_class() -> type:
    """snmpsim's per-recording instrumentation controller, answering reads from :class:`_Recording`.

    Installed as ``controller.MIB_CONTROLLERS["text"]`` (how snmpsim picks the class for a data
    file). Writes, and any recording the table does not model, go to snmpsim's own controller.
    The call context is built once per request (a GETBULK asks 25 times) with the keys snmpsim's
    ``MibInstrumController._get_call_context`` gives variation modules.
    """
    from pysnmp.carrier.asyncio.dgram import udp, udp6
    from pysnmp.proto import rfc1902
    from snmpsim import controller, log

    domains: dict[tuple[int, ...], Any] = {}

    class FastInstrumController(controller.MibInstrumController):  # type: ignore[misc]
        def __init__(self, data_file: Any) -> None:
            super().__init__(data_file)
            self._last: tuple[Any, dict[str, Any]] | None = None
            try:
                self._table: _Recording | None = _Recording(
                    data_file._text_file, data_file._text_parser, data_file._variation_modules
                )
            except _Unsupported as exc:
                log.info(f"served by snmpsim's own index: {exc}")
                self._table = None

        def _context(self, context: dict[str, Any]) -> dict[str, Any]:
            engine = context["snmpEngine"]
            ctx = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            if self._last is not None and self._last[0] is ctx:
                return self._last[1]
            domain = tuple(ctx["transportDomain"])
            if domain not in domains:
                domains[domain] = rfc1902.ObjectIdentifier(domain)
            address = ctx["transportAddress"]
            protocol = (
                "udpv4" if isinstance(address, udp.UdpTransportAddress)
                else "udpv6" if isinstance(address, udp6.Udp6TransportAddress) else "unknown"
            )
            built = {
                "snmpEngine": engine,
                "transportDomain": domains[domain],
                "transportAddress": address,
                "transportProtocol": protocol,
                "securityModel": ctx["securityModel"],
                "securityName": ctx["securityName"],
                "securityLevel": ctx["securityLevel"],
                "contextEngineId": ctx["contextEngineId"],
                "contextName": ctx["contextName"],
                "pduType": ctx["pdu"].__class__.__name__,
                "setFlag": False,
            }
            self._last = (ctx, built)  # holding ctx keeps its id from being reused by a later request
            return built

        def _read(self, var_binds: Sequence[Any], next_flag: bool, context: dict[str, Any]) -> list[tuple[Any, Any]]:
            table = self._table
            assert table is not None
            table.fresh()
            base = dict(self._context(context), nextFlag=next_flag, varsTotal=len(var_binds))
            answers = []
            for remaining, (oid, value) in enumerate(var_binds, start=1):
                base["varsRemaining"] = len(var_binds) - remaining
                answers.append(table.answer(oid, value, next_flag, base))
            return answers

        def read_variables(self, *var_binds: Any, **context: Any) -> Any:
            if self._table is None:
                return super().read_variables(*var_binds, **context)
            return self._read(var_binds, False, context)

        def read_next_variables(self, *var_binds: Any, **context: Any) -> Any:
            if self._table is None:
                return super().read_next_variables(*var_binds, **context)
            return self._read(var_binds, True, context)

    return FastInstrumController


def _install_fast_recordings(positions: Sequence[int] | None) -> None:
    """Serve reads from memory, and load only this worker's recordings.

    * ``controller.MIB_CONTROLLERS["text"]`` becomes :func:`_fast_instrum_class`'s controller.
    * ``DataFile.index_text`` (the dbm index snmpsim builds or checks for every file at start-up)
      is skipped: reads no longer use it, and snmpsim still builds it on first use if a SET comes.
    * ``datafile.get_data_files`` drops recordings named after another worker's endpoints
      (``…/1.3.6.1.6.1.1.<i>.snmprec``); community stubs and other files are kept.
    """
    from snmpsim import controller, datafile

    controller.MIB_CONTROLLERS[datafile.DataFile.layout] = _fast_instrum_class()
    datafile.DataFile.index_text = lambda self, *args, **kwargs: self
    if positions is None:
        return
    mine = set(positions)
    prefix = ".".join(map(str, UDP_DOMAIN)) + "."
    listed = datafile.get_data_files

    def get_data_files(tgt_dir: str, top_len: int | None = None) -> list[tuple[str, Any, str]]:
        kept = []
        for entry in listed(tgt_dir, top_len):
            last = entry[2].rsplit("/", 1)[-1]
            if last.startswith(prefix) and last[len(prefix):].isdigit() and int(last[len(prefix):]) not in mine:
                continue
            kept.append(entry)
        return kept

    datafile.get_data_files = get_data_files


def _dump_counters(stats_dir: Path) -> None:
    """Write this worker's counters to ``<stats_dir>/<pid>.json`` (atomically)."""
    stats_dir.mkdir(parents=True, exist_ok=True)
    path = stats_dir / STATS_FILE.format(pid=os.getpid())
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **_COUNTERS.__dict__}))
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this worker when the ``serve`` supervisor dies, however it dies."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    expected = os.environ.get(WORKER_PARENT_ENV)
    if expected and os.getppid() != int(expected):  # the parent died before prctl took effect
        os._exit(1)


def _run_worker(snmpsim_args: Sequence[str], positions: list[int] | None, stats_dir: Path | None) -> int:
    """One snmpsim responder with our hooks (a worker, or the only process with ``--workers=1``)."""
    import signal

    from snmpsim.commands import responder

    if positions is not None:
        _die_with_parent()
    _install_endpoint_selection(positions)
    _install_fast_recordings(positions)
    if stats_dir is not None:
        signal.signal(signal.SIGUSR1, lambda *_: _dump_counters(stats_dir))
    sys.argv = ["snmpsim-command-responder", *snmpsim_args]
    return int(responder.main() or 0)


def _supervise(children: list[Any]) -> int:
    """Wait on the workers; a stop signal is passed on, and one worker dying stops the others
    (a city missing half its devices must fail loudly, not linger)."""
    import signal

    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)
        signal.alarm(5)

    def kill(*_: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)
    signal.signal(signal.SIGALRM, kill)
    signal.signal(signal.SIGUSR1, forward)
    live = {child.pid for child in children}
    code = 0
    while live:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        live.discard(pid)
        if not stopping:
            code = os.waitstatus_to_exitcode(status) or 1
            print(f"city: worker {pid} exited ({code}); stopping the others", file=sys.stderr, flush=True)
            stop()
    return code


def _split_args(args: Sequence[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """(our options, snmpsim options without endpoints, the UDP/IPv4 endpoints in order)."""
    ours: dict[str, str] = {}
    rest: list[str] = []
    endpoints: list[str] = []
    items = list(args)
    while items:
        item = items.pop(0)
        name, eq, value = item.partition("=")
        if name in ("--workers", "--stats-dir", "--worker-positions", "--agent-udpv4-endpoint"):
            if not eq:
                if not items:
                    raise SystemExit(f"serve: {name} needs a value")
                value = items.pop(0)
            if name == "--agent-udpv4-endpoint":
                endpoints.append(value)
            else:
                ours[name] = value
        else:
            rest.append(item)
    return ours, rest, endpoints


def serve(args: Sequence[str]) -> int:
    """Serve the city: ``--workers=N`` snmpsim processes (default :func:`default_workers`), each
    with a round-robin share of the ``--agent-udpv4-endpoint``s; ``--stats-dir=D`` makes each
    worker write its request/varbind counters to ``D/<pid>.json`` on SIGUSR1; every other option
    goes to snmpsim. ``--workers=1`` runs snmpsim in this process, as before."""
    import subprocess

    ours, rest, endpoints = _split_args(args)
    stats_dir = Path(ours["--stats-dir"]) if "--stats-dir" in ours else None
    if "--worker-positions" in ours:
        positions = [int(p) for p in ours["--worker-positions"].split(",") if p]
        return _run_worker([*rest, *(f"--agent-udpv4-endpoint={e}" for e in endpoints)], positions, stats_dir)
    workers = max(1, min(int(ours.get("--workers") or default_workers()), len(endpoints) or 1))
    if workers == 1:
        return _run_worker([*rest, *(f"--agent-udpv4-endpoint={e}" for e in endpoints)], None, stats_dir)
    children = []
    env = {**os.environ, WORKER_PARENT_ENV: str(os.getpid())}
    for worker in range(workers):
        positions = list(range(worker, len(endpoints), workers))
        argv = [sys.executable, "-m", "infra_mgr.lab.city", "serve"]
        argv.append(f"--worker-positions={','.join(map(str, positions))}")
        if stats_dir is not None:
            argv.append(f"--stats-dir={stats_dir}")
        argv += [*rest, *(f"--agent-udpv4-endpoint={endpoints[p]}" for p in positions)]
        children.append(subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL))  # same process group
    return _supervise(children)


def city_pids(record: PeerRecord) -> list[int]:
    """The city's live processes: the ``serve`` supervisor and its snmpsim workers."""
    from infra_mgr.lab.supervisor import process_tree

    return process_tree(record.pid)


def city_counters(record: PeerRecord, timeout: float = 5.0) -> dict[str, int]:
    """Requests and varbinds answered so far, summed over the city's workers (SIGUSR1 each, then
    read what they wrote). Needs a city started with ``stats_dir`` (``city_spec`` does)."""
    import signal
    import time

    stats_dir = Path(record.info["stats_dir"])
    workers = [pid for pid in city_pids(record) if pid != record.pid] or [record.pid]
    for pid in workers:
        with contextlib.suppress(FileNotFoundError):
            (stats_dir / STATS_FILE.format(pid=pid)).unlink()
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    totals = {"workers": len(workers), "requests": 0, "varbinds": 0}
    for pid in workers:
        path = stats_dir / STATS_FILE.format(pid=pid)
        while not path.exists():
            if time.monotonic() > deadline:
                raise LabError(f"city: worker {pid} wrote no counters to {path}")
            time.sleep(0.02)
        data = json.loads(path.read_text())
        totals["requests"] += int(data["requests"])
        totals["varbinds"] += int(data["varbinds"])
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra_mgr.lab.city generate OUT [--yaml Y]`` or ``serve <snmpsim options>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        return serve(args[1:])
    parser = argparse.ArgumentParser(prog="python -m infra_mgr.lab.city", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the recordings and expected.json into a directory")
    gen.add_argument("out_dir", type=Path)
    gen.add_argument("--yaml", type=Path, default=EXAMPLE_YAML)
    sub.add_parser("serve", help="run snmpsim with per-endpoint recordings (arguments go to snmpsim)")
    options = parser.parse_args(args)
    expected = write_city(options.out_dir, options.yaml)
    print(f"{len(expected['devices'])} devices, {len(expected['links'])} links -> {options.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
