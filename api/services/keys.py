"""Issue, list and revoke API keys; create the first admin key."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import func, select

from api.context import ServiceContext
from api.db import Database
from api.errors import ConflictError, InvalidRequestError, NotFoundError
from api.schemas import KeyCreate, KeyCreated, KeyPublic
from api.security import generate_key, hash_key
from api.services.audit import utc_now
from api.tables import ApiKey, ServiceState

logger = logging.getLogger(__name__)

PSEUDONYM_SECRET_NAME = "pseudonym_secret"


def _public(row: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=row.id,
        role=row.role,
        tenant_id=row.tenant_id,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _store_key(
    database: Database, key: str, *, role: str, tenant_id: str | None, name: str
) -> ApiKey:
    stored = hash_key(key)
    row = ApiKey(
        id=stored.id,
        salt=stored.salt,
        secret_sha256=stored.secret_sha256,
        role=role,
        tenant_id=tenant_id,
        name=name,
        created_at=utc_now(),
    )
    with database.session() as session:
        session.add(row)
    return row


def create_key(context: ServiceContext, body: KeyCreate) -> KeyCreated:
    """Issue a key; the response is the only place its secret appears.

    Raises
    ------
    InvalidRequestError
        If an agency or employer key has no tenant id, or an admin key has one.
    """
    if body.role == "admin" and body.tenant_id is not None:
        raise InvalidRequestError("tenant_id must be left out for an admin key")
    if body.role != "admin" and body.tenant_id is None:
        raise InvalidRequestError(
            f"tenant_id is missing; a {body.role} key acts for one {body.role}, "
            f"so give its {body.role}_id"
        )
    key = generate_key()
    row = _store_key(
        context.database, key, role=body.role, tenant_id=body.tenant_id, name=body.name
    )
    logger.info("issued %s key %s for tenant %s", row.role, row.id, row.tenant_id)
    return KeyCreated(key=key, **_public(row).model_dump())


def list_keys(context: ServiceContext) -> list[KeyPublic]:
    """Return every key, revoked ones included, without secrets."""
    with context.database.session() as session:
        rows = session.scalars(
            select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        ).all()
        return [_public(row) for row in rows]


def revoke_key(context: ServiceContext, key_id: str) -> KeyPublic:
    """Revoke a key; the last active admin key cannot be revoked.

    Raises
    ------
    NotFoundError, ConflictError
    """
    with context.database.write_session() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFoundError("API key", key_id)
        if row.revoked_at is None and row.role == "admin":
            active_admins = session.scalar(
                select(func.count()).where(
                    ApiKey.role == "admin", ApiKey.revoked_at.is_(None)
                )
            )
            if active_admins == 1:
                raise ConflictError(
                    f"API key '{key_id}' is the last active admin key; issue another "
                    "admin key before revoking it"
                )
        if row.revoked_at is None:
            row.revoked_at = utc_now()
        logger.info("revoked %s key %s", row.role, row.id)
        return _public(row)


def bootstrap_admin_key(database: Database, configured_key: str | None) -> None:
    """Create the first admin key when the database has no key at all.

    The configured key is stored as given and never logged. Without one, a
    key is generated and written to the log once, as the only way to reach it.
    """
    with database.session() as session:
        has_keys = session.scalar(select(func.count()).select_from(ApiKey))
    if has_keys:
        return
    key = configured_key or generate_key()
    row = _store_key(
        database, key, role="admin", tenant_id=None, name="bootstrap admin"
    )
    if configured_key:
        logger.info("stored admin key %s from LABOURMATCH_BOOTSTRAP_ADMIN_KEY", row.id)
    else:
        logger.warning(
            "created the first admin API key (shown once, store it now): %s", key
        )


def load_pseudonym_secret(database: Database, configured: str | None) -> bytes:
    """Return the pseudonym key: the configured one, else one kept in the database."""
    if configured:
        return configured.encode()
    with database.session() as session:
        row = session.get(ServiceState, PSEUDONYM_SECRET_NAME)
        if row is None:
            row = ServiceState(name=PSEUDONYM_SECRET_NAME, value=secrets.token_hex(32))
            session.add(row)
        return row.value.encode()
