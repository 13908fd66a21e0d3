"""Store and read employers' vacancies."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import ConflictError, NotFoundError
from api.schemas import VacancyPublic
from api.services.audit import utc_now
from api.services.market import placements_per_vacancy
from api.tables import ShortlistRow, VacancyRow
from matching.models import Vacancy


def create_vacancy(
    context: ServiceContext, *, employer_id: str, body: dict[str, Any]
) -> VacancyPublic:
    """Validate and store a vacancy for the employer.

    Raises
    ------
    pydantic.ValidationError
        If the vacancy breaks a rule of :class:`matching.models.Vacancy`.
    ConflictError
        If the employer already has a vacancy with this id.
    """
    vacancy = Vacancy.model_validate({**body, "employer_id": employer_id})
    now = utc_now()
    try:
        with context.database.session() as session:
            row = VacancyRow(
                employer_id=employer_id,
                external_id=vacancy.id,
                record=vacancy.model_dump_json(),
                status="open",
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return vacancy_public(session, row)
    except IntegrityError as error:
        raise ConflictError(f"vacancy '{vacancy.id}' already exists") from error


def find_vacancy(session: Session, *, employer_id: str, vacancy_id: str) -> VacancyRow:
    """Return the employer's vacancy by its id.

    Raises
    ------
    NotFoundError
        If the employer has no vacancy with this id.
    """
    row = session.scalars(
        select(VacancyRow).where(
            VacancyRow.employer_id == employer_id, VacancyRow.external_id == vacancy_id
        )
    ).first()
    if row is None:
        raise NotFoundError("vacancy", vacancy_id)
    return row


def vacancy_public(session: Session, row: VacancyRow) -> VacancyPublic:
    """Return a vacancy with its open shortlist and placements."""
    vacancy = Vacancy.model_validate_json(row.record)
    placements = placements_per_vacancy(session, [row.id])[row.id]
    open_shortlist = session.scalars(
        select(ShortlistRow.id).where(
            ShortlistRow.vacancy_id == row.id, ShortlistRow.status == "open"
        )
    ).first()
    return VacancyPublic(
        id=row.external_id,
        employer_id=row.employer_id,
        status=row.status,
        vacancy=vacancy.model_dump(mode="json"),
        open_shortlist_id=open_shortlist,
        placements=placements,
        openings_left=max(vacancy.openings - placements, 0),
        created_at=row.created_at,
    )


def list_vacancies(context: ServiceContext, *, employer_id: str) -> list[VacancyPublic]:
    """Return the employer's vacancies, oldest first."""
    with context.database.session() as session:
        rows = session.scalars(
            select(VacancyRow)
            .where(VacancyRow.employer_id == employer_id)
            .order_by(VacancyRow.id)
        ).all()
        return [vacancy_public(session, row) for row in rows]
