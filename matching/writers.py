"""Write records in the formats :mod:`matching.readers` reads back.

CSV cells use the same compact syntax as the readers (items separated by
``;``), so writing and reading a record gives the record back.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from matching.models import BilateralAgreement, Record, Registrant, Vacancy
from matching.readers import REGISTRANT_COLUMNS, VACANCY_COLUMNS


def _jsonl(records: Iterable[Record], path: Path) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(record.model_dump_json(exclude_none=True) + "\n")


def _registrant_row(registrant: Registrant) -> dict[str, Any]:
    occupations = []
    for claim in registrant.occupations:
        name = claim.isco_code or claim.esco_uri or claim.title or ""
        occupations.append(f"{name}={claim.years_experience:g}")
    languages = []
    for certificate in registrant.languages:
        parts = [certificate.language, certificate.level]
        if certificate.test or certificate.test_date:
            parts.append(certificate.test or "")
        if certificate.test_date:
            parts.append(certificate.test_date.isoformat())
        languages.append(":".join(parts))
    qualifications = [
        ":".join(
            [str(item.level), item.field, item.issuing_country]
            + ([item.title] if item.title else [])
        )
        for item in registrant.qualifications
    ]
    return {
        "agency_id": registrant.agency_id,
        "external_id": registrant.external_id,
        "origin": registrant.origin,
        "sex": registrant.sex,
        "birth_year": registrant.birth_year,
        "full_name": registrant.full_name or "",
        "birth_date": registrant.birth_date.isoformat()
        if registrant.birth_date
        else "",
        "occupations": "; ".join(occupations),
        "skills": "; ".join(registrant.skills),
        "languages": "; ".join(languages),
        "qualifications": "; ".join(qualifications),
        "available_from": registrant.available_from.isoformat(),
        "consent": "true" if registrant.consent else "false",
    }


def _vacancy_row(vacancy: Vacancy) -> dict[str, Any]:
    return {
        "id": vacancy.id,
        "employer_id": vacancy.employer_id,
        "destination": vacancy.destination,
        "sector": vacancy.sector,
        "isco_code": vacancy.isco_code or "",
        "esco_uri": vacancy.esco_uri or "",
        "title": vacancy.title or "",
        "openings": vacancy.openings,
        "essential_skills": "; ".join(vacancy.essential_skills),
        "optional_skills": "; ".join(vacancy.optional_skills),
        "language_minimums": "; ".join(
            f"{item.language}:{item.level}" for item in vacancy.language_minimums
        ),
        "min_experience_years": f"{vacancy.min_experience_years:g}",
        "regulated": "true" if vacancy.regulated else "false",
        "start_date": vacancy.start_date.isoformat(),
    }


def _csv(rows: Iterable[dict[str, Any]], columns: tuple[str, ...], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_registrants(
    registrants: Iterable[Registrant], path: Path, *, fmt: str = "jsonl"
) -> None:
    """Write registrants as JSON Lines or CSV."""
    if fmt == "csv":
        _csv((_registrant_row(item) for item in registrants), REGISTRANT_COLUMNS, path)
    else:
        _jsonl(registrants, path)


def write_vacancies(
    vacancies: Iterable[Vacancy], path: Path, *, fmt: str = "jsonl"
) -> None:
    """Write vacancies as JSON Lines or CSV."""
    if fmt == "csv":
        _csv((_vacancy_row(item) for item in vacancies), VACANCY_COLUMNS, path)
    else:
        _jsonl(vacancies, path)


def write_agreements(agreements: Iterable[BilateralAgreement], path: Path) -> None:
    """Write agreements as JSON Lines."""
    _jsonl(agreements, path)
