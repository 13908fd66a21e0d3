"""Tests of the capacity checks on selections."""

from __future__ import annotations

import numpy as np
import pytest

from matching.checks import find_violations
from matching.problem import ShortlistProblem


def _problem() -> ShortlistProblem:
    return ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8), ("V2", "R1", 0.7), ("V2", "R3", 0.6)],
        vacancy_capacity={"V1": 1, "V2": 2},
        registrant_capacity={"R1": 1, "R2": 1, "R3": 1},
        cell_capacity={"corridor": 3, "sector": 1},
        pair_cells={
            ("V1", "R1"): ["corridor"],
            ("V1", "R2"): ["corridor"],
            ("V2", "R1"): ["corridor", "sector"],
            ("V2", "R3"): ["corridor", "sector"],
        },
    )


def test_violations_none_when_feasible() -> None:
    selected = np.array([True, False, False, True])
    assert find_violations(_problem(), selected) == []


def test_violations_vacancy_over_capacity() -> None:
    selected = np.array([True, True, False, False])
    assert find_violations(_problem(), selected) == [
        "vacancy 'V1' has 2 candidates selected, above its capacity of 1"
    ]


def test_violations_registrant_over_capacity() -> None:
    selected = np.array([True, False, True, False])
    assert find_violations(_problem(), selected) == [
        "registrant 'R1' is on 2 shortlists, above its capacity of 1"
    ]


def test_violations_cell_over_capacity() -> None:
    selected = np.array([False, True, False, False]) | np.array(
        [False, False, True, True]
    )
    assert find_violations(_problem(), selected) == [
        "quota cell 'sector' contains 2 selected pairs, above its capacity of 1"
    ]


def test_violations_lists_every_kind() -> None:
    selected = np.ones(4, dtype=np.bool_)
    violations = find_violations(_problem(), selected)
    assert violations == [
        "vacancy 'V1' has 2 candidates selected, above its capacity of 1",
        "registrant 'R1' is on 2 shortlists, above its capacity of 1",
        "quota cell 'corridor' contains 4 selected pairs, above its capacity of 3",
        "quota cell 'sector' contains 2 selected pairs, above its capacity of 1",
    ]


def test_violations_reject_wrong_dtype() -> None:
    with pytest.raises(TypeError, match="dtype"):
        find_violations(_problem(), np.array([1, 0, 0, 0]))


def test_violations_reject_wrong_shape() -> None:
    with pytest.raises(ValueError, match=r"\(4,\)"):
        find_violations(_problem(), np.array([True, False]))


def test_violations_reject_list() -> None:
    with pytest.raises(TypeError, match="numpy array"):
        find_violations(_problem(), [True, False, False, False])  # type: ignore[arg-type]
