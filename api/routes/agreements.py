"""Routes for bilateral agreements and quota cells (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AdminCaller, ContextDep
from api.schemas import (
    AgreementCreate,
    AgreementPublic,
    AgreementUpdate,
    QuotaCellCreate,
    QuotaCellPublic,
    QuotaCellUpdate,
)
from api.services import agreements

router = APIRouter(tags=["agreements"])


@router.post("/agreements", status_code=status.HTTP_201_CREATED)
def create_agreement(
    body: AgreementCreate, context: ContextDep, caller: AdminCaller
) -> AgreementPublic:
    """Create an agreement with its quota cells."""
    del caller
    return agreements.create_agreement(context, body)


@router.get("/agreements")
def list_agreements(context: ContextDep, caller: AdminCaller) -> list[AgreementPublic]:
    """List agreements, open and closed."""
    del caller
    return agreements.list_agreements(context)


@router.get("/agreements/{agreement_id}")
def get_agreement(
    agreement_id: str, context: ContextDep, caller: AdminCaller
) -> AgreementPublic:
    """Read an agreement with the live use of its quota cells."""
    del caller
    return agreements.get_agreement(context, agreement_id)


@router.patch("/agreements/{agreement_id}")
def update_agreement(
    agreement_id: str, body: AgreementUpdate, context: ContextDep, caller: AdminCaller
) -> AgreementPublic:
    """Change an agreement's terms."""
    del caller
    return agreements.update_agreement(context, agreement_id, body)


@router.post("/agreements/{agreement_id}:close")
def close_agreement(
    agreement_id: str, context: ContextDep, caller: AdminCaller
) -> AgreementPublic:
    """Close an agreement: no new shortlists in its corridor."""
    del caller
    return agreements.close_agreement(context, agreement_id)


@router.post("/quota-cells", status_code=status.HTTP_201_CREATED)
def create_quota_cell(
    body: QuotaCellCreate, context: ContextDep, caller: AdminCaller
) -> QuotaCellPublic:
    """Create a quota cell shared by the listed agreements."""
    del caller
    return agreements.create_quota_cell(context, body)


@router.get("/quota-cells")
def list_quota_cells(context: ContextDep, caller: AdminCaller) -> list[QuotaCellPublic]:
    """List quota cells with cap, use and load on open shortlists."""
    del caller
    return agreements.list_quota_cells(context)


@router.get("/quota-cells/{cell_id}")
def get_quota_cell(
    cell_id: str, context: ContextDep, caller: AdminCaller
) -> QuotaCellPublic:
    """Read a quota cell with its use."""
    del caller
    return agreements.get_quota_cell(context, cell_id)


@router.patch("/quota-cells/{cell_id}")
def update_quota_cell(
    cell_id: str, body: QuotaCellUpdate, context: ContextDep, caller: AdminCaller
) -> QuotaCellPublic:
    """Change a quota cell's cap or period."""
    del caller
    return agreements.update_quota_cell(context, cell_id, body)


@router.post("/quota-cells/{cell_id}:close")
def close_quota_cell(
    cell_id: str, context: ContextDep, caller: AdminCaller
) -> QuotaCellPublic:
    """Close a quota cell: no selection may use it any more."""
    del caller
    return agreements.close_quota_cell(context, cell_id)
