"""Seeded synthetic labour markets built from real ESCO data.

A market has corridors modelled on real programmes, quota cells sized from
their published figures, vacancies for occupations on the EURES shortage list
and registrants whose skills are drawn from the ESCO relations of a hidden
true occupation, with the noise real registrations carry: dropped skills,
alternative labels, typos and unrelated skills.

The programmes (figures from the public pages listed in
``fixtures/reference/bilateral_labour_migration_quotas.csv``):

- Germany, Western Balkans regulation: origins AL, BA, XK, ME, MK, RS, any
  sector, one annual cap shared by the six corridors (50,000 from June 2024);
- Germany and the Philippines, health-care recruitment modelled on the Triple
  Win programme: sector Q, nursing a regulated profession needing recognition;
- Korea, Employment Permit System (E-9): origins NP, PH, VN, ID, sectors
  manufacturing, construction, agriculture and fisheries, with the 2025 sector
  split of the 130,000 annual quota and Korean (TOPIK) as language minimum;
- Italy, Decreto Flussi 2025: origins MA, TN, EG, PH; non-seasonal and
  seasonal work.

Quota figures are scaled down to the size of the synthetic market so that
some cells bind and some do not; ``MarketSpec.quota_tightness`` sets how much.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.embedding import LabelEncoder
from matching.features import (
    ISCO_LEVELS,
    SKILL_WEIGHT,
    TITLE_WEIGHT,
    RegistrantFeatures,
    VacancyProfile,
    isco_level_columns,
    normalise_field,
)
from matching.models import (
    MAX_EXPERIENCE_YEARS,
    BilateralAgreement,
    LanguageCertificate,
    LanguageRequirement,
    OccupationClaim,
    Qualification,
    QuotaCell,
    RecognitionRule,
    Registrant,
    Vacancy,
)
from matching.normalise import ConceptMatch
from matching.taxonomy import Occupation, Taxonomy

if TYPE_CHECKING:
    from matching.rounds import RoundConfig

# ISCO-08 unit groups on the EURES 2022 top-20 shortage list, with a weight
# falling with rank, and the ISIC section their vacancies are posted in.
SHORTAGE_OCCUPATIONS: tuple[tuple[str, str], ...] = (
    ("7112", "F"),
    ("7115", "F"),
    ("8332", "H"),
    ("7223", "C"),
    ("2221", "Q"),
    ("7126", "F"),
    ("7411", "F"),
    ("7212", "C"),
    ("7114", "F"),
    ("7213", "C"),
    ("7122", "F"),
    ("2512", "J"),
    ("5120", "I"),
    ("9313", "F"),
    ("7412", "C"),
    ("2514", "J"),
    ("8331", "H"),
    ("7231", "G"),
    ("6121", "A"),
    ("9211", "A"),
)

# Occupations a registrant may hold although no vacancy asks for them; they
# make eligible-but-wrong candidates that a scorer must rank low.
OTHER_OCCUPATIONS: tuple[str, ...] = ("5223", "4110", "9112", "5131", "7512", "8160")


@dataclass(frozen=True)
class Programme:
    """A destination's programme: corridors, coverage, quota split, languages."""

    destination: str
    origins: tuple[str, ...]
    sectors: tuple[str, ...]
    annual_quota: int
    sector_quota: dict[str, int]
    language: str
    language_level: str
    shared_cap: bool
    weight: float


PROGRAMMES: tuple[Programme, ...] = (
    Programme(
        destination="DE",
        origins=("AL", "BA", "XK", "ME", "MK", "RS"),
        sectors=("A", "C", "F", "G", "H", "I", "J"),
        annual_quota=50_000,
        sector_quota={},
        language="de",
        language_level="A2",
        shared_cap=True,
        weight=0.35,
    ),
    Programme(
        destination="DE",
        origins=("PH",),
        sectors=("Q",),
        annual_quota=5_000,
        sector_quota={"Q": 5_000},
        language="de",
        language_level="B1",
        shared_cap=False,
        weight=0.15,
    ),
    Programme(
        destination="KR",
        origins=("NP", "VN", "ID"),
        sectors=("C", "F", "A"),
        annual_quota=130_000,
        sector_quota={"C": 72_000, "A": 18_500, "F": 2_000},
        language="ko",
        language_level="A2",
        shared_cap=True,
        weight=0.3,
    ),
    Programme(
        destination="IT",
        origins=("MA", "TN", "EG"),
        sectors=("A", "F", "H", "I"),
        annual_quota=164_300,
        sector_quota={"A": 93_550, "F": 35_000, "H": 20_000, "I": 15_720},
        language="it",
        language_level="A1",
        shared_cap=True,
        weight=0.2,
    ),
)

# First language of each origin, spoken at C2 without a test.
NATIVE_LANGUAGE = {
    "AL": "sq", "BA": "bs", "XK": "sq", "ME": "sr", "MK": "mk", "RS": "sr",
    "PH": "tl", "NP": "ne", "VN": "vi", "ID": "id", "MA": "ar", "TN": "ar", "EG": "ar",
}  # fmt: skip

# Fields of study for qualifications, by ISCO major group of the occupation.
QUALIFICATION_FIELD = {"2": "engineering", "5": "hospitality", "6": "agriculture", "7": "building trades", "8": "transport", "9": "general"}  # fmt: skip
NURSING_FIELD = "nursing"
LANGUAGE_TESTS = {
    "de": "Goethe-Zertifikat",
    "ko": "EPS-TOPIK",
    "it": "CILS",
    "en": "IELTS",
}


@dataclass(frozen=True, kw_only=True)
class MarketSpec:
    """Size and shape of a synthetic market.

    Attributes
    ----------
    registrants, vacancies
        Number of each.
    seed
        Seed of every random choice; the same spec gives the same market.
    round_date
        Date the round runs on; vacancies start 1 to 6 months later.
    quota_tightness
        Remaining quota per cell as a share of the shortlist slots that could
        fall in it; below 1 the cell binds.
    used_share
        Share of each cell's cap already used by earlier placements.
    skill_drop, alt_label_rate, typo_rate, skill_as_uri_rate
        Noise on registrant skills: chance to drop each ESCO skill, to write
        it as an alternative label, to misspell it, to give the URI itself.
    unrelated_skills
        Up to this many unrelated ESCO skills added per registrant.
    openings_max
        Openings per vacancy are drawn from 1 to this.
    """

    registrants: int = 3_000
    vacancies: int = 120
    seed: int = 7
    round_date: dt.date = dt.date(2026, 3, 2)
    quota_tightness: float = 0.8
    used_share: float = 0.3
    skill_drop: float = 0.35
    alt_label_rate: float = 0.3
    typo_rate: float = 0.08
    skill_as_uri_rate: float = 0.2
    unrelated_skills: int = 3
    openings_max: int = 3

    def __post_init__(self) -> None:
        if self.registrants < 1 or self.vacancies < 1:
            raise ValueError(
                f"a market needs at least one registrant and one vacancy, got "
                f"{self.registrants} and {self.vacancies}"
            )
        for name in (
            "skill_drop",
            "alt_label_rate",
            "typo_rate",
            "skill_as_uri_rate",
            "used_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} is {value}, but it must be in [0, 1)")
        if self.quota_tightness <= 0:
            raise ValueError(
                f"quota_tightness is {self.quota_tightness}, but it must be > 0"
            )


