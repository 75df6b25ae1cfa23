"""Configuration backup against the lab's SSH devices, on SQLite and PostgreSQL: versions only on
change (no duplicates, also with two runs at once), each failing device with its reason while the
run goes on, host keys (first use, a changed key refused, accepted by an engineer), compliance
findings for exactly the devices the lab made non-compliant, git export, and config-changed traps."""

from __future__ import annotations

import asyncio
import datetime as dt
import difflib
import re
from pathlib import Path
from typing import Any

import pytest
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from infra_mgr.config import Settings
from infra_mgr.db import write_session
from infra_mgr.errors import NotFound
from infra_mgr.events.models import Event
from infra_mgr.inventory.credentials import CredentialCreate, build
from infra_mgr.inventory.models import CredentialKind, Device, ObjectChange, Site
from infra_mgr.lab.city_model import build_city
from infra_mgr.lab.ssh_lab import RunningSsh, configure_ssh_credential
from infra_mgr.lab.ssh_sim import fingerprint
from infra_mgr.network.ssh import gitexport, hostkeys
from infra_mgr.network.ssh.backup import check_all, run_backup
from infra_mgr.network.ssh.facts import BackupResult, SshTarget
from infra_mgr.network.ssh.models import (
    BackupRun,
    ComplianceFinding,
    ConfigBackupState,
    ConfigVersion,
    SshHostKey,
)
from infra_mgr.network.trap_service import TrapHandler
from infra_mgr.network.traps import TrapFacts

MASTER = b"config-backup-test-master-secret"
SETTINGS = Settings(backup_connect_timeout_s=5, backup_auth_timeout_s=5, backup_command_timeout_s=8,
                    backup_banner_timeout_s=12, backup_concurrency=16)
BREAK_RULES = {"snmp_community_public": "snmp-default-community", "snmp_community_private": "snmp-default-community",
               "telnet_enabled": "no-telnet", "no_banner": "login-banner", "no_ntp": "ntp-servers",
               "no_syslog": "syslog-host", "ssh_v1": "ssh-v2-only"}


def _seed(engine: Engine, ssh: RunningSsh, *, sites: set[str] | None = None) -> dict[str, int]:
    """The lab's devices (SNMP-discovered and SSH-only) as inventory rows, and the lab credential."""
    city = build_city()
    ids: dict[str, int] = {}
    with Session(engine) as session:
        site_ids: dict[str, int] = {}
        for device in [*city.devices, *city.ssh_only]:
            if sites is not None and device.site not in sites:
                continue
            if device.site not in site_ids:
                site = Site(code=device.site, name_en=device.site)
                session.add(site)
                session.flush()
                assert site.id is not None
                site_ids[device.site] = site.id
            row = Device(site_id=site_ids[device.site], hostname=device.hostname, management_address=device.address,
                         role=device.role, platform=device.platform.key)
            session.add(row)
            session.flush()
            assert row.id is not None
            ids[device.hostname] = row.id
        configure_ssh_credential(session, MASTER, ssh)
        session.commit()
    return ids


def _versions(engine: Engine) -> dict[int, list[ConfigVersion]]:
    with Session(engine) as session:
        out: dict[int, list[ConfigVersion]] = {}
        for v in session.exec(select(ConfigVersion).order_by(col(ConfigVersion.device_id),
                                                             col(ConfigVersion.number))).all():
            out.setdefault(v.device_id, []).append(v)
        return out


def _events(engine: Engine, kind: str) -> list[Event]:
    with Session(engine) as session:
        return list(session.exec(select(Event).where(Event.kind == kind).order_by(col(Event.id))).all())


def _states(engine: Engine) -> dict[int, ConfigBackupState]:
    with Session(engine) as session:
        return {s.device_id: s for s in session.exec(select(ConfigBackupState)).all()}


def _behaviour(ssh: RunningSsh, name: str) -> list[str]:
    return list(ssh.expected["behaviours"][name])


