"""Linear relaxation of the shortlist problem by column generation (pricing).

Most pairs never enter an optimal shortlist: a vacancy with 6 places ranks
200 candidates. The relaxation therefore starts from each vacancy's best
pairs and prices the rest from the dual values. With duals ``u`` (vacancy
rows), ``y`` (registrant rows) and ``z`` (cell rows), all >= 0, the reduced
cost of pair e is

    rc[e] = score[e] - u[v(e)] - y[w(e)] - sum of z[g] over the cells g of e.

Each round adds, per vacancy, the few pairs of largest positive reduced cost
and solves the LP again from its last basis, until no pair outside the LP has
a positive reduced cost. For any
duals >= 0 and any feasible selection x,

    score . x  <=  D + sum_e rc[e] x[e]  <=  D + sum_e max(rc[e], 0),

where ``D`` is the sum of capacity times dual over all rows. The right-hand
side is the dual bound reported here. It is valid after every round and
equals the LP optimum once pricing finds no more columns. The first
inequality also drives reduced-cost fixing in the exact solver.

On a random 200,000-pair round (20,000 registrants, 1,000 vacancies, 190
quota cells, 2 shared CPU cores) HiGHS 1.16 solved the LP over all pairs in
10.5 s, while pricing reached the same optimum in 0.3 s with about 8,500
pairs in the LP.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.exceptions import SolverFailedError
from matching.problem import ShortlistProblem
from matching.solvers._highs import HighsShortlistModel, row_upper_bounds
from matching.solvers.flow import lagrangian_bound
from matching.solvers._common import sum_scores
from matching.solvers.greedy import choosable_pairs, drop_over_capacity, fill_greedily

logger = logging.getLogger(__name__)

# The first LP contains each vacancy's best pairs, this many per shortlist
# place, and each pricing round adds at most as many per vacancy. On two
# random 1M-pair rounds (190 nested cells, and 10 more cells cutting across
# them) 1 per place priced to the LP optimum in 2.3 s and 3.7 s, 1.5 per place
# in 2.2 s and 5.8 s, and 3 per place in 3.5 s and 13 s, on 2 CPU cores
# shared with other jobs.
INITIAL_PAIRS_PER_PLACE = 1.0
ENTERING_PAIRS_PER_PLACE = 1.0
ENTERING_PAIRS_PER_VACANCY = 16

# The Lagrangian flow's selection is repaired into an incumbent only once
# its bound is within this share of the restricted LP's objective. On slack
# 100k-registrant parts the incumbent ended pricing only from there on.
INCUMBENT_GAP = 0.01

# When fewer pairs than this share of the LP's columns enter, the next solve
# continues from the last basis with primal simplex. A larger batch is solved
# again by dual simplex. That was faster when a third of the columns entered
# a 200k-column LP (2.2 s against 6.0 s, 2 cores shared).
WARM_START_SHARE = 0.05

# A pair may enter the LP when its reduced cost exceeds this. A pair that
# enters on rounding noise costs one column, never a wrong bound.
PRICING_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LpRelaxation:
    """Result of the priced linear relaxation over all pairs."""

    column_value: NDArray[np.float64]  # (E,) LP point, 0 for pairs left out of the LP
    row_dual: (
        NDArray[np.float64] | None
    )  # (M + N + G,) duals >= 0; None if no LP solved
    reduced_cost: NDArray[np.float64]  # (E,), -inf for pairs no selection may hold
    bound: float  # dual bound on the integer optimum, math.inf if no LP solved
    # The smaller of ``bound`` and the Lagrangian bound of the same round's
    # cell duals (see matching.solvers.flow.lagrangian_bound). The reduced
    # costs above belong to ``bound``, not to it.
    tight_bound: float
    # Best feasible selection found on the way (the Lagrangian flow's
    # selection cut back to the cell caps and refilled), None if none.
    incumbent: NDArray[np.bool_] | None
    incumbent_objective: float
    objective: float  # LP objective of column_value
    converged: bool  # pricing found no more columns, so bound is the LP optimum
    within_gap: bool  # pricing stopped because objective and bound met relative_gap
    status_name: str
    num_columns: int  # pairs in the final LP
    rounds: int  # LP solves


def _best_pairs_per_vacancy(
    problem: ShortlistProblem,
    pairs: NDArray[np.int64],
    value: NDArray[np.float64],
    per_place: float,
    at_least: int = 0,
) -> NDArray[np.int64]:
    """Pick each vacancy's ``pairs`` of highest ``value``, ``per_place`` per place.

    Each vacancy gets at least ``at_least`` pairs when it has that many.
    ``value`` has one entry per pair in ``pairs``; ties go to the lower pair
    index. The result is sorted by pair index.
    """
    vacancy = problem.pair_vacancy[pairs]
    order = np.lexsort((pairs, -value, vacancy))
    sorted_vacancy = vacancy[order]
    rank = np.arange(order.shape[0]) - np.searchsorted(sorted_vacancy, sorted_vacancy)
    quota = np.maximum(
        np.ceil(per_place * problem.vacancy_capacity[sorted_vacancy]), at_least
    )
    return np.sort(pairs[order][rank < quota])


def _best_pairs_per_registrant(
    problem: ShortlistProblem, pairs: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Pick each registrant's ``pairs`` of highest score, as many as its capacity."""
    registrant = problem.pair_registrant[pairs]
    order = np.lexsort((pairs, -problem.pair_score[pairs], registrant))
    sorted_registrant = registrant[order]
    rank = np.arange(order.shape[0]) - np.searchsorted(
        sorted_registrant, sorted_registrant
    )
    return np.sort(pairs[order][rank < problem.registrant_capacity[sorted_registrant]])