@dataclass(frozen=True)
class SyntheticMarket:
    """A generated market and its ground truth.

    Attributes
    ----------
    registrants, vacancies, agreements
        The records, as a user would load them.
    true_occupation
        Registrant key to the URI of the ESCO occupation their skills were
        drawn from.
    vacancy_occupation
        Vacancy id to its ESCO occupation URI.
    """

    spec: MarketSpec
    registrants: list[Registrant]
    vacancies: list[Vacancy]
    agreements: list[BilateralAgreement]
    true_occupation: dict[str, str] = field(default_factory=dict)
    vacancy_occupation: dict[str, str] = field(default_factory=dict)

    def relevance(
        self, registrant_key: str, vacancy_id: str, taxonomy: Taxonomy
    ) -> int:
        """Return graded relevance: 2 same occupation, 1 same ISCO minor group, else 0."""
        truth = self.true_occupation[registrant_key]
        wanted = self.vacancy_occupation[vacancy_id]
        if truth == wanted:
            return 2
        same_minor = (
            taxonomy.occupations[truth].isco_code[:3]
            == taxonomy.occupations[wanted].isco_code[:3]
        )
        return 1 if same_minor else 0


def generate_market(
    taxonomy: Taxonomy, spec: MarketSpec | None = None
) -> SyntheticMarket:
    """Generate a seeded synthetic labour market.

    Parameters
    ----------
    taxonomy
        ESCO data the skills, labels and occupations are drawn from.
    spec
        Size and noise settings; defaults to :class:`MarketSpec`.

    Returns
    -------
    SyntheticMarket

    Notes
    -----
    Steps: pick vacancy occupations among ESCO occupations of the shortage
    list's ISCO groups, place each vacancy in a programme covering its sector;
    draw registrants by programme weight, with a true occupation that is a
    vacancy occupation of their programme four times in five and another
    occupation otherwise; then size quota cells from the programme's split.
    """
    settings = spec or MarketSpec()
    rng = np.random.default_rng(settings.seed)
    generator = _Generator(taxonomy, settings, rng)
    return generator.run()


