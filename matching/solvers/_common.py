"""Helpers shared by the shortlist solvers: option checks, usage counts, results."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.problem import ShortlistProblem, ShortlistSolution, SolveStatus

# Denominator floor of the relative gap, so an empty shortlist with bound 0
# has gap 0 rather than a division by zero.
GAP_DENOMINATOR_FLOOR = 1e-9


@dataclass(frozen=True)
class Usage:
    """Chosen pairs counted against each capacity."""

    vacancy: NDArray[np.int64]  # (M,)
    registrant: NDArray[np.int64]  # (N,)
    cell: NDArray[np.int64]  # (G,)


def count_usage(problem: ShortlistProblem, selected: NDArray[np.bool_]) -> Usage:
    """Count the chosen pairs per vacancy, per registrant and per quota cell."""
    vacancy = np.bincount(
        problem.pair_vacancy[selected], minlength=problem.num_vacancies
    ).astype(np.int64)
    registrant = np.bincount(
        problem.pair_registrant[selected], minlength=problem.num_registrants
    ).astype(np.int64)
    cell = np.asarray(
        problem.pair_cells.T @ selected.astype(np.int64), dtype=np.int64
    ).reshape(-1)
    return Usage(vacancy=vacancy, registrant=registrant, cell=cell)


def check_time_limit(time_limit_seconds: float) -> None:
    """Reject a time limit that is not a positive number of seconds."""
    if isinstance(time_limit_seconds, bool) or not isinstance(
        time_limit_seconds, (int, float)
    ):
        raise TypeError(
            "time_limit_seconds must be a number, "
            f"got {type(time_limit_seconds).__name__}"
        )
    if not time_limit_seconds > 0:
        raise ValueError(
            f"time_limit_seconds is {time_limit_seconds!r}, but it must be > 0 "
            "(math.inf for no limit)"
        )


def check_threads(num_threads: int) -> None:
    """Reject a thread count that is not a positive int."""
    if isinstance(num_threads, bool) or not isinstance(num_threads, int):
        raise TypeError(f"num_threads must be an int, got {type(num_threads).__name__}")
    if num_threads < 1:
        raise ValueError(f"num_threads is {num_threads}, but it must be >= 1")


def check_seed(random_seed: int) -> None:
    """Reject a seed outside the range HiGHS accepts (0 to 2**31 - 1)."""
    if isinstance(random_seed, bool) or not isinstance(random_seed, int):
        raise TypeError(f"random_seed must be an int, got {type(random_seed).__name__}")
    if not 0 <= random_seed <= 2**31 - 1:
        raise ValueError(
            f"random_seed is {random_seed}, but it must be within [0, 2147483647]"
        )


def check_relative_gap(relative_gap: float) -> None:
    """Reject a relative gap that is not a number within [0, 1)."""
    if isinstance(relative_gap, bool) or not isinstance(relative_gap, (int, float)):
        raise TypeError(
            f"relative_gap must be a number, got {type(relative_gap).__name__}"
        )
    if not 0.0 <= relative_gap < 1.0:
        raise ValueError(
            f"relative_gap is {relative_gap!r}, but it must be within [0, 1)"
        )


def sum_scores(problem: ShortlistProblem, selected: NDArray[np.bool_]) -> float:
    """Return the total score of the chosen pairs, summed in pair order."""
    return math.fsum(problem.pair_score[selected].tolist())


def make_solution(
    problem: ShortlistProblem,
    selected: NDArray[np.bool_],
    *,
    bound: float,
    proven_optimal: bool,
    method: str,
    started: float,
    cell_shadow_price: NDArray[np.float64] | None = None,
    lp_objective: float | None = None,
    solver_status: str = "",
) -> ShortlistSolution:
    """Wrap chosen pairs into a solution, recomputing objective, gap and cell use.

    ``started`` is a :func:`time.perf_counter` reading taken when the solve
    began. A bound a solver reports below the recomputed objective differs
    from it by floating-point noise only, because every solver here returns
    a feasible selection, so the bound is raised to the objective.
    """
    selected = np.ascontiguousarray(selected, dtype=np.bool_)
    selected.flags.writeable = False
    objective = sum_scores(problem, selected)
    bound = max(float(bound), objective)
    gap = (bound - objective) / max(bound, GAP_DENOMINATOR_FLOOR)
    usage = count_usage(problem, selected)
    status = SolveStatus.OPTIMAL if proven_optimal else SolveStatus.FEASIBLE
    return ShortlistSolution(
        selected=selected,
        objective=objective,
        bound=bound,
        gap=gap,
        status=status,
        method=method,
        wall_seconds=time.perf_counter() - started,
        cell_use=usage.cell,
        cell_shadow_price=cell_shadow_price,
        lp_objective=lp_objective,
        solver_status=solver_status,
    )
