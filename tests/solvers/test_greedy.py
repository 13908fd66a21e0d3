"""Tests of the greedy baseline, its refill step and its cheap bound."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.problem import ShortlistProblem, SolveStatus
from matching.solvers import capacity_bound, fill_greedily, solve_exact, solve_greedy

from .strategies import SOLVER_SETTINGS, brute_force_optimum, shortlist_problems


def _can_add(problem: ShortlistProblem, selected: np.ndarray, pair: int) -> bool:
    trial = selected.copy()
    trial[pair] = True
    return not find_violations(problem, trial)


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_greedy_solution_invariants(problem: ShortlistProblem) -> None:
    solution = solve_greedy(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.objective == pytest.approx(
        float(problem.pair_score[solution.selected].sum()), abs=1e-9
    )
    assert solution.bound >= solution.objective
    assert solution.method == "greedy"
    assert solution.cell_shadow_price is None


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_greedy_selection_is_maximal(problem: ShortlistProblem) -> None:
    selected = solve_greedy(problem).selected
    for pair in np.flatnonzero(~selected):
        assert not _can_add(problem, selected, int(pair))


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_greedy_runs_are_identical(problem: ShortlistProblem) -> None:
    first = solve_greedy(problem)
    second = solve_greedy(problem)
    assert np.array_equal(first.selected, second.selected)


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_capacity_bound_above_optimum(problem: ShortlistProblem) -> None:
    assert capacity_bound(problem) >= brute_force_optimum(problem) - 1e-9


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_fill_keeps_start_selection(problem: ShortlistProblem) -> None:
    start = solve_exact(problem).selected
    filled = fill_greedily(problem, start)
    assert (filled[start]).all()
    assert find_violations(problem, filled) == []


def test_greedy_ties_prefer_lower_index() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R2", 0.5), ("V1", "R1", 0.5)],
        vacancy_capacity={"V1": 1},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    solution = solve_greedy(problem)
    assert solution.selected.tolist() == [True, False]


def test_greedy_loses_to_exact_on_shared_registrant() -> None:
    # R1 is the best candidate for both vacancies but may join one shortlist.
    # Greedy gives R1 to V1 and leaves V2 empty. The optimum gives V1 to R2.
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 1.0), ("V2", "R1", 0.9), ("V1", "R2", 0.8)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    greedy = solve_greedy(problem)
    exact = solve_exact(problem)
    assert greedy.objective == pytest.approx(1.0)
    assert exact.objective == pytest.approx(1.7)
    assert greedy.bound >= exact.objective
    assert greedy.status is SolveStatus.FEASIBLE


def test_greedy_respects_nested_cells() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8), ("V2", "R3", 0.7), ("V2", "R4", 0.6)],
        vacancy_capacity={"V1": 2, "V2": 2},
        registrant_capacity={"R1": 1, "R2": 1, "R3": 1, "R4": 1},
        cell_capacity={"corridor": 3, "sector": 1},
        pair_cells={
            ("V1", "R1"): ["corridor", "sector"],
            ("V1", "R2"): ["corridor", "sector"],
            ("V2", "R3"): ["corridor"],
            ("V2", "R4"): ["corridor"],
        },
    )
    solution = solve_greedy(problem)
    assert solution.selected.tolist() == [True, False, True, True]
    assert solution.cell_use.tolist() == [3, 1]
