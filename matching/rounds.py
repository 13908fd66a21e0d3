"""Run a matching round: rules, scores, candidate pairs, solve, explanations.

A round takes registrants, vacancies and agreements and returns one shortlist
per vacancy. The steps:

1. build registrant and vacancy features (normalise, embed, index);
2. per vacancy, apply the hard rules and score the eligible registrants;
3. keep the top ``candidates_per_vacancy`` pairs by score as candidates;
4. compute each quota cell's cap from the quota mode and each pair's cells;
5. solve the shortlist problem and explain the outcome.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.codes import QUOTA_MODES, QuotaMode
from matching.eligibility import (
    RECOGNITION_NOT_REQUIRED,
    AgreementIndex,
    Eligibility,
    evaluate_eligibility,
)
from matching.embedding import LabelEncoder
from matching.features import (
    RECOGNITION_RANK,
    FeatureBuilder,
    ProgressCallback,
    RegistrantFeatures,
    VacancyProfile,
    _no_progress,
)
from matching.models import BilateralAgreement, Registrant, Vacancy
from matching.normalise import Normaliser
from matching.problem import ShortlistProblem, ShortlistSolution
from matching.scoring import ALL_COMPONENTS, COMPONENTS, ScoreWeights, score_vacancy
from matching.skill_profile import OccupationEvidence
from matching.solvers import find_binding_reasons, solve_shortlists
from matching.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

_RECOGNITION_NAME = {rank: state for state, rank in RECOGNITION_RANK.items()}


@dataclass(frozen=True, kw_only=True)
class RoundConfig:
    """Settings of a matching round.

    Attributes
    ----------
    shortlist_ratio
        Candidates per opening on each shortlist.
    max_shortlists_per_registrant
        Shortlists one registrant may appear on in a round.
    quota_mode
        ``guaranteed``: a cell's shortlist cap is its remaining quota, so no
        set of employer selections can exceed it. ``proportional``: the cap is
        the agreement's shortlist ratio times the remaining quota, and
        selections are checked against the quota when recorded.
    method
        Solver: ``auto``, ``exact``, ``relaxed`` or ``greedy``.
    candidates_per_vacancy
        Eligible registrants kept per vacancy, best scores first; ``None``
        keeps all. The solve is exact over the kept pairs.
    min_score
        Pairs scoring below this are never shortlisted.
    weights
        Score component weights.
    time_limit_seconds
        Wall-clock limit of the solver.
    num_threads
        Solver threads; results repeat for a fixed count.
    """

    shortlist_ratio: int = 3
    max_shortlists_per_registrant: int = 2
    quota_mode: QuotaMode = "guaranteed"
    method: str = "auto"
    candidates_per_vacancy: int | None = 100
    min_score: float = 0.0
    weights: ScoreWeights = field(default_factory=ScoreWeights)
    time_limit_seconds: float = 120.0
    num_threads: int = 1

    def __post_init__(self) -> None:
        if self.shortlist_ratio < 1:
            raise ValueError(
                f"shortlist_ratio is {self.shortlist_ratio}, but it must be >= 1"
            )
        if self.max_shortlists_per_registrant < 1:
            raise ValueError(
                f"max_shortlists_per_registrant is {self.max_shortlists_per_registrant}, "
                "but it must be >= 1"
            )
        if self.quota_mode not in QUOTA_MODES:
            raise ValueError(
                f"quota_mode is '{self.quota_mode}'; allowed: {', '.join(QUOTA_MODES)}"
            )
        if self.candidates_per_vacancy is not None and self.candidates_per_vacancy < 1:
            raise ValueError(
                f"candidates_per_vacancy is {self.candidates_per_vacancy}, "
                "but it must be >= 1 or None"
            )
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score is {self.min_score}, but it must be in [0, 1]")
        if self.time_limit_seconds <= 0:
            raise ValueError(
                f"time_limit_seconds is {self.time_limit_seconds}, but it must be > 0"
            )

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as plain data for reports."""
        return asdict(self)