class _Generator:
    def __init__(
        self, taxonomy: Taxonomy, spec: MarketSpec, rng: np.random.Generator
    ) -> None:
        self.taxonomy = taxonomy
        self.spec = spec
        self.rng = rng
        self.occupations_by_isco = {
            code: taxonomy.occupations_in_isco(code)
            for code, _ in SHORTAGE_OCCUPATIONS
            if taxonomy.occupations_in_isco(code)
        }
        self.other_occupations = [
            uri
            for code in OTHER_OCCUPATIONS
            for uri in taxonomy.occupations_in_isco(code)
        ]
        self.all_skills = sorted(taxonomy.skills)

    def run(self) -> SyntheticMarket:
        vacancies, vacancy_occupation, vacancy_programme = self._vacancies()
        registrants, truth = self._registrants(
            vacancies, vacancy_occupation, vacancy_programme
        )
        agreements = self._agreements(vacancies, vacancy_programme)
        return SyntheticMarket(
            spec=self.spec,
            registrants=registrants,
            vacancies=vacancies,
            agreements=agreements,
            true_occupation=truth,
            vacancy_occupation=vacancy_occupation,
        )

    def _occupation_weights(
        self, programme: Programme
    ) -> tuple[list[tuple[str, str]], np.ndarray]:
        return _shortage_options(self.occupations_by_isco, programme)

    def _vacancies(self) -> tuple[list[Vacancy], dict[str, str], dict[str, int]]:
        programme_weights = np.array([programme.weight for programme in PROGRAMMES])
        programme_weights /= programme_weights.sum()
        choices = [self._occupation_weights(programme) for programme in PROGRAMMES]
        vacancies: list[Vacancy] = []
        occupation: dict[str, str] = {}
        programme_of: dict[str, int] = {}
        while len(vacancies) < self.spec.vacancies:
            programme_index = int(self.rng.choice(len(PROGRAMMES), p=programme_weights))
            programme = PROGRAMMES[programme_index]
            options, weights = choices[programme_index]
            code, sector = options[int(self.rng.choice(len(options), p=weights))]
            uris = self.occupations_by_isco[code]
            uri = uris[int(self.rng.integers(len(uris)))]
            vacancy_id = f"V-{len(vacancies) + 1:05d}"
            start = self.spec.round_date + dt.timedelta(
                days=int(self.rng.integers(30, 180))
            )
            regulated = code.startswith("222")
            minimums = [
                LanguageRequirement(
                    language=programme.language, level=programme.language_level
                )
            ]
            if regulated:
                minimums = [
                    LanguageRequirement(language=programme.language, level="B2")
                ]
            vacancies.append(
                Vacancy(
                    id=vacancy_id,
                    employer_id=f"E-{programme.destination}-{int(self.rng.integers(1, 40)):03d}",
                    destination=programme.destination,
                    sector=sector,
                    esco_uri=uri,
                    isco_code=code,
                    title=self.taxonomy.occupations[uri].preferred_label,
                    openings=int(self.rng.integers(1, self.spec.openings_max + 1)),
                    language_minimums=tuple(minimums),
                    min_experience_years=float(self.rng.choice([0, 1, 2, 3])),
                    regulated=regulated,
                    start_date=start,
                )
            )
            occupation[vacancy_id] = uri
            programme_of[vacancy_id] = programme_index
        return vacancies, occupation, programme_of

    def _registrants(
        self,
        vacancies: Sequence[Vacancy],
        vacancy_occupation: dict[str, str],
        vacancy_programme: dict[str, int],
    ) -> tuple[list[Registrant], dict[str, str]]:
        occupations_per_programme: dict[int, list[str]] = {}
        for vacancy in vacancies:
            index = vacancy_programme[vacancy.id]
            occupations_per_programme.setdefault(index, []).append(
                vacancy_occupation[vacancy.id]
            )
        programme_indices = sorted(occupations_per_programme)
        weights = np.array([PROGRAMMES[index].weight for index in programme_indices])
        weights /= weights.sum()
        registrants: list[Registrant] = []
        truth: dict[str, str] = {}
        for number in range(self.spec.registrants):
            programme_index = programme_indices[
                int(self.rng.choice(len(programme_indices), p=weights))
            ]
            programme = PROGRAMMES[programme_index]
            origin = programme.origins[int(self.rng.integers(len(programme.origins)))]
            if self.rng.random() < 0.8 or not self.other_occupations:
                pool = occupations_per_programme[programme_index]
            else:
                pool = self.other_occupations
            true_uri = pool[int(self.rng.integers(len(pool)))]
            registrant = self._registrant(number, origin, programme, true_uri)
            registrants.append(registrant)
            truth[registrant.key] = true_uri
        return registrants, truth

    def _registrant(
        self, number: int, origin: str, programme: Programme, true_uri: str
    ) -> Registrant:
        rng = self.rng
        occupation = self.taxonomy.occupations[true_uri]
        years = float(np.round(rng.gamma(2.0, 2.0), 1))
        claims = [self._occupation_claim(occupation.isco_code, occupation, years)]
        if rng.random() < 0.25 and self.other_occupations:
            other = self.taxonomy.occupations[
                self.other_occupations[int(rng.integers(len(self.other_occupations)))]
            ]
            claims.append(
                self._occupation_claim(
                    other.isco_code, other, float(rng.integers(1, 4))
                )
            )
        birth_year = int(rng.integers(1970, 2005))
        agency = f"AG-{origin}-{int(rng.integers(1, 4))}"
        return Registrant(
            agency_id=agency,
            external_id=f"R{number + 1:07d}",
            origin=origin,
            sex=("female", "male")[int(rng.random() < 0.55)],
            birth_year=birth_year,
            occupations=tuple(claims),
            skills=tuple(self._skills(true_uri)),
            languages=tuple(self._languages(origin, programme)),
            qualifications=tuple(self._qualifications(origin, occupation.isco_code)),
            available_from=self.spec.round_date
            + dt.timedelta(days=int(rng.integers(-60, 200))),
            consent=bool(rng.random() < 0.97),
        )

    def _occupation_claim(
        self, isco_code: str, occupation: Occupation, years: float
    ) -> OccupationClaim:
        roll = self.rng.random()
        if roll < 0.5:
            return OccupationClaim(isco_code=isco_code, years_experience=years)
        labels = (occupation.preferred_label, *occupation.alt_labels)
        title = labels[int(self.rng.integers(len(labels)))]
        return OccupationClaim(title=title, years_experience=years)

    def _skills(self, occupation_uri: str) -> list[str]:
        rng = self.rng
        spec = self.spec
        chosen = [
            uri
            for uri in self.taxonomy.essential_skills(occupation_uri)
            if rng.random() >= spec.skill_drop
        ]
        optional = self.taxonomy.optional_skills(occupation_uri)
        chosen += [uri for uri in optional if rng.random() < 0.25]
        for _ in range(int(rng.integers(0, spec.unrelated_skills + 1))):
            chosen.append(self.all_skills[int(rng.integers(len(self.all_skills)))])
        texts = []
        for uri in dict.fromkeys(chosen):
            texts.append(self._skill_text(uri))
        return texts

    def _skill_text(self, uri: str) -> str:
        rng = self.rng
        skill = self.taxonomy.skills[uri]
        if rng.random() < self.spec.skill_as_uri_rate:
            return uri
        text = skill.preferred_label
        if skill.alt_labels and rng.random() < self.spec.alt_label_rate:
            text = skill.alt_labels[int(rng.integers(len(skill.alt_labels)))]
        if rng.random() < self.spec.typo_rate:
            text = _misspell(text, rng)
        return text

    def _languages(
        self, origin: str, programme: Programme
    ) -> list[LanguageCertificate]:
        rng = self.rng
        certificates = [
            LanguageCertificate(language=NATIVE_LANGUAGE.get(origin, "en"), level="C2")
        ]
        ladder = ("A1", "A2", "B1", "B2", "C1")
        if rng.random() < 0.85:
            level = ladder[min(int(rng.binomial(4, 0.45)), len(ladder) - 1)]
            tested = self.spec.round_date - dt.timedelta(
                days=int(rng.integers(10, 1100))
            )
            certificates.append(
                LanguageCertificate(
                    language=programme.language,
                    level=level,
                    test=LANGUAGE_TESTS[programme.language],
                    test_date=tested,
                )
            )
        if rng.random() < 0.4:
            certificates.append(
                LanguageCertificate(
                    language="en", level=ladder[int(rng.integers(1, 4))]
                )
            )
        return certificates

    def _qualifications(self, origin: str, isco_code: str) -> list[Qualification]:
        rng = self.rng
        if isco_code.startswith("222"):
            return [
                Qualification(
                    level=int(rng.choice([5, 6, 6, 7])),
                    field=NURSING_FIELD,
                    issuing_country=origin,
                )
            ]
        if rng.random() < 0.6:
            field_name = QUALIFICATION_FIELD.get(isco_code[0], "general")
            return [
                Qualification(
                    level=int(rng.integers(3, 6)),
                    field=field_name,
                    issuing_country=origin,
                )
            ]
        return []

    def _agreements(
        self, vacancies: Sequence[Vacancy], vacancy_programme: dict[str, int]
    ) -> list[BilateralAgreement]:
        start = dt.date(self.spec.round_date.year, 1, 1)
        end = dt.date(self.spec.round_date.year + 1, 12, 31)
        slots: dict[tuple[int, str | None], int] = {}
        for vacancy in vacancies:
            index = vacancy_programme[vacancy.id]
            share = 3 * vacancy.openings
            slots[(index, None)] = slots.get((index, None), 0) + share
            slots[(index, vacancy.sector)] = (
                slots.get((index, vacancy.sector), 0) + share
            )
        agreements: list[BilateralAgreement] = []
        for index, programme in enumerate(PROGRAMMES):
            cells = self._cells(index, programme, slots, start, end)
            for origin in programme.origins:
                agreements.append(
                    BilateralAgreement(
                        id=f"AGR-{origin}-{programme.destination}",
                        origin=origin,
                        destination=programme.destination,
                        valid_from=start,
                        valid_to=end,
                        sectors=programme.sectors,
                        quota_cells=tuple(
                            cell
                            if programme.shared_cap
                            else cell.model_copy(update={"id": f"{cell.id}-{origin}"})
                            for cell in cells
                        ),
                        recognition=self._recognition(origin, programme),
                        language_minimums=(
                            LanguageRequirement(
                                language=programme.language,
                                level=programme.language_level,
                            ),
                        ),
                        test_validity_days=730,
                    )
                )
        return agreements

    def _cells(
        self,
        index: int,
        programme: Programme,
        slots: dict[tuple[int, str | None], int],
        start: dt.date,
        end: dt.date,
    ) -> list[QuotaCell]:
        spec = self.spec
        total_slots = slots.get((index, None), 0)
        # The programme-wide cell caps at the tightness share of all slots; a
        # sector cell at its published share of the annual quota, scaled.
        scale = spec.quota_tightness * total_slots / max(programme.annual_quota, 1)
        cells = [
            self._cell(
                f"Q-{programme.destination}{index}-ALL",
                None,
                programme.annual_quota * scale,
                start,
                end,
            )
        ]
        for sector, quota in sorted(programme.sector_quota.items()):
            sector_slots = slots.get((index, sector), 0)
            if not sector_slots:
                continue
            remaining = max(quota * scale, 1.0)
            jitter = float(self.rng.uniform(0.6, 1.6))
            remaining = min(remaining * jitter, sector_slots * 1.5)
            cells.append(
                self._cell(
                    f"Q-{programme.destination}{index}-{sector}",
                    sector,
                    remaining,
                    start,
                    end,
                )
            )
        return cells

    def _cell(
        self,
        cell_id: str,
        sector: str | None,
        remaining: float,
        start: dt.date,
        end: dt.date,
    ) -> QuotaCell:
        remaining_count = max(int(round(remaining)), 0)
        used = int(
            round(remaining_count * self.spec.used_share / (1 - self.spec.used_share))
        )
        return QuotaCell(
            id=cell_id,
            sector=sector,
            cap=remaining_count + used,
            used=used,
            period_start=start,
            period_end=end,
        )

    def _recognition(
        self, origin: str, programme: Programme
    ) -> tuple[RecognitionRule, ...]:
        return _recognition_rules(programme)