def price_pairs(
    problem: ShortlistProblem,
    row_dual: NDArray[np.float64],
    choosable: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], float]:
    """Return the reduced cost of every pair and the dual bound of ``row_dual``.

    ``row_dual`` must be >= 0. Pairs outside ``choosable`` get reduced cost
    -inf, since a capacity of 0 keeps them out of every selection.
    """
    num_vacancies = problem.num_vacancies
    num_registrants = problem.num_registrants
    vacancy_dual = row_dual[:num_vacancies]
    registrant_dual = row_dual[num_vacancies : num_vacancies + num_registrants]
    cell_dual = row_dual[num_vacancies + num_registrants :]

    reduced_cost = problem.pair_score - vacancy_dual[problem.pair_vacancy]
    reduced_cost -= registrant_dual[problem.pair_registrant]
    if problem.num_cells:
        reduced_cost -= problem.pair_cells @ cell_dual
    reduced_cost[~choosable] = -math.inf

    dual_objective = math.fsum((row_upper_bounds(problem) * row_dual).tolist())
    positive_part = math.fsum(np.maximum(reduced_cost[choosable], 0.0).tolist())
    return reduced_cost, dual_objective + positive_part


def complete_zero_capacity_duals(
    problem: ShortlistProblem,
    row_dual: NDArray[np.float64],
    choosable: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Give rows of capacity 0 the dual values that price their pairs out.

    The LP leaves out pairs that a capacity of 0 excludes, so HiGHS reports
    no useful dual for such a row. A pair excluded by exactly one such row
    would be worth its reduced cost if that row got one unit of capacity, so
    the row's dual becomes the largest such reduced cost (at least 0). That
    is the shadow price of the row, and it keeps the duals feasible for
    every problem that raises one zero capacity. The bound is unchanged,
    because these rows enter it multiplied by capacity 0.
    """
    capacity = row_upper_bounds(problem)
    completed = np.where(capacity == 0, 0.0, row_dual)
    excluded = np.flatnonzero(~choosable)
    if excluded.shape[0] == 0:
        return completed

    num_vacancies = problem.num_vacancies
    num_registrants = problem.num_registrants
    vacancy_row = problem.pair_vacancy[excluded].astype(np.int64)
    registrant_row = num_vacancies + problem.pair_registrant[excluded].astype(np.int64)
    cells = problem.pair_cells[excluded]
    cell_row = num_vacancies + num_registrants + cells.indices.astype(np.int64)
    entry_pair = np.repeat(np.arange(excluded.shape[0]), np.diff(cells.indptr))

    reduced_cost = (
        problem.pair_score[excluded]
        - completed[vacancy_row]
        - completed[registrant_row]
    )
    np.subtract.at(reduced_cost, entry_pair, completed[cell_row])

    # Each excluded pair has at least one zero-capacity row; keep those with one.
    rows = np.concatenate([vacancy_row, registrant_row, cell_row])
    owners = np.concatenate(
        [np.arange(excluded.shape[0]), np.arange(excluded.shape[0]), entry_pair]
    )
    is_zero = capacity[rows] == 0
    zero_count = np.bincount(owners[is_zero], minlength=excluded.shape[0])
    single = is_zero & (zero_count[owners] == 1)
    np.maximum.at(
        completed, rows[single], np.maximum(reduced_cost[owners[single]], 0.0)
    )
    return completed


def solve_lp_relaxation(
    problem: ShortlistProblem,
    *,
    deadline: float,
    num_threads: int,
    random_seed: int,
    initial_pairs_per_place: float = INITIAL_PAIRS_PER_PLACE,
    relative_gap: float = 0.0,
) -> LpRelaxation:
    """Solve the linear relaxation by pricing pairs into a restricted LP.

    ``deadline`` is a :func:`time.perf_counter` reading. When it passes, the
    last optimal restricted LP and its dual bound are returned with
    ``converged`` False. If not even the first LP finished, the bound is
    infinite and ``row_dual`` is None. Pricing also stops, with
    ``within_gap`` True, once the restricted LP's objective or the
    incumbent's is within ``relative_gap`` of that round's bound.
    """
    num_pairs = problem.num_pairs
    choosable = choosable_pairs(problem)
    empty = LpRelaxation(
        column_value=np.zeros(num_pairs),
        row_dual=None,
        reduced_cost=np.where(choosable, math.inf, -math.inf),
        bound=math.inf,
        tight_bound=math.inf,
        incumbent=None,
        incumbent_objective=-math.inf,
        objective=0.0,
        converged=False,
        within_gap=False,
        status_name="not solved",
        num_columns=0,
        rounds=0,
    )
    if not choosable.any():
        no_dual = np.zeros(
            problem.num_vacancies + problem.num_registrants + problem.num_cells
        )
        return LpRelaxation(
            column_value=np.zeros(num_pairs),
            row_dual=complete_zero_capacity_duals(problem, no_dual, choosable),
            reduced_cost=np.full(num_pairs, -math.inf),
            bound=0.0,
            tight_bound=0.0,
            incumbent=None,
            incumbent_objective=-math.inf,
            objective=0.0,
            converged=True,
            within_gap=True,
            status_name="no pair has capacity left",
            num_columns=0,
            rounds=0,
        )

    candidates = np.flatnonzero(choosable)
    # Each vacancy's best pairs alone leave a market where places nearly match
    # registrant capacity short of columns: most registrants then wait for
    # pricing rounds to offer them anything. Their own best pairs go in too.
    initial = np.union1d(
        _best_pairs_per_vacancy(
            problem,
            candidates,
            problem.pair_score[candidates],
            initial_pairs_per_place,
        ),
        _best_pairs_per_registrant(problem, candidates),
    )
    model = HighsShortlistModel(
        problem,
        initial,
        integral=False,
        num_threads=num_threads,
        random_seed=random_seed,
    )
    latest = empty
    incumbent: NDArray[np.bool_] | None = None
    incumbent_objective = -math.inf
    in_model = np.zeros(num_pairs, dtype=np.bool_)
    in_model[initial] = True

    # Each round: solve the restricted LP, price every pair with its duals,
    # keep the round as `latest`, then add the pairs with positive reduced cost.
    rounds = 0
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        try:
            outcome = model.solve(time_limit_seconds=remaining)
        except SolverFailedError:
            break
        rounds += 1
        if not outcome.optimal or outcome.row_dual is None:
            break

        row_dual = np.maximum(outcome.row_dual, 0.0)
        reduced_cost, bound = price_pairs(problem, row_dual, choosable)
        # With a gap to reach, the Lagrangian bound of this round's cell duals
        # often certifies it rounds before pricing converges, and its flow,
        # cut back to the cell caps, is a feasible selection to measure.
        tight_bound = bound
        if relative_gap > 0 and bound - outcome.objective > relative_gap * bound:
            lagrangian, flow_selection = lagrangian_bound(
                problem, row_dual[problem.num_vacancies + problem.num_registrants :]
            )
            tight_bound = min(bound, lagrangian)
            # Repairing the flow's selection costs about as much as the flow.
            # It can only end pricing once the bound is near the LP value.
            if tight_bound - outcome.objective <= INCUMBENT_GAP * tight_bound:
                drop_over_capacity(problem, flow_selection)
                flow_selection = fill_greedily(problem, flow_selection)
                flow_objective = sum_scores(problem, flow_selection)
                if flow_objective > incumbent_objective:
                    incumbent, incumbent_objective = flow_selection, flow_objective
        column_value = np.zeros(num_pairs)
        column_value[model.pairs] = np.clip(outcome.column_value, 0.0, 1.0)
        priced_out = np.flatnonzero(~in_model & (reduced_cost > PRICING_TOLERANCE))
        # Partial pricing: each vacancy admits only its best few pairs per
        # round, because early duals are small and would let nearly every
        # pair in at once.
        entering = _best_pairs_per_vacancy(
            problem,
            priced_out,
            reduced_cost[priced_out],
            ENTERING_PAIRS_PER_PLACE,
            ENTERING_PAIRS_PER_VACANCY,
        )
        latest = LpRelaxation(
            column_value=column_value,
            row_dual=complete_zero_capacity_duals(problem, row_dual, choosable),
            reduced_cost=reduced_cost,
            bound=bound,
            tight_bound=tight_bound,
            incumbent=incumbent,
            incumbent_objective=incumbent_objective,
            objective=outcome.objective,
            converged=priced_out.shape[0] == 0,
            within_gap=tight_bound - max(outcome.objective, incumbent_objective)
            <= relative_gap * max(tight_bound, 1e-9),
            status_name=outcome.status_name,
            num_columns=int(model.pairs.shape[0]),
            rounds=rounds,
        )
        logger.debug(
            "pricing round %d: %d columns, LP %.6f, bound %.6f (Lagrangian %.6f), "
            "%d priced out, %d entering",
            rounds,
            model.pairs.shape[0],
            outcome.objective,
            bound,
            tight_bound,
            priced_out.shape[0],
            entering.shape[0],
        )
        if latest.converged or latest.within_gap:
            break
        model.add_pairs(
            entering,
            warm=entering.shape[0] <= WARM_START_SHARE * model.pairs.shape[0],
        )
        in_model[entering] = True

    return latest
