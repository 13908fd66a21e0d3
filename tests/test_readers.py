"""Reading registrants, vacancies and agreements from CSV and JSON Lines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from matching.exceptions import InputError, InvalidRecordsError, RecordError
from matching.readers import (
    MAX_LINE_BYTES,
    detect_format,
    iter_agreements,
    iter_byte_lines,
    iter_registrants,
    iter_vacancies,
    read_all,
)

HEADER = (
    "agency_id,external_id,origin,sex,birth_year,occupations,skills,languages,"
    "qualifications,available_from,consent\n"
)
GOOD_ROW = (
    "AG1,R1,np,F,1995,7115=5;carpenter=2,use woodworking tools,"
    "en:B2:IELTS:2025-03-01;ko:A2,4:building trades:NP,2026-01-01,yes\n"
)


def _registrant_items(text: bytes, fmt: str = "csv") -> list[object]:
    lines = iter_byte_lines(io.BytesIO(text))
    return list(iter_registrants(lines, fmt=fmt, source="upload"))


def _errors(items: list[object]) -> list[RecordError]:
    return [item for item in items if isinstance(item, RecordError)]


def test_registrant_csv_good_row_parsed() -> None:
    items = _registrant_items((HEADER + GOOD_ROW).encode())
    line, registrant = items[0]  # type: ignore[misc]
    assert line == 2
    assert registrant.origin == "NP"
    assert registrant.sex == "female"
    assert registrant.occupations[0].isco_code == "7115"
    assert registrant.occupations[1].title == "carpenter"
    assert registrant.occupations[1].years_experience == 2.0
    assert registrant.languages[0].test == "IELTS"
    assert registrant.languages[0].test_date.isoformat() == "2025-03-01"
    assert registrant.qualifications[0].issuing_country == "NP"
    assert registrant.consent is True


@pytest.mark.parametrize(
    ("row", "field", "fragment"),
    [
        (
            "AG1,R2,ZZ,F,1990,,,,,2026-01-01,true\n",
            "origin",
            "'ZZ' is not an ISO 3166-1",
        ),
        (
            "AG1,R2,NP,F,1990,,,en:D1,,2026-01-01,true\n",
            "languages.0.level",
            "'D1' is not a CEFR level",
        ),
        (
            "AG1,R2,NP,F,1990,7115=-1,,,,2026-01-01,true\n",
            "occupations.0.years_experience",
            "greater than or equal to 0",
        ),
        ("AG1,R2,NP,F,1990,,,,,2026-13-01,true\n", "available_from", "2026-13-01"),
        (
            "AG1,R2,NP,F,1990,,,,,2026-01-01,perhaps\n",
            "consent",
            "expected true or false",
        ),
        ("AG1,R2,NP,F,2024,,,,,2026-01-01,true\n", None, "birth_year 2024"),
        (
            "AG1,R2,NP,F,1990,,,en,,2026-01-01,true\n",
            "languages",
            "expected 'language:level",
        ),
    ],
)
def test_registrant_csv_bad_value_named(
    row: str, field: str | None, fragment: str
) -> None:
    items = _registrant_items((HEADER + row).encode())
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 2
    assert errors[0].field == field
    assert fragment in str(errors[0])


def test_registrant_csv_bad_row_keeps_good_rows() -> None:
    bad = "AG1,R2,ZZ,F,1990,,,,,2026-01-01,true\n"
    good = GOOD_ROW.replace("R1", "R3")
    items = _registrant_items((HEADER + GOOD_ROW + bad + good).encode())
    accepted = [item for item in items if not isinstance(item, RecordError)]
    assert [line for line, _ in accepted] == [2, 4]  # type: ignore[misc]
    assert [error.line for error in _errors(items)] == [3]


def test_registrant_duplicate_external_id_names_first_line() -> None:
    items = _registrant_items((HEADER + GOOD_ROW + GOOD_ROW).encode())
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 3
    assert errors[0].field == "external_id"
    assert "already on line 2" in str(errors[0])


def test_registrant_bad_encoding_reported_by_line() -> None:
    bad = "AG1,R2,NP,F,1990,,caf\xe9,,,2026-01-01,true\n".encode("latin-1")
    items = _registrant_items((HEADER + GOOD_ROW).encode() + bad)
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 3
    assert "invalid UTF-8" in str(errors[0])


def test_registrant_csv_semicolon_header_rejected() -> None:
    text = HEADER.replace(",", ";") + GOOD_ROW.replace(",", ";")
    with pytest.raises(InputError, match="not comma-separated"):
        _registrant_items(text.encode())


def test_registrant_csv_missing_column_rejected() -> None:
    text = HEADER.replace(",consent", "") + GOOD_ROW
    with pytest.raises(InputError, match="missing required column\\(s\\) consent"):
        _registrant_items(text.encode())


def test_registrant_csv_unknown_column_rejected() -> None:
    text = HEADER.replace("consent", "consent,salary") + GOOD_ROW
    with pytest.raises(InputError, match="unknown column\\(s\\) salary"):
        _registrant_items(text.encode())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_registrant_empty_file_rejected(fmt: str) -> None:
    with pytest.raises(InputError, match="empty"):
        _registrant_items(b"", fmt=fmt)


def test_registrant_oversized_line_rejected() -> None:
    huge = "AG1,R9,NP,F,1990,," + "x" * (MAX_LINE_BYTES + 10) + ",,,2026-01-01,true\n"
    items = _registrant_items((HEADER + huge + GOOD_ROW).encode())
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 2
    assert "longer than" in str(errors[0])
    assert len(items) == 2


def test_registrant_jsonl_truncated_last_line() -> None:
    good = {
        "agency_id": "AG1",
        "external_id": "R1",
        "origin": "PH",
        "birth_year": 1990,
        "available_from": "2026-01-01",
        "consent": True,
    }
    text = json.dumps(good) + "\n" + json.dumps({**good, "external_id": "R2"})[:-10]
    items = _registrant_items(text.encode(), fmt="jsonl")
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 2
    assert "cut short" in str(errors[0])


def test_registrant_csv_truncated_last_line() -> None:
    items = _registrant_items((HEADER + GOOD_ROW + "AG1,R5,NP,F").encode())
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 3
    assert "cut short" in str(errors[0])


def test_registrant_jsonl_unknown_field_rejected() -> None:
    record = {
        "agency_id": "AG1",
        "external_id": "R1",
        "origin": "PH",
        "birth_year": 1990,
        "available_from": "2026-01-01",
        "consent": True,
        "salary": 10,
    }
    errors = _errors(_registrant_items(json.dumps(record).encode(), fmt="jsonl"))
    assert len(errors) == 1
    assert errors[0].field == "salary"
    assert "Extra inputs are not permitted" in str(errors[0])


def test_vacancy_csv_round_trip_fields() -> None:
    text = (
        "id,employer_id,destination,sector,isco_code,openings,language_minimums,regulated,start_date\n"
        "V1,E1,de,f,7115,2,de:B1;en:A2,no,2026-06-01\n"
    )
    items = list(iter_vacancies(iter_byte_lines(io.BytesIO(text.encode())), fmt="csv"))
    line, vacancy = items[0]  # type: ignore[misc]
    assert line == 2
    assert vacancy.destination == "DE"
    assert vacancy.sector == "F"
    assert [item.level for item in vacancy.language_minimums] == ["B1", "A2"]
    assert vacancy.regulated is False


def test_vacancy_zero_openings_rejected() -> None:
    text = "id,employer_id,destination,sector,isco_code,openings,start_date\nV1,E1,DE,F,7115,0,2026-06-01\n"
    items = list(iter_vacancies(iter_byte_lines(io.BytesIO(text.encode())), fmt="csv"))
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].field == "openings"
    assert errors[0].record_id == "V1"


def test_agreements_csv_rejected() -> None:
    with pytest.raises(InputError, match="JSON Lines"):
        list(iter_agreements(iter_byte_lines(io.BytesIO(b"id\nA\n")), fmt="csv"))


def test_agreements_json_array_accepted(tmp_path: Path) -> None:
    agreement = {
        "id": "AGR-NP-KR",
        "origin": "NP",
        "destination": "KR",
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "sectors": ["C"],
    }
    path = tmp_path / "agreements.json"
    path.write_text(
        json.dumps([agreement, {**agreement, "id": "AGR-2", "origin": "VN"}])
    )
    agreements = read_all(path, iter_agreements)
    assert [item.id for item in agreements] == ["AGR-NP-KR", "AGR-2"]


def _agreement(agreement_id: str, origin: str, destination: str) -> dict[str, object]:
    return {
        "id": agreement_id,
        "origin": origin,
        "destination": destination,
        "valid_from": "2026-01-01",
        "valid_to": "2026-12-31",
        "sectors": ["C"],
    }


def test_agreements_json_array_errors_name_file_line(tmp_path: Path) -> None:
    elements = [
        _agreement("AGR-1", "NP", "KR"),
        _agreement("AGR-2", "VN", "KR"),
        _agreement("AGR-3", "PH", "Germany"),
    ]
    body = json.dumps(elements, indent=2)
    path = tmp_path / "agreements.json"
    path.write_text("\n\n" + body[:-1] + ",\n  7\n]\n")
    file_lines = path.read_text().splitlines()
    # The 0-based index of the "id" line is the 1-based number of the "{" above it.
    third_start = file_lines.index('    "id": "AGR-3",')
    number_line = file_lines.index("  7") + 1

    with pytest.raises(InvalidRecordsError) as caught:
        read_all(path, iter_agreements)

    errors = caught.value.errors
    assert [error.line for error in errors] == [third_start, number_line]
    assert errors[0].field == "destination"
    assert errors[0].record_id == "AGR-3"
    assert errors[0].reason.startswith("'Germany' is not an ISO 3166-1")
    assert "GERMANY" not in errors[0].reason
    assert "array element 4 is int" in errors[1].reason


def test_agreements_json_array_syntax_error_line(tmp_path: Path) -> None:
    body = json.dumps([_agreement("AGR-1", "NP", "KR")], indent=2)
    path = tmp_path / "agreements.json"
    path.write_text("\n" + body.replace('"NP"', '"NP'))
    broken_line = path.read_text().splitlines().index('    "origin": "NP,') + 1

    with pytest.raises(InputError) as caught:
        read_all(path, iter_agreements)

    message = str(caught.value)
    assert f"invalid JSON array at line {broken_line}, column" in message
    assert "at at" not in message


def test_agreements_json_array_empty_rejected(tmp_path: Path) -> None:
    path = tmp_path / "agreements.json"
    path.write_text("[ ]\n")
    with pytest.raises(InputError, match="the JSON array is empty"):
        read_all(path, iter_agreements)


def test_read_all_lists_every_error(tmp_path: Path) -> None:
    path = tmp_path / "registrants.csv"
    bad = "AG1,R2,ZZ,F,1990,,,,,2026-01-01,true\n"
    worse = "AG1,R3,NP,F,1990,,,en:D1,,2026-01-01,true\n"
    path.write_text(HEADER + GOOD_ROW + bad + worse)
    with pytest.raises(InvalidRecordsError) as caught:
        read_all(path, iter_registrants)
    assert [error.line for error in caught.value.errors] == [3, 4]
    assert "registrants.csv: line 3" in str(caught.value)


def test_detect_format_unknown_extension() -> None:
    with pytest.raises(ValueError, match="use .csv or .jsonl"):
        detect_format("people.xlsx")


def test_registrant_jsonl_bad_line_names_column() -> None:
    text = b'{"external_id": "R1", "origin": "PH}\n'
    errors = _errors(_registrant_items(text, fmt="jsonl"))
    assert len(errors) == 1
    assert errors[0].line == 1
    assert "Unterminated string starting at column 33" in str(errors[0])
    assert "at at" not in str(errors[0])


def test_vacancy_every_bad_field_named() -> None:
    text = (
        "id,employer_id,destination,sector,isco_code,openings,start_date\n"
        "V1,E1,DE,QQ,7115,0,2026-06-01\n"
    )
    items = list(iter_vacancies(iter_byte_lines(io.BytesIO(text.encode())), fmt="csv"))
    errors = _errors(items)
    assert len(errors) == 1
    assert errors[0].line == 2
    assert errors[0].field == "sector"
    assert errors[0].record_id == "V1"
    assert errors[0].reason.startswith("'QQ' is not an ISIC Rev. 4 section")
    assert "; field 'openings': " in errors[0].reason
    assert "greater than or equal to 1 (value '0')" in errors[0].reason
    assert "more problem" not in str(errors[0])