def _shortage_options(
    open_codes: Collection[str], programme: Programme
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Shortage occupations open in a programme, weighted by rank and sector share.

    ``open_codes`` are the ISCO unit groups that have ESCO occupations.
    """
    ranked = [
        (code, sector) for code, sector in SHORTAGE_OCCUPATIONS if code in open_codes
    ]
    rank_weight = 1.0 / np.arange(1, len(ranked) + 1) ** 0.6
    total_quota = sum(programme.sector_quota.values())
    options: list[tuple[str, str]] = []
    weights: list[float] = []
    for (code, sector), weight in zip(ranked, rank_weight, strict=True):
        if sector not in programme.sectors:
            continue
        share = (
            programme.sector_quota.get(sector, 0) / total_quota if total_quota else 1.0
        )
        options.append((code, sector))
        weights.append(weight * max(share, 0.02))
    array = np.array(weights)
    return options, array / array.sum()


def write_market(
    market: SyntheticMarket, directory: Path, *, fmt: str = "jsonl"
) -> list[Path]:
    """Write a market as input files plus its ground truth.

    Parameters
    ----------
    market
        The market to write.
    directory
        Folder to write into; created when missing.
    fmt
        ``"jsonl"`` or ``"csv"`` for registrants and vacancies; agreements and
        the ground truth are always JSON Lines.

    Returns
    -------
    list of Path
        The files written: registrants, vacancies, agreements, truth.
    """
    from matching.writers import write_agreements, write_registrants, write_vacancies

    directory.mkdir(parents=True, exist_ok=True)
    registrants = directory / f"registrants.{fmt}"
    vacancies = directory / f"vacancies.{fmt}"
    agreements = directory / "agreements.jsonl"
    truth = directory / "truth.jsonl"
    write_registrants(market.registrants, registrants, fmt=fmt)
    write_vacancies(market.vacancies, vacancies, fmt=fmt)
    write_agreements(market.agreements, agreements)
    with truth.open("w", encoding="utf-8") as stream:
        for key, uri in market.true_occupation.items():
            stream.write(json.dumps({"registrant": key, "occupation_uri": uri}) + "\n")
        for vacancy_id, uri in market.vacancy_occupation.items():
            stream.write(
                json.dumps({"vacancy": vacancy_id, "occupation_uri": uri}) + "\n"
            )
    return [registrants, vacancies, agreements, truth]


def _misspell(text: str, rng: np.random.Generator) -> str:
    """Apply one typo: swap, drop, double or replace a letter inside a word."""
    letters = [position for position, char in enumerate(text) if char.isalpha()]
    if len(letters) < 4:
        return text
    position = letters[int(rng.integers(1, len(letters) - 1))]
    kind = int(rng.integers(4))
    if kind == 0 and position + 1 < len(text):
        return (
            text[:position] + text[position + 1] + text[position] + text[position + 2 :]
        )
    if kind == 1:
        return text[:position] + text[position + 1 :]
    if kind == 2:
        return text[:position] + text[position] + text[position:]
    replacement = string.ascii_lowercase[int(rng.integers(26))]
    return text[:position] + replacement + text[position + 1 :]


# Markets built directly as arrays, for candidate generation and solver runs at
# scale. The record-level generator above costs about 1.4 ms per registrant in
# Python, most of it in records and normalisation, so a million registrants
# would take half an hour before a round even starts.

# Share of registrants whose true occupation is one their programme's
# vacancies ask for; the rest hold one of OTHER_OCCUPATIONS.
ON_PROGRAMME_SHARE = 0.8
SECOND_CLAIM_SHARE = 0.25
LANGUAGE_TEST_SHARE = 0.85
CONSENT_SHARE = 0.97
QUALIFICATION_SHARE = 0.6
# Registrants per vacancy when ScaleSpec.vacancies is None.
REGISTRANTS_PER_VACANCY = 20
# Remaining quota of a cell below the programme-wide one is its expected
# shortlist slots times quota_tightness times a factor drawn from this range,
# so that some of the nested cells bind and some do not.
CELL_JITTER = (0.6, 1.6)


@dataclass(frozen=True, kw_only=True)
class ScaleSpec:
    """Size and shape of a synthetic market generated as arrays.

    Attributes
    ----------
    registrants
        Number of registrants.
    vacancies
        Number of vacancies; one per ``REGISTRANTS_PER_VACANCY`` registrants
        when None.
    seed
        Seed of every random choice; the same spec gives the same market.
    round_date
        Date the round runs on; vacancies start 30 to 179 days later.
    openings_max
        Openings per vacancy are drawn from 1 to this.
    shortlist_ratio, max_shortlists_per_registrant
        The round settings the market is shaped for. Quota caps are scaled
        from the shortlist slots (ratio times openings), and
        :meth:`ScaleMarket.round_config` passes both on to the round.
    quota_tightness
        Remaining quota per cell as a share of the shortlist slots expected
        in it; below 1 the cell binds.
    used_share
        Share of each cell's cap already used by earlier placements.
    skill_drop
        Chance to drop each essential ESCO skill of the true occupation.
    optional_skill_rate
        Chance to list each optional ESCO skill of the true occupation.
    unrelated_skills
        Up to this many random ESCO skills added per registrant.
    """

    registrants: int = 100_000
    vacancies: int | None = None
    seed: int = 7
    round_date: dt.date = dt.date(2026, 3, 2)
    openings_max: int = 3
    shortlist_ratio: int = 3
    max_shortlists_per_registrant: int = 2
    quota_tightness: float = 0.8
    used_share: float = 0.3
    skill_drop: float = 0.35
    optional_skill_rate: float = 0.25
    unrelated_skills: int = 3

    def __post_init__(self) -> None:
        if self.registrants < 1:
            raise ValueError(
                f"registrants is {self.registrants}, but a market needs at least one"
            )
        if self.vacancies is not None and self.vacancies < 1:
            raise ValueError(
                f"vacancies is {self.vacancies}, but it must be >= 1 or None "
                f"(one per {REGISTRANTS_PER_VACANCY} registrants)"
            )
        for name in (
            "openings_max",
            "shortlist_ratio",
            "max_shortlists_per_registrant",
        ):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{name} is {value}, but it must be >= 1")
        for name in ("skill_drop", "optional_skill_rate", "used_share"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} is {value}, but it must be in [0, 1)")
        if self.quota_tightness <= 0:
            raise ValueError(
                f"quota_tightness is {self.quota_tightness}, but it must be > 0"
            )
        if self.unrelated_skills < 0:
            raise ValueError(
                f"unrelated_skills is {self.unrelated_skills}, but it must be >= 0"
            )

    @property
    def vacancy_count(self) -> int:
        """Number of vacancies the market gets."""
        if self.vacancies is not None:
            return self.vacancies
        return max(self.registrants // REGISTRANTS_PER_VACANCY, 1)

    @classmethod
    def slack(cls, registrants: int, *, seed: int = 7) -> ScaleSpec:
        """Return a market where shortlist slots are about 15% of registrant capacity.

        Vacancies have 1 to 3 openings and registrants may appear on two
        shortlists, so registrant caps rarely bind and quota cells do.
        """
        return cls(registrants=registrants, seed=seed)

    @classmethod
    def contended(
        cls, registrants: int, *, seed: int = 7, quota_tightness: float = 1.5
    ) -> ScaleSpec:
        """Return a market where shortlist slots are about 97% of registrant capacity.

        Vacancies have 1 to 12 openings (6.5 on average, so 19.5 slots at a
        shortlist ratio of 3) and each registrant may appear on one
        shortlist. Quota cells are looser than in :meth:`slack`, so that
        registrant caps, not quotas, decide most shortlists.
        """
        return cls(
            registrants=registrants,
            seed=seed,
            openings_max=12,
            max_shortlists_per_registrant=1,
            quota_tightness=quota_tightness,
        )


@dataclass(frozen=True, eq=False)
class ScaleMarket:
    """A market generated as arrays, ready for candidate generation and solving.

    Attributes
    ----------
    spec
        The settings it was generated from.
    features
        The registrants as :class:`~matching.features.RegistrantFeatures`.
        Skill columns are ESCO skill indices in URI order
        (``skill_uris``), and there are no normalisation outcomes.
    profiles
        One :class:`~matching.features.VacancyProfile` per vacancy.
    agreements
        The bilateral agreements with their quota cells.
    occupation_uris
        ESCO occupations that registrants or vacancies hold, by index.
    occupation_isco
        ISCO-08 unit group of each entry of ``occupation_uris``.
    skill_uris
        ESCO skill URI of each skill column.
    true_occupation
        (N,) int32 index into ``occupation_uris`` of the occupation each
        registrant's skills were drawn from.
    vacancy_occupation
        (M,) int32 index into ``occupation_uris`` of each vacancy's occupation.
    """

    spec: ScaleSpec
    features: RegistrantFeatures
    profiles: list[VacancyProfile]
    agreements: list[BilateralAgreement]
    occupation_uris: tuple[str, ...]
    occupation_isco: tuple[str, ...]
    skill_uris: tuple[str, ...]
    true_occupation: NDArray[np.int32]
    vacancy_occupation: NDArray[np.int32]

    def relevance(
        self, registrant_rows: NDArray[np.int64], vacancy_rows: NDArray[np.int64]
    ) -> NDArray[np.int8]:
        """Return graded relevance per pair: 2 same occupation, 1 same ISCO minor group.

        Parameters
        ----------
        registrant_rows, vacancy_rows
            (E,) rows of the registrant and the vacancy of each pair.

        Returns
        -------
        ndarray of int8, shape (E,)
            As :meth:`SyntheticMarket.relevance`, for many pairs at once.
        """
        truth = self.true_occupation[registrant_rows]
        target = self.vacancy_occupation[vacancy_rows]
        minor = np.array([int(code[:3]) for code in self.occupation_isco])
        same_minor = minor[truth] == minor[target]
        return np.where(truth == target, 2, np.where(same_minor, 1, 0)).astype(np.int8)

    @property
    def shortlist_slots(self) -> int:
        """Shortlist places over all vacancies: shortlist ratio times openings."""
        openings = sum(profile.vacancy.openings for profile in self.profiles)
        return self.spec.shortlist_ratio * openings

    @property
    def registrant_capacity(self) -> int:
        """Shortlist places over all registrants: count times the per-registrant cap."""
        return self.features.count * self.spec.max_shortlists_per_registrant

    def round_config(self, **changes: Any) -> RoundConfig:
        """Return round settings with the spec's shortlist ratio and registrant cap.

        Parameters
        ----------
        **changes
            Other :class:`~matching.rounds.RoundConfig` fields to set.
        """
        from matching.rounds import RoundConfig

        settings: dict[str, Any] = {
            "shortlist_ratio": self.spec.shortlist_ratio,
            "max_shortlists_per_registrant": self.spec.max_shortlists_per_registrant,
        }
        settings.update(changes)
        return RoundConfig(**settings)


def generate_scale_market(
    taxonomy: Taxonomy,
    spec: ScaleSpec | None = None,
    *,
    encoder: LabelEncoder | None = None,
) -> ScaleMarket:
    """Generate a seeded synthetic market directly as feature arrays.

    Parameters
    ----------
    taxonomy
        ESCO data the skills, labels and occupations are drawn from.
    spec
        Size and shape; defaults to :class:`ScaleSpec`.
    encoder
        Source of label vectors. The default reads the shipped seed of ESCO
        label vectors, so no model runs when every label is in it.

    Returns
    -------
    ScaleMarket

    Notes
    -----
    The market follows :func:`generate_market`: the same programmes, shortage
    occupations, origins, language tests, qualifications, availability and
    consent rates, and skills drawn from the ESCO relations of a hidden true
    occupation with dropped essential skills, some optional ones and
    unrelated ones. Three things differ, because they only matter for
    normalisation, which this generator skips:

    - skills are ESCO skill indices, never alternative labels, typos or URIs,
      so none is lost or mapped to a wrong concept;
    - every occupation claim names its ESCO occupation, so the profile
      vector pools the occupation's preferred label where a record claiming
      an ISCO code would pool the ISCO group title;
    - quota cells also exist per origin, per origin and sector, per origin
      and ISCO major group, and per ISCO unit group, about 200 in all, where
      the record generator sets one cell per programme and per sector.

    Vacancies are drawn first, then registrants, then quota cells, each
    step from one ``numpy.random.Generator`` seeded with ``spec.seed``.
    A million registrants took 94 s and 3.1 GB at peak on 2 shared CPU cores,
    most of the memory the (N, 384) float32 profile vectors.
    """
    settings = spec or ScaleSpec()
    rng = np.random.default_rng(settings.seed)
    catalogue = _Catalogue.build(taxonomy)
    label_encoder = encoder or LabelEncoder(taxonomy_version=taxonomy.version)
    skill_table = label_encoder.encode(
        [taxonomy.skills[uri].preferred_label for uri in catalogue.skill_uris]
    )
    title_table = label_encoder.encode(
        [taxonomy.occupations[uri].preferred_label for uri in catalogue.occupation_uris]
    )

    drawn_vacancies = _draw_vacancies(catalogue, settings, rng)
    drawn = _draw_registrants(catalogue, settings, drawn_vacancies, rng)
    skills = _draw_skills(catalogue, settings, drawn.true_occupation, rng)
    features = _registrant_features(
        taxonomy, catalogue, settings, drawn, skills, skill_table, title_table
    )
    profiles = _vacancy_profiles(
        taxonomy, catalogue, settings, drawn_vacancies, skill_table, title_table
    )
    agreements = _scale_agreements(settings, drawn_vacancies, rng)
    return ScaleMarket(
        spec=settings,
        features=features,
        profiles=profiles,
        agreements=agreements,
        occupation_uris=catalogue.occupation_uris,
        occupation_isco=catalogue.occupation_isco,
        skill_uris=catalogue.skill_uris,
        true_occupation=drawn.true_occupation,
        vacancy_occupation=drawn_vacancies.occupation,
    )


@dataclass(frozen=True)
class _Catalogue:
    """ESCO occupations and skills used by the generator, by index."""

    occupation_uris: tuple[str, ...]
    occupation_isco: tuple[str, ...]
    skill_uris: tuple[str, ...]
    essential: sp.csr_array  # (occupations, skills) 0/1
    optional: sp.csr_array  # (occupations, skills) 0/1
    by_isco: dict[str, NDArray[np.int32]]  # shortage unit group -> occupation indices
    other: NDArray[np.int32]  # indices of OTHER_OCCUPATIONS occupations

    @classmethod
    def build(cls, taxonomy: Taxonomy) -> _Catalogue:
        codes = [code for code, _ in SHORTAGE_OCCUPATIONS] + list(OTHER_OCCUPATIONS)
        uris = list(
            dict.fromkeys(
                uri for code in codes for uri in taxonomy.occupations_in_isco(code)
            )
        )
        position = {uri: index for index, uri in enumerate(uris)}
        skill_uris = tuple(sorted(taxonomy.skills))
        skill_column = {uri: index for index, uri in enumerate(skill_uris)}
        by_isco = {
            code: np.array(
                [position[uri] for uri in taxonomy.occupations_in_isco(code)],
                dtype=np.int32,
            )
            for code, _ in SHORTAGE_OCCUPATIONS
            if taxonomy.occupations_in_isco(code)
        }
        other = np.array(
            [
                position[uri]
                for code in OTHER_OCCUPATIONS
                for uri in taxonomy.occupations_in_isco(code)
            ],
            dtype=np.int32,
        )
        return cls(
            occupation_uris=tuple(uris),
            occupation_isco=tuple(taxonomy.occupations[uri].isco_code for uri in uris),
            skill_uris=skill_uris,
            essential=_relation_matrix(
                [taxonomy.essential_skills(uri) for uri in uris], skill_column
            ),
            optional=_relation_matrix(
                [taxonomy.optional_skills(uri) for uri in uris], skill_column
            ),
            by_isco=by_isco,
            other=other,
        )


def _relation_matrix(
    skills_per_occupation: list[tuple[str, ...]], skill_column: dict[str, int]
) -> sp.csr_array:
    rows = [row for row, uris in enumerate(skills_per_occupation) for _ in uris]
    columns = [skill_column[uri] for uris in skills_per_occupation for uri in uris]
    matrix = sp.csr_array(
        (np.ones(len(rows), dtype=np.float32), (rows, columns)),
        shape=(len(skills_per_occupation), len(skill_column)),
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


@dataclass(frozen=True)
class _DrawnVacancies:
    programme: NDArray[np.int64]  # (M,) index into PROGRAMMES
    occupation: NDArray[np.int32]  # (M,) index into the catalogue
    sector: tuple[str, ...]
    isco: tuple[str, ...]
    start_offset: NDArray[np.int64]  # days after the round date
    openings: NDArray[np.int64]
    min_experience: NDArray[np.float64]
    employer: NDArray[np.int64]


def _draw_vacancies(
    catalogue: _Catalogue, spec: ScaleSpec, rng: np.random.Generator
) -> _DrawnVacancies:
    count = spec.vacancy_count
    programme_weights = np.array([programme.weight for programme in PROGRAMMES])
    programme = rng.choice(
        len(PROGRAMMES), size=count, p=programme_weights / programme_weights.sum()
    )
    option_draw = rng.random(count)
    occupation_draw = rng.random(count)
    occupation = np.zeros(count, dtype=np.int32)
    sector = np.empty(count, dtype=object)
    isco = np.empty(count, dtype=object)
    for index, entry in enumerate(PROGRAMMES):
        mask = programme == index
        options, weights = _shortage_options(catalogue.by_isco.keys(), entry)
        choice = np.minimum(
            np.searchsorted(np.cumsum(weights), option_draw[mask], side="right"),
            len(options) - 1,
        )
        codes = np.array([code for code, _ in options], dtype=object)[choice]
        sector[mask] = np.array([section for _, section in options], dtype=object)[
            choice
        ]
        isco[mask] = codes
        draws = occupation_draw[mask]
        picked = np.zeros(choice.size, dtype=np.int32)
        for option_index, (code, _) in enumerate(options):
            chosen = choice == option_index
            members = catalogue.by_isco[code]
            picked[chosen] = members[(draws[chosen] * members.size).astype(np.int64)]
        occupation[mask] = picked
    return _DrawnVacancies(
        programme=programme,
        occupation=occupation,
        sector=tuple(sector.tolist()),
        isco=tuple(isco.tolist()),
        start_offset=rng.integers(30, 180, count),
        openings=rng.integers(1, spec.openings_max + 1, count),
        min_experience=rng.choice(np.array([0.0, 1.0, 2.0, 3.0]), count),
        employer=rng.integers(1, 40, count),
    )


@dataclass(frozen=True)
class _DrawnRegistrants:
    programme: NDArray[np.int64]  # (N,) index into PROGRAMMES
    origin: NDArray[np.str_]
    true_occupation: NDArray[np.int32]
    years: NDArray[np.float64]
    second_occupation: NDArray[np.int32]  # -1 when there is no second claim
    second_years: NDArray[np.float64]
    consent: NDArray[np.bool_]
    available_offset: NDArray[np.int64]  # days after the round date
    tested: NDArray[np.bool_]
    test_rank: NDArray[np.int8]
    test_age: NDArray[np.int64]  # days before the round date
    qualification_level: NDArray[np.int8]  # 0 when there is no qualification
    agency: NDArray[np.int64]


def _draw_registrants(
    catalogue: _Catalogue,
    spec: ScaleSpec,
    vacancies: _DrawnVacancies,
    rng: np.random.Generator,
) -> _DrawnRegistrants:
    count = spec.registrants
    open_programmes = np.unique(vacancies.programme)
    weights = np.array([PROGRAMMES[index].weight for index in open_programmes])
    programme = open_programmes[
        rng.choice(open_programmes.size, size=count, p=weights / weights.sum())
    ]

    origin_draw = rng.random(count)
    origin = np.empty(count, dtype="<U2")
    true_occupation = np.zeros(count, dtype=np.int32)
    on_programme = (rng.random(count) < ON_PROGRAMME_SHARE) | (
        catalogue.other.size == 0
    )
    pool_draw = rng.random(count)
    for index in open_programmes.tolist():
        mask = programme == index
        origins = np.array(PROGRAMMES[index].origins, dtype="<U2")
        origin[mask] = origins[(origin_draw[mask] * origins.size).astype(np.int64)]
        pool = vacancies.occupation[vacancies.programme == index]
        true_occupation[mask] = pool[(pool_draw[mask] * pool.size).astype(np.int64)]
    off_programme = ~on_programme
    true_occupation[off_programme] = catalogue.other[
        rng.integers(0, catalogue.other.size, int(off_programme.sum()))
    ]

    years = np.minimum(np.round(rng.gamma(2.0, 2.0, count), 1), MAX_EXPERIENCE_YEARS)
    has_second = (rng.random(count) < SECOND_CLAIM_SHARE) & (catalogue.other.size > 0)
    second_occupation = np.full(count, -1, dtype=np.int32)
    second_occupation[has_second] = catalogue.other[
        rng.integers(0, catalogue.other.size, int(has_second.sum()))
    ]
    second_years = np.where(has_second, rng.integers(1, 4, count), 0).astype(np.float64)

    consent = rng.random(count) < CONSENT_SHARE
    available_offset = rng.integers(-60, 200, count)
    tested = rng.random(count) < LANGUAGE_TEST_SHARE
    test_rank = (np.minimum(rng.binomial(4, 0.45, count), 4) + 1).astype(np.int8)
    test_age = rng.integers(10, 1100, count)

    nursing_occupation = np.array(
        [code.startswith("222") for code in catalogue.occupation_isco], dtype=bool
    )
    nursing = nursing_occupation[true_occupation]
    nursing_level = rng.choice(np.array([5, 6, 6, 7]), count)
    other_level = rng.integers(3, 6, count)
    has_other = rng.random(count) < QUALIFICATION_SHARE
    qualification_level = np.where(
        nursing, nursing_level, np.where(has_other, other_level, 0)
    ).astype(np.int8)
    return _DrawnRegistrants(
        programme=programme,
        origin=origin,
        true_occupation=true_occupation,
        years=years,
        second_occupation=second_occupation,
        second_years=second_years,
        consent=consent,
        available_offset=available_offset,
        tested=tested,
        test_rank=test_rank,
        test_age=test_age,
        qualification_level=qualification_level,
        agency=rng.integers(1, 4, count),
    )


def _expand_relations(
    relation: sp.csr_array, occupation: NDArray[np.int32]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """List (registrant row, skill column) for every related skill of each row's occupation."""
    lengths = np.diff(relation.indptr)[occupation].astype(np.int64)
    starts = relation.indptr[occupation].astype(np.int64)
    total = int(lengths.sum())
    offsets = np.arange(total, dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    columns = relation.indices[np.repeat(starts, lengths) + offsets].astype(np.int64)
    rows = np.repeat(np.arange(occupation.size, dtype=np.int64), lengths)
    return rows, columns


def _draw_skills(
    catalogue: _Catalogue,
    spec: ScaleSpec,
    true_occupation: NDArray[np.int32],
    rng: np.random.Generator,
) -> sp.csr_array:
    """Draw each registrant's ESCO skills as an (N, skills) 0/1 CSR matrix."""
    count = true_occupation.size
    width = len(catalogue.skill_uris)
    essential_rows, essential_columns = _expand_relations(
        catalogue.essential, true_occupation
    )
    kept = rng.random(essential_columns.size) >= spec.skill_drop
    optional_rows, optional_columns = _expand_relations(
        catalogue.optional, true_occupation
    )
    listed = rng.random(optional_columns.size) < spec.optional_skill_rate
    unrelated_count = rng.integers(0, spec.unrelated_skills + 1, count)
    unrelated_rows = np.repeat(np.arange(count, dtype=np.int64), unrelated_count)
    unrelated_columns = rng.integers(0, width, unrelated_rows.size)

    rows = np.concatenate([essential_rows[kept], optional_rows[listed], unrelated_rows])
    columns = np.concatenate(
        [essential_columns[kept], optional_columns[listed], unrelated_columns]
    )
    # One sort removes repeated skills and leaves rows, then columns, ascending.
    keys = np.unique(rows * width + columns)
    rows = keys // width
    indptr = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=count), out=indptr[1:])
    return sp.csr_array(
        (
            np.ones(keys.size, dtype=np.float32),
            (keys % width).astype(np.int32),
            indptr,
        ),
        shape=(count, width),
    )


