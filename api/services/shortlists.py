"""Build a shortlist for one vacancy now, against current quota use.

A shortlist request runs the same rules, scores and solver as a matching
round, for one vacancy, with the capacity other commitments leave:

- a registrant's shortlist cap is reduced by the open shortlists of other
  vacancies they are on, and a placed registrant has none left;
- a quota cell's cap is its remaining quota (cap minus placements). In the
  guaranteed mode the unselected candidates of other open shortlists in the
  cell are subtracted too. In the proportional mode the remaining quota is
  multiplied by the agreement's shortlist ratio;
- the vacancy gets ``shortlist_ratio`` candidates per opening not yet filled.

The new shortlist supersedes the vacancy's open one. Builds run one at a time
(a process lock, plus a transaction-level advisory lock on PostgreSQL), so two
builds never hand out the same remaining quota.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import ConflictError
from api.schemas import CandidatePublic, ShortlistPublic
from api.security import pseudonym_of
from api.services.audit import canonical_sha256, new_id, record_audit, utc_now
from api.services.market import (
    OpenLoad,
    binding_reason_data,
    load_agreement_index,
    load_open_candidates,
    load_placed,
    load_profiles,
    pair_evidence,
    placements_per_vacancy,
)
from api.services.registry import RegistrySnapshot
from api.tables import CandidateRow, ShortlistRow, VacancyRow
from matching.codes import QuotaMode
from matching.eligibility import AgreementIndex, Eligibility, evaluate_eligibility
from matching.features import VacancyProfile
from matching.models import Vacancy
from matching.problem import ShortlistProblem, ShortlistSolution
from matching.scoring import ScoreWeights, score_vacancy
from matching.solvers import find_binding_reasons, solve_shortlists

logger = logging.getLogger(__name__)

# Key of the PostgreSQL advisory lock that serialises shortlist builds and the
# saving step of rounds across processes ("LMSL" in ASCII).
SHORTLIST_LOCK_KEY = 0x4C4D534C
# Vacancy profiles kept in memory; the cache is emptied when it is full. A
# profile is a few kilobytes (its record, skills and a 384-float vector).
MAX_CACHED_VACANCY_PROFILES = 10_000


@dataclass(frozen=True)
class CandidateDraft:
    """A chosen candidate before it is stored."""

    registrant_id: int
    rank: int
    score: float
    cell_ids: list[str]
    evidence: dict[str, Any]


@dataclass(frozen=True)
class ShortlistDraft:
    """A solved shortlist before it is stored."""

    vacancy_row_id: int
    quota_mode: str
    method: str
    solve_status: str
    objective: float
    bound: float
    unfilled: dict[str, Any] | None
    candidates: list[CandidateDraft]


def lock_shortlists(context: ServiceContext, session: Session) -> None:
    """Take the cross-process shortlist lock on PostgreSQL for this transaction."""
    if context.database.is_postgresql:
        session.execute(select(func.pg_advisory_xact_lock(SHORTLIST_LOCK_KEY)))


def build_shortlist(
    context: ServiceContext,
    *,
    vacancy_row: VacancyRow,
    key_id: str,
    quota_mode: QuotaMode,
) -> str:
    """Solve, store and audit a shortlist for one vacancy; return its id.

    Raises
    ------
    ConflictError
        If every opening of the vacancy is filled.
    SolverError
        If the solver fails.
    """
    settings = context.settings
    vacancy = Vacancy.model_validate_json(vacancy_row.record)
    profile = vacancy_profile(context, vacancy_row, vacancy)

    started = time.perf_counter()
    with context.shortlist_lock, context.database.write_session() as session:
        lock_shortlists(context, session)
        filled = placements_per_vacancy(session, [vacancy_row.id])[vacancy_row.id]
        openings_left = vacancy.openings - filled
        if openings_left <= 0:
            raise ConflictError(
                f"vacancy '{vacancy.id}' has all {vacancy.openings} openings filled; "
                "no shortlist is needed"
            )
        snapshot = context.registry.snapshot(session)
        index = load_agreement_index(session)
        load = load_open_candidates(session, exclude_vacancy_id=vacancy_row.id)
        placed = load_placed(session)
        draft = _solve_one(
            context,
            snapshot=snapshot,
            profile=profile,
            index=index,
            load=load,
            placed=placed,
            vacancy_row_id=vacancy_row.id,
            shortlist_size=settings.shortlist_ratio * openings_left,
            quota_mode=quota_mode,
        )
        stored = load_profiles(
            session, [item.registrant_id for item in draft.candidates]
        )
        for candidate in draft.candidates:
            candidate.evidence.update(stored[candidate.registrant_id])
        shortlist_id = save_shortlists(
            session,
            [draft],
            employer_of={vacancy_row.id: vacancy_row.employer_id},
            secret=context.pseudonym_secret,
            key_id=key_id,
            round_id=None,
        )[0]
        record_audit(
            session,
            key_id=key_id,
            action="shortlist",
            resource=f"shortlist:{shortlist_id}",
            input_sha256=canonical_sha256(
                {
                    "vacancy": vacancy_row.id,
                    "record": vacancy_row.record,
                    "quota_mode": quota_mode,
                    "registry_version": snapshot.version,
                }
            ),
        )
    logger.info(
        "shortlist %s for vacancy %s: %d of %d candidates, %d registrants, method %s, "
        "status %s, %.1f ms",
        shortlist_id,
        vacancy.id,
        len(draft.candidates),
        settings.shortlist_ratio * openings_left,
        snapshot.features.count,
        draft.method,
        draft.solve_status,
        (time.perf_counter() - started) * 1000,
    )
    return shortlist_id


def vacancy_profile(
    context: ServiceContext, vacancy_row: VacancyRow, vacancy: Vacancy
) -> VacancyProfile:
    """Return the vacancy's profile, built once per stored record."""
    key = (vacancy_row.id, vacancy_row.record)
    profile = context.vacancy_profiles.get(key)
    if profile is None:
        with context.builder_lock:
            profile = context.engine.builder.build_vacancy(vacancy)
        if len(context.vacancy_profiles) >= MAX_CACHED_VACANCY_PROFILES:
            context.vacancy_profiles.clear()
        context.vacancy_profiles[key] = profile
    return profile


