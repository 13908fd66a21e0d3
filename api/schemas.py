"""Request and response bodies, named by role (``...Create``, ``...Public``).

Input records reuse the engine's validated models (:mod:`matching.models`), so
a field means the same in a file, in the command line and in the API. No
response model has a field for a registrant's name or birth date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from matching.codes import QuotaMode
from matching.models import (
    BilateralAgreement,
    Identifier,
    IscoPrefix,
    IsicSection,
    LanguageRequirement,
    RecognitionRule,
    Vacancy,
)


class Schema(BaseModel):
    """Base of the API's own bodies: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid")


# --- keys -----------------------------------------------------------------


class KeyCreate(Schema):
    """A new API key: its role and, for agencies and employers, the tenant id."""

    role: Literal["admin", "agency", "employer"]
    tenant_id: Identifier | None = Field(
        default=None,
        description="The agency_id or employer_id the key acts for; none for admin.",
    )
    name: str = Field(default="", max_length=200, description="A note for people.")


class KeyPublic(Schema):
    """An API key without its secret."""

    id: str
    role: str
    tenant_id: str | None
    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class KeyCreated(KeyPublic):
    """A newly created key, the only response that shows the secret."""

    key: str = Field(
        description="The API key; it is not stored and cannot be shown again."
    )


# --- registrants ----------------------------------------------------------


class RowProblem(Schema):
    """A rejected row of an upload."""

    line: int | None = Field(
        description="1-based line number; the CSV header is line 1."
    )
    field: str | None = Field(description="Dotted path of the field, when known.")
    reason: str
    external_id: str | None = None


class ProbableDuplicate(Schema):
    """An uploaded registrant whose name and birth date match another agency's."""

    line: int
    external_id: str
    other_agency_id: str
    similarity: float = Field(
        description="rapidfuzz token-sort ratio of the names, 0 to 100."
    )


class UploadReport(Schema):
    """Outcome of a bulk upload, row by row."""

    rows_read: int = Field(description="Data rows read, valid or not.")
    accepted: int = Field(description="New registrants stored.")
    updated: int = Field(description="Stored registrants whose content changed.")
    unchanged: int = Field(description="Rows identical to what is stored.")
    rejected_count: int
    rejected: list[RowProblem] = Field(
        description="Rejected rows, the first max_reported_row_errors of them."
    )
    duplicates_count: int
    duplicates: list[ProbableDuplicate]
    batches: int = Field(description="Batches written, each in one transaction.")
    seconds: float
    body_sha256: str


class SkillEvidence(Schema):
    """A skill as given and as normalised to ESCO."""

    raw: str
    uri: str | None
    label: str | None
    confidence: float
    method: str


class RegistrantPublic(Schema):
    """A stored registrant as its agency sees it (never with name or birth date)."""

    external_id: str
    agency_id: str
    origin: str
    profile: dict[str, Any] = Field(
        description="The validated record, without personal names."
    )
    skills: list[SkillEvidence]
    content_sha256: str
    created_at: dt.datetime
    updated_at: dt.datetime


# --- vacancies and shortlists ----------------------------------------------

_vacancy_fields: dict[str, Any] = {
    name: (field.annotation, field)
    for name, field in Vacancy.model_fields.items()
    if name != "employer_id"
}
VacancyCreate = create_model(
    "VacancyCreate",
    __config__=ConfigDict(extra="forbid"),
    __doc__="A vacancy; the employer is the one the API key acts for.",
    **_vacancy_fields,
)


class VacancyPublic(Schema):
    """A stored vacancy with its current shortlist and placements."""

    id: str
    employer_id: str
    status: str
    vacancy: dict[str, Any]
    open_shortlist_id: str | None
    placements: int
    openings_left: int
    created_at: dt.datetime


class ShortlistCreate(Schema):
    """Options of a shortlist request; the service settings fill what is left out."""

    quota_mode: QuotaMode | None = None


