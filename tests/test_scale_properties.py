"""Properties of the scalable solve path: caps respected and an honest gap report.

The scalable path is candidate generation (:mod:`matching.retrieval`) followed
by the relaxed solver, which ``solve_shortlists(method="auto")`` picks for
large rounds. Its selection must respect every shortlist size, registrant cap
and quota cap, its objective can never beat the true optimum, and its bound
can never fall below it.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.eligibility import AgreementIndex
from matching.problem import ShortlistProblem
from matching.retrieval import retrieve_candidates
from matching.rounds import build_problem
from matching.solvers import (
    decompose,
    dispatch,
    solve_exact,
    solve_greedy,
    solve_relaxed,
    solve_shortlists,
)
from matching.synth import ScaleSpec, generate_scale_market
from matching.taxonomy import Taxonomy
from tests.solvers.strategies import (
    SOLVER_SETTINGS,
    brute_force_optimum,
    shortlist_problems,
)

# Sums of at most a few thousand scores in [0, 1] round to well below this.
TOLERANCE = 1e-7


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_relaxed_never_breaks_caps(problem: ShortlistProblem) -> None:
    solution = solve_relaxed(problem)
    assert find_violations(problem, solution.selected) == []


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_relaxed_gap_report_honest(problem: ShortlistProblem) -> None:
    optimum = brute_force_optimum(problem)
    solution = solve_relaxed(problem)
    assert solution.objective <= optimum + TOLERANCE
    assert solution.bound >= optimum - TOLERANCE
    assert solution.gap >= 0.0


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_large_round_path_honest(problem: ShortlistProblem) -> None:
    # Force the paths that only large rounds take: splitting into parts,
    # min-cost flow first, and pricing stopped at a gap with Lagrangian bounds.
    optimum = brute_force_optimum(problem)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(decompose, "MIN_PAIRS_TO_SPLIT", 0)
        patch.setattr(dispatch, "FLOW_FIRST_MIN_PAIRS", 0)
        solution = solve_shortlists(problem, method="relaxed", relative_gap=0.05)

    assert find_violations(problem, solution.selected) == []
    assert solution.objective <= optimum + TOLERANCE
    assert solution.bound >= optimum - TOLERANCE


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_auto_gap_report_honest(problem: ShortlistProblem) -> None:
    optimum = brute_force_optimum(problem)
    solution = solve_shortlists(problem, method="auto")
    assert find_violations(problem, solution.selected) == []
    assert solution.objective <= optimum + TOLERANCE
    assert solution.bound >= optimum - TOLERANCE


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_greedy_bound_never_below_optimum(problem: ShortlistProblem) -> None:
    optimum = brute_force_optimum(problem)
    solution = solve_greedy(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.objective <= optimum + TOLERANCE
    assert solution.bound >= optimum - TOLERANCE


@pytest.fixture(
    scope="module", params=[("slack", 31), ("contended", 32), ("slack", 33)]
)
def market_problem(
    request: pytest.FixtureRequest, taxonomy: Taxonomy
) -> ShortlistProblem:
    shape, seed = request.param
    market = generate_scale_market(
        taxonomy, getattr(ScaleSpec, shape)(1_200, seed=seed)
    )
    index = AgreementIndex(market.agreements)
    config = market.round_config(candidates_per_vacancy=60)
    search = retrieve_candidates(market.features, market.profiles, index, config)
    return build_problem(market.features, market.profiles, index, search.pairs, config)


def test_market_relaxed_respects_caps(market_problem: ShortlistProblem) -> None:
    solution = solve_relaxed(market_problem)
    assert find_violations(market_problem, solution.selected) == []


def test_market_relaxed_within_exact(market_problem: ShortlistProblem) -> None:
    exact = solve_exact(market_problem)
    relaxed = solve_relaxed(market_problem)
    assert exact.status.value == "optimal"
    assert relaxed.objective <= exact.objective + TOLERANCE
    assert relaxed.bound >= exact.objective - TOLERANCE
    assert exact.bound >= exact.objective - TOLERANCE


def test_market_shadow_prices_reported(market_problem: ShortlistProblem) -> None:
    relaxed = solve_relaxed(market_problem)
    assert relaxed.cell_shadow_price is not None
    assert relaxed.cell_shadow_price.shape == (market_problem.num_cells,)
    assert np.all(relaxed.cell_shadow_price >= 0.0)


def test_market_greedy_not_above_exact(market_problem: ShortlistProblem) -> None:
    exact = solve_exact(market_problem)
    greedy = solve_greedy(market_problem)
    assert find_violations(market_problem, greedy.selected) == []
    assert greedy.objective <= exact.objective + TOLERANCE