def test_backup_versions_failures_hostkeys_compliance_and_git(engine: Engine, city_ssh: RunningSsh,
                                                              tmp_path: Path) -> None:
    ids = _seed(engine, city_ssh)
    names = {v: k for k, v in ids.items()}
    hang, refuse, pager = _behaviour(city_ssh, "hang")[0], _behaviour(city_ssh, "refuse")[0], \
        _behaviour(city_ssh, "pager")[0]
    changing = set(_behaviour(city_ssh, "changing"))
    seen: list[tuple[str, int, int]] = []

    first = asyncio.run(run_backup(engine, MASTER, actor="alice", settings=SETTINGS,
                                   progress=lambda h, d, t: seen.append((h, d, t))))
    # every device was tried and reported once; the run went on past the failing ones
    assert first.status == "ok" and first.devices == len(ids) == len(seen)
    assert sorted(d for _, d, _ in seen) == list(range(1, len(ids) + 1))
    failures = {f["hostname"]: f["kind"] for f in first.failures}
    assert failures.get(hang) == "timeout" and failures.get(refuse) == "auth"
    assert set(failures) - {hang, refuse} <= {pager} and failures.get(pager, "paging") == "paging", \
        [(f["hostname"], f["kind"], f["message"]) for f in first.failures]
    assert first.changed == len(ids) - len(failures) and first.unchanged == 0
    states = _states(engine)
    assert states[ids[hang]].status == "failed" and states[ids[hang]].reason_kind == "timeout"
    assert states[ids[refuse]].reason_kind == "auth" and states[ids[refuse]].reason
    failed_events = _events(engine, "config.backup_failed")
    assert sorted(str(e.data["hostname"]) for e in failed_events) == sorted(str(h) for h in failures)
    assert all(e.severity == "warning" and e.data["kind"] == failures[e.data["hostname"]] for e in failed_events)

    # host keys recorded on first contact, as the lab's devices present them
    with Session(engine) as session:
        keys = {k.address: k for k in session.exec(select(SshHostKey)).all()}
    ok_hosts = [h for h in ids if h not in failures]
    lab_state = city_ssh.control().status().get("devices", {})  # the lab outlives a test: keys it changed
    for host in ok_hosts:
        presented = fingerprint(host, int(lab_state.get(host, {}).get("rekeys", 0)))
        assert keys[city_ssh.device(host)["address"]].fingerprint == presented, host

    # nothing secret stored: the lab's password appears in no version, event or run
    versions = _versions(engine)
    assert all(len(v) == 1 for v in versions.values())
    assert all(city_ssh.password not in v[0].text for v in versions.values())

    # second run: only the devices that changed get a new version; no duplicates
    second = asyncio.run(run_backup(engine, MASTER, trigger="schedule", settings=SETTINGS))
    after = _versions(engine)
    changed_now = {names[d] for d, v in after.items() if len(v) == 2}
    unexpected = {h: "".join(difflib.unified_diff(after[ids[h]][0].text.splitlines(True),
                                                  after[ids[h]][1].text.splitlines(True), n=1))
                  for h in changed_now - changing}
    assert changed_now == changing & set(ok_hosts), unexpected
    assert all(len(v) <= 2 for v in after.values())
    assert second.changed == len(changed_now) and second.unchanged == len(ok_hosts) - len(changed_now)
    for host in changed_now:
        old, new = after[ids[host]]
        expected = [line for line in difflib.ndiff(old.text.splitlines(), new.text.splitlines())
                    if line[:1] in "+-"]
        assert new.changed_lines == len(expected) > 0 and new.trigger == "schedule"
        # each lab generation moves one static route (10.2xx.y.0/24): that line is in the change
        assert any(re.search(r"\b10\.2\d\d\.\d+\.0\b", line) for line in expected if line.startswith("+")), host
    changed_events = {e.data["hostname"]: e for e in _events(engine, "config.changed")}
    assert set(changed_events) == changed_now
    assert all(e.data["added"] + e.data["removed"] == after[ids[h]][1].changed_lines
               for h, e in changed_events.items())
    assert len(_events(engine, "config.backup_failed")) == len(failed_events)  # still failing: no new event

    # a device the lab changes now: exactly one new version, then nothing more
    quiet = "jed-b05-rtr"
    city_ssh.control().change(quiet)
    one = asyncio.run(run_backup(engine, MASTER, device=quiet, settings=SETTINGS))
    assert (one.devices, one.changed, one.failed) == (1, 1, 0)
    again = asyncio.run(run_backup(engine, MASTER, device=quiet, settings=SETTINGS))
    assert (again.changed, again.unchanged) == (0, 1)
    numbers = [v.number for v in _versions(engine)[ids[quiet]]]
    assert numbers == [1, 2]

    # a changed host key is refused, reported once, and accepted by an engineer
    rekeyed = _behaviour(city_ssh, "rekey")[0]
    address = city_ssh.device(rekeyed)["address"]
    new_fp = city_ssh.control().rekey(rekeyed)
    refused = asyncio.run(run_backup(engine, MASTER, device=rekeyed, settings=SETTINGS))
    assert refused.failed == 1 and refused.failures[0]["kind"] == "hostkey_changed"
    asyncio.run(run_backup(engine, MASTER, device=rekeyed, settings=SETTINGS))
    alarms = _events(engine, "ssh.hostkey_changed")
    assert len(alarms) == 1 and alarms[0].severity == "critical" and alarms[0].data["offered"] == new_fp
    with write_session(engine) as session:
        row = session.exec(select(SshHostKey).where(SshHostKey.address == address)).one()
        assert row.offered_fingerprint == new_fp and row.fingerprint != new_fp
        accepted = hostkeys.accept(session, (address, row.port), "bob")
    assert accepted.fingerprint == new_fp and accepted.accepted_by == "bob" and not accepted.offered_fingerprint
    back = asyncio.run(run_backup(engine, MASTER, device=rekeyed, settings=SETTINGS))
    assert back.failed == 0 and _states(engine)[ids[rekeyed]].status == "ok"
    with Session(engine) as session:
        audit = session.exec(select(ObjectChange).where(ObjectChange.object_type == "ssh_host_key")).all()
    assert [(a.actor, a.action, (a.after or {}).get("fingerprint")) for a in audit] == [("bob", "update", new_fp)]

    # compliance: exactly the devices the lab made non-compliant, each for its rule
    expected_findings: dict[str, set[str]] = {}
    for broken, host in city_ssh.expected["baseline_breaks"].items():
        expected_findings.setdefault(host, set()).add(BREAK_RULES[broken])
    with Session(engine) as session:
        found: dict[str, set[str]] = {}
        for finding in session.exec(select(ComplianceFinding)).all():
            found.setdefault(names[finding.device_id], set()).add(finding.rule_id)
    assert found == expected_findings
    opened = _events(engine, "config.compliance")
    assert sorted(e.data["hostname"] for e in opened) == sorted(h for h, r in expected_findings.items() for _ in r)
    summary = check_all(engine)
    assert summary.findings == sum(len(r) for r in expected_findings.values()) and summary.opened == 0

    # git: one commit per stored version, the files are the latest texts; incremental
    repo_path = tmp_path / "configs"
    total = sum(len(v) for v in _versions(engine).values())
    assert gitexport.export(engine, repo_path) == total
    assert gitexport.export(engine, repo_path) == 0
    city_ssh.control().change(quiet)
    asyncio.run(run_backup(engine, MASTER, device=quiet, settings=SETTINGS))
    assert gitexport.export(engine, repo_path) == 1
    _check_repo(engine, repo_path, total + 1)

    with Session(engine) as session:
        runs = session.exec(select(BackupRun)).all()
    assert len(runs) == 8 and all(r.status == "ok" and r.finished_at is not None for r in runs)


