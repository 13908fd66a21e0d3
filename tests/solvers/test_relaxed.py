"""Tests of the LP-rounding solver: feasibility, bounds and shadow prices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.problem import ShortlistProblem, SolveStatus
from matching.solvers import round_and_fill, solve_exact, solve_flow, solve_relaxed

from .strategies import (
    SOLVER_SETTINGS,
    brute_force_optimum,
    random_problem,
    shortlist_problems,
)


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_relaxed_solution_invariants(problem: ShortlistProblem) -> None:
    solution = solve_relaxed(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.objective == pytest.approx(
        float(problem.pair_score[solution.selected].sum()), abs=1e-9
    )
    assert solution.bound >= solution.objective
    assert solution.method == "relaxed-lp"
    assert solution.cell_shadow_price is not None
    assert solution.cell_shadow_price.shape == (problem.num_cells,)
    assert (solution.cell_shadow_price >= 0.0).all()


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_relaxed_brackets_optimum(problem: ShortlistProblem) -> None:
    solution = solve_relaxed(problem)
    optimum = brute_force_optimum(problem)
    assert solution.objective <= optimum + 1e-9
    assert solution.bound >= optimum - 1e-9


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_relaxed_runs_are_identical(problem: ShortlistProblem) -> None:
    first = solve_relaxed(problem)
    second = solve_relaxed(problem)
    assert np.array_equal(first.selected, second.selected)
    assert first.bound == second.bound


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_relaxed_within_exact_and_bound(problem: ShortlistProblem) -> None:
    relaxed = solve_relaxed(problem)
    exact = solve_exact(problem)
    assert relaxed.objective <= exact.objective + 1e-9
    assert exact.objective <= relaxed.bound + 1e-9


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=5, max_registrants=6, with_cells=False))
def test_relaxed_optimal_without_cells(problem: ShortlistProblem) -> None:
    # Without cells the LP is a bipartite b-matching, whose vertices are integral.
    relaxed = solve_relaxed(problem)
    flow = solve_flow(problem)
    assert relaxed.objective == pytest.approx(flow.objective, abs=1e-5)
    assert relaxed.status is SolveStatus.OPTIMAL


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=5, max_registrants=6, with_cells=True))
def test_shadow_price_bounds_lp_gain(problem: ShortlistProblem) -> None:
    # The LP duals stay feasible when one cell's capacity grows by 1, so the
    # LP optimum can grow by at most that cell's shadow price.
    solution = solve_relaxed(problem)
    assert solution.cell_shadow_price is not None
    assert solution.lp_objective is not None
    for cell in range(problem.num_cells):
        capacity = problem.cell_capacity.copy()
        capacity[cell] += 1
        widened = dataclasses.replace(problem, cell_capacity=capacity)
        widened_lp = solve_relaxed(widened).lp_objective
        assert widened_lp is not None
        price = solution.cell_shadow_price[cell]
        assert widened_lp <= solution.lp_objective + price + 1e-7


def test_shadow_price_of_binding_cell() -> None:
    # The corridor cell admits one of R1 (0.9) and R2 (0.8) while the vacancy
    # has room. One more unit gains 0.8 and one less loses 0.9, so any valid
    # dual value lies in [0.8, 0.9].
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8), ("V1", "R3", 0.5)],
        vacancy_capacity={"V1": 3},
        registrant_capacity={"R1": 1, "R2": 1, "R3": 1},
        cell_capacity={"corridor": 1, "open": 5},
        pair_cells={
            ("V1", "R1"): ["corridor", "open"],
            ("V1", "R2"): ["corridor", "open"],
            ("V1", "R3"): ["open"],
        },
    )
    solution = solve_relaxed(problem)
    assert solution.cell_shadow_price is not None
    assert 0.8 - 1e-9 <= solution.cell_shadow_price[0] <= 0.9 + 1e-9
    assert solution.cell_shadow_price[1] == 0.0
    assert solution.objective == pytest.approx(1.4)
    assert list(solution.cell_use) == [1, 2]


def test_relaxed_gap_on_fractional_lp() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 1.0), ("V1", "R2", 1.0), ("V2", "R1", 1.0), ("V2", "R2", 1.0)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1, "R2": 1},
        cell_capacity={"diagonal": 1, "anti": 1},
        pair_cells={
            ("V1", "R1"): ["diagonal"],
            ("V2", "R2"): ["diagonal"],
            ("V1", "R2"): ["anti"],
            ("V2", "R1"): ["anti"],
        },
    )
    solution = solve_relaxed(problem)
    assert solution.objective == 1.0
    assert solution.bound == pytest.approx(2.0)
    assert solution.gap == pytest.approx(0.5)
    assert solution.status is SolveStatus.FEASIBLE


def test_relaxed_close_to_lp_bound_on_random_round() -> None:
    problem = random_problem(
        3, num_registrants=2000, num_vacancies=200, candidates_per_vacancy=50
    )
    solution = solve_relaxed(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.gap <= 1e-3


def test_relaxed_time_limit_falls_back_to_greedy() -> None:
    problem = random_problem(
        0, num_registrants=200, num_vacancies=30, candidates_per_vacancy=20
    )
    optimum = solve_exact(problem).objective
    stopped = solve_relaxed(problem, time_limit_seconds=1e-9)
    assert stopped.status is SolveStatus.FEASIBLE
    assert stopped.cell_shadow_price is None
    assert find_violations(problem, stopped.selected) == []
    assert stopped.bound >= optimum - 1e-9


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"time_limit_seconds": 0.0}, ValueError),
        ({"num_threads": 0}, ValueError),
        ({"random_seed": 2**31}, ValueError),
        ({"num_threads": True}, TypeError),
    ],
)
def test_relaxed_rejects_bad_options(
    options: dict[str, object], error: type[Exception]
) -> None:
    problem = random_problem(
        0, num_registrants=20, num_vacancies=5, candidates_per_vacancy=5
    )
    with pytest.raises(error):
        solve_relaxed(problem, **options)  # type: ignore[arg-type]


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_round_and_fill_repairs_overfull_point(problem: ShortlistProblem) -> None:
    # An all-ones point breaks most capacities. Rounding must drop pairs
    # until every capacity is respected, then refill.
    selected = round_and_fill(problem, np.ones(problem.num_pairs))
    assert find_violations(problem, selected) == []
    for pair in np.flatnonzero(~selected).tolist():
        trial = selected.copy()
        trial[pair] = True
        assert find_violations(problem, trial) != []
