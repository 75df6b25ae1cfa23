"""A fleet of N switches of varied size, served over real SNMP like the city, for scale benchmarks.

The city (``city.py``) is one municipality's 134 designed devices; a scale run needs a thousand,
and not a thousand copies of one 52-port switch: a real estate is many small access switches and
a few big cores, and discovery's cost follows the interface count. :func:`build_fleet` draws a
deterministic fleet with that shape (see :data:`KINDS`: 8 to 500 interfaces), wired as a tree —
two cores, distribution switches on both cores, every other switch on one distribution switch —
with LLDP on both ends of every link, so a discovery seeded at the cores crawls all of it.

Serving reuses the city's machinery: recordings are written in the layout ``python -m
infra_mgr.lab.city serve`` reads (one file per transport endpoint under the community's md5) and
that command serves them, one snmpsim worker per core, every device on its own 127.x address.
"""

from __future__ import annotations

import hashlib
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra_mgr.lab.city import pick_port
from infra_mgr.lab.city_model import (
    ENT_PHYSICAL_ENTRY,
    IF_ENTRY,
    IF_NUMBER,
    IFX_ENTRY,
    LLDP_LOC,
    LLDP_LOC_PORT_ENTRY,
    LLDP_REM_ENTRY,
    LLDP_REM_MAN_ADDR_ENTRY,
    SYS,
)
from infra_mgr.lab.city_records import STUB, recording_text, transport_id
from infra_mgr.lab.city_snmpsim import default_workers
from infra_mgr.lab.snmprec import SnmpRecord, SnmpType
from infra_mgr.lab.supervisor import LabError, PeerSpec

COMMUNITY = "public"
SPEED_1G = 1_000_000_000
UINT32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Kind:
    """One kind of switch: its share of the fleet and its (front ports, uplink ports, SVIs) range."""

    role: str
    share: float
    ports: tuple[int, int]
    uplinks: int
    svis: tuple[int, int]
    model: str


# Shares of a city estate: most devices are small access switches, a few are big. Interfaces per
# device = ports + uplinks + SVIs + mgmt + loopback: 8 to ~500.
KINDS: tuple[Kind, ...] = (
    Kind("core", 0.002, (340, 380), 48, (40, 60), "C9606R"),
    Kind("distribution", 0.04, (192, 336), 8, (10, 40), "C9500-48Y4C"),
    Kind("stack", 0.06, (96, 176), 4, (4, 10), "C9300-48P-stack"),
    Kind("access48", 0.30, (48, 48), 4, (1, 4), "C9200-48P"),
    Kind("access24", 0.35, (24, 24), 2, (1, 3), "C9200-24P"),
    Kind("small", 0.248, (4, 8), 1, (1, 1), "C1000-8P"),
)


@dataclass
class Port:
    if_index: int
    name: str
    descr: str
    if_type: int
    speed_bps: int
    admin_up: bool
    oper_up: bool
    alias: str
    mac: bytes


@dataclass
class Switch:
    hostname: str
    address: str
    kind: Kind
    serial: str
    mac: bytes
    ports: list[Port] = field(default_factory=list)
    uplinks: list[Port] = field(default_factory=list)  # free ports to link to parents/children
    lldp: list[tuple[Port, Switch, Port]] = field(default_factory=list)  # (local, neighbour, remote)

    @property
    def sys_descr(self) -> str:
        return (f"Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version 17.9.4a, "
                f"RELEASE SOFTWARE (fc3) model {self.kind.model}")


@dataclass
class Fleet:
    switches: list[Switch]
    links: list[tuple[tuple[Switch, Port], tuple[Switch, Port]]]

    @property
    def interfaces(self) -> int:
        return sum(len(s.ports) for s in self.switches)


def address_of(i: int) -> str:
    """Device ``i``'s address: 127.20.0.1 … (250 per /24)."""
    return f"127.20.{i // 250}.{i % 250 + 1}"


