"""Matching rounds run in the background and leave one shortlist per vacancy."""

from __future__ import annotations

import time
from typing import Any

from api_testing import Market, admin_headers, vacancy_body
from fastapi.testclient import TestClient

ROUND_TIMEOUT_SECONDS = 60.0


def _wait_for_round(client: TestClient, round_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + ROUND_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = client.get(f"/v1/rounds/{round_id}", headers=admin_headers()).json()
        if state["status"] in {"done", "failed"}:
            return dict(state)
        time.sleep(0.1)
    raise AssertionError(
        f"round {round_id} did not finish in {ROUND_TIMEOUT_SECONDS} s"
    )


def test_round_shortlists_every_open_vacancy(
    client: TestClient, market: Market
) -> None:
    for number in range(1, 4):
        client.post(
            "/v1/vacancies", json=vacancy_body(f"V-{number}"), headers=market.employer
        )
    client.post(
        "/v1/vacancies", json=vacancy_body("W-1"), headers=market.other_employer
    )

    started = client.post(
        "/v1/rounds", json={"method": "exact"}, headers=admin_headers()
    )
    state = _wait_for_round(client, started.json()["id"])

    assert started.status_code == 202
    assert started.json()["status"] in {"queued", "running", "done"}
    assert state["status"] == "done", state["error"]
    assert state["progress"] == 1.0
    assert state["summary"]["vacancies"] == 4
    assert state["summary"]["shortlisted"] == 12
    vacancy = client.get("/v1/vacancies/V-1", headers=market.employer).json()
    shortlist = client.get(
        f"/v1/shortlists/{vacancy['open_shortlist_id']}", headers=market.employer
    ).json()
    assert shortlist["round_id"] == state["id"]
    assert len(shortlist["candidates"]) == 3
    assert shortlist["candidates"][0]["evidence"]["skills"]


def test_round_without_vacancies_is_done(client: TestClient, market: Market) -> None:
    started = client.post("/v1/rounds", headers=admin_headers())

    state = _wait_for_round(client, started.json()["id"])

    assert state["status"] == "done"
    assert state["summary"]["shortlisted"] == 0


def test_round_unknown_id_not_found(client: TestClient) -> None:
    response = client.get("/v1/rounds/rd_missing", headers=admin_headers())

    assert response.status_code == 404
    assert response.json()["detail"] == "round 'rd_missing' not found"
