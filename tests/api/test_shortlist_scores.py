"""Shortlist and round scores agree with the engine's scores for the same data."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
from api_testing import (
    EMPLOYER,
    Market,
    admin_headers,
    agreement_body,
    registrant_row,
    registrants_csv,
    upload,
    vacancy_body,
)
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.context import ServiceContext
from api.security import pseudonym_of
from api.tables import RegistrantRow, VacancyRow
from matching.eligibility import AgreementIndex, evaluate_eligibility
from matching.exceptions import RecordError
from matching.models import BilateralAgreement, Registrant, Vacancy
from matching.readers import iter_byte_lines, iter_registrants
from matching.rounds import MatchingEngine
from matching.scoring import PROFILE_COMPONENTS, ScoreWeights, score_vacancy
from matching.skill_profile import OccupationEvidence

# Registrants added to the market's twelve: occupation claims by ESCO title,
# so that the normaliser maps them to ESCO occupations with a confidence.
TITLED_OCCUPATIONS = [
    "carpenter=3",
    "7115=2; carpenter=1",
    "joiner=4",
    "roof tiler=2",
    "construction carpenter=5",
]
MARKET_SIZE = 12
ROUND_TIMEOUT_SECONDS = 60.0


def _all_rows(carpenter_skills: list[str]) -> list[dict[str, Any]]:
    """The market's registrants and the titled ones, as uploaded."""
    rows = [registrant_row(number, carpenter_skills) for number in range(1, 13)]
    rows += [
        registrant_row(100 + offset, carpenter_skills, occupations=occupations)
        for offset, occupations in enumerate(TITLED_OCCUPATIONS)
    ]
    return rows


def _records(rows: list[dict[str, Any]]) -> list[Registrant]:
    body = io.BytesIO(registrants_csv(rows).encode())
    records = []
    for item in iter_registrants(iter_byte_lines(body), fmt="csv"):
        assert not isinstance(item, RecordError), item
        records.append(item[1])
    return records


def _engine_scores(
    engine: MatchingEngine, records: list[Registrant], vacancy: Vacancy
) -> dict[str, tuple[float, dict[str, float]]]:
    """Score every eligible registrant as ``labourmatch match`` does."""
    builder = engine.builder
    features = builder.build_registrants(records)
    profile = builder.build_vacancy(vacancy)
    evidence = OccupationEvidence.build(
        builder.taxonomy, builder.vocabulary.index, features
    )
    agreements = AgreementIndex([BilateralAgreement.model_validate(agreement_body())])
    eligibility = evaluate_eligibility(features, profile, agreements)
    rows = np.flatnonzero(eligibility.eligible).astype(np.int64)
    scores = score_vacancy(
        features, profile, eligibility, rows, ScoreWeights(), evidence=evidence
    )
    return {
        features.keys[row]: (
            float(np.clip(scores.total[position], 0.0, 1.0)),
            {name: float(values[position]) for name, values in scores.values.items()},
        )
        for position, row in enumerate(rows.tolist())
    }


def _keys_by_pseudonym(context: ServiceContext) -> dict[str, str]:
    with context.database.session() as session:
        rows = session.execute(
            select(RegistrantRow.id, RegistrantRow.agency_id, RegistrantRow.external_id)
        ).all()
    return {
        pseudonym_of(context.pseudonym_secret, EMPLOYER, row.id): (
            f"{row.agency_id}/{row.external_id}"
        )
        for row in rows
    }


def _stored_vacancy(context: ServiceContext, vacancy_id: str) -> Vacancy:
    with context.database.session() as session:
        record = session.scalars(
            select(VacancyRow.record).where(VacancyRow.external_id == vacancy_id)
        ).one()
    return Vacancy.model_validate_json(record)


def _check_candidates(
    candidates: list[dict[str, Any]],
    keys: dict[str, str],
    expected: dict[str, tuple[float, dict[str, float]]],
) -> None:
    for candidate in candidates:
        key = keys[candidate["candidate_id"]]
        total, components = expected[key]
        assert candidate["score"] == pytest.approx(total, abs=1e-4), key
        reported = candidate["evidence"]["components"]
        assert set(reported) == set(components), key
        for name, value in components.items():
            assert reported[name] == pytest.approx(value, abs=1e-4), (key, name)


@pytest.fixture
def titled_market(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> list[Registrant]:
    """The market plus registrants with titled occupation claims; all records."""
    rows = _all_rows(carpenter_skills)
    response = upload(client, market.agency, registrants_csv(rows[MARKET_SIZE:]))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(TITLED_OCCUPATIONS), response.text
    return _records(rows)


def test_shortlist_scores_equal_engine_scores(
    client: TestClient,
    market: Market,
    titled_market: list[Registrant],
    engine: MatchingEngine,
) -> None:
    created = client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=6), headers=market.employer
    )
    context = client.app.state.context  # type: ignore[attr-defined]

    response = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer)

    assert created.status_code == 201, created.text
    assert response.status_code == 201, response.text
    candidates = response.json()["candidates"]
    expected = _engine_scores(engine, titled_market, _stored_vacancy(context, "V-1"))
    assert len(candidates) == len(expected) == len(titled_market)
    _check_candidates(candidates, _keys_by_pseudonym(context), expected)
    for name in PROFILE_COMPONENTS:
        assert name in candidates[0]["evidence"]["components"]
    matches = [
        item["evidence"]["components"]["occupation_match"] for item in candidates
    ]
    assert max(matches) > 0.0


def test_round_scores_equal_engine_scores(
    client: TestClient,
    market: Market,
    titled_market: list[Registrant],
    engine: MatchingEngine,
) -> None:
    client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=6), headers=market.employer
    )
    context = client.app.state.context  # type: ignore[attr-defined]

    started = client.post(
        "/v1/rounds", json={"method": "exact"}, headers=admin_headers()
    ).json()
    deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
    state = started
    while state["status"] not in {"done", "failed"} and time.monotonic() < deadline:
        time.sleep(0.1)
        state = client.get(
            f"/v1/rounds/{started['id']}", headers=admin_headers()
        ).json()

    assert state["status"] == "done", state
    vacancy = client.get("/v1/vacancies/V-1", headers=market.employer).json()
    candidates = client.get(
        f"/v1/shortlists/{vacancy['open_shortlist_id']}", headers=market.employer
    ).json()["candidates"]
    expected = _engine_scores(engine, titled_market, _stored_vacancy(context, "V-1"))
    assert len(candidates) == len(expected)
    _check_candidates(candidates, _keys_by_pseudonym(context), expected)
