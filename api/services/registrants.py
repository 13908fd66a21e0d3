"""Read and erase stored registrants."""

from __future__ import annotations

import json
import logging

from sqlalchemy import delete, select, update

from api.context import ServiceContext
from api.errors import NotFoundError
from api.schemas import RegistrantPublic, SkillEvidence
from api.services.audit import canonical_sha256, record_audit, rows_matched
from api.services.registry import bump_version
from api.tables import (
    CandidateRow,
    PlacementRow,
    RegistrantRow,
    RegistrantTombstone,
)

logger = logging.getLogger(__name__)


def get_registrant(
    context: ServiceContext, *, agency_id: str, external_id: str
) -> RegistrantPublic:
    """Return one of the agency's registrants, without name or birth date.

    Raises
    ------
    NotFoundError
        If the agency has no registrant with this external id.
    """
    with context.database.session() as session:
        row = session.scalars(
            select(RegistrantRow).where(
                RegistrantRow.agency_id == agency_id,
                RegistrantRow.external_id == external_id,
            )
        ).first()
        if row is None:
            raise NotFoundError("registrant", external_id)
        return RegistrantPublic(
            external_id=row.external_id,
            agency_id=row.agency_id,
            origin=row.origin,
            profile=json.loads(row.profile),
            skills=[SkillEvidence(**skill) for skill in json.loads(row.skills)],
            content_sha256=row.content_sha256,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def erase_registrant(
    context: ServiceContext, *, agency_id: str, external_id: str, key_id: str
) -> None:
    """Delete a registrant and their places on every shortlist.

    A placement the registrant held keeps the quota it used, with the link to
    the person removed.

    Raises
    ------
    NotFoundError
        If the agency has no registrant with this external id.
    """
    with context.database.write_session() as session:
        registrant_id = session.scalars(
            select(RegistrantRow.id).where(
                RegistrantRow.agency_id == agency_id,
                RegistrantRow.external_id == external_id,
            )
        ).first()
        if registrant_id is None:
            raise NotFoundError("registrant", external_id)
        version = bump_version(session)
        removed = rows_matched(
            session.execute(
                delete(CandidateRow).where(CandidateRow.registrant_id == registrant_id)
            )
        )
        session.execute(
            update(PlacementRow)
            .where(PlacementRow.registrant_id == registrant_id)
            .values(registrant_id=None)
        )
        session.execute(delete(RegistrantRow).where(RegistrantRow.id == registrant_id))
        session.add(RegistrantTombstone(registrant_id=registrant_id, version=version))
        record_audit(
            session,
            key_id=key_id,
            action="erasure",
            resource=f"registrant:{registrant_id}",
            input_sha256=canonical_sha256(
                {"agency": agency_id, "external_id": external_id}
            ),
        )
    logger.info(
        "erased registrant %d of agency %s; removed from %d shortlists",
        registrant_id,
        agency_id,
        removed,
    )
