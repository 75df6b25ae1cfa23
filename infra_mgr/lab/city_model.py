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
* **Faults** — one table, :data:`FAULTS`, just below, and beside it :data:`LINK_CONDITIONS`, the
  conditions of branch links the link audit must name (saturated, wrong speed, wrong neighbour,
  lossy agents). What the audit must conclude for every branch is :data:`LINK_AUDIT`.
* **Traffic** — every cabled port that is up carries traffic with a daily shape (Asia/Riyadh:
  busy 09:00–14:00, peak 11:30, about a tenth of the peak at night); the two ends of a cable
  mirror each other (one end's in is the other's out); healthy links peak at 2–35 % of their
  speed, a saturated one runs at 95 % (in) and 55 % (out) at all hours. Octet and packet counters
  are the closed-form integral of that rate from a fixed instant (:data:`TRAFFIC_EPOCH`), served
  by our ``linkrate`` variation module (``city_links``): the 64-bit ifHC* counters and the 32-bit
  ifTable ones (the same count modulo 2³², wrapping as real agents do). A packet is 700 octets.
* **Errors** — the errored port's ifInErrors/ifOutErrors are 2 % of its packets in each
  direction (ifInDiscards 0.5 %), following the same curve.
* **Flapping** — the flapping link's ifOperStatus is down for the first half of every
  :data:`FLAP_PERIOD_S` seconds of wall time and up for the second (both ends agree); 7 s divides
  no usual poll interval, so a poller every 60 s (or 5, 10, 15, 30 s) sees it change.
* **Run-time conditions** — ``infra-mgr lab link`` (``city_links.LinkControl``) changes a link's
  condition or a device's loss on the running city; the counters stay continuous across it.
* **SSH-only switches** — :data:`SSH_ONLY`: three extra Cisco access switches (``jed-bNN-sw2`` at
  127.2.<N>.3) with no SNMP agent, cabled to their branch switch, whose LLDP/CDP tables list them
  (so a crawl reaches them there); kept in ``City.ssh_only`` (not ``devices``) and in expected.json
  under ``ssh_only``. The SSH lab (``ssh_sim``) serves them.
* **Design file** — ``uplinks.yaml`` next to ``expected.json``: every branch uplink with its
  designed neighbour and speed (what ``infra-mgr uplinks import`` reads).
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


FLAP_PERIOD_S = 7.0  # the flapping link is down for half of this, then up for half
ERROR_SHARE = 0.02  # errored port: ifInErrors/ifOutErrors as a share of its packets in that direction
DISCARD_SHARE = 0.005  # errored port: ifInDiscards as a share of its incoming packets
SATURATED_SHARE = (0.95, 0.55)  # saturated link, branch end: (in, out) share of the speed, all day
WRONG_SPEED_MBPS = 100  # what the wrong-speed link negotiated
LOSS_PCT = 25  # share of SNMP requests the lossy branch's agents drop
TRAFFIC_EPOCH = 1704056400  # 2024-01-01 00:00 Asia/Riyadh: counters are integrals of the rate from here
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
    Fault("errors", "jed-b07-rtr", "wan",
          f"WAN port: ifInErrors/ifOutErrors {ERROR_SHARE:.0%} of its packets, ifInDiscards {DISCARD_SHARE:.1%}"),
    Fault("uplink_down", "jed-b12-rtr", "wan", "WAN uplink admin up, oper down at both ends; no LLDP/CDP across it"),
    Fault("flapping", "jed-b19-sw", "uplink", f"uplink to its router: oper status flips every {FLAP_PERIOD_S / 2:g} s"),
    Fault("unreachable", "jed-b23-sw", None, "listed and seen by its router's LLDP, but no agent on its address"),
    Fault("wrong_community", "jed-b34-rtr", None, f"answers only community {WRONG_COMMUNITY!r}; 'public' times out"),
    Fault("v3_only", "jed-b45-rtr", None, "SNMPv3 authPriv (SHA/AES) only; every v2c community times out"),
    Fault("broken_walks", "jed-b55-sw", None, f"served by the liar: community {LIAR_COMMUNITY!r} loops GETNEXT"),
)



