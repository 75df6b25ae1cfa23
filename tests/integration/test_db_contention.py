"""The API while another connection holds the database's write lock (SQLite) or a table lock that
blocks writes (PostgreSQL): reads answer normally — the once-a-minute ``last_used`` stamp of the
caller's token is skipped rather than waited for — and writes give up after the configured lock
wait with 503 and ``Retry-After`` instead of hanging.

No durations are asserted: the lock holder lets go only after the request under test has
answered (or a generous deadline has passed), so a read that waited for the lock cannot pass.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import ApiToken, UserCreate
from infra_mgr.auth.permissions import Role
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade

pytestmark = pytest.mark.timeout(120)
DEADLINE_S = 20.0  # far beyond an answer that did not wait; far below the long lock wait below


@contextmanager
def _api(db_url: str, tmp_path: Path, lock_timeout_s: float) -> Iterator[tuple[TestClient, Engine]]:
    upgrade(db_url)
    engine = make_engine(db_url, lock_timeout_s=lock_timeout_s)
    with Session(engine) as session:
        user = create_user(session, UserCreate(username="admin", password="correct horse battery", role=Role.admin))
        _, raw = create_token(session, user, "tests")
        session.commit()
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url,
                        secret_key="test-master-secret-0123456789")
    client = TestClient(create_app(settings, engine), raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {raw}"
    try:
        yield client, engine
    finally:
        engine.dispose()


@contextmanager
def _held_lock(db_url: str) -> Iterator[None]:
    """Another connection, outside the service, holding what every write needs."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(url.database or "", isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    holder = make_engine(db_url)
    try:
        with holder.connect() as conn, conn.begin():
            # EXCLUSIVE still lets plain SELECTs through but blocks every write to these tables.
            conn.execute(text("LOCK TABLE site, api_token IN EXCLUSIVE MODE"))
            yield
    finally:
        holder.dispose()


def _while_held(db_url: str, request: Callable[[], httpx.Response]) -> httpx.Response:
    """Send ``request`` while the lock is held; the lock goes only once it answered (or at the
    deadline, so a request stuck on the lock fails the test instead of hanging it)."""
    answer: dict[str, Any] = {}

    def send() -> None:
        try:
            answer["response"] = request()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            answer["error"] = exc

    with _held_lock(db_url):
        worker = threading.Thread(target=send, daemon=True)
        worker.start()
        worker.join(DEADLINE_S)
        answered_while_held = not worker.is_alive()
    worker.join(DEADLINE_S * 3)
    assert answered_while_held, "the request waited for the lock held elsewhere"
    assert "error" not in answer, answer.get("error")
    return answer["response"]


def test_a_read_answers_while_the_write_lock_is_held(db_url: str, tmp_path: Path) -> None:
    # A long lock wait: a read that waited for the lock (its token stamp) would pass the deadline.
    with _api(db_url, tmp_path, lock_timeout_s=60) as (client, engine):
        assert client.post("/api/v1/sites", json={"code": "JED-1", "name_en": "Jeddah"}).status_code == 201
        with Session(engine) as s:  # the stamp is due again, as after a minute
            for tok in s.exec(select(ApiToken)).all():
                tok.last_used = None
                s.add(tok)
            s.commit()

        resp = _while_held(db_url, lambda: client.get("/api/v1/sites"))
        assert resp.status_code == 200, resp.text
        assert [site["code"] for site in resp.json()["results"]] == ["JED-1"]
        with Session(engine) as s:
            assert s.exec(select(ApiToken.last_used)).one() is None  # skipped, not waited for

        assert client.get("/api/v1/sites").status_code == 200  # lock free: the stamp is written
        with Session(engine) as s:
            assert s.exec(select(ApiToken.last_used)).one() is not None


def test_a_write_gets_503_with_retry_after_once_the_lock_wait_passes(db_url: str, tmp_path: Path) -> None:
    with _api(db_url, tmp_path, lock_timeout_s=0.5) as (client, engine):
        resp = _while_held(db_url, lambda: client.post("/api/v1/sites", json={"code": "JED-2", "name_en": "Jeddah"}))
        assert resp.status_code == 503, resp.text
        assert int(resp.headers["Retry-After"]) > 0
        with Session(engine) as s:
            assert s.exec(text("SELECT count(*) FROM site")).one()[0] == 0  # type: ignore[call-overload]
        # once the lock is free the same write goes through
        assert client.post("/api/v1/sites", json={"code": "JED-2", "name_en": "Jeddah"}).status_code == 201


def test_reads_answer_while_many_writes_wait_for_the_held_lock(db_url: str, tmp_path: Path) -> None:
    """More writes than the server has worker threads, all stuck on the held lock: each gives up
    after the (short) lock wait, so a read sent behind them gets a thread and answers while the
    lock is still held, instead of queueing behind writers that wait for half a minute."""
    with _api(db_url, tmp_path, lock_timeout_s=1.0) as (plain, _engine), \
            TestClient(plain.app, raise_server_exceptions=False) as client:  # one event loop, one thread pool
        client.headers.update(plain.headers)
        statuses: list[int] = []

        def write(i: int) -> None:
            statuses.append(client.post("/api/v1/sites", json={"code": f"S-{i}", "name_en": "x"}).status_code)

        def read_behind_writes() -> httpx.Response:
            writers = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(60)]
            for w in writers:
                w.start()
            resp = client.get("/api/v1/sites")
            for w in writers:
                w.join(DEADLINE_S * 3)
            return resp

        resp = _while_held(db_url, read_behind_writes)
        assert resp.status_code == 200, resp.text
        assert len(statuses) == 60 and set(statuses) == {503}, sorted(set(statuses))


def test_read_then_write_outside_a_request_survives_a_commit_in_between(tmp_path: Path) -> None:
    """A CLI command (token create, user add, import) reads and then writes while a running server's
    pollers commit every few seconds. On a deferred SQLite transaction a commit between the read and
    the write fails the write at once ("database is locked", no busy wait); a session bound to
    ``writer(engine)`` holds the write lock from its first read, so the other writer waits instead."""
    from infra_mgr.auth.models import User
    from infra_mgr.db import writer

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    engine = make_engine(url, lock_timeout_s=10)
    with Session(engine) as session:
        create_user(session, UserCreate(username="fatimah", password="correct horse battery", role=Role.admin))
        session.commit()

    def other_writer() -> None:  # a poller's commit, on its own connection
        conn = sqlite3.connect(str(tmp_path / "cli.db"), timeout=10, isolation_level=None)
        conn.execute("INSERT INTO audit_log (time, username, method, path, status_code, client, body) "
                     "VALUES ('2026-01-01 00:00:00', 'poller', 'POST', '/x', 200, '', '{}')")
        conn.close()

    with Session(engine) as deferred:  # what the CLI did before: the write cannot take the lock
        user = deferred.exec(select(User)).one()
        other_writer()
        with pytest.raises(Exception, match="database is locked"):
            create_token(deferred, user, "cli")
            deferred.commit()

    with Session(writer(engine)) as immediate:
        user = immediate.exec(select(User)).one()
        waiting = threading.Thread(target=other_writer)
        waiting.start()
        waiting.join(timeout=0.5)
        assert waiting.is_alive(), "the other writer went ahead while the read-then-write held the lock"
        create_token(immediate, user, "cli")
        immediate.commit()
    waiting.join(timeout=DEADLINE_S)
    assert not waiting.is_alive()
    with Session(engine) as session:
        assert len(session.exec(select(ApiToken)).all()) == 1
    engine.dispose()
