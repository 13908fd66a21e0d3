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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matching.models import (
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
from matching.taxonomy import Occupation, Taxonomy

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
        """Shortage occupations open in a programme, weighted by rank and sector share."""
        ranked = [
            (code, sector)
            for code, sector in SHORTAGE_OCCUPATIONS
            if code in self.occupations_by_isco
        ]
        rank_weight = 1.0 / np.arange(1, len(ranked) + 1) ** 0.6
        total_quota = sum(programme.sector_quota.values())
        options: list[tuple[str, str]] = []
        weights: list[float] = []
        for (code, sector), weight in zip(ranked, rank_weight, strict=True):
            if sector not in programme.sectors:
                continue
            share = (
                programme.sector_quota.get(sector, 0) / total_quota
                if total_quota
                else 1.0
            )
            options.append((code, sector))
            weights.append(weight * max(share, 0.02))
        array = np.array(weights)
        return options, array / array.sum()

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
