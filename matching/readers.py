"""Read registrants, vacancies and agreements from CSV or JSON Lines.

Readers work on a stream of raw byte lines, so a file of millions of rows is
never held in memory and a bad byte sequence is reported on its own line. Each
line yields either a validated record or a :class:`~matching.exceptions.RecordError`
naming the line, the field and the rule broken; one bad row never stops the
rows after it. Whole-file problems (empty file, wrong delimiter, missing
column) raise :class:`~matching.exceptions.InputError` at once.

CSV cells hold nested values in a compact syntax, items separated by ``;``:

- ``occupations``: ``7115=5; carpenter=2`` (ISCO unit group, ESCO URI or
  free title, then ``=`` and years of experience);
- ``languages``: ``en:B2:IELTS:2025-03-01; ko:A2`` (language, CEFR level,
  then optionally the test and its date);
- ``qualifications``: ``6:nursing:PH`` (EQF level, field, issuing country,
  then optionally a title);
- ``skills``, ``essential_skills``, ``optional_skills``: free text or ESCO URIs;
- ``language_minimums``: ``de:B1; en:A2``.

Agreements nest quota cells and recognition tables, so they are read from
JSON Lines or from one JSON array only.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from matching.exceptions import InputError, InvalidRecordsError, RecordError
from matching.models import BilateralAgreement, Record, Registrant, Vacancy

logger = logging.getLogger(__name__)

RecordT = TypeVar("RecordT", bound=Record)

# A line longer than this is rejected rather than parsed: a profile with a few
# hundred skills fits in a few KiB, and the bound keeps a corrupt file with no
# line breaks from filling memory.
MAX_LINE_BYTES = 256 * 1024

FORMATS = ("csv", "jsonl")
_LIST_SEPARATOR = ";"
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}

REGISTRANT_COLUMNS = (
    "agency_id",
    "external_id",
    "origin",
    "sex",
    "birth_year",
    "full_name",
    "birth_date",
    "occupations",
    "skills",
    "languages",
    "qualifications",
    "available_from",
    "consent",
)
REGISTRANT_REQUIRED = (
    "agency_id",
    "external_id",
    "origin",
    "birth_year",
    "available_from",
    "consent",
)

VACANCY_COLUMNS = (
    "id",
    "employer_id",
    "destination",
    "sector",
    "isco_code",
    "esco_uri",
    "title",
    "openings",
    "essential_skills",
    "optional_skills",
    "language_minimums",
    "min_experience_years",
    "regulated",
    "start_date",
)
VACANCY_REQUIRED = (
    "id",
    "employer_id",
    "destination",
    "sector",
    "openings",
    "start_date",
)


@dataclass(frozen=True)
class ParsedRow:
    """One raw row: its 1-based line number and its fields before validation."""

    line: int
    data: dict[str, Any]


def detect_format(name: str) -> str:
    """Return ``"csv"`` or ``"jsonl"`` from a file name's extension.

    Raises
    ------
    ValueError
        If the extension is neither ``.csv`` nor ``.jsonl``/``.ndjson``/``.json``.
    """
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    raise ValueError(
        f"cannot tell the format of '{name}' from its extension; "
        "use .csv or .jsonl, or pass the format explicitly"
    )


def iter_byte_lines(stream: io.BufferedIOBase | io.RawIOBase | Any) -> Iterator[bytes]:
    """Yield the lines of a binary stream, each at most ``MAX_LINE_BYTES`` long.

    A longer line is yielded cut to the limit plus one byte, so the caller can
    report it; the rest of it is skipped.
    """
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(MAX_LINE_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
        yield line


def _decode(line: bytes, number: int, source: str | None) -> str | RecordError:
    if len(line) > MAX_LINE_BYTES:
        return RecordError(
            f"line is longer than {MAX_LINE_BYTES} bytes; split the record or "
            "check that the file has line breaks",
            source=source,
            line=number,
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        return RecordError(
            f"invalid UTF-8 at byte {error.start}; save the file as UTF-8",
            source=source,
            line=number,
        )
    return text.removeprefix("\ufeff") if number == 1 else text


def parse_jsonl(
    lines: Iterable[bytes], *, source: str | None = None
) -> Iterator[ParsedRow | RecordError]:
    """Parse JSON Lines into raw rows, one object per non-blank line.

    A ``.json`` file holding one array is accepted too and yields its elements,
    each numbered by the file line on which it starts.
    """
    iterator = iter(lines)
    seen_content = False
    number = 0
    for raw in iterator:
        number += 1
        text = _decode(raw, number, source)
        if isinstance(text, RecordError):
            seen_content = True
            yield text
            continue
        stripped = text.strip()
        if not stripped:
            continue
        if not seen_content and stripped.startswith("["):
            remainder = b"".join(iterator)
            yield from _parse_json_array(text.encode() + remainder, number, source)
            return
        seen_content = True
        yield _parse_json_object(stripped, raw, number, source)
    if not seen_content:
        raise InputError(
            "the file is empty; expected one JSON object per line", source=source
        )


def _parse_json_object(
    text: str, raw: bytes, number: int, source: str | None
) -> ParsedRow | RecordError:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        truncated = not raw.endswith(b"\n")
        # The json module ends some messages with "at" because its str() appends
        # the position, so drop that word before adding the column.
        detail = error.msg.removesuffix(" at")
        reason = (
            "the last line is cut short (no line break and incomplete JSON); "
            "the upload or file write may have been interrupted"
            if truncated
            else f"invalid JSON: {detail} at column {error.colno}"
        )
        return RecordError(reason, source=source, line=number)
    if not isinstance(value, dict):
        return RecordError(
            f"expected a JSON object, found {type(value).__name__}",
            source=source,
            line=number,
        )
    return ParsedRow(line=number, data=value)


def _parse_json_array(
    content: bytes, first_line: int, source: str | None
) -> Iterator[ParsedRow | RecordError]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            f"invalid UTF-8 at byte {error.start} of the JSON array; "
            "save the file as UTF-8",
            source=source,
        ) from error
    try:
        # Every element is parsed before the first is yielded, so a syntax error
        # late in the array rejects the whole file, as for a plain json.loads.
        elements = list(_json_array_elements(text))
    except json.JSONDecodeError as error:
        line = first_line + error.lineno - 1
        detail = error.msg.removesuffix(" at")
        raise InputError(
            f"invalid JSON array at line {line}, column {error.colno}: {detail}",
            source=source,
        ) from error
    if not elements:
        raise InputError(
            "the JSON array is empty; expected at least one object", source=source
        )

    line = first_line
    counted_to = 0
    for position, (offset, value) in enumerate(elements, start=1):
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        if isinstance(value, dict):
            yield ParsedRow(line=line, data=value)
        else:
            yield RecordError(
                f"array element {position} is {type(value).__name__}, expected an object",
                source=source,
                line=line,
            )


def _json_array_elements(text: str) -> Iterator[tuple[int, Any]]:
    """Yield the character offset and value of each element of one JSON array.

    Raises
    ------
    json.JSONDecodeError
        If ``text`` is not exactly one JSON array.
    """
    decoder = json.JSONDecoder()
    index = _skip_json_space(text, 0)
    if not text.startswith("[", index):
        raise json.JSONDecodeError("Expecting '['", text, index)
    index = _skip_json_space(text, index + 1)
    if text.startswith("]", index):
        end = index + 1
    else:
        while True:
            value, end = decoder.raw_decode(text, index)
            yield index, value
            index = _skip_json_space(text, end)
            if text.startswith("]", index):
                end = index + 1
                break
            if not text.startswith(",", index):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, index)
            index = _skip_json_space(text, index + 1)
    if _skip_json_space(text, end) != len(text):
        raise json.JSONDecodeError("Extra data", text, end)


def _skip_json_space(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def parse_csv(
    lines: Iterable[bytes],
    *,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    source: str | None = None,
) -> Iterator[ParsedRow | RecordError]:
    """Parse comma-separated rows into raw rows keyed by the header.

    Raises
    ------
    InputError
        If the file is empty, the header is not comma-separated, a required
        column is missing or an unknown column is present.
    """
    iterator = iter(lines)
    header_raw = next(iterator, None)
    if header_raw is None or not header_raw.strip():
        raise InputError(
            "the file is empty; expected a header row of column names", source=source
        )
    header_text = _decode(header_raw, 1, source)
    if isinstance(header_text, RecordError):
        raise InputError(str(header_text), source=source)
    header = [name.strip() for name in next(csv.reader([header_text]))]
    _check_header(header, columns=columns, required=required, source=source)

    number = 1
    for raw in iterator:
        number += 1
        text = _decode(raw, number, source)
        if isinstance(text, RecordError):
            yield text
            continue
        if not text.strip():
            continue
        yield _parse_csv_row(text, raw, header, number, source)


def _check_header(
    header: list[str],
    *,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    source: str | None,
) -> None:
    if len(header) == 1 and any(mark in header[0] for mark in (";", "\t", "|")):
        raise InputError(
            f"line 1: the header '{header[0][:80]}' is not comma-separated; "
            "save the file with ',' as the delimiter",
            source=source,
        )
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(
            f"line 1: missing required column(s) {', '.join(missing)}; "
            f"expected columns: {', '.join(columns)}",
            source=source,
        )
    unknown = [name for name in header if name not in columns]
    if unknown:
        raise InputError(
            f"line 1: unknown column(s) {', '.join(unknown)}; "
            f"allowed columns: {', '.join(columns)}",
            source=source,
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(
            f"line 1: column(s) {', '.join(repeated)} appear more than once",
            source=source,
        )


def _parse_csv_row(
    text: str, raw: bytes, header: list[str], number: int, source: str | None
) -> ParsedRow | RecordError:
    try:
        cells = next(csv.reader([text]))
    except (csv.Error, StopIteration) as error:
        return RecordError(f"malformed CSV row: {error}", source=source, line=number)
    if len(cells) != len(header):
        truncated = not raw.endswith(b"\n") and len(cells) < len(header)
        reason = (
            "the last line is cut short (no line break and too few cells); "
            "the upload or file write may have been interrupted"
            if truncated
            else f"row has {len(cells)} cells but the header has {len(header)}"
        )
        return RecordError(reason, source=source, line=number)
    data = {
        name: cell.strip()
        for name, cell in zip(header, cells, strict=True)
        if cell.strip() != ""
    }
    return ParsedRow(line=number, data=data)


def _split(cell: str) -> list[str]:
    return [item.strip() for item in cell.split(_LIST_SEPARATOR) if item.strip()]


def _parse_bool(value: str, field: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _CellError(field, value, "expected true or false (also yes/no, 1/0)")


class _CellError(Exception):
    def __init__(self, field: str, value: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.message = message


def _parse_occupation_item(item: str, field: str) -> dict[str, Any]:
    name, _, years = item.partition("=")
    name = name.strip()
    claim: dict[str, Any] = {}
    if name.isdigit():
        claim["isco_code"] = name
    elif name.startswith("http"):
        claim["esco_uri"] = name
    else:
        claim["title"] = name
    if years.strip():
        try:
            claim["years_experience"] = float(years)
        except ValueError as error:
            raise _CellError(
                field, item, f"years of experience '{years.strip()}' is not a number"
            ) from error
    return claim


def _parse_language_item(item: str, field: str, *, with_test: bool) -> dict[str, Any]:
    parts = [part.strip() for part in item.split(":")]
    limit = 4 if with_test else 2
    if len(parts) < 2 or len(parts) > limit:
        expected = (
            "language:level[:test[:YYYY-MM-DD]]" if with_test else "language:level"
        )
        raise _CellError(field, item, f"expected '{expected}', for example 'en:B2'")
    language: dict[str, Any] = {"language": parts[0].lower(), "level": parts[1].upper()}
    if with_test and len(parts) >= 3 and parts[2]:
        language["test"] = parts[2]
    if with_test and len(parts) == 4 and parts[3]:
        language["test_date"] = parts[3]
    return language


def _parse_qualification_item(item: str, field: str) -> dict[str, Any]:
    parts = [part.strip() for part in item.split(":")]
    if len(parts) < 3 or len(parts) > 4:
        raise _CellError(
            field,
            item,
            "expected 'level:field:country[:title]', for example '6:nursing:PH'",
        )
    qualification: dict[str, Any] = {
        "level": parts[0],
        "field": parts[1],
        "issuing_country": parts[2].upper(),
    }
    if len(parts) == 4 and parts[3]:
        qualification["title"] = parts[3]
    return qualification


def _expand_registrant_cells(data: dict[str, Any]) -> dict[str, Any]:
    expanded = dict(data)
    if "occupations" in data:
        expanded["occupations"] = [
            _parse_occupation_item(item, "occupations")
            for item in _split(data["occupations"])
        ]
    if "skills" in data:
        expanded["skills"] = _split(data["skills"])
    if "languages" in data:
        expanded["languages"] = [
            _parse_language_item(item, "languages", with_test=True)
            for item in _split(data["languages"])
        ]
    if "qualifications" in data:
        expanded["qualifications"] = [
            _parse_qualification_item(item, "qualifications")
            for item in _split(data["qualifications"])
        ]
    if "consent" in data:
        expanded["consent"] = _parse_bool(data["consent"], "consent")
    return expanded


def _expand_vacancy_cells(data: dict[str, Any]) -> dict[str, Any]:
    expanded = dict(data)
    for name in ("essential_skills", "optional_skills"):
        if name in data:
            expanded[name] = _split(data[name])
    if "language_minimums" in data:
        expanded["language_minimums"] = [
            _parse_language_item(item, "language_minimums", with_test=False)
            for item in _split(data["language_minimums"])
        ]
    if "regulated" in data:
        expanded["regulated"] = _parse_bool(data["regulated"], "regulated")
    return expanded


def _record_id(data: dict[str, Any]) -> str | None:
    for key in ("external_id", "id"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _validation_error(
    error: ValidationError, row: ParsedRow, source: str | None
) -> RecordError:
    """Return one error for the record that names every field that failed.

    The first failed field becomes ``RecordError.field``. The message lists that
    field's problem first, then each further field with its problem.
    """
    problems = [
        _describe_problem(item, row.data) for item in error.errors(include_url=False)
    ]
    field, message = problems[0]
    for other_field, other_message in problems[1:]:
        if other_field:
            message += f"; field '{other_field}': {other_message}"
        else:
            message += f"; {other_message}"
    return RecordError(
        message,
        source=source,
        line=row.line,
        field=field,
        record_id=_record_id(row.data),
    )


def _describe_problem(problem: Any, data: dict[str, Any]) -> tuple[str | None, str]:
    """Return the dotted field path and the message of one pydantic error.

    The models upper-case country and sector codes before checking them, so the
    message quotes the value as the file gave it when the two differ.
    """
    field = ".".join(str(part) for part in problem["loc"]) or None
    message = str(problem["msg"]).removeprefix("Value error, ")
    value = problem.get("input")
    raw_value = _value_at(data, problem["loc"])
    if _is_scalar(raw_value) and _is_scalar(value) and raw_value != value:
        message = message.replace(f"'{value}'", f"'{raw_value}'")
        value = raw_value
    is_scalar = _is_scalar(value)
    if field and is_scalar and str(value) not in message:
        message = f"{message} (value {value!r})"
    return field, message


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list)


def _value_at(data: Any, location: tuple[int | str, ...]) -> Any:
    """Return the raw value at a pydantic error location, or None if absent."""
    value = data
    for part in location:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int):
            if not 0 <= part < len(value):
                return None
            value = value[part]
        else:
            return None
    return value


def validate_rows(
    rows: Iterable[ParsedRow | RecordError],
    model: type[RecordT],
    *,
    source: str | None = None,
    key_field: str | None = None,
) -> Iterator[tuple[int, RecordT] | RecordError]:
    """Validate raw rows into records, reporting repeated keys within the stream.

    Parameters
    ----------
    rows
        Output of :func:`parse_csv` or :func:`parse_jsonl`.
    model
        The record class to validate into.
    source
        File name used in messages.
    key_field
        Field whose value must be unique in the stream (for example
        ``external_id``); a repeat is an error naming the first line.

    Yields
    ------
    tuple of (line, record), or RecordError
    """
    first_line_of_key: dict[str, int] = {}
    for row in rows:
        if isinstance(row, RecordError):
            yield row
            continue
        try:
            record = model.model_validate(row.data)
        except ValidationError as error:
            yield _validation_error(error, row, source)
            continue
        if key_field is not None:
            key = _key_of(record, key_field)
            if key in first_line_of_key:
                yield RecordError(
                    f"duplicate {key_field} '{getattr(record, key_field)}', already on line "
                    f"{first_line_of_key[key]}",
                    source=source,
                    line=row.line,
                    field=key_field,
                    record_id=_record_id(row.data),
                )
                continue
            first_line_of_key[key] = row.line
        yield (row.line, record)


def _key_of(record: Record, key_field: str) -> str:
    if isinstance(record, Registrant):
        return record.key
    return str(getattr(record, key_field))


def _expand(
    rows: Iterable[ParsedRow | RecordError], expander: Any, source: str | None
) -> Iterator[ParsedRow | RecordError]:
    for row in rows:
        if isinstance(row, RecordError):
            yield row
            continue
        try:
            yield ParsedRow(line=row.line, data=expander(row.data))
        except _CellError as error:
            yield RecordError(
                f"{error.message} (value {error.value!r})",
                source=source,
                line=row.line,
                field=error.field,
                record_id=_record_id(row.data),
            )


def iter_registrants(
    lines: Iterable[bytes], *, fmt: str, source: str | None = None
) -> Iterator[tuple[int, Registrant] | RecordError]:
    """Parse and validate registrants from byte lines in CSV or JSON Lines."""
    rows = _raw_rows(
        lines,
        fmt=fmt,
        columns=REGISTRANT_COLUMNS,
        required=REGISTRANT_REQUIRED,
        source=source,
    )
    if fmt == "csv":
        rows = _expand(rows, _expand_registrant_cells, source)
    return validate_rows(rows, Registrant, source=source, key_field="external_id")


def iter_vacancies(
    lines: Iterable[bytes], *, fmt: str, source: str | None = None
) -> Iterator[tuple[int, Vacancy] | RecordError]:
    """Parse and validate vacancies from byte lines in CSV or JSON Lines."""
    rows = _raw_rows(
        lines,
        fmt=fmt,
        columns=VACANCY_COLUMNS,
        required=VACANCY_REQUIRED,
        source=source,
    )
    if fmt == "csv":
        rows = _expand(rows, _expand_vacancy_cells, source)
    return validate_rows(rows, Vacancy, source=source, key_field="id")


def iter_agreements(
    lines: Iterable[bytes], *, fmt: str, source: str | None = None
) -> Iterator[tuple[int, BilateralAgreement] | RecordError]:
    """Parse and validate bilateral agreements from JSON Lines or a JSON array."""
    if fmt != "jsonl":
        raise InputError(
            "agreements nest quota cells and recognition rules; "
            "give them as JSON Lines (.jsonl) or a JSON array (.json), not CSV",
            source=source,
        )
    rows = parse_jsonl(lines, source=source)
    return validate_rows(rows, BilateralAgreement, source=source, key_field="id")


def _raw_rows(
    lines: Iterable[bytes],
    *,
    fmt: str,
    columns: tuple[str, ...],
    required: tuple[str, ...],
    source: str | None,
) -> Iterator[ParsedRow | RecordError]:
    if fmt == "csv":
        return parse_csv(lines, columns=columns, required=required, source=source)
    if fmt == "jsonl":
        return parse_jsonl(lines, source=source)
    raise ValueError(
        f"unknown input format '{fmt}'; expected one of {', '.join(FORMATS)}"
    )


def read_all(
    path: Path,
    reader: Any,
    *,
    fmt: str | None = None,
    max_errors: int = 20,
) -> list[Any]:
    """Read a whole file, raising one error that lists every bad record.

    Parameters
    ----------
    path
        File to read.
    reader
        :func:`iter_registrants`, :func:`iter_vacancies` or :func:`iter_agreements`.
    fmt
        ``"csv"`` or ``"jsonl"``; taken from the extension when omitted.
    max_errors
        How many record errors the raised message lists before summarising.

    Returns
    -------
    list
        The validated records in file order.

    Raises
    ------
    InputError
        If the file is unreadable or malformed as a whole, or if any record is
        invalid; ``errors`` on the exception holds every :class:`RecordError`.
    """
    source = path.name
    chosen = fmt or detect_format(path.name)
    records: list[Any] = []
    errors: list[RecordError] = []
    try:
        with path.open("rb") as stream:
            for item in reader(iter_byte_lines(stream), fmt=chosen, source=source):
                if isinstance(item, RecordError):
                    errors.append(item)
                else:
                    records.append(item[1])
    except OSError as error:
        raise InputError(
            f"cannot read the file: {error.strerror}", source=str(path)
        ) from error
    if errors:
        raise InvalidRecordsError(errors, max_listed=max_errors)
    return records
