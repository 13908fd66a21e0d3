"""Tests of splitting a shortlist problem into independent parts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse

from matching.checks import find_violations
from matching.problem import ShortlistProblem
from matching.solvers import decompose, solve_shortlists
from matching.solvers.decompose import solve_by_parts, split_problem
from matching.solvers.exact import solve_exact
from matching.solvers.relaxed import solve_relaxed
from tests.solvers.strategies import random_problem


def _union(problems: list[ShortlistProblem]) -> ShortlistProblem:
    """Join problems that share no row into one, block by block."""
    vacancy_offset = registrant_offset = 0
    pair_vacancy, pair_registrant = [], []
    for problem in problems:
        pair_vacancy.append(problem.pair_vacancy + vacancy_offset)
        pair_registrant.append(problem.pair_registrant + registrant_offset)
        vacancy_offset += problem.num_vacancies
        registrant_offset += problem.num_registrants
    return ShortlistProblem(
        pair_vacancy=np.concatenate(pair_vacancy).astype(np.int32),
        pair_registrant=np.concatenate(pair_registrant).astype(np.int32),
        pair_score=np.concatenate([problem.pair_score for problem in problems]),
        vacancy_capacity=np.concatenate(
            [problem.vacancy_capacity for problem in problems]
        ),
        registrant_capacity=np.concatenate(
            [problem.registrant_capacity for problem in problems]
        ),
        cell_capacity=np.concatenate([problem.cell_capacity for problem in problems]),
        pair_cells=scipy.sparse.csr_array(
            scipy.sparse.block_diag([problem.pair_cells for problem in problems])
        ),
        vacancy_ids=tuple(
            f"b{block}:{name}"
            for block, problem in enumerate(problems)
            for name in problem.vacancy_ids
        ),
        registrant_ids=tuple(
            f"b{block}:{name}"
            for block, problem in enumerate(problems)
            for name in problem.registrant_ids
        ),
        cell_ids=tuple(
            f"b{block}:{name}"
            for block, problem in enumerate(problems)
            for name in problem.cell_ids
        ),
    )


def _blocks(seed: int) -> list[ShortlistProblem]:
    return [
        random_problem(
            seed + block,
            num_registrants=300 + 100 * block,
            num_vacancies=30 + 5 * block,
            candidates_per_vacancy=25,
            num_destinations=1,
        )
        for block in range(3)
    ]


def test_split_problem_recovers_each_block() -> None:
    blocks = _blocks(5)
    whole = _union(blocks)

    parts = split_problem(whole)

    assert len(parts) == 3
    covered = np.concatenate([part.pairs for part in parts])
    assert np.array_equal(np.sort(covered), np.arange(whole.num_pairs))
    # Largest first; each part is one block with its rows renumbered.
    sizes = [part.problem.num_pairs for part in parts]
    assert sizes == sorted((block.num_pairs for block in blocks), reverse=True)
    for part in parts:
        original = whole.pair_score[part.pairs]
        assert np.array_equal(part.problem.pair_score, original)
        assert np.array_equal(
            part.problem.vacancy_capacity, whole.vacancy_capacity[part.vacancies]
        )
        assert [whole.cell_ids[cell] for cell in part.cells] == list(
            part.problem.cell_ids
        )
        membership = whole.pair_cells[part.pairs][:, part.cells]
        assert (membership != part.problem.pair_cells).nnz == 0


def test_shared_cell_joins_parts() -> None:
    # Two vacancies with disjoint candidates, tied by one cell they both fill.
    problem = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V2", "R2", 0.8)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1, "R2": 1},
        cell_capacity={"C": 1},
        pair_cells={("V1", "R1"): ["C"], ("V2", "R2"): ["C"]},
    )
    unlinked = ShortlistProblem.from_pairs(
        [("V1", "R1", 0.9), ("V2", "R2", 0.8)],
        vacancy_capacity={"V1": 1, "V2": 1},
        registrant_capacity={"R1": 1, "R2": 1},
    )

    assert len(split_problem(problem)) == 1
    assert len(split_problem(unlinked)) == 2


@pytest.mark.parametrize("method", ["exact", "relaxed"])
def test_parts_match_whole_solve(method: str) -> None:
    whole = _union(_blocks(11))
    solve = solve_exact if method == "exact" else solve_relaxed

    by_parts = solve_by_parts(
        whole,
        lambda part, seconds: solve(part, time_limit_seconds=seconds),
        time_limit_seconds=60.0,
        min_pairs=0,
    )
    alone = solve(whole, time_limit_seconds=60.0)

    assert by_parts is not None
    assert "3 independent parts" in by_parts.solver_status
    assert find_violations(whole, by_parts.selected) == []
    assert by_parts.objective == pytest.approx(alone.objective, rel=1e-9)
    assert by_parts.bound >= by_parts.objective
    assert by_parts.bound == pytest.approx(alone.bound, rel=1e-6)
    if method == "relaxed":
        assert by_parts.cell_shadow_price is not None
        assert alone.cell_shadow_price is not None
        assert by_parts.lp_objective == pytest.approx(alone.lp_objective, rel=1e-9)


def test_connected_problem_is_solved_whole() -> None:
    problem = random_problem(
        3, num_registrants=200, num_vacancies=20, candidates_per_vacancy=20
    )
    assert len(split_problem(problem)) == 1

    result = solve_by_parts(
        problem,
        lambda part, seconds: solve_exact(part, time_limit_seconds=seconds),
        time_limit_seconds=10.0,
        min_pairs=0,
    )

    assert result is None


def test_dispatch_split_keeps_optimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = _union(_blocks(23))
    monkeypatch.setattr(decompose, "MIN_PAIRS_TO_SPLIT", 0)

    split = solve_shortlists(whole, method="exact", split=True)
    unsplit = solve_shortlists(whole, method="exact", split=False)

    assert "independent parts" in split.solver_status
    assert "independent parts" not in unsplit.solver_status
    assert split.objective == pytest.approx(unsplit.objective, rel=1e-9)
    assert split.status == unsplit.status
    assert not math.isinf(split.bound)
