"""Helpers of the API tests: settings, keys, the test market and uploads.

The market is small and made by hand from the real ESCO data: registrants
hold essential skills of the carpenter occupation (ISCO 7115) written as ESCO
labels, so normalisation takes the exact-label path and the real embedding
model embeds a dozen labels.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.settings import Settings
from matching.readers import REGISTRANT_COLUMNS

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/labourmatch_test"
ADMIN_KEY = "test-admin-key-0123456789abcdef"
PSEUDONYM_SECRET = "test-pseudonym-secret-0123456789abcdef"

AGENCY = "AG-PH-1"
OTHER_AGENCY = "AG-PH-2"
EMPLOYER = "E-DE-1"
OTHER_EMPLOYER = "E-DE-2"
CELL = "Q-PH-DE-F"
CARPENTER_ISCO = "7115"


def postgres_url() -> str:
    """Return the URL of the PostgreSQL test database."""
    return os.environ.get("LABOURMATCH_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def reset_postgres() -> None:
    """Drop every table of the test database, so a test starts from nothing."""
    engine = sa.create_engine(postgres_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Return test settings: fixed keys, small batches, no label disk cache."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "bootstrap_admin_key": ADMIN_KEY,
        "pseudonym_secret": PSEUDONYM_SECRET,
        "label_cache_dir": None,
        "ingest_batch_rows": 4,
        "log_level": "WARNING",
        "database_pool_size": 20,
        "database_max_overflow": 60,
    }
    values.update(overrides)
    return Settings(**values)


def admin_headers() -> dict[str, str]:
    """Headers of the bootstrap admin key."""
    return {"X-API-Key": ADMIN_KEY}


def issue_key(client: TestClient, role: str, tenant_id: str | None) -> dict[str, str]:
    """Issue a key through the API and return headers that use it."""
    response = client.post(
        "/v1/keys", json={"role": role, "tenant_id": tenant_id}, headers=admin_headers()
    )
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"]}


def agreement_body(*, cap: int = 100, used: int = 0) -> dict[str, Any]:
    """An agreement for the Philippines-Germany corridor, construction, one cell."""
    return {
        "id": "AGR-PH-DE",
        "origin": "PH",
        "destination": "DE",
        "valid_from": "2026-01-01",
        "valid_to": "2027-12-31",
        "sectors": ["F"],
        "quota_cells": [
            {
                "id": CELL,
                "sector": "F",
                "cap": cap,
                "used": used,
                "period_start": "2026-01-01",
                "period_end": "2027-12-31",
            }
        ],
    }


def vacancy_body(vacancy_id: str = "V-1", *, openings: int = 1) -> dict[str, Any]:
    """A carpenter vacancy in Germany."""
    return {
        "id": vacancy_id,
        "destination": "DE",
        "sector": "F",
        "isco_code": CARPENTER_ISCO,
        "title": "carpenter",
        "openings": openings,
        "start_date": "2026-09-01",
    }


def registrant_row(
    number: int, skills: list[str], *, agency_id: str = AGENCY, **fields: Any
) -> dict[str, Any]:
    """One registrant as a CSV row: a carpenter from the Philippines."""
    count = 4 + number % (len(skills) - 3)
    row = {
        "agency_id": agency_id,
        "external_id": f"R{number:04d}",
        "origin": "PH",
        "sex": "female" if number % 2 else "male",
        "birth_year": str(1980 + number % 20),
        "full_name": "",
        "birth_date": "",
        "occupations": f"{CARPENTER_ISCO}={1 + number % 6}",
        "skills": "; ".join(skills[:count]),
        "languages": "en:B2:IELTS:2025-03-01",
        "qualifications": "",
        "available_from": "2026-06-01",
        "consent": "true",
    }
    row.update({name: str(value) for name, value in fields.items()})
    return row


def registrants_csv(rows: list[dict[str, Any]]) -> str:
    """Write rows as the CSV the upload route reads."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=list(REGISTRANT_COLUMNS), lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def upload(
    client: TestClient,
    headers: dict[str, str],
    body: bytes | str,
    *,
    media_type: str = "text/csv",
) -> Any:
    """Send a bulk upload and return the response."""
    content = body.encode() if isinstance(body, str) else body
    return client.post(
        "/v1/registrants:bulk",
        content=content,
        headers={**headers, "Content-Type": media_type},
    )


@dataclass(frozen=True)
class Market:
    """Keys and ids of a loaded test market."""

    agency: dict[str, str]
    other_agency: dict[str, str]
    employer: dict[str, str]
    other_employer: dict[str, str]


def load_market(
    client: TestClient,
    skills: list[str],
    *,
    registrants: int = 12,
    cap: int = 100,
) -> Market:
    """Create keys and an agreement, and upload registrants."""
    market = Market(
        agency=issue_key(client, "agency", AGENCY),
        other_agency=issue_key(client, "agency", OTHER_AGENCY),
        employer=issue_key(client, "employer", EMPLOYER),
        other_employer=issue_key(client, "employer", OTHER_EMPLOYER),
    )
    response = client.post(
        "/v1/agreements", json=agreement_body(cap=cap), headers=admin_headers()
    )
    assert response.status_code == 201, response.text
    rows = [registrant_row(number, skills) for number in range(1, registrants + 1)]
    response = upload(client, market.agency, registrants_csv(rows))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == registrants, response.text
    return market
