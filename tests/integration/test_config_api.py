"""The configuration backup API and its read views on SQLite and a real PostgreSQL, over rows
written straight into the tables (tests/config_seed.py): backup states, versions and their texts,
diffs with known counts, regex search (a bad or runaway pattern is a 422 naming ``pattern``),
compliance per device and per site, runs and host keys. Reading is for every role; running a
backup, accepting a host key and re-checking the rules need ``config.manage`` (a viewer is
refused with 403); unknown devices, versions, runs and keys are 404."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from config_seed import RTR_V3, Seeded, seed, unreachable
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlmodel import Session

from infra_mgr.network.ssh import views
from infra_mgr.network.ssh.models import ConfigBackupState, ConfigVersion

API = "/api/v1"
Client = Callable[[str], TestClient]


@pytest.fixture
def seeded(engine: Engine) -> Seeded:
    return seed(engine)


def _loc(resp: Any) -> list[list[Any]]:
    body = resp.json()
    if isinstance(body.get("detail"), list):
        return [e["loc"] for e in body["detail"]]
    return [e["loc"] for e in body.get("errors", [])]


@pytest.mark.postgres
def test_backup_states_page_and_filters(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    page = viewer.get(f"{API}/configs").json()
    assert page["total"] == 4
    by_host = {r["hostname"]: r for r in page["rows"]}
    assert list(by_host) == ["jed-b01-sw01", "jed-hq-core01", "jed-b01-rtr01", "jed-b02-rtr01"]  # failed, never, ok
    assert by_host["jed-b01-sw01"]["since"].startswith("2026-11-04T02:00")  # failing since
    assert by_host["jed-b01-sw01"]["last_success"].startswith("2026-11-01T02:00")
    assert by_host["jed-hq-core01"]["status"] == "never" and by_host["jed-hq-core01"]["versions"] == 0
    assert by_host["jed-hq-core01"]["address"] == "127.30.0.1"
    assert by_host["jed-b01-sw01"]["reason"] == "the password was refused"
    assert by_host["jed-b01-sw01"]["device_type"] == "juniper_junos"  # from the platform table
    assert (by_host["jed-b02-rtr01"]["findings"], by_host["jed-b02-rtr01"]["worst_severity"]) == (2, "warning")
    failed = viewer.get(f"{API}/configs", params={"status": "failed"}).json()
    assert [r["hostname"] for r in failed["rows"]] == ["jed-b01-sw01"]
    never = viewer.get(f"{API}/configs", params={"status": "never"}).json()
    assert [r["hostname"] for r in never["rows"]] == ["jed-hq-core01"]
    site = viewer.get(f"{API}/configs", params={"site": "jed-b01", "size": 1, "page": 2}).json()
    assert (site["total"], site["page"], [r["hostname"] for r in site["rows"]]) == (2, 2, ["jed-b01-rtr01"])
    assert viewer.get(f"{API}/configs", params={"site": "JED-B99"}).status_code == 404
    bad = viewer.get(f"{API}/configs", params={"status": "broken"})
    assert bad.status_code == 422 and ["query", "status"] in _loc(bad)


@pytest.mark.postgres
def test_versions_text_and_unknowns(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    rtr = seeded.devices["jed-b01-rtr01"]
    listing = viewer.get(f"{API}/configs/jed-b01-rtr01/versions").json()
    assert [v["number"] for v in listing["versions"]] == [3, 2, 1]
    assert listing["total"] == 3 and listing["device"]["device_id"] == rtr
    assert "text" not in listing["versions"][0]
    assert listing["versions"][0]["actor"] == "alice" and listing["versions"][1]["changed_lines"] == 3
    by_id = viewer.get(f"{API}/configs/{rtr}/versions", params={"size": 1, "page": 2}).json()
    assert [v["number"] for v in by_id["versions"]] == [2]
    one = viewer.get(f"{API}/configs/jed-b01-rtr01/versions/3").json()
    assert one["text"] == RTR_V3 and one["version"]["number"] == 3
    assert viewer.get(f"{API}/configs/JED-B01-RTR01/latest").json()["version"]["number"] == 3
    missing = viewer.get(f"{API}/configs/jed-b01-rtr01/versions/9")
    assert missing.status_code == 404 and ["path", "number"] in _loc(missing)
    nodev = viewer.get(f"{API}/configs/no-such-host/versions")
    assert nodev.status_code == 404 and ["path", "device"] in _loc(nodev)
    assert viewer.get(f"{API}/configs/jed-hq-core01/latest").status_code == 404  # nothing stored yet
    assert viewer.get(f"{API}/configs/jed-b01-rtr01/versions/0").status_code == 422


@pytest.mark.postgres
def test_diff_defaults_and_counts(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    latest = viewer.get(f"{API}/configs/jed-b01-rtr01/diff").json()
    assert (latest["old"]["number"], latest["new"]["number"]) == (2, 3)
    assert (latest["added"], latest["removed"]) == (1, 1)
    assert "- transport input ssh telnet\n" in latest["unified"] and "+ transport input ssh\n" in latest["unified"]
    span = viewer.get(f"{API}/configs/jed-b01-rtr01/diff", params={"a": 1, "b": 3, "context": 1}).json()
    assert (span["added"], span["removed"]) == (3, 2)
    kinds = [r["kind"] for r in span["rows"]]
    assert kinds.count("changed") == 2 and kinds.count("added") == 1 and "skipped" in kinds
    added = next(r for r in span["rows"] if r["kind"] == "added")
    assert added["right"] == "logging host 10.0.0.3" and added["left"] is None
    single = viewer.get(f"{API}/configs/jed-b02-rtr01/diff").json()
    assert (single["old"]["number"], single["new"]["number"], single["added"], single["unified"]) == (1, 1, 0, "")
    assert single["note"] == "only one version stored: nothing to compare" and latest["note"] == ""
    none = viewer.get(f"{API}/configs/jed-hq-core01/diff")
    assert none.status_code == 404 and ["path", "device"] in _loc(none), none.json()
    bad = viewer.get(f"{API}/configs/jed-b01-rtr01/diff", params={"a": 7})
    assert bad.status_code == 404 and ["query", "a"] in _loc(bad)


@pytest.mark.postgres
def test_search_matches_lines_and_refuses_bad_patterns(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    found = viewer.get(f"{API}/configs/search", params={"pattern": r"^ntp server|ntp client", "context": 1}).json()
    assert found["devices_searched"] == 3  # the device never backed up has no latest configuration
    assert [h["hostname"] for h in found["hits"]] == ["jed-b01-rtr01", "jed-b02-rtr01"]
    rtr = found["hits"][0]
    assert [(ln["text"], ln["match"]) for ln in rtr["lines"] if ln["match"]] == [("ntp server 10.0.0.1", True)]
    assert len(rtr["lines"]) == 3 and rtr["version_number"] == 3
    site = viewer.get(f"{API}/configs/search", params={"pattern": "telnet", "site": "JED-B01"}).json()
    assert [h["hostname"] for h in site["hits"]] == []  # v3 of the router dropped telnet; the switch never had it
    few = viewer.get(f"{API}/configs/search", params={"pattern": "<secret hidden>", "limit": 2}).json()
    assert few["truncated"] and sum(h["matches"] for h in few["hits"]) > 2
    assert sum(1 for h in few["hits"] for ln in h["lines"] if ln["match"]) == 2
    for pattern in ("(unclosed", "a{2,1}", "x" * 600):
        bad = viewer.get(f"{API}/configs/search", params={"pattern": pattern})
        assert bad.status_code == 422, pattern
        assert ["query", "pattern"] in _loc(bad), bad.json()


def test_search_stops_a_runaway_pattern(sqlite_engine: Engine) -> None:
    """Catastrophic backtracking cannot hold the server: the search gives up and names the pattern."""
    seed(sqlite_engine)
    with Session(sqlite_engine) as s:
        state = s.get(ConfigBackupState, 1)
        assert state is not None and state.latest_version_id is not None
        version = s.get(ConfigVersion, state.latest_version_id)
        assert version is not None
        version.text += "x" * 1000 + "\n"
        s.add(version)
        s.commit()
    with Session(sqlite_engine) as s, pytest.raises(views.Invalid) as refused:
        views.search(s, r"(x+x+)+y", budget_s=0.5)
    assert refused.value.errors[0]["field"] == "pattern" and "longer than" in refused.value.message


@pytest.mark.postgres
def test_compliance_findings_and_sites(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    rows = viewer.get(f"{API}/compliance/findings").json()
    assert [(r["hostname"], r["rule_id"], r["severity"]) for r in rows] == [
        ("jed-b01-sw01", "syslog", "critical"), ("jed-b02-rtr01", "no-telnet", "warning"),
        ("jed-b02-rtr01", "banner", "info")]
    assert rows[1]["lines"] == ["/ip service set telnet disabled=no"] and rows[1]["version_number"] == 1
    assert rows[1]["line_numbers"] == [3] and rows[0]["line_numbers"] == [None]  # "missing" is no line
    info = viewer.get(f"{API}/compliance/findings", params={"device": "jed-b02-rtr01", "severity": "info"})
    assert [r["rule_id"] for r in info.json()] == ["banner"]
    assert viewer.get(f"{API}/compliance/findings", params={"site": "JED-B01"}).json()[0]["rule_id"] == "syslog"
    assert viewer.get(f"{API}/compliance/findings", params={"device": "nope"}).status_code == 404
    assert viewer.get(f"{API}/compliance/findings", params={"severity": "bad"}).status_code == 422
    sites = {s["site_code"]: s for s in viewer.get(f"{API}/compliance/sites").json()}
    assert set(sites) == {"JED-B01", "JED-B02"}
    assert (sites["JED-B01"]["devices"], sites["JED-B01"]["compliant"], sites["JED-B01"]["by_severity"]) == (
        2, 1, {"critical": 1})
    assert (sites["JED-B02"]["compliant"], sites["JED-B02"]["findings"]) == (0, 2)
    assert (sites["JED-B01"]["not_read"], sites["JED-B02"]["not_read"]) == (0, 0)


def test_evidence_numbers_tell_repeated_lines_apart() -> None:
    text = "interface Gi0/1\n shutdown\n!\ninterface Gi0/2\n shutdown\n!\n"
    assert views.evidence_numbers(text, [" shutdown", " shutdown", "missing"]) == [2, 5, None]
    assert views.evidence_numbers("", ["x"]) == [None]


@pytest.mark.postgres
def test_runs_and_host_keys(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    page = viewer.get(f"{API}/backup/runs", params={"limit": 1}).json()
    assert [r["id"] for r in page["results"]] == [seeded.runs[1]] and page["next"]
    rest = viewer.get(f"{API}/backup/runs", params={"limit": 1, "cursor": page["next"]}).json()
    assert [r["id"] for r in rest["results"]] == [seeded.runs[0]] and rest["next"] is None
    run = viewer.get(f"{API}/backup/runs/{seeded.runs[1]}").json()
    assert run["failures"][0]["message"] == "the password was refused"
    assert viewer.get(f"{API}/backup/runs/999999").status_code == 404
    keys = viewer.get(f"{API}/ssh/host-keys").json()
    assert [k["hostname"] for k in keys] == ["jed-b01-rtr01", "jed-b01-sw01"]
    pending = viewer.get(f"{API}/ssh/host-keys", params={"pending": True}).json()
    assert [(k["hostname"], k["offered_fingerprint"]) for k in pending] == [("jed-b01-sw01", "SHA256:offeredoffered")]


@pytest.mark.postgres
def test_actions_need_config_manage(seeded: Seeded, client_for: Client) -> None:
    viewer = client_for("viewer")
    key = seeded.keys["jed-b01-sw01"]
    for method, path, body in (("post", "/backup/run", {"device": "jed-b01-rtr01"}),
                               ("post", f"/ssh/host-keys/{key}/accept", {"fingerprint": "SHA256:offeredoffered"}),
                               ("post", "/compliance/check", None)):
        resp = viewer.request(method, f"{API}{path}", json=body)
        assert resp.status_code == 403, path
        assert "config.manage" in resp.json()["detail"]
    netops = client_for("netops")
    assert netops.post(f"{API}/ssh/host-keys/{key}/accept").status_code == 422  # no fingerprint given
    other = netops.post(f"{API}/ssh/host-keys/{key}/accept", json={"fingerprint": "SHA256:someotherkey"})
    assert other.status_code == 409 and "SHA256:offeredoffered" in other.json()["detail"]
    assert viewer.get(f"{API}/ssh/host-keys", params={"pending": True}).json()[0]["offered_fingerprint"] == (
        "SHA256:offeredoffered")  # nothing trusted by the refused attempt
    accepted = netops.post(f"{API}/ssh/host-keys/{key}/accept", json={"fingerprint": "SHA256:offeredoffered"})
    assert accepted.status_code == 200, accepted.json()
    row = accepted.json()
    assert (row["fingerprint"], row["offered_fingerprint"], row["accepted_by"]) == (
        "SHA256:offeredoffered", "", "u_netops")
    again = {"fingerprint": "SHA256:offeredoffered"}
    assert netops.post(f"{API}/ssh/host-keys/{key}/accept", json=again).status_code == 409  # nothing waiting
    assert netops.post(f"{API}/ssh/host-keys/999999/accept", json=again).status_code == 404
    unknown = netops.post(f"{API}/backup/run", json={"site": "JED-B99"})
    assert unknown.status_code == 404 and ["body", "site"] in _loc(unknown)
    nodev = netops.post(f"{API}/backup/run", json={"device": "nowhere"})
    assert nodev.status_code == 404 and ["body", "device"] in _loc(nodev)
    extra = netops.post(f"{API}/backup/run", json={"sites": "JED-B01"})
    assert extra.status_code == 422
    mixed = netops.post(f"{API}/backup/run", json={"site": "JED-B02", "device": "jed-b01-rtr01"})
    assert mixed.status_code == 422 and ["body", "device"] in _loc(mixed)


@pytest.mark.postgres
def test_compliance_check_re_evaluates(seeded: Seeded, client_for: Client) -> None:
    """The seeded findings came from no rule: a re-check replaces them with what the rules say."""
    netops = client_for("netops")
    resp = netops.post(f"{API}/compliance/check")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["devices"] == 3
    rules_now = {(r["hostname"], r["rule_id"]) for r in netops.get(f"{API}/compliance/findings").json()}
    assert body["findings"] == len(rules_now)
    assert not {rule for _, rule in rules_now} & {"syslog", "banner"}  # the seed's own ids, gone
    assert ("jed-b02-rtr01", "no-telnet") in rules_now and ("jed-b01-rtr01", "no-telnet") not in rules_now
    assert ("jed-b01-sw01", "syslog-host") in rules_now  # the switch logs nowhere
    assert ("jed-b01-rtr01", "syslog-host") not in rules_now  # the router has its logging hosts
    assert ("jed-b01-rtr01", "ntp-servers") not in rules_now
    sites = {s["site_code"]: s for s in body["sites"]}
    assert sites["JED-B01"]["findings"] == sum(1 for host, _ in rules_now if host.startswith("jed-b01"))


def test_backup_run_starts_in_the_background(sqlite_engine: Engine,
                                             sqlite_client_for: Client) -> None:
    """A run of a device no SSH answers for: 202 at once with the run id; the run then ends failed
    for that device with its reason in words, and the run's URL shows it."""
    seed(sqlite_engine)
    unreachable(sqlite_engine, b"test-master-secret-0123456789", "jed-b01-rtr01")
    netops = sqlite_client_for("netops")
    resp = netops.post(f"{API}/backup/run", json={"device": "jed-b01-rtr01"})
    assert resp.status_code == 202, resp.json()
    started = resp.json()
    assert started["url"] == f"/api/v1/backup/runs/{started['run_id']}" and started["scope"] == "device jed-b01-rtr01"
    run: dict[str, Any] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = netops.get(started["url"]).json()
        if run["status"] != "running":
            break
        time.sleep(0.2)
    assert run["status"] in ("ok", "failed") and run["actor"] == "u_netops"
    assert run["devices"] == 1 and run["failed"] == 1
    assert run["failures"][0]["hostname"] == "jed-b01-rtr01" and run["failures"][0]["message"]
    assert run["failures"][0]["kind"] != "no_credential"  # it did try to connect
    state = netops.get(f"{API}/configs", params={"status": "failed"}).json()["rows"]
    assert "jed-b01-rtr01" in [r["hostname"] for r in state]


