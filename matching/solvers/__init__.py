"""Solvers that turn scored candidate pairs into shortlists.

Each solver takes a :class:`~matching.problem.ShortlistProblem` and returns a
:class:`~matching.problem.ShortlistSolution` with a proven upper bound:

- :func:`solve_exact`: HiGHS MIP after LP reduced-cost fixing, optimal.
- :func:`solve_relaxed`: LP relaxation by column generation, rounded down
  and refilled greedily; for rounds too large for the MIP.
- :func:`solve_flow`: min-cost flow, optimal when no quota cell can bind.
- :func:`solve_greedy`: descending-score baseline for comparisons.
- :func:`solve_shortlists`: picks one of the above by name or size.

:func:`find_binding_reasons` explains shortlists that came out short.
"""

from matching.solvers.binding import BindingReason, find_binding_reasons
from matching.solvers.dispatch import (
    AUTO_EXACT_MAX_PAIRS,
    SOLVER_METHODS,
    solve_shortlists,
)
from matching.solvers.exact import solve_exact
from matching.solvers.flow import cells_can_bind, solve_flow
from matching.solvers.greedy import capacity_bound, fill_greedily, solve_greedy
from matching.solvers.relaxed import round_and_fill, solve_relaxed

__all__ = [
    "AUTO_EXACT_MAX_PAIRS",
    "BindingReason",
    "SOLVER_METHODS",
    "capacity_bound",
    "cells_can_bind",
    "fill_greedily",
    "find_binding_reasons",
    "round_and_fill",
    "solve_exact",
    "solve_flow",
    "solve_greedy",
    "solve_relaxed",
    "solve_shortlists",
]
