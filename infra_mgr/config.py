"""Settings: environment variables ``INFRA_MGR_*`` over an optional YAML file over defaults.

One object, read once per process, so every part of the service (API, CLI, collectors) agrees on
where the database is and which key unlocks the stored secrets.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)


class _YamlSource(PydanticBaseSettingsSource):
    """Reads the file named by ``INFRA_MGR_CONFIG`` (if any) as the lowest-priority source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("INFRA_MGR_CONFIG")
        if not path:
            return {}
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the settings file must be a mapping of setting: value")
        return data


class AuditThresholds(BaseModel):
    """The branch link audit's thresholds (setting ``link_audit``; env ``INFRA_MGR_LINK_AUDIT`` as JSON).

    Here, among the settings, so a bad value stops start-up instead of failing every audit later;
    the audit (``infra_mgr.network.audit``) applies them.

    ``extra="forbid"``: a misspelt threshold in the settings is an error, not a default quietly kept."""

    model_config = ConfigDict(extra="forbid")

    no_data_s: int = Field(default=900, ge=1, description="No successful poll for this long: no data")
    flaps_24h: int = Field(default=3, ge=1, description="Status transitions in 24 h that make a link flapping")
    error_pct: float = Field(default=0.5, gt=0, description="Errors as % of packets that degrade a link")
    error_window_s: int = Field(default=900, ge=60, description="Window the error share is measured over")
    util_p95_pct: float = Field(default=90.0, gt=0, le=100, description="p95 utilisation that degrades a link")
    util_window_s: int = Field(default=7 * 86400, ge=3600, description="Window of the utilisation p95")
    loss_pct: float = Field(default=5.0, gt=0, le=100, description="Probe loss that degrades a device")
    loss_window_s: int = Field(default=900, ge=60, description="Window of the reachability figures")
    loss_min_cycles: int = Field(default=2, ge=1, description="Cycles with a lost probe before loss is a finding: "
                                 "one bad cycle (a busy moment of the poller itself) is not a lossy link")



class Settings(BaseSettings):
    """All knobs of the service. Every field can be set as ``INFRA_MGR_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="INFRA_MGR_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file, keys and lab state live")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir")
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts stored credentials and signs sessions; generated into data_dir if unset",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    session_max_age_s: int = 12 * 3600
    secure_cookies: bool = False
    forwarded_allow_ips: str | None = Field(
        default=None, description="Proxy addresses whose X-Forwarded-For/-Proto are believed (comma-separated, "
        "'*' for any); unset: none, the client address is the socket's")
    login_max_failures: int = Field(default=5, ge=1, description="Failed sign-ins per username before back-off")
    login_max_failures_per_address: int = Field(
        default=20, ge=1, description="Failed sign-ins per client address before back-off")
    login_backoff_s: float = Field(default=30.0, gt=0, description="First lock-out; doubles with each further failure")
    login_backoff_max_s: float = Field(default=900.0, gt=0, description="Longest lock-out")
    login_failure_window_s: float = Field(default=900.0, gt=0,
                                          description="Failures older than this (and no lock) are forgotten")
    log_level: str = "info"
    page_size_default: int = 100
    page_size_max: int = 1000
    import_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1,
                                  description="Largest file `infra-mgr import` reads")
    power_poller: bool = Field(default=True, description="Poll power devices in the serving process")
    link_poller: bool = Field(default=True, description="Poll branch uplinks and device reachability in the "
                              "serving process")
    link_poll_interval_s: float = Field(default=60.0, ge=5, description="Seconds between two uplink poll cycles")
    link_poll_concurrency: int = Field(default=64, ge=1, le=1024, description="Devices polled at once")
    reach_count: int = Field(default=3, ge=1, le=20,
                             description="ICMP echoes and single SNMP GETs per device and cycle")
    link_flap_hold_s: float = Field(default=900.0, ge=0, description="A flapping uplink's down/up events are held "
                                    "back until it has had no transition for this long; then one closing event")
    reach_timeout_s: float = Field(default=2.0, gt=0, le=30,
                                   description="How long one echo or SNMP GET may take before it counts as lost")
    link_audit: AuditThresholds = Field(
        default_factory=AuditThresholds, description="Thresholds of the branch link audit over its defaults, e.g. "
        '{"loss_pct": 3} (JSON in the environment; names and defaults: AuditThresholds above)')
    backup_schedule: bool = Field(default=True, description="Back up every device's configuration on a schedule "
                                  "in the serving process")
    backup_interval_s: float = Field(default=86400.0, ge=300, description="Seconds between two scheduled "
                                     "configuration backups (counted from the last scheduled run's start)")
    backup_concurrency: int = Field(default=16, ge=1, le=512, description="SSH configuration backups at once")
    backup_connect_timeout_s: float = Field(default=10.0, gt=0, le=300, description="SSH: TCP connect and "
                                            "banner exchange may take this long")
    backup_auth_timeout_s: float = Field(default=10.0, gt=0, le=300, description="SSH: login may take this long")
    backup_command_timeout_s: float = Field(default=30.0, gt=0, le=3600, description="SSH: one command's "
                                            "output may take this long")
    backup_banner_timeout_s: float = Field(default=15.0, gt=0, le=300, description="SSH: the server's "
                                           "pre-login banner may take this long")
    backup_trap_debounce_s: float = Field(default=30.0, ge=0, le=3600, description="A config-changed trap "
                                          "backs the device up after this quiet time (a burst of traps: one backup)")
    backup_git_path: Path | None = Field(default=None, description="Git repository `infra-mgr config export-git` "
                                         "writes every device's configuration into; unset: data_dir/config-git")

    def link_audit_thresholds(self) -> AuditThresholds:
        return self.link_audit

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls)

    @property
    def db_url(self) -> str:
        """The effective database URL (SQLite under ``data_dir`` unless one is configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'infra-mgr.db').resolve()}"

    @property
    def lab_dir(self) -> Path:
        return self.data_dir / "lab"

    def secret(self) -> bytes:
        """The master secret; created once (0600) in ``data_dir`` so a restart can still decrypt."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        key_file = self.data_dir / "secret.key"
        if not key_file.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
        return key_file.read_text().strip().encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
