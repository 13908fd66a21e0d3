"""Service settings, read once from ``LABOURMATCH_*`` environment variables.

The app factory builds one :class:`Settings`; nothing reads the environment at
import time. Secrets are :class:`pydantic.SecretStr`, so they never appear in
``repr``, logs or the start-up line (see :meth:`Settings.loggable`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from matching.codes import QuotaMode

DEFAULT_DATABASE_URL = "sqlite:///labourmatch.sqlite"

# A key shorter than this can be guessed; generated keys are far longer.
MIN_KEY_CHARS = 24
MIN_SECRET_CHARS = 32

_SUPPORTED_SCHEMES = ("sqlite", "postgresql+psycopg")


def _default_label_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labourmatch"


class Settings(BaseSettings):
    """Validated configuration of the HTTP service."""

    model_config = SettingsConfigDict(env_prefix="LABOURMATCH_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: a SQLite file, or postgresql+psycopg://...",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_max_overflow: int = Field(default=50, ge=0, le=500)
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        description="Admin API key stored on first start with an empty database; "
        "when unset, one is generated and printed to the log once.",
    )
    pseudonym_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of candidate pseudonyms; generated and stored in the "
        "database when unset.",
    )
    label_cache_dir: Path | None = Field(
        default_factory=_default_label_cache_dir,
        description="Folder of the label-vector cache shared with the command line.",
    )
    max_upload_bytes: int = Field(default=4 * 1024**3, ge=1)
    ingest_batch_rows: int = Field(default=2_000, ge=1, le=50_000)
    max_reported_row_errors: int = Field(default=10_000, ge=0)
    duplicate_name_min_similarity: float = Field(
        default=90.0,
        ge=0.0,
        le=100.0,
        description="rapidfuzz token-sort ratio (0 to 100) at which two registrants "
        "with the same birth date are reported as probable duplicates.",
    )
    quota_mode: QuotaMode = "guaranteed"
    shortlist_ratio: int = Field(default=3, ge=1, le=20)
    max_shortlists_per_registrant: int = Field(default=2, ge=1, le=100)
    candidates_per_vacancy: int = Field(default=100, ge=1, le=100_000)
    shortlist_method: Literal["auto", "exact", "relaxed", "greedy"] = "auto"
    shortlist_time_limit_seconds: float = Field(default=10.0, gt=0.0, le=3_600.0)
    round_time_limit_seconds: float = Field(default=120.0, gt=0.0, le=86_400.0)
    solver_threads: int = Field(default=1, ge=1, le=64)
    embedding_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="PyTorch threads for embedding new labels when the service "
        "loads the model itself; one leaves the other cores to the request "
        "that waits for the vectors and to the database.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # Plain postgresql:// would pick psycopg2, which is not a dependency.
        if value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.removeprefix("postgresql://")
        scheme = value.split(":", 1)[0]
        if scheme not in _SUPPORTED_SCHEMES:
            raise ValueError(
                f"database_url scheme '{scheme}' is not supported; use "
                "sqlite:///path/to/file.sqlite or postgresql+psycopg://user@host/db"
            )
        return value

    @field_validator("bootstrap_admin_key")
    @classmethod
    def _check_bootstrap_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_KEY_CHARS:
            raise ValueError(
                f"bootstrap_admin_key is shorter than {MIN_KEY_CHARS} characters; "
                "use a random key such as the output of `openssl rand -hex 24`"
            )
        return value

    @field_validator("pseudonym_secret")
    @classmethod
    def _check_pseudonym_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"pseudonym_secret is shorter than {MIN_SECRET_CHARS} characters; "
                "use a random value such as the output of `openssl rand -hex 32`"
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is a SQLite file."""
        return self.database_url.startswith("sqlite")

    def loggable(self) -> dict[str, Any]:
        """Return the settings for the start-up log, without secrets or password."""
        values = self.model_dump(exclude={"bootstrap_admin_key", "pseudonym_secret"})
        values["database_url"] = _mask_password(self.database_url)
        values["bootstrap_admin_key"] = "set" if self.bootstrap_admin_key else "unset"
        values["pseudonym_secret"] = "set" if self.pseudonym_secret else "unset"
        return values


def _mask_password(url: str) -> str:
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{separator}{user}:***@{host}"
