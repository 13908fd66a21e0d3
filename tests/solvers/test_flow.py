"""Tests of the min-cost flow solver for problems without binding cells."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.problem import ShortlistProblem, SolveStatus
from matching.solvers import cells_can_bind, solve_exact, solve_flow

from .strategies import (
    SOLVER_SETTINGS,
    brute_force_optimum,
    random_problem,
    shortlist_problems,
)


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12, with_cells=False))
def test_flow_matches_brute_force(problem: ShortlistProblem) -> None:
    solution = solve_flow(problem)
    optimum = brute_force_optimum(problem)
    assert find_violations(problem, solution.selected) == []
    # Scores are rounded to 1e-6 for the flow, so allow that per chosen pair.
    assert solution.objective == pytest.approx(optimum, abs=1e-5)
    assert solution.bound >= optimum - 1e-9
    assert solution.status is SolveStatus.OPTIMAL


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8, with_cells=False))
def test_flow_runs_are_identical(problem: ShortlistProblem) -> None:
    first = solve_flow(problem)
    second = solve_flow(problem)
    assert np.array_equal(first.selected, second.selected)


def test_flow_matches_exact_without_cells() -> None:
    problem = random_problem(
        5,
        num_registrants=3000,
        num_vacancies=200,
        candidates_per_vacancy=60,
        with_cells=False,
    )
    flow = solve_flow(problem)
    exact = solve_exact(problem)
    assert flow.objective == pytest.approx(exact.objective, abs=1e-6 * exact.objective)
    assert flow.gap <= 1e-5


def test_flow_ignores_zero_scores() -> None:
    # The bypass arc lets flow skip pairs that add nothing, so the result
    # stays maximal in score even when it does not fill every place.
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.0), ("V1", "R2", 0.7)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    solution = solve_flow(problem)
    assert solution.objective == pytest.approx(0.7)
    assert solution.selected[1]


def test_flow_accepts_cells_that_cannot_bind() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
        cell_capacity={"corridor": 2},
        pair_cells={("V1", "R1"): ["corridor"], ("V1", "R2"): ["corridor"]},
    )
    assert not cells_can_bind(problem).any()
    solution = solve_flow(problem)
    assert solution.objective == pytest.approx(1.7)
    assert solution.cell_use.tolist() == [2]


def test_flow_rejects_binding_cell() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
        cell_capacity={"corridor": 1},
        pair_cells={("V1", "R1"): ["corridor"], ("V1", "R2"): ["corridor"]},
    )
    with pytest.raises(ValueError, match="'corridor'"):
        solve_flow(problem)