def _check_repo(engine: Engine, path: Path, commits: int) -> None:
    repo = Repo(str(path))
    try:
        walker = list(repo.get_walker())
        assert len(walker) == commits
        assert all(len(entry.commit.parents) <= 1 for entry in walker)
        head = repo[repo.head()]
        assert isinstance(head, Commit)
        with Session(engine) as session:
            latest = session.exec(select(ConfigVersion, Device.hostname, Site.code)
                                  .join(Device, col(Device.id) == col(ConfigVersion.device_id))
                                  .join(Site, col(Site.id) == col(Device.site_id))).all()
            newest: dict[str, tuple[int, str, str]] = {}
            for version, hostname, code in latest:
                if version.number > newest.get(hostname, (0, "", ""))[0]:
                    newest[hostname] = (version.number, code, version.text)
            dates = {int(v.collected_at.timestamp()) for v, _, _ in latest}
        assert {entry.commit.author_time for entry in walker} <= dates
        tree = repo[head.tree]
        assert isinstance(tree, Tree)
        for hostname, (_, code, text) in newest.items():
            folder = repo[tree[code.encode()][1]]
            assert isinstance(folder, Tree)
            blob = repo[folder[f"{hostname}.cfg".encode()][1]]
            assert isinstance(blob, Blob) and blob.data.decode() == text
        assert (path / next(iter(newest.values()))[1]).is_dir()  # the working tree is checked out
    finally:
        repo.close()


