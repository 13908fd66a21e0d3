"""Routes for matching rounds (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, status

from api.deps import AdminCaller, ContextDep
from api.schemas import RoundCreate, RoundPublic
from api.services import rounds

router = APIRouter(prefix="/rounds", tags=["rounds"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def start_round(
    context: ContextDep,
    caller: AdminCaller,
    body: Annotated[RoundCreate | None, Body()] = None,
) -> RoundPublic:
    """Start a matching round over all open vacancies in the background."""
    return rounds.start_round(context, body=body or RoundCreate(), key_id=caller.key_id)


@router.get("")
def list_rounds(context: ContextDep, caller: AdminCaller) -> list[RoundPublic]:
    """List matching rounds, newest first."""
    del caller
    return rounds.list_rounds(context)


@router.get("/{round_id}")
def get_round(round_id: str, context: ContextDep, caller: AdminCaller) -> RoundPublic:
    """Read a round's status, stage and progress."""
    del caller
    return rounds.get_round(context, round_id)
