"""Bulk upload of registrants: validate, normalise, upsert, batch by batch.

The body is read as a stream of byte lines (:class:`ChunkReader`), so memory
contains one batch at a time whatever the file size. For each batch of valid rows:

1. rows whose content hash matches the stored one are counted unchanged;
2. the rest are normalised and embedded by the engine's feature builder, each
   distinct skill text and title of the batch once;
3. names and birth dates are compared with other agencies' registrants;
4. the batch is written in one transaction: every row whole, with its vector
   and normalised skills in the same row, or none of them.

Step 4 runs in a writer thread while the next batch goes through steps 1 to 3,
so the database works while Python parses and normalises. At most one batch is
being written at a time, and batch ``k + 1`` is handed to the writer only after
batch ``k`` committed. A batch that fails to write therefore leaves the earlier
batches stored and no later one; sending the same file again stores the rest
and reports the earlier rows as unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz import fuzz, utils
from sqlalchemy import (
    Connection,
    Integer,
    bindparam,
    cast,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import ConflictError, PayloadTooLargeError
from api.schemas import ProbableDuplicate, RowProblem, UploadReport
from api.services.audit import record_audit, utc_now
from api.services.registrant_columns import VECTOR_DTYPE
from api.services.registry import bump_version
from api.tables import RegistrantRow
from matching.exceptions import RecordError
from matching.features import ResolutionMemo, ResolvedRegistrants, normalise_field
from matching.models import Registrant
from matching.readers import iter_byte_lines, iter_registrants

logger = logging.getLogger(__name__)

# Rows normalised per hold of the builder lock. A chunk of new free text can
# take seconds to embed, and a shortlist request waiting for the lock adds
# that to its latency. The memo resolves texts shared by chunks once.
RESOLVE_CHUNK_ROWS = 500

# Key space of the PostgreSQL advisory locks that allow one upload per agency
# at a time ("LMUP" in ASCII). The second key is the hash of the agency id.
UPLOAD_LOCK_CLASS = 0x4C4D5550

MEDIA_TYPE_FORMATS = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
}


class ChunkReader:
    """A binary stream with ``readline(limit)`` over an iterator of byte chunks.

    Counts the bytes read and raises :class:`PayloadTooLargeError` past
    ``max_bytes``; keeps a running SHA-256 of the body for the audit trail.
    """

    def __init__(self, chunks: Iterable[bytes], *, max_bytes: int) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = bytearray()
        self._start = 0
        self._finished = False
        self.max_bytes = max_bytes
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()

    def _fill(self) -> bool:
        if self._finished:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._finished = True
            return False
        self.bytes_read += len(chunk)
        if self.bytes_read > self.max_bytes:
            raise PayloadTooLargeError(self.max_bytes)
        self.sha256.update(chunk)
        if self._start > 0:
            del self._buffer[: self._start]
            self._start = 0
        self._buffer.extend(chunk)
        return True

    def readline(self, limit: int = -1) -> bytes:
        """Return the next line with its line break, at most ``limit`` bytes long."""
        while True:
            end = self._buffer.find(b"\n", self._start)
            available = len(self._buffer) - self._start
            if end >= 0 and (limit < 0 or end - self._start + 1 <= limit):
                return self._take(end + 1 - self._start)
            if 0 <= limit <= available:
                return self._take(limit)
            if not self._fill():
                return self._take(available)

    def _take(self, size: int) -> bytes:
        line = bytes(self._buffer[self._start : self._start + size])
        self._start += size
        return line


@dataclass
class _ReportBuilder:
    max_listed: int
    rows_read: int = 0
    accepted: int = 0
    updated: int = 0
    unchanged: int = 0
    batches: int = 0
    rejected_count: int = 0
    duplicates_count: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    duplicates: list[ProbableDuplicate] = field(default_factory=list)

    def reject(
        self,
        line: int | None,
        field_name: str | None,
        reason: str,
        external_id: str | None,
    ) -> None:
        self.rejected_count += 1
        if len(self.rejected) < self.max_listed:
            self.rejected.append(
                RowProblem(
                    line=line, field=field_name, reason=reason, external_id=external_id
                )
            )

    def flag_duplicate(self, duplicate: ProbableDuplicate) -> None:
        self.duplicates_count += 1
        if len(self.duplicates) < self.max_listed:
            self.duplicates.append(duplicate)


@dataclass(frozen=True)
class _PreparedRow:
    line: int
    registrant: Registrant
    content_sha256: str
    values: dict[str, Any]


def ingest_registrants(
    context: ServiceContext,
    *,
    agency_id: str,
    key_id: str,
    body: ChunkReader,
    fmt: str,
) -> UploadReport:
    """Store the registrants of an upload and report on every row.

    Raises
    ------
    ConflictError
        If another upload by the same agency is running; nothing is read.
    InputError
        If the file as a whole is unusable (empty, not comma-separated, a
        required column missing); nothing is stored.
    PayloadTooLargeError
        If the body exceeds ``max_upload_bytes``; batches already written stay.
    """
    started = time.perf_counter()
    report = _ReportBuilder(max_listed=context.settings.max_reported_row_errors)
    memo = _UploadMemo()
    with (
        agency_upload_lock(context, agency_id),
        _BatchWriter(context, agency_id, report) as writer,
    ):
        for batch in _valid_batches(context, agency_id, body, fmt, report):
            prepared = _prepare_batch(context, agency_id, batch, report, memo)
            if prepared:
                writer.submit(prepared)

    if report.accepted or report.updated:
        context.registry.refresh_in_background(context.database.session)
    body_sha256 = body.sha256.hexdigest()
    with context.database.session() as session:
        record_audit(
            session,
            key_id=key_id,
            action="upload",
            resource=f"agency:{agency_id}",
            input_sha256=body_sha256,
        )
    seconds = time.perf_counter() - started
    logger.info(
        "upload by agency %s: %d rows read, %d accepted, %d updated, %d unchanged, "
        "%d rejected, %d probable duplicates in %.2f s",
        agency_id,
        report.rows_read,
        report.accepted,
        report.updated,
        report.unchanged,
        report.rejected_count,
        report.duplicates_count,
        seconds,
    )
    return UploadReport(
        rows_read=report.rows_read,
        accepted=report.accepted,
        updated=report.updated,
        unchanged=report.unchanged,
        rejected_count=report.rejected_count,
        rejected=report.rejected,
        duplicates_count=report.duplicates_count,
        duplicates=report.duplicates,
        batches=report.batches,
        seconds=round(seconds, 3),
        body_sha256=body_sha256,
    )


@contextmanager
def agency_upload_lock(context: ServiceContext, agency_id: str) -> Iterator[None]:
    """Hold the agency's upload lock for the block, or raise if it is taken.

    Two uploads by one agency would insert the same (agency, external id)
    rows at once, and the second insert would fail on the unique constraint.
    A set in the context covers this process. On PostgreSQL a session-level
    advisory lock on a connection held for the upload covers other processes.

    Raises
    ------
    ConflictError
        If an upload by the agency is already running.
    """
    busy = ConflictError(
        f"an upload for agency '{agency_id}' is already in progress; send this "
        "file again when it has finished"
    )
    with context.upload_guard:
        if agency_id in context.uploads_in_progress:
            raise busy
        context.uploads_in_progress.add(agency_id)
    try:
        if not context.database.is_postgresql:
            # NOTE: SQLite uploads are serialised per process only; several
            # processes on one SQLite file can still collide.
            yield
            return
        with context.database.engine.connect() as connection:
            # Autocommit, so the connection holding the lock idles outside any
            # transaction while the upload runs.
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            # The (int4, int4) form of the lock functions, so the class is cast.
            key = (cast(UPLOAD_LOCK_CLASS, Integer), func.hashtext(agency_id))
            if not connection.execute(select(func.pg_try_advisory_lock(*key))).scalar():
                raise busy
            try:
                yield
            finally:
                connection.execute(select(func.pg_advisory_unlock(*key)))
    finally:
        with context.upload_guard:
            context.uploads_in_progress.discard(agency_id)


def content_sha256(registrant: Registrant) -> str:
    """Return the hash that decides whether an uploaded row changed."""
    return _sha256_of(registrant.model_dump_json())


def _sha256_of(content_json: str) -> str:
    return hashlib.sha256(content_json.encode()).hexdigest()


# The stored profile is the record's JSON without full_name and birth_date.
# pydantic writes fields in declaration order, and JSON strings escape every
# '"', so the text from ',"full_name":' up to the member after birth_date is
# exactly those two members. Cutting it out gives the same text as serialising
# again with both fields excluded. When the declaration order does not allow
# the cut, the record is serialised again.
_PERSONAL_FIELDS = ("full_name", "birth_date")
_REGISTRANT_FIELDS = list(Registrant.model_fields)
_PERSONAL_AT = _REGISTRANT_FIELDS.index("full_name")
_PROFILE_CUT = (
    (',"full_name":', f',"{_REGISTRANT_FIELDS[_PERSONAL_AT + 2]}":')
    if 0 < _PERSONAL_AT < len(_REGISTRANT_FIELDS) - 2
    and _REGISTRANT_FIELDS[_PERSONAL_AT + 1] == "birth_date"
    else None
)


def _profile_json(registrant: Registrant, content_json: str) -> str:
    """Return the registrant's JSON without its personal fields."""
    if _PROFILE_CUT is not None:
        start = content_json.find(_PROFILE_CUT[0])
        end = content_json.find(_PROFILE_CUT[1], start)
        if 0 < start < end:
            return content_json[:start] + content_json[end:]
    return registrant.model_dump_json(exclude=set(_PERSONAL_FIELDS))


