"""Tests of the dual bounds of the priced LP relaxation."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from matching.solvers._lp import price_pairs, solve_lp_relaxation, tighten_duals
from matching.solvers.greedy import choosable_pairs
from tests.solvers.strategies import random_problem

SEEDS = (1, 2, 3, 4, 5)


def _lp_optimum(problem):  # type: ignore[no-untyped-def]
    relaxation = solve_lp_relaxation(
        problem, deadline=time.perf_counter() + 60, num_threads=1, random_seed=0
    )
    assert relaxation.converged
    return relaxation


@pytest.mark.parametrize("seed", SEEDS)
def test_tightened_zero_duals_bound_lp(seed: int) -> None:
    problem = random_problem(
        seed, num_registrants=300, num_vacancies=30, candidates_per_vacancy=25
    )
    choosable = choosable_pairs(problem)
    zero = np.zeros(problem.num_vacancies + problem.num_registrants + problem.num_cells)

    _, loose = price_pairs(problem, zero, choosable)
    tightened = tighten_duals(problem, zero, choosable)
    _, tight = price_pairs(problem, tightened, choosable)
    optimum = _lp_optimum(problem).objective

    assert (tightened >= 0).all()
    assert tight <= loose + 1e-9
    assert tight >= optimum - 1e-6
    assert tight < loose


@pytest.mark.parametrize("seed", SEEDS)
def test_tightening_keeps_optimal_duals_bound(seed: int) -> None:
    problem = random_problem(
        seed, num_registrants=300, num_vacancies=30, candidates_per_vacancy=25
    )
    choosable = choosable_pairs(problem)
    relaxation = _lp_optimum(problem)
    assert relaxation.row_dual is not None

    _, tight = price_pairs(
        problem, tighten_duals(problem, relaxation.row_dual, choosable), choosable
    )

    assert tight == pytest.approx(relaxation.objective, rel=1e-7, abs=1e-7)


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
