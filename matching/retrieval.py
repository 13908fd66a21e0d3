"""Candidate generation at scale: the top-K eligible registrants of every vacancy.

:func:`matching.rounds.collect_candidates` applies the rules and the full
score to every (registrant, vacancy) pair, one vacancy at a time. That costs
O(N M) and about 10 ms of Python per vacancy, so hours for a million
registrants and 50,000 vacancies. This module returns the same candidates
from two vectorised stages.

1. **Search.** Vacancies are partitioned by destination, and a partition
   contains the registrants who consented and whose origin has an agreement
   with that destination. Its vacancies are split further into rule groups
   that share the origins their corridor admits (agreement in force, sector
   or occupation covered, a quota cell applies), their own language
   minimums and, for a regulated occupation, the recognition rules. A group
   scans only the registrants of those origins who hold a recognised
   qualification where one is needed, and a test at each minimum that is
   still valid on the group's first start day under the longest validity of
   the destination's agreements. Vacancies then go in blocks by start day
   against the registrants available by the block's last start day. For a
   block, every score component is a dense matrix: cosine and ISCO credit
   by matrix products, essential-skill coverage by a sparse product over the
   skills some vacancy requires, experience by a gather. The language
   margin is estimated from each registrant's best tested level. Pairs that
   fail availability or a test expiry at their own start day are masked,
   and the best ``overfetch * K`` pairs per vacancy by the weighted sum are
   kept. Every filter and mask here removes ineligible pairs only. A
   partition with more pairs than ``SearchSettings.exhaustive_max_pairs`` is
   searched through an inverted file: registrants are grouped by spherical
   k-means over their profile vectors, and each vacancy scans only the
   groups whose centroids score best against it.
2. **Rules and score.** On the pairs kept, the remaining rules run exactly:
   recognition for regulated occupations, and each language minimum of the
   vacancy and of the corridor's agreement, met by a test valid on the start
   date under that agreement's validity. The language margin component and
   the total are computed as :func:`~matching.scoring.score_vacancy`
   computes them. The best ``K`` by total are kept with the rule of
   :func:`~matching.rounds.collect_candidates`: at least ``min_score``,
   ties to the lower registrant row.

Every pair returned is therefore eligible and carries its full score. The
search can miss an eligible pair only when the pair ranked below the
over-fetch, either because the language estimate favoured others or because
its group was not scanned, while its full score would make the top K.
:func:`recall_at_k` measures how often that happens, against
:func:`exact_top_candidates`, the per-vacancy brute force. With an
exhaustive search and enough over-fetch the pairs equal those of
:func:`~matching.rounds.collect_candidates`. The scores then agree to the
float32 rounding of the cosine, about 1e-6.

Matrix products go through numpy's BLAS. faiss is not used, because its flat
and IVF searches take one filter for a whole batch of queries, while the
rules and all but one score component here differ per vacancy.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.eligibility import AgreementIndex, evaluate_eligibility
from matching.features import (
    ISCO_LEVELS,
    RECOGNITION_RANK,
    RegistrantFeatures,
    VacancyProfile,
    normalise_field,
)
from matching.models import BilateralAgreement
from matching.rounds import CandidatePairs, RoundConfig, _top_rows
from matching.scoring import COMPONENTS, ISCO_LEVEL_CREDIT, ScoreWeights, score_vacancy

logger = logging.getLogger(__name__)

__all__ = [
    "CandidateSearch",
    "LanguageMargins",
    "RecallReport",
    "SearchSettings",
    "exact_top_candidates",
    "recall_at_k",
    "retrieve_candidates",
]

# Expiry day of a test level a registrant does not hold.
_NO_TEST = np.iinfo(np.int64).min // 2
# CEFR ranks run from 1 (A1) to 6 (C2), as matching.codes.cefr_rank numbers them.
# Index 0 of a rank table means no minimum.
_CEFR_RANKS = 7
_RECOGNISED = RECOGNITION_RANK["recognised"]
_NOT_REQUIRED = -1
# The score components the search computes per block, in storage order.
_SEARCHED = ("semantic", "isco_proximity", "skill_matches", "experience")


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    """Settings of the first stage, the search over each destination's registrants.

    Attributes
    ----------
    overfetch
        The search keeps ``ceil(overfetch * K)`` pairs per vacancy for the
        exact rules and score; at least 1.
    exhaustive_max_pairs
        A partition with at most this many (registrant, vacancy) pairs is
        searched exhaustively; a larger one through the inverted file.
    registrants_per_group
        Target group size of the inverted file; the number of groups is the
        partition size over this, between 8 and 1024.
    probe_share
        Share of the groups each vacancy scans, at least one group.
    block_elements
        Pairs scored at once; each costs about 40 bytes of temporaries.
    kmeans_iterations, kmeans_sample
        Lloyd iterations and registrants sampled to fit the group centroids.
    seed
        Seed of the k-means sample and initial centroids.
    """

    overfetch: float = 1.2
    exhaustive_max_pairs: int = 50_000_000
    registrants_per_group: int = 20_000
    probe_share: float = 0.3
    block_elements: int = 4_000_000
    kmeans_iterations: int = 8
    kmeans_sample: int = 60_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.overfetch >= 1.0:
            raise ValueError(f"overfetch is {self.overfetch}, but it must be >= 1")
        if not 0.0 < self.probe_share <= 1.0:
            raise ValueError(
                f"probe_share is {self.probe_share}, but it must be in (0, 1]"
            )
        for name in (
            "exhaustive_max_pairs",
            "registrants_per_group",
            "block_elements",
            "kmeans_iterations",
            "kmeans_sample",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} is {value}, but it must be >= 1")

    @classmethod
    def exhaustive(cls, *, overfetch: float = 1.2) -> SearchSettings:
        """Return settings that scan every partition in full."""
        return cls(overfetch=overfetch, exhaustive_max_pairs=2**62)


class LanguageMargins(Sequence[dict[str, int]]):
    """Per-pair CEFR margins, stored as int8 blocks instead of one dict a pair.

    Item ``e`` is ``{language: levels above the minimum}`` for pair ``e``,
    as in the list :func:`~matching.rounds.collect_candidates` builds; ten
    million dicts would take gigabytes.
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._languages: list[tuple[str, ...]] = []
        self._values: list[NDArray[np.int8]] = []
        self._listed: list[NDArray[np.bool_]] = []
        self._length = 0

    def append_block(
        self,
        languages: tuple[str, ...],
        values: NDArray[np.int8],
        listed: NDArray[np.bool_],
    ) -> None:
        """Add the next pairs' margins.

        Parameters
        ----------
        languages
            The L languages of the block's columns.
        values
            (pairs, L) margins.
        listed
            (pairs, L) True where the language belongs in the pair's item.
        """
        if values.shape[0] == 0:
            return
        self._starts.append(self._length)
        self._languages.append(languages)
        self._values.append(values)
        self._listed.append(listed)
        self._length += int(values.shape[0])

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> dict[str, int]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, int]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, int] | list[dict[str, int]]:
        if isinstance(index, slice):
            return [self[position] for position in range(*index.indices(self._length))]
        position = index + self._length if index < 0 else index
        if not 0 <= position < self._length:
            raise IndexError(
                f"pair {index} is out of range for {self._length} candidate pairs"
            )
        block = bisect_right(self._starts, position) - 1
        row = position - self._starts[block]
        return self._item(block, row)

    def _item(self, block: int, row: int) -> dict[str, int]:
        values = self._values[block][row].tolist()
        listed = self._listed[block][row].tolist()
        return {
            language: value
            for language, value, keep in zip(
                self._languages[block], values, listed, strict=True
            )
            if keep
        }

    def __iter__(self) -> Iterator[dict[str, int]]:
        for block, values in enumerate(self._values):
            for row in range(values.shape[0]):
                yield self._item(block, row)


