"""Seeded synthetic markets: reproducible, shaped as specified, consistent arrays."""

from __future__ import annotations

import numpy as np
import pytest

from matching.eligibility import AgreementIndex
from matching.synth import (
    REGISTRANTS_PER_VACANCY,
    MarketSpec,
    ScaleMarket,
    ScaleSpec,
    generate_market,
    generate_scale_market,
)
from matching.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def scale_market(taxonomy: Taxonomy) -> ScaleMarket:
    return generate_scale_market(taxonomy, ScaleSpec(registrants=3_000, seed=5))


def _assert_same_scale_market(first: ScaleMarket, second: ScaleMarket) -> None:
    one, two = first.features, second.features
    assert one.keys == two.keys
    assert np.array_equal(one.origin, two.origin)
    assert np.array_equal(one.available_from, two.available_from)
    assert np.array_equal(one.vectors, two.vectors)
    assert (one.skills != two.skills).nnz == 0
    assert (one.minor_years != two.minor_years).nnz == 0
    for language, rows in one.language_rows.items():
        assert np.array_equal(rows, two.language_rows[language])
        assert np.array_equal(
            one.language_test_day[language], two.language_test_day[language]
        )
    assert np.array_equal(first.true_occupation, second.true_occupation)
    assert [profile.vacancy for profile in first.profiles] == [
        profile.vacancy for profile in second.profiles
    ]
    assert first.agreements == second.agreements


def test_record_market_repeats_for_seed(taxonomy: Taxonomy) -> None:
    spec = MarketSpec(registrants=80, vacancies=10, seed=21)
    first = generate_market(taxonomy, spec)
    second = generate_market(taxonomy, spec)
    assert first.registrants == second.registrants
    assert first.vacancies == second.vacancies
    assert first.agreements == second.agreements
    assert first.true_occupation == second.true_occupation


def test_record_market_changes_with_seed(taxonomy: Taxonomy) -> None:
    first = generate_market(taxonomy, MarketSpec(registrants=80, vacancies=10, seed=21))
    second = generate_market(
        taxonomy, MarketSpec(registrants=80, vacancies=10, seed=22)
    )
    assert first.registrants != second.registrants


def test_scale_market_repeats_for_seed(
    taxonomy: Taxonomy, scale_market: ScaleMarket
) -> None:
    again = generate_scale_market(taxonomy, ScaleSpec(registrants=3_000, seed=5))
    _assert_same_scale_market(scale_market, again)


def test_scale_market_changes_with_seed(
    taxonomy: Taxonomy, scale_market: ScaleMarket
) -> None:
    other = generate_scale_market(taxonomy, ScaleSpec(registrants=3_000, seed=6))
    assert not np.array_equal(scale_market.true_occupation, other.true_occupation)
    assert not np.array_equal(scale_market.features.vectors, other.features.vectors)


def test_scale_market_sizes(scale_market: ScaleMarket) -> None:
    assert scale_market.features.count == 3_000
    assert len(scale_market.profiles) == 3_000 // REGISTRANTS_PER_VACANCY
    cells = AgreementIndex(scale_market.agreements).cells
    assert 100 <= len(cells) <= 250


def test_scale_market_shapes(taxonomy: Taxonomy) -> None:
    contended = generate_scale_market(taxonomy, ScaleSpec.contended(4_000, seed=3))
    slack = generate_scale_market(taxonomy, ScaleSpec.slack(4_000, seed=3))
    assert contended.shortlist_slots >= 0.9 * contended.registrant_capacity
    assert slack.shortlist_slots <= 0.25 * slack.registrant_capacity


def test_scale_vectors_unit_length(scale_market: ScaleMarket) -> None:
    norms = np.linalg.norm(scale_market.features.vectors, axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    vacancy_norms = [
        np.linalg.norm(profile.vector) for profile in scale_market.profiles
    ]
    assert np.allclose(vacancy_norms, 1.0, atol=1e-5)


def test_scale_skills_follow_true_occupation(
    taxonomy: Taxonomy, scale_market: ScaleMarket
) -> None:
    features = scale_market.features
    column = {uri: index for index, uri in enumerate(scale_market.skill_uris)}
    kept = []
    for row in range(0, features.count, 50):
        uri = scale_market.occupation_uris[scale_market.true_occupation[row]]
        essential = [column[skill] for skill in taxonomy.essential_skills(uri)]
        if not essential:
            continue
        listed = set(
            features.skills.indices[
                features.skills.indptr[row] : features.skills.indptr[row + 1]
            ].tolist()
        )
        kept.append(np.mean([skill in listed for skill in essential]))
    expected = 1.0 - scale_market.spec.skill_drop
    assert abs(float(np.mean(kept)) - expected) < 0.05


def test_scale_entry_rows_ascending(scale_market: ScaleMarket) -> None:
    features = scale_market.features
    for rows in features.language_rows.values():
        assert np.all(np.diff(rows) >= 0)
    assert np.all(np.diff(features.qualification_row) >= 0)


def test_scale_relevance_grades(scale_market: ScaleMarket) -> None:
    vacancy = 0
    wanted = scale_market.vacancy_occupation[vacancy]
    same = np.flatnonzero(scale_market.true_occupation == wanted)
    relevance = scale_market.relevance(same, np.full(same.size, vacancy))
    assert same.size > 0
    assert np.all(relevance == 2)


def test_scale_spec_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="registrants"):
        ScaleSpec(registrants=0)
    with pytest.raises(ValueError, match="skill_drop"):
        ScaleSpec(skill_drop=1.0)
    with pytest.raises(ValueError, match="vacancies"):
        ScaleSpec(vacancies=0)
