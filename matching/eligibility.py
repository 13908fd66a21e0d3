"""Hard rules that decide which registrants may be shortlisted for a vacancy.

Each rule excludes a registrant with a reason code; the first failing rule in
the order of :class:`Reason` is the one reported. The rules:

1. the corridor (registrant's origin, vacancy's destination) has an agreement
   in force on the vacancy's start date that covers the vacancy's sector or
   occupation, and, when the agreement sets quota cells, one of them applies;
2. the registrant consented to be matched;
3. the registrant is available on or before the start date;
4. a regulated occupation needs a qualification the agreement's recognition
   table marks ``recognised`` for that ISCO group;
5. every language minimum (the agreement's and the vacancy's, the stricter
   per language) is met by a test still valid on the start date.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from matching.features import (
    RECOGNITION_RANK,
    RegistrantFeatures,
    VacancyProfile,
    normalise_field,
)
from matching.models import BilateralAgreement, QuotaCell


class Reason(enum.IntEnum):
    """Why a registrant is excluded from a vacancy; ``ELIGIBLE`` when not."""

    ELIGIBLE = 0
    NO_AGREEMENT = 1
    AGREEMENT_NOT_IN_FORCE = 2
    NOT_COVERED = 3
    NO_QUOTA_CELL = 4
    NO_CONSENT = 5
    NOT_AVAILABLE = 6
    RECOGNITION_NONE = 7
    RECOGNITION_PENDING = 8
    RECOGNITION_PARTIAL = 9
    LANGUAGE_BELOW_MINIMUM = 10
    LANGUAGE_TEST_EXPIRED = 11

    @property
    def code(self) -> str:
        """The reason as a lower-case code, for example ``no_consent``."""
        return self.name.lower()


_RECOGNITION_REASON = {
    RECOGNITION_RANK["none"]: Reason.RECOGNITION_NONE,
    RECOGNITION_RANK["pending"]: Reason.RECOGNITION_PENDING,
    RECOGNITION_RANK["partial"]: Reason.RECOGNITION_PARTIAL,
}
RECOGNITION_NOT_REQUIRED = -1


@dataclass(frozen=True)
class CellRef:
    """A quota cell as it applies in one corridor: shared id, cap and mode ratio."""

    cell: QuotaCell
    column: int
    ratio: int


class AgreementIndex:
    """Agreements by corridor, and every quota cell with a column number.

    Parameters
    ----------
    agreements
        All agreements of a matching round.

    Raises
    ------
    ValueError
        If two agreements of one corridor overlap in time, or one cell id is
        declared with different caps, use or periods in different agreements.
    """

    def __init__(self, agreements: Sequence[BilateralAgreement]) -> None:
        self.by_corridor: dict[tuple[str, str], list[BilateralAgreement]] = {}
        for agreement in agreements:
            self.by_corridor.setdefault(agreement.corridor, []).append(agreement)
        for corridor, listed in self.by_corridor.items():
            _check_no_overlap(corridor, listed)
        self.cells: list[QuotaCell] = []
        self.cell_column: dict[str, int] = {}
        self.cell_ratio: dict[str, int] = {}
        for agreement in agreements:
            for cell in agreement.quota_cells:
                self._add_cell(cell, agreement)

    def _add_cell(self, cell: QuotaCell, agreement: BilateralAgreement) -> None:
        known = self.cell_column.get(cell.id)
        if known is None:
            self.cell_column[cell.id] = len(self.cells)
            self.cells.append(cell)
            self.cell_ratio[cell.id] = agreement.shortlist_ratio
            return
        first = self.cells[known]
        if first != cell:
            raise ValueError(
                f"quota cell '{cell.id}' is declared differently in agreement "
                f"'{agreement.id}' (cap {cell.cap}, used {cell.used}, "
                f"{cell.period_start}..{cell.period_end}) than before (cap {first.cap}, "
                f"used {first.used}, {first.period_start}..{first.period_end}); a "
                "shared cell must be identical in every agreement that lists it"
            )
        self.cell_ratio[cell.id] = max(
            self.cell_ratio[cell.id], agreement.shortlist_ratio
        )

    def agreement_for(
        self, origin: str, destination: str, day: dt.date
    ) -> tuple[BilateralAgreement | None, Reason]:
        """Return the corridor's agreement in force on ``day``, or why there is none."""
        listed = self.by_corridor.get((origin, destination))
        if not listed:
            return None, Reason.NO_AGREEMENT
        for agreement in listed:
            if agreement.is_in_force(day):
                return agreement, Reason.ELIGIBLE
        return None, Reason.AGREEMENT_NOT_IN_FORCE

    def cells_for(
        self, agreement: BilateralAgreement, profile: VacancyProfile
    ) -> list[int]:
        """Return the columns of the agreement's quota cells that a vacancy falls in."""
        day = profile.vacancy.start_date
        columns = []
        for cell in agreement.quota_cells:
            if not cell.period_start <= day <= cell.period_end:
                continue
            if cell.sector is not None and cell.sector != profile.vacancy.sector:
                continue
            if cell.isco_prefix is not None and not (
                profile.isco_code is not None
                and profile.isco_code.startswith(cell.isco_prefix)
            ):
                continue
            columns.append(self.cell_column[cell.id])
        return columns


