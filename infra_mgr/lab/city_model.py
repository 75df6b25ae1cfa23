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

This module is the model of the city (devices, links, faults); ``city_records`` writes its
recordings, ``city`` is the lab peer and ``city_snmpsim`` the fast snmpsim that serves it.
"""

from __future__ import annotations

import ipaddress
import random
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
from infra_mgr.lab.supervisor import LabError

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


def _prefix(site: dict[str, Any], role: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
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
