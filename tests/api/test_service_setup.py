"""Start-up: migrations, the first admin key, settings and the request log."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from api_testing import make_settings
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.db import Database, create_database_engine
from api.main import create_app
from api.settings import Settings
from api.tables import Base
from matching.rounds import MatchingEngine


def test_migrations_match_tables(database_url: str) -> None:
    database = Database(create_database_engine(database_url))
    try:
        database.upgrade()
        with database.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        database.dispose()

    assert differences == []


def test_first_start_logs_generated_admin_key(
    database_url: str, engine: MatchingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, bootstrap_admin_key=None)
    caplog.set_level(logging.INFO)

    with TestClient(create_app(settings, engine=engine)) as client:
        logged = [
            record.getMessage()
            for record in caplog.records
            if "admin API key" in record.getMessage()
        ]
        key = re.search(r"(lm_\S+)$", logged[0])
        assert key is not None
        response = client.get("/v1/keys", headers={"X-API-Key": key.group(1)})

    with TestClient(create_app(settings, engine=engine)):
        again = [
            record.getMessage()
            for record in caplog.records
            if "admin API key" in record.getMessage()
        ]

    assert response.status_code == 200
    assert len(logged) == 1
    assert len(again) == 1


def test_startup_log_hides_secrets(
    database_url: str, engine: MatchingEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = make_settings(database_url, log_level="INFO")

    with TestClient(create_app(settings, engine=engine)) as client:
        client.get("/v1/health")

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "starting labourmatch service" in text
    assert settings.bootstrap_admin_key is not None
    assert settings.bootstrap_admin_key.get_secret_value() not in text
    assert re.search(r"GET /v1/health 200 \d+\.\d ms", text)


def test_settings_rewrite_plain_postgresql_url() -> None:
    settings = Settings(database_url="postgresql://user:secret@db.internal/labourmatch")

    assert settings.database_url.startswith("postgresql+psycopg://")
    assert ":secret@" not in str(settings.loggable())


def test_settings_reject_unknown_scheme() -> None:
    with pytest.raises(ValidationError, match="scheme 'mysql' is not supported"):
        Settings(database_url="mysql://localhost/db")


def test_settings_reject_short_bootstrap_key() -> None:
    with pytest.raises(ValidationError, match="shorter than 24 characters"):
        Settings(bootstrap_admin_key="short")


def test_settings_read_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABOURMATCH_INGEST_BATCH_ROWS", "500")
    monkeypatch.setenv("LABOURMATCH_SHORTLIST_TIME_LIMIT_SECONDS", "2.5")

    settings = Settings()

    assert settings.ingest_batch_rows == 500
    assert settings.shortlist_time_limit_seconds == 2.5


def test_health_needs_no_key(client: TestClient) -> None:
    response = client.get("/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_registry_version_starts_at_zero(database_url: str) -> None:
    database = Database(create_database_engine(database_url))
    try:
        database.upgrade()
        with database.engine.connect() as connection:
            version = connection.execute(
                sa.text("SELECT version FROM registry_version")
            ).scalar_one()
    finally:
        database.dispose()

    assert version == 0