def test_lists_never_load_config_text(sqlite_engine: Engine) -> None:
    """The version list reads through the (device, number) index and never selects the text,
    whatever the number of versions (1,000 here)."""
    ids = seed(sqlite_engine)
    device_id = ids.devices["jed-b02-rtr01"]
    with Session(sqlite_engine) as s:
        s.add_all(ConfigVersion(device_id=device_id, number=n, sha256=f"{n:064x}", text=f"line {n}\n" * 50,
                                lines=50, size=400) for n in range(2, 1001))
        s.commit()
    statements: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(sqlite_engine, "before_cursor_execute", capture)
    try:
        with Session(sqlite_engine) as s:
            listing = views.versions(s, "jed-b02-rtr01", page=2, size=100)
            page = views.backups(s)
    finally:
        event.remove(sqlite_engine, "before_cursor_execute", capture)
    assert listing.total == 1000 and [v.number for v in listing.versions][:2] == [900, 899]
    assert page.total == 4
    assert not any("config_version.text" in st for st in statements), statements
    assert len([st for st in statements if st != "BEGIN"]) <= 8  # a fixed handful, whatever the fleet
    with sqlite_engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT id, number FROM config_version WHERE device_id = :d "
            "ORDER BY number DESC LIMIT 100 OFFSET 100"), {"d": device_id}))
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_backup_of_a_lab_branch_through_the_api(sqlite_engine: Engine, sqlite_client_for: Client,
                                                city_ssh: Any) -> None:
    """The real service against the lab's SSH devices: one branch whose router refuses the
    password. Its switch is stored (masked, searchable), the router is failed with the reason in
    words, and a second run stores nothing new."""
    from infra_mgr.inventory.models import Device, Site
    from infra_mgr.lab.city_model import build_city
    from infra_mgr.lab.ssh_lab import configure_ssh_credential

    refusing = city_ssh.expected["behaviours"]["refuse"][0]
    city = build_city()
    branch = next(d.site for d in city.devices if d.hostname == refusing)
    members = [d for d in city.devices if d.site == branch]
    with Session(sqlite_engine) as s:
        site = Site(code=branch, name_en=branch)
        s.add(site)
        s.flush()
        for d in members:
            s.add(Device(site_id=site.id or 0, hostname=d.hostname, management_address=d.address, role=d.role,
                         platform=d.platform.key))
        configure_ssh_credential(s, b"test-master-secret-0123456789", city_ssh)
        s.commit()
    netops = sqlite_client_for("netops")

    def run_site() -> dict[str, Any]:
        started = netops.post(f"{API}/backup/run", json={"site": branch.lower()})
        assert started.status_code == 202, started.json()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            run = netops.get(started.json()["url"]).json()
            if run["status"] != "running":
                return dict(run)
            time.sleep(0.3)
        raise AssertionError("the backup run did not finish")

    first = run_site()
    assert (first["devices"], first["failed"], first["changed"]) == (len(members), 1, len(members) - 1)
    assert [f["hostname"] for f in first["failures"]] == [refusing]
    rows = {r["hostname"]: r for r in netops.get(f"{API}/configs", params={"site": branch}).json()["rows"]}
    assert rows[refusing]["status"] == "failed" and rows[refusing]["reason_kind"] == "auth"
    assert rows[refusing]["reason"] and " " in rows[refusing]["reason"]  # words, not a code
    stored = [d.hostname for d in members if d.hostname != refusing]
    for host in stored:
        assert rows[host]["status"] == "ok" and rows[host]["versions"] == 1
        latest = netops.get(f"{API}/configs/{host}/latest").json()
        assert host in latest["text"] and city_ssh.password not in latest["text"]
    found = netops.get(f"{API}/configs/search", params={"pattern": "|".join(stored)}).json()
    assert sorted(h["hostname"] for h in found["hits"]) == sorted(stored)
    second = run_site()
    assert (second["changed"], second["unchanged"], second["failed"]) == (0, len(stored), 1)
    assert all(netops.get(f"{API}/configs/{h}/versions").json()["total"] == 1 for h in stored)


@pytest.mark.parametrize("pattern", [r"^ description uplink \d$", r"access\s+interface", r"community (public|private)",
                                     r"^$", r"x*", r"\Ainterface", r"(?<=mode )access"])
def test_search_finds_exactly_the_lines_a_line_by_line_match_finds(pattern: str) -> None:
    """The search passes over a configuration in one call when it can; the lines it returns must be
    those a match of every line on its own returns (a match across a line end is no line's match)."""
    import regex

    texts = [(i, "\n".join([f"interface Gi1/0/{j}\n description uplink {j % 10}\n switchport mode access"
                            for j in range(30)] + (["snmp-server community public RO", ""] if i % 3 == 0 else [])))
             for i in range(12)]
    rx = regex.compile(pattern)
    found, _ = views._match(texts, rx, 0, 100_000, 5.0)
    expected = [(i, [n + 1 for n, line in enumerate(t.splitlines()) if rx.search(line)]) for i, t in texts]
    assert [(i, [n for n, _t, hit, _s in lines if hit]) for i, _c, lines in found] == [e for e in expected if e[1]]