def _valid_batches(
    context: ServiceContext,
    agency_id: str,
    body: ChunkReader,
    fmt: str,
    report: _ReportBuilder,
) -> Iterator[list[tuple[int, Registrant]]]:
    """Yield the valid rows of the body in batches; report the invalid ones."""
    batch_rows = context.settings.ingest_batch_rows
    batch: list[tuple[int, Registrant]] = []
    for item in iter_registrants(iter_byte_lines(body), fmt=fmt):
        report.rows_read += 1
        if isinstance(item, RecordError):
            report.reject(item.line, item.field, item.reason, item.record_id)
            continue
        line, registrant = item
        if registrant.agency_id != agency_id:
            report.reject(
                line,
                "agency_id",
                f"agency_id '{registrant.agency_id}' is not the agency of this API key "
                f"('{agency_id}'); an agency uploads its own registrants only",
                registrant.external_id,
            )
            continue
        batch.append(item)
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


class _BatchWriter:
    """Write prepared batches in a background thread, one at a time and in order.

    :meth:`submit` waits for the previous batch to commit and re-raises its
    error, so no batch is written after one that failed. Leaving the ``with``
    block waits for the last batch. When an error leaves the block, the batch
    in flight still commits or fails, a failure is logged, and the error
    propagates.
    """

    def __init__(
        self, context: ServiceContext, agency_id: str, report: _ReportBuilder
    ) -> None:
        self._context = context
        self._agency_id = agency_id
        self._report = report
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ingest-writer"
        )
        self._pending: Future[tuple[int, int]] | None = None

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        try:
            if exc is None:
                self._wait()
            elif self._pending is not None:
                failure = self._pending.exception()
                if failure is not None:
                    logger.error(
                        "upload by agency %s: writing a batch failed while the "
                        "upload was already failing: %r",
                        self._agency_id,
                        failure,
                    )
        finally:
            self._executor.shutdown(wait=True)

    def submit(self, prepared: list[_PreparedRow]) -> None:
        """Queue a batch once the previous one has committed."""
        self._wait()
        self._pending = self._executor.submit(
            write_batch, self._context, self._agency_id, prepared
        )

    def _wait(self) -> None:
        if self._pending is None:
            return
        pending, self._pending = self._pending, None
        accepted, updated = pending.result()
        self._report.accepted += accepted
        self._report.updated += updated
        self._report.batches += 1


