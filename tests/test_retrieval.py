"""Candidate generation at scale against the one-vacancy-at-a-time brute force."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from matching.eligibility import AgreementIndex, evaluate_eligibility
from matching.features import RegistrantFeatures, VacancyProfile
from matching.retrieval import (
    LanguageMargins,
    SearchSettings,
    recall_at_k,
    retrieve_candidates,
)
from matching.rounds import (
    CandidatePairs,
    MatchingEngine,
    RoundConfig,
    collect_candidates,
)
from matching.scoring import score_vacancy
from matching.synth import (
    MarketSpec,
    ScaleMarket,
    ScaleSpec,
    generate_market,
    generate_scale_market,
)
from matching.taxonomy import Taxonomy

# Forces the inverted file on a small market: every partition is "large",
# groups have about 100 registrants and each vacancy scans a fifth of them.
INVERTED_FILE = SearchSettings(
    exhaustive_max_pairs=1, registrants_per_group=100, probe_share=0.2
)


@pytest.fixture(scope="module")
def market(taxonomy: Taxonomy) -> ScaleMarket:
    return generate_scale_market(taxonomy, ScaleSpec(registrants=1_500, seed=9))


@pytest.fixture(scope="module")
def index(market: ScaleMarket) -> AgreementIndex:
    return AgreementIndex(market.agreements)


def _pair_order(pairs: CandidatePairs, registrants: int) -> np.ndarray:
    keys = pairs.vacancy.astype(np.int64) * registrants + pairs.registrant
    return np.argsort(keys)


def _assert_same_pairs(
    expected: CandidatePairs, found: CandidatePairs, registrants: int
) -> None:
    first = _pair_order(expected, registrants)
    second = _pair_order(found, registrants)
    assert np.array_equal(expected.vacancy[first], found.vacancy[second])
    assert np.array_equal(expected.registrant[first], found.registrant[second])
    # The search computes cosines with a float32 matrix product, the brute
    # force with a float32 matrix-vector product: they differ in the last bits.
    assert np.allclose(expected.score[first], found.score[second], atol=1e-6)
    for name, values in expected.components.items():
        assert np.allclose(
            values[first], found.components[name][second], atol=1e-6, equal_nan=True
        ), name
    assert np.array_equal(expected.recognition[first], found.recognition[second])
    assert (expected.cells[first] != found.cells[second]).nnz == 0
    for one, two in zip(first.tolist(), second.tolist(), strict=True):
        assert expected.language_margin[one] == found.language_margin[two]


def test_all_candidates_equal_brute_force(
    market: ScaleMarket, index: AgreementIndex
) -> None:
    config = market.round_config(candidates_per_vacancy=None)
    expected, _, _ = collect_candidates(market.features, market.profiles, index, config)
    search = retrieve_candidates(
        market.features,
        market.profiles,
        index,
        config,
        search=SearchSettings.exhaustive(),
    )
    assert expected.vacancy.size > 0
    _assert_same_pairs(expected, search.pairs, market.features.count)


def test_top_k_equals_brute_force(market: ScaleMarket, index: AgreementIndex) -> None:
    config = market.round_config(candidates_per_vacancy=15, min_score=0.2)
    expected, _, _ = collect_candidates(market.features, market.profiles, index, config)
    search = retrieve_candidates(
        market.features,
        market.profiles,
        index,
        config,
        search=SearchSettings.exhaustive(),
    )
    _assert_same_pairs(expected, search.pairs, market.features.count)


def test_odd_vacancies_equal_brute_force(
    market: ScaleMarket, index: AgreementIndex
) -> None:
    first, second = market.profiles[0], market.profiles[1]
    no_agreement = dataclasses.replace(
        first,
        vacancy=first.vacancy.model_copy(update={"id": "V-FR", "destination": "FR"}),
    )
    late_start = dt.date(2031, 1, 1)
    after_agreements = dataclasses.replace(
        first,
        vacancy=first.vacancy.model_copy(
            update={"id": "V-LATE", "start_date": late_start}
        ),
        start_day=late_start.toordinal(),
    )
    no_occupation = dataclasses.replace(
        second,
        vacancy=second.vacancy.model_copy(update={"id": "V-NONE"}),
        isco_code=None,
        essential_skill_ids=(),
    )
    profiles = [*market.profiles[:20], no_agreement, after_agreements, no_occupation]
    config = market.round_config(candidates_per_vacancy=None)
    expected, _, _ = collect_candidates(market.features, profiles, index, config)
    search = retrieve_candidates(
        market.features, profiles, index, config, search=SearchSettings.exhaustive()
    )
    assert not np.isin([20, 21], search.pairs.vacancy).any()
    assert np.any(search.pairs.vacancy == 22)
    _assert_same_pairs(expected, search.pairs, market.features.count)


def test_record_market_equals_brute_force(engine: MatchingEngine) -> None:
    taxonomy = engine.builder.taxonomy
    records = generate_market(
        taxonomy, MarketSpec(registrants=120, vacancies=12, seed=4)
    )
    features = engine.builder.build_registrants(records.registrants)
    profiles = engine.builder.build_vacancies(records.vacancies)
    index = AgreementIndex(records.agreements)
    config = RoundConfig(candidates_per_vacancy=None)
    expected, _, _ = collect_candidates(features, profiles, index, config)
    search = retrieve_candidates(
        features, profiles, index, config, search=SearchSettings.exhaustive()
    )
    assert expected.vacancy.size > 0
    _assert_same_pairs(expected, search.pairs, features.count)


def _eligible_rows(
    features: RegistrantFeatures, profile: VacancyProfile, index: AgreementIndex
) -> set[int]:
    eligibility = evaluate_eligibility(features, profile, index)
    return set(np.flatnonzero(eligibility.eligible).tolist())


def test_inverted_file_returns_only_eligible(
    market: ScaleMarket, index: AgreementIndex
) -> None:
    config = market.round_config(candidates_per_vacancy=10)
    search = retrieve_candidates(
        market.features, market.profiles, index, config, search=INVERTED_FILE
    )
    pairs = search.pairs
    assert max(groups for _, _, groups in search.partitions.values()) > 1
    counts = np.bincount(pairs.vacancy, minlength=len(market.profiles))
    assert counts.max() <= 10
    keys = pairs.vacancy.astype(np.int64) * market.features.count + pairs.registrant
    assert np.unique(keys).size == keys.size
    for vacancy in range(0, len(market.profiles), 5):
        profile = market.profiles[vacancy]
        allowed = _eligible_rows(market.features, profile, index)
        mine = np.flatnonzero(pairs.vacancy == vacancy)
        rows = pairs.registrant[mine].astype(np.int64)
        assert set(rows.tolist()) <= allowed
        eligibility = evaluate_eligibility(market.features, profile, index)
        scores = score_vacancy(
            market.features, profile, eligibility, rows, config.weights
        )
        assert np.allclose(scores.total, pairs.score[mine], atol=1e-6)


def test_exhaustive_recall_is_one(market: ScaleMarket, index: AgreementIndex) -> None:
    config = market.round_config(candidates_per_vacancy=25)
    search = retrieve_candidates(
        market.features,
        market.profiles,
        index,
        config,
        search=SearchSettings.exhaustive(),
    )
    report = recall_at_k(
        market.features,
        market.profiles,
        index,
        config,
        search.pairs,
        list(range(0, len(market.profiles), 4)),
    )
    assert report.recall == 1.0
    assert report.worst_recall == 1.0


def test_take_keeps_rules_and_scores(
    market: ScaleMarket, index: AgreementIndex
) -> None:
    features = market.features
    rows = np.random.default_rng(3).choice(features.count, 200, replace=False)
    subset = features.take(rows)
    config = market.round_config()
    for profile in market.profiles[:10]:
        whole = evaluate_eligibility(features, profile, index)
        part = evaluate_eligibility(subset, profile, index)
        assert np.array_equal(whole.reason[rows], part.reason)
        assert np.array_equal(whole.language_margin[rows], part.language_margin)
        all_rows = np.arange(rows.size, dtype=np.int64)
        expected = score_vacancy(features, profile, whole, rows, config.weights)
        found = score_vacancy(subset, profile, part, all_rows, config.weights)
        assert np.allclose(expected.total, found.total)


def test_take_rejects_rows_out_of_range(market: ScaleMarket) -> None:
    with pytest.raises(ValueError, match="rows must index"):
        market.features.take(np.array([market.features.count]))


def test_language_margins_acts_as_sequence() -> None:
    margins = LanguageMargins()
    margins.append_block(
        ("de", "en"),
        np.array([[1, 0], [-1, 2]], dtype=np.int8),
        np.array([[True, False], [True, True]]),
    )
    margins.append_block(("it",), np.array([[3]], dtype=np.int8), np.array([[True]]))
    assert len(margins) == 3
    assert margins[0] == {"de": 1}
    assert margins[1] == {"de": -1, "en": 2}
    assert margins[-1] == {"it": 3}
    assert margins[1:] == [{"de": -1, "en": 2}, {"it": 3}]
    assert list(margins) == [{"de": 1}, {"de": -1, "en": 2}, {"it": 3}]
    with pytest.raises(IndexError, match="out of range"):
        margins[3]


def test_search_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="overfetch"):
        SearchSettings(overfetch=0.5)
    with pytest.raises(ValueError, match="probe_share"):
        SearchSettings(probe_share=0.0)
    with pytest.raises(ValueError, match="block_elements"):
        SearchSettings(block_elements=0)
