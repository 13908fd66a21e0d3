"""Candidate generation and shortlist solvers on array-generated markets at scale.

Each size N means N registrants, N/20 vacancies and about 200 quota cells.
Each market shape sets the shortlist slots against registrant capacity:
about 15% in ``slack`` and about 97% in ``contended``. For every size and
shape the benchmark runs separate processes, so that each reports its own
peak memory (``VmHWM``):

1. ``pipeline``: generate the market (:func:`matching.synth.generate_scale_market`),
   find the top-K candidates per vacancy (:func:`matching.retrieval.retrieve_candidates`),
   measure recall against the brute force on a seeded sample of vacancies,
   build the problem, save it, and solve it with ``method="auto"`` as a round
   would. Its candidate generation plus solve time is the figure the targets
   refer to. Generating the market replaces loading stored features and
   is reported apart.
2. One process per solver (``exact``, ``relaxed``, ``greedy``) that loads the
   saved problem and solves it, then counts capacity violations with
   :func:`matching.checks.find_violations`.

Raw figures accumulate in ``benchmarks/results/scale.json`` (one entry per
size, shape and step, replaced when rerun), so a later ``large`` run adds the
million-registrant rows to the smaller ones instead of erasing them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from matching.checks import find_violations
from matching.eligibility import AgreementIndex
from matching.problem import ShortlistProblem
from matching.retrieval import recall_at_k, retrieve_candidates
from matching.rounds import build_problem
from matching.solvers import solve_shortlists
from matching.synth import ScaleSpec, generate_scale_market
from matching.taxonomy import load_taxonomy

CANDIDATES_PER_VACANCY = 200
SHAPES = ("slack", "contended")
METHODS = ("exact", "relaxed", "greedy")
# Time limit of the pipeline's auto solve and of each solver process. A run
# that reaches it reports status "feasible" with its proven bound and gap.
PIPELINE_TIME_LIMIT_SECONDS = 300.0
# At a million registrants retrieval takes a few minutes of the 10 allowed.
PIPELINE_TIME_LIMIT_BY_SIZE = {1_000_000: 400.0}
TIME_LIMIT_SECONDS = 600.0
# Relative gap at which the solvers may stop, per size: half the targets'
# 0.1% up to 100,000 registrants and half of 0.5% at a million.
RELATIVE_GAP = {1_000_000: 0.0025}
DEFAULT_RELATIVE_GAP = 0.0005
# The exact MIP is not run at a million registrants (10M pairs): the LP it
# starts from is what the relaxed solver computes, and the MIP would only
# repeat it under a longer limit.
METHODS_BY_SIZE = {1_000_000: ("relaxed", "greedy")}
# Vacancies whose top-K is recomputed by brute force for the recall figure.
RECALL_SAMPLE = 50
RECALL_SAMPLE_LARGE = 20


def peak_memory_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    Read from ``VmHWM`` in ``/proc/self/status``, which starts afresh when
    the process executes Python. ``ru_maxrss`` would not do: Linux carries it
    over from the parent across ``fork`` and ``exec``.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_pipeline(size: int, shape: str, seed: int, work_dir: Path) -> dict[str, Any]:
    """Generate, retrieve, save the problem and solve it with ``auto``; return figures."""
    record: dict[str, Any] = {"size": size, "shape": shape, "seed": seed}
    taxonomy = load_taxonomy()
    spec = getattr(ScaleSpec, shape)(size, seed=seed)
    started = time.perf_counter()
    market = generate_scale_market(taxonomy, spec)
    record["generate_seconds"] = time.perf_counter() - started
    record["generate_peak_mib"] = peak_memory_mib()

    index = AgreementIndex(market.agreements)
    config = market.round_config(
        candidates_per_vacancy=CANDIDATES_PER_VACANCY,
        time_limit_seconds=PIPELINE_TIME_LIMIT_BY_SIZE.get(
            size, PIPELINE_TIME_LIMIT_SECONDS
        ),
    )
    started = time.perf_counter()
    search = retrieve_candidates(market.features, market.profiles, index, config)
    problem = build_problem(
        market.features, market.profiles, index, search.pairs, config
    )
    record["retrieve_seconds"] = time.perf_counter() - started
    record["search_seconds"] = search.timings["search"]
    record["rules_seconds"] = search.timings["rules"]
    record["build_seconds"] = (
        record["retrieve_seconds"] - search.timings["search"] - search.timings["rules"]
    )
    record["searched_pairs"] = search.searched_pairs
    record["groups"] = {name: list(value) for name, value in search.partitions.items()}

    started = time.perf_counter()
    solution = solve_shortlists(
        problem,
        method="auto",
        time_limit_seconds=config.time_limit_seconds,
        num_threads=config.num_threads,
        relative_gap=relative_gap_for(size),
    )
    record["auto_seconds"] = time.perf_counter() - started
    record["auto_method"] = solution.method
    record["auto_objective"] = solution.objective
    record["auto_bound"] = solution.bound
    record["auto_gap"] = solution.gap
    record["auto_status"] = solution.status.value
    record["auto_violations"] = len(find_violations(problem, solution.selected))
    record["relative_gap"] = relative_gap_for(size)
    record["pipeline_peak_mib"] = peak_memory_mib()

    record.update(
        registrants=market.features.count,
        vacancies=len(market.profiles),
        cells=problem.num_cells,
        pairs=problem.num_pairs,
        slots=market.shortlist_slots,
        registrant_capacity=market.registrant_capacity,
    )
    _save_problem(problem, work_dir / _problem_name(size, shape))

    rng = np.random.default_rng(seed)
    sample_size = RECALL_SAMPLE if size <= 100_000 else RECALL_SAMPLE_LARGE
    sample = np.sort(
        rng.choice(
            len(market.profiles), min(sample_size, len(market.profiles)), replace=False
        )
    )
    recall = recall_at_k(
        market.features, market.profiles, index, config, search.pairs, sample.tolist()
    )
    record.update(
        recall=recall.recall,
        score_recall=recall.score_recall,
        worst_recall=recall.worst_recall,
        recall_vacancies=recall.vacancies,
        brute_force_seconds_per_vacancy=recall.seconds / max(recall.vacancies, 1),
    )
    return record


def relative_gap_for(size: int) -> float:
    """Relative gap the solvers may stop at for a market of ``size`` registrants."""
    return RELATIVE_GAP.get(size, DEFAULT_RELATIVE_GAP)


def run_solver(problem_path: Path, method: str, relative_gap: float) -> dict[str, Any]:
    """Load a saved problem, solve it with one method, and check the result."""
    problem = _load_problem(problem_path)
    loaded_mib = peak_memory_mib()
    started = time.perf_counter()
    solution = solve_shortlists(
        problem,
        method=method,
        time_limit_seconds=TIME_LIMIT_SECONDS,
        relative_gap=relative_gap,
    )
    wall = time.perf_counter() - started
    violations = find_violations(problem, solution.selected)
    record: dict[str, Any] = {
        "method": method,
        "relative_gap": relative_gap,
        "algorithm": solution.method,
        "objective": solution.objective,
        "bound": solution.bound,
        "gap": solution.gap,
        "status": solution.status.value,
        "solver_status": solution.solver_status,
        "seconds": wall,
        "violations": len(violations),
        "selected": solution.num_selected,
        "loaded_peak_mib": loaded_mib,
        "peak_mib": peak_memory_mib(),
        "cells_binding": int((solution.cell_use >= problem.cell_capacity).sum()),
    }
    if solution.cell_shadow_price is not None:
        prices = solution.cell_shadow_price
        order = np.argsort(-prices, kind="stable")[:8]
        record["shadow_prices"] = [
            {
                "cell": problem.cell_ids[int(cell)],
                "cap": int(problem.cell_capacity[int(cell)]),
                "use": int(solution.cell_use[int(cell)]),
                "price": float(prices[int(cell)]),
            }
            for cell in order.tolist()
        ]
        record["priced_cells"] = int((prices > 1e-9).sum())
    return record


def _problem_name(size: int, shape: str) -> str:
    return f"problem-{shape}-{size}.npz"


def _save_problem(problem: ShortlistProblem, path: Path) -> None:
    cells = problem.pair_cells
    np.savez(
        path,
        pair_vacancy=problem.pair_vacancy,
        pair_registrant=problem.pair_registrant,
        pair_score=problem.pair_score,
        vacancy_capacity=problem.vacancy_capacity,
        registrant_capacity=problem.registrant_capacity,
        cell_capacity=problem.cell_capacity,
        cell_indptr=cells.indptr,
        cell_indices=cells.indices,
        vacancy_ids=np.array(problem.vacancy_ids),
        registrant_ids=np.array(problem.registrant_ids),
        cell_ids=np.array(problem.cell_ids),
    )


def _load_problem(path: Path) -> ShortlistProblem:
    with np.load(path) as data:
        num_pairs = data["pair_vacancy"].size
        cell_ids = tuple(data["cell_ids"].tolist())
        cells = sp.csr_array(
            (
                np.ones(data["cell_indices"].size, dtype=np.int8),
                data["cell_indices"],
                data["cell_indptr"],
            ),
            shape=(num_pairs, len(cell_ids)),
        )
        return ShortlistProblem(
            pair_vacancy=data["pair_vacancy"],
            pair_registrant=data["pair_registrant"],
            pair_score=data["pair_score"],
            vacancy_capacity=data["vacancy_capacity"],
            registrant_capacity=data["registrant_capacity"],
            cell_capacity=data["cell_capacity"],
            pair_cells=cells,
            vacancy_ids=tuple(data["vacancy_ids"].tolist()),
            registrant_ids=tuple(data["registrant_ids"].tolist()),
            cell_ids=cell_ids,
        )


def run_scale(
    sizes: list[int],
    *,
    seed: int,
    work_dir: Path,
    shapes: tuple[str, ...] = SHAPES,
    methods: tuple[str, ...] = METHODS,
    log: Any = print,
) -> list[dict[str, Any]]:
    """Run the pipeline and every solver, each in its own process, per size and shape."""
    work_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for size in sizes:
        for shape in shapes:
            log(f"scale: N={size} {shape}: pipeline")
            pipeline = _run_worker(
                ["pipeline", str(size), shape, str(seed), str(work_dir)]
            )
            pipeline["solvers"] = {}
            for method in methods:
                if method not in METHODS_BY_SIZE.get(size, methods):
                    continue
                log(f"scale: N={size} {shape}: {method}")
                pipeline["solvers"][method] = _run_worker(
                    [
                        "solve",
                        str(work_dir / _problem_name(size, shape)),
                        method,
                        str(relative_gap_for(size)),
                    ]
                )
            (work_dir / _problem_name(size, shape)).unlink(missing_ok=True)
            records.append(pipeline)
    return records


def _run_worker(arguments: list[str]) -> dict[str, Any]:
    """Run ``python -m benchmarks.scale`` with the arguments; return its JSON line."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"benchmark worker {arguments} failed with exit code "
            f"{completed.returncode}:\n{completed.stderr[-4000:]}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    record: dict[str, Any] = json.loads(lines[-1])
    record["process_seconds"] = time.perf_counter() - started
    return record


def growth_exponent(sizes: list[float], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size); NaN with fewer than 2 sizes."""
    points = [
        (math.log(size), math.log(value))
        for size, value in zip(sizes, seconds, strict=True)
        if size > 0 and value > 0
    ]
    if len({x for x, _ in points}) < 2:
        return float("nan")
    x = np.array([point[0] for point in points])
    y = np.array([point[1] for point in points])
    slope, _ = np.polyfit(x, y, 1)
    return float(slope)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Worker processes of the scale benchmark; run python -m benchmarks."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pipeline = commands.add_parser("pipeline", help="generate, retrieve and solve")
    pipeline.add_argument("size", type=int)
    pipeline.add_argument("shape", choices=SHAPES)
    pipeline.add_argument("seed", type=int)
    pipeline.add_argument("work_dir", type=Path)
    solve = commands.add_parser("solve", help="solve a saved problem with one method")
    solve.add_argument("problem", type=Path)
    solve.add_argument("method", choices=METHODS)
    solve.add_argument("relative_gap", type=float)
    args = parser.parse_args(argv)
    if args.command == "pipeline":
        record = run_pipeline(args.size, args.shape, args.seed, args.work_dir)
    else:
        record = run_solver(args.problem, args.method, args.relative_gap)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
