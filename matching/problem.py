"""Shortlist problem and solution values shared by every solver.

A matching round reduces to one integer program over scored candidate pairs:

    maximise    sum_e score[e] * x[e]
    subject to  sum of x[e] over the pairs of vacancy v      <= vacancy_capacity[v]
                sum of x[e] over the pairs of registrant w   <= registrant_capacity[w]
                sum of x[e] over the pairs in quota cell g   <= cell_capacity[g]
                x[e] in {0, 1}

Every capacity is non-negative, so choosing no pair is always feasible. The
solvers in :mod:`matching.solvers` only see the arrays defined here; the
caller maps quota modes, shortlist ratios and ids onto them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import NDArray

__all__ = ["ShortlistProblem", "ShortlistSolution", "SolveStatus"]


def _check_ids(name: str, ids: object) -> tuple[str, ...]:
    if not isinstance(ids, tuple):
        raise TypeError(f"{name} must be a tuple of str, got {type(ids).__name__}")
    seen: dict[str, int] = {}
    for index, item in enumerate(ids):
        if not isinstance(item, str):
            raise TypeError(
                f"{name}[{index}] must be a str, got {type(item).__name__} ({item!r})"
            )
        if item in seen:
            raise ValueError(
                f"{name}[{index}] is '{item}', which repeats {name}[{seen[item]}]; "
                "ids must be unique"
            )
        seen[item] = index
    return ids


def _check_vector(
    name: str, array: object, dtype: type[np.generic], length: int
) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of {np.dtype(dtype).name}, "
            f"got {type(array).__name__}"
        )
    if array.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {array.dtype}, but it must be {np.dtype(dtype).name}; "
            f"convert it with numpy.asarray(..., dtype=numpy.{np.dtype(dtype).name})"
        )
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(
            f"{name} has shape {array.shape}, but it must be ({length},) "
            "to match the other arrays"
        )


def _first_index(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_index_range(
    name: str, array: NDArray[np.int32], size: int, what: str
) -> None:
    bad = (array < 0) | (array >= size)
    if bad.any():
        index = _first_index(bad)
        raise ValueError(
            f"{name}[{index}] is {int(array[index])}, but it must index one of the "
            f"{size} {what} (0 to {size - 1})"
        )


def _check_non_negative(name: str, array: NDArray[np.int32]) -> None:
    bad = array < 0
    if bad.any():
        index = _first_index(bad)
        raise ValueError(f"{name}[{index}] is {int(array[index])}, but it must be >= 0")


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ShortlistProblem:
    """Scored candidate pairs and the capacities that limit which can be chosen.

    Each pair ``e`` joins vacancy ``pair_vacancy[e]`` and registrant
    ``pair_registrant[e]`` with score ``pair_score[e]``. A pair appears at most
    once. The numpy arrays are stored as read-only views of the arrays passed
    in, so the problem does not copy them. A caller that later writes to its
    own arrays (or to ``pair_cells``) changes the problem too.

    Parameters
    ----------
    pair_vacancy : ndarray of int32, shape (E,)
        Vacancy index of each pair, in ``[0, M)``.
    pair_registrant : ndarray of int32, shape (E,)
        Registrant index of each pair, in ``[0, N)``.
    pair_score : ndarray of float64, shape (E,)
        Score of each pair, in ``[0, 1]``.
    vacancy_capacity : ndarray of int32, shape (M,)
        Maximum number of candidates on each vacancy's shortlist, >= 0.
    registrant_capacity : ndarray of int32, shape (N,)
        Maximum number of shortlists each registrant may appear on, >= 0.
    cell_capacity : ndarray of int32, shape (G,)
        Maximum number of chosen pairs inside each quota cell, >= 0.
    pair_cells : scipy.sparse.csr_array or csr_matrix, shape (E, G)
        Membership of pairs in quota cells: entry ``(e, g)`` is 1 when pair
        ``e`` counts against cell ``g``. Only ones are stored. Cells may nest,
        so a row may contain several ones.
    vacancy_ids, registrant_ids, cell_ids : tuple of str
        External ids, of lengths M, N and G, used in messages and reports.

    Raises
    ------
    TypeError
        If an array is not a numpy array of the documented dtype, or an id is
        not a str.
    ValueError
        If a shape disagrees with the others, an index is out of range, a
        score is outside ``[0, 1]`` or not finite, a capacity is negative,
        ``pair_cells`` stores a value other than 1 or a duplicate entry, an id
        repeats, or a (vacancy, registrant) pair appears twice. The message
        names the array, the first offending index and the rule.
    """

    pair_vacancy: NDArray[np.int32]
    pair_registrant: NDArray[np.int32]
    pair_score: NDArray[np.float64]
    vacancy_capacity: NDArray[np.int32]
    registrant_capacity: NDArray[np.int32]
    cell_capacity: NDArray[np.int32]
    pair_cells: scipy.sparse.csr_array
    vacancy_ids: tuple[str, ...]
    registrant_ids: tuple[str, ...]
    cell_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        vacancy_ids = _check_ids("vacancy_ids", self.vacancy_ids)
        registrant_ids = _check_ids("registrant_ids", self.registrant_ids)
        cell_ids = _check_ids("cell_ids", self.cell_ids)
        num_vacancies = len(vacancy_ids)
        num_registrants = len(registrant_ids)
        num_cells = len(cell_ids)

        num_pairs = (
            int(np.shape(self.pair_vacancy)[0]) if np.ndim(self.pair_vacancy) else 0
        )
        _check_vector("pair_vacancy", self.pair_vacancy, np.int32, num_pairs)
        _check_vector("pair_registrant", self.pair_registrant, np.int32, num_pairs)
        _check_vector("pair_score", self.pair_score, np.float64, num_pairs)
        _check_vector(
            "vacancy_capacity", self.vacancy_capacity, np.int32, num_vacancies
        )
        _check_vector(
            "registrant_capacity", self.registrant_capacity, np.int32, num_registrants
        )
        _check_vector("cell_capacity", self.cell_capacity, np.int32, num_cells)

        _check_index_range(
            "pair_vacancy", self.pair_vacancy, num_vacancies, "vacancies"
        )
        _check_index_range(
            "pair_registrant", self.pair_registrant, num_registrants, "registrants"
        )
        bad_score = ~((self.pair_score >= 0.0) & (self.pair_score <= 1.0))
        if bad_score.any():
            index = _first_index(bad_score)
            raise ValueError(
                f"pair_score[{index}] is {float(self.pair_score[index])!r}, "
                "but scores must be finite and within [0, 1]"
            )
        _check_non_negative("vacancy_capacity", self.vacancy_capacity)
        _check_non_negative("registrant_capacity", self.registrant_capacity)
        _check_non_negative("cell_capacity", self.cell_capacity)

        self._check_pair_cells(num_pairs, num_cells)
        self._check_duplicate_pairs(num_registrants)

        for name in (
            "pair_vacancy",
            "pair_registrant",
            "pair_score",
            "vacancy_capacity",
            "registrant_capacity",
            "cell_capacity",
        ):
            object.__setattr__(self, name, _read_only(getattr(self, name)))

    def _check_pair_cells(self, num_pairs: int, num_cells: int) -> None:
        matrix = self.pair_cells
        if not scipy.sparse.issparse(matrix) or matrix.format != "csr":
            raise TypeError(
                "pair_cells must be a scipy.sparse CSR array, "
                f"got {type(matrix).__name__}; "
                "convert it with scipy.sparse.csr_array(...)"
            )
        if matrix.shape != (num_pairs, num_cells):
            raise ValueError(
                f"pair_cells has shape {matrix.shape}, but it must be "
                f"({num_pairs}, {num_cells}): one row per pair, one column per cell"
            )
        not_one = matrix.data != 1
        if not_one.any():
            entry = _first_index(not_one)
            row = int(np.searchsorted(matrix.indptr, entry, side="right") - 1)
            raise ValueError(
                f"pair_cells[{row}, {int(matrix.indices[entry])}] stores "
                f"{matrix.data[entry]!r}, but membership entries must be 1; "
                "leave non-members out instead of storing 0"
            )
        # scipy checks the canonical format in one linear pass in C, while
        # hashing the (pair, cell) keys took 6 s on a million pairs.
        if matrix.has_canonical_format:
            return
        canonical = matrix.copy()
        canonical.sum_duplicates()
        if canonical.nnz != matrix.nnz:
            raise ValueError(
                "pair_cells stores the same (pair, cell) entry twice; "
                "call sum_duplicates() and keep the entries at 1"
            )

    def _check_duplicate_pairs(self, num_registrants: int) -> None:
        keys = self.pair_vacancy.astype(np.int64) * max(num_registrants, 1)
        keys += self.pair_registrant
        order = np.argsort(keys, kind="stable")
        repeats = np.flatnonzero(keys[order][1:] == keys[order][:-1])
        if repeats.size:
            first = int(order[repeats[0]])
            second = int(order[repeats[0] + 1])
            vacancy = self.vacancy_ids[int(self.pair_vacancy[first])]
            registrant = self.registrant_ids[int(self.pair_registrant[first])]
            raise ValueError(
                f"pairs {first} and {second} both join vacancy '{vacancy}' and "
                f"registrant '{registrant}'; each pair may appear once"
            )

    @property
    def num_pairs(self) -> int:
        """Number of candidate pairs, E."""
        return int(self.pair_vacancy.shape[0])

    @property
    def num_vacancies(self) -> int:
        """Number of vacancies, M."""
        return len(self.vacancy_ids)

    @property
    def num_registrants(self) -> int:
        """Number of registrants, N."""
        return len(self.registrant_ids)

    @property
    def num_cells(self) -> int:
        """Number of quota cells, G."""
        return len(self.cell_ids)

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, str, float]],
        *,
        vacancy_capacity: Mapping[str, int],
        registrant_capacity: Mapping[str, int],
        cell_capacity: Mapping[str, int] | None = None,
        pair_cells: Mapping[tuple[str, str], Iterable[str]] | None = None,
    ) -> ShortlistProblem:
        """Build a problem from ids, for tests and small callers.

        Parameters
        ----------
        pairs : iterable of (vacancy id, registrant id, score)
            The candidate pairs, in the order they get indices.
        vacancy_capacity : mapping of vacancy id to int
            Shortlist size of each vacancy; its key order sets the vacancy
            indices.
        registrant_capacity : mapping of registrant id to int
            Shortlist cap of each registrant; its key order sets the
            registrant indices.
        cell_capacity : mapping of cell id to int, optional
            Cap of each quota cell; its key order sets the cell indices.
        pair_cells : mapping of (vacancy id, registrant id) to cell ids, optional
            The cells each pair counts against. Pairs left out belong to no
            cell.

        Returns
        -------
        ShortlistProblem

        Raises
        ------
        ValueError
            If a pair or a membership names an unknown id, or the arrays fail
            the checks of :class:`ShortlistProblem`.
        """
        cell_capacity = dict(cell_capacity or {})
        vacancy_index = {vid: i for i, vid in enumerate(vacancy_capacity)}
        registrant_index = {rid: i for i, rid in enumerate(registrant_capacity)}
        cell_index = {cid: i for i, cid in enumerate(cell_capacity)}

        pair_vacancy: list[int] = []
        pair_registrant: list[int] = []
        pair_score: list[float] = []
        pair_position: dict[tuple[str, str], int] = {}
        for position, (vacancy_id, registrant_id, score) in enumerate(pairs):
            if vacancy_id not in vacancy_index:
                raise ValueError(
                    f"pair {position} names vacancy '{vacancy_id}', "
                    "which is not a key of vacancy_capacity"
                )
            if registrant_id not in registrant_index:
                raise ValueError(
                    f"pair {position} names registrant '{registrant_id}', "
                    "which is not a key of registrant_capacity"
                )
            pair_vacancy.append(vacancy_index[vacancy_id])
            pair_registrant.append(registrant_index[registrant_id])
            pair_score.append(float(score))
            pair_position.setdefault((vacancy_id, registrant_id), position)

        rows: list[int] = []
        columns: list[int] = []
        for key, cell_ids in (pair_cells or {}).items():
            if key not in pair_position:
                raise ValueError(
                    f"pair_cells names pair {key}, which is not among the pairs"
                )
            for cell_id in cell_ids:
                if cell_id not in cell_index:
                    raise ValueError(
                        f"pair_cells puts pair {key} in cell '{cell_id}', "
                        "which is not a key of cell_capacity"
                    )
                rows.append(pair_position[key])
                columns.append(cell_index[cell_id])

        num_pairs = len(pair_vacancy)
        membership = scipy.sparse.csr_array(
            (
                np.ones(len(rows)),
                (np.asarray(rows, dtype=np.int64), np.asarray(columns, dtype=np.int64)),
            ),
            shape=(num_pairs, len(cell_index)),
        )
        membership.sum_duplicates()
        membership.data[:] = 1.0

        return cls(
            pair_vacancy=np.asarray(pair_vacancy, dtype=np.int32),
            pair_registrant=np.asarray(pair_registrant, dtype=np.int32),
            pair_score=np.asarray(pair_score, dtype=np.float64),
            vacancy_capacity=np.asarray(
                list(vacancy_capacity.values()), dtype=np.int32
            ),
            registrant_capacity=np.asarray(
                list(registrant_capacity.values()), dtype=np.int32
            ),
            cell_capacity=np.asarray(list(cell_capacity.values()), dtype=np.int32),
            pair_cells=membership,
            vacancy_ids=tuple(vacancy_index),
            registrant_ids=tuple(registrant_index),
            cell_ids=tuple(cell_index),
        )


class SolveStatus(enum.Enum):
    """How much a solver proved about the shortlist it returned."""

    OPTIMAL = "optimal"
    """The objective equals the bound within the solver's tolerance."""

    FEASIBLE = "feasible"
    """The shortlist respects every cap, and ``bound`` certifies the gap."""