def _counts(n: int) -> list[Kind]:
    """Kinds for ``n`` devices in :data:`KINDS`' shares (at least two cores and one distribution)."""
    kinds: list[Kind] = [KINDS[0]] * max(2, round(n * KINDS[0].share))
    kinds += [KINDS[1]] * max(1, round(n * KINDS[1].share))
    for kind in KINDS[2:-1]:
        kinds += [kind] * round(n * kind.share)
    kinds += [KINDS[-1]] * max(0, n - len(kinds))
    return kinds[:n]


def _switch(i: int, kind: Kind, rng: random.Random) -> Switch:
    address = address_of(i)
    mac = bytes([0x00, 0x1B, 0x2C, i >> 16 & 0xFF, i >> 8 & 0xFF, i & 0xFF])
    sw = Switch(f"scale-{kind.role}-{i:04d}", address, kind, f"FOC{i:08d}", mac)
    ports = rng.randint(*kind.ports)
    if_index = 0

    def add(name: str, descr: str, if_type: int, speed: int, alias: str, up: bool = True, admin: bool = True
            ) -> Port:
        nonlocal if_index
        if_index += 1
        port = Port(if_index, name, descr, if_type, speed, admin, up and admin, alias,
                    mac[:3] + bytes([if_index >> 8 & 0xFF, if_index & 0xFF, i & 0xFF]))
        sw.ports.append(port)
        return port

    for p in range(1, ports + 1):
        member, number = divmod(p - 1, 48)
        admin = rng.random() > 0.05
        add(f"Gi{member + 1}/0/{number + 1}", f"GigabitEthernet{member + 1}/0/{number + 1}", 6, SPEED_1G,
            rng.choice(("", "", "user port", "طابعة الطابق الأول", "AP ceiling")), rng.random() > 0.4, admin)
    for u in range(1, kind.uplinks + 1):
        sw.uplinks.append(add(f"Te1/1/{u}", f"TenGigabitEthernet1/1/{u}", 6, UINT32_MAX, "", False))
    for v in range(rng.randint(*kind.svis)):
        add(f"Vl{10 * (v + 1)}", f"Vlan{10 * (v + 1)}", 53, SPEED_1G, f"VLAN {10 * (v + 1)}")
    add("Gi0/0", "GigabitEthernet0/0", 6, SPEED_1G, "mgmt")
    add("Lo0", "Loopback0", 24, 0, "")
    return sw


def _connect(a: Switch, b: Switch, links: list[Any]) -> None:
    """An LLDP link from a free uplink of ``a`` to a free uplink of ``b`` (skipped when one has none)."""
    if not a.uplinks or not b.uplinks:
        return
    pa, pb = a.uplinks.pop(0), b.uplinks.pop(0)
    pa.oper_up = pb.oper_up = True
    pa.alias, pb.alias = f"to {b.hostname}", f"to {a.hostname}"
    a.lldp.append((pa, b, pb))
    b.lldp.append((pb, a, pa))
    links.append(((a, pa), (b, pb)))


def build_fleet(n: int, seed: int = 1) -> Fleet:
    """``n`` switches in :data:`KINDS`' shares, wired as a tree (deterministic for a seed)."""
    if n < 3:
        raise LabError("fleet: at least three devices (two cores and a distribution switch)")
    rng = random.Random(seed)
    switches = [_switch(i, kind, rng) for i, kind in enumerate(_counts(n))]
    cores = [s for s in switches if s.kind.role == "core"]
    dist = [s for s in switches if s.kind.role == "distribution"]
    links: list[Any] = []
    for d in dist:
        for c in cores[:2]:
            _connect(d, c, links)
    parents = dist + cores  # more access switches than distribution ports: cores take the rest
    for k, s in enumerate(x for x in switches if x.kind.role not in ("core", "distribution")):
        for offset in range(len(parents)):
            parent = parents[(k + offset) % len(parents)]
            if parent.uplinks:
                _connect(s, parent, links)
                break
        else:  # every parent port used: grow one more port on a distribution switch
            parent = dist[k % len(dist)]
            index = len(parent.ports) + 1
            port = Port(index, f"Te2/1/{index}", f"TenGigabitEthernet2/1/{index}", 6, UINT32_MAX, True, False, "",
                        parent.mac[:3] + bytes([index >> 8 & 0xFF, index & 0xFF, 0]))
            parent.ports.append(port)
            parent.uplinks.append(port)
            _connect(s, parent, links)
    return Fleet(switches, links)


