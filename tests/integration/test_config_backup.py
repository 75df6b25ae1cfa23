"""Configuration backup against the lab's SSH devices, on SQLite and PostgreSQL: versions only on
change (no duplicates, also with two runs at once), each failing device with its reason while the
run goes on, host keys (first use, a changed key refused, accepted by an engineer), compliance
findings for exactly the devices the lab made non-compliant, git export, and config-changed traps."""

from __future__ import annotations

import asyncio
import base64
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
from infra_mgr.errors import Conflict, NotFound
from infra_mgr.events.models import Event
from infra_mgr.inventory.credentials import CredentialCreate, build
from infra_mgr.inventory.models import CredentialKind, Device, ObjectChange, Site
from infra_mgr.lab.city_model import build_city
from infra_mgr.lab.ssh_lab import RunningSsh, configure_ssh_credential
from infra_mgr.lab.ssh_sim import fingerprint, ssh_served
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
    """The devices the SSH lab serves (SNMP-discovered and SSH-only; not the ones the lab made
    silent) as inventory rows, and the lab credential."""
    city = build_city()
    ids: dict[str, int] = {}
    with Session(engine) as session:
        site_ids: dict[str, int] = {}
        for device in ssh_served(city):
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
        with pytest.raises(Conflict):  # only the fingerprint the engineer checked is trusted
            hostkeys.accept(session, (address, row.port), "bob", row.fingerprint)
        accepted = hostkeys.accept(session, (address, row.port), "bob", new_fp)
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


def _one_device(engine: Engine, code: str, address: str, **params: Any) -> int:
    """A site with one IOS-XE router and a password credential (``params`` added to it)."""
    with Session(engine) as session:
        site = Site(code=code, name_en=code)
        session.add(site)
        session.flush()
        assert site.id is not None
        dev = Device(site_id=site.id, hostname=f"{code.lower()}-rtr", management_address=address,
                     platform="ios-xe")
        session.add(dev)
        cred = build(MASTER, CredentialCreate(name=f"{code}-ssh", kind=CredentialKind.ssh_password,
                                              username="netops", password="pw", port=2222))
        cred.params = {**cred.params, **params}
        session.add(cred)
        session.commit()
        assert dev.id is not None
        return dev.id


def test_a_read_older_than_the_latest_version_is_not_stored_as_newer(sqlite_engine: Engine) -> None:
    """Two overlapping runs: the one that read before a change stores last. Its text is older
    than the latest version, so it must not become version N+1; versions are dated when read."""
    device_id = _one_device(sqlite_engine, "JED-B11", "127.2.11.1")
    early = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    late = early + dt.timedelta(minutes=5)

    def reading(text: str, started: dt.datetime) -> Any:
        async def collect(targets: list[SshTarget], *, concurrency: int = 16,
                          on_done: Any = None) -> list[BackupResult]:
            return [BackupResult(t.address, t.port, t.device_type, config=text, started_at=started) for t in targets]
        return collect

    asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id, collect=reading("hostname r\nntp server 1\n",
                                                                                     early - dt.timedelta(hours=1)),
                           settings=SETTINGS))
    asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id,
                           collect=reading("hostname r\nntp server 2\n", late), settings=SETTINGS))
    stale = asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id,
                                   collect=reading("hostname r\nntp server 1\n", early), settings=SETTINGS))
    assert stale.failed == 0 and stale.changed == 0
    versions = _versions(sqlite_engine)[device_id]
    assert [v.text for v in versions] == ["hostname r\nntp server 1\n", "hostname r\nntp server 2\n"]
    assert versions[-1].collected_at.replace(tzinfo=dt.UTC) == late  # the time it was read, not stored
    assert _states(sqlite_engine)[device_id].latest_version_id == versions[-1].id


