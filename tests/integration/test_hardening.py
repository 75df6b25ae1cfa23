"""Input hygiene at the door and stored data that must stay readable: poisoned event data, secrets
in power-device URLs, oversize discovery targets, names with control characters, LIKE wildcards in
searches, the audit log's caller and the database file's mode."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from infra_mgr.api.audit import redact
from infra_mgr.auth.models import AuditLog

Clients = Callable[[str], TestClient]


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        node = {"n": node}
    return node


def _audit_rows(engine: Engine, path: str) -> list[AuditLog]:
    with Session(engine) as s:
        return list(s.exec(select(AuditLog).where(AuditLog.path == path).order_by(AuditLog.id)).all())


# --------------------------------------------------------------------------- events


def test_event_data_too_deep_is_refused_and_nothing_is_stored(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    r = sqlite_admin.post("/api/v1/events", json={"kind": "x.deep", "data": _nested(300)})
    assert r.status_code == 422, r.text
    assert "data" in json.dumps(r.json())
    r = sqlite_admin.post("/api/v1/events", json={"kind": "x.ok", "data": _nested(16)})
    assert r.status_code == 201, r.text
    with sqlite_engine.connect() as conn:
        kinds = [row[0] for row in conn.execute(text("SELECT kind FROM event"))]
    assert kinds == ["x.ok"]
    assert sqlite_admin.get("/api/v1/events").status_code == 200


def test_event_data_too_large_is_refused(sqlite_admin: TestClient) -> None:
    r = sqlite_admin.post("/api/v1/events", json={"kind": "x.big", "data": {"blob": "a" * 70_000}})
    assert r.status_code == 422, r.text


def test_request_body_over_a_mebibyte_is_413_and_audited(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    r = sqlite_admin.post("/api/v1/events", json={"kind": "x.huge", "data": {"blob": "a" * (2 * 1024 * 1024)}})
    assert r.status_code == 413, r.text
    rows = _audit_rows(sqlite_engine, "/api/v1/events")
    assert rows and rows[-1].status_code == 413 and rows[-1].username == "u_admin"


def test_streamed_body_over_the_cap_is_413(sqlite_admin: TestClient) -> None:
    def chunks():  # no Content-Length: the cap must hold while the body arrives
        for _ in range(40):
            yield b"x" * 64 * 1024

    r = sqlite_admin.post("/api/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text


@pytest.mark.parametrize("depth", [300, 900])
def test_stored_over_deep_event_rows_read_back(sqlite_admin: TestClient, sqlite_engine: Engine, depth: int) -> None:
    """Rows written before the door was shut (or by another process) must not break the list."""
    deep = '{"keep": "me", "deep": ' + '{"n": ' * depth + "1" + "}" * depth + "}"
    with sqlite_engine.begin() as conn:
        for kind, data in (("old.deep", deep), ("old.big", json.dumps({"blob": "b" * 200_000}))):
            conn.execute(text("INSERT INTO event (time, kind, severity, message, data) "
                              "VALUES (CURRENT_TIMESTAMP, :k, 'info', '', :d)"), {"k": kind, "d": data})
    r = sqlite_admin.get("/api/v1/events")
    assert r.status_code == 200, r.text[:500]
    by_kind = {e["kind"]: e["data"] for e in r.json()["results"]}
    deep = by_kind["old.deep"]
    assert deep["keep"] == "me"
    assert "truncated" in json.dumps(deep)
    assert by_kind["old.big"]["_bytes"] > 200_000


def test_deeply_nested_write_still_has_an_audit_row(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    body = '{"kind": "x.deep", "data": ' + '{"n": ' * 950 + "1" + "}" * 950 + "}"
    r = sqlite_admin.post("/api/v1/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422
    rows = _audit_rows(sqlite_engine, "/api/v1/events")
    assert len(rows) == 1 and rows[0].status_code == 422 and rows[0].username == "u_admin"


def test_redact_is_bounded_on_hostile_nesting() -> None:
    deep: Any = "x"
    for _ in range(50_000):
        deep = [deep]
    out = redact({"password": "p", "list": deep})
    assert out["password"] == "***"
    assert "truncated" in json.dumps(out)


def test_unparsable_body_audit_names_the_caller(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    r = sqlite_admin.post("/api/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    rows = _audit_rows(sqlite_engine, "/api/v1/events")
    assert rows[-1].username == "u_admin"


# --------------------------------------------------------------------------- power source secrets


def test_power_url_secrets_are_masked_encrypted_and_kept(sqlite_client_for: Clients, sqlite_engine: Engine) -> None:
    admin, viewer = sqlite_client_for("admin"), sqlite_client_for("viewer")
    r = admin.post("/api/v1/power/devices", json={"name": "ups-nut", "kind": "ups",
                                                  "source": "nut://monuser:S3cr3tPW@127.0.0.1:3493/ups1"})
    assert r.status_code == 201, r.text
    nut_id = r.json()["id"]
    assert r.json()["source"] == "nut://monuser:***@127.0.0.1:3493/ups1"
    r = admin.post("/api/v1/power/devices", json={"name": "ups-snmp", "kind": "ups",
                                                  "source": "snmp://CommUn1ty@127.0.0.2:161"})
    assert r.status_code == 201, r.text
    snmp_id = r.json()["id"]
    listed = viewer.get("/api/v1/power/devices").text
    assert "S3cr3tPW" not in listed and "CommUn1ty" not in listed
    assert "snmp://***@127.0.0.2:161" in listed

    # a PATCH repeating the masked URL keeps the secret; a new secret replaces it
    r = admin.patch(f"/api/v1/power/devices/{nut_id}", json={"source": "nut://monuser:***@127.0.0.1:3493/ups1",
                                                             "poll_interval_s": 2})
    assert r.status_code == 200, r.text
    r = admin.patch(f"/api/v1/power/devices/{snmp_id}", json={"source": "snmp://N3wComm@127.0.0.2:161"})
    assert r.status_code == 200 and "N3wComm" not in r.text

    with sqlite_engine.connect() as conn:
        dump = "\n".join(str(tuple(row)) for table in ("power_device", "audit_log")
                         for row in conn.execute(text(f"SELECT * FROM {table}")))
    for secret in ("S3cr3tPW", "CommUn1ty", "N3wComm"):
        assert secret not in dump, secret

    from infra_mgr.power.models import PowerDevice
    from infra_mgr.power.poller import PowerPoller

    poller = PowerPoller(sqlite_engine, b"test-master-secret-0123456789")
    urls = {ref.name: ref.source for ref, _ in poller._devices()}
    assert urls == {"ups-nut": "nut://monuser:S3cr3tPW@127.0.0.1:3493/ups1", "ups-snmp": "snmp://N3wComm@127.0.0.2:161"}
    with Session(sqlite_engine) as s:
        assert {d.name: d.poll_interval_s for d in s.exec(select(PowerDevice)).all()}["ups-nut"] == 2


def test_migration_0007_moves_existing_url_secrets(tmp_path: Path) -> None:
    from infra_mgr.db import make_engine, upgrade
    from infra_mgr.power.sources import full_source

    url = f"sqlite:///{tmp_path / 'old.db'}"
    key = b"migration-test-key-0123456789"
    upgrade(url, "0006", master=key)
    eng = make_engine(url)
    with eng.begin() as conn:
        for name, source in (("a", "nut://u:OldPass@127.0.0.1:3493/ups"), ("b", "snmp://OldComm@127.0.0.3"),
                             ("c", "modbus://127.0.0.4:502/1?map=dse")):
            conn.execute(text("INSERT INTO power_device (name, kind, source, critical, poll_interval_s, enabled, "
                              "status, state, flags, readings, message, created_at) VALUES (:n, 'ups', :s, 1, 1, 1, "
                              "'never', 'unknown', '[]', '{}', '', CURRENT_TIMESTAMP)"), {"n": name, "s": source})
    upgrade(url, master=key)
    with eng.connect() as conn:
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(text("SELECT name, source, source_secret FROM power_device"))}
    assert rows["a"][0] == "nut://u:***@127.0.0.1:3493/ups"
    assert rows["b"][0] == "snmp://***@127.0.0.3"
    assert rows["c"] == ("modbus://127.0.0.4:502/1?map=dse", "")
    assert "OldPass" not in str(rows) and "OldComm" not in str(rows)
    assert full_source(key, *rows["a"]) == "nut://u:OldPass@127.0.0.1:3493/ups"
    assert full_source(key, *rows["b"]) == "snmp://OldComm@127.0.0.3"
    eng.dispose()


def test_audit_log_masks_urls_in_any_field() -> None:
    out = redact({"source": "nut://u:pw@h/ups", "note": "see snmp://comm@10.0.0.1:161 and x"})
    assert out == {"source": "nut://u:***@h/ups", "note": "see snmp://***@10.0.0.1:161 and x"}


# --------------------------------------------------------------------------- discovery targets


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/64", "224.0.0.0/24"])
def test_oversize_seed_targets_are_refused(sqlite_admin: TestClient, cidr: str) -> None:
    r = sqlite_admin.post("/api/v1/discovery/targets", json={"cidr": cidr})
    assert r.status_code == 422, r.text
    assert "cidr" in json.dumps(r.json())


def test_allow_list_may_be_wide_but_not_everything(sqlite_admin: TestClient) -> None:
    def post(body: dict[str, str]) -> int:
        return sqlite_admin.post("/api/v1/discovery/targets", json=body).status_code

    assert post({"cidr": "10.0.0.0/8", "role": "allow"}) == 201
    assert post({"cidr": "0.0.0.0/0", "role": "allow"}) == 422
    assert post({"cidr": "127.9.0.0/20"}) == 201


def test_stored_oversize_target_is_skipped_with_a_reason(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    from infra_mgr.network.models import DiscoveryTarget

    with Session(sqlite_engine) as s:
        s.add(DiscoveryTarget(cidr="10.0.0.0/8", role="seed"))
        s.commit()
    r = sqlite_admin.post("/api/v1/discovery/run", json={})
    assert r.status_code == 422, r.text
    assert "10.0.0.0/8" in r.text and "4096" in r.text
    # with a usable seed beside it the run goes ahead and reports the skipped target
    r = sqlite_admin.post("/api/v1/credentials", json={"name": "c", "kind": "snmp_v2c", "community": "nope"})
    assert r.status_code == 201, r.text
    with Session(sqlite_engine) as s:
        s.add(DiscoveryTarget(cidr="127.66.0.1/32", role="seed"))
        s.commit()
    r = sqlite_admin.post("/api/v1/discovery/run", json={"timeout_s": 0.2, "retries": 0})
    assert r.status_code == 200, r.text
    problems = r.json()["problems"]
    assert any(p["address"] == "10.0.0.0/8" and "skipped" in p["message"] for p in problems), problems


# --------------------------------------------------------------------------- names, searches, files


@pytest.mark.parametrize("bad", ["core\x00sw", "sw\x1b[2J", "sw\u202egnp.exe", "two\nlines", "sw\u2066x"])
def test_names_refuse_control_and_bidi_characters(sqlite_admin: TestClient, bad: str) -> None:
    r = sqlite_admin.post("/api/v1/sites", json={"code": "S1", "name_en": bad, "name_ar": "موقع", "kind": "datacenter"})
    assert r.status_code == 422, r.text
    r = sqlite_admin.post("/api/v1/credentials", json={"name": bad, "kind": "snmp_v2c", "community": "c"})
    assert r.status_code == 422, r.text
    r = sqlite_admin.post("/api/v1/events", json={"kind": "x.y", "message": bad})
    assert r.status_code == (201 if bad == "two\nlines" else 422), r.text  # a message may span lines


def test_arabic_and_plain_names_are_fine(sqlite_admin: TestClient) -> None:
    r = sqlite_admin.post("/api/v1/sites", json={"code": "S1", "name_en": "Main DC", "name_ar": "المركز الرئيسي",
                                                 "kind": "datacenter"})
    assert r.status_code == 201, r.text


def test_like_wildcards_match_themselves(admin: TestClient) -> None:
    for code, name in (("A1", "plain"), ("A2", "100% up"), ("A3", "under_score")):
        r = admin.post("/api/v1/sites", json={"code": code, "name_en": name, "name_ar": name, "kind": "datacenter"})
        assert r.status_code == 201, r.text

    def codes(q: str) -> list[str]:
        r = admin.get("/api/v1/sites", params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(s["code"] for s in r.json()["results"])

    assert codes("%") == ["A2"]
    assert codes("_") == ["A3"]
    assert codes("PLAIN") == ["A1"]


def test_lists_honour_q_or_refuse_it(sqlite_admin: TestClient) -> None:
    for name in ("ups-a", "ups-b"):
        r = sqlite_admin.post("/api/v1/power/devices", json={"name": name, "kind": "ups",
                                                             "source": "snmp://127.0.0.5:161"})
        assert r.status_code == 201, r.text
    r = sqlite_admin.get("/api/v1/power/devices", params={"q": "ups-b"})
    assert [d["name"] for d in r.json()["results"]] == ["ups-b"]
    sqlite_admin.post("/api/v1/events", json={"kind": "x.one", "message": "alpha"})
    sqlite_admin.post("/api/v1/events", json={"kind": "x.two", "message": "beta"})
    r = sqlite_admin.get("/api/v1/events", params={"q": "BET"})
    assert [e["kind"] for e in r.json()["results"]] == ["x.two"]
    assert sqlite_admin.get("/api/v1/power/edges", params={"q": "x"}).status_code == 422


def test_sqlite_files_are_owner_only(sqlite_admin: TestClient, sqlite_url: str) -> None:
    assert sqlite_admin.post("/api/v1/events", json={"kind": "x.y"}).status_code == 201
    db = Path(sqlite_url.removeprefix("sqlite:///"))
    for path in (db, db.with_name(db.name + "-wal")):
        assert path.exists()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_existing_world_readable_sqlite_file_is_tightened(tmp_path: Path) -> None:
    from infra_mgr.db import make_engine

    db = tmp_path / "old.db"
    db.touch(mode=0o644)
    db.chmod(0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_second_engine_never_drops_the_first_ones_sqlite_locks(tmp_path: Path) -> None:
    """Opening and closing the database file in a process drops every POSIX lock the process holds
    on it; another process closing its own connection would then think it the last one, and
    check-point and delete the WAL under a live server (the CLI beside ``demo`` did)."""
    import subprocess
    import sys

    from infra_mgr.db import make_engine

    db = tmp_path / "shared.db"
    first = make_engine(f"sqlite:///{db}")
    with first.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    with first.connect() as conn:  # held open, as a server's pooled connection is
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        wal = db.with_name(db.name + "-wal")
        assert wal.exists()
        make_engine(f"sqlite:///{db}").dispose()  # e.g. a second engine made by a command in the same process
        other = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                 "c.execute('SELECT count(*) FROM t').fetchall(); c.close()")
        subprocess.run([sys.executable, "-c", other, str(db)], check=True)
        assert wal.exists(), "another process deleted the WAL: this process's locks were lost"
    first.dispose()


def test_credentials_list_honours_q_with_wildcards_literal(sqlite_admin: TestClient) -> None:
    for name, desc in (("core-v2c", "plain"), ("edge-v2c", "100% of edge"), ("lab_v2c", "lab")):
        r = sqlite_admin.post("/api/v1/credentials", json={"name": name, "kind": "snmp_v2c", "community": "c0mm",
                                                           "description": desc})
        assert r.status_code == 201, r.text

    def names(q: str) -> list[str]:
        r = sqlite_admin.get("/api/v1/credentials", params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(c["name"] for c in r.json()["results"])

    assert names("EDGE") == ["edge-v2c"]
    assert names("%") == ["edge-v2c"]
    assert names("_") == ["lab_v2c"]
    assert names("c0mm") == []  # the secret is never searched
    assert names("v2c") == ["core-v2c", "edge-v2c", "lab_v2c"]


def test_users_list_honours_q_with_wildcards_literal(sqlite_admin: TestClient) -> None:
    for username, full in (("noc.amal", "Amal Noor"), ("ops_omar", "Omar 100%"), ("audit1", "Hind")):
        r = sqlite_admin.post("/api/v1/users", json={"username": username, "full_name": full,
                                                     "password": "a long enough password"})
        assert r.status_code == 201, r.text

    def names(q: str) -> list[str]:
        r = sqlite_admin.get("/api/v1/users", params={"q": q})
        assert r.status_code == 200, r.text
        return sorted(u["username"] for u in r.json()["results"])

    assert names("amal") == ["noc.amal"]
    assert names("HIND") == ["audit1"]
    assert names("%") == ["ops_omar"]
    assert names("_") == ["ops_omar", "u_admin"]


def test_audit_records_the_query_string_with_secrets_redacted(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    r = sqlite_admin.post("/api/v1/prefixes", json={"prefix": "10.9.0.0/24"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = sqlite_admin.post(f"/api/v1/prefixes/{pid}/allocate", json={})
    assert r.status_code == 201, r.text
    assert sqlite_admin.delete(f"/api/v1/prefixes/{pid}", params={"cascade": "true"}).status_code == 204
    with Session(sqlite_engine) as s:
        deletes = [a.path for a in s.exec(select(AuditLog).where(AuditLog.method == "DELETE")).all()]
    assert deletes == [f"/api/v1/prefixes/{pid}?cascade=true"]
    # A refused request is audited too, and a secret-looking parameter never reaches the log.
    r = sqlite_admin.post("/api/v1/events", params={"token": "hunter2-secret", "src": "nut://u:pw@h", "n": "1"},
                          json={"kind": "x.q"})
    assert r.status_code == 422, r.text
    with Session(sqlite_engine) as s:
        row = s.exec(select(AuditLog).where(AuditLog.method == "POST").order_by(AuditLog.id.desc())).first()  # type: ignore[union-attr]  # column
    assert row is not None
    assert row.path == "/api/v1/events?token=***&src=nut://u:***@h&n=1"
    assert "hunter2" not in row.path and "pw" not in row.path


def test_route_specific_error_answers_are_documented_with_their_shape(sqlite_admin: TestClient) -> None:
    """A series of a power device that does not exist is a 404 the document declares, and every
    error status a route declares itself (404 by a query id, 429 on sign-in) has the error body."""
    r = sqlite_admin.get("/api/v1/power/series", params={"device_id": 999, "name": "battery.charge"})
    assert r.status_code == 404, r.text
    assert set(r.json()) == {"detail", "errors"}
    doc = sqlite_admin.get("/api/v1/openapi.json").json()
    declared = doc["paths"]["/api/v1/power/series"]["get"]["responses"]
    assert declared["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    r = sqlite_admin.get("/api/v1/power/view")
    assert r.status_code == 404, r.text  # nothing configured yet
    declared = doc["paths"]["/api/v1/power/view"]["get"]["responses"]
    assert declared["404"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
    login_429 = doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]
    assert login_429["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


# --------------------------------------------------------------------------- unstorable text and numbers, URL secrets


def _fields(r: Any) -> set[str]:
    """The fields a 422 names, whether a model refused the body or a route did."""
    body = r.json()
    named = {str(e.get("field", "")).rsplit(".", 1)[-1] for e in body.get("errors", [])}
    if isinstance(body.get("detail"), list):
        named |= {str(e["loc"][-1]) for e in body["detail"] if e.get("loc")}
    return named


def test_lone_surrogates_and_nan_never_break_the_audit_list(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    anon = TestClient(sqlite_admin.app, raise_server_exceptions=False)
    r = anon.post("/api/v1/auth/login", headers={"Content-Type": "application/json"},
                  content=b'{"username":"x","password":"y","z":"\\ud800"}')
    assert r.status_code == 422, r.text
    r = sqlite_admin.post("/api/v1/events", headers={"Content-Type": "application/json"},
                          content=b'{"kind":"BAD KIND","data":{"\\udc00k":"\\ud800","n":NaN,"i":-Infinity}}')
    assert r.status_code == 422, r.text
    # A row stored before these rules (written around the API) must not break the list either.
    with sqlite_engine.begin() as conn:
        conn.execute(AuditLog.__table__.insert(), [dict(  # type: ignore[attr-defined]  # SQLModel table
            time=dt.datetime.now(dt.UTC), username="old", method="POST", path="/api/v1/old", status_code=422,
            client="", body={"json": {"z": "\ud800", "n": float("nan")}})])
    r = sqlite_admin.get("/api/v1/audit")
    assert r.status_code == 200, r.text
    bodies = {a["path"]: a["body"] for a in r.json()["results"]}
    assert bodies["/api/v1/auth/login"]["json"]["z"] == "\ufffd"
    assert bodies["/api/v1/events"]["json"]["data"] == {"\ufffdk": "\ufffd", "n": "NaN", "i": "-Infinity"}
    assert bodies["/api/v1/old"]["json"] == {"z": "\ufffd", "n": "NaN"}


@pytest.mark.parametrize("bad", [b'{"kind":"k.nan","data":{"v":NaN}}', b'{"kind":"k.inf","data":{"v":[Infinity]}}',
                                 b'{"kind":"k.s","data":{"v":"\\ud800"}}'])
def test_event_data_refuses_nan_infinity_and_lone_surrogates(admin: TestClient, engine: Engine, bad: bytes) -> None:
    """On both databases: refused at the door (422 naming data), the refusal audited, the list fine."""
    r = admin.post("/api/v1/events", headers={"Content-Type": "application/json"}, content=bad)
    assert r.status_code == 422, r.text
    assert "data" in _fields(r), r.text
    assert admin.get("/api/v1/events").status_code == 200
    rows = _audit_rows(engine, "/api/v1/events")
    assert rows and rows[-1].status_code == 422  # PostgreSQL took the row: nothing unstorable in it
    r = admin.get("/api/v1/audit")
    assert r.status_code == 200, r.text


def test_masked_source_keeps_its_secret_only_at_the_same_address(sqlite_client_for: Clients,
                                                                sqlite_engine: Engine) -> None:
    from infra_mgr.power.poller import PowerPoller

    admin, facilities = sqlite_client_for("admin"), sqlite_client_for("facilities")
    r = admin.post("/api/v1/power/devices", json={"name": "ups-b", "kind": "ups",
                                                  "source": "nut://monuser:TopSecretNut@127.0.0.89:3493/ups"})
    assert r.status_code == 201, r.text
    nut_id = r.json()["id"]
    r = admin.post("/api/v1/power/devices", json={"name": "snmp-b", "kind": "ups",
                                                  "source": "snmp://TopComm@127.0.0.89:161"})
    assert r.status_code == 201, r.text
    snmp_id = r.json()["id"]
    for obj_id, moved in ((nut_id, "nut://monuser:***@127.0.0.88:3493/ups"), (nut_id, "nut://other:***@127.0.0.89:3493/ups"),
                          (nut_id, "nut://monuser:***@127.0.0.89:3494/ups"), (nut_id, "nut://monuser:***@127.0.0.89:3493/x"),
                          (nut_id, "nut://monuser:***@127.0.0.89:3493/ups?x=1"), (snmp_id, "snmp://***@127.0.0.88:161"),
                          (snmp_id, "snmp://***@127.0.0.89:162")):
        r = facilities.patch(f"/api/v1/power/devices/{obj_id}", json={"source": moved})
        assert r.status_code == 422, (moved, r.text)
        assert "source" in _fields(r) and "secret again" in r.text
    # the same address sent back masked keeps the secret; a new address with its secret is fine
    r = facilities.patch(f"/api/v1/power/devices/{nut_id}", json={"source": "nut://monuser:***@127.0.0.89:3493/ups"})
    assert r.status_code == 200, r.text
    r = facilities.patch(f"/api/v1/power/devices/{snmp_id}", json={"source": "snmp://NewComm@127.0.0.87:161"})
    assert r.status_code == 200, r.text
    urls = {ref.name: ref.source for ref, _ in PowerPoller(sqlite_engine, b"test-master-secret-0123456789")._devices()}
    assert urls == {"ups-b": "nut://monuser:TopSecretNut@127.0.0.89:3493/ups", "snmp-b": "snmp://NewComm@127.0.0.87:161"}


def test_audit_masks_secrets_holding_an_at_sign_whole() -> None:
    out = redact({"source": "nut://mon:p@tchSecret88@host/ups", "s": "snmp://pub@Xsecret77@host:161",
                  "note": "was nut://mon:p@tchSecret88@host/ups; and snmp://c@d@h"})
    assert out == {"source": "nut://mon:***@host/ups", "s": "snmp://***@host:161",
                   "note": "was nut://mon:***@host/ups; and snmp://***@h"}


def test_power_source_with_a_secret_holding_at_is_not_leaked(sqlite_admin: TestClient, sqlite_engine: Engine) -> None:
    r = sqlite_admin.post("/api/v1/power/devices", json={"name": "at-ups", "kind": "ups",
                                                         "source": "nut://mon:p@tchSecret88@127.0.0.5/ups"})
    assert r.status_code == 201, r.text
    assert r.json()["source"] == "nut://mon:***@127.0.0.5/ups"
    r = sqlite_admin.post("/api/v1/events", params={"src": "snmp://pub@Xsecret77@h"}, json={"kind": "x.q"})
    with sqlite_engine.connect() as conn:
        dump = "\n".join(str(tuple(row)) for row in conn.execute(text("SELECT * FROM audit_log")))
    assert "tchSecret88" not in dump and "secret77" not in dump, dump


@pytest.mark.parametrize("source", ["snmp://127.0.0.6?community=X", "nut://127.0.0.6/ups?password=Y",
                                    "snmp://127.0.0.6:161?authKey=Z&x=1", "modbus://127.0.0.6/1?map=dse&token=T"])
def test_power_source_refuses_secrets_in_the_query(sqlite_admin: TestClient, source: str) -> None:
    r = sqlite_admin.post("/api/v1/power/devices", json={"name": "q-ups", "kind": "ups", "source": source})
    assert r.status_code == 422, r.text
    assert "source" in _fields(r), r.text
    r = sqlite_admin.post("/api/v1/power/devices", json={"name": "q-ups", "kind": "ups",
                                                         "source": "modbus://127.0.0.6/1?map=dse"})
    assert r.status_code == 201, r.text
    r = sqlite_admin.patch(f"/api/v1/power/devices/{r.json()['id']}", json={"source": source})
    assert r.status_code == 422, r.text
    assert "source" in _fields(r), r.text


def test_query_secrets_are_masked_wherever_shown(sqlite_client_for: Clients, sqlite_engine: Engine) -> None:
    admin, viewer = sqlite_client_for("admin"), sqlite_client_for("viewer")
    r = admin.post("/api/v1/power/devices", json={"name": "old-q", "kind": "ups", "source": "snmp://127.0.0.7"})
    assert r.status_code == 201, r.text
    with sqlite_engine.begin() as conn:  # a row written around the API
        conn.execute(text("UPDATE power_device SET source = 'nut://127.0.0.7/ups?password=Yclear&x=1'"))
    listed = viewer.get("/api/v1/power/devices").text
    assert "Yclear" not in listed and "nut://127.0.0.7/ups?password=***&x=1" in listed
    admin.post("/api/v1/power/devices", json={"name": "q2", "kind": "ups", "source": "snmp://h?community=Xclear"})
    dump = json.dumps(admin.get("/api/v1/audit").json())
    assert "Xclear" not in dump and "community=***" in dump