def _prepare_batch(
    context: ServiceContext,
    agency_id: str,
    batch: list[tuple[int, Registrant]],
    report: _ReportBuilder,
    memo: _UploadMemo,
) -> list[_PreparedRow]:
    """Drop unchanged rows, normalise the rest and flag probable duplicates."""
    hashed = []
    for line, registrant in batch:
        content_json = registrant.model_dump_json()
        hashed.append((line, registrant, _sha256_of(content_json), content_json))
    with context.database.session() as session:
        stored = _stored_hashes(
            session, agency_id, [item[1].external_id for item in hashed]
        )
    changed = [item for item in hashed if stored.get(item[1].external_id) != item[2]]
    report.unchanged += len(hashed) - len(changed)
    if not changed:
        return []

    prepared = _prepare_rows(context, changed, memo)
    with context.database.session() as session:
        for duplicate in _find_duplicates(
            session, agency_id, prepared, context.settings.duplicate_name_min_similarity
        ):
            report.flag_duplicate(duplicate)
    return prepared


def _stored_hashes(
    session: Session, agency_id: str, external_ids: list[str]
) -> dict[str, str]:
    rows = session.execute(
        select(RegistrantRow.external_id, RegistrantRow.content_sha256).where(
            RegistrantRow.agency_id == agency_id,
            RegistrantRow.external_id.in_(external_ids),
        )
    ).all()
    return {row.external_id: row.content_sha256 for row in rows}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class _UploadMemo:
    """Matches and stored skill JSON, kept across the batches of one upload.

    Most skill texts and titles recur across batches. Keeping them for one
    upload only means a change to the normaliser between uploads is never
    masked. Each map is emptied when it passes ``max_entries``, which bounds
    the memory they take.
    """

    max_entries: int = 100_000
    resolution: ResolutionMemo = field(default_factory=ResolutionMemo)
    skill_json: dict[str, str] = field(default_factory=dict)

    def trim(self) -> None:
        if len(self.resolution) > self.max_entries:
            self.resolution.clear()
        if len(self.skill_json) > self.max_entries:
            self.skill_json.clear()


