"""Tests of the dual bounds of the priced LP relaxation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from matching.checks import find_violations
from matching.solvers._lp import LpRelaxation, solve_lp_relaxation
from matching.solvers.flow import lagrangian_bound
from matching.solvers.relaxed import solve_relaxed
from tests.solvers.strategies import random_problem

SEEDS = (1, 2, 3, 4, 5)


def _lp_optimum(problem) -> LpRelaxation:  # type: ignore[no-untyped-def]
    relaxation = solve_lp_relaxation(
        problem, deadline=time.perf_counter() + 60, num_threads=1, random_seed=0
    )
    assert relaxation.converged
    return relaxation


def _cell_duals(problem, relaxation: LpRelaxation) -> np.ndarray:  # type: ignore[no-untyped-def]
    assert relaxation.row_dual is not None
    return relaxation.row_dual[problem.num_vacancies + problem.num_registrants :]


@pytest.mark.parametrize("seed", SEEDS)
def test_lagrangian_bound_any_prices(seed: int) -> None:
    problem = random_problem(
        seed, num_registrants=300, num_vacancies=30, candidates_per_vacancy=25
    )
    optimum = _lp_optimum(problem).objective
    rng = np.random.default_rng(seed)

    for prices in (
        np.zeros(problem.num_cells),
        rng.uniform(0.0, 0.3, problem.num_cells),
    ):
        bound, selected = lagrangian_bound(problem, prices)
        assert bound >= optimum - 1e-6
        assert selected.shape == (problem.num_pairs,)


@pytest.mark.parametrize("seed", SEEDS)
def test_lagrangian_bound_at_optimal_duals(seed: int) -> None:
    problem = random_problem(
        seed, num_registrants=300, num_vacancies=30, candidates_per_vacancy=25
    )
    relaxation = _lp_optimum(problem)

    bound, _ = lagrangian_bound(problem, _cell_duals(problem, relaxation))

    # The b-matching polytope is integral, so the Lagrangian dual of the cell
    # rows equals the LP optimum; flow scores are rounded to 1e-6 per pair.
    slack = problem.num_pairs * 1e-6
    assert relaxation.objective - 1e-6 <= bound <= relaxation.objective + slack


def test_gap_stop_reports_valid_bound() -> None:
    problem = random_problem(
        9, num_registrants=3_000, num_vacancies=300, candidates_per_vacancy=60
    )
    optimum = _lp_optimum(problem).objective

    stopped = solve_lp_relaxation(
        problem,
        deadline=time.perf_counter() + 60,
        num_threads=1,
        random_seed=0,
        relative_gap=0.01,
    )

    assert stopped.converged or stopped.within_gap
    assert math.isfinite(stopped.tight_bound)
    assert stopped.tight_bound <= stopped.bound + 1e-9
    assert stopped.tight_bound >= optimum - 1e-6
    assert stopped.objective <= optimum + 1e-6
    assert stopped.tight_bound - stopped.objective <= 0.01 * stopped.tight_bound


def test_relaxed_with_gap_keeps_caps() -> None:
    problem = random_problem(
        13, num_registrants=3_000, num_vacancies=300, candidates_per_vacancy=60
    )

    solution = solve_relaxed(problem, relative_gap=0.02)

    assert find_violations(problem, solution.selected) == []
    assert solution.bound >= solution.objective
    assert solution.gap <= 0.02
