"""Turn validated records into arrays that eligibility and scoring work on.

Registrants and vacancies become column arrays (one entry per record) plus a
few sparse matrices. Free-text skills and titles are normalised to ESCO once,
and profile vectors are pooled from label vectors, so the cost of a load grows
with the number of distinct labels, not with the number of profiles: on two
cores the model embeds a few hundred short labels a second but only tens of
whole profiles.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.codes import RECOGNITION_STATES
from matching.embedding import LabelEncoder
from matching.models import Registrant, Vacancy
from matching.normalise import ConceptMatch, Normaliser
from matching.taxonomy import Taxonomy

logger = logging.getLogger(__name__)

# Weight of the occupation titles against the skills when pooling a profile
# vector: the two halves count equally, so a profile with forty skills is not
# drowned by them and one with two skills is not drowned by its title.
TITLE_WEIGHT = 1.0
SKILL_WEIGHT = 1.0

# ISCO-08 digits per level: unit group 4, minor group 3, sub-major 2, major 1.
ISCO_LEVELS = (4, 3, 2, 1)

ProgressCallback = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    del stage, done, total


@dataclass(frozen=True)
class SkillVocabulary:
    """Index of ESCO skill URIs (and unmapped texts) used by one matching run."""

    index: dict[str, int] = field(default_factory=dict)

    def id_of(self, key: str) -> int:
        """Return the column of ``key``, adding it when new."""
        position = self.index.get(key)
        if position is None:
            position = len(self.index)
            self.index[key] = position
        return position

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class RegistrantFeatures:
    """Column arrays describing N registrants.

    Attributes
    ----------
    keys
        ``agency_id/external_id`` per registrant.
    origin
        (N,) ISO alpha-2 origin codes.
    consent
        (N,) bool.
    available_from
        (N,) int64 proleptic Gregorian ordinals.
    vectors
        (N, d) float32 L2-normalised profile vectors.
    skills
        (N, S) CSR 0/1 matrix over the run's skill vocabulary.
    isco
        ISCO level (4, 3, 2, 1) to a (N, groups) CSR 0/1 matrix of the
        registrant's occupations at that level, and the column index per code.
    minor_years
        (N, minor groups) CSR float years of experience per ISCO minor group.
    language_rows, language_rank, language_test_day
        Flat arrays over every tested language certificate, keyed by language:
        registrant row, CEFR rank 1..6 and test date ordinal.
    qualification_row, qualification_level, qualification_field, qualification_country
        Flat arrays over every qualification.
    skill_matches, occupation_matches
        Normalisation outcome per registrant, kept for explanations; an empty
        tuple when the features were generated as arrays, without records.
    """

    keys: tuple[str, ...]
    origin: NDArray[np.str_]
    consent: NDArray[np.bool_]
    available_from: NDArray[np.int64]
    vectors: NDArray[np.float32]
    skills: sp.csr_array
    isco: dict[int, sp.csr_array]
    isco_columns: dict[int, dict[str, int]]
    minor_years: sp.csr_array
    language_rows: dict[str, NDArray[np.int64]]
    language_rank: dict[str, NDArray[np.int8]]
    language_test_day: dict[str, NDArray[np.int64]]
    qualification_row: NDArray[np.int64]
    qualification_level: NDArray[np.int8]
    qualification_field: NDArray[np.str_]
    qualification_country: NDArray[np.str_]
    skill_matches: tuple[tuple[ConceptMatch, ...], ...]
    occupation_matches: tuple[tuple[ConceptMatch, ...], ...]

    @property
    def count(self) -> int:
        """Number of registrants."""
        return len(self.keys)

    def take(self, rows: NDArray[np.int64]) -> RegistrantFeatures:
        """Return the features of some registrants, renumbered in the order given.

        Parameters
        ----------
        rows
            (K,) int64 rows to keep; row ``rows[i]`` becomes row ``i``.

        Returns
        -------
        RegistrantFeatures
            K registrants. Eligibility and scores computed on it equal those
            of the same registrants in the whole batch.

        Notes
        -----
        Language and qualification entries are found by binary search, so a
        call costs O(K log N) plus the sparse row slices, not O(N). That needs
        their row arrays in ascending order, which both
        :meth:`FeatureBuilder.build_registrants` and the array generator in
        :mod:`matching.synth` produce.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1:
            raise ValueError(f"rows has shape {rows.shape}, but it must be 1-D")
        if rows.size and (rows.min() < 0 or rows.max() >= self.count):
            raise ValueError(
                f"rows must index the {self.count} registrants (0 to "
                f"{self.count - 1}); got values from {int(rows.min())} to "
                f"{int(rows.max())}"
            )
        language_rows: dict[str, NDArray[np.int64]] = {}
        language_rank: dict[str, NDArray[np.int8]] = {}
        language_test_day: dict[str, NDArray[np.int64]] = {}
        for language, entry_rows in self.language_rows.items():
            entries, new_rows = _entries_of_rows(entry_rows, rows)
            language_rows[language] = new_rows
            language_rank[language] = self.language_rank[language][entries]
            language_test_day[language] = self.language_test_day[language][entries]
        qualifications, qualification_row = _entries_of_rows(
            self.qualification_row, rows
        )
        row_list = rows.tolist()
        return RegistrantFeatures(
            keys=tuple(self.keys[row] for row in row_list),
            origin=self.origin[rows],
            consent=self.consent[rows],
            available_from=self.available_from[rows],
            vectors=self.vectors[rows],
            skills=self.skills[rows],
            isco={level: matrix[rows] for level, matrix in self.isco.items()},
            isco_columns=self.isco_columns,
            minor_years=self.minor_years[rows],
            language_rows=language_rows,
            language_rank=language_rank,
            language_test_day=language_test_day,
            qualification_row=qualification_row,
            qualification_level=self.qualification_level[qualifications],
            qualification_field=self.qualification_field[qualifications],
            qualification_country=self.qualification_country[qualifications],
            skill_matches=_take_tuple(self.skill_matches, row_list),
            occupation_matches=_take_tuple(self.occupation_matches, row_list),
        )