def test_one_backup_of_a_device_at_a_time(sqlite_engine: Engine) -> None:
    """A second run for a device already being backed up waits for the first to finish, so it
    reads after the first one's read, never interleaved with it."""
    device_id = _one_device(sqlite_engine, "JED-B12", "127.2.12.1")
    log: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        def collecting(name: str) -> Any:
            async def collect(targets: list[SshTarget], *, concurrency: int = 16,
                              on_done: Any = None) -> list[BackupResult]:
                log.append(f"{name} reads")
                if name == "first":
                    await release.wait()
                log.append(f"{name} done")
                return [BackupResult(t.address, t.port, t.device_type, config=f"hostname {name}\n",
                                     started_at=dt.datetime.now(dt.UTC)) for t in targets]
            return collect

        first = asyncio.create_task(run_backup(sqlite_engine, MASTER, device=device_id,
                                               collect=collecting("first"), settings=SETTINGS))
        while "first reads" not in log:
            await asyncio.sleep(0.01)
        second = asyncio.create_task(run_backup(sqlite_engine, MASTER, device=device_id,
                                                collect=collecting("second"), settings=SETTINGS))
        for _ in range(50):  # let the second run plan and reach the device
            await asyncio.sleep(0.01)
        assert "second reads" not in log
        release.set()
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    assert log == ["first reads", "first done", "second reads", "second done"]
    assert [v.text for v in _versions(sqlite_engine)[device_id]] == ["hostname first\n", "hostname second\n"]


def test_a_jump_host_key_is_trusted_on_first_use_and_a_change_refused(sqlite_engine: Engine) -> None:
    """The jump host's key is handed to the collector once known, recorded on first contact, and
    a different key is kept as offered (refused) with a critical event, as for a device."""
    from infra_mgr.network.ssh.facts import HostKey, SshFailure, SshProblem

    device_id = _one_device(sqlite_engine, "JED-B13", "127.2.13.1", jump_host="127.2.13.254", jump_port=2200)
    first_key = HostKey("ssh-ed25519", base64.b64encode(b"the jump host's first key").decode())
    other_key = HostKey("ssh-ed25519", base64.b64encode(b"another key on that address").decode())
    seen: list[HostKey | None] = []

    def answering(key: HostKey, problem: SshProblem | None = None) -> Any:
        async def collect(targets: list[SshTarget], *, concurrency: int = 16,
                          on_done: Any = None) -> list[BackupResult]:
            assert all(t.jump is not None and (t.jump.address, t.jump.port) == ("127.2.13.254", 2200)
                       for t in targets)
            seen.extend(t.jump.known_key for t in targets if t.jump is not None)
            return [BackupResult(t.address, t.port, t.device_type, config=None if problem else "hostname r\n",
                                 problem=problem, jump_key=key) for t in targets]
        return collect

    asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id, collect=answering(first_key), settings=SETTINGS))
    asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id, collect=answering(first_key), settings=SETTINGS))
    refused = asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id, settings=SETTINGS, collect=answering(
        other_key, SshProblem(SshFailure.hostkey_changed, "the jump host's key changed"))))
    assert seen == [None, first_key, first_key]
    assert refused.failed == 1 and refused.failures[0]["kind"] == "hostkey_changed"
    with Session(sqlite_engine) as session:
        row = session.exec(select(SshHostKey).where(SshHostKey.address == "127.2.13.254")).one()
    assert (row.port, row.fingerprint, row.offered_fingerprint) == (2200, first_key.fingerprint,
                                                                   other_key.fingerprint)
    alarms = _events(sqlite_engine, "ssh.hostkey_changed")
    assert len(alarms) == 1 and alarms[0].severity == "critical" and alarms[0].data["address"] == "127.2.13.254"


