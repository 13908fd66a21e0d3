"""Read the live state a shortlist or round is solved against.

Agreements and quota cells come from the database with their current use;
open shortlists and placements reduce the capacity left to registrants and
quota cells. Candidate evidence is assembled here for both one-vacancy
shortlists and matching rounds.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.tables import (
    AgreementCell,
    AgreementRow,
    CandidateRow,
    PlacementRow,
    QuotaCellRow,
    RegistrantRow,
    ShortlistRow,
)
from matching.eligibility import RECOGNITION_NOT_REQUIRED, AgreementIndex
from matching.features import RECOGNITION_RANK, RegistrantFeatures, VacancyProfile
from matching.models import BilateralAgreement, QuotaCell

_RECOGNITION_NAME = {rank: state for state, rank in RECOGNITION_RANK.items()}
_SCORE_DIGITS = 4


def quota_cell_model(row: QuotaCellRow) -> QuotaCell:
    """Return a cell in the engine's model; a closed cell has nothing left."""
    cap = row.cap if row.closed_at is None else min(row.cap, row.used)
    return QuotaCell(
        id=row.id,
        sector=row.sector,
        isco_prefix=row.isco_prefix,
        cap=cap,
        used=row.used,
        period_start=row.period_start,
        period_end=row.period_end,
    )


def agreement_model(
    row: AgreementRow, cells: Iterable[QuotaCellRow]
) -> BilateralAgreement:
    """Return a stored agreement with its quota cells at their current use."""
    terms = json.loads(row.terms)
    terms["quota_cells"] = [
        quota_cell_model(cell).model_dump(mode="json")
        for cell in sorted(cells, key=lambda cell: cell.id)
    ]
    return BilateralAgreement.model_validate(terms)


def load_agreements(
    session: Session, *, include_closed: bool = False
) -> list[BilateralAgreement]:
    """Return agreements (open ones only, unless asked) with their live quota cells."""
    query = select(AgreementRow).order_by(AgreementRow.id)
    if not include_closed:
        query = query.where(AgreementRow.closed_at.is_(None))
    agreements = session.scalars(query).all()
    cells = {cell.id: cell for cell in session.scalars(select(QuotaCellRow))}
    members: dict[str, list[QuotaCellRow]] = {}
    for agreement_id, cell_id in session.execute(
        select(AgreementCell.agreement_id, AgreementCell.cell_id)
    ):
        members.setdefault(agreement_id, []).append(cells[cell_id])
    return [agreement_model(row, members.get(row.id, [])) for row in agreements]


def load_agreement_index(session: Session) -> AgreementIndex:
    """Return the index of open agreements and their quota cells."""
    return AgreementIndex(load_agreements(session))


@dataclass(frozen=True)
class OpenLoad:
    """Unselected candidates on open shortlists, per registrant and per cell."""

    per_registrant: Counter[int]
    per_cell: Counter[str]


def load_open_candidates(
    session: Session, *, exclude_vacancy_id: int | None = None
) -> OpenLoad:
    """Count unselected candidates on open shortlists, leaving one vacancy out."""
    query = (
        select(CandidateRow.registrant_id, CandidateRow.cell_ids)
        .join(ShortlistRow, ShortlistRow.id == CandidateRow.shortlist_id)
        .where(ShortlistRow.status == "open", CandidateRow.selected_at.is_(None))
    )
    if exclude_vacancy_id is not None:
        query = query.where(ShortlistRow.vacancy_id != exclude_vacancy_id)
    per_registrant: Counter[int] = Counter()
    per_cell: Counter[str] = Counter()
    for registrant_id, cell_ids in session.execute(query):
        per_registrant[int(registrant_id)] += 1
        per_cell.update(json.loads(cell_ids))
    return OpenLoad(per_registrant=per_registrant, per_cell=per_cell)


def load_placed(session: Session) -> set[int]:
    """Return the ids of registrants who hold a placement."""
    rows = session.scalars(
        select(PlacementRow.registrant_id).where(
            PlacementRow.registrant_id.is_not(None)
        )
    )
    return {int(registrant_id) for registrant_id in rows if registrant_id is not None}


def placements_per_vacancy(
    session: Session, vacancy_ids: Iterable[int]
) -> Counter[int]:
    """Count placements per vacancy."""
    ids = list(vacancy_ids)
    if not ids:
        return Counter()
    rows = session.execute(
        select(PlacementRow.vacancy_id, func.count())
        .where(PlacementRow.vacancy_id.in_(ids))
        .group_by(PlacementRow.vacancy_id)
    )
    return Counter({int(vacancy_id): int(count) for vacancy_id, count in rows})


def load_profiles(
    session: Session, registrant_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """Return the evidence an employer may see for each registrant: no names."""
    profiles: dict[int, dict[str, Any]] = {}
    for start in range(0, len(registrant_ids), 1_000):
        chunk = registrant_ids[start : start + 1_000]
        rows = session.execute(
            select(RegistrantRow.id, RegistrantRow.profile, RegistrantRow.skills).where(
                RegistrantRow.id.in_(chunk)
            )
        ).all()
        for registrant_id, profile, skills in rows:
            record = json.loads(profile)
            profiles[int(registrant_id)] = {
                "origin": record["origin"],
                "available_from": record["available_from"],
                "occupations": record["occupations"],
                "languages": record["languages"],
                "qualifications": record["qualifications"],
                "skills": [
                    skill["label"] or skill["raw"] for skill in json.loads(skills)
                ],
            }
    return profiles


def recognition_name(rank: int) -> str:
    """Return the recognition state of a rank, or ``not_required``."""
    if rank == RECOGNITION_NOT_REQUIRED:
        return "not_required"
    return _RECOGNITION_NAME[rank]


def pair_evidence(
    features: RegistrantFeatures,
    row: int,
    profile: VacancyProfile,
    *,
    components: dict[str, float],
    recognition_rank: int,
    language_margin: dict[str, int],
    stored: dict[str, Any],
) -> dict[str, Any]:
    """Return the evidence behind one candidate's score."""
    skills = features.skills
    held = set(skills.indices[skills.indptr[row] : skills.indptr[row + 1]].tolist())
    matched: list[str] = []
    missing: list[str] = []
    for column, label in zip(
        profile.essential_skill_ids, profile.essential_skill_labels, strict=False
    ):
        (matched if column in held else missing).append(label)
    return {
        "components": {
            name: round(float(value), _SCORE_DIGITS)
            for name, value in components.items()
            if not np.isnan(value)
        },
        "matched_essential_skills": matched,
        "missing_essential_skills": missing,
        # CEFR levels above each minimum; 0 means the minimum is met exactly.
        "language_margin": language_margin,
        "recognition": recognition_name(recognition_rank),
        **stored,
    }


def binding_reason_data(reason: Any) -> dict[str, Any] | None:
    """Return a solver's binding reason for a short shortlist as plain data."""
    if reason is None:
        return None
    data: dict[str, Any] = dataclasses.asdict(reason)
    # The solver's vacancy id is the internal row id; the shortlist names the vacancy.
    data.pop("vacancy_id", None)
    data["codes"] = list(reason.codes)
    data["blocking_cells"] = [list(item) for item in reason.blocking_cells]
    return data