class CandidatePublic(Schema):
    """A shortlisted candidate by pseudonym, with the evidence for the score."""

    candidate_id: str = Field(description="Pseudonymous id, stable for this employer.")
    rank: int
    score: float
    evidence: dict[str, Any] = Field(
        description="Score components that apply to the vacancy (semantic, "
        "essential_skills, isco_proximity, experience, language_margin, "
        "skill_profile, occupation_match), matched and missing essential skills, "
        "skills, languages, qualifications and recognition."
    )
    quota_cells: list[str]
    selected: bool


class ShortlistPublic(Schema):
    """A shortlist for one vacancy."""

    id: str
    vacancy_id: str
    round_id: str | None
    status: str
    quota_mode: str
    method: str
    solve_status: str
    objective: float
    bound: float
    unfilled: dict[str, Any] | None
    created_at: dt.datetime
    candidates: list[CandidatePublic]


class SelectionCreate(Schema):
    """Candidates the employer chooses from a shortlist."""

    candidate_ids: list[str] = Field(min_length=1, max_length=1_000)


class QuotaUse(Schema):
    """Use of one quota cell after a selection."""

    id: str
    cap: int
    used: int


class SelectionPublic(Schema):
    """A recorded selection: the placements made and the quota they used."""

    shortlist_id: str
    placed: list[str]
    quota_cells: list[QuotaUse]


# --- agreements and quota cells -------------------------------------------

AgreementCreate = BilateralAgreement


class AgreementUpdate(Schema):
    """Terms of an agreement to change; quota cells change through their own routes."""

    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    sectors: tuple[IsicSection, ...] | None = None
    occupations: tuple[IscoPrefix, ...] | None = None
    recognition: tuple[RecognitionRule, ...] | None = None
    language_minimums: tuple[LanguageRequirement, ...] | None = None
    test_validity_days: int | None = Field(default=None, ge=1, le=3650)
    shortlist_ratio: int | None = Field(default=None, ge=1, le=20)


class AgreementPublic(Schema):
    """A stored agreement with the live use of its quota cells."""

    agreement: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None


class QuotaCellCreate(Schema):
    """A new quota cell and the agreements that share it."""

    id: Identifier
    sector: IsicSection | None = None
    isco_prefix: IscoPrefix | None = None
    cap: int = Field(ge=0)
    used: int = Field(default=0, ge=0)
    period_start: dt.date
    period_end: dt.date
    agreement_ids: list[Identifier] = Field(min_length=1)


class QuotaCellUpdate(Schema):
    """Cap or period of a quota cell to change."""

    cap: int | None = Field(default=None, ge=0)
    period_start: dt.date | None = None
    period_end: dt.date | None = None


class QuotaCellPublic(Schema):
    """A quota cell with its use."""

    id: str
    sector: str | None
    isco_prefix: str | None
    cap: int
    used: int
    remaining: int
    on_open_shortlists: int = Field(
        description="Unselected candidates on open shortlists who count against "
        "the cell."
    )
    period_start: dt.date
    period_end: dt.date
    agreement_ids: list[str]
    closed_at: dt.datetime | None


# --- rounds ---------------------------------------------------------------


class RoundCreate(Schema):
    """Options of a matching round; the service settings fill what is left out."""

    quota_mode: QuotaMode | None = None
    method: Literal["auto", "exact", "relaxed", "greedy"] | None = None
    shortlist_ratio: int | None = Field(default=None, ge=1, le=20)
    max_shortlists_per_registrant: int | None = Field(default=None, ge=1, le=100)
    candidates_per_vacancy: int | None = Field(default=None, ge=1, le=100_000)
    time_limit_seconds: float | None = Field(default=None, gt=0, le=86_400)


class RoundPublic(Schema):
    """A matching round and its progress."""

    id: str
    status: Literal["queued", "running", "done", "failed"]
    stage: str
    progress: float = Field(ge=0.0, le=1.0)
    config: dict[str, Any]
    summary: dict[str, Any] | None
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
