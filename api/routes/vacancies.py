"""Routes for vacancies and their shortlists (employer keys, own vacancies only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from api.deps import ContextDep, EmployerCaller
from api.schemas import ShortlistCreate, ShortlistPublic, VacancyCreate, VacancyPublic
from api.services import vacancies
from api.services.shortlists import build_shortlist, shortlist_public
from api.tables import ShortlistRow

router = APIRouter(prefix="/vacancies", tags=["vacancies"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_vacancy(
    body: VacancyCreate,
    context: ContextDep,
    caller: EmployerCaller,
) -> VacancyPublic:
    """Post a vacancy for the employer of the key."""
    return vacancies.create_vacancy(
        context, employer_id=caller.tenant, body=body.model_dump(exclude_unset=True)
    )


@router.get("")
def list_vacancies(context: ContextDep, caller: EmployerCaller) -> list[VacancyPublic]:
    """List the employer's vacancies."""
    return vacancies.list_vacancies(context, employer_id=caller.tenant)


@router.get("/{vacancy_id}")
def get_vacancy(
    vacancy_id: str, context: ContextDep, caller: EmployerCaller
) -> VacancyPublic:
    """Read one of the employer's vacancies."""
    with context.database.session() as session:
        row = vacancies.find_vacancy(
            session, employer_id=caller.tenant, vacancy_id=vacancy_id
        )
        return vacancies.vacancy_public(session, row)


@router.post("/{vacancy_id}/shortlist", status_code=status.HTTP_201_CREATED)
def create_shortlist(
    vacancy_id: str,
    context: ContextDep,
    caller: EmployerCaller,
    body: Annotated[ShortlistCreate | None, Body()] = None,
) -> ShortlistPublic:
    """Build a shortlist for the vacancy now, against current quota use."""
    with context.database.session() as session:
        row = vacancies.find_vacancy(
            session, employer_id=caller.tenant, vacancy_id=vacancy_id
        )
    quota_mode = (body.quota_mode if body else None) or context.settings.quota_mode
    shortlist_id = build_shortlist(
        context, vacancy_row=row, key_id=caller.key_id, quota_mode=quota_mode
    )
    with context.database.session() as session:
        shortlist = session.get(ShortlistRow, shortlist_id)
        assert shortlist is not None
        return shortlist_public(session, shortlist, row)
