"""The lab's peer kinds: each is a function ``(lab_dir) -> PeerSpec`` registered in ``PEER_KINDS``.

To add a kind (NUT upsd, a Modbus server, vcsim, fakepve, SSH devices), write one such builder:
find its program (raise :class:`PeerUnavailable` if missing), take free loopback ports, describe
argv/env/ready check, and add it to ``PEER_KINDS``. The supervisor does the rest.

snmpsim: how devices are addressed
----------------------------------
snmpsim 1.2 (lextudio) picks a recording by the v2c community / v3 context, which is the
recording's path relative to ``--data-dir`` without ``.snmprec``. Its documented selection by
transport endpoint (``<community>/1.3.6.1.6.1.1.<n>.snmprec``) does not work for v2c in 1.2.2
(tried here: the community's md5-hashed context name is what gets probed, so the plain recording
answers on every endpoint). What does work is several SNMP *engines* in one process, each with its
own ``--v3-engine-id auto --data-dir D --agent-udpv4-endpoint H:P`` group. So the layout is::

    <lab>/snmpsim/data/<device>/<community>.snmprec      e.g. jed-hq-core1/public.snmprec

and two modes share it:

* ``engine_per_device=True`` (default): one engine per device, bound to the device's own loopback
  address. A device answers only on its IP, with a realistic community (``public``), and has its
  own engine ID — what discovery sweeps and SNMPv3 need. Startup costs ~0.15 s of CPU per device
  (pysnmp compiles its MIB modules per engine): ~20 s for 130 devices.
* ``engine_per_device=False``: one engine for the whole data dir, all endpoints on it; the
  community ``<device>/<community>`` selects the device and every endpoint answers every device.
  ~1.6 s for 130 devices; good when the test addresses devices by community, not by IP.

Gotchas seen: as root snmpsim refuses to start unless ``SNMPSIM_ALLOW_ROOT=true``; when a UDP
bind fails (port taken) it still logs "Listening at …" and keeps running, so readiness checks that
the process really holds every socket; an unknown community gets no answer at all (a timeout, not
an error); the redis/sql variation modules log load errors at startup, which are harmless.

postgres
--------
Debian's PostgreSQL server binaries, one private cluster per lab: PostgreSQL refuses to run as
root, so as root the cluster runs as the ``postgres`` system user. Its data dir lives in
``<lab>/postgres/data`` when that user can reach it; otherwise (pytest's 0700 temp dirs) in a
``/tmp`` directory named after the lab that is removed when the peer stops. It listens on
127.0.0.1 only, with trust authentication for loopback (a lab, not a deployment) and fsync off
(lab data is disposable; this makes tests fast).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra_mgr.lab.snmprec import SnmpRecord, SnmpType, write_snmprec
from infra_mgr.lab.supervisor import (
    LabError,
    PeerRecord,
    PeerSpec,
    PeerUnavailable,
    free_port,
    owns_socket,
    run_as_user_kwargs,
)

# --- simulated devices -------------------------------------------------------------------------

SYS = "1.3.6.1.2.1.1"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
ENT_PHYSICAL_ENTRY = "1.3.6.1.2.1.47.1.1.1.1"
SYS_NAME = f"{SYS}.5.0"
SYS_LOCATION = f"{SYS}.6.0"


@dataclass(frozen=True)
class SwitchProfile:
    """The parameters of a simulated Cisco IOS-XE access/core switch; values not given here are
    derived deterministically from the name, so a regenerated city is identical."""

    name: str
    location: str
    contact: str = "NOC Jeddah <noc@jeddah.example>"
    model: str = "C9300-24T"
    serial: str = "FOC2301X0AA"
    software_version: str = "17.9.4a"
    sys_object_id: str = "1.3.6.1.4.1.9.1.2494"
    ports: int = 24
    aliases: Mapping[int, str] = field(default_factory=dict)
    admin_down: frozenset[int] = frozenset()
    uptime_ticks: int = 123_456_789


JED_HQ_CORE1 = SwitchProfile(
    name="jed-hq-core1",
    location="أمانة جدة - المبنى الرئيسي",
    serial="FOC2418L1QZ",
    aliases={
        1: "وصلة إلى مبنى البلدية الفرعية - الروضة",
        2: "خادم الملفات - قسم تقنية المعلومات",
        3: "نقطة وصول لاسلكية - الدور الأول",
        23: "uplink jed-dc-core1 Te1/1/1",
        24: "وصلة صاعدة - مركز البيانات",
    },
    admin_down=frozenset({20, 21, 22}),
)


def cisco_ios_switch_records(profile: SwitchProfile) -> list[SnmpRecord]:
    """Records of a Cisco IOS-XE switch: system group, ifTable + ifXTable (GigabitEthernet1/0/N
    ports and Vlan1) and the ENTITY-MIB chassis entry."""
    rng = random.Random(profile.name)  # same name, same counters and MACs
    descr = (
        f"Cisco IOS Software [Cupertino], {profile.model.split('-')[0]} Software (CAT9K_IOSXE), "
        f"Version {profile.software_version}, RELEASE SOFTWARE (fc3)\r\n"
        "Technical Support: http://www.cisco.com/techsupport\r\n"
        "Copyright (c) 1986-2023 by Cisco Systems, Inc."
    )
    records = [
        SnmpRecord(f"{SYS}.1.0", SnmpType.OCTET_STRING, descr),
        SnmpRecord(f"{SYS}.2.0", SnmpType.OID, profile.sys_object_id),
        SnmpRecord(f"{SYS}.3.0", SnmpType.TIMETICKS, profile.uptime_ticks),
        SnmpRecord(f"{SYS}.4.0", SnmpType.OCTET_STRING, profile.contact),
        SnmpRecord(SYS_NAME, SnmpType.OCTET_STRING, profile.name),
        SnmpRecord(SYS_LOCATION, SnmpType.OCTET_STRING, profile.location),
        SnmpRecord(f"{SYS}.7.0", SnmpType.INTEGER, 6),
        SnmpRecord(IF_NUMBER, SnmpType.INTEGER, profile.ports + 1),
    ]
    base_mac = bytes([0x00, 0xA3, 0xD1, rng.randrange(256), rng.randrange(256), 0x00])
    interfaces = [(n, f"GigabitEthernet1/0/{n}", f"Gi1/0/{n}", 6, 1000) for n in range(1, profile.ports + 1)]
    interfaces.append((profile.ports + 1, "Vlan1", "Vl1", 53, 1000))
    for index, descr_name, short_name, if_type, mbps in interfaces:
        admin_up = index not in profile.admin_down
        oper_up = admin_up and (index in profile.aliases or index % 3 != 0 or if_type == 53)
        in_octets = rng.randrange(10**9, 10**13) if oper_up else 0
        out_octets = rng.randrange(10**9, 10**13) if oper_up else 0
        mac = base_mac[:5] + bytes([index % 256])
        records += [
            SnmpRecord(f"{IF_ENTRY}.1.{index}", SnmpType.INTEGER, index),
            SnmpRecord(f"{IF_ENTRY}.2.{index}", SnmpType.OCTET_STRING, descr_name),
            SnmpRecord(f"{IF_ENTRY}.3.{index}", SnmpType.INTEGER, if_type),
            SnmpRecord(f"{IF_ENTRY}.4.{index}", SnmpType.INTEGER, 1500),
            SnmpRecord(f"{IF_ENTRY}.5.{index}", SnmpType.GAUGE32, mbps * 1_000_000),
            SnmpRecord(f"{IF_ENTRY}.6.{index}", SnmpType.OCTET_STRING, mac),
            SnmpRecord(f"{IF_ENTRY}.7.{index}", SnmpType.INTEGER, 1 if admin_up else 2),
            SnmpRecord(f"{IF_ENTRY}.8.{index}", SnmpType.INTEGER, 1 if oper_up else 2),
            SnmpRecord(f"{IF_ENTRY}.9.{index}", SnmpType.TIMETICKS, rng.randrange(profile.uptime_ticks)),
            SnmpRecord(f"{IF_ENTRY}.10.{index}", SnmpType.COUNTER32, in_octets % 2**32),
            SnmpRecord(f"{IF_ENTRY}.11.{index}", SnmpType.COUNTER32, (in_octets // 900) % 2**32),
            SnmpRecord(f"{IF_ENTRY}.13.{index}", SnmpType.COUNTER32, 0),
            SnmpRecord(f"{IF_ENTRY}.14.{index}", SnmpType.COUNTER32, rng.randrange(50) if oper_up else 0),
            SnmpRecord(f"{IF_ENTRY}.16.{index}", SnmpType.COUNTER32, out_octets % 2**32),
            SnmpRecord(f"{IF_ENTRY}.17.{index}", SnmpType.COUNTER32, (out_octets // 900) % 2**32),
            SnmpRecord(f"{IF_ENTRY}.19.{index}", SnmpType.COUNTER32, 0),
            SnmpRecord(f"{IF_ENTRY}.20.{index}", SnmpType.COUNTER32, 0),
            SnmpRecord(f"{IFX_ENTRY}.1.{index}", SnmpType.OCTET_STRING, short_name),
            SnmpRecord(f"{IFX_ENTRY}.6.{index}", SnmpType.COUNTER64, in_octets),
            SnmpRecord(f"{IFX_ENTRY}.10.{index}", SnmpType.COUNTER64, out_octets),
            SnmpRecord(f"{IFX_ENTRY}.15.{index}", SnmpType.GAUGE32, mbps),
            SnmpRecord(f"{IFX_ENTRY}.17.{index}", SnmpType.INTEGER, 1 if if_type == 6 else 2),
            SnmpRecord(f"{IFX_ENTRY}.18.{index}", SnmpType.OCTET_STRING, profile.aliases.get(index, "")),
        ]
    chassis = 1
    records += [
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.2.{chassis}", SnmpType.OCTET_STRING, f"Cisco {profile.model} Switch"),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.4.{chassis}", SnmpType.INTEGER, 0),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.5.{chassis}", SnmpType.INTEGER, 3),  # chassis(3)
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.7.{chassis}", SnmpType.OCTET_STRING, "Switch 1"),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.10.{chassis}", SnmpType.OCTET_STRING, profile.software_version),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.11.{chassis}", SnmpType.OCTET_STRING, profile.serial),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.12.{chassis}", SnmpType.OCTET_STRING, "Cisco Systems Inc."),
        SnmpRecord(f"{ENT_PHYSICAL_ENTRY}.13.{chassis}", SnmpType.OCTET_STRING, profile.model),
    ]
    return records


# --- a minimal synchronous SNMP v2c client (readiness checks and tests) -------------------------


NUT_PORT = 3493  # NUT's registered port, on the lab's own 127.3.0.21: the README's ``nut://127.3.0.21:3493/dc-ups1``


def documented_port(host: str, kind: str, port: int) -> int:
    """``port`` when it is free on ``host`` (the address the docs and the demo print), else a free one:
    a second lab on the same machine (a test beside the demo) still starts, on a port it reports."""
    sock_type = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, sock_type) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return free_port(host, "tcp" if kind == "tcp" else "udp")
    return port


def snmp_get(
    host: str, port: int, community: str, oid: str, *, next_: bool = False, timeout: float = 1.0
) -> tuple[str, int | str | bytes]:
    """One v2c GET (or GETNEXT) over a plain UDP socket: ``(oid, value)`` with OCTET STRINGs as
    exact bytes. Raises ``TimeoutError`` when nothing answers (snmpsim ignores unknown
    communities) and ``LookupError`` for noSuchObject/noSuchInstance/endOfMibView."""
    from pyasn1.codec.ber import decoder, encoder
    from pyasn1.type import univ
    from pysnmp.proto import api, rfc1902, rfc1905

    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = proto.GetNextRequestPDU() if next_ else proto.GetRequestPDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_varbinds(pdu, [(oid.lstrip("."), proto.Null(""))])
    message = proto.Message()
    proto.apiMessage.set_defaults(message)
    proto.apiMessage.set_community(message, community)
    proto.apiMessage.set_pdu(message, pdu)
    request_id = proto.apiPDU.get_request_id(pdu)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(encoder.encode(message), (host, port))
        while True:
            try:
                data = sock.recv(65535)
            except TimeoutError:
                raise TimeoutError(f"no SNMP answer from {host}:{port} (community {community!r})") from None
            response, _ = decoder.decode(data, asn1Spec=proto.Message())
            rpdu = proto.apiMessage.get_pdu(response)
            if proto.apiPDU.get_request_id(rpdu) == request_id:
                break
    if int(proto.apiPDU.get_error_status(rpdu)):
        raise LookupError(f"{oid}: SNMP error {proto.apiPDU.get_error_status(rpdu).prettyPrint()}")
    (got_oid, value), *_ = proto.apiPDU.get_varbinds(rpdu)
    if isinstance(value, rfc1905.NoSuchObject | rfc1905.NoSuchInstance | rfc1905.EndOfMibView):
        raise LookupError(f"{oid}: {value.__class__.__name__}")
    if isinstance(value, rfc1902.IpAddress):
        return str(got_oid), socket.inet_ntoa(value.asOctets())
    if isinstance(value, rfc1902.OctetString):
        return str(got_oid), value.asOctets()
    if isinstance(value, rfc1902.ObjectName | univ.ObjectIdentifier):
        return str(got_oid), str(value)
    return str(got_oid), int(value)


# --- snmpsim -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnmpsimDevice:
    """One simulated device: its recording and where it listens (port None = a free UDP port)."""

    name: str
    records: Sequence[SnmpRecord]
    host: str = "127.0.0.1"
    port: int | None = None
    community: str = "public"


@dataclass(frozen=True)
class SnmpAgent:
    """How a client reaches one simulated device (what tests and collectors need)."""

    name: str
    host: str
    port: int
    community: str


def snmpsim_program() -> str:
    """The venv's ``snmpsim-command-responder`` (beside this interpreter), else one on PATH."""
    beside = Path(sys.executable).parent / "snmpsim-command-responder"
    if beside.exists():
        return str(beside)
    found = shutil.which("snmpsim-command-responder")
    if found is None:
        raise PeerUnavailable("snmpsim: snmpsim-command-responder not found (pip install 'infra-mgr[lab]')")
    return found


