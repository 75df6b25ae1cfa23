"""Shared fixtures: a migrated database (SQLite, and PostgreSQL where a test asks for both),
the app on that database, and API clients holding a token of each role."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from infra_mgr.api.app import create_app
from infra_mgr.auth.models import UserCreate
from infra_mgr.auth.permissions import Role
from infra_mgr.auth.service import create_token, create_user
from infra_mgr.config import Settings
from infra_mgr.db import make_engine, upgrade

pytest_plugins = ["peers"]

IN_CI = os.environ.get("CI", "").lower() == "true"
_db_counter = itertools.count()


def _fresh_pg_database(admin_url: str) -> str:
    """A new empty database on the test PostgreSQL server, so each test starts clean."""
    name = f"t_{os.getpid()}_{next(_db_counter)}"
    url = make_url(admin_url)
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database under test: every test using it runs on SQLite and on a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return _fresh_pg_database(request.getfixturevalue("postgres_url"))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    upgrade(sqlite_url)
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=url, secret_key="test-master-secret-0123456789")


@pytest.fixture
def app_settings(tmp_path: Path, engine: Engine) -> Settings:
    return _settings(tmp_path, engine.url.render_as_string(hide_password=False))


@pytest.fixture
def app(app_settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    return create_app(app_settings, engine)


@pytest.fixture
def sqlite_app(tmp_path: Path, sqlite_engine: Engine):  # type: ignore[no-untyped-def]
    return create_app(_settings(tmp_path, str(sqlite_engine.url)), sqlite_engine)


TokenFactory = Callable[[str], str]


def _token_factory(engine: Engine) -> TokenFactory:
    made: dict[str, str] = {}

    def make(role: str) -> str:
        if role not in made:
            with Session(engine) as session:
                user = create_user(session, UserCreate(username=f"u_{role}", password="correct horse battery",
                                                       role=Role(role)))
                _, raw = create_token(session, user, "tests")
                session.commit()
            made[role] = raw
        return made[role]

    return make


@pytest.fixture
def token_for(engine: Engine) -> TokenFactory:
    return _token_factory(engine)


@pytest.fixture
def sqlite_token_for(sqlite_engine: Engine) -> TokenFactory:
    return _token_factory(sqlite_engine)


def _client(app, token: str) -> TestClient:  # type: ignore[no-untyped-def]
    c = TestClient(app, raise_server_exceptions=False)
    c.headers["Authorization"] = f"Bearer {token}"
    return c


@pytest.fixture
def admin(app, token_for: TokenFactory) -> TestClient:  # type: ignore[no-untyped-def]
    """An API client authenticated as an admin (on the parametrised database)."""
    return _client(app, token_for("admin"))


@pytest.fixture
def client_for(app, token_for: TokenFactory) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    return lambda role: _client(app, token_for(role))


@pytest.fixture
def sqlite_admin(sqlite_app, sqlite_token_for: TokenFactory) -> TestClient:  # type: ignore[no-untyped-def]
    return _client(sqlite_app, sqlite_token_for("admin"))


@pytest.fixture
def sqlite_client_for(sqlite_app, sqlite_token_for: TokenFactory) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    return lambda role: _client(sqlite_app, sqlite_token_for(role))
