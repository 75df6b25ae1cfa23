"""Encryption of stored secrets and hashing of passwords and tokens.

Secrets (SNMP communities, SSH keys, API tokens to hypervisors) are encrypted with Fernet
(AES-128-CBC + HMAC) under a key derived from the service's master secret, so a copy of the
database alone reveals nothing. Passwords use argon2id; API tokens are random and stored as a
SHA-256 digest (they are long enough that a slow hash buys nothing and costs every request).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_hasher = PasswordHasher()
TOKEN_PREFIX = "imt_"


class SecretDecryptError(Exception):
    """The stored secret cannot be read with the configured key (key changed or data damaged)."""


@lru_cache(maxsize=4)
def _fernet(master: bytes) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"infra-mgr", info=b"secrets-v1").derive(master)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_secret(master: bytes, data: dict[str, Any]) -> str:
    return _fernet(master).encrypt(json.dumps(data, ensure_ascii=False).encode()).decode()


def decrypt_secret(master: bytes, token: str) -> dict[str, Any]:
    if not token:
        return {}
    try:
        return json.loads(_fernet(master).decrypt(token.encode()))
    except InvalidToken as exc:
        raise SecretDecryptError("stored secret cannot be decrypted with the configured key") from exc


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
