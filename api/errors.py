"""Service errors and the one place that maps every handled error to HTTP.

Each condition has one status and one wording on every route:

=====================  ======  ===================  ================================
condition              status  code                 message names
=====================  ======  ===================  ================================
missing or bad key     401     unauthenticated      the header
role not allowed       403     forbidden            the role needed and the key id
resource not found     404     not_found            the kind and id
quota cell full        409     quota_exceeded       the cell, its cap and use
already placed         409     already_placed       the candidate
other conflict         409     conflict             the resource
client disconnected    400     client_disconnected  none (the client is gone; logged)
body too large         413     payload_too_large    the limit in bytes
wrong content type     415     unsupported_media    the type and the allowed ones
invalid input          422     invalid_input        the field or line
solver failure         500     solver_failed        the vacancy or round
=====================  ======  ===================  ================================

A tenant asking for another tenant's resource gets the same 404 as for one
that does not exist, so existence does not leak.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from matching.exceptions import InputError, SolverError

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """Base of the errors routes raise on purpose; carries status and code."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationError(ServiceError):
    """Raise when the request carries no API key or an unknown or revoked one."""

    status_code = 401
    code = "unauthenticated"


class PermissionDeniedError(ServiceError):
    """Raise when the key's role may not use the route."""

    status_code = 403
    code = "forbidden"


class NotFoundError(ServiceError):
    """Raise when a resource does not exist or belongs to another tenant."""

    status_code = 404
    code = "not_found"

    def __init__(self, kind: str, resource_id: object) -> None:
        super().__init__(f"{kind} '{resource_id}' not found")
        self.kind = kind
        self.resource_id = resource_id


class ConflictError(ServiceError):
    """Raise when the request conflicts with the current state of a resource."""

    status_code = 409
    code = "conflict"


class QuotaExceededError(ConflictError):
    """Raise when a selection would take a quota cell past its cap."""

    code = "quota_exceeded"

    def __init__(self, cell_id: str, *, cap: int, used: int, requested: int) -> None:
        super().__init__(
            f"quota cell '{cell_id}' has {max(cap - used, 0)} of its cap {cap} left "
            f"({used} used), but the selection needs {requested}; nothing was recorded"
        )
        self.cell_id = cell_id


class AlreadyPlacedError(ConflictError):
    """Raise when a selected candidate already has a placement."""

    code = "already_placed"

    def __init__(self, candidate_id: str) -> None:
        super().__init__(
            f"candidate '{candidate_id}' is already placed; nothing was recorded"
        )
        self.candidate_id = candidate_id


class PayloadTooLargeError(ServiceError):
    """Raise when a request body exceeds ``max_upload_bytes``."""

    status_code = 413
    code = "payload_too_large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(
            f"request body exceeds max_upload_bytes ({limit_bytes} bytes); split the "
            "file and send the parts one after another"
        )


class UnsupportedMediaTypeError(ServiceError):
    """Raise when the Content-Type of an upload is not one the route reads."""

    status_code = 415
    code = "unsupported_media"


class InvalidRequestError(ServiceError):
    """Raise when a request is well-formed JSON but breaks a domain rule."""

    status_code = 422
    code = "invalid_input"


def _respond(
    request: Request, status_code: int, code: str, detail: Any, message: str
) -> JSONResponse:
    level = logging.WARNING if status_code >= 500 else logging.INFO
    logger.log(
        level,
        "%s %s failed with %d %s: %s",
        request.method,
        request.url.path,
        status_code,
        code,
        message,
    )
    return JSONResponse(
        status_code=status_code, content={"detail": detail, "code": code}
    )


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return _respond(
        request, error.status_code, error.code, error.message, error.message
    )


async def _input_error(request: Request, error: Exception) -> JSONResponse:
    message = str(error)
    return _respond(request, 422, InvalidRequestError.code, message, message)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError | ValidationError)
    problems = error.errors()
    detail = jsonable_encoder(problems, exclude={"input", "url", "ctx"})
    first = problems[0] if problems else {}
    location = ".".join(str(part) for part in first.get("loc", ()))
    message = f"{location}: {first.get('msg', 'invalid')}"
    return _respond(request, 422, InvalidRequestError.code, detail, message)


async def _client_disconnect(request: Request, error: Exception) -> JSONResponse:
    # The client is gone and never reads this response; the handler logs the event.
    message = "the client disconnected before the request body ended"
    return _respond(request, 400, "client_disconnected", message, message)


async def _solver_error(request: Request, error: Exception) -> JSONResponse:
    message = f"the solver failed: {error}"
    return _respond(request, 500, "solver_failed", message, message)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn handled errors into JSON responses."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ValidationError, _validation_error)
    app.add_exception_handler(SolverError, _solver_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
