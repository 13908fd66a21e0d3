"""Records the engine works on, validated at the boundary with pydantic.

Every model is frozen and rejects unknown fields, so a typo in an input column
is reported rather than silently dropped. Validators raise ``ValueError`` with a
message that names the value and what is allowed; the readers in
:mod:`matching.readers` add the record, line and field.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from matching.codes import (
    CEFR_LEVELS,
    EQF_MAX_LEVEL,
    EQF_MIN_LEVEL,
    ISIC_SECTIONS,
    RecognitionState,
    Sex,
    cefr_rank,
    is_country_code,
    is_language_code,
)

_ISCO_UNIT = re.compile(r"^\d{4}$")
_ISCO_PREFIX = re.compile(r"^\d{1,4}$")
_ESCO_OCCUPATION_URI = "http://data.europa.eu/esco/occupation/"
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")

# Oldest and youngest birth years accepted; a registrant must be of working
# age (15, the ILO minimum for non-hazardous work) in the current year.
MIN_BIRTH_YEAR = 1930
MIN_WORKING_AGE_YEARS = 15
MAX_EXPERIENCE_YEARS = 60.0


def _check_country(code: str) -> str:
    if not is_country_code(code):
        raise ValueError(
            f"'{code}' is not an ISO 3166-1 alpha-2 country code; "
            "use two upper-case letters such as 'NP', 'PH' or 'DE' ('XK' for Kosovo)"
        )
    return code


def _check_language(code: str) -> str:
    if not is_language_code(code):
        raise ValueError(
            f"'{code}' is not an ISO 639-1 language code; "
            "use two lower-case letters such as 'en', 'de' or 'ko'"
        )
    return code


def _check_cefr(level: str) -> str:
    if level not in CEFR_LEVELS:
        raise ValueError(
            f"'{level}' is not a CEFR level; allowed: {', '.join(CEFR_LEVELS)}"
        )
    return level


def _check_isco_unit(code: str) -> str:
    if not _ISCO_UNIT.match(code):
        raise ValueError(
            f"'{code}' is not an ISCO-08 unit group; use four digits such as '7115'"
        )
    return code


def _check_isco_prefix(code: str) -> str:
    if not _ISCO_PREFIX.match(code):
        raise ValueError(
            f"'{code}' is not an ISCO-08 group code; use one to four digits "
            "such as '7' (major), '71' (sub-major), '711' (minor) or '7115' (unit)"
        )
    return code


def _check_isic(section: str) -> str:
    if section not in ISIC_SECTIONS:
        raise ValueError(
            f"'{section}' is not an ISIC Rev. 4 section; use one letter A to U, "
            "for example 'C' (manufacturing) or 'F' (construction)"
        )
    return section


def _check_identifier(value: str) -> str:
    if not _ID_PATTERN.match(value):
        raise ValueError(
            f"'{value}' is not a valid identifier; use 1 to 128 letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit"
        )
    return value


def _check_occupation_uri(uri: str) -> str:
    if not uri.startswith(_ESCO_OCCUPATION_URI):
        raise ValueError(
            f"'{uri}' is not an ESCO occupation URI; it must start with "
            f"'{_ESCO_OCCUPATION_URI}'"
        )
    return uri


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


CountryCode = Annotated[str, AfterValidator(_check_country)]
LanguageCode = Annotated[str, AfterValidator(_check_language)]
CefrLevel = Annotated[str, AfterValidator(_check_cefr)]
IscoUnitCode = Annotated[str, AfterValidator(_check_isco_unit)]
IscoPrefix = Annotated[str, AfterValidator(_check_isco_prefix)]
IsicSection = Annotated[str, AfterValidator(_check_isic)]
Identifier = Annotated[str, AfterValidator(_check_identifier)]
OccupationUri = Annotated[str, AfterValidator(_check_occupation_uri)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=500)]


class Record(BaseModel):
    """Base of every input record: frozen, strict about unknown fields."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, validate_default=True
    )


class OccupationClaim(Record):
    """An occupation a registrant has worked in, with years of experience."""

    isco_code: IscoUnitCode | None = None
    esco_uri: OccupationUri | None = None
    title: NonEmptyText | None = None
    years_experience: float = Field(default=0.0, ge=0.0, le=MAX_EXPERIENCE_YEARS)

    @model_validator(mode="after")
    def _needs_some_identification(self) -> OccupationClaim:
        if self.isco_code is None and self.esco_uri is None and self.title is None:
            raise ValueError(
                "an occupation needs at least one of isco_code, esco_uri or title"
            )
        return self