def snmpsim_spec(
    lab_dir: Path,
    devices: Sequence[SnmpsimDevice] | None = None,
    *,
    engine_per_device: bool = True,
    log_level: str = "error",
    name: str = "snmpsim",
) -> PeerSpec:
    """One snmpsim process serving ``devices`` (default: the Jeddah HQ core switch)."""
    program = snmpsim_program()
    if devices is None:
        devices = [SnmpsimDevice(JED_HQ_CORE1.name, cisco_ios_switch_records(JED_HQ_CORE1))]
    if len({d.name for d in devices}) != len(devices):
        raise LabError("snmpsim: device names must be unique")
    root = Path(lab_dir).absolute() / name
    data_dir, cache_dir = root / "data", root / "cache"
    agents = [
        SnmpAgent(
            name=d.name,
            host=d.host,
            port=d.port or free_port(d.host, "udp"),
            community=d.community if engine_per_device else f"{d.name}/{d.community}",
        )
        for d in devices
    ]
    argv = [program, f"--cache-dir={cache_dir}", f"--log-level={log_level}"]
    if engine_per_device:
        for device, agent in zip(devices, agents, strict=True):
            argv += [
                "--v3-engine-id=auto",
                f"--data-dir={data_dir / device.name}",
                f"--agent-udpv4-endpoint={agent.host}:{agent.port}",
            ]
    else:
        argv += [f"--data-dir={data_dir}"]
        argv += [f"--agent-udpv4-endpoint={a.host}:{a.port}" for a in agents]

    def prepare() -> None:
        wanted = {data_dir / d.name / f"{d.community}.snmprec" for d in devices}
        if data_dir.exists():  # recordings not asked for now would be served too: remove them
            for old in data_dir.rglob("*.snmprec"):
                if old not in wanted:
                    old.unlink()
        for device in devices:
            write_snmprec(data_dir / device.name / f"{device.community}.snmprec", device.records)
        cache_dir.mkdir(parents=True, exist_ok=True)

    answered: set[str] = set()

    def ready(pid: int) -> bool:
        if not all(owns_socket(pid, "udp", a.host, a.port) for a in agents):
            return False
        for agent in agents:
            if agent.name not in answered:
                snmp_get(agent.host, agent.port, agent.community, SYS_NAME, timeout=0.3)
                answered.add(agent.name)
        return True

    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        env={"SNMPSIM_ALLOW_ROOT": "true"},
        cwd=root,
        ports={a.name: a.port for a in agents},
        addresses=sorted({f"{a.host}:{a.port}/udp" for a in agents}),
        info={
            "data_dir": str(data_dir),
            "engine_per_device": engine_per_device,
            "agents": [a.__dict__ for a in agents],
        },
        prepare=prepare,
        ready_timeout=15.0 + 0.5 * len(devices),
    )