def _check_no_overlap(
    corridor: tuple[str, str], agreements: list[BilateralAgreement]
) -> None:
    ordered = sorted(agreements, key=lambda agreement: agreement.valid_from)
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after.valid_from <= before.valid_to:
            raise ValueError(
                f"agreements '{before.id}' and '{after.id}' both cover corridor "
                f"{corridor[0]}->{corridor[1]} on {after.valid_from}; "
                "one corridor may have one agreement in force at a time"
            )


@dataclass(frozen=True)
class CorridorTerms:
    """What one origin's agreement means for one vacancy."""

    origin: str
    agreement: BilateralAgreement | None
    reason: Reason
    cell_columns: tuple[int, ...]


@dataclass(frozen=True)
class Eligibility:
    """Outcome of the rules for one vacancy over N registrants.

    Attributes
    ----------
    reason
        (N,) int8 :class:`Reason` per registrant; 0 means eligible.
    recognition
        (N,) int8 recognition rank (0 none .. 3 recognised), or -1 when the
        occupation is not regulated.
    language_margin
        (N, L) int8 CEFR levels above each minimum (negative when below).
    languages
        The L (language, minimum level rank) requirements, in column order.
    corridors
        Terms per origin present in the batch.
    """

    reason: NDArray[np.int8]
    recognition: NDArray[np.int8]
    language_margin: NDArray[np.int8]
    languages: tuple[tuple[str, int], ...]
    corridors: dict[str, CorridorTerms]

    @property
    def eligible(self) -> NDArray[np.bool_]:
        """(N,) True where every rule passes."""
        return self.reason == Reason.ELIGIBLE

    def reason_counts(self) -> dict[str, int]:
        """Return how many registrants each reason excluded."""
        codes, counts = np.unique(self.reason, return_counts=True)
        return {
            Reason(int(code)).code: int(count)
            for code, count in zip(codes, counts, strict=True)
            if code
        }


def evaluate_eligibility(
    features: RegistrantFeatures, profile: VacancyProfile, agreements: AgreementIndex
) -> Eligibility:
    """Apply every hard rule to all registrants for one vacancy.

    Parameters
    ----------
    features
        The registrant batch.
    profile
        The vacancy, resolved against the taxonomy.
    agreements
        Agreements and quota cells of the round.

    Returns
    -------
    Eligibility

    Notes
    -----
    Corridor rules are evaluated once per distinct origin and broadcast;
    the other rules are vectorised over registrants, so one vacancy costs
    O(N + certificates + qualifications).
    """
    count = features.count
    reason = np.zeros(count, dtype=np.int8)
    vacancy = profile.vacancy
    corridors = _corridor_terms(features, profile, agreements)

    origin_reason = {origin: terms.reason for origin, terms in corridors.items()}
    for origin, code in origin_reason.items():
        if code != Reason.ELIGIBLE:
            reason[features.origin == origin] = code

    _exclude(reason, ~features.consent, Reason.NO_CONSENT)
    _exclude(reason, features.available_from > profile.start_day, Reason.NOT_AVAILABLE)

    recognition = np.full(count, RECOGNITION_NOT_REQUIRED, dtype=np.int8)
    if vacancy.regulated:
        recognition = _recognition_ranks(features, profile, corridors)
        for rank, code in _RECOGNITION_REASON.items():
            _exclude(reason, recognition == rank, code)

    languages, margin, expired = _language_margins(features, profile, corridors)
    if languages:
        below = (margin < 0).any(axis=1)
        _exclude(reason, below & expired, Reason.LANGUAGE_TEST_EXPIRED)
        _exclude(reason, below, Reason.LANGUAGE_BELOW_MINIMUM)
    return Eligibility(
        reason=reason,
        recognition=recognition,
        language_margin=margin,
        languages=languages,
        corridors=corridors,
    )


def _exclude(reason: NDArray[np.int8], mask: NDArray[np.bool_], code: Reason) -> None:
    reason[mask & (reason == Reason.ELIGIBLE)] = code


