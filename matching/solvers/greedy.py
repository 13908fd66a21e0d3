"""Greedy shortlists by descending score, the baseline and the refill step."""

from __future__ import annotations

import logging
import time

import numpy as np
from numpy.typing import NDArray

from matching.problem import ShortlistProblem, ShortlistSolution
from matching.solvers._common import count_usage, make_solution, sum_scores

logger = logging.getLogger(__name__)

__all__ = [
    "capacity_bound",
    "choosable_pairs",
    "drop_over_capacity",
    "fill_greedily",
    "solve_greedy",
]


def choosable_pairs(problem: ShortlistProblem) -> NDArray[np.bool_]:
    """Mark the pairs whose vacancy, registrant and cells all have capacity > 0.

    Every other pair is excluded from any feasible selection by a cap of 0.
    """
    choosable = (problem.vacancy_capacity[problem.pair_vacancy] > 0) & (
        problem.registrant_capacity[problem.pair_registrant] > 0
    )
    if problem.num_cells:
        closed_cells = (problem.cell_capacity == 0).astype(np.float64)
        in_closed_cell = problem.pair_cells @ closed_cells
        choosable &= in_closed_cell == 0
    return choosable


def _top_capacity_sum(
    group: NDArray[np.int32],
    capacity: NDArray[np.int32],
    score: NDArray[np.float64],
) -> float:
    """Sum, over groups, the ``capacity[g]`` highest scores among the group's pairs."""
    order = np.lexsort((-score, group))
    sorted_group = group[order]
    first_of_group = np.searchsorted(sorted_group, sorted_group, side="left")
    rank = np.arange(sorted_group.shape[0]) - first_of_group
    within_capacity = rank < capacity[sorted_group]
    return float(score[order][within_capacity].sum())


def capacity_bound(problem: ShortlistProblem) -> float:
    """Bound the optimum by the best scores each vacancy or registrant could take.

    Each vacancy takes at most ``vacancy_capacity[v]`` pairs, so no selection
    beats the sum over vacancies of their top ``vacancy_capacity[v]`` scores.
    The same is true of registrants. The smaller of the two sums is returned.
    It costs two sorts of the pairs and no solver call.
    """
    choosable = choosable_pairs(problem)
    score = problem.pair_score[choosable]
    if score.shape[0] == 0:
        return 0.0
    by_vacancy = _top_capacity_sum(
        problem.pair_vacancy[choosable], problem.vacancy_capacity, score
    )
    by_registrant = _top_capacity_sum(
        problem.pair_registrant[choosable], problem.registrant_capacity, score
    )
    return min(by_vacancy, by_registrant)


def fill_greedily(
    problem: ShortlistProblem, selected: NDArray[np.bool_] | None = None
) -> NDArray[np.bool_]:
    """Add pairs in descending score order while every capacity still allows them.

    Parameters
    ----------
    problem : ShortlistProblem
        The problem to fill.
    selected : ndarray of bool, shape (E,), optional
        A feasible starting selection that is kept; empty when omitted.

    Returns
    -------
    ndarray of bool, shape (E,)
        The starting selection plus the added pairs. No pair can be added to
        it without breaking a capacity.

    Notes
    -----
    Pairs are visited by descending score, ties by ascending pair index,
    so the result is deterministic. Pairs that a full vacancy, registrant or
    cell already excludes are filtered out with numpy first, and only the
    rest are visited in a Python loop.
    """
    result = (
        np.zeros(problem.num_pairs, dtype=np.bool_)
        if selected is None
        else np.array(selected, dtype=np.bool_)
    )
    usage = count_usage(problem, result)
    vacancy_left = problem.vacancy_capacity - usage.vacancy
    registrant_left = problem.registrant_capacity - usage.registrant
    cell_left = problem.cell_capacity - usage.cell

    candidate = ~result
    candidate &= vacancy_left[problem.pair_vacancy] > 0
    candidate &= registrant_left[problem.pair_registrant] > 0
    if problem.num_cells:
        full_cells = (cell_left <= 0).astype(np.float64)
        candidate &= (problem.pair_cells @ full_cells) == 0
    candidates = np.flatnonzero(candidate)
    candidates = candidates[np.argsort(-problem.pair_score[candidates], kind="stable")]

    added = _visit_in_order(
        problem, candidates, vacancy_left, registrant_left, cell_left
    )
    result[added] = True
    logger.debug(
        "greedy fill: %d candidates visited, %d added", candidates.shape[0], len(added)
    )
    return result


