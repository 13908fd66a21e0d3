"""Tests of the solver entry point and the package's exported names."""

from __future__ import annotations

import pytest

import matching.solvers
from matching.problem import ShortlistProblem
from matching.solvers import solve_shortlists


def _problem() -> ShortlistProblem:
    return ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V2", "R1", 0.8), ("V2", "R2", 0.4)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1, "R2": 1},
    )


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("auto", "exact-highs-mip"),
        ("exact", "exact-highs-mip"),
        ("relaxed", "relaxed-lp"),
        ("greedy", "greedy"),
    ],
)
def test_solve_shortlists_method_names(method: str, expected: str) -> None:
    solution = solve_shortlists(_problem(), method=method)
    assert solution.method == expected
    assert solution.objective == pytest.approx(1.3)


def test_solve_shortlists_unknown_method() -> None:
    with pytest.raises(ValueError, match="'auto', 'exact', 'relaxed', 'greedy'"):
        solve_shortlists(_problem(), method="cp-sat")


def test_solve_shortlists_passes_time_limit() -> None:
    with pytest.raises(ValueError, match="time_limit_seconds"):
        solve_shortlists(_problem(), method="exact", time_limit_seconds=0.0)


def test_solvers_all_is_sorted_and_importable() -> None:
    names = matching.solvers.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(matching.solvers, name)