def _entries_of_rows(
    entry_rows: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Find the entries of ascending ``entry_rows`` that belong to ``rows``.

    Returns the entry positions and, per entry, the position of its row in
    ``rows``.
    """
    first = np.searchsorted(entry_rows, rows, side="left")
    last = np.searchsorted(entry_rows, rows, side="right")
    counts = last - first
    total = int(counts.sum())
    owner = np.repeat(np.arange(rows.size, dtype=np.int64), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(
        np.cumsum(counts) - counts, counts
    )
    return np.repeat(first, counts) + offsets, owner


def _take_tuple(
    values: tuple[tuple[ConceptMatch, ...], ...], rows: list[int]
) -> tuple[tuple[ConceptMatch, ...], ...]:
    # Features built from arrays carry no normalisation outcome at all.
    if not values:
        return ()
    return tuple(values[row] for row in rows)


# Occupation claim as (isco_code, esco_uri, title), and what it resolves to:
# the match, the ISCO unit group and the title text pooled into the vector.
ClaimKey = tuple[str | None, str | None, str | None]
ResolvedClaim = tuple[ConceptMatch, str | None, str]


@dataclass
class ResolutionMemo:
    """Skill and occupation matches kept across the batches of one load.

    Passing the same memo to :meth:`FeatureBuilder.resolve_registrants` for
    every batch resolves a text repeated across batches once. The owner bounds
    its size, and drops it whenever the normaliser may return other matches.
    """

    skills: dict[str, ConceptMatch] = field(default_factory=dict)
    claims: dict[ClaimKey, ResolvedClaim] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.skills) + len(self.claims)

    def clear(self) -> None:
        """Forget every match."""
        self.skills.clear()
        self.claims.clear()


@dataclass(frozen=True)
class ResolvedRegistrants:
    """A batch of registrants with skills and titles resolved to ESCO and pooled.

    Skills are kept once per distinct text of the batch, and each registrant
    points into that table, so work per row is array indexing.

    Attributes
    ----------
    skill_texts
        Distinct skill texts of the batch, as given, in sorted order.
    skill_text_matches
        Normalisation outcome of each distinct text.
    skill_keys
        Distinct vocabulary keys of the batch (ESCO URI, or ``text:`` and the
        folded text when unmapped), in order of first use.
    skill_key_of_text
        (T,) int64 index into ``skill_keys`` of each distinct text.
    skill_indptr
        (N + 1,) int64 offsets: the skills of row ``i`` are
        ``skill_entries[skill_indptr[i]:skill_indptr[i + 1]]``.
    skill_entries
        Index into ``skill_texts`` of every skill as given, row after row,
        repeats kept.
    occupation_matches
        Per registrant, the match of each occupation claim.
    occupation_codes
        Per registrant, the ISCO unit group of each claim, or None.
    vectors
        (N, d) float32 L2-normalised profile vectors.
    """

    skill_texts: tuple[str, ...]
    skill_text_matches: tuple[ConceptMatch, ...]
    skill_keys: tuple[str, ...]
    skill_key_of_text: NDArray[np.int64]
    skill_indptr: NDArray[np.int64]
    skill_entries: NDArray[np.int64]
    occupation_matches: tuple[tuple[ConceptMatch, ...], ...]
    occupation_codes: tuple[tuple[str | None, ...], ...]
    vectors: NDArray[np.float32]

    @property
    def count(self) -> int:
        """Number of registrants."""
        return self.skill_indptr.size - 1

    def entry_rows(self) -> NDArray[np.int64]:
        """Return the row of every entry of ``skill_entries``."""
        return np.repeat(
            np.arange(self.count, dtype=np.int64), np.diff(self.skill_indptr)
        )

    def distinct_skill_keys(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Return each registrant's skill keys, each once, in the order first given.

        Returns
        -------
        indptr, keys
            (N + 1,) offsets and the indices into ``skill_keys``: the keys of
            row ``i`` are ``keys[indptr[i]:indptr[i + 1]]``.
        """
        keys = self.skill_key_of_text[self.skill_entries]
        rows = self.entry_rows()
        first_entries = _first_of_each_pair(rows, keys, len(self.skill_keys))
        indptr = np.zeros(self.count + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(rows[first_entries], minlength=self.count), out=indptr[1:]
        )
        return indptr, keys[first_entries]

    def skill_matches_per_row(self) -> tuple[tuple[ConceptMatch, ...], ...]:
        """Return the match of every skill as given, per registrant."""
        table = np.empty(len(self.skill_text_matches), dtype=object)
        table[:] = self.skill_text_matches
        flat = table[self.skill_entries].tolist()
        bounds = self.skill_indptr.tolist()
        return tuple(
            tuple(flat[start:stop])
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        )


def _first_of_each_pair(
    rows: NDArray[np.int64], columns: NDArray[np.int64], width: int
) -> NDArray[np.int64]:
    """Return, in ascending order, the position of the first entry of each (row, column)."""
    if not rows.size:
        return np.zeros(0, dtype=np.int64)
    _, first = np.unique(rows * max(width, 1) + columns, return_index=True)
    return np.sort(first)


@dataclass(frozen=True)
class VacancyProfile:
    """One vacancy resolved against the taxonomy, ready for scoring."""

    vacancy: Vacancy
    occupation: ConceptMatch
    isco_code: str | None
    essential_skill_ids: tuple[int, ...]
    essential_skill_labels: tuple[str, ...]
    vector: NDArray[np.float32]
    start_day: int

    @property
    def id(self) -> str:
        """The vacancy id."""
        return self.vacancy.id


def isco_level_columns(taxonomy: Taxonomy) -> dict[int, dict[str, int]]:
    """Number the ISCO-08 groups of each level, in code order.

    Parameters
    ----------
    taxonomy
        Reference data holding the ISCO-08 groups.

    Returns
    -------
    dict of int to dict of str to int
        For each level in ``ISCO_LEVELS`` (digits kept), group code to column.
    """
    return {
        level: {
            code: position
            for position, code in enumerate(
                sorted(c for c in taxonomy.isco_groups if len(c) == level)
            )
        }
        for level in ISCO_LEVELS
    }


class FeatureBuilder:
    """Build registrant and vacancy features against one taxonomy and encoder.

    Parameters
    ----------
    taxonomy
        ESCO and ISCO reference data.
    normaliser
        Maps free text to ESCO concepts.
    encoder
        Label vectors with an on-disk cache.
    """

    def __init__(
        self, taxonomy: Taxonomy, normaliser: Normaliser, encoder: LabelEncoder
    ) -> None:
        self.taxonomy = taxonomy
        self.normaliser = normaliser
        self.encoder = encoder
        self.vocabulary = SkillVocabulary()
        self._level_columns = isco_level_columns(taxonomy)
        self._minor_columns: dict[str, int] = self._level_columns[3]

    def skill_label(self, match: ConceptMatch) -> str:
        """Return the text that stands for a skill: its ESCO label, else the raw text."""
        if match.uri is not None and match.label is not None:
            return match.label
        return match.raw

    def _skill_key(self, match: ConceptMatch) -> str:
        return (
            match.uri if match.uri is not None else "text:" + match.raw.strip().lower()
        )

    def occupation_isco(
        self, claim_isco: str | None, match: ConceptMatch
    ) -> str | None:
        """Return the ISCO unit group of an occupation claim or normalised title."""
        if claim_isco is not None:
            return claim_isco
        if match.uri is not None and match.uri in self.taxonomy.occupations:
            return self.taxonomy.occupations[match.uri].isco_code
        return None

    def resolve_registrants(
        self,
        registrants: Sequence[Registrant],
        *,
        progress: ProgressCallback = _no_progress,
        memo: ResolutionMemo | None = None,
    ) -> ResolvedRegistrants:
        """Normalise the skills and titles of a batch and pool its profile vectors.

        Each distinct skill text and each distinct occupation claim of the
        batch is resolved once. The skill vocabulary is not changed.

        Parameters
        ----------
        registrants
            Validated records.
        progress
            Called as ``progress(stage, done, total)`` while the batch is resolved.
        memo
            Matches from earlier batches of the same load, read and extended
            here; a new one serves this batch only when omitted.

        Returns
        -------
        ResolvedRegistrants
        """
        count = len(registrants)
        memo = ResolutionMemo() if memo is None else memo
        lengths = np.fromiter(
            (len(registrant.skills) for registrant in registrants),
            dtype=np.int64,
            count=count,
        )
        indptr = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        entry_texts = [text for registrant in registrants for text in registrant.skills]
        texts = sorted(set(entry_texts))
        position = dict(zip(texts, range(len(texts)), strict=True))
        entries = np.fromiter(
            map(position.__getitem__, entry_texts),
            dtype=np.int64,
            count=len(entry_texts),
        )
        matches = self._map_skill_texts(texts, progress, memo.skills)

        # Keys are numbered in order of first use, as a row-by-row scan meets them.
        key_texts = [self._skill_key(match) for match in matches]
        # Every distinct text occurs, so np.unique returns each one's first entry.
        first_use = np.unique(entries, return_index=True)[1]
        key_position: dict[str, int] = {}
        for text_index in np.argsort(first_use, kind="stable").tolist():
            key_position.setdefault(key_texts[text_index], len(key_position))
        key_of_text = np.fromiter(
            (key_position[key] for key in key_texts), dtype=np.int64, count=len(texts)
        )

        occupation_matches, occupation_codes, titles = self._resolve_claims(
            registrants, memo.claims
        )
        progress("profile vectors", 0, count)
        labels = [self.skill_label(match) for match in matches]
        vectors = _pool_indexed(
            self.encoder,
            labels,
            np.repeat(np.arange(count, dtype=np.int64), lengths),
            entries,
            titles,
        )
        progress("profile vectors", count, count)
        return ResolvedRegistrants(
            skill_texts=tuple(texts),
            skill_text_matches=tuple(matches),
            skill_keys=tuple(key_position),
            skill_key_of_text=key_of_text,
            skill_indptr=indptr,
            skill_entries=entries,
            occupation_matches=occupation_matches,
            occupation_codes=occupation_codes,
            vectors=vectors,
        )

    def build_registrants(
        self,
        registrants: Sequence[Registrant],
        *,
        progress: ProgressCallback = _no_progress,
    ) -> RegistrantFeatures:
        """Normalise, pool and index a batch of registrants.

        Parameters
        ----------
        registrants
            Validated records.
        progress
            Called as ``progress(stage, done, total)`` while the batch is built.

        Returns
        -------
        RegistrantFeatures
        """
        count = len(registrants)
        resolved = self.resolve_registrants(registrants, progress=progress)

        key_indptr, key_entries = resolved.distinct_skill_keys()
        column_of_key = np.fromiter(
            (self.vocabulary.id_of(key) for key in resolved.skill_keys),
            dtype=np.int64,
            count=len(resolved.skill_keys),
        )
        width = max(len(self.vocabulary), 1)
        skills = sp.csr_array(
            (
                np.ones(key_entries.size, dtype=np.float32),
                column_of_key[key_entries],
                key_indptr,
            ),
            shape=(count, width),
        )
        skills.sort_indices()
        isco, minor_years = self._occupation_arrays(registrants, resolved)
        languages = _language_arrays(registrants)
        qualifications = _qualification_arrays(registrants)
        return RegistrantFeatures(
            keys=tuple(registrant.key for registrant in registrants),
            origin=np.array(
                [registrant.origin for registrant in registrants], dtype="<U2"
            ),
            consent=np.array(
                [registrant.consent for registrant in registrants], dtype=bool
            ),
            available_from=np.array(
                [registrant.available_from.toordinal() for registrant in registrants],
                dtype=np.int64,
            ),
            vectors=resolved.vectors,
            skills=skills,
            isco=isco,
            isco_columns=self._level_columns,
            minor_years=minor_years,
            language_rows=languages[0],
            language_rank=languages[1],
            language_test_day=languages[2],
            qualification_row=qualifications[0],
            qualification_level=qualifications[1],
            qualification_field=qualifications[2],
            qualification_country=qualifications[3],
            skill_matches=resolved.skill_matches_per_row(),
            occupation_matches=resolved.occupation_matches,
        )

    def _occupation_arrays(
        self, registrants: Sequence[Registrant], resolved: ResolvedRegistrants
    ) -> tuple[dict[int, sp.csr_array], sp.csr_array]:
        count = len(registrants)
        isco_rows: dict[int, list[tuple[int, int]]] = {
            level: [] for level in ISCO_LEVELS
        }
        year_entries: dict[tuple[int, int], float] = {}
        for row, (registrant, codes) in enumerate(
            zip(registrants, resolved.occupation_codes, strict=True)
        ):
            for claim, code in zip(registrant.occupations, codes, strict=True):
                if code is None:
                    continue
                for level in ISCO_LEVELS:
                    column = self._level_columns[level].get(code[:level])
                    if column is not None:
                        isco_rows[level].append((row, column))
                minor = self._minor_columns.get(code[:3])
                if minor is not None:
                    key = (row, minor)
                    year_entries[key] = (
                        year_entries.get(key, 0.0) + claim.years_experience
                    )
        isco = {
            level: _indicator(entries, count, len(self._level_columns[level]))
            for level, entries in isco_rows.items()
        }
        minor_years = sp.csr_array(
            (
                np.array(list(year_entries.values()), dtype=np.float32),
                (
                    np.array([key[0] for key in year_entries], dtype=np.int64),
                    np.array([key[1] for key in year_entries], dtype=np.int64),
                ),
            ),
            shape=(count, len(self._minor_columns)),
        )
        return isco, minor_years

    def _map_skill_texts(
        self,
        texts: list[str],
        progress: ProgressCallback,
        memo: dict[str, ConceptMatch],
    ) -> list[ConceptMatch]:
        pending = [text for text in texts if text not in memo]
        progress("skill normalisation", 0, len(pending))
        batch = 2_000
        for start in range(0, len(pending), batch):
            chunk = pending[start : start + batch]
            memo.update(zip(chunk, self.normaliser.map_skills(chunk), strict=True))
            progress(
                "skill normalisation", min(start + batch, len(pending)), len(pending)
            )
        return [memo[text] for text in texts]

    def _resolve_claims(
        self,
        registrants: Sequence[Registrant],
        cache: dict[ClaimKey, ResolvedClaim],
    ) -> tuple[
        tuple[tuple[ConceptMatch, ...], ...],
        tuple[tuple[str | None, ...], ...],
        list[list[str]],
    ]:
        """Resolve every occupation claim: its match, ISCO unit group and title text."""
        matches: list[tuple[ConceptMatch, ...]] = []
        codes: list[tuple[str | None, ...]] = []
        titles: list[list[str]] = []
        for registrant in registrants:
            row_matches = []
            row_codes = []
            row_titles = []
            for claim in registrant.occupations:
                key = (claim.isco_code, claim.esco_uri, claim.title)
                resolved = cache.get(key)
                if resolved is None:
                    match = self._resolve_occupation(*key)
                    code = self.occupation_isco(claim.isco_code, match)
                    text = self._occupation_text(claim.title, code, match)
                    resolved = cache[key] = (match, code, text)
                row_matches.append(resolved[0])
                row_codes.append(resolved[1])
                if resolved[2]:
                    row_titles.append(resolved[2])
            matches.append(tuple(row_matches))
            codes.append(tuple(row_codes))
            titles.append(row_titles)
        return tuple(matches), tuple(codes), titles

    def _resolve_occupation(
        self, isco_code: str | None, esco_uri: str | None, title: str | None
    ) -> ConceptMatch:
        if esco_uri is not None:
            return self.normaliser.map_occupation(esco_uri)
        if title is not None:
            return self.normaliser.map_occupation(title)
        return ConceptMatch(
            raw=isco_code or "", uri=None, label=None, confidence=0.0, method="unmapped"
        )

    def _occupation_text(
        self, title: str | None, code: str | None, match: ConceptMatch
    ) -> str:
        if match.label is not None:
            return match.label
        if title:
            return title
        if code is not None:
            return self.taxonomy.isco_groups.get(code, "")
        return ""

    def build_vacancy(self, vacancy: Vacancy) -> VacancyProfile:
        """Resolve a vacancy's occupation and essential skills and pool its vector.

        When the vacancy lists no essential skills, its ESCO occupation's
        essential skills stand in for them.
        """
        occupation = self._resolve_occupation(
            vacancy.isco_code, vacancy.esco_uri, vacancy.title
        )
        isco_code = self.occupation_isco(vacancy.isco_code, occupation)
        if vacancy.essential_skills:
            matches = self.normaliser.map_skills(list(vacancy.essential_skills))
        elif occupation.uri is not None and occupation.uri in self.taxonomy.occupations:
            uris = self.taxonomy.essential_skills(occupation.uri)
            matches = self.normaliser.map_skills(list(uris))
        else:
            matches = []
        skill_ids = tuple(
            dict.fromkeys(
                self.vocabulary.id_of(self._skill_key(match)) for match in matches
            )
        )
        labels = tuple(dict.fromkeys(self.skill_label(match) for match in matches))
        title = self._occupation_text(vacancy.title, isco_code, occupation)
        vector = pool_profile_vectors(
            self.encoder, [list(labels)], [[title] if title else []]
        )[0]
        return VacancyProfile(
            vacancy=vacancy,
            occupation=occupation,
            isco_code=isco_code,
            essential_skill_ids=skill_ids,
            essential_skill_labels=labels,
            vector=vector,
            start_day=vacancy.start_date.toordinal(),
        )

    def build_vacancies(self, vacancies: Sequence[Vacancy]) -> list[VacancyProfile]:
        """Build :class:`VacancyProfile` for each vacancy in order."""
        return [self.build_vacancy(vacancy) for vacancy in vacancies]


def pool_profile_vectors(
    encoder: LabelEncoder,
    skill_texts: Sequence[Sequence[str]],
    title_texts: Sequence[Sequence[str]],
) -> NDArray[np.float32]:
    """Pool label vectors into one L2-normalised vector per profile.

    Parameters
    ----------
    encoder
        Source of label vectors; each distinct label is embedded once.
    skill_texts, title_texts
        Per profile, the skill labels and occupation titles to pool.

    Returns
    -------
    ndarray of float32, shape (profiles, dim)
        ``SKILL_WEIGHT * mean(skills) + TITLE_WEIGHT * mean(titles)``,
        normalised; a profile with neither is the zero vector. A label given
        twice in one profile counts once.
    """
    labels = sorted({text for texts in skill_texts for text in texts})
    position = dict(zip(labels, range(len(labels)), strict=True))
    rows, entries = _membership(skill_texts, position)
    return _pool_indexed(encoder, labels, rows, entries, title_texts)


def _pool_indexed(
    encoder: LabelEncoder,
    skill_labels: Sequence[str],
    skill_rows: NDArray[np.int64],
    skill_entries: NDArray[np.int64],
    title_texts: Sequence[Sequence[str]],
) -> NDArray[np.float32]:
    """Pool profile vectors from skill entries given as (row, label index) pairs.

    ``skill_entries`` index ``skill_labels``; several labels may be equal and
    a label repeated in one row counts once, as in :func:`pool_profile_vectors`.
    There is one row per entry of ``title_texts``.
    """
    count = len(title_texts)
    distinct = sorted(
        {*skill_labels, *(text for texts in title_texts for text in texts)}
    )
    position = dict(zip(distinct, range(len(distinct)), strict=True))
    skill_columns = np.fromiter(
        map(position.__getitem__, skill_labels), dtype=np.int64, count=len(skill_labels)
    )[skill_entries]
    title_rows, title_columns = _membership(title_texts, position)
    table = (
        encoder.encode(distinct) if distinct else np.zeros((0, encoder.dim), np.float32)
    )
    pooled = np.zeros((count, encoder.dim), dtype=np.float32)
    for weight, rows, columns in (
        (SKILL_WEIGHT, skill_rows, skill_columns),
        (TITLE_WEIGHT, title_rows, title_columns),
    ):
        first_entries = _first_of_each_pair(rows, columns, len(distinct))
        if not first_entries.size:
            continue
        matrix = sp.csr_array(
            (
                np.ones(first_entries.size, np.float32),
                (rows[first_entries], columns[first_entries]),
            ),
            shape=(count, len(distinct)),
        )
        sizes = np.maximum(matrix.sum(axis=1), 1.0).astype(np.float32)
        pooled += weight * (matrix @ table) / sizes[:, None]
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    np.divide(pooled, norms, out=pooled, where=norms > 0)
    return pooled


def _membership(
    groups: Sequence[Sequence[str]], position: dict[str, int]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return the row and the ``position`` of every text of ``groups``, repeats kept."""
    lengths = np.fromiter(
        (len(texts) for texts in groups), dtype=np.int64, count=len(groups)
    )
    rows = np.repeat(np.arange(len(groups), dtype=np.int64), lengths)
    columns = np.fromiter(
        (position[text] for texts in groups for text in texts),
        dtype=np.int64,
        count=int(lengths.sum()),
    )
    return rows, columns


def _indicator(entries: list[tuple[int, int]], rows: int, cols: int) -> sp.csr_array:
    if not entries:
        return sp.csr_array((rows, max(cols, 1)), dtype=np.float32)
    unique = sorted(set(entries))
    data = np.ones(len(unique), dtype=np.float32)
    row_index = np.array([entry[0] for entry in unique], dtype=np.int64)
    col_index = np.array([entry[1] for entry in unique], dtype=np.int64)
    return sp.csr_array((data, (row_index, col_index)), shape=(rows, max(cols, 1)))


def _language_arrays(
    registrants: Sequence[Registrant],
) -> tuple[
    dict[str, NDArray[np.int64]],
    dict[str, NDArray[np.int8]],
    dict[str, NDArray[np.int64]],
]:
    rows: dict[str, list[int]] = {}
    ranks: dict[str, list[int]] = {}
    days: dict[str, list[int]] = {}
    for row, registrant in enumerate(registrants):
        for certificate in registrant.languages:
            if certificate.test_date is None:
                # A self-declared level is no evidence for a language minimum.
                continue
            rows.setdefault(certificate.language, []).append(row)
            ranks.setdefault(certificate.language, []).append(certificate.rank)
            days.setdefault(certificate.language, []).append(
                certificate.test_date.toordinal()
            )
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


def _qualification_arrays(
    registrants: Sequence[Registrant],
) -> tuple[NDArray[np.int64], NDArray[np.int8], NDArray[np.str_], NDArray[np.str_]]:
    rows: list[int] = []
    levels: list[int] = []
    fields: list[str] = []
    countries: list[str] = []
    for row, registrant in enumerate(registrants):
        for qualification in registrant.qualifications:
            rows.append(row)
            levels.append(qualification.level)
            fields.append(normalise_field(qualification.field))
            countries.append(qualification.issuing_country)
    return (
        np.array(rows, dtype=np.int64),
        np.array(levels, dtype=np.int8),
        np.array(fields, dtype=object).astype(str)
        if fields
        else np.array([], dtype="<U1"),
        np.array(countries, dtype="<U2"),
    )


def normalise_field(text: str) -> str:
    """Return a field-of-study name in the form recognition tables compare."""
    return " ".join(text.lower().split())


RECOGNITION_RANK = {
    state: rank for rank, state in enumerate(reversed(RECOGNITION_STATES))
}


def day_of(value: dt.date) -> int:
    """Return the proleptic Gregorian ordinal of a date."""
    return value.toordinal()
