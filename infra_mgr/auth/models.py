"""Users, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from infra_mgr.auth.permissions import Role
from infra_mgr.common import json_field, ts_field


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    full_name: str = Field(default="", sa_type=String(200))
    password_hash: str = Field(default="", sa_type=String(255))
    role: str = Field(default=Role.viewer.value, sa_type=String(16))
    is_active: bool = True
    created_at: dt.datetime = ts_field()
    last_login: dt.datetime | None = ts_field(nullable=True, default_now=False)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    name: str = Field(default="", sa_type=String(100))
    digest: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    prefix: str = Field(sa_type=String(12))
    created_at: dt.datetime = ts_field()
    expires_at: dt.datetime | None = ts_field(nullable=True, default_now=False)
    last_used: dt.datetime | None = ts_field(nullable=True, default_now=False)


class AuthSession(SQLModel, table=True):
    """A dashboard sign-in. The cookie holds only a random id; the server keeps its SHA-256 digest
    (a copy of the database cannot be replayed as a cookie), so ending a session is one update and
    takes effect on the very next request."""

    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(sa_column=Column(String(64), unique=True, nullable=False, index=True))
    user_id: int = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    client: str = Field(default="", sa_type=String(64))
    created_at: dt.datetime = ts_field()
    last_seen: dt.datetime = ts_field()
    expires_at: dt.datetime = ts_field()
    revoked_at: dt.datetime | None = ts_field(nullable=True, default_now=False)


class LoginThrottle(SQLModel, table=True):
    """Failed sign-ins counted per key (``user:<name>`` or ``addr:<ip>``): the back-off state is in
    the database, so every serving process enforces the same lock."""

    __tablename__ = "login_throttle"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), unique=True, nullable=False, index=True))
    failures: int = 0
    last_attempt: dt.datetime = ts_field()
    locked_until: dt.datetime | None = ts_field(nullable=True, default_now=False)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    time: dt.datetime = ts_field(index=True)
    username: str = Field(default="", sa_type=String(64), index=True)
    method: str = Field(sa_type=String(8))
    path: str = Field(sa_type=String(500))
    status_code: int
    client: str = Field(default="", sa_type=String(64))
    body: dict[str, Any] = json_field()


_USERNAME = r"^[a-z_][a-z0-9_.\-]{1,63}$"


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = PField(pattern=_USERNAME)
    full_name: str = PField(default="", max_length=200)
    password: str = PField(min_length=10, max_length=256, description="Write-only")
    role: Role = Role.viewer


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    full_name: str | None = PField(default=None, max_length=200)
    password: str | None = PField(default=None, min_length=10, max_length=256)
    role: Role | None = None
    is_active: bool | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: Role
    is_active: bool
    created_at: dt.datetime
    last_login: dt.datetime | None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PField(default="", max_length=100)
    expires_in_days: int | None = PField(default=None, ge=1, le=3650)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        """A token's name is shown in lists and the audit log: no control or bidi characters that
        would rewrite what is displayed around it, checked as every other name is."""
        from infra_mgr.api.crud import text_problem

        problem = text_problem("name", value)
        if problem:
            raise ValueError(problem)
        return value


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used: dt.datetime | None


class TokenCreated(TokenRead):
    token: str = PField(description="Shown once; only its digest is stored")


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = PField(min_length=1, max_length=64)
    password: str = PField(min_length=1, max_length=256)


class AuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    time: dt.datetime
    username: str
    method: str
    path: str
    status_code: int
    client: str
    body: dict[str, Any]

    @field_validator("body", mode="before")
    @classmethod
    def _readable(cls, value: Any) -> dict[str, Any]:
        """A stored row that cannot be serialised (lone surrogate, NaN) still lists."""
        from infra_mgr.api.audit import readable_body

        return readable_body(value)
