"""In-process matrix of every stored registrant, refreshed incrementally.

Scoring needs all registrants as column arrays (:class:`RegistrantFeatures`).
Reading 100k rows per shortlist request would dominate its latency, so each
app keeps one :class:`RegistrantRegistry` that remembers the registry version
it has seen. Every transaction that writes or erases registrants bumps the
one-row ``registry_version`` counter and stamps its rows (or tombstones) with
the new value; a refresh reads only rows stamped after the last version seen.

The counter row is updated inside the writing transaction, so on PostgreSQL a
second writer waits for the first to commit before it gets its number, and on
SQLite writers run one at a time: versions become visible in increasing order,
and no row with a version at or below the last one seen can appear later.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.tables import RegistrantRow, RegistrantTombstone, RegistryVersion
from matching.features import ISCO_LEVELS, FeatureBuilder, RegistrantFeatures

logger = logging.getLogger(__name__)

VECTOR_DTYPE = np.dtype("<f4")


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    origin: str
    consent: bool
    available_day: int
    vector: NDArray[np.float32]
    skill_columns: NDArray[np.int64]
    occupations: tuple[tuple[str, float], ...]
    languages: tuple[tuple[str, int, int], ...]
    qualifications: tuple[tuple[int, str, str], ...]


@dataclass(frozen=True)
class RegistrySnapshot:
    """Features of every stored registrant at one registry version.

    Attributes
    ----------
    version
        Registry version the snapshot reflects.
    features
        Column arrays in the order of ``registrant_ids``.
    registrant_ids
        (N,) int64 database ids of the rows of ``features``.
    row_of
        Database id to row of ``features``.
    """

    version: int
    features: RegistrantFeatures
    registrant_ids: NDArray[np.int64]
    row_of: dict[int, int]


def read_version(session: Session) -> int:
    """Return the current registry version."""
    return int(session.execute(select(RegistryVersion.version)).scalar_one())


def bump_version(session: Session) -> int:
    """Increment the registry version inside the caller's transaction and return it.

    The update takes the counter row's lock until the transaction ends, which
    orders concurrent writers (see the module notes).
    """
    row = session.get(RegistryVersion, 1, with_for_update=True)
    assert row is not None, "the initial migration inserts the registry_version row"
    row.version += 1
    session.flush()
    return row.version


class RegistrantRegistry:
    """Registrant features for scoring, refreshed from the database on demand.

    Parameters
    ----------
    builder
        The engine's feature builder; its skill vocabulary numbers the skill
        columns, so vacancy profiles built by it line up with the matrix.
    builder_lock
        Lock held while the builder's vocabulary is read or extended.
    """

    def __init__(self, builder: FeatureBuilder, builder_lock: threading.RLock) -> None:
        self._builder = builder
        self._builder_lock = builder_lock
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self._version = -1
        self._snapshot: RegistrySnapshot | None = None
        self._level_columns = _isco_columns(builder)

    def snapshot(self, session: Session) -> RegistrySnapshot:
        """Return the features of every registrant committed so far.

        Reads only rows changed since the previous call; rebuilds the arrays
        only when something changed.
        """
        with self._lock:
            current = read_version(session)
            if current != self._version or self._snapshot is None:
                self._apply_changes(session, current)
                self._snapshot = self._build(current)
            return self._snapshot

    def _apply_changes(self, session: Session, current: int) -> None:
        started = time.perf_counter()
        since = self._version
        changed = session.execute(
            select(
                RegistrantRow.id,
                RegistrantRow.agency_id,
                RegistrantRow.external_id,
                RegistrantRow.origin,
                RegistrantRow.features,
                RegistrantRow.vector,
            ).where(RegistrantRow.version > since)
        ).all()
        erased = session.execute(
            select(RegistrantTombstone.registrant_id).where(
                RegistrantTombstone.version > since
            )
        ).scalars()
        with self._builder_lock:
            for row in changed:
                self._entries[row.id] = self._entry(row)
        removed = 0
        for registrant_id in erased:
            removed += self._entries.pop(int(registrant_id), None) is not None
        self._version = current
        logger.debug(
            "registry refreshed to version %d: %d rows read, %d erased, %.3f s",
            current,
            len(changed),
            removed,
            time.perf_counter() - started,
        )

    def _entry(self, row: Any) -> _Entry:
        stored = json.loads(row.features)
        vocabulary = self._builder.vocabulary
        columns = np.unique(
            np.array(
                [vocabulary.id_of(key) for key in stored["skills"]], dtype=np.int64
            )
        )
        return _Entry(
            key=f"{row.agency_id}/{row.external_id}",
            origin=row.origin,
            consent=bool(stored["consent"]),
            available_day=int(stored["available_day"]),
            vector=np.frombuffer(row.vector, dtype=VECTOR_DTYPE),
            skill_columns=columns,
            occupations=tuple(
                (str(code), float(years)) for code, years in stored["occupations"]
            ),
            languages=tuple(
                (str(language), int(rank), int(day))
                for language, rank, day in stored["languages"]
            ),
            qualifications=tuple(
                (int(level), str(field), str(country))
                for level, field, country in stored["qualifications"]
            ),
        )

    def _build(self, version: int) -> RegistrySnapshot:
        started = time.perf_counter()
        ids = np.array(sorted(self._entries), dtype=np.int64)
        entries = [self._entries[int(registrant_id)] for registrant_id in ids]
        with self._builder_lock:
            width = max(len(self._builder.vocabulary), 1)
        features = assemble_features(entries, self._level_columns, width)
        snapshot = RegistrySnapshot(
            version=version,
            features=features,
            registrant_ids=ids,
            row_of={int(registrant_id): row for row, registrant_id in enumerate(ids)},
        )
        logger.debug(
            "registry matrix of %d registrants built in %.3f s",
            len(entries),
            time.perf_counter() - started,
        )
        return snapshot


def _isco_columns(builder: FeatureBuilder) -> dict[int, dict[str, int]]:
    groups = builder.taxonomy.isco_groups
    return {
        level: {
            code: position
            for position, code in enumerate(
                sorted(c for c in groups if len(c) == level)
            )
        }
        for level in ISCO_LEVELS
    }


def assemble_features(
    entries: list[_Entry], level_columns: dict[int, dict[str, int]], skill_width: int
) -> RegistrantFeatures:
    """Stack per-registrant entries into the column arrays scoring works on."""
    count = len(entries)
    dim = entries[0].vector.shape[0] if entries else 384
    vectors = (
        np.stack([entry.vector for entry in entries]).astype(np.float32, copy=False)
        if entries
        else np.zeros((0, dim), dtype=np.float32)
    )
    minor_columns = level_columns[3]
    isco_entries: dict[int, list[tuple[int, int]]] = {
        level: [] for level in ISCO_LEVELS
    }
    years: dict[tuple[int, int], float] = {}
    for row, entry in enumerate(entries):
        for code, claim_years in entry.occupations:
            for level in ISCO_LEVELS:
                column = level_columns[level].get(code[:level])
                if column is not None:
                    isco_entries[level].append((row, column))
            minor = minor_columns.get(code[:3])
            if minor is not None:
                years[(row, minor)] = years.get((row, minor), 0.0) + claim_years
    languages = _language_columns(entries)
    qualifications = _qualification_columns(entries)
    return RegistrantFeatures(
        keys=tuple(entry.key for entry in entries),
        origin=np.array([entry.origin for entry in entries], dtype="<U2"),
        consent=np.array([entry.consent for entry in entries], dtype=bool),
        available_from=np.array(
            [entry.available_day for entry in entries], dtype=np.int64
        ),
        vectors=vectors,
        skills=_skill_matrix(entries, skill_width),
        isco={
            level: _indicator(pairs, count, len(level_columns[level]))
            for level, pairs in isco_entries.items()
        },
        isco_columns=level_columns,
        minor_years=sp.csr_array(
            (
                np.array(list(years.values()), dtype=np.float32),
                (
                    np.array([key[0] for key in years], dtype=np.int64),
                    np.array([key[1] for key in years], dtype=np.int64),
                ),
            ),
            shape=(count, len(minor_columns)),
        ),
        language_rows=languages[0],
        language_rank=languages[1],
        language_test_day=languages[2],
        qualification_row=qualifications[0],
        qualification_level=qualifications[1],
        qualification_field=qualifications[2],
        qualification_country=qualifications[3],
        # Explanations read matches from the database for shortlisted rows only.
        skill_matches=((),) * count,
        occupation_matches=((),) * count,
    )


def _skill_matrix(entries: list[_Entry], width: int) -> sp.csr_array:
    lengths = np.array([entry.skill_columns.size for entry in entries], dtype=np.int64)
    indptr = np.zeros(len(entries) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = (
        np.concatenate([entry.skill_columns for entry in entries])
        if entries
        else np.zeros(0, dtype=np.int64)
    )
    data = np.ones(indices.size, dtype=np.float32)
    return sp.csr_array((data, indices, indptr), shape=(len(entries), width))


def _indicator(pairs: list[tuple[int, int]], rows: int, columns: int) -> sp.csr_array:
    unique = sorted(set(pairs))
    row_index = np.array([pair[0] for pair in unique], dtype=np.int64)
    column_index = np.array([pair[1] for pair in unique], dtype=np.int64)
    data = np.ones(len(unique), dtype=np.float32)
    return sp.csr_array(
        (data, (row_index, column_index)), shape=(rows, max(columns, 1))
    )


def _language_columns(
    entries: Iterable[_Entry],
) -> tuple[
    dict[str, NDArray[np.int64]],
    dict[str, NDArray[np.int8]],
    dict[str, NDArray[np.int64]],
]:
    rows: dict[str, list[int]] = {}
    ranks: dict[str, list[int]] = {}
    days: dict[str, list[int]] = {}
    for row, entry in enumerate(entries):
        for language, rank, day in entry.languages:
            rows.setdefault(language, []).append(row)
            ranks.setdefault(language, []).append(rank)
            days.setdefault(language, []).append(day)
    return (
        {
            language: np.array(values, dtype=np.int64)
            for language, values in rows.items()
        },
        {
            language: np.array(values, dtype=np.int8)
            for language, values in ranks.items()
        },
        {
            language: np.array(values, dtype=np.int64)
            for language, values in days.items()
        },
    )


def _qualification_columns(
    entries: Iterable[_Entry],
) -> tuple[NDArray[np.int64], NDArray[np.int8], NDArray[np.str_], NDArray[np.str_]]:
    rows: list[int] = []
    levels: list[int] = []
    fields: list[str] = []
    countries: list[str] = []
    for row, entry in enumerate(entries):
        for level, field, country in entry.qualifications:
            rows.append(row)
            levels.append(level)
            fields.append(field)
            countries.append(country)
    return (
        np.array(rows, dtype=np.int64),
        np.array(levels, dtype=np.int8),
        np.array(fields, dtype=str) if fields else np.array([], dtype="<U1"),
        np.array(countries, dtype="<U2"),
    )
