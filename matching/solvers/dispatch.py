"""One entry point that picks a shortlist solver by name or by problem size."""

from __future__ import annotations

import logging
import time

from matching.problem import ShortlistProblem, ShortlistSolution
from matching.solvers._common import (
    check_relative_gap,
    check_seed,
    check_threads,
    check_time_limit,
)
from matching.solvers.decompose import solve_by_parts
from matching.solvers.exact import solve_exact
from matching.solvers.flow import solve_flow_if_cells_hold
from matching.solvers.greedy import solve_greedy
from matching.solvers.relaxed import solve_relaxed

logger = logging.getLogger(__name__)

__all__ = ["AUTO_EXACT_MAX_PAIRS", "SOLVER_METHODS", "solve_shortlists"]

SOLVER_METHODS = ("auto", "exact", "relaxed", "greedy")

# "auto" runs the exact solver up to this many pairs and the relaxed one above.
# On random 1M-pair rounds with about 200 quota cells both solvers took 2 to
# 8 s. The exact solver starts from the same priced LP, and its MIP step runs
# only over the pairs that survive reduced-cost fixing (11k of 200k pairs,
# 3 s, in the hardest case measured). Larger rounds were not measured, so
# they go to the relaxed solver, whose cost does not grow with the
# integrality gap. Measured with tests/solvers/strategies.random_problem on
# 2 CPU cores shared with other jobs.
AUTO_EXACT_MAX_PAIRS = 1_000_000

# From this many pairs, exact and relaxed first solve the problem without its
# quota cells by min-cost flow. When no cell cap is exceeded that flow is
# optimal with the cells too. On the 100k-registrant contended benchmark
# market no cell bound and the flow proved optimality in 5.6 s against 10 s
# for the priced LP. Where cells bind it costs about a third of the LP's time.
FLOW_FIRST_MIN_PAIRS = 100_000

# Time limits when the caller gives none, in seconds.
EXACT_TIME_LIMIT_SECONDS = 60.0
RELAXED_TIME_LIMIT_SECONDS = 600.0


def solve_shortlists(
    problem: ShortlistProblem,
    *,
    method: str = "auto",
    time_limit_seconds: float | None = None,
    num_threads: int = 1,
    random_seed: int = 0,
    relative_gap: float = 0.0,
    split: bool = True,
    flow_first: bool = True,
) -> ShortlistSolution:
    """Solve a shortlist problem with the named method, or pick one by size.

    Parameters
    ----------
    problem : ShortlistProblem
        Pairs, scores and capacities.
    method : {"auto", "exact", "relaxed", "greedy"}
        ``"auto"`` uses ``"exact"`` up to ``AUTO_EXACT_MAX_PAIRS`` pairs and
        ``"relaxed"`` above.
    time_limit_seconds : float, optional
        Wall-clock budget in seconds; None keeps the default of the chosen
        solver. The greedy method takes no limit and ignores it.
    num_threads : int
        Threads HiGHS may use (exact and relaxed).
    random_seed : int
        HiGHS random seed (exact and relaxed).
    relative_gap : float
        Relative gap at which the exact solver's MIP and the relaxed
        solver's pricing stop; the greedy method ignores it.
    split : bool
        Solve the independent parts of the problem one by one (see
        :mod:`matching.solvers.decompose`); exact and relaxed only. The
        result is the same either way, up to ties between equal scores.
    flow_first : bool
        For exact and relaxed on parts of ``FLOW_FIRST_MIN_PAIRS`` pairs or
        more, try min-cost flow without the quota cells first and keep its
        answer when every cell cap holds (``method`` is then ``"flow"``).

    Returns
    -------
    ShortlistSolution
        The chosen solver's solution; ``method`` on it names the algorithm.

    Raises
    ------
    ValueError
        If ``method`` is not one of ``SOLVER_METHODS``, or an option is invalid.
    SolverError
        As raised by the chosen solver.
    """
    if method not in SOLVER_METHODS:
        raise ValueError(
            f"method is {method!r}, but it must be one of "
            + ", ".join(repr(name) for name in SOLVER_METHODS)
        )
    if method == "auto":
        method = "exact" if problem.num_pairs <= AUTO_EXACT_MAX_PAIRS else "relaxed"
    logger.debug(
        "solving %d pairs, %d vacancies, %d registrants, %d cells with method %s",
        problem.num_pairs,
        problem.num_vacancies,
        problem.num_registrants,
        problem.num_cells,
        method,
    )

    if method == "greedy":
        return solve_greedy(problem)
    if method == "exact":

        def solve_lp_based(
            part: ShortlistProblem, seconds: float
        ) -> ShortlistSolution:
            return solve_exact(
                part,
                time_limit_seconds=seconds,
                num_threads=num_threads,
                random_seed=random_seed,
                relative_gap=relative_gap,
            )

        default_limit = EXACT_TIME_LIMIT_SECONDS
    else:

        def solve_lp_based(
            part: ShortlistProblem, seconds: float
        ) -> ShortlistSolution:
            return solve_relaxed(
                part,
                time_limit_seconds=seconds,
                num_threads=num_threads,
                random_seed=random_seed,
                relative_gap=relative_gap,
            )

        default_limit = RELAXED_TIME_LIMIT_SECONDS
    def solve_part(part: ShortlistProblem, seconds: float) -> ShortlistSolution:
        if flow_first and part.num_pairs >= FLOW_FIRST_MIN_PAIRS:
            started = time.perf_counter()
            solution = solve_flow_if_cells_hold(part)
            if solution is not None:
                return solution
            seconds = max(seconds - (time.perf_counter() - started), 1e-3)
        return solve_lp_based(part, seconds)

    limit = default_limit if time_limit_seconds is None else time_limit_seconds
    check_time_limit(limit)
    check_threads(num_threads)
    check_seed(random_seed)
    check_relative_gap(relative_gap)
    if split:
        solution = solve_by_parts(problem, solve_part, time_limit_seconds=limit)
        if solution is not None:
            return solution
    return solve_part(problem, limit)
