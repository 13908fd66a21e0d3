"""Hard rules: each exclusion reason on a hand-built case."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from matching.eligibility import AgreementIndex, Reason, evaluate_eligibility
from matching.models import BilateralAgreement, Registrant, Vacancy
from matching.rounds import MatchingEngine

START = dt.date(2026, 6, 1)
CARPENTER_SKILL = "use woodworking tools"


def _registrant(external_id: str, **changes: Any) -> Registrant:
    fields: dict[str, Any] = {
        "agency_id": "AG-NP",
        "external_id": external_id,
        "origin": "NP",
        "birth_year": 1990,
        "occupations": [{"isco_code": "7115", "years_experience": 4}],
        "skills": [CARPENTER_SKILL],
        "languages": [
            {
                "language": "ko",
                "level": "B1",
                "test": "EPS-TOPIK",
                "test_date": "2025-09-01",
            }
        ],
        "qualifications": [{"level": 6, "field": "nursing", "issuing_country": "NP"}],
        "available_from": "2026-03-01",
        "consent": True,
    }
    fields.update(changes)
    return Registrant.model_validate(fields)


def _vacancy(**changes: Any) -> Vacancy:
    fields: dict[str, Any] = {
        "id": "V-1",
        "employer_id": "E-1",
        "destination": "KR",
        "sector": "F",
        "isco_code": "7115",
        "openings": 1,
        "language_minimums": [{"language": "ko", "level": "A2"}],
        "start_date": START,
    }
    fields.update(changes)
    return Vacancy.model_validate(fields)


def _agreement(**changes: Any) -> BilateralAgreement:
    fields: dict[str, Any] = {
        "id": "AGR-NP-KR",
        "origin": "NP",
        "destination": "KR",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "sectors": ["F", "Q"],
        "quota_cells": [
            {
                "id": "Q-F",
                "sector": "F",
                "cap": 10,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
            },
            {
                "id": "Q-Q",
                "sector": "Q",
                "cap": 10,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
            },
        ],
        "recognition": [
            {
                "isco_prefix": "222",
                "field": "nursing",
                "min_level": 6,
                "state": "recognised",
            },
            {
                "isco_prefix": "222",
                "field": "nursing",
                "min_level": 4,
                "state": "partial",
            },
            {"isco_prefix": "2221", "field": "midwifery", "state": "pending"},
        ],
        "test_validity_days": 730,
    }
    fields.update(changes)
    return BilateralAgreement.model_validate(fields)


def _reasons(
    engine: MatchingEngine,
    registrants: list[Registrant],
    vacancy: Vacancy,
    agreements: list[BilateralAgreement],
) -> list[str]:
    features = engine.builder.build_registrants(registrants)
    profile = engine.builder.build_vacancy(vacancy)
    outcome = evaluate_eligibility(features, profile, AgreementIndex(agreements))
    return [Reason(int(code)).code for code in outcome.reason]


def test_eligible_registrant_passes(engine: MatchingEngine) -> None:
    assert _reasons(engine, [_registrant("R1")], _vacancy(), [_agreement()]) == [
        "eligible"
    ]


def test_consent_missing_excluded(engine: MatchingEngine) -> None:
    reasons = _reasons(
        engine, [_registrant("R1", consent=False)], _vacancy(), [_agreement()]
    )
    assert reasons == ["no_consent"]


def test_available_after_start_excluded(engine: MatchingEngine) -> None:
    late = _registrant("R1", available_from="2026-07-01")
    assert _reasons(engine, [late], _vacancy(), [_agreement()]) == ["not_available"]


def test_corridor_without_agreement_excluded(engine: MatchingEngine) -> None:
    other_origin = _registrant("R1", origin="VN")
    assert _reasons(engine, [other_origin], _vacancy(), [_agreement()]) == [
        "no_agreement"
    ]


def test_agreement_expired_excluded(engine: MatchingEngine) -> None:
    expired = _agreement(valid_from="2024-01-01", valid_to="2025-12-31")
    assert _reasons(engine, [_registrant("R1")], _vacancy(), [expired]) == [
        "agreement_not_in_force"
    ]


def test_sector_not_covered_excluded(engine: MatchingEngine) -> None:
    manufacturing = _vacancy(sector="C", isco_code="7223")
    assert _reasons(engine, [_registrant("R1")], manufacturing, [_agreement()]) == [
        "not_covered"
    ]


def test_occupation_prefix_covers_vacancy(engine: MatchingEngine) -> None:
    agreement = _agreement(sectors=[], occupations=["71"], quota_cells=[])
    manufacturing = _vacancy(sector="C")
    assert _reasons(engine, [_registrant("R1")], manufacturing, [agreement]) == [
        "eligible"
    ]


def test_no_matching_quota_cell_excluded(engine: MatchingEngine) -> None:
    agreement = _agreement(
        quota_cells=[
            {
                "id": "Q-Q",
                "sector": "Q",
                "cap": 5,
                "period_start": "2026-01-01",
                "period_end": "2026-12-31",
            }
        ]
    )
    assert _reasons(engine, [_registrant("R1")], _vacancy(), [agreement]) == [
        "no_quota_cell"
    ]


@pytest.mark.parametrize(
    ("qualifications", "expected"),
    [
        ([{"level": 6, "field": "Nursing", "issuing_country": "NP"}], "eligible"),
        (
            [{"level": 5, "field": "nursing", "issuing_country": "NP"}],
            "recognition_partial",
        ),
        (
            [{"level": 6, "field": "midwifery", "issuing_country": "NP"}],
            "recognition_pending",
        ),
        (
            [{"level": 6, "field": "nursing", "issuing_country": "IN"}],
            "recognition_none",
        ),
        ([], "recognition_none"),
    ],
)
def test_regulated_occupation_needs_recognition(
    engine: MatchingEngine, qualifications: list[dict[str, Any]], expected: str
) -> None:
    nurse = _registrant(
        "R1",
        qualifications=qualifications,
        occupations=[{"isco_code": "2221", "years_experience": 3}],
    )
    vacancy = _vacancy(sector="Q", isco_code="2221", regulated=True)
    assert _reasons(engine, [nurse], vacancy, [_agreement()]) == [expected]


def test_unregulated_occupation_ignores_recognition(engine: MatchingEngine) -> None:
    assert _reasons(
        engine, [_registrant("R1", qualifications=[])], _vacancy(), [_agreement()]
    ) == ["eligible"]


def test_language_below_minimum_excluded(engine: MatchingEngine) -> None:
    vacancy = _vacancy(language_minimums=[{"language": "ko", "level": "B2"}])
    assert _reasons(engine, [_registrant("R1")], vacancy, [_agreement()]) == [
        "language_below_minimum"
    ]


def test_agreement_minimum_applies_without_vacancy_minimum(
    engine: MatchingEngine,
) -> None:
    agreement = _agreement(language_minimums=[{"language": "en", "level": "A2"}])
    assert _reasons(engine, [_registrant("R1")], _vacancy(), [agreement]) == [
        "language_below_minimum"
    ]


def test_expired_language_test_excluded(engine: MatchingEngine) -> None:
    old_test = [
        {
            "language": "ko",
            "level": "C1",
            "test": "EPS-TOPIK",
            "test_date": "2023-01-10",
        }
    ]
    registrant = _registrant("R1", languages=old_test)
    assert _reasons(engine, [registrant], _vacancy(), [_agreement()]) == [
        "language_test_expired"
    ]


def test_self_declared_language_not_evidence(engine: MatchingEngine) -> None:
    registrant = _registrant("R1", languages=[{"language": "ko", "level": "C2"}])
    assert _reasons(engine, [registrant], _vacancy(), [_agreement()]) == [
        "language_below_minimum"
    ]


def test_reasons_vectorised_over_batch(engine: MatchingEngine) -> None:
    batch = [
        _registrant("R1"),
        _registrant("R2", consent=False),
        _registrant("R3", origin="VN"),
        _registrant("R4", available_from="2026-12-01"),
    ]
    reasons = _reasons(engine, batch, _vacancy(), [_agreement()])
    assert reasons == ["eligible", "no_consent", "no_agreement", "not_available"]


def test_overlapping_agreements_rejected() -> None:
    first = _agreement()
    second = _agreement(id="AGR-2", valid_from="2026-06-01", valid_to="2027-06-01")
    with pytest.raises(ValueError, match="both cover corridor NP->KR"):
        AgreementIndex([first, second])


def test_shared_cell_declared_differently_rejected() -> None:
    first = _agreement()
    cells = [
        {
            "id": "Q-F",
            "sector": "F",
            "cap": 99,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
        }
    ]
    second = _agreement(id="AGR-VN-KR", origin="VN", quota_cells=cells)
    with pytest.raises(ValueError, match="quota cell 'Q-F' is declared differently"):
        AgreementIndex([first, second])


def test_shared_cell_gets_one_column() -> None:
    first = _agreement()
    second = _agreement(id="AGR-VN-KR", origin="VN")
    index = AgreementIndex([first, second])
    assert [cell.id for cell in index.cells] == ["Q-F", "Q-Q"]
    assert np.array_equal(sorted(index.cell_column.values()), [0, 1])
