"""Bulk upload: reports, malformed files, interrupted uploads and re-sends."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio

import pytest
from api_testing import (
    AGENCY,
    OTHER_AGENCY,
    Market,
    issue_key,
    make_settings,
    registrant_row,
    registrants_csv,
    upload,
)
from fastapi.testclient import TestClient

from api.errors import PayloadTooLargeError
from api.main import create_app
from api.services import ingest
from matching.rounds import MatchingEngine


# Maximum wait for a paused upload. The test releases it within a second.
UPLOAD_PAUSE_TIMEOUT_SECONDS = 30.0


def _good_rows(
    skills: list[str], count: int = 3, start: int = 1
) -> list[dict[str, Any]]:
    return [registrant_row(number, skills) for number in range(start, start + count)]


def _status(client: TestClient, headers: dict[str, str], external_id: str) -> int:
    return client.get(f"/v1/registrants/{external_id}", headers=headers).status_code


def test_upload_report_counts_new_rows(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    rows = _good_rows(carpenter_skills, count=5, start=101)

    response = upload(client, market.agency, registrants_csv(rows))

    assert response.status_code == 200
    report = response.json()
    assert report["accepted"] == 5
    assert report["updated"] == 0
    assert report["unchanged"] == 0
    assert report["rejected_count"] == 0
    assert report["rows_read"] == 5
    assert report["batches"] == 2


def test_upload_twice_reports_unchanged(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    body = registrants_csv(_good_rows(carpenter_skills, count=12))

    response = upload(client, market.agency, body)

    assert response.status_code == 200
    report = response.json()
    assert report["unchanged"] == 12
    assert report["accepted"] == 0
    assert report["updated"] == 0
    assert report["batches"] == 0


def test_upload_changed_row_is_updated(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    rows = _good_rows(carpenter_skills, count=2)
    rows[1]["available_from"] = "2026-07-15"

    response = upload(client, market.agency, registrants_csv(rows))

    assert response.status_code == 200
    assert response.json()["updated"] == 1
    assert response.json()["unchanged"] == 1
    stored = client.get("/v1/registrants/R0002", headers=market.agency).json()
    assert stored["profile"]["available_from"] == "2026-07-15"


def test_upload_jsonl_body(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    records = [
        {
            "agency_id": AGENCY,
            "external_id": f"J{number}",
            "origin": "PH",
            "birth_year": 1990,
            "occupations": [{"isco_code": "7115", "years_experience": 3}],
            "skills": carpenter_skills[:5],
            "available_from": "2026-06-01",
            "consent": True,
        }
        for number in range(3)
    ]
    body = "".join(json.dumps(record) + "\n" for record in records)

    response = upload(client, market.agency, body, media_type="application/x-ndjson")

    assert response.status_code == 200
    assert response.json()["accepted"] == 3


def test_upload_never_returns_names(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    row = registrant_row(
        200,
        carpenter_skills,
        full_name="Maria Santos",
        birth_date="1990-04-02",
        birth_year=1990,
    )
    upload(client, market.agency, registrants_csv([row]))

    response = client.get("/v1/registrants/R0200", headers=market.agency)

    assert response.status_code == 200
    assert "Maria" not in response.text
    assert "1990-04-02" not in response.text


def test_upload_flags_duplicates_across_agencies(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    mine = registrant_row(
        300,
        carpenter_skills,
        full_name="Maria Cruz Santos",
        birth_date="1991-05-06",
        birth_year=1991,
    )
    theirs = registrant_row(
        7,
        carpenter_skills,
        agency_id=OTHER_AGENCY,
        full_name="Santos, Maria Cruz",
        birth_date="1991-05-06",
        birth_year=1991,
    )
    upload(client, market.agency, registrants_csv([mine]))

    response = upload(client, market.other_agency, registrants_csv([theirs]))

    assert response.status_code == 200
    duplicates = response.json()["duplicates"]
    assert len(duplicates) == 1
    assert duplicates[0]["line"] == 2
    assert duplicates[0]["other_agency_id"] == AGENCY
    assert duplicates[0]["similarity"] >= 90
    assert "Maria" not in response.text


def _replace_line(body: str, line: int, text: str) -> bytes:
    lines = body.splitlines(keepends=True)
    lines[line - 1] = text
    return "".join(lines).encode()


def _csv_with_bad_row(skills: list[str], bad: dict[str, Any]) -> bytes:
    rows = _good_rows(skills, count=3, start=401)
    rows.insert(1, {**registrant_row(499, skills), **bad})
    return registrants_csv(rows).encode()


def _bad_encoding(skills: list[str]) -> bytes:
    lines = (
        registrants_csv(_good_rows(skills, count=4, start=401))
        .encode()
        .splitlines(True)
    )
    # 0xE9 is "é" in Latin-1 and an invalid start byte in UTF-8.
    lines[2] = lines[2].replace(b"R0402", b"R04\xe902")
    return b"".join(lines)


def _oversized_line(skills: list[str]) -> bytes:
    huge = "; ".join(["pour concrete"] * 30_000)
    return _csv_with_bad_row(skills, {"external_id": "R0499", "skills": huge})


def _duplicate_id(skills: list[str]) -> bytes:
    return _csv_with_bad_row(skills, {"external_id": "R0401"})


def _truncated_last_line(skills: list[str]) -> bytes:
    body = registrants_csv(_good_rows(skills, count=4, start=401))
    return body.encode()[: body.rindex("\n", 0, len(body) - 1) + 40]


def _extra_cells(skills: list[str]) -> bytes:
    body = registrants_csv(_good_rows(skills, count=4, start=401))
    lines = body.splitlines(keepends=True)
    return _replace_line(body, 3, lines[2].rstrip("\n") + ",surplus\n")


# (case, body builder, rejected line, rejected field, words of the reason)
MALFORMED_ROWS = [
    ("bad_encoding", _bad_encoding, 3, None, "UTF-8"),
    (
        "unknown_country",
        lambda s: _csv_with_bad_row(s, {"origin": "ZZ"}),
        3,
        "origin",
        "ZZ",
    ),
    (
        "cefr_d1",
        lambda s: _csv_with_bad_row(s, {"languages": "en:D1"}),
        3,
        "languages.0.level",
        "D1",
    ),
    (
        "negative_experience",
        lambda s: _csv_with_bad_row(s, {"occupations": "7115=-2"}),
        3,
        "occupations.0.years_experience",
        "greater than or equal to 0",
    ),
    ("duplicate_external_id", _duplicate_id, 3, "external_id", "already on line 2"),
    ("oversized_line", _oversized_line, 3, None, "longer than"),
    ("truncated_last_line", _truncated_last_line, 5, None, "cut short"),
    ("extra_cells", _extra_cells, 3, None, "cells"),
    (
        "other_agency",
        lambda s: _csv_with_bad_row(s, {"agency_id": "AG-XX-9"}),
        3,
        "agency_id",
        "AG-XX-9",
    ),
    (
        "bad_consent",
        lambda s: _csv_with_bad_row(s, {"consent": "maybe"}),
        3,
        "consent",
        "true or false",
    ),
    (
        "birth_year_too_late",
        lambda s: _csv_with_bad_row(s, {"birth_year": "2024"}),
        3,
        None,
        "birth_year 2024",
    ),
]


@pytest.mark.parametrize(
    ("build", "line", "field", "words"),
    [case[1:] for case in MALFORMED_ROWS],
    ids=[case[0] for case in MALFORMED_ROWS],
)
def test_upload_malformed_row_rejected_alone(
    client: TestClient,
    carpenter_skills: list[str],
    build: Any,
    line: int,
    field: str | None,
    words: str,
) -> None:
    headers = issue_key(client, "agency", AGENCY)

    response = upload(client, headers, build(carpenter_skills))

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["rejected_count"] == 1, report["rejected"]
    assert report["rejected"][0]["line"] == line
    assert report["rejected"][0]["field"] == field
    assert words in report["rejected"][0]["reason"]
    assert report["accepted"] == 3
    assert _status(client, headers, "R0401") == 200


def test_upload_jsonl_missing_field_rejected(
    client: TestClient, carpenter_skills: list[str]
) -> None:
    headers = issue_key(client, "agency", AGENCY)
    good = {
        "agency_id": AGENCY,
        "origin": "PH",
        "birth_year": 1990,
        "skills": carpenter_skills[:4],
        "available_from": "2026-06-01",
        "consent": True,
    }
    lines = [
        json.dumps({**good, "external_id": "J1"}),
        json.dumps(
            {
                key: value
                for key, value in {**good, "external_id": "J2"}.items()
                if key != "origin"
            }
        ),
        "{not json",
        json.dumps({**good, "external_id": "J3"}),
    ]

    response = upload(
        client, headers, "\n".join(lines) + "\n", media_type="application/x-ndjson"
    )

    assert response.status_code == 200
    rejected = response.json()["rejected"]
    assert [item["line"] for item in rejected] == [2, 3]
    assert rejected[0]["field"] == "origin"
    assert "invalid JSON" in rejected[1]["reason"]
    assert response.json()["accepted"] == 2


# (case, body, words of the message)
MALFORMED_FILES = [
    (
        "wrong_delimiter",
        "agency_id;external_id;origin\nAG-PH-1;R1;PH\n",
        "comma-separated",
    ),
    (
        "missing_column",
        "agency_id,external_id,birth_year,available_from,consent\nAG-PH-1,R1,1990,2026-06-01,true\n",
        "missing required column(s) origin",
    ),
    ("empty_file", "", "empty"),
    (
        "unknown_column",
        "agency_id,external_id,origin,birth_year,available_from,consent,shoe_size\n",
        "shoe_size",
    ),
]


@pytest.mark.parametrize(
    ("body", "words"),
    [case[1:] for case in MALFORMED_FILES],
    ids=[case[0] for case in MALFORMED_FILES],
)
def test_upload_malformed_file_stores_nothing(
    client: TestClient, body: str, words: str
) -> None:
    headers = issue_key(client, "agency", AGENCY)

    response = upload(client, headers, body)

    assert response.status_code == 422
    assert words in response.json()["detail"]
    assert _status(client, headers, "R1") == 404


def test_upload_unsupported_media_type(client: TestClient, market: Market) -> None:
    response = upload(client, market.agency, "a,b\n", media_type="application/pdf")

    assert response.status_code == 415
    assert "application/pdf" in response.json()["detail"]


def test_upload_too_large_rejected(
    database_url: str, engine: MatchingEngine, carpenter_skills: list[str]
) -> None:
    app = create_app(make_settings(database_url, max_upload_bytes=600), engine=engine)
    with TestClient(app) as small:
        headers = issue_key(small, "agency", AGENCY)

        response = upload(
            small, headers, registrants_csv(_good_rows(carpenter_skills, count=8))
        )

    assert response.status_code == 413
    assert "max_upload_bytes (600 bytes)" in response.json()["detail"]


async def _send_then_disconnect(
    app: Any, headers: dict[str, str], chunks: list[bytes]
) -> int:
    """Drive the app over ASGI: send body chunks, then a client disconnect."""
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/registrants:bulk",
        "raw_path": b"/v1/registrants:bulk",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"text/csv")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    return next(
        message["status"]
        for message in sent
        if message["type"] == "http.response.start"
    )


async def _send_paused_upload(
    app: Any,
    headers: dict[str, str],
    chunks: tuple[list[bytes], list[bytes]],
    started: threading.Event,
    release: threading.Event,
) -> int:
    """Drive an upload over ASGI that pauses between two parts of its body.

    ``started`` is set when the app requests the body past the first part, so
    the upload is running. The rest is sent once ``release`` is set.
    """
    first, rest = chunks
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in first
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        started.set()
        await anyio.to_thread.run_sync(release.wait, UPLOAD_PAUSE_TIMEOUT_SECONDS)
        return {"type": "http.request", "body": b"".join(rest), "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_upload_scope(headers), receive, send)
    return next(
        message["status"]
        for message in sent
        if message["type"] == "http.response.start"
    )


def _upload_scope(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/registrants:bulk",
        "raw_path": b"/v1/registrants:bulk",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"text/csv")]
        + [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": ("127.0.0.1", 50001),
        "server": ("testserver", 80),
    }


def test_concurrent_uploads_same_agency_conflict(
    client: TestClient, carpenter_skills: list[str]
) -> None:
    headers = issue_key(client, "agency", AGENCY)
    other_headers = issue_key(client, "agency", OTHER_AGENCY)
    body = registrants_csv(_good_rows(carpenter_skills, count=6))
    lines = [line.encode() for line in body.splitlines(keepends=True)]
    other_body = registrants_csv(
        [
            registrant_row(number, carpenter_skills, agency_id=OTHER_AGENCY)
            for number in range(1, 4)
        ]
    )
    started, release = threading.Event(), threading.Event()
    assert client.portal is not None

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(
            client.portal.call,
            _send_paused_upload,
            client.app,
            headers,
            (lines[:3], lines[3:]),
            started,
            release,
        )
        assert started.wait(UPLOAD_PAUSE_TIMEOUT_SECONDS)
        second = upload(client, headers, body)
        other_agency = upload(client, other_headers, other_body)
        release.set()
        first_status = first.result(timeout=UPLOAD_PAUSE_TIMEOUT_SECONDS)
    again = upload(client, headers, body)

    assert second.status_code == 409, second.text
    assert second.json()["code"] == "conflict"
    assert second.json()["detail"] == (
        f"an upload for agency '{AGENCY}' is already in progress; send this file "
        "again when it has finished"
    )
    assert other_agency.status_code == 200, other_agency.text
    assert first_status == 200
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == 6


def test_upload_client_disconnect_then_resent(
    client: TestClient, carpenter_skills: list[str]
) -> None:
    headers = issue_key(client, "agency", AGENCY)
    body = registrants_csv(_good_rows(carpenter_skills, count=12))
    lines = [line.encode() for line in body.splitlines(keepends=True)]
    # The header and nine rows arrive, then the client goes away: two batches
    # of four are complete, the ninth row is in an unfinished batch.
    assert client.portal is not None

    status = client.portal.call(_send_then_disconnect, client.app, headers, lines[:10])

    assert status == 400
    assert _status(client, headers, "R0008") == 200
    assert _status(client, headers, "R0009") == 404
    response = upload(client, headers, body)
    assert response.status_code == 200
    assert response.json()["unchanged"] == 8
    assert response.json()["accepted"] == 4


def test_upload_fault_mid_batch_writes_nothing(
    client: TestClient, carpenter_skills: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = issue_key(client, "agency", AGENCY)
    body = registrants_csv(_good_rows(carpenter_skills, count=12))
    original = ingest.write_rows
    calls = {"count": 0}

    def write_then_fail(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        calls["count"] += 1
        if calls["count"] == 2:
            raise RuntimeError("injected fault after the rows of batch 2 were written")

    monkeypatch.setattr(ingest, "write_rows", write_then_fail)
    with pytest.raises(RuntimeError, match="injected fault"):
        upload(client, headers, body)
    monkeypatch.setattr(ingest, "write_rows", original)

    assert _status(client, headers, "R0004") == 200
    assert _status(client, headers, "R0005") == 404
    assert _status(client, headers, "R0008") == 404
    response = upload(client, headers, body)
    assert response.json()["unchanged"] == 4
    assert response.json()["accepted"] == 8


def test_chunk_reader_splits_lines_across_chunks() -> None:
    reader = ingest.ChunkReader([b"ab", b"c\nde", b"f\n", b"gh"], max_bytes=100)

    lines = [
        reader.readline(4),
        reader.readline(4),
        reader.readline(4),
        reader.readline(4),
    ]

    assert lines == [b"abc\n", b"def\n", b"gh", b""]
    assert reader.bytes_read == 10


def test_chunk_reader_cuts_long_line_at_limit() -> None:
    reader = ingest.ChunkReader([b"abcdefgh\n"], max_bytes=100)

    first = reader.readline(3)
    rest = reader.readline(100)

    assert first == b"abc"
    assert rest == b"defgh\n"


def test_chunk_reader_stops_past_max_bytes() -> None:
    reader = ingest.ChunkReader([b"abc\n", b"defgh\n"], max_bytes=6)

    first = reader.readline(100)

    assert first == b"abc\n"
    with pytest.raises(PayloadTooLargeError):
        reader.readline(100)