@dataclass(frozen=True)
class LinkCondition:
    """A deliberate condition of a branch's link or agents, for the link audit to find. The devices
    keep ``fault`` None (they answer discovery normally); ``port_role`` names the link, None the agent."""

    name: str  # saturated | wrong_speed | wrong_neighbor | lossy
    host: str
    port_role: str | None
    description: str


LOSSY_DESCRIPTION = (
    f"agent drops ~{LOSS_PCT} % of the GETs pollers send (sysUpTime, IF-MIB objects), evenly (every 4th), never "
    "two in a row (a single retry always gets through); identity GETs and walks are answered"
)
LINK_CONDITIONS: tuple[LinkCondition, ...] = (
    LinkCondition("saturated", "jed-b05-rtr", "wan", "WAN link at 95 % in / 55 % out of its speed at all hours"),
    LinkCondition("saturated", "jed-b38-rtr", "wan", "WAN link at 95 % in / 55 % out of its speed at all hours"),
    LinkCondition("wrong_speed", "jed-b28-rtr", "wan",
                  f"WAN port named as Gigabit class, both ends running at {WRONG_SPEED_MBPS} Mb/s"),
    LinkCondition("wrong_neighbor", "jed-b31-rtr", "wan",
                  "WAN port cabled to the other HQ distribution switch than the design (branch_uplink)"),
    LinkCondition("lossy", "jed-b41-rtr", None, LOSSY_DESCRIPTION),
    LinkCondition("lossy", "jed-b41-sw", None, LOSSY_DESCRIPTION),
)

# What the branch link audit must conclude for every branch of the lab as built, given the design
# file (uplinks.yaml) imported and the default thresholds; a branch not listed is ("ok", ()).
# (state, reasons, why). Reasons are the audit's codes, in the audit's order.
LINK_AUDIT: dict[str, tuple[str, tuple[str, ...], str]] = {
    # saturated WANs: 5-minute utilisation ~95 % all day, so its p95 is >= 90 %
    "JED-B05": ("degraded", ("utilisation",), "WAN link runs at 95 % of its speed at all hours"),
    "JED-B38": ("degraded", ("utilisation",), "WAN link runs at 95 % of its speed at all hours"),
    # ifInErrors + ifOutErrors = 2 % of the packets (threshold 0.5 %)
    "JED-B07": ("degraded", ("errors",), "WAN port errors are 2 % of its packets"),
    # WAN oper down at both ends (admin up); no LLDP across it, so no neighbour reason
    "JED-B12": ("down", ("link_down",), "WAN uplink down at both ends"),
    # switch uplink changes every 3.5 s: while up the poller sees >= 3 transitions (flapping);
    # when the last poll caught it down, link_down instead (see "alternative")
    "JED-B19": ("degraded", ("flapping",), "switch uplink flaps every 3.5 s"),
    # the switch has no agent: its uplink is never polled (no_data); its address answers ICMP on
    # loopback but never SNMP (no_snmp)
    "JED-B23": ("degraded", ("no_data", "no_snmp"), "access switch has no SNMP agent"),
    # ifSpeed/ifHighSpeed 100 Mb/s on an 'ether1' port whose design speed is its model's
    "JED-B28": ("degraded", ("speed",), "WAN port running at 100 Mb/s"),
    # LLDP (and CDP) show jed-hq-dist2, the design file says jed-hq-dist1
    "JED-B31": ("degraded", ("neighbor",), "WAN port cabled to jed-hq-dist2, designed jed-hq-dist1"),
    # the router answers only a community nobody has stored (discovery says "no working
    # credential"): ping answers, SNMP never does, so its WAN uplink (from the design file) has no
    # data; its switch is never found (the crawl cannot pass the router), so it is not audited
    "JED-B34": ("degraded", ("no_data", "no_snmp"), "router answers only a community that is not stored"),
    # both agents drop 25 % (every 4th) of single GETs of sysUpTime (ICMP answers): loss >= 5 %, never unreachable
    "JED-B41": ("degraded", ("loss",), "agents drop 25 % of SNMP requests"),
    # the liar answers plain GETs from its own small switch (so it answers SNMP), but its interface
    # table has none of the city switch's ports: the design file's uplink line for it is skipped
    # and none is found from LLDP, so the switch has no uplink and nothing of it is watched
    "JED-B55": ("unknown", ("no_uplink",), "access switch's agent has none of its designed ports"),
}
# a branch whose state alternates with the phase the last poll caught: (state, reasons)
LINK_AUDIT_ALTERNATIVE: dict[str, tuple[str, tuple[str, ...]]] = {
    "JED-B19": ("down", ("link_down",)),
}

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
    design_mbps: int = 0  # the speed the port is built for (speed_mbps is what it runs at)
    in_share: float = 0.0  # peak traffic as a share of the running speed
    out_share: float = 0.0
    drawn_shares: tuple[float, float] = (0.0, 0.0)  # (in, out) as drawn, before any condition
    shape: str = "day"  # day | flat (saturated)
    in_octets: int = 0  # values at TRAFFIC_EPOCH
    out_octets: int = 0
    in_errors: int = 0
    in_discards: int = 0
    errored: bool = False  # errors and discards are a share of its packets
    anchor: tuple[float, dict[str, int]] | None = None  # run-time change: (when, counter values then)
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
    # branch switches that answer SSH only (no SNMP agent): not in ``devices`` or ``links``, so the
    # SNMP lab's expectations stay as they are; their branch switch's LLDP table lists them
    ssh_only: list[Device] = field(default_factory=list)
    ssh_only_links: list[Link] = field(default_factory=list)

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
        design_mbps=group.speed_mbps,
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
        design_mbps=extra.speed_mbps,
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