@dataclass(frozen=True)
class CandidateSearch:
    """Candidate pairs of a round and what finding them cost.

    Attributes
    ----------
    pairs
        The candidate pairs, grouped by destination (in code order), then
        by vacancy and ascending registrant row.
    searched_pairs
        (registrant, vacancy) pairs scored in the search.
    rescored_pairs
        Pairs kept by the search and passed to the exact rules.
    eligible_pairs
        Of those, the pairs that passed every rule.
    partitions
        Per destination: registrants, vacancies, and groups in the inverted
        file (1 when searched exhaustively).
    timings
        Seconds spent in ``search`` and in ``rules`` (the second stage).
    """

    pairs: CandidatePairs
    searched_pairs: int
    rescored_pairs: int
    eligible_pairs: int
    partitions: dict[str, tuple[int, int, int]]
    timings: dict[str, float] = field(default_factory=dict)


def retrieve_candidates(
    features: RegistrantFeatures,
    profiles: Sequence[VacancyProfile],
    agreements: AgreementIndex,
    config: RoundConfig,
    *,
    search: SearchSettings | None = None,
) -> CandidateSearch:
    """Find each vacancy's best eligible registrants without a full scan per vacancy.

    Parameters
    ----------
    features
        The registrant batch.
    profiles
        The vacancies.
    agreements
        Agreements and quota cells of the round.
    config
        Round settings: ``candidates_per_vacancy`` (K; None keeps every
        eligible registrant the search finds), ``min_score`` and ``weights``.
    search
        First-stage settings; :class:`SearchSettings` defaults when None.

    Returns
    -------
    CandidateSearch
        The pairs, in the layout :func:`~matching.rounds.build_problem` takes.

    Notes
    -----
    See the module documentation for the two stages. Per destination d the
    search costs about ``N_d M_d (384 + G + s)`` multiply-adds for G ISCO
    groups and s skills per registrant (about 50 and 15), times the probed
    share of groups through the inverted file, plus some twenty passes over
    the ``N_d M_d`` block entries. The second stage is linear in the pairs
    kept.
    """
    settings = search or SearchSettings()
    limit = config.candidates_per_vacancy
    batch_origins = frozenset(np.unique(features.origin).tolist())
    by_destination: dict[str, list[int]] = {}
    for index, profile in enumerate(profiles):
        by_destination.setdefault(profile.vacancy.destination, []).append(index)

    timings = {"search": 0.0, "rules": 0.0}
    parts: list[_ScoredPairs] = []
    partitions: dict[str, tuple[int, int, int]] = {}
    searched = 0
    rescored = 0
    for destination, indices in sorted(by_destination.items()):
        started = time.perf_counter()
        partition = _Partition.build(
            features, profiles, indices, agreements, config.weights
        )
        fetch = (
            partition.size
            if limit is None
            else min(math.ceil(settings.overfetch * limit), partition.size)
        )
        found, searched_here, groups = partition.search(fetch, settings)
        searched += searched_here
        rescored += found.position.size
        partitions[destination] = (partition.size, len(indices), groups)
        middle = time.perf_counter()
        parts.append(_apply_rules(config, partition, found, batch_origins))
        timings["search"] += middle - started
        timings["rules"] += time.perf_counter() - middle

    started = time.perf_counter()
    pairs = _assemble(parts, len(agreements.cells))
    eligible = sum(part.eligible for part in parts)
    timings["rules"] += time.perf_counter() - started
    logger.debug(
        "retrieval: %d pairs searched, %d rescored, %d eligible, %d kept; "
        "%.2f s search, %.2f s rules",
        searched,
        rescored,
        eligible,
        pairs.vacancy.size,
        timings["search"],
        timings["rules"],
    )
    return CandidateSearch(
        pairs=pairs,
        searched_pairs=searched,
        rescored_pairs=rescored,
        eligible_pairs=eligible,
        partitions=partitions,
        timings=timings,
    )


# Rule group key: admitted origin codes, (language, CEFR rank) minimums, and
# for a regulated occupation its ISCO code and each admitted origin's agreement.
_GroupKey = tuple[
    tuple[int, ...], tuple[tuple[str, int], ...], tuple[str, tuple[int, ...]] | None
]


@dataclass(frozen=True)
class _Found:
    """Pairs the search kept in one partition, with the components it computed."""

    vacancy: NDArray[np.int64]  # (P,) vacancy position in the partition
    slot: NDArray[np.int64]  # (P,) column among the vacancy's `width` slots
    position: NDArray[np.int64]  # (P,) registrant position in the partition
    components: dict[str, NDArray[np.float32]]  # name in _SEARCHED -> (P,)
    width: int


@dataclass(frozen=True)
class _CorridorTable:
    """Terms of each origin's agreement in force for each vacancy of a partition.

    Arrays are (origins, m), indexed by origin code and vacancy position.
    """

    passes: NDArray[np.bool_]  # eligibility rule 1 (the corridor)
    agreement: NDArray[np.int64]  # index into agreements, -1 when none is in force
    agreements: list[BilateralAgreement]
    validity_days: NDArray[np.int64]  # test validity, 0 without an agreement
    required: dict[str, NDArray[np.int64]]  # CEFR rank per language, 0 for none
    cell_pattern: NDArray[np.int64]  # index into cell_columns
    cell_columns: list[tuple[int, ...]]  # quota cell columns a pair falls in