def _solve_one(
    context: ServiceContext,
    *,
    snapshot: RegistrySnapshot,
    profile: VacancyProfile,
    index: AgreementIndex,
    load: OpenLoad,
    placed: set[int],
    vacancy_row_id: int,
    shortlist_size: int,
    quota_mode: QuotaMode,
) -> ShortlistDraft:
    settings = context.settings
    features = snapshot.features
    eligibility = evaluate_eligibility(features, profile, index)
    capacity = _registrant_capacity(
        snapshot, load, placed, settings.max_shortlists_per_registrant
    )
    rows = np.flatnonzero(eligibility.eligible & (capacity > 0)).astype(np.int64)
    scores = score_vacancy(
        features,
        profile,
        eligibility,
        rows,
        ScoreWeights(),
        evidence=snapshot.evidence,
    )
    keep = _top_positions(scores.total, settings.candidates_per_vacancy)
    kept_rows = rows[keep]

    pair_cells, cell_columns = _pair_cells(features.origin, eligibility, kept_rows)
    cell_ids = tuple(index.cells[column].id for column in cell_columns)
    cell_capacity = _cell_capacity(index, cell_columns, load, quota_mode)
    problem = ShortlistProblem(
        pair_vacancy=np.zeros(kept_rows.size, dtype=np.int32),
        pair_registrant=np.arange(kept_rows.size, dtype=np.int32),
        pair_score=np.clip(scores.total[keep], 0.0, 1.0).astype(np.float64),
        vacancy_capacity=np.array([shortlist_size], dtype=np.int32),
        registrant_capacity=capacity[kept_rows].astype(np.int32),
        cell_capacity=cell_capacity,
        pair_cells=pair_cells,
        vacancy_ids=(str(vacancy_row_id),),
        registrant_ids=tuple(
            str(int(snapshot.registrant_ids[row])) for row in kept_rows
        ),
        cell_ids=cell_ids,
    )
    solution = _solve(context, problem)

    chosen = (
        np.flatnonzero(solution.selected)
        if solution is not None
        else np.zeros(0, np.int64)
    )
    order = chosen[np.lexsort((chosen, -problem.pair_score[chosen]))]
    candidates = []
    for rank, pair in enumerate(order.tolist(), start=1):
        row = int(kept_rows[pair])
        position = int(keep[pair])
        components = {
            name: float(values[position]) for name, values in scores.values.items()
        }
        evidence = pair_evidence(
            features,
            row,
            profile,
            components=components,
            recognition_rank=int(eligibility.recognition[row]),
            language_margin=_margins(eligibility, row),
            stored={},
        )
        candidates.append(
            CandidateDraft(
                registrant_id=int(snapshot.registrant_ids[row]),
                rank=rank,
                score=round(float(problem.pair_score[pair]), 4),
                cell_ids=[cell_ids[column] for column in _row_cells(pair_cells, pair)],
                evidence=evidence,
            )
        )
    unfilled = None
    if len(candidates) < shortlist_size:
        unfilled = {
            "missing": shortlist_size - len(candidates),
            "eligible_registrants": int(rows.size),
            "excluded": eligibility.reason_counts(),
            "reason": _binding_reason(problem, solution),
        }
    return ShortlistDraft(
        vacancy_row_id=vacancy_row_id,
        quota_mode=quota_mode,
        method=solution.method if solution is not None else "none",
        solve_status=solution.status.value if solution is not None else "optimal",
        objective=float(solution.objective) if solution is not None else 0.0,
        bound=float(solution.bound) if solution is not None else 0.0,
        unfilled=unfilled,
        candidates=candidates,
    )