class LanguageCertificate(Record):
    """A language with its CEFR level and, when tested, the test and its date."""

    language: LanguageCode
    level: CefrLevel
    test: NonEmptyText | None = None
    test_date: dt.date | None = None

    @property
    def rank(self) -> int:
        """CEFR level as a number, 1 (A1) to 6 (C2)."""
        return cefr_rank(self.level)


class LanguageRequirement(Record):
    """A minimum CEFR level in one language."""

    language: LanguageCode
    level: CefrLevel

    @property
    def rank(self) -> int:
        """CEFR level as a number, 1 (A1) to 6 (C2)."""
        return cefr_rank(self.level)


class Qualification(Record):
    """A diploma or certificate: EQF level, field of study, issuing country."""

    level: int = Field(ge=EQF_MIN_LEVEL, le=EQF_MAX_LEVEL)
    field: NonEmptyText
    issuing_country: CountryCode
    title: NonEmptyText | None = None


def _normalise_sex(value: object) -> object:
    aliases = {"f": "female", "m": "male", "x": "other", "u": "unspecified"}
    if isinstance(value, str):
        lowered = value.strip().lower()
        return aliases.get(lowered, lowered)
    return value


class Registrant(Record):
    """A person registered by a sending-country agency to work abroad."""

    agency_id: Identifier
    external_id: Identifier
    origin: Annotated[CountryCode, Field(description="ISO 3166-1 alpha-2")]
    sex: Sex = "unspecified"
    birth_year: int
    full_name: NonEmptyText | None = Field(
        default=None, description="Used only to flag duplicates; never shown."
    )
    birth_date: dt.date | None = None
    occupations: tuple[OccupationClaim, ...] = ()
    skills: tuple[NonEmptyText, ...] = Field(
        default=(), description="ESCO skill URIs or free text."
    )
    languages: tuple[LanguageCertificate, ...] = ()
    qualifications: tuple[Qualification, ...] = ()
    available_from: dt.date
    consent: bool

    @model_validator(mode="before")
    @classmethod
    def _coerce_codes(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if "origin" in data:
                data["origin"] = _upper(data["origin"])
            if "sex" in data:
                data["sex"] = _normalise_sex(data["sex"])
        return data

    @model_validator(mode="after")
    def _check_birth(self) -> Registrant:
        latest = dt.date.today().year - MIN_WORKING_AGE_YEARS
        if not MIN_BIRTH_YEAR <= self.birth_year <= latest:
            raise ValueError(
                f"birth_year {self.birth_year} is outside {MIN_BIRTH_YEAR}..{latest}; "
                f"a registrant must be at least {MIN_WORKING_AGE_YEARS} years old"
            )
        if self.birth_date is not None and self.birth_date.year != self.birth_year:
            raise ValueError(
                f"birth_date {self.birth_date.isoformat()} does not fall in "
                f"birth_year {self.birth_year}"
            )
        return self

    @property
    def key(self) -> str:
        """Identity of the registrant across loads: ``agency_id/external_id``."""
        return f"{self.agency_id}/{self.external_id}"


class Employer(Record):
    """A destination employer that posts vacancies."""

    id: Identifier
    name: NonEmptyText
    country: CountryCode


class Vacancy(Record):
    """An employer's vacancy: occupation, openings and requirements."""

    id: Identifier
    employer_id: Identifier
    destination: CountryCode
    sector: IsicSection
    isco_code: IscoUnitCode | None = None
    esco_uri: OccupationUri | None = None
    title: NonEmptyText | None = None
    openings: int = Field(ge=1, le=10_000)
    essential_skills: tuple[NonEmptyText, ...] = ()
    optional_skills: tuple[NonEmptyText, ...] = ()
    language_minimums: tuple[LanguageRequirement, ...] = ()
    min_experience_years: float = Field(default=0.0, ge=0.0, le=MAX_EXPERIENCE_YEARS)
    regulated: bool = False
    start_date: dt.date

    @model_validator(mode="before")
    @classmethod
    def _coerce_codes(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            if "destination" in data:
                data["destination"] = _upper(data["destination"])
            if "sector" in data:
                data["sector"] = _upper(data["sector"])
        return data

    @model_validator(mode="after")
    def _needs_an_occupation(self) -> Vacancy:
        if self.isco_code is None and self.esco_uri is None and self.title is None:
            raise ValueError(
                f"vacancy '{self.id}' needs at least one of isco_code, esco_uri or title"
            )
        return self


class QuotaCell(Record):
    """A cap on admissions in one cell of an agreement over a period.

    A cell covers the agreement's whole corridor, or one sector, or one ISCO
    group, or a sector and a group together. Cells with the same ``id`` in
    several agreements are one shared cell: a cap across several origins, as
    in a destination's programme-wide annual quota.
    """

    id: Identifier
    sector: IsicSection | None = None
    isco_prefix: IscoPrefix | None = None
    cap: int = Field(ge=0)
    used: int = Field(default=0, ge=0)
    period_start: dt.date
    period_end: dt.date

    @model_validator(mode="after")
    def _check_period_and_use(self) -> QuotaCell:
        if self.period_end < self.period_start:
            raise ValueError(
                f"quota cell '{self.id}' ends ({self.period_end}) before it starts "
                f"({self.period_start})"
            )
        return self

    @property
    def remaining(self) -> int:
        """Admissions left in the period; zero once use reaches the cap."""
        return max(self.cap - self.used, 0)


class RecognitionRule(Record):
    """How the destination treats an origin qualification for a regulated job."""

    isco_prefix: IscoPrefix
    field: NonEmptyText | None = Field(
        default=None, description="Field of study; None matches any field."
    )
    min_level: int = Field(default=EQF_MIN_LEVEL, ge=EQF_MIN_LEVEL, le=EQF_MAX_LEVEL)
    state: RecognitionState


class BilateralAgreement(Record):
    """A corridor's terms: coverage, quotas, recognition and language rules."""

    id: Identifier
    origin: CountryCode
    destination: CountryCode
    valid_from: dt.date
    valid_to: dt.date
    sectors: tuple[IsicSection, ...] = ()
    occupations: tuple[IscoPrefix, ...] = ()
    quota_cells: tuple[QuotaCell, ...] = ()
    recognition: tuple[RecognitionRule, ...] = ()
    language_minimums: tuple[LanguageRequirement, ...] = ()
    test_validity_days: int = Field(default=730, ge=1, le=3650)
    shortlist_ratio: int = Field(default=3, ge=1, le=20)

    @model_validator(mode="before")
    @classmethod
    def _coerce_codes(cls, data: object) -> object:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("origin", "destination"):
                if key in data:
                    data[key] = _upper(data[key])
        return data

    @model_validator(mode="after")
    def _check_terms(self) -> BilateralAgreement:
        if self.origin == self.destination:
            raise ValueError(
                f"agreement '{self.id}' has the same origin and destination "
                f"'{self.origin}'; a corridor joins two countries"
            )
        if self.valid_to < self.valid_from:
            raise ValueError(
                f"agreement '{self.id}' ends ({self.valid_to}) before it starts "
                f"({self.valid_from})"
            )
        if not self.sectors and not self.occupations:
            raise ValueError(
                f"agreement '{self.id}' covers nothing; list at least one ISIC "
                "section in sectors or one ISCO group in occupations"
            )
        cell_ids = [cell.id for cell in self.quota_cells]
        repeated = sorted(
            {cell_id for cell_id in cell_ids if cell_ids.count(cell_id) > 1}
        )
        if repeated:
            raise ValueError(
                f"agreement '{self.id}' lists quota cell(s) {repeated} more than once"
            )
        return self

    @property
    def corridor(self) -> tuple[str, str]:
        """The (origin, destination) pair of country codes."""
        return (self.origin, self.destination)

    def is_in_force(self, day: dt.date) -> bool:
        """Tell whether the agreement is valid on ``day``."""
        return self.valid_from <= day <= self.valid_to

    def covers(self, sector: str, isco_code: str | None) -> bool:
        """Tell whether a vacancy's sector or occupation is open in this corridor."""
        if sector in self.sectors:
            return True
        if isco_code is None:
            return False
        return any(isco_code.startswith(prefix) for prefix in self.occupations)


__all__ = [
    "BilateralAgreement",
    "Employer",
    "LanguageCertificate",
    "LanguageRequirement",
    "OccupationClaim",
    "Qualification",
    "QuotaCell",
    "RecognitionRule",
    "Record",
    "Registrant",
    "Vacancy",
]
