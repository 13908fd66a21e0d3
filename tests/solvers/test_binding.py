"""Tests of the reasons given for shortlists below capacity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from matching.checks import find_violations
from matching.problem import ShortlistProblem, ShortlistSolution, SolveStatus
from matching.solvers import BindingReason, find_binding_reasons, solve_exact

from .strategies import SOLVER_SETTINGS, shortlist_problems


def _solution_of(problem: ShortlistProblem, selected: list[bool]) -> ShortlistSolution:
    """Wrap a hand-picked selection, as a solver that left pairs out would return it."""
    chosen = np.asarray(selected, dtype=np.bool_)
    return ShortlistSolution(
        selected=chosen,
        objective=float(problem.pair_score[chosen].sum()),
        bound=float(problem.pair_score.sum()),
        gap=0.0,
        status=SolveStatus.FEASIBLE,
        method="hand-picked",
        wall_seconds=0.0,
        cell_use=np.asarray(problem.pair_cells.T @ chosen.astype(np.int64)),
        cell_shadow_price=None,
    )


def test_binding_no_eligible_registrant() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9)],
        vacancy_capacity={"V1": 1, "V2": 3},
        registrant_capacity={"R1": 1},
    )
    reasons = find_binding_reasons(problem, solve_exact(problem))
    assert list(reasons) == [1]
    assert reasons[1].codes == ("no_eligible_registrant",)
    assert reasons[1].shortfall == 3
    assert reasons[1].num_pairs == 0


def test_binding_all_candidates_selected() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.4)],
        vacancy_capacity={"V1": 3},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    reasons = find_binding_reasons(problem, solve_exact(problem))
    assert reasons[0].codes == ("all_candidates_selected",)
    assert reasons[0].shortfall == 1


def test_binding_registrant_caps() -> None:
    # R1 is on V1's shortlist and may be on only one, so V2 stays empty.
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V2", "R1", 0.5)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1},
    )
    reasons = find_binding_reasons(problem, solve_exact(problem))
    assert list(reasons) == [1]
    assert reasons[1].codes == ("registrant_caps",)
    assert str(reasons[1]) == "registrant_caps"
    assert reasons[1].num_blocked_by_registrant_caps == 1


def test_binding_quota_cell_blocking_most() -> None:
    # Both cells are full. "sector" blocks two of V2's candidates and
    # "occupation" one, so "sector" is named.
    problem = ShortlistProblem.from_pairs(
        [
            ("V1", "R1", 0.9),
            ("V1", "R4", 0.9),
            ("V2", "R2", 0.5),
            ("V2", "R3", 0.5),
            ("V2", "R5", 0.5),
        ],
        vacancy_capacity={"V1": 2, "V2": 2},
        registrant_capacity={f"R{i}": 1 for i in range(1, 6)},
        cell_capacity={"occupation": 1, "sector": 1},
        pair_cells={
            ("V1", "R1"): ["sector"],
            ("V1", "R4"): ["occupation"],
            ("V2", "R2"): ["sector"],
            ("V2", "R3"): ["sector"],
            ("V2", "R5"): ["occupation"],
        },
    )
    reasons = find_binding_reasons(problem, solve_exact(problem))
    assert list(reasons) == [1]
    assert reasons[1].codes == ("quota_cell:sector",)
    assert reasons[1].blocking_cells == (("sector", 2), ("occupation", 1))
    assert reasons[1].shortfall == 2


def test_binding_registrant_and_cell_combined() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8), ("V2", "R1", 0.5), ("V2", "R3", 0.3)],
        vacancy_capacity={"V1": 2, "V2": 2},
        registrant_capacity={"R1": 1, "R2": 1, "R3": 1},
        cell_capacity={"corridor": 2},
        pair_cells={
            ("V1", "R1"): ["corridor"],
            ("V1", "R2"): ["corridor"],
            ("V2", "R3"): ["corridor"],
        },
    )
    reasons = find_binding_reasons(problem, solve_exact(problem))
    assert list(reasons) == [1]
    assert reasons[1].codes == ("registrant_caps", "quota_cell:corridor")
    assert str(reasons[1]) == "registrant_caps+quota_cell:corridor"
    assert reasons[1].as_dict() == {
        "vacancy_id": "V2",
        "codes": ["registrant_caps", "quota_cell:corridor"],
        "shortfall": 2,
        "num_pairs": 2,
        "num_unselected": 2,
        "num_blocked_by_registrant_caps": 1,
        "blocking_cells": [{"cell_id": "corridor", "num_blocked": 1}],
        "num_unblocked": 0,
    }


def test_binding_solver_left_out() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.0)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    reasons = find_binding_reasons(problem, _solution_of(problem, [True, False]))
    assert reasons[0].codes == ("solver_left_out",)
    assert reasons[0].num_unblocked == 1


def test_binding_full_vacancies_not_listed() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    assert find_binding_reasons(problem, solve_exact(problem)) == {}


def test_binding_rejects_foreign_solution() -> None:
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9)], vacancy_capacity={"V1": 2}, registrant_capacity={"R1": 1}
    )
    other = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V1", "R2", 0.8)],
        vacancy_capacity={"V1": 2},
        registrant_capacity={"R1": 1, "R2": 1},
    )
    with pytest.raises(ValueError, match="2 pairs"):
        find_binding_reasons(other, solve_exact(problem))


@SOLVER_SETTINGS
@given(shortlist_problems(max_vacancies=6, max_registrants=8))
def test_binding_reasons_cover_short_vacancies(problem: ShortlistProblem) -> None:
    solution = solve_exact(problem)
    reasons = find_binding_reasons(problem, solution)
    use = np.bincount(
        problem.pair_vacancy[solution.selected], minlength=problem.num_vacancies
    )
    short = set(np.flatnonzero(use < problem.vacancy_capacity).tolist())
    assert set(reasons) == short

    addable = np.zeros(problem.num_pairs, dtype=np.bool_)
    for pair in np.flatnonzero(~solution.selected).tolist():
        trial = solution.selected.copy()
        trial[pair] = True
        addable[pair] = not find_violations(problem, trial)
    for vacancy, reason in reasons.items():
        assert isinstance(reason, BindingReason)
        assert reason.shortfall == problem.vacancy_capacity[vacancy] - use[vacancy]
        assert reason.codes
        of_vacancy = problem.pair_vacancy == vacancy
        assert reason.num_unblocked == int((addable & of_vacancy).sum())
    # An optimal selection leaves out a pair that fits only when it adds
    # nothing, within HiGHS's absolute gap of 1e-6.
    assert (problem.pair_score[addable] <= 1e-6).all()