def test_other_writers_are_not_held_while_a_configuration_is_compared(sqlite_engine: Engine,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Comparing a large configuration with the latest version can take long: it runs before the
    write transaction, so another writer (an inventory edit, a poller) can commit meanwhile."""
    from sqlalchemy.exc import OperationalError

    from infra_mgr.network.ssh import backup as backup_mod

    device_id = _one_device(sqlite_engine, "JED-B14", "127.2.14.1")
    real_compare = backup_mod.diff.compare
    writes: list[str] = []

    def compare_while_someone_writes(old: str, new: str) -> Any:
        try:
            with write_session(sqlite_engine) as session:
                session.add(Site(code=f"JED-W{len(writes)}", name_en="written meanwhile"))
            writes.append("committed")
        except OperationalError:
            writes.append("locked out")
        return real_compare(old, new)

    monkeypatch.setattr(backup_mod.diff, "compare", compare_while_someone_writes)

    async def collect(targets: list[SshTarget], *, concurrency: int = 16, on_done: Any = None) -> list[BackupResult]:
        return [BackupResult(t.address, t.port, t.device_type, config="hostname r\n") for t in targets]

    run = asyncio.run(run_backup(sqlite_engine, MASTER, device=device_id, collect=collect, settings=SETTINGS))
    assert run.changed == 1 and writes and set(writes) == {"committed"}


def test_git_export_reads_only_new_versions_and_keeps_colliding_names_apart(sqlite_engine: Engine, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``rtr/1`` and ``rtr_1`` both give the file name ``rtr_1.cfg``: each keeps its own file. A
    second export reads the texts of the new versions only, a batch at a time."""
    with Session(sqlite_engine) as session:
        site = Site(code="JED-B15", name_en="Branch 15")
        session.add(site)
        session.flush()
        assert site.id is not None
        slash = Device(site_id=site.id, hostname="rtr/1", management_address="127.2.15.1")
        under = Device(site_id=site.id, hostname="rtr_1", management_address="127.2.15.2")
        session.add_all([slash, under])
        session.flush()
        assert slash.id is not None and under.id is not None
        start = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
        for n in range(1, 4):
            for dev in (slash, under):
                text = f"hostname {dev.hostname}\nversion {n}\n"
                session.add(ConfigVersion(device_id=dev.id, number=n, sha256=f"{dev.id}-{n}", text=text,
                                          lines=2, size=len(text), collected_at=start + dt.timedelta(minutes=n),
                                          trigger="manual", device_type="cisco_xe"))
        session.commit()
        ids = (slash.id, under.id)
    asked: list[list[int]] = []
    real_texts = gitexport._texts

    def texts(engine: Engine, version_ids: list[int]) -> dict[int, str]:
        asked.append(list(version_ids))
        return real_texts(engine, version_ids)

    monkeypatch.setattr(gitexport, "_texts", texts)
    monkeypatch.setattr(gitexport, "TEXT_BATCH", 4)
    repo_path = tmp_path / "configs"
    assert gitexport.export(sqlite_engine, repo_path) == 6
    assert [len(a) for a in asked] == [4, 2]
    with Session(sqlite_engine) as session:
        text = "hostname rtr_1\nversion 4\n"
        session.add(ConfigVersion(device_id=ids[1], number=4, sha256="new", text=text, lines=2, size=len(text),
                                  collected_at=dt.datetime(2026, 5, 2, tzinfo=dt.UTC), trigger="trap",
                                  device_type="cisco_xe"))
        session.commit()
        newest = session.exec(select(ConfigVersion.id).where(ConfigVersion.sha256 == "new")).one()
    asked.clear()
    assert gitexport.export(sqlite_engine, repo_path) == 1
    assert asked == [[newest]]
    repo = Repo(str(repo_path))
    try:
        head = repo[repo.head()]
        assert isinstance(head, Commit)
        tree = repo[head.tree]
        assert isinstance(tree, Tree)
        folder = repo[tree[b"JED-B15"][1]]
        assert isinstance(folder, Tree)
        contents = {}
        for entry in folder.iteritems():
            blob = repo[entry.sha]
            assert isinstance(blob, Blob)
            contents[entry.path.decode()] = blob.data.decode()
    finally:
        repo.close()
    assert contents == {"rtr_1.cfg": "hostname rtr/1\nversion 3\n",
                        f"rtr_1-{ids[1]}.cfg": "hostname rtr_1\nversion 4\n"}
