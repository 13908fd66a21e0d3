"""Checks of solver results against the problem they claim to solve."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from matching.problem import ShortlistProblem

__all__ = ["find_violations"]


def _check_selection(problem: ShortlistProblem, selected: object) -> NDArray[np.bool_]:
    if not isinstance(selected, np.ndarray):
        raise TypeError(
            f"selected must be a numpy array of bool, got {type(selected).__name__}"
        )
    if selected.dtype != np.bool_:
        raise TypeError(
            f"selected has dtype {selected.dtype}, but it must be bool; "
            "convert it with numpy.asarray(..., dtype=bool)"
        )
    if selected.shape != (problem.num_pairs,):
        raise ValueError(
            f"selected has shape {selected.shape}, but it must be "
            f"({problem.num_pairs},), one entry per pair of the problem"
        )
    return selected


def find_violations(
    problem: ShortlistProblem, selected: NDArray[np.bool_]
) -> list[str]:
    """List every capacity that a selection of pairs exceeds.

    Parameters
    ----------
    problem : ShortlistProblem
        The problem whose capacities apply.
    selected : ndarray of bool, shape (E,)
        True for each chosen pair.

    Returns
    -------
    list of str
        One message per vacancy, registrant or quota cell over its capacity,
        naming its id, its use and its capacity, in that order of kinds and
        by index within each kind. Empty when the selection is feasible.

    Raises
    ------
    TypeError
        If ``selected`` is not a numpy bool array.
    ValueError
        If ``selected`` does not have one entry per pair.

    Notes
    -----
    The counts are computed here with numpy, independently of the solvers,
    so tests can use this function to check any solver's output.
    """
    selected = _check_selection(problem, selected)
    vacancy_use = np.bincount(
        problem.pair_vacancy[selected], minlength=problem.num_vacancies
    )
    registrant_use = np.bincount(
        problem.pair_registrant[selected], minlength=problem.num_registrants
    )
    cell_use = np.asarray(problem.pair_cells.T @ selected.astype(np.int64)).reshape(-1)

    violations: list[str] = []
    for v in np.flatnonzero(vacancy_use > problem.vacancy_capacity).tolist():
        violations.append(
            f"vacancy '{problem.vacancy_ids[v]}' has {int(vacancy_use[v])} candidates "
            f"selected, above its capacity of {int(problem.vacancy_capacity[v])}"
        )
    for w in np.flatnonzero(registrant_use > problem.registrant_capacity).tolist():
        violations.append(
            f"registrant '{problem.registrant_ids[w]}' is on {int(registrant_use[w])} "
            f"shortlists, above its capacity of {int(problem.registrant_capacity[w])}"
        )
    for g in np.flatnonzero(cell_use > problem.cell_capacity).tolist():
        violations.append(
            f"quota cell '{problem.cell_ids[g]}' contains {int(cell_use[g])} selected "
            f"pairs, above its capacity of {int(problem.cell_capacity[g])}"
        )
    return violations