def _cabled_uplink(number: int, router: str) -> str:
    """The backbone switch a branch router is actually cabled to: the design, except a router with
    the ``wrong_neighbor`` condition, which sits on the design's twin (dist1 ↔ dist2, sw1 ↔ sw2)."""
    designed = branch_uplink(number)
    if any(c.name == "wrong_neighbor" and c.host == router for c in LINK_CONDITIONS):
        return designed[:-1] + ("2" if designed.endswith("1") else "1")
    return designed


def link_conditions_applied(city: City) -> None:
    """Apply :data:`LINK_CONDITIONS` that live on links (saturation, wrong speed) to the model."""
    names = {d.hostname: d for d in city.devices}
    for cond in LINK_CONDITIONS:
        device = names.get(cond.host)
        if device is None:
            raise LabError(f"link condition table: no device {cond.host!r} in this city")
        if cond.port_role is None:
            continue
        link = _fault_link(device, cond.port_role, city)
        if cond.name == "saturated":
            set_saturated(link, device)
        elif cond.name == "wrong_speed":
            for _, iface in (link.a, link.b):
                iface.speed_mbps = WRONG_SPEED_MBPS


def set_saturated(link: Link, device: Device) -> None:
    """Flat traffic near the speed, the busy direction into ``device`` (the branch end)."""
    here, there = (link.a[1], link.b[1]) if link.a[0] is device else (link.b[1], link.a[1])
    here.in_share, here.out_share = SATURATED_SHARE
    there.in_share, there.out_share = SATURATED_SHARE[1], SATURATED_SHARE[0]
    here.shape = there.shape = "flat"


def set_normal_traffic(link: Link) -> None:
    """Back to the drawn daily traffic on both ends of a link."""
    for _, iface in (link.a, link.b):
        iface.in_share, iface.out_share = iface.drawn_shares
        iface.shape = "day"


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
        upstream = named[_cabled_uplink(n, router.hostname)]
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
    _draw_traffic(city)
    link_conditions_applied(city)
    _add_ssh_only(city, by_code)
    settle_states(city)
    _check_unique(city)
    return city


# SSH-only access switches: (hostname, branch code, model); each hangs off its branch switch's last
# free access port, at 127.2.<N>.3. Branches chosen healthy (no fault, no link condition).
SSH_ONLY: tuple[tuple[str, str, str], ...] = (
    ("jed-b03-sw2", "JED-B03", "c2960x-24ps"),
    ("jed-b09-sw2", "JED-B09", "c2960x-24ps"),
    ("jed-b14-sw2", "JED-B14", "c2960x-24ps"),
)
ALIAS_SECOND_SWITCH = "وصلة إلى المبدل الإضافي"