def _corridor_table(
    origins: tuple[str, ...],
    profiles: Sequence[VacancyProfile],
    agreements: AgreementIndex,
) -> _CorridorTable:
    """Apply eligibility rule 1 (the corridor) per origin and vacancy, and collect terms.

    The same as :func:`~matching.eligibility.evaluate_eligibility` does per
    origin, vectorised over the vacancies that share an agreement.
    """
    shape = (len(origins), len(profiles))
    passes = np.zeros(shape, dtype=bool)
    agreement_index = np.full(shape, -1, dtype=np.int64)
    validity = np.zeros(shape, dtype=np.int64)
    cell_pattern = np.zeros(shape, dtype=np.int64)
    patterns: dict[tuple[int, ...], int] = {(): 0}
    listed: dict[str, int] = {}
    in_force: list[BilateralAgreement] = []
    minimum_sets: dict[tuple[object, ...], int] = {}
    minimum_set_of = np.zeros(shape, dtype=np.int64)
    required_levels: list[dict[str, int]] = []
    for code, origin in enumerate(origins):
        chosen: dict[int, list[int]] = {}
        by_day: dict[object, BilateralAgreement | None] = {}
        for position, profile in enumerate(profiles):
            vacancy = profile.vacancy
            if vacancy.start_date not in by_day:
                by_day[vacancy.start_date] = agreements.agreement_for(
                    origin, vacancy.destination, vacancy.start_date
                )[0]
            agreement = by_day[vacancy.start_date]
            key = (
                None if agreement is None else agreement.id,
                tuple((item.language, item.rank) for item in vacancy.language_minimums),
            )
            if key not in minimum_sets:
                minimum_sets[key] = len(required_levels)
                required_levels.append(_required_levels(profile, agreement))
            minimum_set_of[code, position] = minimum_sets[key]
            if agreement is None:
                continue
            if agreement.id not in listed:
                listed[agreement.id] = len(in_force)
                in_force.append(agreement)
            chosen.setdefault(listed[agreement.id], []).append(position)
        for index, positions in chosen.items():
            agreement = in_force[index]
            selected = np.array(positions, dtype=np.int64)
            agreement_index[code, selected] = index
            validity[code, selected] = agreement.test_validity_days
            covered = np.array(
                [
                    agreement.covers(
                        profiles[position].vacancy.sector, profiles[position].isco_code
                    )
                    for position in positions
                ],
                dtype=bool,
            )
            if not agreement.quota_cells:
                passes[code, selected] = covered
                continue
            applies = _cells_applying(agreement, [profiles[p] for p in positions])
            for column, position in enumerate(positions):
                columns = tuple(np.flatnonzero(applies[:, column]).tolist())
                cells = tuple(
                    agreements.cell_column[agreement.quota_cells[c].id] for c in columns
                )
                passes[code, position] = covered[column] and bool(cells)
                if covered[column]:
                    cell_pattern[code, position] = patterns.setdefault(
                        cells, len(patterns)
                    )
    languages = sorted({name for levels in required_levels for name in levels})
    required = {}
    for language in languages:
        level_of_set = np.array(
            [levels.get(language, 0) for levels in required_levels], dtype=np.int64
        )
        required[language] = level_of_set[minimum_set_of]
    return _CorridorTable(
        passes=passes,
        agreement=agreement_index,
        agreements=in_force,
        validity_days=validity,
        required=required,
        cell_pattern=cell_pattern,
        cell_columns=list(patterns),
    )


def _cells_applying(
    agreement: BilateralAgreement, profiles: Sequence[VacancyProfile]
) -> NDArray[np.bool_]:
    """(agreement cells, vacancies) True where a cell applies, as cells_for decides."""
    day = np.array([profile.vacancy.start_date.toordinal() for profile in profiles])
    sector = np.array([profile.vacancy.sector for profile in profiles])
    isco = np.array([profile.isco_code or "" for profile in profiles])
    has_isco = np.array([profile.isco_code is not None for profile in profiles])
    prefixed: dict[str, NDArray[np.bool_]] = {}
    applies = np.zeros((len(agreement.quota_cells), len(profiles)), dtype=bool)
    for row, cell in enumerate(agreement.quota_cells):
        mask = (cell.period_start.toordinal() <= day) & (
            day <= cell.period_end.toordinal()
        )
        if cell.sector is not None:
            mask &= sector == cell.sector
        if cell.isco_prefix is not None:
            if cell.isco_prefix not in prefixed:
                prefixed[cell.isco_prefix] = has_isco & np.char.startswith(
                    isco, cell.isco_prefix
                )
            mask &= prefixed[cell.isco_prefix]
        applies[row] = mask
    return applies


@dataclass(frozen=True, eq=False)
class _Scanned:
    """Registrant-side factors of one scan, gathered once into contiguous arrays."""

    position: NDArray[np.int64]  # (n,) partition positions
    vectors: NDArray[np.float32]
    isco_groups: NDArray[np.float32]
    skills: sp.csr_array
    years: NDArray[np.float32]
    available_from: NDArray[np.int64]
    valid_until: NDArray[np.int64]  # (n, minimums) last day each minimum is met
    language_credit: NDArray[np.float32]

    def head(self, count: int) -> _Scanned:
        """Return the first ``count`` registrants, as views where possible."""
        return _Scanned(
            position=self.position[:count],
            vectors=self.vectors[:count],
            isco_groups=self.isco_groups[:count],
            skills=self.skills[:count],
            years=self.years[:count],
            available_from=self.available_from[:count],
            valid_until=self.valid_until[:count],
            language_credit=self.language_credit[:count],
        )


