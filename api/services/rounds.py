"""Matching rounds over all open vacancies, run in a background thread.

A round goes through the stages ``loading`` (registrant matrix, agreements,
vacancy profiles), ``scoring`` (rules and scores per vacancy), ``solving``
and ``saving``. Its row has the stage and a progress fraction that
``GET /v1/rounds/{id}`` reports. Every open shortlist of the round's vacancies
is superseded by the round's shortlists.

Placed registrants get a shortlist cap of 0 and each vacancy gets
``shortlist_ratio`` places per opening not yet filled.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import NotFoundError
from api.schemas import RoundCreate, RoundPublic
from api.services.audit import (
    canonical_sha256,
    new_id,
    record_audit,
    rows_matched,
    utc_now,
)
from api.services.market import (
    binding_reason_data,
    load_agreement_index,
    load_open_candidates,
    load_placed,
    load_profiles,
    pair_evidence,
    placements_per_vacancy,
)
from api.services.shortlists import (
    CandidateDraft,
    ShortlistDraft,
    insert_shortlists,
    lock_shortlists,
    supersede_open_shortlists,
)
from api.tables import QuotaCellRow, RoundRow, VacancyRow
from matching.eligibility import AgreementIndex
from matching.models import Vacancy
from matching.rounds import RoundConfig, build_problem, collect_candidates
from matching.solvers import find_binding_reasons, solve_shortlists

logger = logging.getLogger(__name__)

# Share of the progress bar each stage ends at; scoring fills the span
# between loading and solving in proportion to the vacancies scored.
_STAGE_END = {"loading": 0.05, "scoring": 0.75, "solving": 0.9, "saving": 1.0}
# Seconds between two progress writes, so a round with thousands of
# vacancies does not write its row thousands of times.
_PROGRESS_INTERVAL_SECONDS = 0.5


def round_config(context: ServiceContext, body: RoundCreate) -> RoundConfig:
    """Return the round settings: the request's values, else the service settings."""
    settings = context.settings
    return RoundConfig(
        shortlist_ratio=body.shortlist_ratio or settings.shortlist_ratio,
        max_shortlists_per_registrant=(
            body.max_shortlists_per_registrant or settings.max_shortlists_per_registrant
        ),
        quota_mode=body.quota_mode or settings.quota_mode,
        method=body.method or settings.shortlist_method,
        candidates_per_vacancy=body.candidates_per_vacancy
        or settings.candidates_per_vacancy,
        time_limit_seconds=body.time_limit_seconds or settings.round_time_limit_seconds,
        num_threads=settings.solver_threads,
    )


def start_round(
    context: ServiceContext, *, body: RoundCreate, key_id: str
) -> RoundPublic:
    """Queue a matching round and return it; it runs in the background."""
    config = round_config(context, body)
    config_data = _config_data(config)
    now = utc_now()
    row = RoundRow(
        id=new_id("rd"),
        status="queued",
        stage="queued",
        progress=0.0,
        config=json.dumps(config_data),
        created_by=key_id,
        created_at=now,
    )
    with context.database.session() as session:
        session.add(row)
        record_audit(
            session,
            key_id=key_id,
            action="round",
            resource=f"round:{row.id}",
            input_sha256=canonical_sha256(config_data),
        )
    context.rounds.submit(run_round, context, row.id, config, key_id)
    logger.info("queued matching round %s", row.id)
    return round_public(row)


def _config_data(config: RoundConfig) -> dict[str, Any]:
    data = config.as_dict()
    data["weights"] = config.weights.as_dict()
    return data


def get_round(context: ServiceContext, round_id: str) -> RoundPublic:
    """Return a round's status and progress.

    Raises
    ------
    NotFoundError
    """
    with context.database.session() as session:
        row = session.get(RoundRow, round_id)
        if row is None:
            raise NotFoundError("round", round_id)
        return round_public(row)