def test_concurrent_runs_make_unique_versions_and_a_crash_keeps_finished_devices(
        engine: Engine, city_ssh: RunningSsh) -> None:
    sites = {"JED-B02", "JED-B05", "JED-B06"}  # with two devices whose configuration changes per session
    ids = _seed(engine, city_ssh, sites=sites)
    # a credential that is refused, tried first: every device falls back to the lab's and remembers it
    with Session(engine) as session:
        session.add(build(MASTER, CredentialCreate(name="old-ssh", kind=CredentialKind.ssh_password,
                                                   username="netops", password="not-the-password",
                                                   port=city_ssh.port, priority=1)))
        session.commit()

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(run_backup(engine, MASTER, site_code=code, settings=SETTINGS)
                                           for code in ("JED-B02", "JED-B02", "JED-B05", "JED-B06"))))

    runs = asyncio.run(both())
    assert all(r.status == "ok" and r.failed == 0 for r in runs)
    with Session(engine) as session:
        rows = session.exec(select(ConfigVersion.device_id, ConfigVersion.number, ConfigVersion.sha256)).all()
        lab_cred = session.exec(select(func.max(col(ConfigBackupState.credential_id)))).one()
    by_device: dict[int, list[tuple[int, str]]] = {}
    for device_id, number, sha in rows:
        by_device.setdefault(device_id, []).append((number, sha))
    assert set(by_device) == set(ids.values())
    for device_id, numbers in by_device.items():
        ordered = sorted(numbers)
        assert [n for n, _ in ordered] == list(range(1, len(ordered) + 1)), device_id  # unique, no gaps
        assert all(a[1] != b[1] for a, b in zip(ordered, ordered[1:], strict=False))  # each a real change
    steady = {ids[h] for h in ids if h not in set(city_ssh.expected["behaviours"]["changing"])}
    assert all(len(by_device[d]) == 1 for d in steady)
    assert {s.credential_id for s in _states(engine).values()} == {lab_cred}

    # a run that breaks half-way: what finished is kept, the run says it failed
    from infra_mgr.network.ssh.collector import backup as real_backup

    async def crashing(targets: list[SshTarget], *, concurrency: int = 16,
                       on_done: Any = None) -> list[BackupResult]:
        await real_backup(targets[:1], concurrency=concurrency, on_done=on_done)
        raise RuntimeError("worker lost")

    before = _states(engine)
    with pytest.raises(RuntimeError):
        asyncio.run(run_backup(engine, MASTER, site_code="JED-B05", collect=crashing, settings=SETTINGS))
    with Session(engine) as session:
        crashed = session.exec(select(BackupRun).order_by(col(BackupRun.id).desc())).first()
    assert crashed is not None and crashed.status == "failed" and "worker lost" in crashed.error
    after = _states(engine)
    touched = [d for d in after if after[d].last_attempt != before[d].last_attempt]
    assert len(touched) == 1 and crashed.unchanged + crashed.changed == 1 and crashed.devices == 2


def _trap(address: str, oid: str, varbinds: dict[str, Any] | None = None) -> TrapFacts:
    return TrapFacts(source_address=address, source_port=162, received_at=dt.datetime.now(dt.UTC), version="2c",
                     pdu_type="trap", trap_oid=oid, varbinds=varbinds or {})


