"""A small estate with configuration backups, written straight into the tables: three sites, four
devices (one never backed up), versions whose diffs and search hits are known, compliance
findings, backup runs and SSH host keys (one with a refused different key waiting)."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session

from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.ssh.models import (
    BackupRun,
    ComplianceFinding,
    ConfigBackupState,
    ConfigVersion,
    SshHostKey,
)

T0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.UTC)

RTR_V1 = """hostname jed-b01-rtr01
!
enable secret 5 <secret hidden>
username admin privilege 15 secret 5 <secret hidden>
!
interface GigabitEthernet0/0
 description uplink to jed-hq-dist01
 ip address 10.64.1.1 255.255.255.252
!
snmp-server community <secret hidden> RO
ntp server 10.0.0.1
logging host 10.0.0.2
line vty 0 4
 transport input ssh telnet
end
"""
# v2: the uplink's description changed, a syslog host added; v3: telnet removed
RTR_V2 = RTR_V1.replace("uplink to jed-hq-dist01", "uplink to jed-hq-dist02").replace(
    "logging host 10.0.0.2\n", "logging host 10.0.0.2\nlogging host 10.0.0.3\n")
RTR_V3 = RTR_V2.replace(" transport input ssh telnet\n", " transport input ssh\n")
SW_V1 = """set system host-name jed-b01-sw01
set system root-authentication encrypted-password "<secret hidden>"
set system services ssh protocol-version v2
set system ntp server 10.0.0.1
set snmp community <secret hidden> authorization read-only
"""
B02_V1 = """/system identity set name=jed-b02-rtr01
/snmp community set [ find default=yes ] name=<secret hidden>
/ip service set telnet disabled=no
/system ntp client set enabled=yes servers=10.0.0.1
"""


@dataclass
class Seeded:
    sites: dict[str, int]
    devices: dict[str, int]
    versions: dict[tuple[str, int], int]  # (hostname, number) -> version id
    runs: list[int]
    keys: dict[str, int]  # hostname -> host key id


def _version(s: Session, device_id: int, number: int, text: str, at: dt.datetime, changed: int,
             trigger: str = "schedule", actor: str = "", device_type: str = "cisco_xe") -> ConfigVersion:
    v = ConfigVersion(device_id=device_id, number=number, sha256=hashlib.sha256(text.encode()).hexdigest(),
                      text=text, lines=len(text.splitlines()), size=len(text.encode()), collected_at=at,
                      trigger=trigger, actor=actor, device_type=device_type, changed_lines=changed)
    s.add(v)
    s.flush()
    return v


def seed(engine: Engine) -> Seeded:
    with Session(engine, expire_on_commit=False) as s:
        sites = {}
        for code, name_en, name_ar, kind in (("JED-HQ", "Headquarters", "المقر الرئيسي", "hq"),
                                             ("JED-B01", "Al Balad", "البلد", "branch"),
                                             ("JED-B02", "Al Rawdah", "الروضة", "branch")):
            site = Site(code=code, name_en=name_en, name_ar=name_ar, kind=kind)
            s.add(site)
            s.flush()
            sites[code] = site.id or 0
        devices = {}
        for host, code, platform, vendor, addr in (
                ("jed-b01-rtr01", "JED-B01", "ios-xe", "cisco", "127.30.1.1"),
                ("jed-b01-sw01", "JED-B01", "junos", "juniper", "127.30.1.2"),
                ("jed-b02-rtr01", "JED-B02", "routeros", "mikrotik", "127.30.2.1"),
                ("jed-hq-core01", "JED-HQ", "ios-xe", "cisco", "127.30.0.1")):
            dev = Device(site_id=sites[code], hostname=host, management_address=addr, platform=platform,
                         vendor=vendor, role="router")
            s.add(dev)
            s.flush()
            devices[host] = dev.id or 0
        versions: dict[tuple[str, int], int] = {}
        rtr = devices["jed-b01-rtr01"]
        for n, (text, changed) in enumerate(((RTR_V1, 0), (RTR_V2, 3), (RTR_V3, 2)), start=1):
            v = _version(s, rtr, n, text, T0 + dt.timedelta(days=n), changed,
                         trigger="manual" if n == 3 else "schedule", actor="alice" if n == 3 else "")
            versions[("jed-b01-rtr01", n)] = v.id or 0
        sw = _version(s, devices["jed-b01-sw01"], 1, SW_V1, T0, 0, device_type="juniper_junos")
        versions[("jed-b01-sw01", 1)] = sw.id or 0
        b02 = _version(s, devices["jed-b02-rtr01"], 1, B02_V1, T0, 0, device_type="mikrotik_routeros")
        versions[("jed-b02-rtr01", 1)] = b02.id or 0
        s.add(ConfigBackupState(device_id=rtr, address="127.30.1.1", status="ok", last_attempt=T0 + dt.timedelta(3),
                                last_success=T0 + dt.timedelta(3), last_change=T0 + dt.timedelta(3),
                                latest_version_id=versions[("jed-b01-rtr01", 3)], versions=3, since=T0))
        s.add(ConfigBackupState(device_id=devices["jed-b01-sw01"], address="127.30.1.2", status="failed",
                                reason_kind="auth", reason="the password was refused",
                                last_attempt=T0 + dt.timedelta(3), last_success=T0, last_change=T0,
                                latest_version_id=sw.id, versions=1, since=T0 + dt.timedelta(3)))
        s.add(ConfigBackupState(device_id=devices["jed-b02-rtr01"], address="127.30.2.1", status="ok",
                                last_attempt=T0, last_success=T0, last_change=T0, latest_version_id=b02.id,
                                versions=1, since=T0))
        s.add(ComplianceFinding(device_id=devices["jed-b02-rtr01"], rule_id="no-telnet", severity="warning",
                                message="telnet is enabled", lines=["/ip service set telnet disabled=no"],
                                version_id=b02.id, first_seen=T0, last_seen=T0))
        s.add(ComplianceFinding(device_id=devices["jed-b02-rtr01"], rule_id="banner", severity="info",
                                message="no login banner", lines=["missing"], version_id=b02.id,
                                first_seen=T0, last_seen=T0))
        s.add(ComplianceFinding(device_id=devices["jed-b01-sw01"], rule_id="syslog", severity="critical",
                                message="no syslog server", lines=["missing"], version_id=sw.id,
                                first_seen=T0, last_seen=T0))
        runs = []
        for i, (status, failed) in enumerate((("ok", 0), ("ok", 1))):
            run = BackupRun(started_at=T0 + dt.timedelta(days=i), finished_at=T0 + dt.timedelta(days=i, seconds=9),
                            duration_s=9.0, trigger="schedule", scope="all devices", status=status, devices=3,
                            changed=1, unchanged=2 - failed, failed=failed,
                            failures=[{"device_id": devices["jed-b01-sw01"], "hostname": "jed-b01-sw01",
                                       "address": "127.30.1.2", "kind": "auth",
                                       "message": "the password was refused"}] if failed else [])
            s.add(run)
            s.flush()
            runs.append(run.id or 0)
        keys = {}
        for host, addr, offered in (("jed-b01-rtr01", "127.30.1.1", ""),
                                    ("jed-b01-sw01", "127.30.1.2", "SHA256:offeredoffered")):
            key = SshHostKey(address=addr, port=22, device_id=devices[host], key_type="ssh-ed25519",
                             key_b64="AAAAC3NzaC1lZDI1NTE5AAAAIE" + host, fingerprint=f"SHA256:{host}",
                             first_seen=T0, last_seen=T0, offered_key_type="ssh-ed25519" if offered else "",
                             offered_key_b64="AAAAoffered" if offered else "", offered_fingerprint=offered,
                             offered_at=T0 if offered else None)
            s.add(key)
            s.flush()
            keys[host] = key.id or 0
        s.commit()
    return Seeded(sites=sites, devices=devices, versions=versions, runs=runs, keys=keys)


def unreachable(engine: Engine, master: bytes, hostname: str) -> None:
    """Point ``hostname`` at 127.30.9.9:1, where nothing listens (the connection is refused at
    once), and store an SSH credential so the backup really tries to connect."""
    from sqlmodel import select

    from infra_mgr.inventory.credentials import CredentialCreate, build
    from infra_mgr.inventory.models import CredentialKind

    with Session(engine) as s:
        dev = s.exec(select(Device).where(Device.hostname == hostname)).one()
        dev.management_address = "127.30.9.9"
        s.add(dev)
        state = s.get(ConfigBackupState, dev.id)
        assert state is not None
        state.address, state.port = "127.30.9.9", 1
        s.add(state)
        s.add(build(master, CredentialCreate(name="lab ssh", kind=CredentialKind.ssh_password, username="admin",
                                             password="not-a-real-password")))
        s.commit()