def list_rounds(context: ServiceContext) -> list[RoundPublic]:
    """Return every round, newest first."""
    with context.database.session() as session:
        rows = session.scalars(
            select(RoundRow).order_by(RoundRow.created_at.desc())
        ).all()
        return [round_public(row) for row in rows]


def round_public(row: RoundRow) -> RoundPublic:
    """Return a round row as its response body."""
    return RoundPublic(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        stage=row.stage,
        progress=row.progress,
        config=json.loads(row.config),
        summary=json.loads(row.summary) if row.summary else None,
        error=row.error,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def fail_interrupted_rounds(context: ServiceContext) -> None:
    """Mark rounds left queued or running by a stopped process as failed."""
    with context.database.session() as session:
        stale = rows_matched(
            session.execute(
                update(RoundRow)
                .where(RoundRow.status.in_(["queued", "running"]))
                .values(
                    status="failed",
                    error="the service stopped before the round finished; "
                    "start a new round",
                    finished_at=utc_now(),
                )
            )
        )
    if stale:
        logger.warning("marked %d interrupted matching rounds as failed", stale)


class _Progress:
    """Writes a round's stage and progress, at most every half second."""

    def __init__(self, context: ServiceContext, round_id: str) -> None:
        self.context = context
        self.round_id = round_id
        self.last_write = 0.0
        self.lock = threading.Lock()

    def stage(self, stage: str, fraction: float | None = None) -> None:
        self._write(stage, fraction if fraction is not None else self._start_of(stage))

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != "scoring" or total <= 0:
            return
        now = time.monotonic()
        if now - self.last_write < _PROGRESS_INTERVAL_SECONDS and done < total:
            return
        start, end = _STAGE_END["loading"], _STAGE_END["scoring"]
        self._write("scoring", start + (end - start) * done / total)

    def _start_of(self, stage: str) -> float:
        order = list(_STAGE_END)
        index = order.index(stage)
        return 0.0 if index == 0 else _STAGE_END[order[index - 1]]

    def _write(self, stage: str, fraction: float) -> None:
        with self.lock:
            self.last_write = time.monotonic()
            with self.context.database.session() as session:
                session.execute(
                    update(RoundRow)
                    .where(RoundRow.id == self.round_id)
                    .values(
                        stage=stage, progress=round(min(max(fraction, 0.0), 1.0), 4)
                    )
                )


def run_round(
    context: ServiceContext, round_id: str, config: RoundConfig, key_id: str
) -> None:
    """Run a queued round to the end, recording success or failure on its row.

    Every error is caught, logged with the round id and stored on the row,
    because nothing waits on the background thread to re-raise it.
    """
    started = time.perf_counter()
    progress = _Progress(context, round_id)
    with context.database.session() as session:
        session.execute(
            update(RoundRow)
            .where(RoundRow.id == round_id)
            .values(status="running", stage="loading", started_at=utc_now())
        )
    try:
        summary = _run_stages(context, round_id, config, key_id, progress)
    except Exception as error:
        logger.exception("matching round %s failed", round_id)
        with context.database.session() as session:
            session.execute(
                update(RoundRow)
                .where(RoundRow.id == round_id)
                .values(
                    status="failed",
                    error=f"{type(error).__name__}: {error}",
                    finished_at=utc_now(),
                )
            )
        return
    summary["seconds"] = round(time.perf_counter() - started, 3)
    with context.database.session() as session:
        session.execute(
            update(RoundRow)
            .where(RoundRow.id == round_id)
            .values(
                status="done",
                stage="done",
                progress=1.0,
                summary=json.dumps(summary),
                finished_at=utc_now(),
            )
        )
    logger.info(
        "matching round %s done: %d vacancies, %d shortlisted, method %s, "
        "status %s, %.2f s",
        round_id,
        summary["vacancies"],
        summary["shortlisted"],
        summary["method"],
        summary["status"],
        summary["seconds"],
    )


def _run_stages(
    context: ServiceContext,
    round_id: str,
    config: RoundConfig,
    key_id: str,
    progress: _Progress,
) -> dict[str, Any]:
    progress.stage("loading")
    with context.database.session() as session:
        snapshot = context.registry.snapshot(session)
        index = load_agreement_index(session)
        vacancy_rows = session.scalars(
            select(VacancyRow)
            .where(VacancyRow.status == "open")
            .order_by(VacancyRow.id)
        ).all()
        filled = placements_per_vacancy(session, [row.id for row in vacancy_rows])
        placed = load_placed(session)
    vacancies = [Vacancy.model_validate_json(row.record) for row in vacancy_rows]
    openings_left = [
        vacancy.openings - filled[row.id]
        for vacancy, row in zip(vacancies, vacancy_rows, strict=True)
    ]
    kept = [position for position, left in enumerate(openings_left) if left > 0]
    vacancy_rows = [vacancy_rows[position] for position in kept]
    vacancies = [vacancies[position] for position in kept]
    with context.builder_lock:
        profiles = context.engine.builder.build_vacancies(vacancies)

    progress.stage("scoring")
    features = snapshot.features
    pairs, _, eligible_counts = collect_candidates(
        features,
        profiles,
        index,
        config,
        progress=progress,
        evidence=snapshot.evidence,
    )
    problem = build_problem(features, profiles, index, pairs, config)
    registrant_capacity = problem.registrant_capacity.copy()
    for registrant_id in placed:
        row = snapshot.row_of.get(registrant_id)
        if row is not None:
            registrant_capacity[row] = 0
    vacancy_capacity = np.array(
        [config.shortlist_ratio * openings_left[position] for position in kept],
        dtype=np.int32,
    )
    problem = dataclasses.replace(
        problem,
        registrant_capacity=registrant_capacity,
        vacancy_capacity=vacancy_capacity,
        vacancy_ids=tuple(str(row.id) for row in vacancy_rows),
        registrant_ids=tuple(str(int(value)) for value in snapshot.registrant_ids),
    )

    progress.stage("solving")
    if problem.num_pairs == 0:
        # Nothing to choose from: the solver is not run and no shortlist changes.
        return _empty_summary(features.count, len(profiles), snapshot.version)
    solution = solve_shortlists(
        problem,
        method=config.method,
        time_limit_seconds=config.time_limit_seconds,
        num_threads=config.num_threads,
    )

    progress.stage("saving")
    drafts = _drafts(snapshot, profiles, vacancy_rows, pairs, problem, solution, config)
    with context.shortlist_lock, context.database.write_session() as session:
        lock_shortlists(context, session)
        supersede_open_shortlists(session, [row.id for row in vacancy_rows])
        drafts = fit_to_current_use(session, drafts, vacancy_rows, index, config)
        stored = load_profiles(
            session,
            sorted(
                {item.registrant_id for draft in drafts for item in draft.candidates}
            ),
        )
        for draft in drafts:
            for candidate in draft.candidates:
                candidate.evidence.update(stored.get(candidate.registrant_id, {}))
        # A registrant erased while the round ran has no stored profile; drop them.
        drafts = [
            dataclasses.replace(
                draft,
                candidates=[
                    item for item in draft.candidates if item.registrant_id in stored
                ],
            )
            for draft in drafts
        ]
        insert_shortlists(
            session,
            drafts,
            employer_of={row.id: row.employer_id for row in vacancy_rows},
            secret=context.pseudonym_secret,
            key_id=key_id,
            round_id=round_id,
        )
    return {
        "registrants": features.count,
        "vacancies": len(profiles),
        "candidate_pairs": problem.num_pairs,
        "eligible_pairs": int(sum(eligible_counts)),
        # Candidates stored, after the check against use at save time.
        "shortlisted": sum(len(draft.candidates) for draft in drafts),
        "method": solution.method,
        "status": solution.status.value,
        "objective": round(float(solution.objective), 6),
        "bound": round(float(solution.bound), 6),
        "gap": float(solution.gap),
        "registry_version": snapshot.version,
    }


def _empty_summary(registrants: int, vacancies: int, version: int) -> dict[str, Any]:
    return {
        "registrants": registrants,
        "vacancies": vacancies,
        "candidate_pairs": 0,
        "eligible_pairs": 0,
        "shortlisted": 0,
        "method": "none",
        "status": "optimal",
        "objective": 0.0,
        "bound": 0.0,
        "gap": 0.0,
        "registry_version": version,
    }


def _drafts(
    snapshot: Any,
    profiles: list[Any],
    vacancy_rows: list[VacancyRow],
    pairs: Any,
    problem: Any,
    solution: Any,
    config: RoundConfig,
) -> list[ShortlistDraft]:
    features = snapshot.features
    cell_ids = problem.cell_ids
    binding = find_binding_reasons(problem, solution)
    drafts = []
    for position, (profile, row) in enumerate(zip(profiles, vacancy_rows, strict=True)):
        chosen = np.flatnonzero(solution.selected & (pairs.vacancy == position))
        order = chosen[np.lexsort((pairs.registrant[chosen], -pairs.score[chosen]))]
        candidates = []
        for rank, pair in enumerate(order.tolist(), start=1):
            registrant_row = int(pairs.registrant[pair])
            cells = pairs.cells.indices[
                pairs.cells.indptr[pair] : pairs.cells.indptr[pair + 1]
            ]
            evidence = pair_evidence(
                features,
                registrant_row,
                profile,
                components={
                    name: float(values[pair])
                    for name, values in pairs.components.items()
                },
                recognition_rank=int(pairs.recognition[pair]),
                language_margin=dict(pairs.language_margin[pair]),
                stored={},
            )
            candidates.append(
                CandidateDraft(
                    registrant_id=int(snapshot.registrant_ids[registrant_row]),
                    rank=rank,
                    score=round(float(pairs.score[pair]), 4),
                    cell_ids=[cell_ids[column] for column in cells.tolist()],
                    evidence=evidence,
                )
            )
        capacity = int(problem.vacancy_capacity[position])
        unfilled = None
        if len(candidates) < capacity:
            unfilled = {
                "missing": capacity - len(candidates),
                "reason": binding_reason_data(binding.get(position)),
            }
        drafts.append(
            ShortlistDraft(
                vacancy_row_id=row.id,
                quota_mode=config.quota_mode,
                method=solution.method,
                solve_status=solution.status.value,
                objective=float(solution.objective),
                bound=float(solution.bound),
                unfilled=unfilled,
                candidates=candidates,
            )
        )
    return drafts


def fit_to_current_use(
    session: Session,
    drafts: list[ShortlistDraft],
    vacancy_rows: list[VacancyRow],
    index: AgreementIndex,
    config: RoundConfig,
) -> list[ShortlistDraft]:
    """Trim a round's shortlists to the placements and quota use at save time.

    A round solves against the state read when it started, and selections
    may commit while it runs. The caller runs this in the saving transaction,
    after superseding the open shortlists of the round's vacancies. It drops
    placed registrants and keeps ``shortlist_ratio`` candidates per opening
    still unfilled. It then removes the lowest-scored candidates of every
    quota cell that no longer has room for them. The cell rows stay locked
    until the transaction ends, by ``SELECT ... FOR UPDATE`` on PostgreSQL and
    because SQLite runs one write transaction at a time. No selection can
    change their use before the shortlists are stored.
    """
    placed = load_placed(session)
    filled = placements_per_vacancy(session, [row.id for row in vacancy_rows])
    records = {row.id: Vacancy.model_validate_json(row.record) for row in vacancy_rows}
    candidate_lists: list[list[CandidateDraft]] = []
    places: list[int] = []
    for draft in drafts:
        record = records[draft.vacancy_row_id]
        left = max(record.openings - filled[draft.vacancy_row_id], 0)
        places.append(config.shortlist_ratio * left)
        candidates = [
            item for item in draft.candidates if item.registrant_id not in placed
        ]
        candidate_lists.append(candidates[: places[-1]])

    room = _cell_room(session, candidate_lists, index, config)
    members: dict[str, list[tuple[float, int, int, int]]] = {}
    for position, candidates in enumerate(candidate_lists):
        for item in candidates:
            for cell_id in item.cell_ids:
                members.setdefault(cell_id, []).append(
                    (item.score, -item.rank, position, item.registrant_id)
                )
    dropped: set[tuple[int, int]] = set()
    short_cells: dict[int, list[str]] = {}
    for cell_id in sorted(members):
        present = [
            member for member in members[cell_id] if member[2:] not in dropped
        ]
        excess = len(present) - room.get(cell_id, 0)
        # The lowest score goes first, and the later rank among equal scores.
        for member in sorted(present)[: max(excess, 0)]:
            dropped.add(member[2:])
            short_cells.setdefault(member[2], []).append(cell_id)

    fitted = []
    pairs = zip(drafts, candidate_lists, strict=True)
    for position, (draft, candidates) in enumerate(pairs):
        remaining = [
            dataclasses.replace(item, rank=rank)
            for rank, item in enumerate(
                (
                    item
                    for item in candidates
                    if (position, item.registrant_id) not in dropped
                ),
                start=1,
            )
        ]
        unfilled = draft.unfilled
        if len(remaining) < len(draft.candidates):
            unfilled = _unfilled_at_save(
                draft, places[position] - len(remaining), short_cells.get(position)
            )
        fitted.append(
            dataclasses.replace(draft, candidates=remaining, unfilled=unfilled)
        )
    if dropped:
        full_cells = sorted(
            {cell for cell_ids in short_cells.values() for cell in cell_ids}
        )
        logger.warning(
            "quota cells %s had less room when the round was saved than when it "
            "started; %d candidates were left off",
            ", ".join(full_cells),
            len(dropped),
        )
    return fitted


def _cell_room(
    session: Session,
    candidate_lists: list[list[CandidateDraft]],
    index: AgreementIndex,
    config: RoundConfig,
) -> Counter[str]:
    """Return how many of the round's candidates each quota cell has room for now."""
    cell_ids = sorted(
        {
            cell
            for candidates in candidate_lists
            for item in candidates
            for cell in item.cell_ids
        }
    )
    cells = session.scalars(
        select(QuotaCellRow)
        .where(QuotaCellRow.id.in_(cell_ids))
        .order_by(QuotaCellRow.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    # The round's own open shortlists are superseded already, so this counts
    # the unselected candidates of other vacancies only.
    load = load_open_candidates(session)
    room: Counter[str] = Counter()
    for cell in cells:
        remaining = 0 if cell.closed_at is not None else max(cell.cap - cell.used, 0)
        if config.quota_mode == "proportional":
            room[cell.id] = remaining * index.cell_ratio.get(cell.id, 1)
        else:
            room[cell.id] = max(remaining - load.per_cell.get(cell.id, 0), 0)
    return room


def _unfilled_at_save(
    draft: ShortlistDraft, missing: int, cells: list[str] | None
) -> dict[str, Any] | None:
    if missing <= 0:
        return None
    reason: Any = draft.unfilled["reason"] if draft.unfilled is not None else None
    if cells:
        reason = {
            "codes": [f"quota_cell:{cell}" for cell in sorted(set(cells))],
            "message": "quota cell use rose while the round ran",
        }
    elif reason is None:
        reason = {
            "codes": ["placements"],
            "message": "candidates were placed or openings filled while the "
            "round ran",
        }
    return {"missing": missing, "reason": reason}
