"""Database engine and sessions: SQLite (WAL, foreign keys) by default, PostgreSQL by URL.

SQLite needs two things a server database gives for free: writers that queue instead of failing
(``busy_timeout``) and a way to take the write lock at the *start* of a transaction
(``BEGIN IMMEDIATE``) so read-then-write work such as next-free IP allocation cannot interleave.
``write_session()`` gives that on SQLite; on PostgreSQL the same code takes row locks instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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


def make_engine(url: str) -> Engine:
    """Create an engine with the per-dialect settings this service relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so BEGIN can be IMMEDIATE when asked.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
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
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session for reads and ordinary writes; commits on success, rolls back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """A session that holds the database write lock from its first statement (SQLite) so
    read-modify-write sequences are serialised; on PostgreSQL callers lock rows explicitly."""
    eng = engine or get_engine()
    with eng.connect() as conn:
        if is_sqlite(eng):
            conn = conn.execution_options(sqlite_immediate=True)
        with Session(bind=conn, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                if conn.in_transaction():
                    conn.rollback()


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
    upgrade(settings.db_url)
    return get_engine(settings)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Apply Alembic migrations (``infra-mgr db upgrade`` and on ``serve``)."""
    from alembic import command

    command.upgrade(alembic_config(url or get_settings().db_url), revision)
