"""Administer bilateral agreements and their quota cells.

A quota cell id names one cell however many agreements list it, as in a
destination's programme-wide cap shared by several origins; its use is kept
once, on the cell row. Every change is checked against all open agreements
with :class:`matching.eligibility.AgreementIndex`, so two agreements of one
corridor never overlap in time.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import ConflictError, NotFoundError
from api.schemas import (
    AgreementPublic,
    AgreementUpdate,
    QuotaCellCreate,
    QuotaCellPublic,
    QuotaCellUpdate,
)
from api.services.audit import utc_now
from api.services.market import agreement_model, load_agreements, load_open_candidates
from api.tables import AgreementCell, AgreementRow, QuotaCellRow
from matching.eligibility import AgreementIndex
from matching.models import BilateralAgreement, QuotaCell


def _check_consistent(session: Session) -> None:
    try:
        AgreementIndex(load_agreements(session))
    except ValueError as error:
        raise ConflictError(str(error)) from error


def _terms_json(agreement: BilateralAgreement) -> str:
    return json.dumps(agreement.model_dump(mode="json", exclude={"quota_cells"}))


def _cells_of(session: Session, agreement_id: str) -> list[QuotaCellRow]:
    return list(
        session.scalars(
            select(QuotaCellRow)
            .join(AgreementCell, AgreementCell.cell_id == QuotaCellRow.id)
            .where(AgreementCell.agreement_id == agreement_id)
        )
    )


def _agreement_public(session: Session, row: AgreementRow) -> AgreementPublic:
    agreement = agreement_model(row, _cells_of(session, row.id))
    return AgreementPublic(
        agreement=agreement.model_dump(mode="json"),
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )


def _get_agreement_row(session: Session, agreement_id: str) -> AgreementRow:
    row = session.get(AgreementRow, agreement_id)
    if row is None:
        raise NotFoundError("agreement", agreement_id)
    return row


def create_agreement(
    context: ServiceContext, agreement: BilateralAgreement
) -> AgreementPublic:
    """Store an agreement and its quota cells, reusing cells that already exist.

    Raises
    ------
    ConflictError
        If the id is taken, a shared cell is declared differently from the
        stored one, or the agreement overlaps another of its corridor.
    """
    now = utc_now()
    with context.database.write_session() as session:
        if session.get(AgreementRow, agreement.id) is not None:
            raise ConflictError(f"agreement '{agreement.id}' already exists")
        row = AgreementRow(
            id=agreement.id,
            origin=agreement.origin,
            destination=agreement.destination,
            valid_from=agreement.valid_from,
            valid_to=agreement.valid_to,
            terms=_terms_json(agreement),
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        for cell in agreement.quota_cells:
            _add_or_reuse_cell(session, cell, now)
        # No relationship() ties the link rows to their parents, so the parents
        # are flushed first for the foreign keys.
        session.flush()
        session.add_all(
            AgreementCell(agreement_id=agreement.id, cell_id=cell.id)
            for cell in agreement.quota_cells
        )
        session.flush()
        _check_consistent(session)
        return _agreement_public(session, row)


def _add_or_reuse_cell(session: Session, cell: QuotaCell, now: Any) -> None:
    stored = session.get(QuotaCellRow, cell.id)
    if stored is None:
        session.add(
            QuotaCellRow(
                id=cell.id,
                sector=cell.sector,
                isco_prefix=cell.isco_prefix,
                cap=cell.cap,
                used=cell.used,
                period_start=cell.period_start,
                period_end=cell.period_end,
                created_at=now,
                updated_at=now,
            )
        )
        return
    same = (
        stored.sector == cell.sector
        and stored.isco_prefix == cell.isco_prefix
        and stored.cap == cell.cap
        and stored.period_start == cell.period_start
        and stored.period_end == cell.period_end
    )
    if not same:
        raise ConflictError(
            f"quota cell '{cell.id}' already exists with cap {stored.cap}, sector "
            f"{stored.sector}, ISCO {stored.isco_prefix} and period "
            f"{stored.period_start}..{stored.period_end}; a shared cell must be "
            "declared the same way in every agreement"
        )


def list_agreements(context: ServiceContext) -> list[AgreementPublic]:
    """Return every agreement, open or closed."""
    with context.database.session() as session:
        rows = session.scalars(select(AgreementRow).order_by(AgreementRow.id)).all()
        return [_agreement_public(session, row) for row in rows]


def get_agreement(context: ServiceContext, agreement_id: str) -> AgreementPublic:
    """Return one agreement with the live use of its cells."""
    with context.database.session() as session:
        return _agreement_public(session, _get_agreement_row(session, agreement_id))


def update_agreement(
    context: ServiceContext, agreement_id: str, changes: AgreementUpdate
) -> AgreementPublic:
    """Change an agreement's terms and check them again.

    Raises
    ------
    NotFoundError, ConflictError, pydantic.ValidationError
    """
    with context.database.write_session() as session:
        row = _get_agreement_row(session, agreement_id)
        current = agreement_model(row, _cells_of(session, agreement_id))
        merged = {
            **current.model_dump(mode="json"),
            **changes.model_dump(mode="json", exclude_unset=True),
        }
        agreement = BilateralAgreement.model_validate(merged)
        row.valid_from = agreement.valid_from
        row.valid_to = agreement.valid_to
        row.terms = _terms_json(agreement)
        row.updated_at = utc_now()
        session.flush()
        _check_consistent(session)
        return _agreement_public(session, row)


def close_agreement(context: ServiceContext, agreement_id: str) -> AgreementPublic:
    """Close an agreement; its corridor gets no more shortlists from it."""
    with context.database.session() as session:
        row = _get_agreement_row(session, agreement_id)
        if row.closed_at is None:
            row.closed_at = row.updated_at = utc_now()
        return _agreement_public(session, row)


def _cell_public(session: Session, cell: QuotaCellRow, on_open: int) -> QuotaCellPublic:
    agreement_ids = session.scalars(
        select(AgreementCell.agreement_id)
        .where(AgreementCell.cell_id == cell.id)
        .order_by(AgreementCell.agreement_id)
    ).all()
    return QuotaCellPublic(
        id=cell.id,
        sector=cell.sector,
        isco_prefix=cell.isco_prefix,
        cap=cell.cap,
        used=cell.used,
        remaining=max(cell.cap - cell.used, 0) if cell.closed_at is None else 0,
        on_open_shortlists=on_open,
        period_start=cell.period_start,
        period_end=cell.period_end,
        agreement_ids=list(agreement_ids),
        closed_at=cell.closed_at,
    )


def _get_cell_row(session: Session, cell_id: str) -> QuotaCellRow:
    cell = session.get(QuotaCellRow, cell_id)
    if cell is None:
        raise NotFoundError("quota cell", cell_id)
    return cell


def create_quota_cell(
    context: ServiceContext, body: QuotaCellCreate
) -> QuotaCellPublic:
    """Add a quota cell to one or more agreements.

    Raises
    ------
    NotFoundError, ConflictError, pydantic.ValidationError
    """
    cell = QuotaCell.model_validate(body.model_dump(exclude={"agreement_ids"}))
    now = utc_now()
    with context.database.write_session() as session:
        if session.get(QuotaCellRow, cell.id) is not None:
            raise ConflictError(f"quota cell '{cell.id}' already exists")
        for agreement_id in body.agreement_ids:
            _get_agreement_row(session, agreement_id)
        _add_or_reuse_cell(session, cell, now)
        session.flush()
        for agreement_id in dict.fromkeys(body.agreement_ids):
            session.add(AgreementCell(agreement_id=agreement_id, cell_id=cell.id))
        session.flush()
        _check_consistent(session)
        return _cell_public(session, _get_cell_row(session, cell.id), 0)


def list_quota_cells(context: ServiceContext) -> list[QuotaCellPublic]:
    """Return every quota cell with its use and its load on open shortlists."""
    with context.database.session() as session:
        load = load_open_candidates(session)
        cells = session.scalars(select(QuotaCellRow).order_by(QuotaCellRow.id)).all()
        return [
            _cell_public(session, cell, load.per_cell.get(cell.id, 0)) for cell in cells
        ]


def get_quota_cell(context: ServiceContext, cell_id: str) -> QuotaCellPublic:
    """Return one quota cell with its use."""
    with context.database.session() as session:
        cell = _get_cell_row(session, cell_id)
        load = load_open_candidates(session)
        return _cell_public(session, cell, load.per_cell.get(cell.id, 0))


def update_quota_cell(
    context: ServiceContext, cell_id: str, changes: QuotaCellUpdate
) -> QuotaCellPublic:
    """Change a cell's cap or period. A cap below the use blocks new selections."""
    with context.database.write_session() as session:
        cell = _get_cell_row(session, cell_id)
        values = changes.model_dump(exclude_unset=True)
        QuotaCell.model_validate(
            {
                "id": cell.id,
                "sector": cell.sector,
                "isco_prefix": cell.isco_prefix,
                "cap": values.get("cap", cell.cap),
                "used": cell.used,
                "period_start": values.get("period_start", cell.period_start),
                "period_end": values.get("period_end", cell.period_end),
            }
        )
        for name, value in values.items():
            setattr(cell, name, value)
        cell.updated_at = utc_now()
        session.flush()
        load = load_open_candidates(session)
        return _cell_public(session, cell, load.per_cell.get(cell.id, 0))


def close_quota_cell(context: ServiceContext, cell_id: str) -> QuotaCellPublic:
    """Close a cell: no selection may use it any more."""
    with context.database.write_session() as session:
        cell = _get_cell_row(session, cell_id)
        if cell.closed_at is None:
            cell.closed_at = cell.updated_at = utc_now()
        load = load_open_candidates(session)
        return _cell_public(session, cell, load.per_cell.get(cell.id, 0))
