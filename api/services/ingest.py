"""Bulk upload of registrants: validate, normalise, upsert, batch by batch.

The body is read as a stream of byte lines (:class:`ChunkReader`), so memory
contains one batch at a time whatever the file size. For each batch of valid rows:

1. rows whose content hash matches the stored one are counted unchanged;
2. the rest are normalised and embedded by the engine's feature builder;
3. names and birth dates are compared with other agencies' registrants;
4. the batch is written in one transaction: every row whole, with its vector
   and normalised skills in the same row, or none of them.

A batch that fails to write leaves the earlier batches stored; sending the same
file again stores the rest and reports the earlier rows as unchanged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz, utils
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from api.context import ServiceContext
from api.errors import PayloadTooLargeError
from api.schemas import ProbableDuplicate, RowProblem, UploadReport
from api.services.audit import record_audit, utc_now
from api.services.registry import VECTOR_DTYPE, bump_version
from api.tables import RegistrantRow
from matching.exceptions import RecordError
from matching.features import normalise_field
from matching.models import Registrant
from matching.readers import iter_byte_lines, iter_registrants

logger = logging.getLogger(__name__)

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
    InputError
        If the file as a whole is unusable (empty, not comma-separated, a
        required column missing); nothing is stored.
    PayloadTooLargeError
        If the body exceeds ``max_upload_bytes``; batches already written stay.
    """
    started = time.perf_counter()
    settings = context.settings
    report = _ReportBuilder(max_listed=settings.max_reported_row_errors)
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
        if len(batch) >= settings.ingest_batch_rows:
            _store_batch(context, agency_id, batch, report)
            batch = []
    if batch:
        _store_batch(context, agency_id, batch, report)

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


def content_sha256(registrant: Registrant) -> str:
    """Return the hash that decides whether an uploaded row changed."""
    return hashlib.sha256(registrant.model_dump_json().encode()).hexdigest()


def _store_batch(
    context: ServiceContext,
    agency_id: str,
    batch: list[tuple[int, Registrant]],
    report: _ReportBuilder,
) -> None:
    hashed = [
        (line, registrant, content_sha256(registrant)) for line, registrant in batch
    ]
    with context.database.session() as session:
        stored = _stored_hashes(
            session, agency_id, [item[1].external_id for item in hashed]
        )
    changed = [item for item in hashed if stored.get(item[1].external_id) != item[2]]
    report.unchanged += len(hashed) - len(changed)
    if not changed:
        return

    prepared = _prepare_rows(context, changed)
    with context.database.session() as session:
        for duplicate in _find_duplicates(
            session, agency_id, prepared, context.settings.duplicate_name_min_similarity
        ):
            report.flag_duplicate(duplicate)
    accepted, updated = write_batch(context, agency_id, prepared)
    report.accepted += accepted
    report.updated += updated
    report.batches += 1


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


def _prepare_rows(
    context: ServiceContext, changed: list[tuple[int, Registrant, str]]
) -> list[_PreparedRow]:
    builder = context.engine.builder
    registrants = [item[1] for item in changed]
    with context.builder_lock:
        features = builder.build_registrants(registrants)
        key_of_column = list(builder.vocabulary.index)
        occupation_codes = [
            [
                builder.occupation_isco(claim.isco_code, match)
                for claim, match in zip(registrant.occupations, matches, strict=True)
            ]
            for registrant, matches in zip(
                registrants, features.occupation_matches, strict=True
            )
        ]
    skills = features.skills
    prepared = []
    for row, (line, registrant, digest) in enumerate(changed):
        columns = skills.indices[skills.indptr[row] : skills.indptr[row + 1]]
        stored_features = {
            "skills": [key_of_column[column] for column in columns.tolist()],
            "occupations": [
                [code, claim.years_experience]
                for claim, code in zip(
                    registrant.occupations, occupation_codes[row], strict=True
                )
                if code is not None
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
        values = {
            "agency_id": registrant.agency_id,
            "external_id": registrant.external_id,
            "origin": registrant.origin,
            "content_sha256": digest,
            "profile": registrant.model_dump_json(exclude={"full_name", "birth_date"}),
            "features": json.dumps(stored_features, separators=(",", ":")),
            "vector": features.vectors[row].astype(VECTOR_DTYPE).tobytes(),
            "full_name": registrant.full_name,
            "birth_date": registrant.birth_date,
        }
        skill_rows = [
            {
                "raw": match.raw,
                "uri": match.uri,
                "label": match.label,
                "confidence": float(match.confidence),
                "method": match.method,
            }
            for match in features.skill_matches[row]
        ]
        values["skills"] = json.dumps(skill_rows, separators=(",", ":"))
        prepared.append(_PreparedRow(line, registrant, digest, values))
    return prepared


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

    Core statements with executemany are used instead of ORM objects, because
    a batch has thousands of rows.
    """
    now = utc_now()
    # Statements run on the connection take the Core executemany path.
    connection = session.connection()
    if new_rows:
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