def snmp_agents(record: PeerRecord) -> list[SnmpAgent]:
    """The devices a recorded snmpsim peer serves."""
    return [SnmpAgent(**agent) for agent in record.info.get("agents", [])]


# --- postgres ----------------------------------------------------------------------------------


def postgres_bindir() -> Path:
    """Debian's newest installed PostgreSQL server binaries."""
    candidates = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not candidates:
        raise PeerUnavailable("postgres: no server in /usr/lib/postgresql/*/bin (apt-get install postgresql)")
    return candidates[-1]


def _traversable_by(path: Path, user: str) -> bool:
    """Whether ``user`` may enter every existing directory down to ``path``."""
    entry = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, entry.pw_gid))
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == entry.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _run(argv: list[str], user: str | None, what: str, cwd: Path | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, **run_as_user_kwargs(user))
    if result.returncode != 0:
        raise LabError(f"postgres: {what} failed (exit {result.returncode})", (result.stdout + result.stderr)[-2000:])
    return result.stdout


def postgres_spec(
    lab_dir: Path, *, database: str = "infra_mgr", db_user: str = "infra_mgr", name: str = "postgres"
) -> PeerSpec:
    """A private PostgreSQL cluster on 127.0.0.1:<free port> with database ``database``."""
    bindir = postgres_bindir()
    run_user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PeerUnavailable("postgres: running as root needs the 'postgres' system user") from None
        run_user = "postgres"
    root = Path(lab_dir).absolute() / name
    cleanup: list[Path] = []
    if run_user is None or _traversable_by(root, run_user):
        data_dir = root / "data"
    else:  # e.g. pytest's 0700 temp dirs: the server user cannot enter them
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        data_dir = Path("/tmp") / f"infra-mgr-lab-pg-{digest}"
        cleanup.append(data_dir)
    host, port = "127.0.0.1", free_port("127.0.0.1", "tcp")
    url = f"postgresql+psycopg://{db_user}@{host}:{port}/{database}"
    client = ["-h", host, "-p", str(port), "-U", db_user]

    def prepare() -> None:
        root.mkdir(parents=True, exist_ok=True)
        if not data_dir.exists():
            data_dir.mkdir(mode=0o700)
        if run_user is not None:
            owner = pwd.getpwnam(run_user)
            info = data_dir.lstat()
            if not stat.S_ISDIR(info.st_mode):
                raise LabError(f"postgres: {data_dir} is not a directory")
            if info.st_uid != owner.pw_uid:
                os.chown(data_dir, owner.pw_uid, owner.pw_gid)
        if not (data_dir / "PG_VERSION").exists():
            initdb = [str(bindir / "initdb"), "-D", str(data_dir), "-U", db_user, "--auth=trust"]
            initdb += ["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
            _run(initdb, run_user, "initdb", cwd=data_dir)

    def ready(pid: int) -> bool:
        if not owns_socket(pid, "tcp", host, port):
            return False
        probe = subprocess.run([str(bindir / "pg_isready"), *client, "-d", "postgres", "-t", "1", "-q"])
        return probe.returncode == 0

    def after_ready() -> None:
        query = f"select 1 from pg_database where datname = '{database}'"
        exists = _run([str(bindir / "psql"), "-X", *client, "-d", "postgres", "-tAc", query], None, "psql")
        if not exists.strip():
            _run([str(bindir / "createdb"), *client, database], None, "createdb")

    argv = [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(port)]
    settings = {
        "listen_addresses": host,
        "unix_socket_directories": str(data_dir),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    info: dict[str, Any] = {
        "url": url,
        "database": database,
        "user": db_user,
        "data_dir": str(data_dir),
        "version": bindir.parent.name,
    }
    return PeerSpec(
        name=name,
        argv=argv,
        ready=ready,
        cwd=data_dir,
        user=run_user,
        ports={"postgres": port},
        addresses=[f"{host}:{port}/tcp"],
        info=info,
        prepare=prepare,
        after_ready=after_ready,
        ready_timeout=30.0,
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for clients
        stop_grace=10.0,
        cleanup=cleanup,
    )


# --- liar (a lying SNMP agent, infra_mgr.lab.liar) ---------------------------------------------


def liar_spec(lab_dir: Path, *, host: str = "127.0.0.1", name: str = "liar") -> PeerSpec:
    """The lying SNMP v2c agent: one UDP port, its behaviour chosen by the community (``public``
    honest; ``loop``, ``garbage``, ``truncated``, ``nobulk``, ``huge``, … see ``liar.BEHAVIOURS``)."""
    port = free_port(host, "udp")

    def ready(pid: int) -> bool:
        return owns_socket(pid, "udp", host, port) and bool(snmp_get(host, port, "public", SYS_NAME, timeout=0.3))

    return PeerSpec(
        name=name,
        argv=[sys.executable, "-m", "infra_mgr.lab.liar", "--host", host, "--port", str(port)],
        ready=ready,
        cwd=Path(lab_dir).absolute(),
        ports={"snmp": port},
        addresses=[f"{host}:{port}/udp"],
        info={"host": host, "port": port},
    )