@dataclass(frozen=True)
class CandidatePairs:
    """Scored candidate pairs of a round, before the solve.

    Attributes
    ----------
    vacancy, registrant
        (E,) int32 indices of each pair.
    score
        (E,) float64 total score.
    components
        Component name to (E,) float64; NaN where a component does not apply.
    recognition
        (E,) int8 recognition rank, -1 when not required.
    language_margin
        Per pair, the CEFR margin per required language.
    cells
        (E, G) CSR 0/1 membership of each pair in each quota cell.
    """

    vacancy: NDArray[np.int32]
    registrant: NDArray[np.int32]
    score: NDArray[np.float64]
    components: dict[str, NDArray[np.float64]]
    recognition: NDArray[np.int8]
    language_margin: Sequence[dict[str, int]]
    cells: sp.csr_array


@dataclass(frozen=True)
class RoundResult:
    """Everything a matching round produced, ready to print or serialise."""

    config: RoundConfig
    features: RegistrantFeatures
    profiles: list[VacancyProfile]
    agreements: AgreementIndex
    pairs: CandidatePairs
    problem: ShortlistProblem
    solution: ShortlistSolution
    exclusions: list[dict[str, int]]
    eligible_counts: list[int]
    timings: dict[str, float]

    def shortlist_rows(self, vacancy_index: int) -> NDArray[np.int64]:
        """Return the pair indices shortlisted for a vacancy, best score first."""
        chosen = np.flatnonzero(
            self.solution.selected & (self.pairs.vacancy == vacancy_index)
        )
        order = np.lexsort((self.pairs.registrant[chosen], -self.pairs.score[chosen]))
        return chosen[order]


class MatchingEngine:
    """Run matching rounds against one taxonomy, normaliser and encoder.

    Parameters
    ----------
    builder
        Feature builder holding the taxonomy, normaliser and label encoder.
    """

    def __init__(self, builder: FeatureBuilder) -> None:
        self.builder = builder

    @classmethod
    def from_fixtures(
        cls, *, cache_dir: Path | None = None, fixtures_dir: Path | None = None
    ) -> MatchingEngine:
        """Load the bundled taxonomy and the offline embedding model.

        Parameters
        ----------
        cache_dir
            Folder of the label-vector cache; no disk cache when omitted.
        fixtures_dir
            Folder holding the ESCO fixtures; the repository's by default.
        """
        taxonomy = load_taxonomy(fixtures_dir)
        encoder = LabelEncoder(cache_dir=cache_dir, taxonomy_version=taxonomy.version)
        normaliser = Normaliser(taxonomy, encoder)
        return cls(FeatureBuilder(taxonomy, normaliser, encoder))

    def run_round(
        self,
        registrants: Sequence[Registrant],
        vacancies: Sequence[Vacancy],
        agreements: Sequence[BilateralAgreement],
        *,
        config: RoundConfig | None = None,
        progress: ProgressCallback = _no_progress,
    ) -> RoundResult:
        """Build shortlists for every vacancy in one batch solve.

        Parameters
        ----------
        registrants, vacancies, agreements
            Validated records of the round.
        config
            Round settings; defaults when omitted.
        progress
            Called as ``progress(stage, done, total)``.

        Returns
        -------
        RoundResult

        Raises
        ------
        ValueError
            If agreements conflict (overlapping in one corridor, or a shared
            quota cell declared two ways) or ids repeat.
        SolverError
            If the solver fails.
        """
        settings = config or RoundConfig()
        _check_unique([vacancy.id for vacancy in vacancies], "vacancy id")
        _check_unique(
            [registrant.key for registrant in registrants],
            "registrant agency_id/external_id",
        )
        timings: dict[str, float] = {}

        started = time.perf_counter()
        index = AgreementIndex(agreements)
        features = self.builder.build_registrants(registrants, progress=progress)
        profiles = self.builder.build_vacancies(vacancies)
        evidence = OccupationEvidence.build(
            self.builder.taxonomy, self.builder.vocabulary.index, features
        )
        timings["features_seconds"] = time.perf_counter() - started

        started = time.perf_counter()
        pairs, exclusions, eligible_counts = collect_candidates(
            features, profiles, index, settings, progress=progress, evidence=evidence
        )
        timings["candidates_seconds"] = time.perf_counter() - started

        problem = build_problem(features, profiles, index, pairs, settings)
        started = time.perf_counter()
        solution = solve_shortlists(
            problem,
            method=settings.method,
            time_limit_seconds=settings.time_limit_seconds,
            num_threads=settings.num_threads,
        )
        timings["solve_seconds"] = time.perf_counter() - started
        logger.debug(
            "round solved: %d registrants, %d vacancies, %d pairs, %d cells, method %s, "
            "status %s, %.2f s",
            features.count,
            len(profiles),
            problem.num_pairs,
            problem.num_cells,
            solution.method,
            solution.status.name,
            solution.wall_seconds,
        )
        return RoundResult(
            config=settings,
            features=features,
            profiles=profiles,
            agreements=index,
            pairs=pairs,
            problem=problem,
            solution=solution,
            exclusions=exclusions,
            eligible_counts=eligible_counts,
            timings=timings,
        )