@dataclass(frozen=True, eq=False)
class _Partition:
    """The registrants and vacancies of one destination, laid out for the search.

    Registrant-side arrays have one row per partition registrant (n), in
    ``rows`` order; vacancy-side arrays one row per vacancy (m).
    """

    rows: NDArray[np.int64]  # (n,) registrant rows in the batch
    profiles: list[VacancyProfile]  # (m,)
    vacancy_indices: NDArray[np.int64]  # (m,) vacancy indices in the round
    origins: tuple[str, ...]  # origins with an agreement to the destination
    weights: ScoreWeights
    vectors: NDArray[np.float32]  # (n, d)
    vacancy_vectors: NDArray[np.float32]  # (m, d)
    isco_groups: NDArray[np.float32]  # (n, g) 0/1: has an occupation in this ISCO group
    isco_credit: NDArray[np.float32]  # (m, g) credit added at each group's level
    skills: sp.csr_array  # (n, u) 0/1 over the skills some vacancy requires
    essential: NDArray[np.float32]  # (m, u) 0/1 essential skills
    essential_count: NDArray[np.int64]  # (m,) essential skill ids, matched or not
    years: NDArray[np.float32]  # (n, y) years per ISCO minor group of a vacancy
    years_column: NDArray[np.int64]  # (m,) column of years, -1 for none
    target_years: NDArray[np.float32]  # (m,) years that earn full credit
    origin_code: NDArray[np.int64]  # (n,) index into origins
    corridors: _CorridorTable
    available_from: NDArray[np.int64]  # (n,)
    start_day: NDArray[np.int64]  # (m,)
    # One entry per qualification of a partition registrant.
    qualification_owner: NDArray[np.int64]  # partition position
    qualification_level: NDArray[np.int8]
    qualification_field: NDArray[np.str_]
    qualification_country: NDArray[np.str_]
    # Per language some vacancy requires: (n, 7) last day on which a test of
    # at least each CEFR rank is valid under the longest validity of the
    # destination's agreements, (n,) best tested rank, and (m,) the rank the
    # vacancy itself requires (0 when none).
    test_expiry: dict[str, NDArray[np.int64]]
    best_rank: dict[str, NDArray[np.int64]]
    required_rank: dict[str, NDArray[np.int64]]
    # Per language any vacancy or agreement requires: (n, tests) rank and day
    # of every test, rank 0 in unused slots.
    tests: dict[str, tuple[NDArray[np.int64], NDArray[np.int64]]]

    @property
    def size(self) -> int:
        return int(self.rows.size)

    @classmethod
    def build(
        cls,
        features: RegistrantFeatures,
        profiles: Sequence[VacancyProfile],
        vacancy_indices: list[int],
        agreements: AgreementIndex,
        weights: ScoreWeights,
    ) -> _Partition:
        members = [profiles[index] for index in vacancy_indices]
        destination = members[0].vacancy.destination
        origins = tuple(
            sorted(origin for origin, to in agreements.by_corridor if to == destination)
        )
        rows = np.flatnonzero(np.isin(features.origin, origins) & features.consent)
        validity = max(
            (
                agreement.test_validity_days
                for origin in origins
                for agreement in agreements.by_corridor[(origin, destination)]
            ),
            default=0,
        )
        required_rank = _vacancy_ranks(members)
        isco_groups, isco_credit = _isco_factors(features, rows, members)
        skills, essential, essential_count = _skill_factors(features, rows, members)
        years, years_column, target_years = _experience_factors(
            features, rows, members, weights
        )
        corridors = _corridor_table(origins, members, agreements)
        owner, entry = _expand_entries(features.qualification_row, rows)
        return cls(
            rows=rows,
            profiles=members,
            vacancy_indices=np.array(vacancy_indices, dtype=np.int64),
            origins=origins,
            weights=weights,
            vectors=features.vectors[rows],
            vacancy_vectors=np.stack([profile.vector for profile in members]).astype(
                np.float32
            ),
            isco_groups=isco_groups,
            isco_credit=isco_credit,
            skills=skills,
            essential=essential,
            essential_count=essential_count,
            years=years,
            years_column=years_column,
            target_years=target_years,
            origin_code=np.searchsorted(
                np.array(origins, dtype=features.origin.dtype), features.origin[rows]
            ).astype(np.int64),
            corridors=corridors,
            available_from=features.available_from[rows],
            start_day=np.array([profile.start_day for profile in members], np.int64),
            qualification_owner=owner,
            qualification_level=features.qualification_level[entry],
            qualification_field=features.qualification_field[entry],
            qualification_country=features.qualification_country[entry],
            test_expiry={
                language: _test_expiry(features, rows, language, validity)
                for language in required_rank
            },
            best_rank={
                language: _best_tested_rank(features, rows, language)
                for language in required_rank
            },
            required_rank=required_rank,
            tests={
                language: _test_slots(features, rows, language)
                for language in sorted(set(required_rank) | set(corridors.required))
            },
        )

    def search(self, fetch: int, settings: SearchSettings) -> tuple[_Found, int, int]:
        """Keep each vacancy's best ``fetch`` pairs; also count pairs and groups.

        Vacancies are split into rule groups that share the origins their
        corridor admits and their language minimums. A group scans only the
        registrants of those origins who hold a test at each minimum valid on
        the group's first start day and who are available by its last. Within
        a group, vacancies go in blocks by start day, and each block narrows
        the registrants the same way.
        """
        count = len(self.profiles)
        rule_groups = self._rule_groups()
        estimate = sum(
            members.size * vacancies.size for vacancies, members, _ in rule_groups
        )
        if fetch == 0 or estimate == 0:
            empty = np.zeros(0, dtype=np.int64)
            components = {name: np.zeros(0, np.float32) for name in _SEARCHED}
            return _Found(empty, empty, empty, components, max(fetch, 1)), 0, 0
        if estimate <= settings.exhaustive_max_pairs:
            clusters = 1
            cluster_of = np.zeros(self.size, dtype=np.int64)
            probes = np.zeros((count, 1), dtype=np.int64)
        else:
            clusters, cluster_of, probes = self._inverted_file(settings)

        # best["value"][v] contains the weighted sums of the best `fetch` pairs of
        # vacancy v among the registrants scanned so far (-inf marks an empty
        # slot), best["position"][v] their partition positions, and
        # best[name][v] their component values.
        best: dict[str, NDArray[np.generic]] = {
            "value": np.full((count, fetch), -np.inf, dtype=np.float32),
            "position": np.full((count, fetch), -1, dtype=np.int64),
        }
        for name in _SEARCHED:
            best[name] = np.zeros((count, fetch), dtype=np.float32)
        searched = 0
        for vacancies, members, requirements in rule_groups:
            language_credit = self._language_credit(requirements)
            member_cluster = cluster_of[members]
            order = np.argsort(member_cluster, kind="stable")
            members = members[order]
            bounds = np.searchsorted(member_cluster[order], np.arange(clusters + 1))
            vacancy_probes = probes[vacancies]
            for cluster in range(clusters):
                in_cluster = members[bounds[cluster] : bounds[cluster + 1]]
                scanning = vacancies[(vacancy_probes == cluster).any(axis=1)]
                if in_cluster.size == 0 or scanning.size == 0:
                    continue
                scanned = self._gather(in_cluster, requirements, language_credit)
                step = max(settings.block_elements // in_cluster.size, 1)
                for start in range(0, scanning.size, step):
                    block = scanning[start : start + step]
                    # Registrants are ordered by availability, so those
                    # available by the block's last start day come first.
                    available = int(
                        np.searchsorted(
                            scanned.available_from,
                            self.start_day[block].max(),
                            side="right",
                        )
                    )
                    if available == 0:
                        continue
                    self._score_block(scanned.head(available), block, fetch, best)
                    searched += available * block.size

        kept = np.isfinite(best["value"])
        vacancy, slot = np.nonzero(kept)
        found = _Found(
            vacancy=vacancy.astype(np.int64),
            slot=slot.astype(np.int64),
            position=best["position"][kept],
            components={name: best[name][kept] for name in _SEARCHED},
            width=fetch,
        )
        return found, searched, clusters

    def valid_ranks(
        self,
        language: str,
        positions: NDArray[np.int64],
        start_day: NDArray[np.int64],
        validity_days: NDArray[np.int64],
    ) -> NDArray[np.int64]:
        """Best rank per pair among the registrant's tests valid on the start day."""
        tests = self.tests.get(language)
        if tests is None:
            return np.zeros(positions.size, dtype=np.int64)
        ranks = tests[0][positions]
        days = tests[1][positions]
        valid = days + validity_days[:, None] >= start_day[:, None]
        return np.asarray(np.where(valid, ranks, 0).max(axis=1), dtype=np.int64)

    def _rule_groups(
        self,
    ) -> list[tuple[NDArray[np.int64], NDArray[np.int64], tuple[tuple[str, int], ...]]]:
        """Return (vacancies by start day, registrants, language minimums) per rule group."""
        keys: dict[_GroupKey, list[int]] = {}
        patterns, pattern_of = np.unique(
            self.corridors.passes.T, axis=0, return_inverse=True
        )
        admitted_of = [tuple(np.flatnonzero(pattern).tolist()) for pattern in patterns]
        for position, profile in enumerate(self.profiles):
            admitted = admitted_of[int(pattern_of.reshape(-1)[position])]
            if not admitted:
                continue
            requirements = tuple(
                (language, int(ranks[position]))
                for language, ranks in sorted(self.required_rank.items())
                if ranks[position] > 0
            )
            # A regulated occupation also needs recognition, which depends on
            # the ISCO code and each admitted origin's agreement.
            recognition = None
            if profile.vacancy.regulated:
                recognition = (
                    profile.isco_code or "",
                    tuple(
                        int(self.corridors.agreement[code, position])
                        for code in admitted
                    ),
                )
            key = (admitted, requirements, recognition)
            keys.setdefault(key, []).append(position)
        groups = []
        for (admitted, requirements, recognition), positions in keys.items():
            vacancies = np.array(positions, dtype=np.int64)
            vacancies = vacancies[np.argsort(self.start_day[vacancies], kind="stable")]
            first_day = int(self.start_day[vacancies[0]])
            last_day = int(self.start_day[vacancies[-1]])
            allowed = np.isin(self.origin_code, np.array(admitted, dtype=np.int64))
            allowed &= self.available_from <= last_day
            for language, rank in requirements:
                allowed &= self.test_expiry[language][:, rank] >= first_day
            if recognition is not None:
                allowed &= self._recognised(admitted, *recognition)
            groups.append((vacancies, np.flatnonzero(allowed), requirements))
        return groups

    def _recognised(
        self,
        admitted: tuple[int, ...],
        isco_code: str,
        agreement_indices: tuple[int, ...],
    ) -> NDArray[np.bool_]:
        """(n,) True where a qualification is recognised for a regulated occupation.

        The rule of eligibility rule 4, applied per registrant for vacancies
        that share the ISCO code and each origin's agreement.
        """
        rank = np.zeros(self.size, dtype=np.int8)
        owner = self.qualification_owner
        for code, index in zip(admitted, agreement_indices, strict=True):
            if index < 0:
                continue
            in_corridor = (self.origin_code[owner] == code) & (
                self.qualification_country == self.origins[code]
            )
            for rule in self.corridors.agreements[index].recognition:
                if not isco_code.startswith(rule.isco_prefix):
                    continue
                matches = in_corridor & (self.qualification_level >= rule.min_level)
                if rule.field is not None:
                    matches &= self.qualification_field == normalise_field(rule.field)
                state = np.int8(RECOGNITION_RANK[rule.state])
                np.maximum.at(rank, owner[matches], state)
        return np.asarray(rank == _RECOGNISED, dtype=bool)

    def _language_credit(
        self, requirements: tuple[tuple[str, int], ...]
    ) -> NDArray[np.float32]:
        """(n,) language margin credit from each registrant's best tested level.

        Exact when each registrant has one test per language and the
        corridor's agreement adds no stricter minimum. Otherwise the second
        stage computes it exactly.
        """
        credit = np.zeros(self.size, dtype=np.float32)
        for language, rank in requirements:
            margin = self.best_rank[language] - rank
            credit += np.clip(0.5 + 0.25 * margin, 0.0, 1.0).astype(np.float32)
        return (credit / max(len(requirements), 1)).astype(np.float32)

    def _gather(
        self,
        positions: NDArray[np.int64],
        requirements: tuple[tuple[str, int], ...],
        language_credit: NDArray[np.float32],
    ) -> _Scanned:
        """Copy the factors of the registrants at ``positions``, by availability."""
        positions = positions[np.argsort(self.available_from[positions], kind="stable")]
        valid_until = np.zeros((positions.size, len(requirements)), dtype=np.int64)
        for column, (language, rank) in enumerate(requirements):
            valid_until[:, column] = self.test_expiry[language][positions, rank]
        return _Scanned(
            position=positions,
            vectors=self.vectors[positions],
            isco_groups=self.isco_groups[positions],
            skills=self.skills[positions],
            years=self.years[positions],
            available_from=self.available_from[positions],
            valid_until=valid_until,
            language_credit=language_credit[positions],
        )

    def _score_block(
        self,
        scanned: _Scanned,
        block: NDArray[np.int64],
        fetch: int,
        best: dict[str, NDArray[np.generic]],
    ) -> None:
        """Score the scanned registrants against vacancies ``block``, merge the best."""
        # Blocks are (registrants, vacancies): BLAS multiplies the tall
        # registrant matrix by the vacancy vectors faster than the other way.
        components = self._block_components(scanned, block)
        weights = self.weights
        total = weights.semantic * components["semantic"]
        total += weights.isco_proximity * components["isco_proximity"]
        skill_weight = np.where(
            self.essential_count[block] > 0,
            weights.essential_skills / np.maximum(self.essential_count[block], 1),
            0.0,
        ).astype(np.float32)
        total += components["skill_matches"] * skill_weight[None, :]
        total += weights.experience * components["experience"]
        total += weights.language_margin * scanned.language_credit[:, None]
        start_day = self.start_day[block]
        allowed = scanned.available_from[:, None] <= start_day[None, :]
        for column in range(scanned.valid_until.shape[1]):
            allowed &= scanned.valid_until[:, column, None] >= start_day[None, :]
        total[~allowed] = -np.inf

        members = scanned.position.size
        by_vacancy = np.ascontiguousarray(total.T)
        if members > fetch:
            keep = np.argpartition(by_vacancy, members - fetch, axis=1)[:, -fetch:]
        else:
            keep = np.broadcast_to(np.arange(members), by_vacancy.shape)
        merged = {
            "value": np.take_along_axis(by_vacancy, keep, axis=1),
            "position": scanned.position[keep],
        }
        for name in _SEARCHED:
            merged[name] = np.take_along_axis(components[name].T, keep, axis=1)
        values = np.concatenate([best["value"][block], merged["value"]], axis=1)
        select = np.argpartition(values, values.shape[1] - fetch, axis=1)[:, -fetch:]
        for name, array in merged.items():
            joined = np.concatenate([best[name][block], array], axis=1)
            best[name][block] = np.take_along_axis(joined, select, axis=1)

    def _block_components(
        self, scanned: _Scanned, block: NDArray[np.int64]
    ) -> dict[str, NDArray[np.float32]]:
        """(registrants, vacancies) values of the components computed exactly here."""
        semantic = scanned.vectors @ self.vacancy_vectors[block].T
        isco = scanned.isco_groups @ self.isco_credit[block].T
        matched = np.asarray(scanned.skills @ self.essential[block].T, dtype=np.float32)
        columns = self.years_column[block]
        years = scanned.years[:, np.maximum(columns, 0)]
        experience = np.clip(years / self.target_years[None, block], 0.0, 1.0)
        experience[:, columns < 0] = 0.0
        return {
            "semantic": semantic,
            "isco_proximity": isco,
            "skill_matches": matched,
            "experience": experience.astype(np.float32, copy=False),
        }

    def _inverted_file(
        self, settings: SearchSettings
    ) -> tuple[int, NDArray[np.int64], NDArray[np.int64]]:
        """Group registrants by spherical k-means and pick each vacancy's groups.

        Returns the number of groups, each registrant's group and (m, probes)
        the groups each vacancy scans.
        """
        groups = int(np.clip(self.size // settings.registrants_per_group, 8, 1024))
        groups = min(groups, self.size)
        centroids = _spherical_kmeans(self.vectors, groups, settings)
        cluster_of = _nearest_centroid(self.vectors, centroids)
        probe_count = min(max(math.ceil(settings.probe_share * groups), 1), groups)
        affinity = self.vacancy_vectors @ centroids.T
        probes = np.argpartition(affinity, groups - probe_count, axis=1)[
            :, -probe_count:
        ]
        return groups, cluster_of, probes.astype(np.int64)


def _isco_factors(
    features: RegistrantFeatures,
    rows: NDArray[np.int64],
    profiles: Sequence[VacancyProfile],
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Build the two sides whose product is the ISCO proximity credit.

    The credit of the best-matching occupation equals the sum over levels of
    the credit added at that level, counted when any occupation shares the
    vacancy's group there, because groups nest: a registrant sharing the
    unit group also shares the minor, sub-major and major group.
    """
    columns = sorted(
        {
            (level, profile.isco_code[:level])
            for profile in profiles
            if profile.isco_code is not None
            for level in ISCO_LEVELS
            if profile.isco_code[:level] in features.isco_columns[level]
        }
    )
    groups = np.zeros((rows.size, len(columns)), dtype=np.float32)
    credit = np.zeros((len(profiles), len(columns)), dtype=np.float32)
    position = {key: index for index, key in enumerate(columns)}
    for level in ISCO_LEVELS:
        wanted = [
            (index, features.isco_columns[level][code])
            for index, (kind, code) in enumerate(columns)
            if kind == level
        ]
        if wanted:
            sources = [source for _, source in wanted]
            block = features.isco[level][rows][:, sources].toarray()
            groups[:, [target for target, _ in wanted]] = block > 0
    for index, profile in enumerate(profiles):
        if profile.isco_code is None:
            continue
        for level in ISCO_LEVELS:
            target = position.get((level, profile.isco_code[:level]))
            if target is not None:
                added = ISCO_LEVEL_CREDIT[level] - ISCO_LEVEL_CREDIT.get(level - 1, 0.0)
                credit[index, target] = added
    return groups, credit


def _skill_factors(
    features: RegistrantFeatures,
    rows: NDArray[np.int64],
    profiles: Sequence[VacancyProfile],
) -> tuple[sp.csr_array, NDArray[np.float32], NDArray[np.int64]]:
    """Restrict skills to those some vacancy requires, and mark each vacancy's."""
    width = features.skills.shape[1]
    asked = sorted(
        {
            column
            for profile in profiles
            for column in profile.essential_skill_ids
            if column < width
        }
    )
    position = {column: index for index, column in enumerate(asked)}
    skills = sp.csr_array(features.skills[rows][:, asked], dtype=np.float32)
    skills.data[:] = 1.0
    essential = np.zeros((len(profiles), len(asked)), dtype=np.float32)
    for index, profile in enumerate(profiles):
        for column in profile.essential_skill_ids:
            if column < width:
                essential[index, position[column]] = 1.0
    count = np.array(
        [len(profile.essential_skill_ids) for profile in profiles], dtype=np.int64
    )
    return skills, essential, count


def _experience_factors(
    features: RegistrantFeatures,
    rows: NDArray[np.int64],
    profiles: Sequence[VacancyProfile],
    weights: ScoreWeights,
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    """Years per ISCO minor group of some vacancy, and each vacancy's target years."""
    minor_columns = features.isco_columns[3]
    wanted: dict[int, int] = {}
    years_column = np.full(len(profiles), -1, dtype=np.int64)
    target = np.ones(len(profiles), dtype=np.float32)
    for index, profile in enumerate(profiles):
        target[index] = (
            profile.vacancy.min_experience_years or weights.experience_target_years
        )
        if profile.isco_code is None:
            continue
        column = minor_columns.get(profile.isco_code[:3])
        if column is None:
            continue
        years_column[index] = wanted.setdefault(column, len(wanted))
    sources = sorted(wanted, key=wanted.__getitem__)
    years = features.minor_years[rows][:, sources].toarray().astype(np.float32)
    return years, years_column, target


def _vacancy_ranks(profiles: Sequence[VacancyProfile]) -> dict[str, NDArray[np.int64]]:
    """Per language, (m,) the minimum CEFR rank each vacancy itself sets."""
    required: dict[str, NDArray[np.int64]] = {}
    for index, profile in enumerate(profiles):
        for minimum in profile.vacancy.language_minimums:
            ranks = required.setdefault(
                minimum.language, np.zeros(len(profiles), dtype=np.int64)
            )
            ranks[index] = max(ranks[index], minimum.rank)
    return required


def _language_entries(
    features: RegistrantFeatures, rows: NDArray[np.int64], language: str
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Return (position in rows, rank, test day) of each test in ``language``.

    ``rows`` must be ascending.
    """
    entry_rows = features.language_rows.get(language)
    if entry_rows is None or rows.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    position = np.searchsorted(rows, entry_rows)
    inside = position < rows.size
    inside[inside] = rows[position[inside]] == entry_rows[inside]
    return (
        position[inside],
        features.language_rank[language][inside].astype(np.int64),
        features.language_test_day[language][inside],
    )


def _test_expiry(
    features: RegistrantFeatures,
    rows: NDArray[np.int64],
    language: str,
    validity_days: int,
) -> NDArray[np.int64]:
    """(n, 7) last day a test of at least each rank stays valid, per registrant."""
    expiry = np.full((rows.size, _CEFR_RANKS), _NO_TEST, dtype=np.int64)
    owner, rank, day = _language_entries(features, rows, language)
    for level in range(1, _CEFR_RANKS):
        good = rank >= level
        np.maximum.at(expiry[:, level], owner[good], day[good] + validity_days)
    return expiry


def _best_tested_rank(
    features: RegistrantFeatures, rows: NDArray[np.int64], language: str
) -> NDArray[np.int64]:
    best = np.zeros(rows.size, dtype=np.int64)
    owner, rank, _ = _language_entries(features, rows, language)
    np.maximum.at(best, owner, rank)
    return best


def _spherical_kmeans(
    points: NDArray[np.float32], groups: int, settings: SearchSettings
) -> NDArray[np.float32]:
    """Fit ``groups`` unit-norm centroids by Lloyd iterations on a sample."""
    rng = np.random.default_rng(settings.seed)
    sample_size = min(points.shape[0], max(settings.kmeans_sample, groups))
    sample = points[np.sort(rng.choice(points.shape[0], sample_size, replace=False))]
    sample = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
    centroids = sample[rng.choice(sample_size, groups, replace=False)].copy()
    for _ in range(settings.kmeans_iterations):
        assignment = np.argmax(sample @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assignment, sample)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        # An empty group restarts at a random sample point.
        sums[empty] = sample[rng.choice(sample_size, int(empty.sum()))]
        norms[empty] = 1.0
        centroids = (sums / norms).astype(np.float32)
    return np.asarray(centroids, dtype=np.float32)


def _nearest_centroid(
    points: NDArray[np.float32], centroids: NDArray[np.float32]
) -> NDArray[np.int64]:
    assignment = np.empty(points.shape[0], dtype=np.int64)
    step = 65_536
    for start in range(0, points.shape[0], step):
        block = points[start : start + step]
        assignment[start : start + step] = np.argmax(block @ centroids.T, axis=1)
    return assignment


@dataclass(frozen=True)
class _ScoredPairs:
    """One partition's kept pairs with full scores, by vacancy then registrant row."""

    vacancy: NDArray[np.int64]  # (P,) vacancy index in the round
    registrant: NDArray[np.int64]  # (P,) registrant row in the batch
    score: NDArray[np.float64]
    components: dict[str, NDArray[np.float64]]
    recognition: NDArray[np.int8]
    margin: NDArray[np.int8]  # (P, languages)
    margin_listed: NDArray[np.bool_]  # (P, languages) language is the vacancy's
    languages: tuple[str, ...]
    cell_pattern: NDArray[np.int64]  # (P,) index into cell_columns
    cell_columns: list[tuple[int, ...]]
    eligible: int  # pairs that passed every rule, before the top K


def _apply_rules(
    config: RoundConfig,
    partition: _Partition,
    found: _Found,
    batch_origins: frozenset[str],
) -> _ScoredPairs:
    """Run the rules the search did not check exactly, score, and keep the top K."""
    table = partition.corridors
    listed = _languages_per_vacancy(partition, batch_origins)
    languages = tuple(sorted(listed))
    origin_code = partition.origin_code[found.position]
    start_day = partition.start_day[found.vacancy]
    validity = table.validity_days[origin_code, found.vacancy]

    margin = np.zeros((found.position.size, len(languages)), dtype=np.int64)
    below = np.zeros(found.position.size, dtype=bool)
    credit_sum = np.zeros(found.position.size, dtype=np.float64)
    language_count = np.zeros(len(partition.profiles), dtype=np.int64)
    for column, language in enumerate(languages):
        needed = table.required[language][origin_code, found.vacancy]
        valid_rank = partition.valid_ranks(
            language, found.position, start_day, validity
        )
        margin[:, column] = np.where(needed > 0, valid_rank - needed, 0)
        below |= margin[:, column] < 0
        language_count += listed[language]
        value = np.clip(0.5 + 0.25 * margin[:, column], 0.0, 1.0)
        credit_sum += np.where(listed[language][found.vacancy], value, 0.0)

    recognition = _recognition_ranks(partition, found, origin_code)
    eligible = ~below & ((recognition == _NOT_REQUIRED) | (recognition == _RECOGNISED))
    components = _full_components(partition, found, credit_sum, language_count)
    total = _weighted_total(components, config.weights)
    chosen = _top_per_vacancy(partition, found, total, eligible, config)

    vacancy = found.vacancy[chosen]
    margin_listed = np.zeros((chosen.size, len(languages)), dtype=bool)
    for column, language in enumerate(languages):
        margin_listed[:, column] = listed[language][vacancy]
    return _ScoredPairs(
        vacancy=partition.vacancy_indices[vacancy],
        registrant=partition.rows[found.position[chosen]],
        score=total[chosen],
        components={name: values[chosen] for name, values in components.items()},
        recognition=recognition[chosen],
        margin=margin[chosen].astype(np.int8),
        margin_listed=margin_listed,
        languages=languages,
        cell_pattern=table.cell_pattern[origin_code[chosen], vacancy],
        cell_columns=table.cell_columns,
        eligible=int(eligible.sum()),
    )


def _top_per_vacancy(
    partition: _Partition,
    found: _Found,
    total: NDArray[np.float64],
    eligible: NDArray[np.bool_],
    config: RoundConfig,
) -> NDArray[np.int64]:
    """Return the found pairs kept per vacancy, by vacancy and then registrant row.

    The same rule as :func:`~matching.rounds.collect_candidates`: eligible
    pairs scoring at least ``min_score``, best first, ties to the lower
    registrant row, at most ``candidates_per_vacancy`` per vacancy.
    """
    shape = (len(partition.profiles), found.width)
    value = np.full(shape, -np.inf)
    row = np.full(shape, np.iinfo(np.int64).max, dtype=np.int64)
    index = np.full(shape, -1, dtype=np.int64)
    usable = eligible & (total >= config.min_score)
    value[found.vacancy, found.slot] = np.where(usable, total, -np.inf)
    row[found.vacancy, found.slot] = partition.rows[found.position]
    index[found.vacancy, found.slot] = np.arange(found.position.size)

    order = np.lexsort((row, -value), axis=1)
    limit = config.candidates_per_vacancy or shape[1]
    order = order[:, : min(limit, shape[1])]
    value = np.take_along_axis(value, order, axis=1)
    row = np.take_along_axis(row, order, axis=1)
    index = np.take_along_axis(index, order, axis=1)
    row[~np.isfinite(value)] = np.iinfo(np.int64).max
    by_row = np.argsort(row, axis=1, kind="stable")
    index = np.take_along_axis(index, by_row, axis=1)
    kept = np.isfinite(np.take_along_axis(value, by_row, axis=1))
    return np.asarray(index[kept], dtype=np.int64)


def _required_levels(
    profile: VacancyProfile, agreement: BilateralAgreement | None
) -> dict[str, int]:
    """Language minimums of a vacancy and an agreement, the stricter per language."""
    required: dict[str, int] = {}
    minimums = list(profile.vacancy.language_minimums)
    if agreement is not None:
        minimums.extend(agreement.language_minimums)
    for minimum in minimums:
        required[minimum.language] = max(
            required.get(minimum.language, 0), minimum.rank
        )
    return required


def _languages_per_vacancy(
    partition: _Partition, batch_origins: frozenset[str]
) -> dict[str, NDArray[np.bool_]]:
    """Per language, (m,) whether it is a column of the vacancy's margin component.

    :func:`~matching.eligibility.evaluate_eligibility` takes the union of the
    minimums over every origin present in the batch, each with its agreement
    in force; an origin without one adds the vacancy's own minimums.
    """
    present = np.array([origin in batch_origins for origin in partition.origins])
    result: dict[str, NDArray[np.bool_]] = {}
    for language, levels in partition.corridors.required.items():
        listed = (levels[present] > 0).any(axis=0)
        own = partition.required_rank.get(language)
        if own is not None and batch_origins:
            listed = listed | (own > 0)
        if listed.any():
            result[language] = listed
    return result


def _expand_entries(
    entry_rows: NDArray[np.int64], rows: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return (position in rows, entry) for every entry of ascending ``entry_rows``."""
    first = np.searchsorted(entry_rows, rows, side="left")
    last = np.searchsorted(entry_rows, rows, side="right")
    counts = last - first
    pair = np.repeat(np.arange(rows.size, dtype=np.int64), counts)
    entry = np.repeat(first, counts) + (
        np.arange(int(counts.sum()), dtype=np.int64)
        - np.repeat(np.cumsum(counts) - counts, counts)
    )
    return pair, entry


def _test_slots(
    features: RegistrantFeatures, rows: NDArray[np.int64], language: str
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(n, tests) rank and test day of each registrant's tests in ``language``.

    Unused slots have rank 0. ``rows`` must be ascending.
    """
    owner, rank, day = _language_entries(features, rows, language)
    counts = np.bincount(owner, minlength=rows.size)
    width = max(int(counts.max(initial=0)), 1)
    slot = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    ranks = np.zeros((rows.size, width), dtype=np.int64)
    days = np.zeros((rows.size, width), dtype=np.int64)
    ranks[owner, slot] = rank
    days[owner, slot] = day
    return ranks, days


def _recognition_ranks(
    partition: _Partition, found: _Found, origin_code: NDArray[np.int64]
) -> NDArray[np.int8]:
    """Recognition rank per pair, -1 where the vacancy's occupation is not regulated.

    A qualification counts when it was issued in the registrant's origin and
    a rule of the corridor's agreement for the vacancy's ISCO group accepts
    its level and field; the best state over qualifications and rules wins.
    """
    regulated = np.array(
        [profile.vacancy.regulated for profile in partition.profiles], dtype=bool
    )[found.vacancy]
    rank = np.where(regulated, 0, _NOT_REQUIRED).astype(np.int8)
    pairs = np.flatnonzero(regulated)
    if pairs.size == 0 or partition.qualification_owner.size == 0:
        return rank
    local, entry = _expand_entries(partition.qualification_owner, found.position[pairs])
    pair = pairs[local]
    origins = np.array(partition.origins)
    issued_here = partition.qualification_country[entry] == origins[origin_code[pair]]
    level = partition.qualification_level[entry]
    field_name = partition.qualification_field[entry]

    # Rules depend on the agreement and the vacancy's ISCO code only, so the
    # entries are grouped by agreement, of which there are few.
    table = partition.corridors
    agreement = table.agreement[origin_code[pair], found.vacancy[pair]]
    isco = np.array([profile.isco_code or "" for profile in partition.profiles])
    code = isco[found.vacancy[pair]]
    for index in np.unique(agreement[agreement >= 0]).tolist():
        for rule in table.agreements[index].recognition:
            matches = (
                (agreement == index)
                & issued_here
                & np.char.startswith(code, rule.isco_prefix)
                & (level >= rule.min_level)
            )
            if rule.field is not None:
                matches &= field_name == normalise_field(rule.field)
            np.maximum.at(rank, pair[matches], np.int8(RECOGNITION_RANK[rule.state]))
    return rank


def _full_components(
    partition: _Partition,
    found: _Found,
    credit_sum: NDArray[np.float64],
    language_count: NDArray[np.int64],
) -> dict[str, NDArray[np.float64]]:
    """Component values per pair as score_vacancy gives them; NaN where not applicable."""
    vacancy = found.vacancy
    essential_count = partition.essential_count[vacancy]
    semantic = found.components["semantic"].astype(np.float64)
    skills = found.components["skill_matches"].astype(np.float64)
    languages = language_count[vacancy]
    return {
        "semantic": np.clip(semantic, 0.0, 1.0),
        "essential_skills": np.where(
            essential_count > 0, skills / np.maximum(essential_count, 1), np.nan
        ),
        "isco_proximity": found.components["isco_proximity"].astype(np.float64),
        "experience": found.components["experience"].astype(np.float64),
        "language_margin": np.where(
            languages > 0, credit_sum / np.maximum(languages, 1), np.nan
        ),
    }


def _weighted_total(
    components: dict[str, NDArray[np.float64]], weights: ScoreWeights
) -> NDArray[np.float64]:
    """Weighted mean over the components that apply, summed in COMPONENTS order."""
    size = components["semantic"].size
    total = np.zeros(size, dtype=np.float64)
    weight_sum = np.zeros(size, dtype=np.float64)
    for name in COMPONENTS:
        values = components[name]
        applies = ~np.isnan(values)
        weight = getattr(weights, name)
        total += np.where(applies, weight * np.nan_to_num(values), 0.0)
        weight_sum += np.where(applies, weight, 0.0)
    return np.divide(total, weight_sum, out=total, where=weight_sum > 0)


def _assemble(parts: list[_ScoredPairs], num_cells: int) -> CandidatePairs:
    """Concatenate the partitions' pairs into CandidatePairs."""
    margins = LanguageMargins()
    for part in parts:
        margins.append_block(part.languages, part.margin, part.margin_listed)
    return CandidatePairs(
        vacancy=_concat([part.vacancy for part in parts], np.int32),
        registrant=_concat([part.registrant for part in parts], np.int32),
        score=_concat([part.score for part in parts], np.float64),
        components={
            name: _concat([part.components[name] for part in parts], np.float64)
            for name in COMPONENTS
        },
        recognition=_concat([part.recognition for part in parts], np.int8),
        language_margin=margins,
        cells=_cells(parts, num_cells),
    )


def _cells(parts: list[_ScoredPairs], num_cells: int) -> sp.csr_array:
    """(E, G) membership: each pair is in the quota cells of its corridor and vacancy."""
    # Number the cell patterns of all parts in one list, then expand each
    # pair's pattern into its cell columns.
    patterns: list[tuple[int, ...]] = []
    pattern_parts = []
    for part in parts:
        pattern_parts.append(len(patterns) + part.cell_pattern)
        patterns.extend(part.cell_columns)
    pattern = _concat(pattern_parts, np.int64)
    pattern_length = np.array([len(columns) for columns in patterns], dtype=np.int64)
    flat = np.array([column for columns in patterns for column in columns], np.int64)
    pattern_start = np.cumsum(pattern_length) - pattern_length
    counts = pattern_length[pattern] if patterns else np.zeros(0, dtype=np.int64)
    indptr = np.zeros(pattern.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    offsets = np.arange(int(indptr[-1]), dtype=np.int64) - np.repeat(
        indptr[:-1], counts
    )
    indices = flat[np.repeat(pattern_start[pattern], counts) + offsets]
    return sp.csr_array(
        (np.ones(indices.size, dtype=np.int8), indices, indptr),
        shape=(pattern.size, num_cells),
    )


def _concat(parts: Sequence[NDArray[Any]], dtype: type) -> NDArray[Any]:
    if not parts:
        return np.zeros(0, dtype=dtype)
    return np.concatenate(parts).astype(dtype, copy=False)


def exact_top_candidates(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    agreements: AgreementIndex,
    config: RoundConfig,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Score every registrant against one vacancy and keep the best, by brute force.

    Parameters
    ----------
    features, profile, agreements, config
        As for :func:`retrieve_candidates`, for one vacancy.

    Returns
    -------
    rows : ndarray of int64
        The kept registrant rows, ascending, as
        :func:`~matching.rounds.collect_candidates` keeps them.
    scores : ndarray of float64
        Their full scores.

    Notes
    -----
    O(N) per vacancy: the reference that :func:`recall_at_k` compares the
    two-stage search with.
    """
    eligibility = evaluate_eligibility(features, profile, agreements)
    rows = np.flatnonzero(eligibility.eligible).astype(np.int64)
    scores = score_vacancy(features, profile, eligibility, rows, config.weights)
    keep = _top_rows(scores.total, config)
    return rows[keep], scores.total[keep]


@dataclass(frozen=True)
class RecallReport:
    """How much of the exact top-K the search found, over sampled vacancies.

    Attributes
    ----------
    vacancies
        Vacancies compared.
    recall
        Share of the exact top-K pairs, summed over the sample, that the
        search also returned.
    score_recall
        Total score of the returned top-K over that of the exact top-K. A
        missed pair replaced by one of nearly the same score costs little
        here.
    worst_recall
        Lowest recall of a single vacancy.
    seconds
        Time of the brute force.
    """

    vacancies: int
    recall: float
    score_recall: float
    worst_recall: float
    seconds: float


def recall_at_k(
    features: RegistrantFeatures,
    profiles: Sequence[VacancyProfile],
    agreements: AgreementIndex,
    config: RoundConfig,
    pairs: CandidatePairs,
    vacancy_indices: Sequence[int],
) -> RecallReport:
    """Compare retrieved candidates with the brute-force top-K on some vacancies.

    Parameters
    ----------
    features, profiles, agreements, config
        The round the pairs were retrieved for.
    pairs
        The retrieved candidate pairs.
    vacancy_indices
        Vacancies to compare, for example a seeded random sample.

    Returns
    -------
    RecallReport
    """
    started = time.perf_counter()
    found_total = 0
    exact_total = 0
    found_score = 0.0
    exact_score = 0.0
    worst = 1.0
    order = np.argsort(pairs.vacancy, kind="stable")
    sorted_vacancy = pairs.vacancy[order]
    for index in vacancy_indices:
        exact_rows, exact_scores = exact_top_candidates(
            features, profiles[index], agreements, config
        )
        first, last = np.searchsorted(sorted_vacancy, [index, index + 1])
        mine = order[first:last]
        hit = np.isin(exact_rows, pairs.registrant[mine])
        found_total += int(hit.sum())
        exact_total += exact_rows.size
        exact_score += float(exact_scores.sum())
        best_found = np.sort(pairs.score[mine])[::-1][: exact_rows.size]
        found_score += float(best_found.sum())
        if exact_rows.size:
            worst = min(worst, float(hit.mean()))
    return RecallReport(
        vacancies=len(vacancy_indices),
        recall=found_total / exact_total if exact_total else 1.0,
        score_recall=found_score / exact_score if exact_score else 1.0,
        worst_recall=worst,
        seconds=time.perf_counter() - started,
    )
