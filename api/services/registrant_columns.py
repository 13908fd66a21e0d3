"""Stored registrants as flat column arrays, merged and turned into scoring features.

The registry keeps every registrant in one :class:`RegistrantColumns`. A
fixed-size value (origin, consent, vector, ...) has one array entry per
registrant. A list-valued feature (skills, occupation claims, languages,
qualifications) is a :class:`RaggedColumns`: the values of all registrants in
flat arrays, cut by row offsets. Parsing a batch of rows, replacing changed
registrants and building :class:`~matching.features.RegistrantFeatures` are
then whole-array numpy operations. Only JSON decoding and flattening the
decoded lists run per row in Python.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.features import ISCO_LEVELS, RegistrantFeatures
from matching.skill_profile import OccupationEvidence

VECTOR_DTYPE = np.dtype("<f4")
# Vector width of an empty matrix: the dimension of all-MiniLM-L6-v2, the
# engine's model. A matrix with rows takes the width of its stored vectors.
EMPTY_VECTOR_DIM = 384


@dataclass(frozen=True)
class RaggedColumns:
    """A list of values per registrant, stored flat.

    Attributes
    ----------
    indptr
        (N + 1,) int64 offsets: the values of row ``i`` are at positions
        ``indptr[i]:indptr[i + 1]`` of every array in ``values``.
    values
        Column name to a flat array of the values of all rows, row after row.
    """

    indptr: NDArray[np.int64]
    values: dict[str, NDArray[Any]]

    @classmethod
    def from_lengths(
        cls, lengths: Sequence[int], values: dict[str, NDArray[Any]]
    ) -> RaggedColumns:
        """Return the columns of rows with the given numbers of values."""
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.asarray(lengths, dtype=np.int64), out=indptr[1:])
        return cls(indptr=indptr, values=values)

    def entry_rows(self) -> NDArray[np.int64]:
        """Return the row of every flat value."""
        return np.repeat(
            np.arange(self.indptr.size - 1, dtype=np.int64), np.diff(self.indptr)
        )

    def take(self, rows: NDArray[np.int64]) -> RaggedColumns:
        """Return the values of the given rows, in that order."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # Position of each output value in the flat input arrays.
        positions = np.repeat(starts - indptr[:-1], lengths) + np.arange(
            indptr[-1], dtype=np.int64
        )
        return RaggedColumns(
            indptr=indptr,
            values={name: array[positions] for name, array in self.values.items()},
        )

    def append(self, other: RaggedColumns) -> RaggedColumns:
        """Return these rows followed by the rows of ``other``."""
        return RaggedColumns(
            indptr=np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]]),
            values={
                name: np.concatenate([array, other.values[name]])
                for name, array in self.values.items()
            },
        )


