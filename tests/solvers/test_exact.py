"""Tests of the exact solver against brute force, a plain MIP and the other solvers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.exceptions import SolverFailedError
from matching.problem import ShortlistProblem, SolveStatus
from matching.solvers import solve_exact, solve_greedy, solve_relaxed
from matching.solvers._highs import HighsShortlistModel

from .strategies import (
    SOLVER_SETTINGS,
    brute_force_optimum,
    random_problem,
    shortlist_problems,
)


def _crossing_cells_problem() -> ShortlistProblem:
    """Two vacancies and two registrants whose LP optimum is fractional.

    Cells "diagonal" and "anti" each take one of the two perfect matchings,
    so an integer selection contains one pair while x = 0.5 everywhere scores 2.
    """
    return ShortlistProblem.from_pairs(
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


@SOLVER_SETTINGS
@given(shortlist_problems(max_pairs=12))
def test_exact_matches_brute_force(problem: ShortlistProblem) -> None:
    solution = solve_exact(problem)
    optimum = brute_force_optimum(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.objective == pytest.approx(optimum, abs=1e-6)
    assert solution.bound >= optimum - 1e-9
    assert solution.status is SolveStatus.OPTIMAL


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_exact_solution_invariants(problem: ShortlistProblem) -> None:
    solution = solve_exact(problem)
    assert find_violations(problem, solution.selected) == []
    assert solution.objective == pytest.approx(
        float(problem.pair_score[solution.selected].sum()), abs=1e-9
    )
    assert solution.bound >= solution.objective
    assert solution.gap >= 0.0
    assert solution.method == "exact-highs-mip"
    expected_use = problem.pair_cells.T @ solution.selected.astype(np.int64)
    assert np.array_equal(solution.cell_use, expected_use)


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_exact_runs_are_identical(problem: ShortlistProblem) -> None:
    first = solve_exact(problem)
    second = solve_exact(problem)
    assert np.array_equal(first.selected, second.selected)
    assert first.bound == second.bound


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_exact_dominates_greedy_and_relaxed(problem: ShortlistProblem) -> None:
    exact = solve_exact(problem)
    relaxed = solve_relaxed(problem)
    greedy = solve_greedy(problem)
    assert exact.objective >= greedy.objective - 1e-9
    assert exact.objective >= relaxed.objective - 1e-9
    assert exact.objective <= relaxed.bound + 1e-9


def test_exact_fractional_lp_needs_mip() -> None:
    problem = _crossing_cells_problem()
    solution = solve_exact(problem)
    assert solution.objective == 1.0
    assert solution.bound == pytest.approx(1.0)
    assert solution.status is SolveStatus.OPTIMAL
    assert solution.lp_objective == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("seed", "num_registrants", "num_vacancies", "candidates_per_vacancy"),
    [(1, 400, 60, 40), (0, 1000, 100, 60), (1, 1000, 100, 60)],
)
def test_exact_matches_plain_mip(
    seed: int, num_registrants: int, num_vacancies: int, candidates_per_vacancy: int
) -> None:
    # These seeds give fractional LP optima, so reduced-cost fixing and the
    # MIP over the kept pairs both run.
    problem = random_problem(
        seed,
        num_registrants=num_registrants,
        num_vacancies=num_vacancies,
        candidates_per_vacancy=candidates_per_vacancy,
        num_origins=2,
        num_sectors=2,
        num_cross_cells=10,
    )
    solution = solve_exact(problem)
    plain = HighsShortlistModel(
        problem,
        np.arange(problem.num_pairs),
        integral=True,
        num_threads=1,
        random_seed=0,
    ).solve(time_limit_seconds=60.0)
    assert plain.optimal
    assert solution.lp_objective is not None
    assert solution.lp_objective > solution.objective + 1e-6
    assert solution.objective == pytest.approx(plain.objective, abs=1e-6)
    assert solution.status is SolveStatus.OPTIMAL
    assert find_violations(problem, solution.selected) == []


def test_exact_time_limit_returns_feasible() -> None:
    problem = random_problem(
        0,
        num_registrants=200,
        num_vacancies=30,
        candidates_per_vacancy=20,
        num_cross_cells=4,
    )
    optimum = solve_exact(problem).objective
    stopped = solve_exact(problem, time_limit_seconds=1e-9)
    assert stopped.status is SolveStatus.FEASIBLE
    assert find_violations(problem, stopped.selected) == []
    assert stopped.bound >= optimum - 1e-9
    assert stopped.objective <= optimum + 1e-9


def test_exact_two_threads_same_objective() -> None:
    problem = random_problem(
        1,
        num_registrants=400,
        num_vacancies=60,
        candidates_per_vacancy=40,
        num_origins=2,
        num_sectors=2,
        num_cross_cells=10,
    )
    single_thread = solve_exact(problem, num_threads=1)
    two_threads = solve_exact(problem, num_threads=2)
    single_again = solve_exact(problem, num_threads=1)
    assert two_threads.objective == pytest.approx(single_thread.objective, abs=1e-6)
    assert np.array_equal(single_thread.selected, single_again.selected)


def test_exact_relative_gap_allows_stop() -> None:
    problem = _crossing_cells_problem()
    solution = solve_exact(problem, relative_gap=0.5)
    assert solution.gap <= 0.5
    assert solution.status is SolveStatus.OPTIMAL


def test_exact_empty_problem() -> None:
    problem = ShortlistProblem.from_pairs(
        [], vacancy_capacity={"V1": 2}, registrant_capacity={"R1": 1}
    )
    solution = solve_exact(problem)
    assert solution.objective == 0.0
    assert solution.bound == 0.0
    assert solution.selected.shape == (0,)
    assert solution.status is SolveStatus.OPTIMAL


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"time_limit_seconds": 0.0}, ValueError),
        ({"time_limit_seconds": -1.0}, ValueError),
        ({"time_limit_seconds": "60"}, TypeError),
        ({"num_threads": 0}, ValueError),
        ({"num_threads": 1.5}, TypeError),
        ({"random_seed": -1}, ValueError),
        ({"relative_gap": 1.0}, ValueError),
        ({"relative_gap": math.nan}, ValueError),
    ],
)
def test_exact_rejects_bad_options(
    options: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        solve_exact(_crossing_cells_problem(), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("integral", [True, False])
def test_highs_model_time_limit_without_point(integral: bool) -> None:
    # With no start and no time, HiGHS stops before any feasible point.
    problem = random_problem(
        0,
        num_registrants=1000,
        num_vacancies=100,
        candidates_per_vacancy=60,
        num_origins=2,
        num_sectors=2,
        num_cross_cells=10,
    )
    model = HighsShortlistModel(
        problem,
        np.arange(problem.num_pairs),
        integral=integral,
        num_threads=1,
        random_seed=0,
    )
    with pytest.raises(SolverFailedError, match="time_limit_seconds"):
        model.solve(time_limit_seconds=1e-9)


def test_highs_model_time_limit_keeps_start() -> None:
    problem = random_problem(
        0,
        num_registrants=1000,
        num_vacancies=100,
        candidates_per_vacancy=60,
        num_origins=2,
        num_sectors=2,
        num_cross_cells=10,
    )
    start = solve_greedy(problem).selected
    model = HighsShortlistModel(
        problem,
        np.arange(problem.num_pairs),
        integral=True,
        num_threads=1,
        random_seed=0,
    )
    model.set_start(start)
    outcome = model.solve(time_limit_seconds=1e-9)
    assert not outcome.optimal
    assert outcome.objective == pytest.approx(float(problem.pair_score[start].sum()))
    assert outcome.dual_bound == math.inf


def test_exact_reports_lp_cell_prices() -> None:
    problem = random_problem(
        17, num_registrants=400, num_vacancies=40, candidates_per_vacancy=30
    )

    solution = solve_exact(problem)
    prices = solution.cell_shadow_price

    assert prices is not None
    assert prices.shape == (problem.num_cells,)
    assert (prices >= 0).all()
    # A cell holding no more pairs than its capacity can never bind.
    pairs_per_cell = np.asarray(problem.pair_cells.sum(axis=0)).reshape(-1)
    never_binding = pairs_per_cell <= problem.cell_capacity
    assert (prices[never_binding] == 0).all()
    assert (prices > 0).any()
