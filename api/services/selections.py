"""Record an employer's selection and consume quota, all or nothing.

Each selected candidate becomes a placement that uses one unit of every quota
cell their pair counts against. The whole selection is one transaction:

- quota cells are updated in ascending id order, each with
  ``UPDATE quota_cells SET used = used + n WHERE id = :id AND closed_at IS NULL
  AND used + n <= cap``. A row count of 0 means the cell is full or closed,
  so the transaction rolls back. On PostgreSQL the statement locks the row,
  and a concurrent update waits for it and re-checks the condition against
  the committed value (READ COMMITTED re-evaluation), so concurrent selections
  never take a cell past its cap. The fixed order keeps two selections that
  share cells from deadlocking. On SQLite the transaction begins with
  ``BEGIN IMMEDIATE``, so selections run one at a time;
- the vacancy row is locked first (``SELECT ... FOR UPDATE``), so two
  selections for one vacancy cannot both pass the openings check;
- ``placements.registrant_id`` is unique, so one registrant is never placed
  twice, even by two selections on different shortlists at the same moment.
"""

from __future__ import annotations

import json
import logging
from collections import Counter

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import (
    AlreadyPlacedError,
    ConflictError,
    NotFoundError,
    QuotaExceededError,
)
from api.schemas import QuotaUse, SelectionPublic
from api.services.audit import canonical_sha256, record_audit, rows_matched, utc_now
from api.services.market import placements_per_vacancy
from api.tables import (
    CandidateRow,
    PlacementRow,
    QuotaCellRow,
    ShortlistRow,
    VacancyRow,
)
from matching.models import Vacancy

logger = logging.getLogger(__name__)


def record_selection(
    context: ServiceContext,
    *,
    shortlist_id: str,
    employer_id: str,
    candidate_ids: list[str],
    key_id: str,
) -> SelectionPublic:
    """Place the chosen candidates of a shortlist, or change nothing.

    Raises
    ------
    NotFoundError
        If the shortlist is not the employer's, or a candidate is not on it.
    ConflictError
        If the shortlist is not open or the vacancy has too few openings left.
    AlreadyPlacedError
        If a candidate already has a placement.
    QuotaExceededError
        If a quota cell would pass its cap.
    """
    chosen = list(dict.fromkeys(candidate_ids))
    try:
        with context.database.write_session() as session:
            # The shortlist row stays locked (PostgreSQL), so a matching round
            # cannot supersede it and count quota use while this runs.
            found = session.execute(
                select(ShortlistRow, VacancyRow)
                .join(VacancyRow, VacancyRow.id == ShortlistRow.vacancy_id)
                .where(ShortlistRow.id == shortlist_id)
                .with_for_update(of=ShortlistRow)
            ).first()
            if found is None or found[1].employer_id != employer_id:
                raise NotFoundError("shortlist", shortlist_id)
            shortlist, vacancy_row = found
            if shortlist.status != "open":
                raise ConflictError(
                    f"shortlist '{shortlist_id}' is {shortlist.status}; select "
                    "from the "
                    f"open shortlist of vacancy '{vacancy_row.external_id}'"
                )

            # Selections of one vacancy queue on its row lock (PostgreSQL), so
            # the openings check below cannot be passed by two at once.
            session.execute(
                select(VacancyRow.id)
                .where(VacancyRow.id == vacancy_row.id)
                .with_for_update()
            )
            candidates = _chosen_candidates(session, shortlist_id, chosen)
            _check_openings(session, vacancy_row, len(candidates))
            cells = _consume_quota(session, candidates)
            now = utc_now()
            for candidate in candidates:
                candidate.selected_at = now
                session.add(
                    PlacementRow(
                        registrant_id=candidate.registrant_id,
                        vacancy_id=vacancy_row.id,
                        shortlist_id=shortlist_id,
                        pseudonym=candidate.pseudonym,
                        cell_ids=candidate.cell_ids,
                        created_by=key_id,
                        created_at=now,
                    )
                )
            session.flush()
            record_audit(
                session,
                key_id=key_id,
                action="selection",
                resource=f"shortlist:{shortlist_id}",
                input_sha256=canonical_sha256(
                    {"shortlist": shortlist_id, "candidates": chosen}
                ),
            )
    except IntegrityError as error:
        # A concurrent selection placed one of these registrants first.
        raise AlreadyPlacedError(", ".join(chosen)) from error
    logger.info(
        "selection on shortlist %s: %d placed, quota cells %s",
        shortlist_id,
        len(chosen),
        ", ".join(f"{cell.id} {cell.used}/{cell.cap}" for cell in cells) or "none",
    )
    return SelectionPublic(shortlist_id=shortlist_id, placed=chosen, quota_cells=cells)


def _chosen_candidates(
    session: Session, shortlist_id: str, chosen: list[str]
) -> list[CandidateRow]:
    rows = session.scalars(
        select(CandidateRow).where(
            CandidateRow.shortlist_id == shortlist_id,
            CandidateRow.pseudonym.in_(chosen),
        )
    ).all()
    by_pseudonym = {row.pseudonym: row for row in rows}
    for candidate_id in chosen:
        row = by_pseudonym.get(candidate_id)
        if row is None:
            raise NotFoundError("candidate", candidate_id)
        if row.selected_at is not None:
            raise AlreadyPlacedError(candidate_id)
    placed = set(
        session.scalars(
            select(PlacementRow.registrant_id).where(
                PlacementRow.registrant_id.in_([row.registrant_id for row in rows])
            )
        )
    )
    for row in rows:
        if row.registrant_id in placed:
            raise AlreadyPlacedError(row.pseudonym)
    return [by_pseudonym[candidate_id] for candidate_id in chosen]


def _check_openings(session: Session, vacancy_row: VacancyRow, count: int) -> None:
    openings = Vacancy.model_validate_json(vacancy_row.record).openings
    filled = placements_per_vacancy(session, [vacancy_row.id])[vacancy_row.id]
    if filled + count > openings:
        raise ConflictError(
            f"vacancy '{vacancy_row.external_id}' has {openings - filled} of its "
            f"{openings} openings left, but {count} candidates were selected; "
            "nothing was recorded"
        )


def _consume_quota(session: Session, candidates: list[CandidateRow]) -> list[QuotaUse]:
    needed: Counter[str] = Counter()
    for candidate in candidates:
        needed.update(json.loads(candidate.cell_ids))
    now = utc_now()
    for cell_id in sorted(needed):
        count = needed[cell_id]
        result = session.execute(
            update(QuotaCellRow)
            .where(
                QuotaCellRow.id == cell_id,
                QuotaCellRow.closed_at.is_(None),
                QuotaCellRow.used + count <= QuotaCellRow.cap,
            )
            .values(used=QuotaCellRow.used + count, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if rows_matched(result) != 1:
            cell = session.get(QuotaCellRow, cell_id)
            if cell is not None and cell.closed_at is not None:
                raise ConflictError(
                    f"quota cell '{cell_id}' is closed; nothing was recorded"
                )
            raise QuotaExceededError(
                cell_id,
                cap=cell.cap if cell is not None else 0,
                used=cell.used if cell is not None else 0,
                requested=count,
            )
    cells = session.scalars(
        select(QuotaCellRow)
        .where(QuotaCellRow.id.in_(sorted(needed)))
        .order_by(QuotaCellRow.id)
        .execution_options(populate_existing=True)
    ).all()
    return [QuotaUse(id=cell.id, cap=cell.cap, used=cell.used) for cell in cells]
