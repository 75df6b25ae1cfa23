"""Database engine and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL by URL.

SQLite needs two things a server database gives for free: writers that queue instead of failing
(``busy_timeout``) and a way to take the write lock at the *start* of a transaction
(``BEGIN IMMEDIATE``) so read-then-write work such as next-free IP allocation cannot interleave.
``write_session()`` gives that on SQLite; on PostgreSQL the same code takes row locks instead.

Sessions take a pooled connection at their first statement and give it back at the end of each
transaction, so a request never sits on one connection while it waits for another (with a fixed
pool that is a deadlock once enough requests do it at once). The pool holds as many connections as
the server has worker threads, and a checkout that still cannot be served waits only
``POOL_TIMEOUT`` seconds: the caller gets ``sqlalchemy.exc.TimeoutError`` (the API answers 503 with
``Retry-After``) instead of a request hanging for half a minute.

A write that finds the database (SQLite) or a row (PostgreSQL) locked by someone else waits at most
``LOCK_TIMEOUT_S`` (``INFRA_MGR_DB_LOCK_TIMEOUT_S``, default 5 s: SQLite's ``busy_timeout``,
PostgreSQL's ``lock_timeout``) and then fails with ``OperationalError``, which the API answers with
503 and ``Retry-After``: one held lock must not pin every worker thread for half a minute and stall
the reads queued behind them. On PostgreSQL a statement can also be bounded by ``STATEMENT_TIMEOUT_S``
(``INFRA_MGR_DB_STATEMENT_TIMEOUT_S``; off by default, because the same engines run migrations and
city-sized discoveries whose statements may legitimately take longer than any request should).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from infra_mgr.config import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _private_files(path: Path) -> None:
    """The database holds password hashes and encrypted secrets: owner-only (0600) like
    ``secret.key``. SQLite gives its ``-wal`` and ``-shm`` files the mode of the database file,
    so creating that one 0600 covers them; files from before are tightened here.

    An existing database file is never opened here: closing any descriptor of a file drops every
    POSIX lock this process holds on it, so a second engine in a process whose first one is
    reading would silently lose SQLite's locks, and another process could then check-point and
    delete the WAL under it. Only a file that does not exist yet is created (``O_EXCL``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # exists already, or cannot be created: SQLite itself says why
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(OSError):  # absent, or not ours to change
            if name.stat().st_mode & 0o077:
                name.chmod(0o600)


# anyio runs the API's synchronous routes and dependencies on 40 worker threads; each holds at most
# one connection at a time, so 10 kept + 30 on demand means a request thread never queues on the pool.
POOL_SIZE = 10
MAX_OVERFLOW = 30
POOL_TIMEOUT = 5.0  # seconds a checkout may wait before the caller is told to retry
LOCK_TIMEOUT_S = float(os.environ.get("INFRA_MGR_DB_LOCK_TIMEOUT_S", "5"))
STATEMENT_TIMEOUT_S = float(os.environ.get("INFRA_MGR_DB_STATEMENT_TIMEOUT_S", "0"))


def make_engine(url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW,
                pool_timeout: float = POOL_TIMEOUT, lock_timeout_s: float | None = None,
                statement_timeout_s: float | None = None) -> Engine:
    """Create an engine with the per-dialect settings this service relies on. ``lock_timeout_s``
    bounds how long a statement waits for a lock held elsewhere (``LOCK_TIMEOUT_S`` when not
    given); ``statement_timeout_s`` bounds a PostgreSQL statement (``STATEMENT_TIMEOUT_S``)."""
    parsed = make_url(url)
    lock_ms = max(1, round(1000 * (LOCK_TIMEOUT_S if lock_timeout_s is None else lock_timeout_s)))
    pool = {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}
    if parsed.get_backend_name() != "sqlite":
        statement_ms = max(0, round(1000 * (STATEMENT_TIMEOUT_S if statement_timeout_s is None
                                            else statement_timeout_s)))
        options = f"-c lock_timeout={lock_ms} -c statement_timeout={statement_ms}"
        connect = {"options": options} if parsed.get_backend_name() == "postgresql" else {}
        return create_engine(url, pool_pre_ping=True, connect_args=connect, **pool)

    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        _private_files(Path(parsed.database))
    in_memory = not parsed.database or parsed.database == ":memory:"  # one shared connection, no pool
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": lock_ms / 1000},
                           **({} if in_memory else pool))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN can be IMMEDIATE when asked.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={lock_ms}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@lru_cache(maxsize=8)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings | None = None) -> Engine:
    return _engine_for((settings or get_settings()).db_url)


@contextmanager
def _committed(bind: Engine) -> Iterator[Session]:
    """A session that commits when its block ends and rolls back when it raises."""
    with Session(bind=bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def read_session(engine: Engine | None = None) -> AbstractContextManager[Session]:
    """A session for reads and ordinary writes; commits on success, rolls back on error."""
    return _committed(engine or get_engine())


def writer(engine: Engine) -> Engine:
    """The engine whose transactions take the write lock at BEGIN (SQLite ``BEGIN IMMEDIATE``).

    A deferred SQLite transaction that reads and then writes fails at once ("database is locked",
    no busy wait) when another connection committed in between, which the pollers of a running
    server do every few seconds: every read-then-write outside a request (CLI commands, the lab)
    binds its session to this engine."""
    return engine.execution_options(sqlite_immediate=True) if is_sqlite(engine) else engine


def write_session(engine: Engine | None = None) -> AbstractContextManager[Session]:
    """A session whose transactions hold the database write lock from their first statement
    (SQLite) so read-modify-write sequences are serialised; on PostgreSQL callers lock rows
    explicitly. Its connection is held only while a transaction is open: the session is bound to
    the engine, not to a connection, so it checks one out at its first statement and returns it at
    commit, rollback or close."""
    return _committed(writer(engine or get_engine()))


@contextmanager
def write_connection(engine: Engine | None = None) -> Iterator[Any]:
    """A Core connection in a transaction that holds the write lock from its first statement
    (SQLite ``BEGIN IMMEDIATE``): read-then-write Core work never fails upgrading its lock."""
    eng = engine or get_engine()
    with eng.connect() as conn:
        if is_sqlite(eng):
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


def ready_engine(settings: Settings | None = None) -> Engine:
    """The engine after migrations: every command works on a fresh data directory."""
    settings = settings or get_settings()
    upgrade(settings.db_url, master=settings.secret())
    return get_engine(settings)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head", master: bytes | None = None) -> None:
    """Apply Alembic migrations (``infra-mgr db upgrade`` and on ``serve``). ``master`` is the key
    a data migration encrypts with (the configured one when not given)."""
    from alembic import command

    cfg = alembic_config(url or get_settings().db_url)
    if master is not None:
        cfg.attributes["master_key"] = master
    command.upgrade(cfg, revision)
