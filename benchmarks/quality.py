"""Shortlist quality on planted markets: our scorer against three baselines.

A record-level market from :func:`matching.synth.generate_market` plants each
registrant's true occupation, so every (registrant, vacancy) pair has a graded
relevance: 2 for the vacancy's own ESCO occupation, 1 for the same ISCO-08
minor group, 0 otherwise. The round runs through the whole engine, with
normalisation of noisy skills and titles, the real MiniLM model and the
eligibility rules. Five shortlists are built for the same vacancies:

- ``ours + exact``: the engine's score, solved exactly (the product);
- ``ours + greedy``: the same scores, shortlisted greedily;
- ``embedding only``: the cosine of the pooled profile and vacancy vectors;
- ``keyword overlap``: rapidfuzz ``token_set_ratio`` between the registrant's
  skill texts and titles and the vacancy's title and essential skill labels;
- ``relevance as score``: the planted relevance itself, halved into [0, 1].
  It is a reference, not an upper bound. Under binding quota cells the solve
  maximises the total score, so it may spend a cell on a fourth relevant
  candidate of one vacancy while another vacancy's shortlist stays empty.
  The many ties of this score leave that choice arbitrary. The row shows how
  much of nDCG@3 there depends on the solve rather than on the ranking.

Every baseline uses the same eligible registrants, the same top-K cut per
vacancy (by its own score), the same capacities and quota cells, and the
exact solver, so only the score differs. Each shortlist is ranked by the
score that built it, and its first three candidates give precision@3 (share
of relevance >= 1, and of relevance 2) and nDCG@3 with gain ``2**rel - 1``.
The ideal ranking for nDCG takes the three most relevant eligible
registrants of the vacancy, whether or not capacities would let them in.
Vacancies with no relevant eligible registrant are left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from matching.eligibility import evaluate_eligibility
from matching.problem import ShortlistSolution
from matching.rounds import (
    CandidatePairs,
    MatchingEngine,
    RoundConfig,
    RoundResult,
    build_problem,
)
from matching.scoring import ALL_COMPONENTS, ScoreWeights
from matching.solvers import solve_exact, solve_greedy
from matching.synth import MarketSpec, SyntheticMarket, generate_market

# Candidates per vacancy for every scorer, as RoundConfig's default.
CANDIDATES_PER_VACANCY = 100
TOP = 3


@dataclass(frozen=True)
class ScorerQuality:
    """Ranking quality of one scorer's shortlists."""

    name: str
    ndcg: float
    precision: float  # share of the top 3 with relevance >= 1
    precision_exact: float  # share of the top 3 with the vacancy's own occupation
    objective: float
    vacancies: int


def run_quality(
    engine: MatchingEngine,
    *,
    registrants: int,
    vacancies: int,
    seed: int,
    quota_tightness: float = MarketSpec().quota_tightness,
    weights: ScoreWeights | None = None,
) -> tuple[list[ScorerQuality], dict[str, float]]:
    """Build a planted market, run the round, and score five shortlists.

    Returns the quality per scorer and the timings of the steps.
    """
    timings: dict[str, float] = {}
    started = time.perf_counter()
    market = generate_market(
        engine.builder.taxonomy,
        MarketSpec(
            registrants=registrants,
            vacancies=vacancies,
            seed=seed,
            quota_tightness=quota_tightness,
        ),
    )
    timings["generate_seconds"] = time.perf_counter() - started
    config = RoundConfig(
        method="exact",
        candidates_per_vacancy=CANDIDATES_PER_VACANCY,
        weights=weights or ScoreWeights(),
    )
    started = time.perf_counter()
    result = engine.run_round(
        market.registrants, market.vacancies, market.agreements, config=config
    )
    timings["round_seconds"] = time.perf_counter() - started
    timings.update(result.timings)

    started = time.perf_counter()
    eligible = [
        np.flatnonzero(
            evaluate_eligibility(result.features, profile, result.agreements).eligible
        )
        for profile in result.profiles
    ]
    relevance = _relevance_lists(market, result, eligible, engine)
    ideal = [_ideal_dcg(values) for values in relevance]
    greedy = solve_greedy(result.problem)
    qualities = [
        _quality(
            "ours + exact", result, result.pairs, result.solution, relevance, ideal
        ),
        _quality("ours + greedy", result, result.pairs, greedy, relevance, ideal),
    ]
    for name, scorer in (
        ("embedding only", _embedding_scores),
        ("keyword overlap", _keyword_scorer(market, result, engine)),
        ("relevance as score", _relevance_scorer(relevance)),
    ):
        pairs = _baseline_pairs(result, eligible, scorer)
        problem = build_problem(
            result.features, result.profiles, result.agreements, pairs, config
        )
        solution = solve_exact(problem, time_limit_seconds=config.time_limit_seconds)
        qualities.append(_quality(name, result, pairs, solution, relevance, ideal))
    timings["evaluate_seconds"] = time.perf_counter() - started
    return qualities, timings