@dataclass(frozen=True)
class RegistrantColumns:
    """Registrants as column arrays, ordered by ascending database id.

    Attributes
    ----------
    ids
        (N,) int64 database ids, ascending.
    per_row
        Name to an array with one entry (or, for ``vector``, one row) per
        registrant: ``key`` (``agency_id/external_id``), ``origin``,
        ``consent``, ``available_day`` and ``vector``.
    lists
        Name to the list-valued features and their fields:

        - ``skills``: ``column``, the skill vocabulary column, ascending and
          distinct per row;
        - ``occupations``: ``code`` (ISCO unit group) and ``years``;
        - ``occupation_matches``: ``occupation`` (position in the registry's
          sorted ESCO occupation URIs) and ``confidence``;
        - ``languages``: ``language``, ``rank`` (CEFR 1 to 6) and ``day``
          (test date ordinal);
        - ``qualifications``: ``level``, ``field`` and ``country``.
    """

    ids: NDArray[np.int64]
    per_row: dict[str, NDArray[Any]]
    lists: dict[str, RaggedColumns]

    @property
    def count(self) -> int:
        """Number of registrants."""
        return int(self.ids.size)

    def take(self, rows: NDArray[np.int64]) -> RegistrantColumns:
        """Return the given rows, in that order."""
        return RegistrantColumns(
            ids=self.ids[rows],
            per_row={name: array[rows] for name, array in self.per_row.items()},
            lists={name: ragged.take(rows) for name, ragged in self.lists.items()},
        )

    def replace(
        self, changed: RegistrantColumns, erased_ids: NDArray[np.int64]
    ) -> RegistrantColumns:
        """Return these rows with ``changed`` upserted by id and ``erased_ids`` removed.

        A changed row wins over an erasure of the same id, because a stored
        row exists now whatever happened to an earlier row with its id.
        """
        dropped = np.isin(self.ids, np.concatenate([changed.ids, erased_ids]))
        if dropped.all():
            return changed.sorted_by_id()
        combined = self.append(changed)
        # Rows of ``combined`` to keep, in ascending id order.
        source = np.concatenate(
            [
                np.flatnonzero(~dropped),
                self.count + np.arange(changed.count, dtype=np.int64),
            ]
        )
        source = source[np.argsort(combined.ids[source], kind="stable")]
        if np.array_equal(source, np.arange(combined.count)):
            return combined
        return combined.take(source)

    def append(self, other: RegistrantColumns) -> RegistrantColumns:
        """Return these rows followed by the rows of ``other``."""
        return RegistrantColumns(
            ids=np.concatenate([self.ids, other.ids]),
            per_row={
                name: np.concatenate([array, other.per_row[name]])
                for name, array in self.per_row.items()
            },
            lists={
                name: ragged.append(other.lists[name])
                for name, ragged in self.lists.items()
            },
        )

    def sorted_by_id(self) -> RegistrantColumns:
        """Return the rows in ascending id order; ``self`` when they already are."""
        order = np.argsort(self.ids, kind="stable")
        if np.array_equal(order, np.arange(order.size)):
            return self
        return self.take(order)


def empty_columns() -> RegistrantColumns:
    """Return columns with no registrant."""
    return parse_rows([], skill_columns=_no_skills, occupation_position={})


def _no_skills(keys: list[str]) -> NDArray[np.int64]:
    return np.zeros(len(keys), dtype=np.int64)


def parse_rows(
    rows: Sequence[Any],
    *,
    skill_columns: Callable[[list[str]], NDArray[np.int64]],
    occupation_position: Mapping[str, int],
) -> RegistrantColumns:
    """Decode stored registrant rows into columns, in the order given.

    Parameters
    ----------
    rows
        Rows with ``id``, ``agency_id``, ``external_id``, ``origin``,
        ``features`` (the JSON the upload stores) and ``vector`` (float32 bytes).
    skill_columns
        Maps skill keys to their skill vocabulary columns, adding new keys.
    occupation_position
        ESCO occupation URI to its position in the registry's occupation list;
        a match to a URI missing from it is dropped.

    Raises
    ------
    ValueError
        If the stored vectors differ in length.
    """
    count = len(rows)
    stored: list[dict[str, Any]] = (
        json.loads("[" + ",".join(row.features for row in rows) + "]") if rows else []
    )
    vector_bytes = {len(row.vector) for row in rows}
    if len(vector_bytes) > 1:
        raise ValueError(
            f"stored registrant vectors have {len(vector_bytes)} different lengths "
            f"({sorted(vector_bytes)} bytes); upload the registrants again"
        )
    width = EMPTY_VECTOR_DIM
    if vector_bytes:
        width = vector_bytes.pop() // VECTOR_DTYPE.itemsize
    # A bytearray makes the vectors writable without a second copy.
    buffer = bytearray()
    for row in rows:
        buffer += row.vector
    vectors = np.frombuffer(buffer, dtype=VECTOR_DTYPE).reshape(count, width)
    per_row = {
        "key": np.array(
            [f"{row.agency_id}/{row.external_id}" for row in rows], dtype=object
        ),
        "origin": np.array([row.origin for row in rows], dtype="<U2"),
        "consent": np.array([bool(item["consent"]) for item in stored], dtype=bool),
        "available_day": np.array(
            [int(item["available_day"]) for item in stored], dtype=np.int64
        ),
        "vector": vectors,
    }
    lists = {
        "skills": _skill_lists(stored, skill_columns),
        "occupations": _ragged(
            stored, "occupations", {"code": object, "years": np.float64}
        ),
        "occupation_matches": _occupation_match_lists(stored, occupation_position),
        "languages": _ragged(
            stored,
            "languages",
            {"language": object, "rank": np.int8, "day": np.int64},
        ),
        "qualifications": _ragged(
            stored,
            "qualifications",
            {"level": np.int8, "field": object, "country": object},
        ),
    }
    return RegistrantColumns(
        ids=np.array([row.id for row in rows], dtype=np.int64),
        per_row=per_row,
        lists=lists,
    )


