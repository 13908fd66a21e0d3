"""Routes for registrants (agency keys, each agency its own registrants only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Request, Response, status

from api.deps import AgencyCaller, ContextDep
from api.errors import PayloadTooLargeError, UnsupportedMediaTypeError
from api.schemas import RegistrantPublic, UploadReport
from api.services import registrants
from api.services.ingest import MEDIA_TYPE_FORMATS, ChunkReader, ingest_registrants

router = APIRouter(prefix="/registrants", tags=["registrants"])

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
    },
}


def _format_of(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = MEDIA_TYPE_FORMATS.get(media_type)
    if fmt is None:
        raise UnsupportedMediaTypeError(
            f"Content-Type '{media_type or 'none'}' is not accepted; send "
            f"{' or '.join(MEDIA_TYPE_FORMATS)}"
        )
    return fmt


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(limit)


def _pull_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Yield body chunks in a worker thread, each fetched on the event loop."""

    async def next_chunk() -> bytes:
        return await stream.__anext__()

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


@router.post(
    ":bulk",
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={413: {"description": "Body larger than max_upload_bytes"}},
)
async def upload_registrants(
    request: Request, context: ContextDep, caller: AgencyCaller
) -> UploadReport:
    """Load registrants from a streamed CSV or JSON Lines body; report each row."""
    fmt = _format_of(request)
    limit = context.settings.max_upload_bytes
    _check_declared_length(request, limit)
    body = ChunkReader(_pull_chunks(request.stream()), max_bytes=limit)
    report: UploadReport = await anyio.to_thread.run_sync(
        lambda: ingest_registrants(
            context, agency_id=caller.tenant, key_id=caller.key_id, body=body, fmt=fmt
        )
    )
    return report


@router.get("/{external_id}")
def get_registrant(
    external_id: str, context: ContextDep, caller: AgencyCaller
) -> RegistrantPublic:
    """Read one of the agency's registrants (never with name or birth date)."""
    return registrants.get_registrant(
        context, agency_id=caller.tenant, external_id=external_id
    )


@router.delete("/{external_id}", status_code=status.HTTP_204_NO_CONTENT)
def erase_registrant(
    external_id: str, context: ContextDep, caller: AgencyCaller
) -> Response:
    """Erase a registrant and remove them from every shortlist."""
    registrants.erase_registrant(
        context, agency_id=caller.tenant, external_id=external_id, key_id=caller.key_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