def _relevance_lists(
    market: SyntheticMarket,
    result: RoundResult,
    eligible: list[NDArray[np.int64]],
    engine: MatchingEngine,
) -> list[dict[int, int]]:
    """Per vacancy, relevance of each eligible registrant row."""
    taxonomy = engine.builder.taxonomy
    keys = result.features.keys
    lists = []
    for profile, rows in zip(result.profiles, eligible, strict=True):
        lists.append(
            {
                int(row): market.relevance(keys[row], profile.id, taxonomy)
                for row in rows.tolist()
            }
        )
    return lists


def _ideal_dcg(relevance: dict[int, int]) -> float:
    best = sorted(relevance.values(), reverse=True)[:TOP]
    return _dcg(best)


def _dcg(values: Sequence[int]) -> float:
    return float(
        sum(
            (2**value - 1) / math.log2(position + 2)
            for position, value in enumerate(values)
        )
    )


def _quality(
    name: str,
    result: RoundResult,
    pairs: CandidatePairs,
    solution: ShortlistSolution,
    relevance: list[dict[int, int]],
    ideal: list[float],
) -> ScorerQuality:
    """Score one scorer's shortlists: nDCG@3 and precision@3 over the vacancies."""
    ndcg: list[float] = []
    precision: list[float] = []
    exact: list[float] = []
    selected = np.asarray(solution.selected)
    for index in range(len(result.profiles)):
        if ideal[index] <= 0:
            continue
        chosen = np.flatnonzero(selected & (pairs.vacancy == index))
        order = np.lexsort((pairs.registrant[chosen], -pairs.score[chosen]))
        top = pairs.registrant[chosen[order]][:TOP].tolist()
        values = [relevance[index].get(int(row), 0) for row in top]
        ndcg.append(_dcg(values) / ideal[index])
        precision.append(sum(value >= 1 for value in values) / TOP)
        exact.append(sum(value == 2 for value in values) / TOP)
    return ScorerQuality(
        name=name,
        ndcg=float(np.mean(ndcg)) if ndcg else float("nan"),
        precision=float(np.mean(precision)) if precision else float("nan"),
        precision_exact=float(np.mean(exact)) if exact else float("nan"),
        objective=float(solution.objective),
        vacancies=len(ndcg),
    )


Scorer = Callable[[RoundResult, int, NDArray[np.int64]], NDArray[np.float64]]


def _embedding_scores(
    result: RoundResult, index: int, rows: NDArray[np.int64]
) -> NDArray[np.float64]:
    vector = result.profiles[index].vector
    cosine = (result.features.vectors[rows] @ vector).astype(np.float64)
    return np.clip(cosine, 0.0, 1.0)