def _prepare_rows(
    context: ServiceContext,
    changed: list[tuple[int, Registrant, str, str]],
    memo: _UploadMemo,
) -> list[_PreparedRow]:
    """Normalise and embed the changed rows, taking the builder lock per chunk.

    Shortlist requests need the same lock to build a vacancy profile, so it
    is released every ``RESOLVE_CHUNK_ROWS`` rows instead of once a batch.
    """
    prepared = []
    for start in range(0, len(changed), RESOLVE_CHUNK_ROWS):
        prepared += _prepare_chunk(
            context, changed[start : start + RESOLVE_CHUNK_ROWS], memo
        )
    return prepared


def _prepare_chunk(
    context: ServiceContext,
    changed: list[tuple[int, Registrant, str, str]],
    memo: _UploadMemo,
) -> list[_PreparedRow]:
    registrants = [item[1] for item in changed]
    memo.trim()
    with context.builder_lock:
        resolved = context.engine.builder.resolve_registrants(
            registrants, memo=memo.resolution
        )
    skills_json = _skills_json(resolved, memo.skill_json)
    keys_json = _skill_keys_json(resolved)
    vectors = resolved.vectors.astype(VECTOR_DTYPE, copy=False)
    prepared = []
    for row, (line, registrant, digest, content_json) in enumerate(changed):
        other_features = {
            "occupations": [
                [code, claim.years_experience]
                for claim, code in zip(
                    registrant.occupations, resolved.occupation_codes[row], strict=True
                )
                if code is not None
            ],
            # ESCO occupation and normalisation confidence of each mapped
            # claim, for the occupation_match score component.
            "occupation_matches": [
                [match.uri, float(match.confidence)]
                for match in resolved.occupation_matches[row]
                if match.uri is not None
            ],
            "languages": [
                [
                    certificate.language,
                    certificate.rank,
                    certificate.test_date.toordinal(),
                ]
                for certificate in registrant.languages
                if certificate.test_date is not None
            ],
            "qualifications": [
                [item.level, normalise_field(item.field), item.issuing_country]
                for item in registrant.qualifications
            ],
            "consent": registrant.consent,
            "available_day": registrant.available_from.toordinal(),
        }
        # The skill keys are JSON already; the other features follow them.
        features = '{"skills":' + keys_json[row] + "," + _dumps(other_features)[1:]
        values = {
            "agency_id": registrant.agency_id,
            "external_id": registrant.external_id,
            "origin": registrant.origin,
            "content_sha256": digest,
            "profile": _profile_json(registrant, content_json),
            "features": features,
            "skills": skills_json[row],
            "vector": vectors[row].tobytes(),
            "full_name": registrant.full_name,
            "birth_date": registrant.birth_date,
        }
        prepared.append(_PreparedRow(line, registrant, digest, values))
    return prepared