def _check_unique(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} '{value}' appears more than once in the round")
        seen.add(value)


def collect_candidates(
    features: RegistrantFeatures,
    profiles: Sequence[VacancyProfile],
    agreements: AgreementIndex,
    config: RoundConfig,
    *,
    progress: ProgressCallback = _no_progress,
    evidence: OccupationEvidence | None = None,
) -> tuple[CandidatePairs, list[dict[str, int]], list[int]]:
    """Apply the rules, score eligible registrants and keep the best per vacancy.

    ``evidence`` enables the ``skill_profile`` and ``occupation_match`` score
    components (see :func:`~matching.scoring.score_vacancy`).

    Returns
    -------
    pairs
        The candidate pairs of the round.
    exclusions
        Per vacancy, how many registrants each rule excluded.
    eligible_counts
        Per vacancy, how many registrants passed every rule.
    """
    vacancy_parts: list[NDArray[np.int32]] = []
    registrant_parts: list[NDArray[np.int32]] = []
    score_parts: list[NDArray[np.float64]] = []
    component_parts: dict[str, list[NDArray[np.float64]]] = {}
    recognition_parts: list[NDArray[np.int8]] = []
    language_margin: list[dict[str, int]] = []
    cell_rows: list[int] = []
    cell_cols: list[int] = []
    exclusions: list[dict[str, int]] = []
    eligible_counts: list[int] = []
    # Without evidence the profile components never apply, so they get no column.
    component_names = ALL_COMPONENTS if evidence is not None else COMPONENTS
    offset = 0
    total = len(profiles)
    progress("scoring", 0, total)
    for vacancy_index, profile in enumerate(profiles):
        eligibility = evaluate_eligibility(features, profile, agreements)
        exclusions.append(eligibility.reason_counts())
        rows = np.flatnonzero(eligibility.eligible).astype(np.int64)
        eligible_counts.append(int(rows.size))
        scores = score_vacancy(
            features, profile, eligibility, rows, config.weights, evidence=evidence
        )
        keep = _top_rows(scores.total, config)
        kept_rows = rows[keep]
        count = kept_rows.size

        vacancy_parts.append(np.full(count, vacancy_index, dtype=np.int32))
        registrant_parts.append(kept_rows.astype(np.int32))
        score_parts.append(scores.total[keep])
        for name in component_names:
            values = scores.values.get(name)
            column = values[keep] if values is not None else np.full(count, np.nan)
            component_parts.setdefault(name, []).append(column)
        recognition_parts.append(eligibility.recognition[kept_rows])
        language_margin.extend(_margins(eligibility, kept_rows))
        for position, row in enumerate(kept_rows.tolist()):
            terms = eligibility.corridors[str(features.origin[row])]
            for column in terms.cell_columns:
                cell_rows.append(offset + position)
                cell_cols.append(column)
        offset += count
        progress("scoring", vacancy_index + 1, total)

    num_cells = len(agreements.cells)
    cells = sp.csr_array(
        (
            np.ones(len(cell_rows), dtype=np.int8),
            (np.array(cell_rows, np.int64), np.array(cell_cols, np.int64)),
        ),
        shape=(offset, num_cells),
    )
    pairs = CandidatePairs(
        vacancy=_concat(vacancy_parts, np.int32),
        registrant=_concat(registrant_parts, np.int32),
        score=_concat(score_parts, np.float64),
        components={
            name: _concat(parts, np.float64) for name, parts in component_parts.items()
        },
        recognition=_concat(recognition_parts, np.int8),
        language_margin=language_margin,
        cells=cells,
    )
    return pairs, exclusions, eligible_counts


