"""Credentials: what each kind needs, and encryption of the secret part at rest.

The API accepts secrets but never returns them: reads show which secret fields are set, not their
values. Collectors call ``reveal`` to get the plain values when they connect.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic import Field as PField
from sqlmodel import Session

from infra_mgr.auth.crypto import decrypt_secret, encrypt_secret
from infra_mgr.inventory.models import Credential, CredentialKind

# kind -> (required secret fields, optional secret fields, required non-secret fields)
KIND_RULES: dict[CredentialKind, tuple[set[str], set[str], set[str]]] = {
    CredentialKind.snmp_v2c: ({"community"}, set(), set()),
    CredentialKind.snmp_v3: ({"auth_key", "priv_key"}, set(), {"username", "auth_proto", "priv_proto"}),
    CredentialKind.ssh_password: ({"password"}, {"enable_secret"}, {"username"}),
    CredentialKind.ssh_key: ({"private_key"}, {"passphrase"}, {"username"}),
    CredentialKind.api_token: ({"token"}, set(), set()),
    CredentialKind.nut: ({"password"}, set(), {"username"}),
}
SECRET_FIELDS = ("community", "auth_key", "priv_key", "password", "enable_secret", "private_key",
                 "passphrase", "token")
PLAIN_PARAMS = ("auth_proto", "priv_proto", "port", "priority", "discovery")
AUTH_PROTOS = ("MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512")
PRIV_PROTOS = ("DES", "AES", "AES-192", "AES-256")


class CredentialSecrets(BaseModel):
    """Write-only secret fields (any subset; which are required depends on the kind)."""

    model_config = ConfigDict(extra="forbid")

    community: str | None = PField(default=None, min_length=1, max_length=255)
    auth_key: str | None = PField(default=None, min_length=8, max_length=255)
    priv_key: str | None = PField(default=None, min_length=8, max_length=255)
    password: str | None = PField(default=None, min_length=1, max_length=255)
    enable_secret: str | None = PField(default=None, min_length=1, max_length=255)
    private_key: str | None = PField(default=None, min_length=1, max_length=16384)
    passphrase: str | None = PField(default=None, min_length=1, max_length=255)
    token: str | None = PField(default=None, min_length=1, max_length=4096)


def _plain_text(values: Any) -> Any:
    """Names and labels without control or bidi-override characters (they reach terminals and logs)."""
    from infra_mgr.api.crud import text_problem

    if isinstance(values, dict):
        for key in ("name", "username", "description"):
            value = values.get(key)
            if isinstance(value, str) and (problem := text_problem(key, value)):
                raise ValueError(f"{key}: {problem}")
    return values


class CredentialCreate(CredentialSecrets):
    name: str = PField(min_length=1, max_length=100)
    kind: CredentialKind
    username: str = PField(default="", max_length=128)
    auth_proto: str | None = PField(default=None, description="SNMPv3: " + ", ".join(AUTH_PROTOS))
    priv_proto: str | None = PField(default=None, description="SNMPv3: " + ", ".join(PRIV_PROTOS))
    port: int | None = PField(default=None, ge=1, le=65535)
    priority: int = PField(default=100, ge=0, le=10000, description="Discovery tries credentials low first")
    discovery: bool = PField(default=True, description="Whether discovery may try this credential")
    description: str = PField(default="", max_length=255)

    _text = model_validator(mode="before")(_plain_text)

    @model_validator(mode="after")
    def _rules(self) -> CredentialCreate:
        validate_kind(self.kind, self.model_dump(), partial=False)
        return self


class CredentialUpdate(CredentialSecrets):
    name: str | None = PField(default=None, min_length=1, max_length=100)
    username: str | None = PField(default=None, max_length=128)
    auth_proto: str | None = None
    priv_proto: str | None = None
    port: int | None = PField(default=None, ge=1, le=65535)
    priority: int | None = PField(default=None, ge=0, le=10000)
    discovery: bool | None = None
    description: str | None = PField(default=None, max_length=255)

    _text = model_validator(mode="before")(_plain_text)


class CredentialRead(BaseModel):
    id: int
    name: str
    kind: CredentialKind
    username: str
    params: dict[str, Any]
    secrets_set: list[str] = PField(description="Names of the secret fields that hold a value")
    description: str
    created_at: dt.datetime
    updated_at: dt.datetime


def validate_kind(kind: CredentialKind, values: dict[str, Any], partial: bool) -> None:
    required_secret, optional_secret, required_plain = KIND_RULES[kind]
    allowed = required_secret | optional_secret
    for name in SECRET_FIELDS:
        if values.get(name) is not None and name not in allowed:
            raise ValueError(f"{name}: not used by a {kind.value} credential")
    if not partial:
        for name in sorted(required_secret | required_plain):
            if not values.get(name):
                raise ValueError(f"{name}: required for a {kind.value} credential")
    if values.get("auth_proto") is not None and values["auth_proto"] not in AUTH_PROTOS:
        raise ValueError(f"auth_proto: must be one of {', '.join(AUTH_PROTOS)}")
    if values.get("priv_proto") is not None and values["priv_proto"] not in PRIV_PROTOS:
        raise ValueError(f"priv_proto: must be one of {', '.join(PRIV_PROTOS)}")


def _split(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    secrets = {k: values[k] for k in SECRET_FIELDS if values.get(k) is not None}
    params = {k: values[k] for k in PLAIN_PARAMS if values.get(k) is not None}
    return secrets, params


def build(master: bytes, data: CredentialCreate) -> Credential:
    values = data.model_dump()
    secrets, params = _split(values)
    return Credential(name=data.name, kind=data.kind.value, username=data.username, params=params,
                      secret_ciphertext=encrypt_secret(master, secrets), description=data.description)


def apply_update(master: bytes, cred: Credential, data: CredentialUpdate) -> Credential:
    values = data.model_dump(exclude_unset=True)
    kind = CredentialKind(cred.kind)
    merged_params = {**cred.params, **{k: v for k, v in values.items() if k in PLAIN_PARAMS and v is not None}}
    validate_kind(kind, {**values, **merged_params}, partial=True)
    new_secrets, _ = _split(values)
    if new_secrets:
        current = decrypt_secret(master, cred.secret_ciphertext)
        cred.secret_ciphertext = encrypt_secret(master, {**current, **new_secrets})
    cred.params = merged_params
    for key in ("name", "username", "description"):
        if values.get(key) is not None:
            setattr(cred, key, values[key])
    return cred


def to_read(master: bytes, cred: Credential) -> CredentialRead:
    try:
        names = sorted(decrypt_secret(master, cred.secret_ciphertext))
    except Exception:  # noqa: BLE001 - an unreadable secret is shown as unset, never crashes a listing
        names = []
    return CredentialRead(id=cred.id or 0, name=cred.name, kind=CredentialKind(cred.kind),
                          username=cred.username, params=dict(cred.params), secrets_set=names,
                          description=cred.description, created_at=cred.created_at,
                          updated_at=cred.updated_at)


def reveal(session: Session, master: bytes, credential_id: int) -> dict[str, Any]:
    """Plain secret values for a collector; never for an API response."""
    cred = session.get(Credential, credential_id)
    if cred is None:
        return {}
    return {"kind": cred.kind, "username": cred.username, **cred.params,
            **decrypt_secret(master, cred.secret_ciphertext)}
