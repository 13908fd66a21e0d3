"""Create the initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY auto-increments.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(length=128)
SHA256 = sa.String(length=64)
KEY_ID = sa.String(length=32)


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "service_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_service_state")),
    )
    registry_version = op.create_table(
        "registry_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_version")),
    )
    op.bulk_insert(registry_version, [{"id": 1, "version": 0}])

    op.create_table(
        "api_keys",
        sa.Column("id", KEY_ID, nullable=False),
        sa.Column("salt", SHA256, nullable=False),
        sa.Column("secret_sha256", SHA256, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("tenant_id", ID, nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        _timestamp("created_at"),
        _timestamp("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )

    op.create_table(
        "registrants",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("agency_id", ID, nullable=False),
        sa.Column("external_id", ID, nullable=False),
        sa.Column("origin", sa.String(length=2), nullable=False),
        sa.Column("content_sha256", SHA256, nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("features", sa.Text(), nullable=False),
        sa.Column("skills", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("version", sa.BigInteger(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registrants")),
        sa.UniqueConstraint(
            "agency_id",
            "external_id",
            name=op.f("uq_registrants_agency_id_external_id"),
        ),
    )
    op.create_index(op.f("ix_registrants_birth_date"), "registrants", ["birth_date"])
    op.create_index(op.f("ix_registrants_version"), "registrants", ["version"])

    op.create_table(
        "registrant_tombstones",
        sa.Column(
            "registrant_id", sa.BigInteger(), autoincrement=False, nullable=False
        ),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("registrant_id", name=op.f("pk_registrant_tombstones")),
    )
    op.create_index(
        op.f("ix_registrant_tombstones_version"), "registrant_tombstones", ["version"]
    )

    op.create_table(
        "agreements",
        sa.Column("id", ID, nullable=False),
        sa.Column("origin", sa.String(length=2), nullable=False),
        sa.Column("destination", sa.String(length=2), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("closed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreements")),
    )
    op.create_table(
        "quota_cells",
        sa.Column("id", ID, nullable=False),
        sa.Column("sector", sa.String(length=1), nullable=True),
        sa.Column("isco_prefix", sa.String(length=4), nullable=True),
        sa.Column("cap", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("closed_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_cells")),
    )
    op.create_table(
        "agreement_cells",
        sa.Column("agreement_id", ID, nullable=False),
        sa.Column("cell_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["agreement_id"],
            ["agreements.id"],
            name=op.f("fk_agreement_cells_agreement_id_agreements"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"],
            ["quota_cells.id"],
            name=op.f("fk_agreement_cells_cell_id_quota_cells"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "agreement_id", "cell_id", name=op.f("pk_agreement_cells")
        ),
    )

    op.create_table(
        "vacancies",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("employer_id", ID, nullable=False),
        sa.Column("external_id", ID, nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancies")),
        sa.UniqueConstraint(
            "employer_id",
            "external_id",
            name=op.f("uq_vacancies_employer_id_external_id"),
        ),
    )

    op.create_table(
        "rounds",
        sa.Column("id", KEY_ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", KEY_ID, nullable=False),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rounds")),
    )

    op.create_table(
        "shortlists",
        sa.Column("id", KEY_ID, nullable=False),
        sa.Column("vacancy_id", BIG_ID, nullable=False),
        sa.Column("round_id", KEY_ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("quota_mode", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=64), nullable=False),
        sa.Column("solve_status", sa.String(length=16), nullable=False),
        sa.Column("objective", sa.Float(), nullable=False),
        sa.Column("bound", sa.Float(), nullable=False),
        sa.Column("unfilled", sa.Text(), nullable=True),
        sa.Column("created_by", KEY_ID, nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
            name=op.f("fk_shortlists_round_id_rounds"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vacancy_id"],
            ["vacancies.id"],
            name=op.f("fk_shortlists_vacancy_id_vacancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortlists")),
    )
    op.create_index(op.f("ix_shortlists_status"), "shortlists", ["status"])
    op.create_index(
        op.f("ix_shortlists_vacancy_id_status"), "shortlists", ["vacancy_id", "status"]
    )

    op.create_table(
        "shortlist_candidates",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("shortlist_id", KEY_ID, nullable=False),
        sa.Column("registrant_id", BIG_ID, nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("cell_ids", sa.Text(), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        _timestamp("selected_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["registrant_id"],
            ["registrants.id"],
            name=op.f("fk_shortlist_candidates_registrant_id_registrants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shortlist_id"],
            ["shortlists.id"],
            name=op.f("fk_shortlist_candidates_shortlist_id_shortlists"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortlist_candidates")),
        sa.UniqueConstraint(
            "shortlist_id",
            "pseudonym",
            name=op.f("uq_shortlist_candidates_shortlist_id_pseudonym"),
        ),
    )
    op.create_index(
        op.f("ix_shortlist_candidates_registrant_id"),
        "shortlist_candidates",
        ["registrant_id"],
    )

    op.create_table(
        "placements",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("registrant_id", BIG_ID, nullable=True),
        sa.Column("vacancy_id", BIG_ID, nullable=False),
        sa.Column("shortlist_id", KEY_ID, nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("cell_ids", sa.Text(), nullable=False),
        sa.Column("created_by", KEY_ID, nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["registrant_id"],
            ["registrants.id"],
            name=op.f("fk_placements_registrant_id_registrants"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["shortlist_id"],
            ["shortlists.id"],
            name=op.f("fk_placements_shortlist_id_shortlists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vacancy_id"],
            ["vacancies.id"],
            name=op.f("fk_placements_vacancy_id_vacancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placements")),
        sa.UniqueConstraint("registrant_id", name=op.f("uq_placements_registrant_id")),
    )
    op.create_index(op.f("ix_placements_vacancy_id"), "placements", ["vacancy_id"])

    op.create_table(
        "audit_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        _timestamp("at"),
        sa.Column("key_id", KEY_ID, nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=False),
        sa.Column("input_sha256", SHA256, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_action"), "audit_events", ["action"])


def downgrade() -> None:
    for table in (
        "audit_events",
        "placements",
        "shortlist_candidates",
        "shortlists",
        "rounds",
        "vacancies",
        "agreement_cells",
        "quota_cells",
        "agreements",
        "registrant_tombstones",
        "registrants",
        "api_keys",
        "registry_version",
        "service_state",
    ):
        op.drop_table(table)