def _add_ssh_only(city: City, by_code: dict[str, dict[str, Any]]) -> None:
    """Cable the SSH-only switches after traffic was drawn, so no other device's draws move; the
    branch switch's port becomes up with an alias, and LLDP (settle_states) lists the neighbour:
    LLDP is link-layer, so the branch switch's SNMP LLDP/CDP tables show the switch whatever it
    speaks (an SNMP crawl reaches it there), and its own CLI lists the branch switch."""
    for hostname, code, model_key in SSH_ONLY:
        if code not in by_code:
            continue
        n = _branch_number(code)
        parent = city.device(f"jed-b{n:02d}-sw")
        device = _new_device(hostname, by_code[code], "access-switch", model_key, f"127.2.{n}.3")
        device.served_by = None
        device.community = None
        free = [i for i in parent.interfaces if i.role == "access" and i.port and i.if_index not in parent.used]
        here = free[-1]
        there = device.take("uplink")
        there.peer = (parent, here)
        link = Link((parent, here), (device, there), "branch-lan")
        there.admin_up, there.oper, there.link_state = True, "up", "up"
        there.alias = ALIAS_SWITCH_UPLINK
        device.lldp = [(there, parent, here)]  # what its own CLI lists
        parent.used.add(here.if_index)
        here.peer = (device, there)
        here.admin_up, here.oper, here.link_state = True, "up", "up"
        here.alias = ALIAS_SECOND_SWITCH
        rng = device.rng
        for iface in device.interfaces:
            if iface.port and iface.peer is None:
                _unused_port(device, iface, rng)
        city.ssh_only.append(device)
        city.ssh_only_links.append(link)


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
            iface.errored = True
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


def _draw_traffic(city: City) -> None:
    """Traffic shares and counter values of every interface, drawn whatever its state (so a
    condition changed at run time never changes what another interface drew); the two ends of a
    cable then mirror each other: one end's in is the other end's out."""
    for link in city.links:
        for _, iface in (link.a, link.b):
            iface.link_state = link.state
            iface.oper = link.state
    for device in city.devices:
        rng = device.rng
        for iface in device.interfaces:
            if iface.port and iface.peer is None:
                _unused_port(device, iface, rng)
            share = (0.02, 0.35) if iface.peer else (0.0005, 0.03)
            iface.in_share = rng.uniform(*share)
            iface.out_share = rng.uniform(*share)
            iface.in_octets = rng.randrange(10**9, 10**13)
            iface.out_octets = rng.randrange(10**9, 10**13)
            iface.in_errors = rng.randrange(0, 40) if iface.port else 0
            iface.in_discards = rng.randrange(0, 400) if iface.port else 0
            iface.last_change = rng.randrange(device.uptime_ticks // 2, device.uptime_ticks)
    for link in city.links:
        a, b = link.a[1], link.b[1]
        b.in_share, b.out_share = a.out_share, a.in_share
    for device in city.devices:
        for iface in device.interfaces:
            iface.drawn_shares = (iface.in_share, iface.out_share)


def settle_states(city: City) -> None:
    """Oper status from the links, Junos logical units, and the LLDP neighbours of every device
    (a link that is down shows in neither end's LLDP table). Run again after a run-time change."""
    for link in city.links:
        for _, iface in (link.a, link.b):
            iface.link_state = link.state
            iface.oper = link.state
    for device in city.devices:
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
    device.interfaces = [i for i in device.interfaces if i.logical_of is None]
    for iface in device.interfaces:
        if iface.port and iface.peer is not None:
            units.append(
                Interface(
                    if_index=next_index,
                    descr=f"{iface.descr}.0",
                    name=f"{iface.name}.0",
                    if_type=PROP_VIRTUAL,
                    speed_mbps=iface.speed_mbps,
                    design_mbps=iface.design_mbps,
                    mtu=1500,
                    role="unit",
                    port=False,
                    mac=iface.mac,
                    oper="up" if iface.oper != "down" else "down",
                    in_share=iface.in_share,
                    out_share=iface.out_share,
                    shape=iface.shape,
                    in_octets=iface.in_octets // 2,
                    out_octets=iface.out_octets // 2,
                    last_change=iface.last_change,
                    logical_of=iface,
                )
            )
            next_index += 1
    device.interfaces = sorted(device.interfaces + units, key=lambda i: i.if_index)


def _check_unique(city: City) -> None:
    for attribute in ("serial", "mac", "address", "hostname"):
        values = [getattr(d, attribute) for d in (*city.devices, *city.ssh_only)]
        if len(set(values)) != len(values):
            raise LabError(f"city: two devices drew the same {attribute}; change a hostname seed")
