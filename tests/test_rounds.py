"""Matching rounds on synthetic markets, with the real model and solver.

The rule checks here are a second, record-by-record implementation of the
eligibility rules, so a vectorisation slip in the engine shows up as a
shortlisted pair this reference rejects.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.checks import find_violations
from matching.codes import cefr_rank
from matching.models import BilateralAgreement, Registrant, Vacancy
from matching.rounds import MatchingEngine, RoundConfig, RoundResult, summarise_round
from matching.solvers import solve_greedy
from matching.solvers.exact import ABSOLUTE_TOLERANCE
from matching.synth import MarketSpec, SyntheticMarket, generate_market
from matching.taxonomy import Taxonomy

RECOGNISED = "recognised"


def _reference_eligible(
    registrant: Registrant, vacancy: Vacancy, agreements: list[BilateralAgreement]
) -> bool:
    start = vacancy.start_date
    in_force = [
        agreement
        for agreement in agreements
        if agreement.corridor == (registrant.origin, vacancy.destination)
        and agreement.valid_from <= start <= agreement.valid_to
    ]
    if len(in_force) != 1:
        return False
    agreement = in_force[0]
    isco = vacancy.isco_code
    covered = vacancy.sector in agreement.sectors or (
        isco is not None
        and any(isco.startswith(prefix) for prefix in agreement.occupations)
    )
    if not covered:
        return False
    if agreement.quota_cells and not any(
        _cell_applies(cell, vacancy) for cell in agreement.quota_cells
    ):
        return False
    if not registrant.consent or registrant.available_from > start:
        return False
    if vacancy.regulated and _recognition(registrant, vacancy, agreement) != RECOGNISED:
        return False
    return _languages_met(registrant, vacancy, agreement)


def _cell_applies(cell: Any, vacancy: Vacancy) -> bool:
    if not cell.period_start <= vacancy.start_date <= cell.period_end:
        return False
    if cell.sector is not None and cell.sector != vacancy.sector:
        return False
    return cell.isco_prefix is None or (vacancy.isco_code or "").startswith(
        cell.isco_prefix
    )


def _recognition(
    registrant: Registrant, vacancy: Vacancy, agreement: BilateralAgreement
) -> str:
    order = ["none", "pending", "partial", "recognised"]
    best = "none"
    for qualification in registrant.qualifications:
        if qualification.issuing_country != registrant.origin:
            continue
        for rule in agreement.recognition:
            fits = (
                (vacancy.isco_code or "").startswith(rule.isco_prefix)
                and qualification.level >= rule.min_level
                and (
                    rule.field is None
                    or rule.field.lower() == qualification.field.lower()
                )
            )
            if fits and order.index(rule.state) > order.index(best):
                best = rule.state
    return best


def _languages_met(
    registrant: Registrant, vacancy: Vacancy, agreement: BilateralAgreement
) -> bool:
    needed: dict[str, int] = {}
    for minimum in (*vacancy.language_minimums, *agreement.language_minimums):
        needed[minimum.language] = max(
            needed.get(minimum.language, 0), cefr_rank(minimum.level)
        )
    validity = dt.timedelta(days=agreement.test_validity_days)
    for language, rank in needed.items():
        if not any(
            certificate.language == language
            and certificate.test_date is not None
            and certificate.test_date + validity >= vacancy.start_date
            and cefr_rank(certificate.level) >= rank
            for certificate in registrant.languages
        ):
            return False
    return True


def _shortlisted_pairs(result: RoundResult) -> list[tuple[int, int]]:
    chosen = np.flatnonzero(result.solution.selected)
    return [
        (int(result.pairs.vacancy[pair]), int(result.pairs.registrant[pair]))
        for pair in chosen
    ]


def _without_timings(summary: dict[str, Any]) -> dict[str, Any]:
    summary = dict(summary)
    summary["round"] = {
        key: value
        for key, value in summary["round"].items()
        if key != "timings_seconds"
    }
    return summary


markets = st.builds(
    MarketSpec,
    registrants=st.integers(min_value=40, max_value=160),
    vacancies=st.integers(min_value=3, max_value=12),
    seed=st.integers(min_value=0, max_value=10_000),
    quota_tightness=st.floats(min_value=0.1, max_value=1.5),
    used_share=st.floats(min_value=0.0, max_value=0.6),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=markets,
    quota_mode=st.sampled_from(["guaranteed", "proportional"]),
    cap=st.integers(1, 3),
)
def test_round_respects_every_rule(
    engine: MatchingEngine,
    taxonomy: Taxonomy,
    spec: MarketSpec,
    quota_mode: str,
    cap: int,
) -> None:
    market = generate_market(taxonomy, spec)
    config = RoundConfig(
        quota_mode=quota_mode,  # type: ignore[arg-type]
        max_shortlists_per_registrant=cap,
        candidates_per_vacancy=None,
        method="exact",
    )
    result = engine.run_round(
        market.registrants, market.vacancies, market.agreements, config=config
    )
    problem = result.problem

    assert find_violations(problem, result.solution.selected) == []
    per_vacancy = np.bincount(
        problem.pair_vacancy[result.solution.selected], minlength=problem.num_vacancies
    )
    openings = np.array([vacancy.openings for vacancy in market.vacancies])
    assert np.all(per_vacancy <= 3 * openings)
    per_registrant = np.bincount(
        problem.pair_registrant[result.solution.selected],
        minlength=len(market.registrants),
    )
    assert per_registrant.max(initial=0) <= cap
    for column, cell in enumerate(result.agreements.cells):
        limit = cell.remaining * (3 if quota_mode == "proportional" else 1)
        assert result.solution.cell_use[column] <= limit, cell.id
    for vacancy_index, registrant_index in _shortlisted_pairs(result):
        registrant = market.registrants[registrant_index]
        vacancy = market.vacancies[vacancy_index]
        assert _reference_eligible(registrant, vacancy, market.agreements), (
            registrant.key,
            vacancy.id,
        )

    greedy = solve_greedy(problem)
    # The exact solver accepts a selection within ABSOLUTE_TOLERANCE of its bound.
    assert result.solution.objective >= greedy.objective - ABSOLUTE_TOLERANCE
    assert result.solution.bound >= result.solution.objective - 1e-9


@pytest.mark.slow
def test_round_reference_agrees_on_eligible_count(
    engine: MatchingEngine, taxonomy: Taxonomy
) -> None:
    market = generate_market(
        taxonomy, MarketSpec(registrants=200, vacancies=10, seed=11)
    )
    config = RoundConfig(candidates_per_vacancy=None)
    result = engine.run_round(
        market.registrants, market.vacancies, market.agreements, config=config
    )
    for index, vacancy in enumerate(market.vacancies):
        expected = sum(
            _reference_eligible(registrant, vacancy, market.agreements)
            for registrant in market.registrants
        )
        assert result.eligible_counts[index] == expected, vacancy.id


def test_round_repeats_exactly(engine: MatchingEngine, taxonomy: Taxonomy) -> None:
    market = generate_market(taxonomy, MarketSpec(registrants=150, vacancies=8, seed=3))
    first = engine.run_round(market.registrants, market.vacancies, market.agreements)
    second = engine.run_round(market.registrants, market.vacancies, market.agreements)
    assert _without_timings(
        summarise_round(first, round_date=dt.date(2026, 3, 2))
    ) == _without_timings(summarise_round(second, round_date=dt.date(2026, 3, 2)))


def _brute_force_optimum(result: RoundResult) -> float:
    problem = result.problem
    best = 0.0
    pairs = range(problem.num_pairs)
    for size in range(problem.num_pairs + 1):
        for subset in itertools.combinations(pairs, size):
            selected = np.zeros(problem.num_pairs, dtype=bool)
            selected[list(subset)] = True
            if not find_violations(problem, selected):
                best = max(best, float(problem.pair_score[selected].sum()))
    return best


def _tiny_market(taxonomy: Taxonomy, seed: int) -> SyntheticMarket:
    market = generate_market(
        taxonomy,
        MarketSpec(registrants=30, vacancies=2, seed=seed, quota_tightness=0.3),
    )
    return market


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_round_optimum_equals_brute_force(
    engine: MatchingEngine, taxonomy: Taxonomy, seed: int
) -> None:
    market = _tiny_market(taxonomy, seed)
    config = RoundConfig(
        candidates_per_vacancy=4,
        shortlist_ratio=1,
        max_shortlists_per_registrant=1,
        method="exact",
    )
    result = engine.run_round(
        market.registrants, market.vacancies, market.agreements, config=config
    )
    assert result.problem.num_pairs <= 12
    assert result.solution.objective == pytest.approx(
        _brute_force_optimum(result), abs=1e-9
    )


def test_round_explanations_name_evidence(
    engine: MatchingEngine, taxonomy: Taxonomy
) -> None:
    market = generate_market(taxonomy, MarketSpec(registrants=150, vacancies=6, seed=5))
    result = engine.run_round(market.registrants, market.vacancies, market.agreements)
    summary = summarise_round(result)
    candidates = [
        candidate
        for entry in summary["shortlists"]
        for candidate in entry["candidates"]
    ]
    assert candidates
    for candidate in candidates:
        assert 0.0 <= candidate["score"] <= 1.0
        assert set(candidate["components"]) <= {
            "semantic",
            "essential_skills",
            "isco_proximity",
            "experience",
            "language_margin",
            "skill_profile",
            "occupation_match",
        }
        assert "semantic" in candidate["components"]
        assert candidate["recognition"] in {"recognised", "not_required"}
        assert all(margin >= 0 for margin in candidate["language_margin"].values())
    for entry in summary["shortlists"]:
        if len(entry["candidates"]) < entry["shortlist_size"]:
            assert entry["unfilled"]["reason"]
    for cell in summary["quota_cells"]:
        assert cell["shortlisted"] <= cell["shortlist_cap"]
