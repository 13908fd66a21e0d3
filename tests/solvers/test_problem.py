"""Tests of ShortlistProblem validation and its builder."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import scipy.sparse

from matching.problem import ShortlistProblem
from matching.solvers import find_binding_reasons, solve_exact, solve_relaxed


def _arrays() -> dict[str, Any]:
    return {
        "pair_vacancy": np.array([0, 0, 1], dtype=np.int32),
        "pair_registrant": np.array([0, 1, 0], dtype=np.int32),
        "pair_score": np.array([0.9, 0.5, 0.7]),
        "vacancy_capacity": np.array([2, 1], dtype=np.int32),
        "registrant_capacity": np.array([1, 1], dtype=np.int32),
        "cell_capacity": np.array([1], dtype=np.int32),
        "pair_cells": scipy.sparse.csr_array(np.array([[1.0], [0.0], [1.0]])),
        "vacancy_ids": ("V1", "V2"),
        "registrant_ids": ("R1", "R2"),
        "cell_ids": ("corridor",),
    }


def test_problem_valid_arrays() -> None:
    problem = ShortlistProblem(**_arrays())
    assert problem.num_pairs == 3
    assert problem.num_vacancies == 2
    assert problem.num_registrants == 2
    assert problem.num_cells == 1


def test_problem_arrays_read_only() -> None:
    problem = ShortlistProblem(**_arrays())
    with pytest.raises(ValueError, match="read-only"):
        problem.pair_score[0] = 0.1


@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    [
        (
            "pair_vacancy",
            np.array([0, 0, 2], dtype=np.int32),
            ValueError,
            r"pair_vacancy\[2\] is 2",
        ),
        (
            "pair_registrant",
            np.array([0, -1, 0], dtype=np.int32),
            ValueError,
            r"pair_registrant\[1\]",
        ),
        ("pair_vacancy", np.array([0, 0, 1], dtype=np.int64), TypeError, "int32"),
        (
            "pair_score",
            np.array([0.9, 1.5, 0.7]),
            ValueError,
            r"pair_score\[1\] is 1.5",
        ),
        ("pair_score", np.array([0.9, np.nan, 0.7]), ValueError, "finite"),
        ("pair_score", np.array([0.9, 0.5]), ValueError, r"must be \(3,\)"),
        (
            "vacancy_capacity",
            np.array([2, -1], dtype=np.int32),
            ValueError,
            r"vacancy_capacity\[1\]",
        ),
        ("registrant_capacity", [1, 1], TypeError, "numpy array"),
        (
            "cell_capacity",
            np.array([1, 1], dtype=np.int32),
            ValueError,
            r"must be \(1,\)",
        ),
        ("vacancy_ids", ("V1", "V1"), ValueError, "repeats"),
        ("cell_ids", ["corridor"], TypeError, "tuple"),
        ("pair_cells", np.array([[1.0], [0.0], [1.0]]), TypeError, "CSR"),
        ("pair_cells", scipy.sparse.csr_array(np.ones((3, 2))), ValueError, "shape"),
        (
            "pair_cells",
            scipy.sparse.csr_array(np.array([[2.0], [0.0], [1.0]])),
            ValueError,
            "must be 1",
        ),
    ],
)
def test_problem_rejects_invalid(
    field: str, value: object, error: type[Exception], message: str
) -> None:
    arrays = _arrays()
    arrays[field] = value
    with pytest.raises(error, match=message):
        ShortlistProblem(**arrays)


def test_problem_rejects_duplicate_pair() -> None:
    arrays = _arrays()
    arrays["pair_registrant"] = np.array([0, 0, 0], dtype=np.int32)
    with pytest.raises(ValueError, match="pairs 0 and 1 both join vacancy 'V1'"):
        ShortlistProblem(**arrays)


def test_problem_rejects_duplicate_cell_entry() -> None:
    arrays = _arrays()
    membership = scipy.sparse.csr_array(
        (np.ones(2), np.array([0, 0], dtype=np.int32), np.array([0, 2, 2, 2])),
        shape=(3, 1),
    )
    arrays["pair_cells"] = membership
    with pytest.raises(ValueError, match="twice"):
        ShortlistProblem(**arrays)


def test_from_pairs_builds_indices() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V2", "R1", 0.5), ("V1", "R2", 0.25)],
        vacancy_capacity={"V1": 1, "V2": 3},
        registrant_capacity={"R1": 1, "R2": 2},
        cell_capacity={"corridor": 4, "sector": 1},
        pair_cells={("V2", "R1"): ["corridor", "sector"]},
    )
    assert problem.pair_vacancy.tolist() == [1, 0]
    assert problem.pair_registrant.tolist() == [0, 1]
    assert problem.vacancy_capacity.tolist() == [1, 3]
    assert problem.pair_cells.toarray().tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert problem.cell_ids == ("corridor", "sector")


@pytest.mark.parametrize(
    ("pairs", "pair_cells", "message"),
    [
        ([("V9", "R1", 0.5)], None, "vacancy 'V9'"),
        ([("V1", "R9", 0.5)], None, "registrant 'R9'"),
        ([("V1", "R1", 0.5)], {("V1", "R1"): ["nowhere"]}, "cell 'nowhere'"),
        ([("V1", "R1", 0.5)], {("V1", "R2"): ["corridor"]}, "not among the pairs"),
    ],
)
def test_from_pairs_rejects_unknown_ids(
    pairs: list[tuple[str, str, float]],
    pair_cells: dict[tuple[str, str], list[str]] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        ShortlistProblem.from_pairs(
            pairs,
            vacancy_capacity={"V1": 1},
            registrant_capacity={"R1": 1, "R2": 1},
            cell_capacity={"corridor": 1},
            pair_cells=pair_cells,
        )


def test_problem_replace_revalidates() -> None:
    problem = ShortlistProblem(**_arrays())
    with pytest.raises(ValueError, match="cell_capacity"):
        dataclasses.replace(problem, cell_capacity=np.array([-1], dtype=np.int32))


def test_problem_accepts_csr_matrix() -> None:
    arrays = _arrays()
    arrays["pair_cells"] = scipy.sparse.csr_matrix(np.array([[1.0], [0.0], [1.0]]))
    problem = ShortlistProblem(**arrays)
    exact = solve_exact(problem)
    relaxed = solve_relaxed(problem)
    assert exact.objective == pytest.approx(1.4)
    assert relaxed.objective == pytest.approx(1.4)
    assert exact.cell_use.tolist() == [1]
    reasons = find_binding_reasons(problem, exact)
    assert reasons[1].codes == ("registrant_caps", "quota_cell:corridor")
