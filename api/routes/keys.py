"""Routes for API keys (admin only)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import AdminCaller, ContextDep
from api.schemas import KeyCreate, KeyCreated, KeyPublic
from api.services import keys

router = APIRouter(prefix="/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(body: KeyCreate, context: ContextDep, caller: AdminCaller) -> KeyCreated:
    """Issue an API key; the response shows its secret once."""
    del caller
    return keys.create_key(context, body)


@router.get("")
def list_keys(context: ContextDep, caller: AdminCaller) -> list[KeyPublic]:
    """List API keys without their secrets."""
    del caller
    return keys.list_keys(context)


@router.delete("/{key_id}")
def revoke_key(key_id: str, context: ContextDep, caller: AdminCaller) -> KeyPublic:
    """Revoke an API key."""
    del caller
    return keys.revoke_key(context, key_id)
