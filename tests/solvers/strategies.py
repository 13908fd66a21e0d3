"""Builders of valid shortlist problems, by Hypothesis and by seeded random draws.

Both builders give quota cells the nested shape that bilateral agreements use:
a corridor cell per (origin, destination), sector cells inside a corridor and
occupation cells inside a sector. A pair counts against every cell that
contains its registrant's origin and its vacancy's destination, sector and
occupation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from matching.problem import ShortlistProblem

# Scores drawn from a short list produce ties, which the tie-breaking rules
# of the solvers must handle deterministically.
TIED_SCORES = (0.0, 0.25, 0.5, 0.5, 0.75, 1.0)

# Settings for solver properties: few examples keep the solver tests under a
# minute on 2 cores, and derandomize fixes the examples run to run.
SOLVER_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)

# Capacities favour small positive values: a cap of 0 removes pairs, and caps
# of 1 or 2 make constraints cross and bind.
CAPACITIES = st.sampled_from((0, 1, 1, 2, 2, 3))


@dataclass(frozen=True)
class _Labels:
    origin: NDArray[np.int64]  # (N,) origin of each registrant
    destination: NDArray[np.int64]  # (M,) destination of each vacancy
    sector: NDArray[np.int64]  # (M,) sector of each vacancy
    occupation: NDArray[np.int64]  # (M,) occupation of each vacancy, within its sector


def _nested_cells(
    labels: _Labels,
    pair_vacancy: NDArray[np.int32],
    pair_registrant: NDArray[np.int32],
    *,
    levels: tuple[bool, bool, bool],
) -> tuple[scipy.sparse.csr_array, tuple[str, ...]]:
    """Build corridor, sector and occupation cells over the pairs that exist.

    ``levels`` switches each of the three cell levels on or off. Only cells
    with at least one member pair are kept.
    """
    origin = labels.origin[pair_registrant]
    destination = labels.destination[pair_vacancy]
    sector = labels.sector[pair_vacancy]
    occupation = labels.occupation[pair_vacancy]
    keys_per_level = (
        np.stack([origin, destination], axis=1),
        np.stack([origin, destination, sector], axis=1),
        np.stack([origin, destination, sector, occupation], axis=1),
    )
    names = ("corridor", "sector", "occupation")

    rows: list[NDArray[np.int64]] = []
    columns: list[NDArray[np.int64]] = []
    cell_ids: list[str] = []
    for enabled, keys, name in zip(levels, keys_per_level, names, strict=True):
        if not enabled or keys.shape[0] == 0:
            continue
        unique_keys, inverse = np.unique(keys, axis=0, return_inverse=True)
        rows.append(np.arange(keys.shape[0], dtype=np.int64))
        columns.append(inverse.reshape(-1).astype(np.int64) + len(cell_ids))
        cell_ids.extend(
            f"{name}:" + "-".join(str(int(part)) for part in key) for key in unique_keys
        )

    num_pairs = pair_vacancy.shape[0]
    if rows:
        row_array = np.concatenate(rows)
        column_array = np.concatenate(columns)
    else:
        row_array = np.zeros(0, dtype=np.int64)
        column_array = np.zeros(0, dtype=np.int64)
    membership = scipy.sparse.csr_array(
        (np.ones(row_array.shape[0]), (row_array, column_array)),
        shape=(num_pairs, len(cell_ids)),
    )
    return membership, tuple(cell_ids)


def _add_rectangle_cells(
    draw: st.DrawFn,
    membership: scipy.sparse.csr_array,
    cell_ids: tuple[str, ...],
    pair_vacancy: NDArray[np.int32],
    pair_registrant: NDArray[np.int32],
) -> tuple[scipy.sparse.csr_array, tuple[str, ...]]:
    """Append up to two cells, each a random vacancy group times a registrant group.

    These cells cut across the nested ones, as a cell on registrants' sex or
    age band would, and make fractional LP vertices likely.
    """
    num_vacancies = int(pair_vacancy.max()) + 1
    num_registrants = int(pair_registrant.max()) + 1
    columns = [membership]
    new_ids = list(cell_ids)
    for number in range(draw(st.integers(0, 2))):
        vacancy_group = np.asarray(
            draw(
                st.lists(st.booleans(), min_size=num_vacancies, max_size=num_vacancies)
            )
        )
        registrant_group = np.asarray(
            draw(
                st.lists(
                    st.booleans(), min_size=num_registrants, max_size=num_registrants
                )
            )
        )
        member = vacancy_group[pair_vacancy] & registrant_group[pair_registrant]
        columns.append(scipy.sparse.csr_array(member.astype(np.float64)[:, None]))
        new_ids.append(f"group:{number}")
    stacked = scipy.sparse.hstack(columns, format="csr")
    stacked.eliminate_zeros()
    return scipy.sparse.csr_array(stacked), tuple(new_ids)


@st.composite
def shortlist_problems(
    draw: st.DrawFn,
    *,
    max_vacancies: int = 5,
    max_registrants: int = 6,
    max_pairs: int | None = None,
    with_cells: bool | None = None,
) -> ShortlistProblem:
    """Draw a small valid problem with random pairs, ties, caps and nested cells.

    ``max_pairs`` keeps the pair count small enough for brute force;
    ``with_cells`` forces quota cells on or off, and None lets Hypothesis
    choose.
    """
    num_vacancies = draw(st.integers(1, max_vacancies))
    num_registrants = draw(st.integers(1, max_registrants))
    all_pairs = [(v, w) for v in range(num_vacancies) for w in range(num_registrants)]
    limit = len(all_pairs) if max_pairs is None else min(max_pairs, len(all_pairs))
    chosen = draw(
        st.lists(st.sampled_from(all_pairs), unique=True, min_size=1, max_size=limit)
    )
    chosen.sort(key=lambda pair: all_pairs.index(pair))
    scores = draw(
        st.lists(
            st.one_of(st.sampled_from(TIED_SCORES), st.floats(0.0, 1.0)),
            min_size=len(chosen),
            max_size=len(chosen),
        )
    )

    labels = _Labels(
        origin=np.asarray(
            draw(
                st.lists(
                    st.integers(0, 1),
                    min_size=num_registrants,
                    max_size=num_registrants,
                )
            ),
            dtype=np.int64,
        ),
        destination=np.zeros(num_vacancies, dtype=np.int64),
        sector=np.asarray(
            draw(
                st.lists(
                    st.integers(0, 1), min_size=num_vacancies, max_size=num_vacancies
                )
            ),
            dtype=np.int64,
        ),
        occupation=np.asarray(
            draw(
                st.lists(
                    st.integers(0, 1), min_size=num_vacancies, max_size=num_vacancies
                )
            ),
            dtype=np.int64,
        ),
    )
    pair_vacancy = np.asarray([v for v, _ in chosen], dtype=np.int32)
    pair_registrant = np.asarray([w for _, w in chosen], dtype=np.int32)
    if with_cells is None:
        levels = (draw(st.booleans()), draw(st.booleans()), draw(st.booleans()))
    elif with_cells:
        levels = (True, draw(st.booleans()), True)
    else:
        levels = (False, False, False)
    membership, cell_ids = _nested_cells(
        labels, pair_vacancy, pair_registrant, levels=levels
    )
    if with_cells is not False:
        membership, cell_ids = _add_rectangle_cells(
            draw, membership, cell_ids, pair_vacancy, pair_registrant
        )

    return ShortlistProblem(
        pair_vacancy=pair_vacancy,
        pair_registrant=pair_registrant,
        pair_score=np.asarray(scores, dtype=np.float64),
        vacancy_capacity=np.asarray(
            draw(st.lists(CAPACITIES, min_size=num_vacancies, max_size=num_vacancies)),
            dtype=np.int32,
        ),
        registrant_capacity=np.asarray(
            draw(
                st.lists(CAPACITIES, min_size=num_registrants, max_size=num_registrants)
            ),
            dtype=np.int32,
        ),
        cell_capacity=np.asarray(
            draw(st.lists(CAPACITIES, min_size=len(cell_ids), max_size=len(cell_ids))),
            dtype=np.int32,
        ),
        pair_cells=membership,
        vacancy_ids=tuple(f"V{v}" for v in range(num_vacancies)),
        registrant_ids=tuple(f"R{w}" for w in range(num_registrants)),
        cell_ids=cell_ids,
    )


def random_problem(
    seed: int,
    *,
    num_registrants: int,
    num_vacancies: int,
    candidates_per_vacancy: int,
    num_origins: int = 5,
    num_destinations: int = 2,
    num_sectors: int = 6,
    occupations_per_sector: int = 2,
    with_cells: bool = True,
    cell_tightness: tuple[float, float] = (0.3, 0.9),
    num_cross_cells: int = 0,
) -> ShortlistProblem:
    """Build a seeded random instance shaped like a matching round.

    Every vacancy gets up to ``candidates_per_vacancy`` distinct registrants
    drawn with a skewed popularity, so registrant caps bind for popular
    registrants.
    Scores mix a registrant quality with noise. Vacancies have 1 to 3
    openings and a shortlist ratio of 3; registrants may appear on 1 to 3
    shortlists. A cell's cap is a random fraction, drawn from
    ``cell_tightness``, of the shortlist places its member pairs would
    receive if places were spread evenly over pairs, so that many cells bind.
    ``num_cross_cells`` more cells each cover a random half of the vacancies
    times a random half of the registrants. They cut across the nested cells
    as a cell on registrants' sex or age band would, which makes fractional
    LP vertices likely and so exercises the MIP step of the exact solver.
    """
    rng = np.random.default_rng(seed)
    labels = _Labels(
        origin=rng.integers(0, num_origins, num_registrants),
        destination=rng.integers(0, num_destinations, num_vacancies),
        sector=rng.integers(0, num_sectors, num_vacancies),
        occupation=rng.integers(0, occupations_per_sector, num_vacancies),
    )

    popularity = rng.pareto(1.5, num_registrants) + 1.0
    cumulative = np.cumsum(popularity / popularity.sum())
    pair_vacancy, pair_registrant = _draw_candidates(
        rng, cumulative, num_vacancies, candidates_per_vacancy
    )

    quality = rng.beta(2.0, 2.0, num_registrants)
    noise = rng.beta(2.0, 2.0, pair_vacancy.shape[0])
    pair_score = np.round(0.5 * quality[pair_registrant] + 0.5 * noise, 6)

    openings = rng.integers(1, 4, num_vacancies)
    vacancy_capacity = (3 * openings).astype(np.int32)
    registrant_capacity = rng.integers(1, 4, num_registrants).astype(np.int32)

    levels = (True, True, True) if with_cells else (False, False, False)
    membership, cell_ids = _nested_cells(
        labels, pair_vacancy, pair_registrant, levels=levels
    )
    if num_cross_cells:
        vacancy_half = rng.random((num_cross_cells, num_vacancies)) < 0.5
        registrant_half = rng.random((num_cross_cells, num_registrants)) < 0.5
        cross = vacancy_half[:, pair_vacancy] & registrant_half[:, pair_registrant]
        membership = scipy.sparse.csr_array(
            scipy.sparse.hstack(
                [membership, scipy.sparse.csr_array(cross.T.astype(np.float64))]
            )
        )
        membership.eliminate_zeros()
        cell_ids = cell_ids + tuple(
            f"cross:{number}" for number in range(num_cross_cells)
        )
    pairs_per_cell = np.asarray(membership.sum(axis=0)).reshape(-1)
    places_per_pair = vacancy_capacity.sum() / max(pair_vacancy.shape[0], 1)
    tightness = rng.uniform(*cell_tightness, len(cell_ids))
    cell_capacity = np.floor(tightness * pairs_per_cell * places_per_pair).astype(
        np.int32
    )

    return ShortlistProblem(
        pair_vacancy=pair_vacancy,
        pair_registrant=pair_registrant,
        pair_score=pair_score,
        vacancy_capacity=vacancy_capacity,
        registrant_capacity=registrant_capacity,
        cell_capacity=cell_capacity,
        pair_cells=membership,
        vacancy_ids=tuple(f"V{v}" for v in range(num_vacancies)),
        registrant_ids=tuple(f"R{w}" for w in range(num_registrants)),
        cell_ids=cell_ids,
    )


def _draw_candidates(
    rng: np.random.Generator,
    cumulative: NDArray[np.float64],
    num_vacancies: int,
    per_vacancy: int,
) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Draw distinct candidate registrants for each vacancy, favouring popular ones.

    Three draws per wanted candidate are made with replacement; each
    vacancy keeps its first ``per_vacancy`` distinct registrants, or fewer
    when the draws repeat too often.
    """
    num_registrants = cumulative.shape[0]
    draws_per_vacancy = 3 * per_vacancy
    draws = np.searchsorted(cumulative, rng.random((num_vacancies, draws_per_vacancy)))
    draws = np.minimum(draws, num_registrants - 1)
    keys = (
        np.arange(num_vacancies, dtype=np.int64)[:, None] * num_registrants + draws
    ).reshape(-1)
    unique_keys, first_draw = np.unique(keys, return_index=True)
    distinct = unique_keys[np.argsort(first_draw, kind="stable")]
    vacancy = distinct // num_registrants
    order = np.argsort(vacancy, kind="stable")
    distinct, vacancy = distinct[order], vacancy[order]
    rank = np.arange(distinct.shape[0]) - np.searchsorted(vacancy, vacancy)
    chosen = np.sort(distinct[rank < per_vacancy])
    return (
        (chosen // num_registrants).astype(np.int32),
        (chosen % num_registrants).astype(np.int32),
    )


def constraint_rows(
    problem: ShortlistProblem,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the dense 0/1 constraint matrix and the capacity of each row.

    Rows are the vacancies, then the registrants, then the cells.
    """
    num_pairs = problem.num_pairs
    vacancy_rows = np.zeros((problem.num_vacancies, num_pairs), dtype=np.int64)
    vacancy_rows[problem.pair_vacancy, np.arange(num_pairs)] = 1
    registrant_rows = np.zeros((problem.num_registrants, num_pairs), dtype=np.int64)
    registrant_rows[problem.pair_registrant, np.arange(num_pairs)] = 1
    cell_rows = problem.pair_cells.toarray().T.astype(np.int64)
    matrix = np.vstack([vacancy_rows, registrant_rows, cell_rows])
    capacity = np.concatenate(
        [problem.vacancy_capacity, problem.registrant_capacity, problem.cell_capacity]
    ).astype(np.int64)
    return matrix, capacity


def brute_force_optimum(problem: ShortlistProblem) -> float:
    """Return the best total score over all 2**E selections; for E <= 16."""
    num_pairs = problem.num_pairs
    if num_pairs > 16:
        raise ValueError(f"brute force needs at most 16 pairs, got {num_pairs}")
    matrix, capacity = constraint_rows(problem)
    subsets = (np.arange(2**num_pairs)[:, None] >> np.arange(num_pairs)) & 1
    feasible = ((subsets @ matrix.T) <= capacity).all(axis=1)
    totals = subsets[feasible] @ problem.pair_score
    return float(totals.max())