def _solve(
    context: ServiceContext, problem: ShortlistProblem
) -> ShortlistSolution | None:
    # With no candidate pair there is nothing to choose; the solver is not run.
    if problem.num_pairs == 0:
        return None
    settings = context.settings
    return solve_shortlists(
        problem,
        method=settings.shortlist_method,
        time_limit_seconds=settings.shortlist_time_limit_seconds,
        num_threads=settings.solver_threads,
    )


def _registrant_capacity(
    snapshot: RegistrySnapshot, load: OpenLoad, placed: set[int], cap: int
) -> NDArray[np.int64]:
    capacity = np.full(snapshot.features.count, cap, dtype=np.int64)
    for registrant_id, count in load.per_registrant.items():
        row = snapshot.row_of.get(registrant_id)
        if row is not None:
            capacity[row] -= count
    for registrant_id in placed:
        row = snapshot.row_of.get(registrant_id)
        if row is not None:
            capacity[row] = 0
    return np.maximum(capacity, 0)


def _top_positions(scores: NDArray[np.float64], limit: int) -> NDArray[np.int64]:
    positions = np.arange(scores.size, dtype=np.int64)
    if positions.size > limit:
        order = np.lexsort((positions, -scores))
        positions = np.sort(order[:limit])
    return positions


def _pair_cells(
    origins: NDArray[np.str_], eligibility: Eligibility, rows: NDArray[np.int64]
) -> tuple[sp.csr_array, list[int]]:
    columns_of_row = [
        eligibility.corridors[str(origins[row])].cell_columns for row in rows
    ]
    used = sorted({column for columns in columns_of_row for column in columns})
    local = {column: position for position, column in enumerate(used)}
    pair_index = [pair for pair, columns in enumerate(columns_of_row) for _ in columns]
    cell_index = [local[column] for columns in columns_of_row for column in columns]
    matrix = sp.csr_array(
        (
            np.ones(len(pair_index), dtype=np.float64),
            (
                np.array(pair_index, dtype=np.int64),
                np.array(cell_index, dtype=np.int64),
            ),
        ),
        shape=(rows.size, len(used)),
    )
    return matrix, used


def _row_cells(matrix: sp.csr_array, pair: int) -> list[int]:
    columns: list[int] = matrix.indices[
        matrix.indptr[pair] : matrix.indptr[pair + 1]
    ].tolist()
    return columns


def _cell_capacity(
    index: AgreementIndex, columns: list[int], load: OpenLoad, quota_mode: QuotaMode
) -> NDArray[np.int32]:
    capacity = []
    for column in columns:
        cell = index.cells[column]
        if quota_mode == "proportional":
            capacity.append(cell.remaining * index.cell_ratio[cell.id])
        else:
            capacity.append(max(cell.remaining - load.per_cell.get(cell.id, 0), 0))
    return np.array(capacity, dtype=np.int32)