def _visit_in_order(
    problem: ShortlistProblem,
    candidates: NDArray[np.int64],
    vacancy_left: NDArray[np.int64],
    registrant_left: NDArray[np.int64],
    cell_left: NDArray[np.int64],
) -> list[int]:
    """Take each candidate, in order, whose residual capacities are all > 0."""
    # Python lists index faster than numpy arrays element by element.
    vacancy_of = problem.pair_vacancy[candidates].tolist()
    registrant_of = problem.pair_registrant[candidates].tolist()
    vacancy_room = vacancy_left.tolist()
    registrant_room = registrant_left.tolist()
    cell_room = cell_left.tolist()
    places_left = int(np.clip(vacancy_left, 0, None).sum())

    has_cells = problem.num_cells > 0
    if has_cells:
        cells = problem.pair_cells[candidates]
        cell_start = cells.indptr.tolist()
        cell_index = cells.indices.tolist()

    added: list[int] = []
    for position, pair in enumerate(candidates.tolist()):
        if places_left == 0:
            break
        vacancy = vacancy_of[position]
        registrant = registrant_of[position]
        if vacancy_room[vacancy] <= 0 or registrant_room[registrant] <= 0:
            continue
        if has_cells:
            members = cell_index[cell_start[position] : cell_start[position + 1]]
            if any(cell_room[g] <= 0 for g in members):
                continue
            for g in members:
                cell_room[g] -= 1
        vacancy_room[vacancy] -= 1
        registrant_room[registrant] -= 1
        places_left -= 1
        added.append(pair)
    return added


def solve_greedy(problem: ShortlistProblem) -> ShortlistSolution:
    """Choose pairs greedily by descending score, as a baseline for the other solvers.

    Parameters
    ----------
    problem : ShortlistProblem
        Pairs, scores and capacities.

    Returns
    -------
    ShortlistSolution
        ``method`` is ``"greedy"``. ``bound`` is :func:`capacity_bound`, and
        ``status`` is OPTIMAL only when the objective reaches that bound.
        ``cell_shadow_price`` is None because no duals are computed.

    Notes
    -----
    The greedy selection is maximal: no further pair fits. It is not
    optimal in general, because a high-scoring pair can use up a registrant
    or a cell that two slightly lower pairs would have shared better. It
    runs in O(E log E) for the sort plus a Python loop over the pairs that
    are not excluded up front.
    """
    started = time.perf_counter()
    selected = fill_greedily(problem)
    bound = capacity_bound(problem)
    objective = sum_scores(problem, selected)
    return make_solution(
        problem,
        selected,
        bound=bound,
        proven_optimal=objective >= bound - 1e-9 * max(1.0, bound),
        method="greedy",
        started=started,
        solver_status="greedy: maximal selection",
    )


def drop_over_capacity(problem: ShortlistProblem, selected: NDArray[np.bool_]) -> None:
    """Unselect the lowest-scoring pairs of any row over its capacity, in place.

    Rounding an LP point down keeps every row within its capacity up to the
    LP tolerance, so there this only acts when tolerances add up across a
    row. A selection made without the quota cells loses its lowest-scoring
    pairs in each cell over its cap.
    """
    usage = count_usage(problem, selected)
    vacancy_excess = (usage.vacancy - problem.vacancy_capacity).tolist()
    registrant_excess = (usage.registrant - problem.registrant_capacity).tolist()
    cell_excess = (usage.cell - problem.cell_capacity).tolist()
    if max(vacancy_excess + registrant_excess + cell_excess, default=0) <= 0:
        return

    chosen = np.flatnonzero(selected)
    chosen = chosen[np.argsort(problem.pair_score[chosen], kind="stable")]
    cells = problem.pair_cells
    for pair in chosen.tolist():
        vacancy = int(problem.pair_vacancy[pair])
        registrant = int(problem.pair_registrant[pair])
        members = cells.indices[cells.indptr[pair] : cells.indptr[pair + 1]].tolist()
        over = (
            vacancy_excess[vacancy] > 0
            or registrant_excess[registrant] > 0
            or any(cell_excess[g] > 0 for g in members)
        )
        if not over:
            continue
        selected[pair] = False
        vacancy_excess[vacancy] -= 1
        registrant_excess[registrant] -= 1
        for g in members:
            cell_excess[g] -= 1
    logger.debug("rounding repair dropped pairs to restore capacities")
