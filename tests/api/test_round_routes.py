"""Matching rounds run in the background and leave one shortlist per vacancy."""

from __future__ import annotations

import time
from typing import Any

import pytest
from api_testing import CELL, EMPLOYER, Market, admin_headers, vacancy_body
from fastapi.testclient import TestClient

from api.services import rounds as rounds_service
from api.services.selections import record_selection
from matching.problem import ShortlistProblem, ShortlistSolution

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


def test_round_save_counts_selections_meanwhile(
    client: TestClient, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = 6
    client.patch(f"/v1/quota-cells/{CELL}", json={"cap": cap}, headers=admin_headers())
    client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=2), headers=market.employer
    )
    client.post("/v1/vacancies", json=vacancy_body("V-2"), headers=market.employer)
    earlier = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()
    chosen = earlier["candidates"][0]["candidate_id"]
    context = client.app.state.context  # type: ignore[attr-defined]
    solve = rounds_service.solve_shortlists

    def solve_then_select(
        problem: ShortlistProblem, **options: Any
    ) -> ShortlistSolution:
        solution = solve(problem, **options)
        # Injected: an employer's selection commits while the round solves.
        record_selection(
            context,
            shortlist_id=earlier["id"],
            employer_id=EMPLOYER,
            candidate_ids=[chosen],
            key_id="injected-selection",
        )
        return solution

    monkeypatch.setattr(rounds_service, "solve_shortlists", solve_then_select)
    started = client.post(
        "/v1/rounds", json={"method": "exact"}, headers=admin_headers()
    )
    state = _wait_for_round(client, started.json()["id"])

    assert len(earlier["candidates"]) == cap
    assert state["status"] == "done", state["error"]
    cell = client.get(f"/v1/quota-cells/{CELL}", headers=admin_headers()).json()
    assert cell["used"] == 1
    assert cell["used"] + cell["on_open_shortlists"] <= cap
    vacancy = client.get("/v1/vacancies/V-1", headers=market.employer).json()
    shortlist = client.get(
        f"/v1/shortlists/{vacancy['open_shortlist_id']}", headers=market.employer
    ).json()
    # One of two openings is filled, so three places remain.
    assert len(shortlist["candidates"]) <= 3
    assert chosen not in [item["candidate_id"] for item in shortlist["candidates"]]
    assert state["summary"]["shortlisted"] == cell["on_open_shortlists"]