def test_config_change_traps_trigger_one_debounced_backup(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session:
        site = Site(code="JED-B07", name_en="Branch 7")
        session.add(site)
        session.flush()
        assert site.id is not None
        cisco = Device(site_id=site.id, hostname="jed-b07-rtr", management_address="127.2.7.1")
        junos = Device(site_id=site.id, hostname="jed-b07-sw", management_address="127.2.7.2")
        session.add(cisco)
        session.add(junos)
        session.commit()
        assert cisco.id is not None and junos.id is not None
        ids = (cisco.id, junos.id)
    calls: list[int] = []

    async def scenario() -> list[Any]:
        handler = TrapHandler(sqlite_engine, backup=calls.append, backup_debounce_s=0.2)
        dest = "1.3.6.1.4.1.9.9.43.1.1.6.1.5.17"
        events = await handler.handle_batch([
            _trap("127.2.7.1", "1.3.6.1.4.1.9.9.43.2.0.1", {dest: 3}),  # commandSource -> running
            _trap("127.2.7.1", "1.3.6.1.4.1.9.9.43.2.0.1", {dest: 4}),  # running -> startup (write mem)
            _trap("127.2.7.1", "1.3.6.1.4.1.9.9.43.2.0.1", {dest: 3}),
            _trap("127.2.7.2", "1.3.6.1.4.1.2636.4.5.0.1"),
        ])
        read_only = await handler.handle(_trap("127.2.7.2", "1.3.6.1.4.1.9.9.43.2.0.1", {dest: 2}))  # a read
        await handler.aclose(timeout=5)
        return [*events, read_only]

    events = asyncio.run(scenario())
    assert [e.kind for e in events] == ["config.change_notified"] * 5
    assert sorted(calls) == sorted(ids)  # one backup per device, none for a mere read


def test_unknown_scope_and_unsupported_platform(sqlite_engine: Engine) -> None:
    """Nothing to connect to: an unknown device is an error before any run starts; a device of a
    platform without a command set is recorded as unsupported (no SSH needed for either)."""
    with Session(sqlite_engine) as session:
        site = Site(code="JED-B08", name_en="Branch 8")
        session.add(site)
        session.flush()
        assert site.id is not None
        session.add(Device(site_id=site.id, hostname="jed-b08-cam", management_address="127.2.8.9",
                           platform="vxworks", vendor="Acme"))
        session.add(Device(site_id=site.id, hostname="jed-b08-rtr", management_address="127.2.8.1",
                           platform="ios-xe"))
        session.commit()
    with pytest.raises(NotFound):
        asyncio.run(run_backup(sqlite_engine, MASTER, device="no-such-device", settings=SETTINGS))
    with pytest.raises(NotFound):
        asyncio.run(run_backup(sqlite_engine, MASTER, site_code="JED-X99", settings=SETTINGS))
    run = asyncio.run(run_backup(sqlite_engine, MASTER, site_code="JED-B08", settings=SETTINGS))
    assert run.status == "ok" and (run.devices, run.failed) == (2, 2)
    kinds = {f["hostname"]: f["kind"] for f in run.failures}
    assert kinds == {"jed-b08-cam": "unsupported", "jed-b08-rtr": "no_credential"}
    with Session(sqlite_engine) as session:
        assert len(session.exec(select(BackupRun)).all()) == 1
        states = session.exec(select(ConfigBackupState)).all()
    assert sorted(s.reason_kind for s in states) == ["no_credential", "unsupported"]


def test_an_empty_configuration_is_a_failure_not_a_version(sqlite_engine: Engine) -> None:
    """A session that 'succeeds' with no text (a prompt mistaken for the end of the output) must
    not store an empty version, which would then show as two changes."""
    with Session(sqlite_engine) as session:
        site = Site(code="JED-B10", name_en="Branch 10")
        session.add(site)
        session.flush()
        assert site.id is not None
        session.add(Device(site_id=site.id, hostname="jed-b10-rtr", management_address="127.2.10.1",
                           platform="ios-xe"))
        session.add(build(MASTER, CredentialCreate(name="noc-ssh", kind=CredentialKind.ssh_password,
                                                   username="netops", password="pw", port=2222)))
        session.commit()

    async def empty(targets: list[SshTarget], *, concurrency: int = 16, on_done: Any = None) -> list[BackupResult]:
        assert [(t.address, t.port, t.device_type, t.username) for t in targets] == [
            ("127.2.10.1", 2222, "cisco_xe", "netops")]
        return [BackupResult(t.address, t.port, t.device_type, config="\n  \n") for t in targets]

    run = asyncio.run(run_backup(sqlite_engine, MASTER, site_code="JED-B10", collect=empty, settings=SETTINGS))
    assert run.failed == 1 and run.failures[0]["kind"] == "error"
    with Session(sqlite_engine) as session:
        assert session.exec(select(ConfigVersion)).all() == []
