"""The stored-configuration side of ``bench/config_backup.py``: 1,000 versions of one device and the
latest configurations of 1,000 devices, written both into a fresh SQLite database (as the backup
service leaves them: ``ConfigVersion`` rows plus each device's ``ConfigBackupState``) and into git
repositories holding the very same texts (what Oxidized's git backend keeps), so the read views and
``git log`` / ``git diff`` / ``git grep`` answer the same questions over the same data.

The texts are IOS-XE-like running configurations of about 500 lines (interfaces, VLANs, ACLs, AAA,
SNMP, NTP, logging, lines, banner), masked as the collector leaves them. Each new version of the one
device changes a few lines of the previous one (an interface description, an ACL entry, a VLAN
name), as a night's work on a router does. They are written directly as rows — the service's
storing path would only add its hash-and-compare per row, which these rows already carry.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Device, Site
from infra_mgr.network.ssh.models import ConfigBackupState, ConfigVersion

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
           "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}
START = dt.datetime(2025, 1, 1, 2, 0, tzinfo=dt.UTC)
COMMUNITIES = ("public", "private", "<masked>")


def config_lines(hostname: str, rng: random.Random, *, community: str = "<masked>") -> list[str]:
    """A ~500-line IOS-XE running configuration for ``hostname`` (secrets already masked)."""
    out = ["!", "version 17.9", "service timestamps debug datetime msec", "service timestamps log datetime msec",
           "service password-encryption", "no service pad", "!", f"hostname {hostname}", "!",
           "boot-start-marker", "boot-end-marker", "!", "vrf definition Mgmt-vrf", " address-family ipv4",
           " exit-address-family", "!", "logging buffered 64000 informational",
           "enable secret 9 <masked>", "!", "aaa new-model", "aaa group server tacacs+ TAC",
           " server name TAC1", " server name TAC2", "aaa authentication login default group TAC local",
           "aaa authorization exec default group TAC local", "aaa accounting exec default start-stop group TAC",
           "!", "clock timezone AST 3 0", "ip domain name jeddah.gov.sa", "ip name-server 10.0.0.53 10.0.1.53",
           "!", "username netops privilege 15 secret 9 <masked>", "!", "spanning-tree mode rapid-pvst",
           "spanning-tree extend system-id", "!"]
    for vlan in range(10, 10 + 24):
        out += [f"vlan {vlan}", f" name {rng.choice(['USERS', 'VOICE', 'PRINT', 'CCTV', 'WIFI', 'MGMT'])}-{vlan}",
                "!"]
    for port in range(1, 49):
        out += [f"interface GigabitEthernet1/0/{port}", f" description user-port-{port:02d}",
                " switchport access vlan " + str(10 + port % 24), " switchport mode access",
                " spanning-tree portfast", " spanning-tree bpduguard enable", "!"]
    out += ["interface Vlan1", " no ip address", " shutdown", "!",
            "interface Loopback0", f" ip address 10.{rng.randrange(256)}.{rng.randrange(256)}.1 255.255.255.255",
            "!", "ip forward-protocol nd", "ip ssh version 2", "ip ssh time-out 60", "!"]
    for acl in ("MGMT-IN", "SNMP-RO"):
        out.append(f"ip access-list extended {acl}")
        for seq in range(10, 130, 10):
            out.append(f" {seq} permit tcp 10.{rng.randrange(256)}.0.0 0.0.255.255 any eq {rng.choice([22, 443, 161])}")
        out += [" 1000 deny ip any any log", "!"]
    out += [f"snmp-server community {community} RO SNMP-RO", "snmp-server location Jeddah",
            "snmp-server contact noc@jeddah.gov.sa", "snmp-server enable traps config",
            "snmp-server host 10.0.0.162 version 2c <masked>", "!",
            "tacacs server TAC1", " address ipv4 10.0.0.49", " key 7 <masked>",
            "tacacs server TAC2", " address ipv4 10.0.1.49", " key 7 <masked>", "!",
            "logging host 10.0.0.514", "logging host 10.0.1.514", "ntp server 10.0.0.123", "ntp server 10.0.1.123",
            "!", "banner motd ^C", "Authorised access only. Activity is logged.", "^C", "!",
            "line con 0", " exec-timeout 10 0", " logging synchronous", "line vty 0 4", " access-class MGMT-IN in",
            " exec-timeout 10 0", " transport input ssh", "line vty 5 15", " access-class MGMT-IN in",
            " transport input ssh", "!", "end"]
    return out


def mutate(lines: list[str], rng: random.Random, n: int) -> list[str]:
    """A next version: ``n`` small edits (a description, an ACL entry, a VLAN name) of ``lines``."""
    new = list(lines)
    for _ in range(n):
        kind = rng.randrange(3)
        if kind == 0:
            idx = [i for i, ln in enumerate(new) if ln.startswith(" description ")]
        elif kind == 1:
            idx = [i for i, ln in enumerate(new) if ln.startswith(" ") and " permit tcp " in ln]
        else:
            idx = [i for i, ln in enumerate(new) if ln.startswith(" name ")]
        i = rng.choice(idx)
        if kind == 0:
            new[i] = f" description {rng.choice(['user', 'printer', 'ap', 'camera', 'phone'])}-{rng.randrange(10**6)}"
        elif kind == 1:
            seq = new[i].split()[0]
            new[i] = (f" {seq} permit tcp 10.{rng.randrange(256)}.{rng.randrange(256)}.0 0.0.0.255 any eq "
                      f"{rng.choice([22, 443, 161, 830])}")
        else:
            new[i] = f" name {rng.choice(['USERS', 'VOICE', 'PRINT', 'CCTV', 'WIFI', 'GUEST'])}-{rng.randrange(1000)}"
    return new


def changed(a: list[str], b: list[str]) -> int:
    """Lines added plus removed from ``a`` to ``b`` (what ``ConfigVersion.changed_lines`` holds)."""
    return sum(1 for ln in difflib.unified_diff(a, b, lineterm="", n=0)
               if ln[:1] in "+-" and not ln.startswith(("+++", "---")))


def text_of(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


@dataclass
class Store:
    """What was built: the database, the device with many versions, and the git repositories."""

    engine: Engine
    device_id: int
    hostname: str
    versions: int
    fleet_devices: int
    history_repo: Path  # one file, one commit per version
    history_file: str
    commits: list[str]  # commit id of version n at index n - 1
    fleet_repo: Path  # the fleet's latest configs, checked out
    config_lines: int
    matching_devices: int  # fleet devices whose config has a public/private community


def build(tmp: Path, *, versions: int, fleet: int, seed: int = 13) -> Store:
    rng = random.Random(seed)
    url = f"sqlite:///{tmp / 'configs.db'}"
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as s:
        site = Site(code="BENCH-CFG", name_en="Config bench", name_ar="")
        s.add(site)
        s.commit()
        site_id = site.id or 0
        hist = Device(site_id=site_id, hostname="jed-hq-core-hist", management_address="127.250.0.1",
                      vendor="Cisco", platform="ios-xe", role="core")
        s.add(hist)
        s.commit()
        hist_id = hist.id or 0
        for i in range(fleet):
            s.add(Device(site_id=site_id, hostname=f"jed-fleet-{i:04d}", management_address=_fleet_address(i),
                         vendor="Cisco", platform="ios-xe", role="access"))
        s.commit()
        by_name = {d.hostname: d.id or 0 for d in s.exec(select(Device)).all()}
    fleet_ids = [by_name[f"jed-fleet-{i:04d}"] for i in range(fleet)]

    # 1. many versions of one device: rows and a git history of the same texts
    texts: list[str] = []
    rows_v: list[dict[str, object]] = []
    lines = config_lines("jed-hq-core-hist", rng)
    prev: list[str] = []
    for n in range(1, versions + 1):
        if n > 1:
            lines = mutate(lines, rng, rng.randint(1, 4))
        text = text_of(lines)
        texts.append(text)
        rows_v.append(dict(device_id=hist_id, number=n, sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
                           lines=len(lines), size=len(text.encode()), collected_at=START + dt.timedelta(hours=12 * n),
                           trigger="schedule", actor="scheduler", device_type="cisco_xe",
                           changed_lines=changed(prev, lines) if prev else 0))
        prev = lines
    # 2. the fleet's latest configs (one version each)
    fleet_texts: list[tuple[str, str]] = []
    matching = 0
    for i, dev_id in enumerate(fleet_ids):
        community = COMMUNITIES[i % 7] if i % 7 < 2 else "<masked>"
        matching += community in ("public", "private")
        text = text_of(config_lines(f"jed-fleet-{i:04d}", rng, community=community))
        fleet_texts.append((f"jed-fleet-{i:04d}", text))
        rows_v.append(dict(device_id=dev_id, number=1, sha256=hashlib.sha256(text.encode()).hexdigest(), text=text,
                           lines=text.count("\n"), size=len(text.encode()), collected_at=START,
                           trigger="schedule", actor="scheduler", device_type="cisco_xe", changed_lines=0))
    with engine.begin() as conn:
        conn.execute(insert(ConfigVersion), rows_v)
        latest = conn.execute(sa_select(col(ConfigVersion.device_id), func.max(col(ConfigVersion.id)), func.count(),
                                        func.max(col(ConfigVersion.collected_at)))
                              .group_by(col(ConfigVersion.device_id))).all()
        addr = {hist_id: "127.250.0.1", **{d: _fleet_address(i) for i, d in enumerate(fleet_ids)}}
        conn.execute(insert(ConfigBackupState), [
            dict(device_id=d, address=addr[d], port=22, device_type="cisco_xe", status="ok", reason_kind="",
                 reason="", last_attempt=at, last_success=at, last_change=at, latest_version_id=vid, versions=count,
                 since=START) for d, vid, count, at in latest])

    # git: the one device's history (fast-import: one commit per version), the fleet's files checked out
    history = tmp / "oxidized-history"
    _git(tmp, "init", "-q", "-b", "main", str(history))
    stream = []
    for n, text in enumerate(texts, 1):
        data = text.encode()
        when = int((START + dt.timedelta(hours=12 * n)).timestamp())
        msg = f"update jed-hq-core-hist {n}".encode()
        stream.append(b"commit refs/heads/main\nmark :%d\n" % n)
        stream.append(b"committer bench <bench@example.invalid> %d +0000\n" % when)
        stream.append(b"data %d\n%s\n" % (len(msg), msg))
        if n > 1:
            stream.append(b"from :%d\n" % (n - 1))
        stream.append(b"M 100644 inline jed-hq-core-hist\ndata %d\n%s\n" % (len(data), data))
    subprocess.run(["git", "-C", str(history), "fast-import", "--quiet"], input=b"".join(stream), check=True,
                   env=GIT_ENV)
    marks = subprocess.run(["git", "-C", str(history), "rev-list", "--reverse", "main"], capture_output=True,
                           text=True, check=True, env=GIT_ENV).stdout.split()
    _git(history, "checkout", "-q", "main")
    fleet_repo = tmp / "oxidized-fleet"
    _git(tmp, "init", "-q", "-b", "main", str(fleet_repo))
    for name, text in fleet_texts:
        (fleet_repo / name).write_text(text, encoding="utf-8")
    _git(fleet_repo, "add", "-A")
    _git(fleet_repo, "commit", "-q", "-m", "fleet")
    return Store(engine=engine, device_id=hist_id, hostname="jed-hq-core-hist", versions=versions,
                 fleet_devices=fleet, history_repo=history, history_file="jed-hq-core-hist", commits=marks,
                 fleet_repo=fleet_repo, config_lines=len(lines), matching_devices=matching)


def _fleet_address(i: int) -> str:
    return f"127.251.{i // 250}.{i % 250 + 1}"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, env=GIT_ENV, capture_output=True)
