"""Fixtures of the API tests: one engine per session, one database per test.

Every test that takes ``client`` runs twice, on a SQLite file and on the
PostgreSQL database named by ``LABOURMATCH_TEST_POSTGRES_URL``. PostgreSQL
runs are skipped, with the reason, only when the server does not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_testing import (
    CARPENTER_ISCO,
    Market,
    load_market,
    make_settings,
    postgres_url,
    reset_postgres,
)
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from api.main import create_app
from matching.rounds import MatchingEngine
from matching.taxonomy import Taxonomy


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """Create the test database if missing; return why it is unusable, or None."""
    url = make_url(postgres_url())
    engine = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": url.database},
            ).first()
            if exists is None:
                connection.exec_driver_sql(f'CREATE DATABASE "{url.database}"')
    except sa.exc.OperationalError as error:
        where = url.render_as_string(hide_password=True)
        return f"PostgreSQL at {where} does not answer: {error}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_available: str | None
) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'labourmatch.sqlite'}"
    if postgres_available is not None:
        pytest.skip(postgres_available)
    reset_postgres()
    return postgres_url()


@pytest.fixture
def client(database_url: str, engine: MatchingEngine) -> Iterator[TestClient]:
    """A test client of a started app on a fresh database."""
    app = create_app(make_settings(database_url), engine=engine)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def carpenter_skills(taxonomy: Taxonomy) -> list[str]:
    """Preferred labels of the carpenter occupation's essential ESCO skills."""
    carpenter = next(
        uri
        for uri in taxonomy.occupations_in_isco(CARPENTER_ISCO)
        if taxonomy.occupations[uri].preferred_label == "carpenter"
    )
    return [
        taxonomy.skills[uri].preferred_label
        for uri in taxonomy.essential_skills(carpenter)
    ]


@pytest.fixture
def market(client: TestClient, carpenter_skills: list[str]) -> Market:
    """A loaded market: four tenant keys, one agreement and twelve registrants."""
    return load_market(client, carpenter_skills)
