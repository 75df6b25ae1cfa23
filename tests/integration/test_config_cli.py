"""``infra-mgr backup|config|ssh`` on a data directory seeded through the tables: tables and
``--json`` print the read views, a configuration goes to stdout as stored, diffs are unified or
side by side, search finds lines, host keys are accepted by device name, the git export commits
each version once, and a refusal is one line on stderr with exit status 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from config_seed import RTR_V1, Seeded, seed, unreachable
from sqlmodel import Session
from typer.testing import CliRunner

from infra_mgr.cli import app
from infra_mgr.config import Settings, get_settings
from infra_mgr.db import make_engine, upgrade
from infra_mgr.inventory.models import Device, DeviceStatus

SECRET = "cli-config-test-secret-0123456789"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Seeded]]:
    data = tmp_path / "data"
    monkeypatch.setenv("INFRA_MGR_DATA_DIR", str(data))
    monkeypatch.setenv("INFRA_MGR_SECRET_KEY", SECRET)
    monkeypatch.delenv("INFRA_MGR_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    url = Settings(data_dir=data, secret_key=SECRET).db_url
    upgrade(url)
    engine = make_engine(url)
    seeded = seed(engine)
    engine.dispose()
    yield data, seeded
    get_settings.cache_clear()


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_status_table_json_and_failed(data_dir: tuple[Path, Seeded]) -> None:
    code, out, _ = invoke("backup", "status")
    assert code == 0 and "4 devices: 2 ok, 1 failed, 1 never backed up" in out
    code, out, _ = invoke("backup", "status", "--failed", "--json")
    rows = json.loads(out)
    assert [(r["hostname"], r["reason"]) for r in rows] == [("jed-b01-sw01", "the password was refused")]
    code, out, _ = invoke("backup", "status", "--json")
    assert [r["hostname"] for r in json.loads(out)] == ["jed-b01-sw01", "jed-hq-core01", "jed-b01-rtr01",
                                                        "jed-b02-rtr01"]  # failed, never, then ok
    code, out, _ = invoke("backup", "status", "--site", "JED-B02", "--json")
    assert [r["hostname"] for r in json.loads(out)] == ["jed-b02-rtr01"]
    code, _, err = invoke("backup", "status", "--site", "JED-B99")
    assert code == 1 and "no site with code 'JED-B99'" in err


def test_status_at_80_columns_keeps_names_and_reasons_whole(data_dir: tuple[Path, Seeded],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra_mgr.network.ssh.cli.console.width", 80)
    code, out, _ = invoke("backup", "status")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    assert "jed-b01-sw01" in out and "jed-hq-core01" in out and "127.30.1.2" not in out  # address left out
    cells = " ".join(out.replace("│", " ").split())
    assert all(word in cells for word in ("password", "refused")) and "…" not in out  # wrapped, never cut
    assert "failing since 2026-11-04" in cells and "2026-11-01" in cells  # and its last success


def test_show_versions_and_diff(data_dir: tuple[Path, Seeded]) -> None:
    code, out, err = invoke("config", "show", "jed-b01-rtr01", "--version", "1")
    assert code == 0 and out == RTR_V1 and "jed-b01-rtr01 version 1" in err
    code, out, _ = invoke("config", "show", "jed-b01-rtr01", "--json")
    assert json.loads(out)["version"]["number"] == 3
    code, _, err = invoke("config", "show", "no-such-device")
    assert code == 1 and err.startswith("error: device: no device 'no-such-device'")
    code, out, _ = invoke("config", "versions", "jed-b01-rtr01", "--json")
    assert [v["number"] for v in json.loads(out)["versions"]] == [3, 2, 1]
    code, out, _ = invoke("config", "versions", "jed-b01-rtr01")
    assert code == 0 and "jed-b01-rtr01: 3 versions" in out
    code, out, _ = invoke("config", "diff", "jed-b01-rtr01", "1", "3")
    assert code == 0 and "+logging host 10.0.0.3" in out and "- transport input ssh telnet" in out
    assert "v1 → v3: +3 -2" in out
    code, out, _ = invoke("config", "diff", "jed-b01-rtr01", "1", "3", "--side-by-side", "--context", "0")
    assert code == 0 and "unchanged lines" in out and "10.0.0.3" in out
    code, out, _ = invoke("config", "diff", "jed-b01-rtr01", "--json")
    body = json.loads(out)
    assert (body["old"]["number"], body["new"]["number"], body["added"], body["removed"]) == (2, 3, 1, 1)
    code, _, err = invoke("config", "diff", "jed-b01-rtr01", "8")
    assert code == 1 and "a: no version 8" in err
    code, out, _ = invoke("config", "diff", "jed-b02-rtr01")
    assert code == 0 and "jed-b02-rtr01 v1: only one version stored: nothing to compare" in out
    assert "→" not in out
    code, _, err = invoke("config", "diff", "jed-hq-core01")
    assert code == 1 and err.startswith("error: device: no stored configuration")


def test_search(data_dir: tuple[Path, Seeded]) -> None:
    code, out, _ = invoke("config", "search", "telnet", "-C", "1")
    assert code == 0 and "jed-b02-rtr01 (JED-B02) v1: 1 matching lines" in out
    assert "/ip service set telnet disabled=no" in out and "1 of 3 devices match" in out
    code, out, _ = invoke("config", "search", "^ntp", "--site", "JED-B01", "--json")
    assert [h["hostname"] for h in json.loads(out)["hits"]] == ["jed-b01-rtr01"]
    code, _, err = invoke("config", "search", "(unclosed")
    assert code == 1 and err.startswith("error: pattern: not a valid regular expression")


def test_host_keys_and_accept(data_dir: tuple[Path, Seeded]) -> None:
    code, out, _ = invoke("ssh", "keys", "--pending", "--json")
    assert [k["hostname"] for k in json.loads(out)] == ["jed-b01-sw01"]
    code, out, _ = invoke("ssh", "keys")
    assert code == 0 and "1 pending of 2 host keys" in out
    code, out, _ = invoke("ssh", "keys", "--pending")
    assert code == 0 and "1 pending of 2 host keys" in out  # of every key recorded, not of those listed
    assert "jed-b01-sw01 (127.30.1.2:22) offers SHA256:offeredoffered; recorded SHA256:jed-b01-sw01" in out
    code, _, err = invoke("ssh", "accept", "jed-b01-sw01")  # shows the offered key, trusts nothing
    assert code == 1 and "offers SHA256:offeredoffered" in err and "--fingerprint SHA256:offeredoffered" in err
    code, _, err = invoke("ssh", "accept", "jed-b01-sw01", "--fingerprint", "SHA256:notthatone")
    assert code == 1 and "offers SHA256:offeredoffered, not SHA256:notthatone" in err
    code, out, _ = invoke("ssh", "keys", "--pending", "--json")
    assert [k["offered_fingerprint"] for k in json.loads(out)] == ["SHA256:offeredoffered"]
    code, out, _ = invoke("ssh", "accept", "jed-b01-sw01", "--fingerprint", "SHA256:offeredoffered")
    assert code == 0 and "jed-b01-sw01: now trusting ssh-ed25519 SHA256:offeredoffered" in out
    code, out, _ = invoke("ssh", "keys", "--pending", "--json")
    assert json.loads(out) == []
    code, out, _ = invoke("ssh", "keys", "--pending")
    assert "0 pending of 2 host keys" in out
    code, _, err = invoke("ssh", "accept", "jed-b01-sw01")
    assert code == 1 and "no refused key" in err
    code, _, err = invoke("ssh", "accept", "jed-hq-core01")
    assert code == 1 and "no host key recorded" in err


def test_check_and_export_git(data_dir: tuple[Path, Seeded], tmp_path: Path) -> None:
    code, out, _ = invoke("config", "check", "--json")
    body = json.loads(out)
    assert body["devices"] == 3
    assert ("jed-b01-sw01", "syslog-host") in {(f["hostname"], f["rule_id"]) for f in body["findings"]}
    code, out, _ = invoke("config", "check", "--site", "JED-B02")
    assert "JED-B02: 0 of 1 devices compliant" in out and "3 configurations checked" in out
    code, out, _ = invoke("config", "check", "--site", "JED-B01")
    assert "JED-B01: 0 of 2 devices compliant;" in out  # both stored, nothing unread
    repo = tmp_path / "configs.git"
    code, out, _ = invoke("config", "export-git", str(repo))
    assert code == 0 and out.startswith("5 commits written")  # one per stored version
    code, out, _ = invoke("config", "export-git", str(repo))
    assert out.startswith("0 commits written")


def test_check_counts_devices_never_read(data_dir: tuple[Path, Seeded]) -> None:
    """A site's compliance counts the devices a backup should read but never stored: an active
    device with an address; not one without an address, nor a retired one."""
    data, seeded = data_dir
    engine = make_engine(Settings(data_dir=data, secret_key=SECRET).db_url)
    with Session(engine) as s:
        site = seeded.sites["JED-B01"]
        s.add_all([Device(site_id=site, hostname="jed-b01-ap01", management_address="127.30.1.3"),
                   Device(site_id=site, hostname="jed-b01-ups01"),
                   Device(site_id=site, hostname="jed-b01-old01", management_address="127.30.1.4",
                          status=DeviceStatus.decommissioned.value)])
        s.commit()
    engine.dispose()
    code, out, _ = invoke("config", "check", "--site", "JED-B01")
    assert "JED-B01: 0 of 3 devices compliant (1 not read);" in out
    code, out, _ = invoke("config", "check", "--json")
    sites = {x["site_code"]: x for x in json.loads(out)["sites"]}
    assert (sites["JED-B01"]["devices"], sites["JED-B01"]["not_read"], sites["JED-B02"]["not_read"]) == (2, 1, 0)


def test_backup_run_reports_each_failure(data_dir: tuple[Path, Seeded]) -> None:
    data, _seeded = data_dir
    engine = make_engine(Settings(data_dir=data, secret_key=SECRET).db_url)
    unreachable(engine, SECRET.encode(), "jed-b01-rtr01")
    engine.dispose()
    code, out, _ = invoke("backup", "run", "--device", "jed-b01-rtr01")
    assert code == 1  # a failed device fails the command: cron and Ansible see it
    assert "(device jed-b01-rtr01): 1 devices" in out and "0 changed, 0 unchanged, 1 failed" in out
    assert "failed: jed-b01-rtr01 (127.30.9.9): " in out
    code, out, _ = invoke("backup", "status", "--failed", "--json")
    rtr = next(r for r in json.loads(out) if r["hostname"] == "jed-b01-rtr01")
    assert rtr["status"] == "failed" and rtr["reason_kind"] and rtr["reason"]
    code, out, _ = invoke("backup", "run", "--device", "jed-b01-rtr01", "--json")
    assert code == 1 and json.loads(out)["failed"] == 1
    code, _, err = invoke("backup", "run", "--site", "JED-B01", "--device", "jed-b01-rtr01")
    assert code == 1 and "not both" in err


def test_errors_are_one_line_from_the_real_command(data_dir: tuple[Path, Seeded]) -> None:
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "infra_mgr", "config", "search", "a{2,1}"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "pattern" in proc.stderr and "Traceback" not in proc.stderr
