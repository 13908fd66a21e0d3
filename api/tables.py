"""Database tables of the service, as SQLAlchemy 2 declarative models.

The schema is created and changed only by the Alembic migrations in
``api/migrations``; ``tests/api/test_migrations.py`` checks that the migrations
and these models agree.

Personal data lives in ``registrants.full_name`` and ``registrants.birth_date``
only, used to flag duplicates across agencies and never returned by any route.
Profile vectors are float32 arrays of the embedding dimension, stored as raw
little-endian bytes beside their row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Integer primary keys: 64-bit on PostgreSQL, and INTEGER on SQLite, where only
# "INTEGER PRIMARY KEY" is the auto-incrementing row id.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 128
HASH_LENGTH = 64


class Base(DeclarativeBase):
    """Declarative base with a fixed constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ServiceState(Base):
    """Named values the service keeps across restarts, such as the pseudonym key."""

    __tablename__ = "service_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RegistryVersion(Base):
    """One-row counter, bumped by every transaction that changes registrants."""

    __tablename__ = "registry_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    """An API key: its public id, salt, salted SHA-256 digest, role and tenant."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    salt: Mapped[str] = mapped_column(String(HASH_LENGTH))
    secret_sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
    role: Mapped[str] = mapped_column(String(16))
    tenant_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RegistrantRow(Base):
    """A registrant: validated profile, normalised features and profile vector."""

    __tablename__ = "registrants"
    __table_args__ = (
        UniqueConstraint("agency_id", "external_id"),
        Index(None, "version"),
        Index(None, "birth_date"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    agency_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    external_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    origin: Mapped[str] = mapped_column(String(2))
    content_sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
    # The validated record as JSON, without full_name and birth_date.
    profile: Mapped[str] = mapped_column(Text)
    # Normalised features as JSON: skill keys, resolved occupations, their
    # ESCO matches with confidence, tested languages, qualifications, consent
    # and availability.
    features: Mapped[str] = mapped_column(Text)
    # Each skill as given and as normalised to ESCO, as a JSON list.
    skills: Mapped[str] = mapped_column(Text)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    full_name: Mapped[str | None] = mapped_column(Text)
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RegistrantTombstone(Base):
    """Marks an erased registrant id, so the in-process matrix cache drops it."""

    __tablename__ = "registrant_tombstones"
    __table_args__ = (Index(None, "version"),)

    registrant_id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False
    )
    version: Mapped[int] = mapped_column(BigInteger)


class AgreementRow(Base):
    """A bilateral agreement; its terms JSON has everything but the quota cells."""

    __tablename__ = "agreements"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    origin: Mapped[str] = mapped_column(String(2))
    destination: Mapped[str] = mapped_column(String(2))
    valid_from: Mapped[dt.date] = mapped_column(Date)
    valid_to: Mapped[dt.date] = mapped_column(Date)
    terms: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class QuotaCellRow(Base):
    """A quota cell, shared by every agreement that lists it, with its live use."""

    __tablename__ = "quota_cells"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    sector: Mapped[str | None] = mapped_column(String(1))
    isco_prefix: Mapped[str | None] = mapped_column(String(4))
    cap: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[dt.date] = mapped_column(Date)
    period_end: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AgreementCell(Base):
    """Membership of a quota cell in an agreement."""

    __tablename__ = "agreement_cells"

    agreement_id: Mapped[str] = mapped_column(
        ForeignKey("agreements.id", ondelete="CASCADE"), primary_key=True
    )
    cell_id: Mapped[str] = mapped_column(
        ForeignKey("quota_cells.id", ondelete="CASCADE"), primary_key=True
    )


class VacancyRow(Base):
    """An employer's vacancy; ``external_id`` is the id the employer chose."""

    __tablename__ = "vacancies"
    __table_args__ = (UniqueConstraint("employer_id", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    employer_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    external_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    record: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RoundRow(Base):
    """A matching round run in the background, with its progress."""

    __tablename__ = "rounds"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Float)
    config: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ShortlistRow(Base):
    """A shortlist for one vacancy, from a shortlist request or a matching round."""

    __tablename__ = "shortlists"
    __table_args__ = (Index(None, "vacancy_id", "status"), Index(None, "status"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    vacancy_id: Mapped[int] = mapped_column(
        ForeignKey("vacancies.id", ondelete="CASCADE")
    )
    round_id: Mapped[str | None] = mapped_column(
        ForeignKey("rounds.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16))
    quota_mode: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(64))
    solve_status: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float] = mapped_column(Float)
    bound: Mapped[float] = mapped_column(Float)
    unfilled: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class CandidateRow(Base):
    """A registrant on a shortlist, with the evidence shown to the employer."""

    __tablename__ = "shortlist_candidates"
    __table_args__ = (
        UniqueConstraint("shortlist_id", "pseudonym"),
        Index(None, "registrant_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    shortlist_id: Mapped[str] = mapped_column(
        ForeignKey("shortlists.id", ondelete="CASCADE")
    )
    registrant_id: Mapped[int] = mapped_column(
        ForeignKey("registrants.id", ondelete="CASCADE")
    )
    pseudonym: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    cell_ids: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    selected_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PlacementRow(Base):
    """A selected candidate; uses one unit of quota in each of its cells."""

    __tablename__ = "placements"
    __table_args__ = (UniqueConstraint("registrant_id"), Index(None, "vacancy_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # NULL after the registrant is erased; the quota the placement used stays used.
    registrant_id: Mapped[int | None] = mapped_column(
        ForeignKey("registrants.id", ondelete="SET NULL")
    )
    vacancy_id: Mapped[int] = mapped_column(
        ForeignKey("vacancies.id", ondelete="CASCADE")
    )
    shortlist_id: Mapped[str] = mapped_column(
        ForeignKey("shortlists.id", ondelete="CASCADE")
    )
    pseudonym: Mapped[str] = mapped_column(String(64))
    cell_ids: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """An audit event: the key, the action, the time and the SHA-256 of the input."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "action"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(300))
    input_sha256: Mapped[str] = mapped_column(String(HASH_LENGTH))