def _top_rows(scores: NDArray[np.float64], config: RoundConfig) -> NDArray[np.int64]:
    """Return positions of the best scores, ties broken by position, above min_score."""
    positions = np.flatnonzero(scores >= config.min_score)
    limit = config.candidates_per_vacancy
    if limit is not None and positions.size > limit:
        order = np.lexsort((positions, -scores[positions]))
        positions = np.sort(positions[order[:limit]])
    return positions


def _margins(eligibility: Eligibility, rows: NDArray[np.int64]) -> list[dict[str, int]]:
    if not eligibility.languages:
        return [{} for _ in range(rows.size)]
    names = [language for language, _ in eligibility.languages]
    values = eligibility.language_margin[rows]
    return [dict(zip(names, row.tolist(), strict=True)) for row in values]


def _concat(parts: list[NDArray[Any]], dtype: type) -> NDArray[Any]:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def cell_capacities(agreements: AgreementIndex, mode: QuotaMode) -> NDArray[np.int32]:
    """Return each quota cell's shortlist cap under a quota mode.

    ``guaranteed`` gives the remaining quota; ``proportional`` gives the
    agreement's shortlist ratio times the remaining quota.
    """
    caps = []
    for cell in agreements.cells:
        remaining = cell.remaining
        if mode == "proportional":
            remaining *= agreements.cell_ratio[cell.id]
        caps.append(remaining)
    return np.array(caps, dtype=np.int32)


def build_problem(
    features: RegistrantFeatures,
    profiles: Sequence[VacancyProfile],
    agreements: AgreementIndex,
    pairs: CandidatePairs,
    config: RoundConfig,
) -> ShortlistProblem:
    """Assemble the solver's problem from candidate pairs and round settings."""
    vacancy_capacity = np.array(
        [config.shortlist_ratio * profile.vacancy.openings for profile in profiles],
        dtype=np.int32,
    )
    registrant_capacity = np.full(
        features.count, config.max_shortlists_per_registrant, dtype=np.int32
    )
    return ShortlistProblem(
        pair_vacancy=pairs.vacancy,
        pair_registrant=pairs.registrant,
        pair_score=pairs.score,
        vacancy_capacity=vacancy_capacity,
        registrant_capacity=registrant_capacity,
        cell_capacity=cell_capacities(agreements, config.quota_mode),
        pair_cells=pairs.cells,
        vacancy_ids=tuple(profile.id for profile in profiles),
        registrant_ids=features.keys,
        cell_ids=tuple(cell.id for cell in agreements.cells),
    )


