"""Routes for shortlists and selections (employer keys, own shortlists only)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import ContextDep, EmployerCaller
from api.errors import NotFoundError
from api.schemas import SelectionCreate, SelectionPublic, ShortlistPublic
from api.services.selections import record_selection
from api.services.shortlists import shortlist_public
from api.tables import ShortlistRow, VacancyRow

router = APIRouter(prefix="/shortlists", tags=["shortlists"])


@router.get("/{shortlist_id}")
def get_shortlist(
    shortlist_id: str, context: ContextDep, caller: EmployerCaller
) -> ShortlistPublic:
    """Read a shortlist of one of the employer's vacancies."""
    with context.database.session() as session:
        found = session.execute(
            select(ShortlistRow, VacancyRow)
            .join(VacancyRow, VacancyRow.id == ShortlistRow.vacancy_id)
            .where(ShortlistRow.id == shortlist_id)
        ).first()
        if found is None or found[1].employer_id != caller.tenant:
            raise NotFoundError("shortlist", shortlist_id)
        return shortlist_public(session, found[0], found[1])


@router.post("/{shortlist_id}/selections")
def create_selection(
    shortlist_id: str,
    body: SelectionCreate,
    context: ContextDep,
    caller: EmployerCaller,
) -> SelectionPublic:
    """Select candidates and consume their quota, all or nothing."""
    return record_selection(
        context,
        shortlist_id=shortlist_id,
        employer_id=caller.tenant,
        candidate_ids=body.candidate_ids,
        key_id=caller.key_id,
    )
