"""Settings precedence, the generated master key, secret encryption and password hashing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from infra_mgr.auth.crypto import (
    SecretDecryptError,
    decrypt_secret,
    encrypt_secret,
    hash_password,
    token_digest,
    verify_password,
)
from infra_mgr.config import Settings


def test_env_overrides_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "infra-mgr.yaml"
    cfg.write_text("port: 9001\nhost: 127.0.0.9\ndata_dir: /srv/infra\n", encoding="utf-8")
    monkeypatch.setenv("INFRA_MGR_CONFIG", str(cfg))
    monkeypatch.setenv("INFRA_MGR_PORT", "9002")
    s = Settings()
    assert s.port == 9002 and s.host == "127.0.0.9" and str(s.data_dir) == "/srv/infra"
    assert s.db_url == "sqlite:////srv/infra/infra-mgr.db"
    monkeypatch.setenv("INFRA_MGR_DATABASE_URL", "postgresql+psycopg://u@127.0.0.1:5432/x")
    assert Settings().db_url.startswith("postgresql+psycopg://")


def test_bad_settings_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("- just\n- a list\n", encoding="utf-8")
    monkeypatch.setenv("INFRA_MGR_CONFIG", str(cfg))
    with pytest.raises(ValueError, match="mapping"):
        Settings()


def test_master_key_is_generated_once_and_private(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    key = s.secret()
    assert len(key) >= 48
    mode = stat.S_IMODE((tmp_path / "secret.key").stat().st_mode)
    assert mode == 0o600
    assert Settings(data_dir=tmp_path).secret() == key


def test_secret_round_trip_and_wrong_key() -> None:
    token = encrypt_secret(b"key-one", {"community": "مجتمع-سري", "n": 1})
    assert "مجتمع" not in token
    assert decrypt_secret(b"key-one", token) == {"community": "مجتمع-سري", "n": 1}
    with pytest.raises(SecretDecryptError):
        decrypt_secret(b"key-two", token)
    assert decrypt_secret(b"key-one", "") == {}


def test_password_and_token_hashing() -> None:
    h = hash_password("s3cret pass")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "s3cret pass") and not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "x")
    assert token_digest("imt_a") != token_digest("imt_b") and len(token_digest("x")) == 64
