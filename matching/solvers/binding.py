"""Reasons a shortlist came out shorter than its vacancy's capacity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from numpy.typing import NDArray

from matching.problem import ShortlistProblem, ShortlistSolution

__all__ = [
    "ALL_CANDIDATES_SELECTED",
    "NO_ELIGIBLE_REGISTRANT",
    "QUOTA_CELL_PREFIX",
    "REGISTRANT_CAPS",
    "SOLVER_LEFT_OUT",
    "BindingReason",
    "find_binding_reasons",
]

NO_ELIGIBLE_REGISTRANT = "no_eligible_registrant"
"""The vacancy has no candidate pair at all."""

ALL_CANDIDATES_SELECTED = "all_candidates_selected"
"""Every candidate pair of the vacancy is selected, and there are too few."""

REGISTRANT_CAPS = "registrant_caps"
"""Some unselected candidates are already on as many shortlists as they may be."""

QUOTA_CELL_PREFIX = "quota_cell:"
"""Prefix of the code naming the full quota cell that blocks the most candidates."""

SOLVER_LEFT_OUT = "solver_left_out"
"""Some unselected candidates hit no full capacity; the solver chose not to add
them, which an optimal solver does only for pairs of score 0."""


@dataclass(frozen=True)
class BindingReason:
    """The capacities that kept a vacancy's shortlist below its size.

    A candidate pair of the vacancy is blocked by a registrant cap when its
    registrant is at capacity, and by a quota cell when the pair lies in a
    cell at capacity. One pair can be blocked several ways.
    """

    vacancy_id: str
    shortfall: int
    """Vacancy capacity minus the candidates selected for it."""
    num_pairs: int
    """Candidate pairs of the vacancy."""
    num_unselected: int
    """Candidate pairs of the vacancy left out of its shortlist."""
    num_blocked_by_registrant_caps: int
    """Unselected pairs whose registrant is at capacity."""
    blocking_cells: tuple[tuple[str, int], ...]
    """(cell id, unselected pairs in that full cell), most first, then by cell index."""
    num_unblocked: int
    """Unselected pairs that no full capacity blocks."""

    @property
    def codes(self) -> tuple[str, ...]:
        """Reason codes, in a fixed order.

        ``no_eligible_registrant`` or ``all_candidates_selected`` alone when
        no candidate is left to add. Otherwise any of ``registrant_caps``
        (at least one unselected candidate is at its registrant cap),
        ``quota_cell:<cell id>`` (the full cell that blocks the most
        unselected candidates) and ``solver_left_out`` (at least one
        unselected candidate is blocked by nothing).
        """
        if self.num_pairs == 0:
            return (NO_ELIGIBLE_REGISTRANT,)
        if self.num_unselected == 0:
            return (ALL_CANDIDATES_SELECTED,)
        codes: list[str] = []
        if self.num_blocked_by_registrant_caps:
            codes.append(REGISTRANT_CAPS)
        if self.blocking_cells:
            codes.append(QUOTA_CELL_PREFIX + self.blocking_cells[0][0])
        if self.num_unblocked:
            codes.append(SOLVER_LEFT_OUT)
        return tuple(codes)

    def __str__(self) -> str:
        return "+".join(self.codes)

    def as_dict(self) -> dict[str, object]:
        """Return the reason as JSON-ready values, codes included."""
        return {
            "vacancy_id": self.vacancy_id,
            "codes": list(self.codes),
            "shortfall": self.shortfall,
            "num_pairs": self.num_pairs,
            "num_unselected": self.num_unselected,
            "num_blocked_by_registrant_caps": self.num_blocked_by_registrant_caps,
            "blocking_cells": [
                {"cell_id": cell_id, "num_blocked": count}
                for cell_id, count in self.blocking_cells
            ],
            "num_unblocked": self.num_unblocked,
        }


def _check_solution(
    problem: ShortlistProblem, solution: ShortlistSolution
) -> NDArray[np.bool_]:
    selected = solution.selected
    if not isinstance(selected, np.ndarray) or selected.dtype != np.bool_:
        raise TypeError("solution.selected must be a numpy bool array")
    if selected.shape != (problem.num_pairs,):
        raise ValueError(
            f"solution.selected has shape {selected.shape}, but the problem has "
            f"{problem.num_pairs} pairs; pass the solution of this problem"
        )
    return selected


def find_binding_reasons(
    problem: ShortlistProblem, solution: ShortlistSolution
) -> dict[int, BindingReason]:
    """Explain each vacancy whose shortlist has fewer candidates than its capacity.

    Parameters
    ----------
    problem : ShortlistProblem
        The problem that was solved.
    solution : ShortlistSolution
        A solution of ``problem`` from any solver.

    Returns
    -------
    dict of int to BindingReason
        Keyed by vacancy index, in ascending order, one entry per vacancy
        with fewer selected candidates than ``vacancy_capacity``.

    Raises
    ------
    TypeError, ValueError
        If ``solution.selected`` is not a bool array with one entry per pair.

    Notes
    -----
    A vacancy is short because each of its unselected candidates is
    blocked: its registrant is at capacity, or one of its quota cells is. Use
    is counted from ``solution.selected``. Cost is O(E + nnz(pair_cells)).
    """
    selected = _check_solution(problem, solution)
    vacancy_use = np.bincount(
        problem.pair_vacancy[selected], minlength=problem.num_vacancies
    )
    registrant_use = np.bincount(
        problem.pair_registrant[selected], minlength=problem.num_registrants
    )
    cell_use = np.asarray(problem.pair_cells.T @ selected.astype(np.int64)).reshape(-1)
    short = vacancy_use < problem.vacancy_capacity
    if not short.any():
        return {}

    pairs_per_vacancy = np.bincount(
        problem.pair_vacancy, minlength=problem.num_vacancies
    )

    # Unselected pairs of short vacancies, and what blocks each of them.
    open_pairs = np.flatnonzero(~selected & short[problem.pair_vacancy])
    open_vacancy = problem.pair_vacancy[open_pairs]
    registrant_full = (
        registrant_use[problem.pair_registrant[open_pairs]]
        >= problem.registrant_capacity[problem.pair_registrant[open_pairs]]
    )
    cell_full = cell_use >= problem.cell_capacity
    memberships = problem.pair_cells[open_pairs]
    entry_position = np.repeat(
        np.arange(open_pairs.shape[0]), np.diff(memberships.indptr)
    )
    entry_blocks = cell_full[memberships.indices]
    blocking_position = entry_position[entry_blocks]
    blocking_cell = memberships.indices[entry_blocks]
    blocked_by_cell = np.zeros(open_pairs.shape[0], dtype=np.bool_)
    blocked_by_cell[blocking_position] = True

    unselected_count = np.bincount(open_vacancy, minlength=problem.num_vacancies)
    registrant_count = np.bincount(
        open_vacancy[registrant_full], minlength=problem.num_vacancies
    )
    unblocked_count = np.bincount(
        open_vacancy[~registrant_full & ~blocked_by_cell],
        minlength=problem.num_vacancies,
    )
    # Row v, column g: unselected pairs of vacancy v that full cell g blocks.
    cell_counts = scipy.sparse.csr_array(
        (
            np.ones(blocking_position.shape[0], dtype=np.int64),
            (open_vacancy[blocking_position], blocking_cell),
        ),
        shape=(problem.num_vacancies, problem.num_cells),
    )
    cell_counts.sum_duplicates()

    reasons: dict[int, BindingReason] = {}
    for v in np.flatnonzero(short).tolist():
        row = slice(cell_counts.indptr[v], cell_counts.indptr[v + 1])
        cells = cell_counts.indices[row]
        counts = cell_counts.data[row]
        order = np.lexsort((cells, -counts))
        reasons[v] = BindingReason(
            vacancy_id=problem.vacancy_ids[v],
            shortfall=int(problem.vacancy_capacity[v] - vacancy_use[v]),
            num_pairs=int(pairs_per_vacancy[v]),
            num_unselected=int(unselected_count[v]),
            num_blocked_by_registrant_caps=int(registrant_count[v]),
            blocking_cells=tuple(
                (problem.cell_ids[int(cells[i])], int(counts[i])) for i in order
            ),
            num_unblocked=int(unblocked_count[v]),
        )
    return reasons