def _relevance_scorer(relevance: list[dict[int, int]]) -> Scorer:
    """Return the planted relevance of each row over 2, as a reference scorer."""

    def score(
        result: RoundResult, index: int, rows: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        del result
        values = [relevance[index].get(row, 0) for row in rows.tolist()]
        return np.array(values, dtype=np.float64) / 2.0

    return score


def _keyword_scorer(
    market: SyntheticMarket, result: RoundResult, engine: MatchingEngine
) -> Scorer:
    """Return token_set_ratio between registrant texts and vacancy texts, in [0, 1].

    A registrant's text is its skills as written (a skill given as an ESCO
    URI becomes its preferred label, since a URI is not text) and its
    occupation titles (the ISCO group title for a claim given only by code).
    """
    taxonomy = engine.builder.taxonomy
    texts = []
    for registrant in market.registrants:
        words = [
            taxonomy.skills[skill].preferred_label
            if skill in taxonomy.skills
            else skill
            for skill in registrant.skills
        ]
        for claim in registrant.occupations:
            if claim.title:
                words.append(claim.title)
            elif claim.isco_code:
                words.append(taxonomy.isco_groups.get(claim.isco_code, ""))
        texts.append(" ".join(words))
    vacancy_texts = [
        " ".join([profile.vacancy.title or "", *profile.essential_skill_labels])
        for profile in result.profiles
    ]

    def score(
        result: RoundResult, index: int, rows: NDArray[np.int64]
    ) -> NDArray[np.float64]:
        if rows.size == 0:
            return np.zeros(0)
        matrix = process.cdist(
            [vacancy_texts[index]],
            [texts[row] for row in rows.tolist()],
            scorer=fuzz.token_set_ratio,
            workers=2,
        )
        return np.asarray(matrix[0], dtype=np.float64) / 100.0

    return score


def _baseline_pairs(
    result: RoundResult, eligible: list[NDArray[np.int64]], scorer: Scorer
) -> CandidatePairs:
    """Candidate pairs scored by a baseline: its top K eligible rows per vacancy."""
    vacancy_parts = []
    registrant_parts = []
    score_parts = []
    cell_rows: list[int] = []
    cell_columns: list[int] = []
    offset = 0
    for index, rows in enumerate(eligible):
        scores = scorer(result, index, rows)
        order = np.lexsort((rows, -scores))[:CANDIDATES_PER_VACANCY]
        kept = np.sort(order)
        vacancy_parts.append(np.full(kept.size, index, dtype=np.int32))
        registrant_parts.append(rows[kept].astype(np.int32))
        score_parts.append(scores[kept])
        eligibility = evaluate_eligibility(
            result.features, result.profiles[index], result.agreements
        )
        for position, row in enumerate(rows[kept].tolist()):
            terms = eligibility.corridors[str(result.features.origin[row])]
            for column in terms.cell_columns:
                cell_rows.append(offset + position)
                cell_columns.append(column)
        offset += kept.size
    cells = sp.csr_array(
        (np.ones(len(cell_rows), dtype=np.int8), (cell_rows, cell_columns)),
        shape=(offset, len(result.agreements.cells)),
    )
    return CandidatePairs(
        vacancy=np.concatenate(vacancy_parts),
        registrant=np.concatenate(registrant_parts),
        score=np.concatenate(score_parts),
        components={name: np.full(offset, np.nan) for name in ALL_COMPONENTS},
        recognition=np.full(offset, -1, dtype=np.int8),
        language_margin=[{} for _ in range(offset)],
        cells=cells,
    )


def quality_table(qualities: list[ScorerQuality], reference: str) -> list[list[str]]:
    """Rows for the quality table, each scorer's nDCG@3 against ``reference``."""
    base = next(item.ndcg for item in qualities if item.name == reference)
    rows = []
    for item in qualities:
        lift = (item.ndcg / base - 1.0) * 100 if base else float("nan")
        rows.append(
            [
                item.name,
                f"{item.ndcg:.3f}",
                f"{lift:+.1f}%",
                f"{item.precision:.3f}",
                f"{item.precision_exact:.3f}",
                str(item.vacancies),
            ]
        )
    return rows


def default_cache_dir() -> Path:
    """Label-vector cache shared by benchmark runs."""
    return Path.home() / ".cache" / "labourmatch"