def _registrant_features(
    taxonomy: Taxonomy,
    catalogue: _Catalogue,
    spec: ScaleSpec,
    drawn: _DrawnRegistrants,
    skills: sp.csr_array,
    skill_table: NDArray[np.float32],
    title_table: NDArray[np.float32],
) -> RegistrantFeatures:
    count = drawn.origin.size
    level_columns = isco_level_columns(taxonomy)
    first = drawn.true_occupation.astype(np.int64)
    second = drawn.second_occupation.astype(np.int64)
    # A second claim of the same occupation adds no title and no ISCO group.
    has_second = (second >= 0) & (second != first)
    second_rows = np.flatnonzero(has_second)

    isco = {}
    for level in ISCO_LEVELS:
        column_of = np.array(
            [level_columns[level][code[:level]] for code in catalogue.occupation_isco],
            dtype=np.int64,
        )
        isco[level] = _indicator_matrix(
            np.concatenate([np.arange(count, dtype=np.int64), second_rows]),
            np.concatenate([column_of[first], column_of[second[second_rows]]]),
            count,
            len(level_columns[level]),
        )
    minor_of = np.array(
        [level_columns[3][code[:3]] for code in catalogue.occupation_isco],
        dtype=np.int64,
    )
    claim_second = np.flatnonzero(second >= 0)
    minor_years = sp.csr_array(
        sp.coo_array(
            (
                np.concatenate([drawn.years, drawn.second_years[claim_second]]).astype(
                    np.float32
                ),
                (
                    np.concatenate([np.arange(count, dtype=np.int64), claim_second]),
                    np.concatenate([minor_of[first], minor_of[second[claim_second]]]),
                ),
            ),
            shape=(count, len(level_columns[3])),
        )
    )
    minor_years.sum_duplicates()

    round_day = spec.round_date.toordinal()
    languages = _scale_language_arrays(drawn, round_day)
    qualifications = _scale_qualification_arrays(catalogue, drawn)
    keys = tuple(
        f"AG-{origin}-{agency}/R{number + 1:07d}"
        for number, (origin, agency) in enumerate(
            zip(drawn.origin.tolist(), drawn.agency.tolist(), strict=True)
        )
    )
    return RegistrantFeatures(
        keys=keys,
        origin=drawn.origin,
        consent=drawn.consent,
        available_from=(round_day + drawn.available_offset).astype(np.int64),
        vectors=_pool_registrant_vectors(
            skills, skill_table, title_table, first, second, has_second
        ),
        skills=skills,
        isco=isco,
        isco_columns=level_columns,
        minor_years=minor_years,
        language_rows=languages[0],
        language_rank=languages[1],
        language_test_day=languages[2],
        qualification_row=qualifications[0],
        qualification_level=qualifications[1],
        qualification_field=qualifications[2],
        qualification_country=qualifications[3],
        skill_matches=(),
        occupation_matches=(),
    )