def _addr_index(address: str) -> str:
    return f"1.4.{address}"  # ipV4(1), length 4, the address


def records(sw: Switch) -> list[SnmpRecord]:
    """Every variable of one switch (what discovery reads, and the counters it does not)."""
    t = SnmpType
    out = [
        SnmpRecord(f"{SYS}.1.0", t.OCTET_STRING, sw.sys_descr),
        SnmpRecord(f"{SYS}.2.0", t.OID, "1.3.6.1.4.1.9.1.2494"),
        SnmpRecord(f"{SYS}.3.0", t.TIMETICKS, 123_456_789),
        SnmpRecord(f"{SYS}.4.0", t.OCTET_STRING, "NOC <noc@city.example>"),
        SnmpRecord(f"{SYS}.5.0", t.OCTET_STRING, sw.hostname),
        SnmpRecord(f"{SYS}.6.0", t.OCTET_STRING, f"district {sw.address.split('.')[2]}"),
        SnmpRecord(f"{SYS}.7.0", t.INTEGER, 6),
        SnmpRecord(IF_NUMBER, t.INTEGER, len(sw.ports)),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.2.1", t.OCTET_STRING, f"Cisco {sw.kind.model} chassis"),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.5.1", t.INTEGER, 3),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.10.1", t.OCTET_STRING, "17.9.4a"),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.11.1", t.OCTET_STRING, sw.serial),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.13.1", t.OCTET_STRING, sw.kind.model),
        SnmpRecord(f"{LLDP_LOC}.1.0", t.INTEGER, 4),
        SnmpRecord(f"{LLDP_LOC}.2.0", t.OCTET_STRING, sw.mac),
        SnmpRecord(f"{LLDP_LOC}.3.0", t.OCTET_STRING, sw.hostname),
    ]
    for p in sw.ports:
        i = p.if_index
        out += [
            SnmpRecord(f"{IF_ENTRY}.1.{i}", t.INTEGER, i),
            SnmpRecord(f"{IF_ENTRY}.2.{i}", t.OCTET_STRING, p.descr),
            SnmpRecord(f"{IF_ENTRY}.3.{i}", t.INTEGER, p.if_type),
            SnmpRecord(f"{IF_ENTRY}.4.{i}", t.INTEGER, 1500),
            SnmpRecord(f"{IF_ENTRY}.5.{i}", t.GAUGE32, p.speed_bps),
            SnmpRecord(f"{IF_ENTRY}.6.{i}", t.OCTET_STRING, p.mac),
            SnmpRecord(f"{IF_ENTRY}.7.{i}", t.INTEGER, 1 if p.admin_up else 2),
            SnmpRecord(f"{IF_ENTRY}.8.{i}", t.INTEGER, 1 if p.oper_up else 2),
            SnmpRecord(f"{IF_ENTRY}.10.{i}", t.COUNTER32, 1_000 * i),
            SnmpRecord(f"{IF_ENTRY}.13.{i}", t.COUNTER32, 0),
            SnmpRecord(f"{IF_ENTRY}.14.{i}", t.COUNTER32, 0),
            SnmpRecord(f"{IF_ENTRY}.16.{i}", t.COUNTER32, 2_000 * i),
            SnmpRecord(f"{IF_ENTRY}.19.{i}", t.COUNTER32, 0),
            SnmpRecord(f"{IF_ENTRY}.20.{i}", t.COUNTER32, 0),
            SnmpRecord(f"{IFX_ENTRY}.1.{i}", t.OCTET_STRING, p.name),
            SnmpRecord(f"{IFX_ENTRY}.6.{i}", t.COUNTER64, 1_000 * i),
            SnmpRecord(f"{IFX_ENTRY}.10.{i}", t.COUNTER64, 2_000 * i),
            SnmpRecord(f"{IFX_ENTRY}.15.{i}", t.GAUGE32, 10_000 if p.speed_bps == UINT32_MAX else p.speed_bps // 10**6),
            SnmpRecord(f"{IFX_ENTRY}.18.{i}", t.OCTET_STRING, p.alias),
        ]
        if p.if_type == 6:
            out += [
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.2.{i}", t.INTEGER, 5),  # interfaceName
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.3.{i}", t.OCTET_STRING, p.name),
                SnmpRecord(f"{LLDP_LOC_PORT_ENTRY}.4.{i}", t.OCTET_STRING, p.descr),
            ]
    for rem, (local, other, remote) in enumerate(sw.lldp, start=1):
        index = f"0.{local.if_index}.{rem}"
        out += [
            SnmpRecord(f"{LLDP_REM_ENTRY}.4.{index}", t.INTEGER, 4),
            SnmpRecord(f"{LLDP_REM_ENTRY}.5.{index}", t.OCTET_STRING, other.mac),
            SnmpRecord(f"{LLDP_REM_ENTRY}.6.{index}", t.INTEGER, 5),
            SnmpRecord(f"{LLDP_REM_ENTRY}.7.{index}", t.OCTET_STRING, remote.name),
            SnmpRecord(f"{LLDP_REM_ENTRY}.8.{index}", t.OCTET_STRING, remote.descr),
            SnmpRecord(f"{LLDP_REM_ENTRY}.9.{index}", t.OCTET_STRING, other.hostname),
            SnmpRecord(f"{LLDP_REM_ENTRY}.10.{index}", t.OCTET_STRING, other.sys_descr),
            SnmpRecord(f"{LLDP_REM_MAN_ADDR_ENTRY}.3.{index}.{_addr_index(other.address)}", t.INTEGER, 2),
        ]
    return out


def write_fleet(fleet: Fleet, data_dir: Path) -> None:
    """Recordings in the city's layout: ``<md5(community)>/<transport id>.snmprec`` per endpoint,
    plus the community's stub file that makes snmpsim accept it."""
    folder = data_dir / hashlib.md5(COMMUNITY.encode()).hexdigest()  # snmpsim's naming, not security
    folder.mkdir(parents=True, exist_ok=True)
    (data_dir / f"{COMMUNITY}.snmprec").write_text(STUB, encoding="utf-8")
    for position, sw in enumerate(fleet.switches):
        (folder / f"{transport_id(position)}.snmprec").write_text(recording_text(records(sw)), encoding="utf-8")


def fleet_spec(lab_dir: Path, fleet: Fleet, *, name: str = "fleet", workers: int | None = None) -> PeerSpec:
    """The fleet served by ``python -m infra_mgr.lab.city serve``; ready when every device answers
    its sysName (which also makes each worker load every recording before anything is timed)."""
    from infra_mgr.lab.peers import SYS_NAME, snmp_get, snmpsim_program

    snmpsim_program()
    root = Path(lab_dir).absolute() / name
    data_dir, cache_dir, stats_dir = root / "data", root / "cache", root / "stats"
    hosts = [s.address for s in fleet.switches]
    port = pick_port(hosts, prefer_standard=False)
    count = workers or default_workers()
    argv = [sys.executable, "-m", "infra_mgr.lab.city", "serve", f"--workers={count}", f"--stats-dir={stats_dir}",
            f"--cache-dir={cache_dir}", "--log-level=error", "--v3-engine-id=auto", f"--data-dir={data_dir}"]
    argv += [f"--agent-udpv4-endpoint={h}:{port}" for h in hosts]
    answered: set[str] = set()

    def prepare() -> None:
        write_fleet(fleet, data_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)

    def ready(pid: int) -> bool:
        for sw in fleet.switches:
            if sw.hostname in answered:
                continue
            try:
                got = snmp_get(sw.address, port, COMMUNITY, SYS_NAME, timeout=2.0)[1]
            except (TimeoutError, OSError):
                return False
            if got != sw.hostname.encode():
                raise LabError(f"fleet: {sw.address} answered as {got!r}, not {sw.hostname}")
            answered.add(sw.hostname)
        return True

    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        env={"SNMPSIM_ALLOW_ROOT": "true"},
        cwd=root,
        ports={"snmp": port},
        addresses=[f"{h}:{port}/udp" for h in hosts],
        info={"port": port, "stats_dir": str(stats_dir), "workers": count, "devices": len(hosts)},
        prepare=prepare,
        ready_timeout=600.0,
    )