def explain_candidate(result: RoundResult, pair: int) -> dict[str, Any]:
    """Return the evidence behind one shortlisted pair.

    The explanation holds the score and its components, the essential skills
    matched and missing, the language margin per required language and the
    recognition state.
    """
    pairs = result.pairs
    row = int(pairs.registrant[pair])
    profile = result.profiles[int(pairs.vacancy[pair])]
    features = result.features
    registrant_columns = set(
        features.skills.indices[
            features.skills.indptr[row] : features.skills.indptr[row + 1]
        ].tolist()
    )
    matched = []
    missing = []
    for column, label in zip(
        profile.essential_skill_ids, profile.essential_skill_labels, strict=False
    ):
        (matched if column in registrant_columns else missing).append(label)
    components = {
        name: round(float(values[pair]), 4)
        for name, values in pairs.components.items()
        if not np.isnan(values[pair])
    }
    recognition_rank = int(pairs.recognition[pair])
    recognition = (
        "not_required"
        if recognition_rank == RECOGNITION_NOT_REQUIRED
        else _RECOGNITION_NAME[recognition_rank]
    )
    # CEFR levels above each minimum; 0 means the minimum is met exactly.
    margins = dict(pairs.language_margin[pair])
    return {
        "registrant": features.keys[row],
        "score": round(float(pairs.score[pair]), 4),
        "components": components,
        "matched_essential_skills": matched,
        "missing_essential_skills": missing,
        "language_margin": margins,
        "recognition": recognition,
    }


def summarise_round(
    result: RoundResult, *, round_date: dt.date | None = None
) -> dict[str, Any]:
    """Return the round as plain data: summary, shortlists and quota cells."""
    solution = result.solution
    binding = find_binding_reasons(result.problem, solution)
    shortlists = []
    for index, profile in enumerate(result.profiles):
        chosen = result.shortlist_rows(index)
        capacity = int(result.problem.vacancy_capacity[index])
        entry: dict[str, Any] = {
            "vacancy_id": profile.id,
            "occupation": {
                "isco_code": profile.isco_code,
                "esco_uri": profile.occupation.uri,
                "label": profile.occupation.label,
            },
            "shortlist_size": capacity,
            "eligible_registrants": result.eligible_counts[index],
            "excluded": result.exclusions[index],
            "candidates": [
                {"rank": rank, **explain_candidate(result, int(pair))}
                for rank, pair in enumerate(chosen.tolist(), start=1)
            ],
        }
        if chosen.size < capacity:
            entry["unfilled"] = {
                "missing": capacity - int(chosen.size),
                "reason": _binding_text(binding.get(index)),
            }
        shortlists.append(entry)
    return {
        "round": {
            "date": (round_date or dt.date.today()).isoformat(),
            "registrants": result.features.count,
            "vacancies": len(result.profiles),
            "candidate_pairs": result.problem.num_pairs,
            "quota_cells": result.problem.num_cells,
            "shortlisted": int(solution.selected.sum()),
            "method": solution.method,
            "status": solution.status.name.lower(),
            "objective": round(solution.objective, 6),
            "bound": round(solution.bound, 6),
            "gap": solution.gap,
            "timings_seconds": {
                name: round(value, 3) for name, value in result.timings.items()
            },
            "config": _config_summary(result.config),
        },
        "shortlists": shortlists,
        "quota_cells": quota_cell_report(result),
    }


def _binding_text(reason: Any) -> Any:
    if reason is None:
        return None
    if hasattr(reason, "as_dict"):
        return reason.as_dict()
    return str(reason)


def _config_summary(config: RoundConfig) -> dict[str, Any]:
    summary = config.as_dict()
    summary["weights"] = config.weights.as_dict()
    return summary


def quota_cell_report(result: RoundResult) -> list[dict[str, Any]]:
    """Return use and cap per quota cell, with the shadow price where known."""
    solution = result.solution
    report = []
    for column, cell in enumerate(result.agreements.cells):
        price = None
        if solution.cell_shadow_price is not None:
            price = round(float(solution.cell_shadow_price[column]), 6)
        report.append(
            {
                "id": cell.id,
                "sector": cell.sector,
                "isco_prefix": cell.isco_prefix,
                "quota_cap": cell.cap,
                "quota_used": cell.used,
                "quota_remaining": cell.remaining,
                "shortlist_cap": int(result.problem.cell_capacity[column]),
                "shortlisted": int(solution.cell_use[column]),
                "shadow_price": price,
            }
        )
    return report