def _ragged(
    stored: list[dict[str, Any]], name: str, dtypes: dict[str, Any]
) -> RaggedColumns:
    """Return list ``name`` of every row; its entries are lists in ``dtypes`` order."""
    lists = [item[name] for item in stored]
    entries = [entry for entries in lists for entry in entries]
    # zip(*entries) turns the entries into one tuple per field in one C loop.
    fields = list(zip(*entries, strict=True)) if entries else [()] * len(dtypes)
    return RaggedColumns.from_lengths(
        [len(entries) for entries in lists],
        {
            field: np.array(values, dtype=dtype)
            for (field, dtype), values in zip(dtypes.items(), fields, strict=True)
        },
    )


def _skill_lists(
    stored: list[dict[str, Any]],
    skill_columns: Callable[[list[str]], NDArray[np.int64]],
) -> RaggedColumns:
    keys = [key for item in stored for key in item["skills"]]
    columns = skill_columns(keys)
    rows = np.repeat(
        np.arange(len(stored), dtype=np.int64),
        [len(item["skills"]) for item in stored],
    )
    # CSR rows need ascending, distinct columns, as the engine's matrix has.
    order = np.lexsort((columns, rows))
    rows, columns = rows[order], columns[order]
    distinct = np.ones(columns.size, dtype=bool)
    distinct[1:] = (rows[1:] != rows[:-1]) | (columns[1:] != columns[:-1])
    rows, columns = rows[distinct], columns[distinct]
    return RaggedColumns.from_lengths(
        np.bincount(rows, minlength=len(stored)).tolist(), {"column": columns}
    )


def _occupation_match_lists(
    stored: list[dict[str, Any]], occupation_position: Mapping[str, int]
) -> RaggedColumns:
    # NOTE: rows stored before occupation matches were kept lack the key, so
    # their occupation_match is 0 until they are uploaded changed.
    lengths = []
    positions = []
    confidences = []
    for item in stored:
        length = 0
        for uri, confidence in item.get("occupation_matches", ()):
            position = occupation_position.get(uri)
            if position is not None:
                positions.append(position)
                confidences.append(float(confidence))
                length += 1
        lengths.append(length)
    return RaggedColumns.from_lengths(
        lengths,
        {
            "occupation": np.array(positions, dtype=np.int64),
            "confidence": np.array(confidences, dtype=np.float64),
        },
    )


def assemble_features(
    columns: RegistrantColumns,
    level_columns: dict[int, dict[str, int]],
    skill_width: int,
) -> RegistrantFeatures:
    """Return the registrants as the column arrays scoring works on.

    ``level_columns`` numbers the ISCO groups of each level as the engine does,
    and ``skill_width`` is the size of the skill vocabulary now.
    """
    count = columns.count
    skills = columns.lists["skills"]
    isco, minor_years = _occupation_matrices(
        columns.lists["occupations"], level_columns, count
    )
    languages = columns.lists["languages"]
    qualifications = columns.lists["qualifications"]
    fields = qualifications.values["field"].tolist()
    return RegistrantFeatures(
        keys=tuple(columns.per_row["key"].tolist()),
        origin=columns.per_row["origin"],
        consent=columns.per_row["consent"],
        available_from=columns.per_row["available_day"],
        vectors=columns.per_row["vector"],
        skills=sp.csr_array(
            (
                np.ones(skills.values["column"].size, dtype=np.float32),
                skills.values["column"],
                skills.indptr,
            ),
            shape=(count, max(skill_width, 1)),
        ),
        isco=isco,
        isco_columns=level_columns,
        minor_years=minor_years,
        **_language_arrays(languages),
        qualification_row=qualifications.entry_rows(),
        qualification_level=qualifications.values["level"],
        qualification_field=(
            np.array(fields, dtype=str) if fields else np.array([], dtype="<U1")
        ),
        qualification_country=np.array(
            qualifications.values["country"].tolist(), dtype="<U2"
        ),
        # Explanations read matches from the database for shortlisted rows only.
        skill_matches=((),) * count,
        occupation_matches=((),) * count,
    )