def _join_per_row(
    fragments: list[str], entries: np.ndarray, indptr: np.ndarray
) -> list[str]:
    """Return, per row, a JSON array of the ``fragments`` its entries point to."""
    table = np.array(fragments, dtype=object)
    flat = table[entries].tolist() if entries.size else []
    bounds = indptr.tolist()
    return [
        "[" + ",".join(flat[start:stop]) + "]"
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def _skills_json(resolved: ResolvedRegistrants, known: dict[str, str]) -> list[str]:
    """Return, per row, each skill as given and as normalised, as a JSON array.

    ``known`` maps skill texts to their JSON object from earlier batches and
    is extended here.
    """
    fragments = []
    for text, match in zip(
        resolved.skill_texts, resolved.skill_text_matches, strict=True
    ):
        fragment = known.get(text)
        if fragment is None:
            fragment = known[text] = _dumps(
                {
                    "raw": match.raw,
                    "uri": match.uri,
                    "label": match.label,
                    "confidence": float(match.confidence),
                    "method": match.method,
                }
            )
        fragments.append(fragment)
    return _join_per_row(fragments, resolved.skill_entries, resolved.skill_indptr)


def _skill_keys_json(resolved: ResolvedRegistrants) -> list[str]:
    """Return, per row, its distinct skill keys in the order given, as a JSON array."""
    indptr, keys = resolved.distinct_skill_keys()
    fragments = [_dumps(key) for key in resolved.skill_keys]
    return _join_per_row(fragments, keys, indptr)


def _find_duplicates(
    session: Session,
    agency_id: str,
    prepared: list[_PreparedRow],
    min_similarity: float,
) -> list[ProbableDuplicate]:
    named = [
        item
        for item in prepared
        if item.registrant.full_name and item.registrant.birth_date is not None
    ]
    if not named:
        return []
    dates = sorted(
        {item.registrant.birth_date for item in named if item.registrant.birth_date}
    )
    others = session.execute(
        select(
            RegistrantRow.agency_id, RegistrantRow.full_name, RegistrantRow.birth_date
        ).where(
            RegistrantRow.birth_date.in_(dates),
            RegistrantRow.agency_id != agency_id,
            RegistrantRow.full_name.is_not(None),
        )
    ).all()
    by_date: dict[Any, list[Any]] = {}
    for other in others:
        by_date.setdefault(other.birth_date, []).append(other)
    duplicates = []
    for item in named:
        for other in by_date.get(item.registrant.birth_date, []):
            similarity = fuzz.token_sort_ratio(
                item.registrant.full_name,
                other.full_name,
                processor=utils.default_process,  # type: ignore[arg-type]
            )
            if similarity >= min_similarity:
                duplicates.append(
                    ProbableDuplicate(
                        line=item.line,
                        external_id=item.registrant.external_id,
                        other_agency_id=other.agency_id,
                        similarity=round(float(similarity), 1),
                    )
                )
    return duplicates


def write_batch(
    context: ServiceContext, agency_id: str, prepared: list[_PreparedRow]
) -> tuple[int, int]:
    """Upsert prepared rows in one transaction: every row whole, or none.

    Returns
    -------
    accepted, updated
        Rows inserted and rows updated.
    """
    external_ids = [item.registrant.external_id for item in prepared]
    with context.database.write_session() as session:
        version = bump_version(session)
        existing = _stored_ids(session, agency_id, external_ids)
        new_rows = [
            item for item in prepared if item.registrant.external_id not in existing
        ]
        changed_rows = [
            (existing[item.registrant.external_id], item)
            for item in prepared
            if item.registrant.external_id in existing
        ]
        write_rows(session, new_rows, changed_rows, version=version)
    return len(new_rows), len(changed_rows)


def write_rows(
    session: Session,
    new_rows: list[_PreparedRow],
    changed_rows: list[tuple[int, _PreparedRow]],
    *,
    version: int,
) -> None:
    """Insert new registrants and rewrite changed ones in the caller's transaction.

    A batch has thousands of rows, so no ORM objects are made: new rows go in
    with one ``COPY`` on PostgreSQL and with a Core executemany ``INSERT`` on
    SQLite, and changed rows with a Core executemany ``UPDATE``.
    """
    now = utc_now()
    # Statements run on the connection take the Core executemany path.
    connection = session.connection()
    if new_rows and connection.dialect.name == "postgresql":
        _copy_new_rows(connection, new_rows, version=version, now=now)
    elif new_rows:
        connection.execute(
            insert(RegistrantRow),
            [
                {
                    **item.values,
                    "version": version,
                    "created_at": now,
                    "updated_at": now,
                }
                for item in new_rows
            ],
        )
    if changed_rows:
        columns: dict[str, Any] = {
            name: bindparam(f"new_{name}") for name in _UPDATED_COLUMNS
        }
        connection.execute(
            update(RegistrantRow)
            .where(RegistrantRow.id == bindparam("row_id"))
            .values(**columns),
            [
                {
                    "row_id": registrant_id,
                    **{f"new_{name}": item.values[name] for name in _CHANGING_VALUES},
                    "new_version": version,
                    "new_updated_at": now,
                }
                for registrant_id, item in changed_rows
            ],
        )


# Columns an update rewrites; agency_id and external_id identify the row.
_CHANGING_VALUES = (
    "origin",
    "content_sha256",
    "profile",
    "features",
    "skills",
    "vector",
    "full_name",
    "birth_date",
)
_UPDATED_COLUMNS = (*_CHANGING_VALUES, "version", "updated_at")
_INSERTED_VALUES = ("agency_id", "external_id", *_CHANGING_VALUES)


def _copy_new_rows(
    connection: Connection,
    new_rows: list[_PreparedRow],
    *,
    version: int,
    now: Any,
) -> None:
    """Insert rows with PostgreSQL ``COPY ... FROM STDIN`` in the open transaction."""
    columns = ", ".join((*_INSERTED_VALUES, "version", "created_at", "updated_at"))
    statement = f"COPY {RegistrantRow.__tablename__} ({columns}) FROM STDIN"
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None, "the connection is checked out"
    with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
        for item in new_rows:
            values = item.values
            copy.write_row(
                (*(values[name] for name in _INSERTED_VALUES), version, now, now)
            )


def _stored_ids(
    session: Session, agency_id: str, external_ids: list[str]
) -> dict[str, int]:
    rows = session.execute(
        select(RegistrantRow.external_id, RegistrantRow.id).where(
            RegistrantRow.agency_id == agency_id,
            RegistrantRow.external_id.in_(external_ids),
        )
    ).all()
    return {external_id: registrant_id for external_id, registrant_id in rows}