def _margins(eligibility: Eligibility, row: int) -> dict[str, int]:
    names = [language for language, _ in eligibility.languages]
    return dict(zip(names, eligibility.language_margin[row].tolist(), strict=True))


def _binding_reason(
    problem: ShortlistProblem, solution: ShortlistSolution | None
) -> Any:
    if solution is None:
        return "no eligible registrant with capacity left"
    return binding_reason_data(find_binding_reasons(problem, solution).get(0))


def save_shortlists(
    session: Session,
    drafts: list[ShortlistDraft],
    *,
    employer_of: dict[int, str],
    secret: bytes,
    key_id: str,
    round_id: str | None,
) -> list[str]:
    """Store shortlists, superseding the open ones of their vacancies; return ids."""
    supersede_open_shortlists(session, [draft.vacancy_row_id for draft in drafts])
    return insert_shortlists(
        session,
        drafts,
        employer_of=employer_of,
        secret=secret,
        key_id=key_id,
        round_id=round_id,
    )


def supersede_open_shortlists(session: Session, vacancy_ids: list[int]) -> None:
    """Mark the open shortlists of the vacancies superseded.

    The update locks the shortlist rows until the transaction ends, so a
    selection that locks its shortlist first finishes before, and one that
    comes later finds the shortlist superseded.
    """
    for start in range(0, len(vacancy_ids), 1_000):
        session.execute(
            update(ShortlistRow)
            .where(
                ShortlistRow.vacancy_id.in_(vacancy_ids[start : start + 1_000]),
                ShortlistRow.status == "open",
            )
            .values(status="superseded")
        )


def insert_shortlists(
    session: Session,
    drafts: list[ShortlistDraft],
    *,
    employer_of: dict[int, str],
    secret: bytes,
    key_id: str,
    round_id: str | None,
) -> list[str]:
    """Store new open shortlists and their candidates; return their ids."""
    now = utc_now()
    shortlist_ids = [new_id("sl") for _ in drafts]
    session.add_all(
        ShortlistRow(
            id=shortlist_id,
            vacancy_id=draft.vacancy_row_id,
            round_id=round_id,
            status="open",
            quota_mode=draft.quota_mode,
            method=draft.method,
            solve_status=draft.solve_status,
            objective=draft.objective,
            bound=draft.bound,
            unfilled=json.dumps(draft.unfilled) if draft.unfilled is not None else None,
            created_by=key_id,
            created_at=now,
        )
        for shortlist_id, draft in zip(shortlist_ids, drafts, strict=True)
    )
    session.flush()
    candidate_rows = [
        {
            "shortlist_id": shortlist_id,
            "registrant_id": candidate.registrant_id,
            "pseudonym": pseudonym_of(
                secret, employer_of[draft.vacancy_row_id], candidate.registrant_id
            ),
            "rank": candidate.rank,
            "score": candidate.score,
            "cell_ids": json.dumps(candidate.cell_ids),
            "evidence": json.dumps(candidate.evidence),
        }
        for shortlist_id, draft in zip(shortlist_ids, drafts, strict=True)
        for candidate in draft.candidates
    ]
    if candidate_rows:
        session.connection().execute(insert(CandidateRow), candidate_rows)
    return shortlist_ids


def shortlist_public(
    session: Session, shortlist: ShortlistRow, vacancy: VacancyRow
) -> ShortlistPublic:
    """Return a stored shortlist in the form shown to its employer."""
    rows = session.scalars(
        select(CandidateRow)
        .where(CandidateRow.shortlist_id == shortlist.id)
        .order_by(CandidateRow.rank)
    ).all()
    return ShortlistPublic(
        id=shortlist.id,
        vacancy_id=vacancy.external_id,
        round_id=shortlist.round_id,
        status=shortlist.status,
        quota_mode=shortlist.quota_mode,
        method=shortlist.method,
        solve_status=shortlist.solve_status,
        objective=shortlist.objective,
        bound=shortlist.bound,
        unfilled=json.loads(shortlist.unfilled) if shortlist.unfilled else None,
        created_at=shortlist.created_at,
        candidates=[
            CandidatePublic(
                candidate_id=row.pseudonym,
                rank=row.rank,
                score=row.score,
                evidence=json.loads(row.evidence),
                quota_cells=json.loads(row.cell_ids),
                selected=row.selected_at is not None,
            )
            for row in rows
        ],
    )
