"""Audit trail and small helpers shared by the services."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any, cast

from sqlalchemy import CursorResult, Result
from sqlalchemy.orm import Session

from api.security import sha256_hex
from api.tables import AuditEvent

# Shortlist and round ids: a prefix and 24 random hex digits.
_ID_HEX_DIGITS = 24


def utc_now() -> dt.datetime:
    """Return the current time in UTC."""
    return dt.datetime.now(dt.UTC)


def new_id(prefix: str) -> str:
    """Return a random resource id such as ``sl_3f9a...``."""
    return f"{prefix}_{secrets.token_hex(_ID_HEX_DIGITS // 2)}"


def canonical_sha256(payload: Any) -> str:
    """Return the SHA-256 of ``payload`` as sorted, compact JSON."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_hex(text.encode())


def record_audit(
    session: Session, *, key_id: str, action: str, resource: str, input_sha256: str
) -> None:
    """Add an audit event to the caller's transaction."""
    session.add(
        AuditEvent(
            at=utc_now(),
            key_id=key_id,
            action=action,
            resource=resource[:300],
            input_sha256=input_sha256,
        )
    )


def rows_matched(result: Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE statement matched."""
    return cast(CursorResult[Any], result).rowcount
