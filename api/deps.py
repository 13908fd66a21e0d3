"""Dependencies shared by the routers: the app context and the calling key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api.context import ServiceContext
from api.errors import AuthenticationError, PermissionDeniedError
from api.security import StoredKey, key_id_of, verify_key
from api.tables import ApiKey

API_KEY_HEADER = "X-API-Key"

_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="API key issued by an administrator (POST /v1/keys).",
)


@dataclass(frozen=True)
class Caller:
    """The API key behind a request: its id, role and tenant."""

    key_id: str
    role: str
    tenant_id: str | None

    @property
    def tenant(self) -> str:
        """The agency or employer id of a tenant key."""
        assert self.tenant_id is not None, "tenant keys are created with a tenant id"
        return self.tenant_id


def get_context(request: Request) -> ServiceContext:
    """Return the app's shared context."""
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def get_caller(
    context: ContextDep, api_key: Annotated[str | None, Depends(_api_key_header)]
) -> Caller:
    """Authenticate the request by its ``X-API-Key`` header."""
    if not api_key:
        raise AuthenticationError(
            f"missing {API_KEY_HEADER} header; send the API key an administrator issued"
        )
    key_id = key_id_of(api_key)
    with context.database.session() as session:
        row = session.get(ApiKey, key_id)
        stored = (
            StoredKey(id=row.id, salt=row.salt, secret_sha256=row.secret_sha256)
            if row is not None and row.revoked_at is None
            else None
        )
        caller = (
            Caller(key_id=key_id, role=row.role, tenant_id=row.tenant_id)
            if row
            else None
        )
    if stored is None or caller is None or not verify_key(api_key, stored):
        raise AuthenticationError(
            f"invalid or revoked API key in the {API_KEY_HEADER} header; "
            "ask an administrator for a key"
        )
    return caller


def require_role(*roles: str) -> Callable[[Caller], Caller]:
    """Return a dependency that admits keys of the given roles only."""

    def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if caller.role not in roles:
            raise PermissionDeniedError(
                f"this route needs a key with role {' or '.join(roles)}; "
                f"key '{caller.key_id}' has role {caller.role}"
            )
        return caller

    return check


AdminCaller = Annotated[Caller, Depends(require_role("admin"))]
AgencyCaller = Annotated[Caller, Depends(require_role("agency"))]
EmployerCaller = Annotated[Caller, Depends(require_role("employer"))]
EmployerOrAdminCaller = Annotated[Caller, Depends(require_role("employer", "admin"))]