def _occupation_matrices(
    occupations: RaggedColumns, level_columns: dict[int, dict[str, int]], count: int
) -> tuple[dict[int, sp.csr_array], sp.csr_array]:
    """Return the ISCO indicator matrix per level and the years per minor group."""
    rows = occupations.entry_rows()
    codes = occupations.values["code"]
    distinct, code_index = (
        np.unique(codes.astype(str), return_inverse=True)
        if codes.size
        else (np.zeros(0, dtype=str), np.zeros(0, dtype=np.int64))
    )
    group_columns = {
        level: np.array(
            [level_columns[level].get(code[:level], -1) for code in distinct.tolist()],
            dtype=np.int64,
        )[code_index]
        for level in ISCO_LEVELS
    }
    isco = {
        level: _indicator(
            rows, group_columns[level], count, len(level_columns[level])
        )
        for level in ISCO_LEVELS
    }

    minor = group_columns[3]
    known = minor >= 0
    # Years are summed in float64 and then stored as float32, as the engine does.
    minor_years = sp.csr_array(
        (occupations.values["years"][known], (rows[known], minor[known])),
        shape=(count, len(level_columns[3])),
        dtype=np.float64,
    )
    minor_years.sum_duplicates()
    return isco, minor_years.astype(np.float32)


def _indicator(
    rows: NDArray[np.int64], columns: NDArray[np.int64], count: int, width: int
) -> sp.csr_array:
    known = columns >= 0
    matrix = sp.csr_array(
        (
            np.ones(int(known.sum()), dtype=np.float32),
            (rows[known], columns[known]),
        ),
        shape=(count, max(width, 1)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _language_arrays(languages: RaggedColumns) -> dict[str, Any]:
    rows = languages.entry_rows()
    names = languages.values["language"]
    language_rows: dict[str, NDArray[np.int64]] = {}
    language_rank: dict[str, NDArray[np.int8]] = {}
    language_test_day: dict[str, NDArray[np.int64]] = {}
    if names.size:
        distinct, name_index = np.unique(names.astype(str), return_inverse=True)
        for position, language in enumerate(distinct.tolist()):
            selected = name_index == position
            language_rows[language] = rows[selected]
            language_rank[language] = languages.values["rank"][selected]
            language_test_day[language] = languages.values["day"][selected]
    return {
        "language_rows": language_rows,
        "language_rank": language_rank,
        "language_test_day": language_test_day,
    }


def occupation_evidence(
    evidence: OccupationEvidence,
    columns: RegistrantColumns,
    occupation_uris: Sequence[str],
) -> OccupationEvidence:
    """Return ``evidence`` with its occupation claims taken from the columns.

    ``OccupationEvidence.build`` reads occupation claims from
    ``features.occupation_matches``, which the matrix leaves empty. Its claim
    matrix is therefore replaced by one built from the stored matches by the
    same rule: the highest confidence per registrant and ESCO occupation, over
    the evidence's own occupation columns. ``occupation_uris`` lists the URIs
    that the stored ``occupation`` positions point to.
    """
    matches = columns.lists["occupation_matches"]
    occupation_columns = evidence.occupation_columns
    width = max(len(occupation_columns), 1)
    column_of_position = np.array(
        [occupation_columns.get(uri, -1) for uri in occupation_uris], dtype=np.int64
    )
    rows = matches.entry_rows()
    claim_columns = (
        column_of_position[matches.values["occupation"]]
        if rows.size
        else np.zeros(0, dtype=np.int64)
    )
    confidence = matches.values["confidence"]
    known = claim_columns >= 0
    rows = rows[known]
    claim_columns = claim_columns[known]
    confidence = confidence[known]
    # Keep the highest confidence of each (row, column): sort it first, take firsts.
    cells = rows * width + claim_columns
    order = np.lexsort((-confidence, cells))
    first = np.ones(order.size, dtype=bool)
    first[1:] = cells[order][1:] != cells[order][:-1]
    best = order[first]
    claims = sp.csr_array(
        (confidence[best], (rows[best], claim_columns[best])),
        shape=(columns.count, width),
        dtype=np.float64,
    )
    return dataclasses.replace(evidence, occupation_claims=claims)