def _indicator_matrix(
    rows: NDArray[np.int64], columns: NDArray[np.int64], height: int, width: int
) -> sp.csr_array:
    keys = np.unique(rows * width + columns)
    indptr = np.zeros(height + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // width, minlength=height), out=indptr[1:])
    return sp.csr_array(
        (np.ones(keys.size, dtype=np.float32), (keys % width).astype(np.int32), indptr),
        shape=(height, width),
    )


# Rows pooled per step, so the float32 temporaries stay near 100 MB.
_POOL_CHUNK_ROWS = 65_536


def _pool_registrant_vectors(
    skills: sp.csr_array,
    skill_table: NDArray[np.float32],
    title_table: NDArray[np.float32],
    first: NDArray[np.int64],
    second: NDArray[np.int64],
    has_second: NDArray[np.bool_],
) -> NDArray[np.float32]:
    """Pool vectors as :func:`~matching.features.pool_profile_vectors` does, from indices."""
    count = skills.shape[0]
    vectors = np.empty((count, skill_table.shape[1]), dtype=np.float32)
    for start in range(0, count, _POOL_CHUNK_ROWS):
        stop = min(start + _POOL_CHUNK_ROWS, count)
        block = skills[start:stop]
        sizes = np.maximum(np.diff(block.indptr), 1).astype(np.float32)
        pooled = SKILL_WEIGHT * (block @ skill_table) / sizes[:, None]
        titles = title_table[first[start:stop]].copy()
        extra = has_second[start:stop]
        titles[extra] += title_table[second[start:stop][extra]]
        titles /= np.where(extra, 2.0, 1.0).astype(np.float32)[:, None]
        pooled += TITLE_WEIGHT * titles
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        np.divide(pooled, norms, out=pooled, where=norms > 0)
        vectors[start:stop] = pooled
    return vectors


def _scale_language_arrays(
    drawn: _DrawnRegistrants, round_day: int
) -> tuple[
    dict[str, NDArray[np.int64]],
    dict[str, NDArray[np.int8]],
    dict[str, NDArray[np.int64]],
]:
    """Tested certificates per language; native and English levels are self-declared."""
    language_of = np.array([programme.language for programme in PROGRAMMES])
    tested_language = language_of[drawn.programme]
    rows: dict[str, NDArray[np.int64]] = {}
    ranks: dict[str, NDArray[np.int8]] = {}
    days: dict[str, NDArray[np.int64]] = {}
    for language in sorted(set(language_of.tolist())):
        selected = np.flatnonzero(drawn.tested & (tested_language == language))
        if not selected.size:
            continue
        rows[language] = selected.astype(np.int64)
        ranks[language] = drawn.test_rank[selected]
        days[language] = (round_day - drawn.test_age[selected]).astype(np.int64)
    return rows, ranks, days


def _scale_qualification_arrays(
    catalogue: _Catalogue, drawn: _DrawnRegistrants
) -> tuple[NDArray[np.int64], NDArray[np.int8], NDArray[np.str_], NDArray[np.str_]]:
    rows = np.flatnonzero(drawn.qualification_level > 0).astype(np.int64)
    field_of = np.array(
        [
            NURSING_FIELD
            if code.startswith("222")
            else QUALIFICATION_FIELD.get(code[0], "general")
            for code in catalogue.occupation_isco
        ]
    )
    fields = np.array(
        [normalise_field(name) for name in field_of[drawn.true_occupation[rows]]]
    )
    return (
        rows,
        drawn.qualification_level[rows],
        fields if rows.size else np.array([], dtype="<U1"),
        drawn.origin[rows],
    )


def _vacancy_profiles(
    taxonomy: Taxonomy,
    catalogue: _Catalogue,
    spec: ScaleSpec,
    drawn: _DrawnVacancies,
    skill_table: NDArray[np.float32],
    title_table: NDArray[np.float32],
) -> list[VacancyProfile]:
    shared: dict[
        int, tuple[ConceptMatch, tuple[int, ...], tuple[str, ...], NDArray[np.float32]]
    ] = {}
    for occupation in np.unique(drawn.occupation).tolist():
        uri = catalogue.occupation_uris[occupation]
        label = taxonomy.occupations[uri].preferred_label
        columns = catalogue.essential.indices[
            catalogue.essential.indptr[occupation] : catalogue.essential.indptr[
                occupation + 1
            ]
        ]
        pooled = TITLE_WEIGHT * title_table[occupation].astype(np.float32)
        if columns.size:
            pooled = pooled + SKILL_WEIGHT * skill_table[columns].mean(axis=0)
        vector = (pooled / np.linalg.norm(pooled)).astype(np.float32)
        shared[occupation] = (
            ConceptMatch(raw=uri, uri=uri, label=label, confidence=1.0, method="uri"),
            tuple(int(column) for column in columns),
            tuple(
                taxonomy.skills[catalogue.skill_uris[column]].preferred_label
                for column in columns.tolist()
            ),
            vector,
        )

    profiles: list[VacancyProfile] = []
    for index in range(drawn.occupation.size):
        programme = PROGRAMMES[int(drawn.programme[index])]
        occupation = int(drawn.occupation[index])
        match, skill_ids, labels, vector = shared[occupation]
        code = drawn.isco[index]
        regulated = code.startswith("222")
        level = "B2" if regulated else programme.language_level
        start = spec.round_date + dt.timedelta(days=int(drawn.start_offset[index]))
        vacancy = Vacancy(
            id=f"V-{index + 1:06d}",
            employer_id=f"E-{programme.destination}-{int(drawn.employer[index]):03d}",
            destination=programme.destination,
            sector=drawn.sector[index],
            esco_uri=match.uri,
            isco_code=code,
            title=match.label,
            openings=int(drawn.openings[index]),
            language_minimums=(
                LanguageRequirement(language=programme.language, level=level),
            ),
            min_experience_years=float(drawn.min_experience[index]),
            regulated=regulated,
            start_date=start,
        )
        profiles.append(
            VacancyProfile(
                vacancy=vacancy,
                occupation=match,
                isco_code=code,
                essential_skill_ids=skill_ids,
                essential_skill_labels=labels,
                vector=vector,
                start_day=start.toordinal(),
            )
        )
    return profiles


def _scale_agreements(
    spec: ScaleSpec, drawn: _DrawnVacancies, rng: np.random.Generator
) -> list[BilateralAgreement]:
    """Build one agreement per corridor with nested quota cells sized from slots.

    Per programme the cells are: the whole programme, each sector and each
    ISCO unit group with vacancies (shared by the programme's corridors), and
    per origin the whole corridor, each sector and each ISCO major group.
    """
    start = dt.date(spec.round_date.year, 1, 1)
    end = dt.date(spec.round_date.year + 1, 12, 31)
    slots = spec.shortlist_ratio * drawn.openings
    sectors = np.array(drawn.sector, dtype=object)
    codes = np.array(drawn.isco, dtype=object)
    majors = np.array([code[0] for code in drawn.isco], dtype=object)

    def cell(
        cell_id: str, sector: str | None, prefix: str | None, expected: float
    ) -> QuotaCell:
        return _quota_cell(
            cell_id, sector, prefix, expected * spec.quota_tightness, start, end, spec
        )

    agreements: list[BilateralAgreement] = []
    for index, programme in enumerate(PROGRAMMES):
        in_programme = drawn.programme == index
        prefix = f"Q-{programme.destination}{index}"
        programme_slots = float(slots[in_programme].sum())
        shared = [cell(f"{prefix}-ALL", None, None, programme_slots)]
        for sector in sorted(set(sectors[in_programme].tolist())):
            expected = float(slots[in_programme & (sectors == sector)].sum())
            shared.append(
                cell(f"{prefix}-{sector}", sector, None, expected * _jitter(rng))
            )
        for code in sorted(set(codes[in_programme].tolist())):
            member = in_programme & (codes == code)
            sector = str(sectors[member][0])
            expected = float(slots[member].sum())
            shared.append(
                cell(f"{prefix}-{code}", sector, code, expected * _jitter(rng))
            )

        share = 1.0 / len(programme.origins)
        for origin in programme.origins:
            own = [
                cell(
                    f"{prefix}-{origin}",
                    None,
                    None,
                    programme_slots * share * _jitter(rng),
                )
            ]
            for sector in sorted(set(sectors[in_programme].tolist())):
                expected = float(slots[in_programme & (sectors == sector)].sum())
                own.append(
                    cell(
                        f"{prefix}-{origin}-{sector}",
                        sector,
                        None,
                        expected * share * _jitter(rng),
                    )
                )
            for major in sorted(set(majors[in_programme].tolist())):
                expected = float(slots[in_programme & (majors == major)].sum())
                own.append(
                    cell(
                        f"{prefix}-{origin}-M{major}",
                        None,
                        major,
                        expected * share * _jitter(rng),
                    )
                )
            agreements.append(
                BilateralAgreement(
                    id=f"AGR-{origin}-{programme.destination}",
                    origin=origin,
                    destination=programme.destination,
                    valid_from=start,
                    valid_to=end,
                    sectors=programme.sectors,
                    quota_cells=tuple(shared + own),
                    recognition=_recognition_rules(programme),
                    language_minimums=(
                        LanguageRequirement(
                            language=programme.language,
                            level=programme.language_level,
                        ),
                    ),
                    test_validity_days=730,
                    shortlist_ratio=spec.shortlist_ratio,
                )
            )
    return agreements


def _jitter(rng: np.random.Generator) -> float:
    return float(rng.uniform(*CELL_JITTER))


def _quota_cell(
    cell_id: str,
    sector: str | None,
    isco_prefix: str | None,
    remaining: float,
    start: dt.date,
    end: dt.date,
    spec: ScaleSpec,
) -> QuotaCell:
    remaining_count = max(int(round(remaining)), 0)
    used = int(round(remaining_count * spec.used_share / (1 - spec.used_share)))
    return QuotaCell(
        id=cell_id,
        sector=sector,
        isco_prefix=isco_prefix,
        cap=remaining_count + used,
        used=used,
        period_start=start,
        period_end=end,
    )


def _recognition_rules(programme: Programme) -> tuple[RecognitionRule, ...]:
    if "Q" not in programme.sectors:
        return ()
    return (
        RecognitionRule(
            isco_prefix="222", field=NURSING_FIELD, min_level=6, state="recognised"
        ),
        RecognitionRule(
            isco_prefix="222", field=NURSING_FIELD, min_level=5, state="partial"
        ),
    )
