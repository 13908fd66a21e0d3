"""Shortlists: build, read, evidence without names, tenancy and erasure."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from api_testing import (
    CELL,
    Market,
    admin_headers,
    registrant_row,
    registrants_csv,
    upload,
    vacancy_body,
)
from fastapi.testclient import TestClient

# Maximum wait for a request that must not block. It normally takes well
# under a second, so only a request stuck on a lock reaches it.
UNBLOCKED_TIMEOUT_SECONDS = 20.0


def _post_vacancy(
    client: TestClient, market: Market, vacancy_id: str = "V-1", openings: int = 1
) -> None:
    response = client.post(
        "/v1/vacancies",
        json=vacancy_body(vacancy_id, openings=openings),
        headers=market.employer,
    )
    assert response.status_code == 201, response.text


def test_shortlist_route_builds_candidates(client: TestClient, market: Market) -> None:
    _post_vacancy(client, market, openings=2)

    response = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer)

    assert response.status_code == 201, response.text
    shortlist = response.json()
    assert len(shortlist["candidates"]) == 6
    assert shortlist["status"] == "open"
    first = shortlist["candidates"][0]
    assert first["candidate_id"].startswith("cand_")
    assert first["quota_cells"] == [CELL]
    assert "semantic" in first["evidence"]["components"]
    assert first["evidence"]["skills"]
    scores = [candidate["score"] for candidate in shortlist["candidates"]]
    assert scores == sorted(scores, reverse=True)


def test_shortlist_evidence_has_no_personal_data(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    named = registrant_row(
        50,
        carpenter_skills,
        full_name="Josefina Dela Cruz",
        birth_date="1985-02-03",
        birth_year=1985,
    )
    upload(client, market.agency, registrants_csv([named]))
    _post_vacancy(client, market, openings=5)

    response = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer)

    assert response.status_code == 201
    assert "Josefina" not in response.text
    assert "1985-02-03" not in response.text
    assert "R00" not in response.text
    assert "AG-PH" not in response.text


def test_erasure_removes_from_open_shortlists(
    client: TestClient, market: Market
) -> None:
    _post_vacancy(client, market, openings=4)
    before = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()

    erased = client.delete("/v1/registrants/R0001", headers=market.agency)

    after = client.get(f"/v1/shortlists/{before['id']}", headers=market.employer).json()
    assert len(before["candidates"]) == 12
    assert erased.status_code == 204
    assert len(after["candidates"]) == 11
    assert client.get("/v1/registrants/R0001", headers=market.agency).status_code == 404
    rebuilt = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()
    assert len(rebuilt["candidates"]) == 11


def test_guaranteed_mode_counts_other_shortlists(
    client: TestClient, market: Market
) -> None:
    patched = client.patch(
        f"/v1/quota-cells/{CELL}", json={"cap": 5}, headers=admin_headers()
    )
    _post_vacancy(client, market, "V-1", openings=1)
    _post_vacancy(client, market, "V-2", openings=1)

    first = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()
    second = client.post("/v1/vacancies/V-2/shortlist", headers=market.employer).json()

    assert patched.status_code == 200
    assert len(first["candidates"]) == 3
    assert len(second["candidates"]) == 2
    assert second["unfilled"]["missing"] == 1
    assert second["unfilled"]["reason"]["codes"] == [f"quota_cell:{CELL}"]
    cell = client.get(f"/v1/quota-cells/{CELL}", headers=admin_headers()).json()
    assert cell["on_open_shortlists"] == 5


def test_registrant_cap_counts_open_shortlists(
    client: TestClient, market: Market
) -> None:
    for number in range(1, 4):
        _post_vacancy(client, market, f"V-{number}", openings=4)

    sizes = [
        len(
            client.post(
                f"/v1/vacancies/V-{number}/shortlist", headers=market.employer
            ).json()["candidates"]
        )
        for number in range(1, 4)
    ]

    # Twelve registrants, each on at most two open shortlists of 12 places.
    assert sizes == [12, 12, 0]


def test_rebuilt_shortlist_supersedes_old(client: TestClient, market: Market) -> None:
    _post_vacancy(client, market)
    old = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()

    new = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()

    vacancy = client.get("/v1/vacancies/V-1", headers=market.employer).json()
    assert (
        client.get(f"/v1/shortlists/{old['id']}", headers=market.employer).json()[
            "status"
        ]
        == "superseded"
    )
    assert vacancy["open_shortlist_id"] == new["id"]


def test_shortlist_unknown_vacancy(client: TestClient, market: Market) -> None:
    response = client.post("/v1/vacancies/V-404/shortlist", headers=market.employer)

    assert response.status_code == 404
    assert response.json()["detail"] == "vacancy 'V-404' not found"


def test_vacancy_invalid_body_rejected(client: TestClient, market: Market) -> None:
    body = {**vacancy_body("V-1"), "openings": 0}

    response = client.post("/v1/vacancies", json=body, headers=market.employer)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


def test_vacancy_repeated_id_conflicts(client: TestClient, market: Market) -> None:
    _post_vacancy(client, market)

    response = client.post(
        "/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "vacancy 'V-1' already exists"


def test_shortlist_not_blocked_by_upload_normalisation(
    client: TestClient,
    market: Market,
    carpenter_skills: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _post_vacancy(client, market)
    first = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer)
    builder = client.app.state.context.engine.builder  # type: ignore[attr-defined]
    resolve = builder.resolve_registrants
    entered, release = threading.Event(), threading.Event()

    def blocked_resolve(*args: Any, **kwargs: Any) -> Any:
        # Injected: the upload's normalisation runs, holding the builder lock,
        # until the test releases it.
        entered.set()
        release.wait(UNBLOCKED_TIMEOUT_SECONDS * 2)
        return resolve(*args, **kwargs)

    monkeypatch.setattr(builder, "resolve_registrants", blocked_resolve)
    rows = registrants_csv([registrant_row(60, carpenter_skills)])
    with ThreadPoolExecutor(max_workers=2) as pool:
        uploaded = pool.submit(upload, client, market.agency, rows)
        assert entered.wait(UNBLOCKED_TIMEOUT_SECONDS)
        again = pool.submit(
            client.post, "/v1/vacancies/V-1/shortlist", headers=market.employer
        )
        try:
            repeated = again.result(timeout=UNBLOCKED_TIMEOUT_SECONDS)
        finally:
            release.set()
        upload_response = uploaded.result(timeout=UNBLOCKED_TIMEOUT_SECONDS)

    assert first.status_code == 201, first.text
    assert repeated.status_code == 201, repeated.text
    assert upload_response.status_code == 200, upload_response.text
    assert upload_response.json()["accepted"] == 1
