"""HiGHS model loading in bulk and status handling, for the exact and relaxed solvers.

The model is passed to HiGHS through highspy in one call, with the constraint
matrix in compressed-column form built by numpy. OR-Tools' ``model_builder``
with the ``"highs"`` backend was tried and rejected. In OR-Tools 9.15 it
reports the incumbent objective as the best bound of a MIP, so no gap can be
certified after a time limit. It also returns row activities where the dual
values of a linear program belong.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import highspy
import numpy as np
from numpy.typing import NDArray

from matching.exceptions import InfeasibleProblemError, SolverError, SolverFailedError
from matching.problem import ShortlistProblem

logger = logging.getLogger(__name__)


def _statuses(*names: str) -> frozenset[highspy.HighsModelStatus]:
    """Collect the named model statuses that this highspy version defines."""
    return frozenset(
        getattr(highspy.HighsModelStatus, name)
        for name in names
        if hasattr(highspy.HighsModelStatus, name)
    )


# HiGHS statuses after which the solver may have a usable point: it stopped on
# a limit, not on a proof or an error.
_LIMIT_STATUSES = _statuses(
    "kTimeLimit",
    "kIterationLimit",
    "kSolutionLimit",
    "kMemoryLimit",
    "kInterrupt",
    "kHighsInterrupt",
    "kObjectiveBound",
    "kObjectiveTarget",
    "kUnknown",
)

# HiGHS statuses that mean the model passed to it is broken. Every variable
# is bounded to [0, 1], so a valid model cannot be unbounded either.
_ERROR_STATUSES = _statuses(
    "kLoadError",
    "kModelError",
    "kPresolveError",
    "kSolveError",
    "kPostsolveError",
    "kModelEmpty",
    "kUnbounded",
    "kUnboundedOrInfeasible",
)

# Value of HighsInfo.primal_solution_status when HiGHS has a feasible point.
_SOLUTION_STATUS_FEASIBLE = 2


@dataclass(frozen=True)
class HighsOutcome:
    """Result of one HiGHS run, after its status was checked."""

    optimal: bool  # HiGHS proved optimality within its tolerances
    status_name: str  # HiGHS model status, for logs and ShortlistSolution
    column_value: NDArray[np.float64]  # primal point, one value per model column
    row_dual: NDArray[np.float64] | None  # (M + N + G,) duals of an optimal LP
    objective: float  # HiGHS objective of the primal point
    dual_bound: float  # bound HiGHS proved on this model, math.inf when none
    solve_seconds: float


def build_constraint_columns(
    problem: ShortlistProblem, pairs: NDArray[np.int64]
) -> tuple[NDArray[np.int32], NDArray[np.int32], NDArray[np.float64]]:
    """Build the constraint matrix columns of the given pairs.

    Rows ``0 .. M-1`` are the vacancies, ``M .. M+N-1`` the registrants and
    ``M+N .. M+N+G-1`` the quota cells. The column of pair ``e`` has a 1 in
    the row of its vacancy, of its registrant and of every cell it belongs
    to. That is the CSR layout of the selected rows of ``pair_cells`` with two
    entries inserted in front of each row. Returns ``(start, index, value)``
    in compressed-column form, ``start`` of length ``len(pairs) + 1``.
    """
    num_columns = pairs.shape[0]
    cells = problem.pair_cells[pairs]
    cells_per_pair = np.diff(cells.indptr)

    start = np.zeros(num_columns + 1, dtype=np.int64)
    np.cumsum(cells_per_pair + 2, out=start[1:])
    if start[-1] > np.iinfo(np.int32).max:
        raise SolverError(
            f"the constraint matrix has {int(start[-1])} nonzeros, more than the "
            "2**31 - 1 that HiGHS can index; solve each destination separately"
        )

    index = np.empty(int(start[-1]), dtype=np.int32)
    index[start[:-1]] = problem.pair_vacancy[pairs]
    index[start[:-1] + 1] = problem.num_vacancies + problem.pair_registrant[pairs]
    # Entry k of the sliced pair_cells, which lies in row e, moves right by the
    # two entries inserted in each of the rows 0..e.
    row_of_entry = np.repeat(np.arange(num_columns, dtype=np.int64), cells_per_pair)
    position = np.arange(cells.indices.shape[0], dtype=np.int64) + 2 * (
        row_of_entry + 1
    )
    index[position] = problem.num_vacancies + problem.num_registrants + cells.indices

    value = np.ones(index.shape[0], dtype=np.float64)
    return start.astype(np.int32), index, value


def row_upper_bounds(problem: ShortlistProblem) -> NDArray[np.float64]:
    """Stack vacancy, registrant and cell capacities in the row order of the matrix."""
    return np.concatenate(
        [problem.vacancy_capacity, problem.registrant_capacity, problem.cell_capacity]
    ).astype(np.float64)


class HighsShortlistModel:
    """The shortlist model over a subset of the pairs, loaded into HiGHS in bulk.

    Columns are the pairs in ``pairs`` order; the rows are every vacancy,
    registrant and quota cell, so a linear relaxation can grow by
    :meth:`add_pairs` and solve again from its last basis.

    Formulation, built in one ``passModel`` call:

    - variables: ``0 <= x[e] <= 1`` for each pair, integer when ``integral``;
    - vacancy rows: the chosen pairs of vacancy v number at most
      ``vacancy_capacity[v]``;
    - registrant rows: the chosen pairs of registrant w number at most
      ``registrant_capacity[w]``;
    - cell rows: the chosen pairs inside quota cell g number at most
      ``cell_capacity[g]``;
    - objective: maximise the total score of the chosen pairs.
    """

    def __init__(
        self,
        problem: ShortlistProblem,
        pairs: NDArray[np.int64],
        *,
        integral: bool,
        num_threads: int,
        random_seed: int,
        relative_gap: float = 0.0,
    ) -> None:
        self._problem = problem
        self._integral = integral
        self.pairs = np.asarray(pairs, dtype=np.int64)
        self._highs = self._make_highs(num_threads, random_seed, relative_gap)

        column_start, row_index, coefficient = build_constraint_columns(
            problem, self.pairs
        )
        num_columns = self.pairs.shape[0]
        num_rows = problem.num_vacancies + problem.num_registrants + problem.num_cells
        variable_type = (
            highspy.HighsVarType.kInteger
            if integral
            else highspy.HighsVarType.kContinuous
        )
        integrality = np.full(num_columns, variable_type.value, dtype=np.int32)
        status = self._highs.passModel(
            num_columns,
            num_rows,
            int(row_index.shape[0]),
            int(highspy.MatrixFormat.kColwise.value),
            int(highspy.ObjSense.kMaximize.value),
            0.0,
            np.ascontiguousarray(problem.pair_score[self.pairs]),
            np.zeros(num_columns),
            np.ones(num_columns),
            np.full(num_rows, -highspy.kHighsInf),
            row_upper_bounds(problem),
            column_start[:-1],
            row_index,
            coefficient,
            integrality,
        )
        if status == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the shortlist model while loading it")

    @staticmethod
    def _make_highs(
        num_threads: int, random_seed: int, relative_gap: float
    ) -> highspy.Highs:
        highs = _new_highs()
        options: dict[str, bool | int | float] = {
            "output_flag": False,
            "log_to_console": False,
            "threads": num_threads,
            "random_seed": random_seed,
            "mip_rel_gap": relative_gap,
        }
        for name, value in options.items():
            if highs.setOptionValue(name, value) != highspy.HighsStatus.kOk:
                raise SolverError(f"HiGHS rejected option {name}={value!r}")
        return highs

    def add_pairs(self, pairs: NDArray[np.int64], *, warm: bool = True) -> None:
        """Append columns for pairs not yet in the model.

        With ``warm`` the next LP solve continues from the last basis by
        primal simplex; without it HiGHS picks its method afresh.
        """
        pairs = np.asarray(pairs, dtype=np.int64)
        column_start, row_index, coefficient = build_constraint_columns(
            self._problem, pairs
        )
        status = self._highs.addCols(
            pairs.shape[0],
            np.ascontiguousarray(self._problem.pair_score[pairs]),
            np.zeros(pairs.shape[0]),
            np.ones(pairs.shape[0]),
            int(row_index.shape[0]),
            column_start[:-1],
            row_index,
            coefficient,
        )
        if status == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the columns added to the shortlist model")
        if self._integral:
            new_columns = np.arange(
                self.pairs.shape[0], self.pairs.shape[0] + pairs.shape[0]
            )
            self._highs.changeColsIntegrality(
                new_columns.shape[0],
                new_columns.astype(np.int32),
                np.full(
                    new_columns.shape[0],
                    highspy.HighsVarType.kInteger.value,
                    dtype=np.int32,
                ),
            )
        else:
            self._choose_simplex(primal=warm)
        self.pairs = np.concatenate([self.pairs, pairs])

    def _choose_simplex(self, *, primal: bool) -> None:
        """Make the next LP solve continue from the last basis by primal simplex.

        New columns leave the last basis primal feasible but dual infeasible.
        HiGHS's default dual simplex then starts again nearly from scratch:
        after adding 20 columns to a solved 100k-pair LP it took about 7,000
        iterations and 0.3 s, where primal simplex took 7 to 11 iterations
        and 0.1 s. Presolve is switched off so that the basis is kept.
        """
        options = (
            (("simplex_strategy", 4), ("presolve", "off"))
            if primal
            else (("simplex_strategy", 1), ("presolve", "choose"))
        )
        for name, value in options:
            if self._highs.setOptionValue(name, value) != highspy.HighsStatus.kOk:
                raise SolverError(f"HiGHS rejected option {name}={value!r}")

    def set_start(self, selected: NDArray[np.bool_]) -> None:
        """Pass a feasible selection over all pairs as the first MIP incumbent."""
        solution = highspy.HighsSolution()
        solution.col_value = selected[self.pairs].astype(np.float64)
        solution.value_valid = True
        if self._highs.setSolution(solution) == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the starting selection")

    def solve(self, *, time_limit_seconds: float) -> HighsOutcome:
        """Run HiGHS and check its status.

        Raises
        ------
        InfeasibleProblemError
            If HiGHS reports the model infeasible.
        SolverError
            If HiGHS rejects the model or an option, or stops on an error.
        SolverFailedError
            If HiGHS stops on a limit without a feasible point.
        """
        time_limit = (
            float(time_limit_seconds) if math.isfinite(time_limit_seconds) else math.inf
        )
        if (
            self._highs.setOptionValue("time_limit", time_limit)
            != highspy.HighsStatus.kOk
        ):
            raise SolverError(f"HiGHS rejected option time_limit={time_limit!r}")

        # HiGHS keeps one task scheduler per calling thread, sized by the first
        # run in that thread. Resetting it lets this run use its own thread count.
        highspy.Highs.resetThreadScheduler(True)
        began = time.perf_counter()
        run_status = self._highs.run()
        solve_seconds = time.perf_counter() - began

        model_status = self._highs.getModelStatus()
        status_name = self._highs.modelStatusToString(model_status)
        logger.debug(
            "HiGHS %s over %d pairs: %.3f s, status %s",
            "MIP" if self._integral else "LP",
            self.pairs.shape[0],
            solve_seconds,
            status_name,
        )
        if run_status == highspy.HighsStatus.kError:
            raise SolverError(
                f"HiGHS failed while solving: model status '{status_name}'"
            )
        return self._read_outcome(model_status, status_name, solve_seconds)

    def _read_outcome(
        self,
        model_status: highspy.HighsModelStatus,
        status_name: str,
        solve_seconds: float,
    ) -> HighsOutcome:
        if model_status == highspy.HighsModelStatus.kInfeasible:
            raise InfeasibleProblemError(
                "HiGHS reports the shortlist constraints infeasible, although choosing "
                "no pair satisfies them; check that every capacity is >= 0"
            )
        if model_status in _ERROR_STATUSES:
            raise SolverError(
                f"HiGHS stopped with model status '{status_name}' on a model whose "
                "variables all lie in [0, 1], so the model passed to it is invalid"
            )

        info = self._highs.getInfo()
        has_point = info.primal_solution_status == _SOLUTION_STATUS_FEASIBLE
        optimal = model_status == highspy.HighsModelStatus.kOptimal
        if not optimal and not (model_status in _LIMIT_STATUSES and has_point):
            raise SolverFailedError(
                f"HiGHS stopped with model status '{status_name}' before finding a "
                "feasible shortlist; raise time_limit_seconds"
            )

        solution = self._highs.getSolution()
        objective = float(info.objective_function_value)
        row_dual = None
        if self._integral:
            dual_bound = float(info.mip_dual_bound)
        else:
            # Only an optimal LP objective bounds the optimum of this model.
            dual_bound = objective if optimal else math.inf
            if optimal and solution.dual_valid:
                row_dual = np.asarray(solution.row_dual, dtype=np.float64)
        return HighsOutcome(
            optimal=optimal,
            status_name=status_name,
            column_value=np.asarray(solution.col_value, dtype=np.float64),
            row_dual=row_dual,
            objective=objective,
            dual_bound=dual_bound if math.isfinite(dual_bound) else math.inf,
            solve_seconds=solve_seconds,
        )


_banner_lock = threading.Lock()
_banner_silenced = False


def _new_highs() -> highspy.Highs:
    """Create a HiGHS instance without its one-time banner on standard output.

    HiGHS 1.16 prints a copyright banner from the constructor of the first
    instance in a process, before any option can turn output off, and that
    line would land in the command line's output. The first construction runs
    with file descriptor 1 pointed at ``os.devnull``; later ones print nothing.
    """
    global _banner_silenced
    with _banner_lock:
        if _banner_silenced:
            return highspy.Highs()  # type: ignore[no-untyped-call]
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as sink:
                os.dup2(sink.fileno(), 1)
                highs = highspy.Highs()  # type: ignore[no-untyped-call]
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _banner_silenced = True
        return highs