def _corridor_terms(
    features: RegistrantFeatures, profile: VacancyProfile, agreements: AgreementIndex
) -> dict[str, CorridorTerms]:
    vacancy = profile.vacancy
    terms: dict[str, CorridorTerms] = {}
    for origin in np.unique(features.origin).tolist():
        agreement, code = agreements.agreement_for(
            origin, vacancy.destination, vacancy.start_date
        )
        columns: list[int] = []
        if agreement is not None and not agreement.covers(
            vacancy.sector, profile.isco_code
        ):
            code = Reason.NOT_COVERED
        elif agreement is not None and agreement.quota_cells:
            columns = agreements.cells_for(agreement, profile)
            if not columns:
                code = Reason.NO_QUOTA_CELL
        terms[origin] = CorridorTerms(origin, agreement, code, tuple(columns))
    return terms


def _recognition_ranks(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    corridors: dict[str, CorridorTerms],
) -> NDArray[np.int8]:
    best = np.zeros(features.count, dtype=np.int8)
    if not features.qualification_row.size or profile.isco_code is None:
        return best
    qualification_rank = np.zeros(features.qualification_row.size, dtype=np.int8)
    qualification_origin = features.origin[features.qualification_row]
    for origin, terms in corridors.items():
        if terms.agreement is None:
            continue
        in_corridor = (qualification_origin == origin) & (
            features.qualification_country == origin
        )
        for rule in terms.agreement.recognition:
            if not profile.isco_code.startswith(rule.isco_prefix):
                continue
            matches = in_corridor & (features.qualification_level >= rule.min_level)
            if rule.field is not None:
                matches &= features.qualification_field == normalise_field(rule.field)
            rank = RECOGNITION_RANK[rule.state]
            qualification_rank[matches] = np.maximum(qualification_rank[matches], rank)
    np.maximum.at(best, features.qualification_row, qualification_rank)
    return best


def _requirements(
    profile: VacancyProfile, agreement: BilateralAgreement | None
) -> dict[str, int]:
    required: dict[str, int] = {}
    minimums = list(profile.vacancy.language_minimums)
    if agreement is not None:
        minimums.extend(agreement.language_minimums)
    for minimum in minimums:
        required[minimum.language] = max(
            required.get(minimum.language, 0), minimum.rank
        )
    return required


def _language_margins(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    corridors: dict[str, CorridorTerms],
) -> tuple[tuple[tuple[str, int], ...], NDArray[np.int8], NDArray[np.bool_]]:
    """Return requirements, (N, L) margins and whether an expired test would pass."""
    per_origin = {
        origin: _requirements(profile, terms.agreement)
        for origin, terms in corridors.items()
    }
    languages = sorted(
        {language for required in per_origin.values() for language in required}
    )
    count = features.count
    margin = np.zeros((count, len(languages)), dtype=np.int8)
    expired_would_pass = np.zeros(count, dtype=bool)
    if not languages:
        return (), margin, expired_would_pass
    validity = np.zeros(count, dtype=np.int64)
    for origin, terms in corridors.items():
        days = terms.agreement.test_validity_days if terms.agreement is not None else 0
        validity[features.origin == origin] = days
    minimum_ranks: list[int] = []
    for column, language in enumerate(languages):
        needed = np.zeros(count, dtype=np.int8)
        for origin, required in per_origin.items():
            needed[features.origin == origin] = required.get(language, 0)
        valid_rank, any_rank = _best_ranks(
            features, language, validity, profile.start_day
        )
        margin[:, column] = np.where(needed > 0, valid_rank - needed, 0)
        expired_would_pass |= (
            (needed > 0) & (valid_rank < needed) & (any_rank >= needed)
        )
        minimum_ranks.append(int(needed.max()))
    requirements = tuple(zip(languages, minimum_ranks, strict=True))
    return requirements, margin, expired_would_pass


def _best_ranks(
    features: RegistrantFeatures,
    language: str,
    validity: NDArray[np.int64],
    start_day: int,
) -> tuple[NDArray[np.int8], NDArray[np.int8]]:
    valid_rank = np.zeros(features.count, dtype=np.int8)
    any_rank = np.zeros(features.count, dtype=np.int8)
    rows = features.language_rows.get(language)
    if rows is None:
        return valid_rank, any_rank
    ranks = features.language_rank[language]
    days = features.language_test_day[language]
    still_valid = days + validity[rows] >= start_day
    np.maximum.at(valid_rank, rows[still_valid], ranks[still_valid])
    np.maximum.at(any_rank, rows, ranks)
    return valid_rank, any_rank