@dataclass(frozen=True, eq=False)
class ShortlistSolution:
    """Chosen pairs of a :class:`ShortlistProblem` with their certificate.

    Attributes
    ----------
    selected : ndarray of bool, shape (E,)
        True for each chosen pair.
    objective : float
        Total score of the chosen pairs, summed from ``pair_score``.
    bound : float
        Proven upper bound on the optimum (a dual bound), never below
        ``objective``.
    gap : float
        Relative optimality gap, ``(bound - objective) / max(bound, 1e-9)``.
    status : SolveStatus
        Whether the solver proved optimality or only a gap.
    method : str
        Name of the algorithm, for example ``"exact-highs-mip"``.
    wall_seconds : float
        Wall-clock time of the solve, model building included.
    cell_use : ndarray of int64, shape (G,)
        Number of chosen pairs inside each quota cell.
    cell_shadow_price : ndarray of float64, shape (G,), or None
        Dual value of each cell's row in the linear relaxation: one more unit
        of the cell's capacity raises the LP optimum by at most this much.
        None when the method computes no duals.
    lp_objective : float or None
        Optimum of the linear relaxation when the method solved it.
    solver_status : str
        The status as the underlying solver reported it, for logs.
    """

    selected: NDArray[np.bool_]
    objective: float
    bound: float
    gap: float
    status: SolveStatus
    method: str
    wall_seconds: float
    cell_use: NDArray[np.int64]
    cell_shadow_price: NDArray[np.float64] | None
    lp_objective: float | None = None
    solver_status: str = ""

    @property
    def num_selected(self) -> int:
        """Number of chosen pairs."""
        return int(np.count_nonzero(self.selected))
