"""Selections: quota consumed atomically, also under 50 concurrent requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from api_testing import (
    AGENCY,
    CELL,
    EMPLOYER,
    Market,
    admin_headers,
    agreement_body,
    issue_key,
    load_market,
    make_settings,
    registrant_row,
    registrants_csv,
    upload,
    vacancy_body,
)
from fastapi.testclient import TestClient

from api.main import create_app
from matching.rounds import MatchingEngine

CONCURRENT_CLIENTS = 50
CONCURRENCY_CAP = 10


def _shortlist(
    client: TestClient, market: Market, vacancy_id: str = "V-1", **body: Any
) -> dict[str, Any]:
    response = client.post(
        f"/v1/vacancies/{vacancy_id}/shortlist",
        json=body or None,
        headers=market.employer,
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def _cell(client: TestClient) -> dict[str, Any]:
    return dict(client.get(f"/v1/quota-cells/{CELL}", headers=admin_headers()).json())


def test_selection_consumes_quota(client: TestClient, market: Market) -> None:
    client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=2), headers=market.employer
    )
    shortlist = _shortlist(client, market)
    chosen = [candidate["candidate_id"] for candidate in shortlist["candidates"][:2]]

    response = client.post(
        f"/v1/shortlists/{shortlist['id']}/selections",
        json={"candidate_ids": chosen},
        headers=market.employer,
    )

    assert response.status_code == 200, response.text
    assert response.json()["placed"] == chosen
    assert response.json()["quota_cells"] == [{"id": CELL, "cap": 100, "used": 2}]
    assert _cell(client)["used"] == 2
    vacancy = client.get("/v1/vacancies/V-1", headers=market.employer).json()
    assert vacancy["openings_left"] == 0
    stored = client.get(
        f"/v1/shortlists/{shortlist['id']}", headers=market.employer
    ).json()
    assert [candidate["selected"] for candidate in stored["candidates"][:2]] == [
        True,
        True,
    ]


def test_selection_past_cap_changes_nothing(
    database_url: str, engine: MatchingEngine, carpenter_skills: list[str]
) -> None:
    app = create_app(make_settings(database_url), engine=engine)
    with TestClient(app) as client:
        agency = issue_key(client, "agency", AGENCY)
        employer = issue_key(client, "employer", EMPLOYER)
        client.post(
            "/v1/agreements",
            json=agreement_body(cap=100, used=98),
            headers=admin_headers(),
        )
        rows = [registrant_row(number, carpenter_skills) for number in range(1, 9)]
        upload(client, agency, registrants_csv(rows))
        client.post(
            "/v1/vacancies", json=vacancy_body("V-1", openings=3), headers=employer
        )
        shortlist = client.post(
            "/v1/vacancies/V-1/shortlist",
            json={"quota_mode": "proportional"},
            headers=employer,
        ).json()
        chosen = [
            candidate["candidate_id"] for candidate in shortlist["candidates"][:3]
        ]

        response = client.post(
            f"/v1/shortlists/{shortlist['id']}/selections",
            json={"candidate_ids": chosen},
            headers=employer,
        )

        assert len(shortlist["candidates"]) == 6
        assert response.status_code == 409
        assert response.json()["code"] == "quota_exceeded"
        assert f"quota cell '{CELL}'" in response.json()["detail"]
        assert _cell(client)["used"] == 98
        vacancy = client.get("/v1/vacancies/V-1", headers=employer).json()
        assert vacancy["placements"] == 0
        stored = client.get(
            f"/v1/shortlists/{shortlist['id']}", headers=employer
        ).json()
        assert not any(candidate["selected"] for candidate in stored["candidates"])


def test_selection_of_placed_candidate_conflicts(
    client: TestClient, market: Market
) -> None:
    client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=2), headers=market.employer
    )
    shortlist = _shortlist(client, market)
    chosen = shortlist["candidates"][0]["candidate_id"]
    url = f"/v1/shortlists/{shortlist['id']}/selections"
    client.post(url, json={"candidate_ids": [chosen]}, headers=market.employer)

    response = client.post(
        url, json={"candidate_ids": [chosen]}, headers=market.employer
    )

    assert response.status_code == 409
    assert response.json()["code"] == "already_placed"
    assert chosen in response.json()["detail"]
    assert _cell(client)["used"] == 1


def test_selection_beyond_openings_conflicts(
    client: TestClient, market: Market
) -> None:
    client.post(
        "/v1/vacancies", json=vacancy_body("V-1", openings=1), headers=market.employer
    )
    shortlist = _shortlist(client, market)
    chosen = [candidate["candidate_id"] for candidate in shortlist["candidates"][:2]]

    response = client.post(
        f"/v1/shortlists/{shortlist['id']}/selections",
        json={"candidate_ids": chosen},
        headers=market.employer,
    )

    assert response.status_code == 409
    assert "1 of its 1 openings left" in response.json()["detail"]
    assert _cell(client)["used"] == 0


def test_selection_unknown_candidate_not_found(
    client: TestClient, market: Market
) -> None:
    client.post("/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer)
    shortlist = _shortlist(client, market)

    response = client.post(
        f"/v1/shortlists/{shortlist['id']}/selections",
        json={"candidate_ids": ["cand_00000000000000000000"]},
        headers=market.employer,
    )

    assert response.status_code == 404
    assert (
        response.json()["detail"] == "candidate 'cand_00000000000000000000' not found"
    )


def test_selection_from_superseded_shortlist_conflicts(
    client: TestClient, market: Market
) -> None:
    client.post("/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer)
    old = _shortlist(client, market)
    _shortlist(client, market)

    response = client.post(
        f"/v1/shortlists/{old['id']}/selections",
        json={"candidate_ids": [old["candidates"][0]["candidate_id"]]},
        headers=market.employer,
    )

    assert response.status_code == 409
    assert "is superseded" in response.json()["detail"]


def test_concurrent_selections_respect_cap(
    database_url: str, engine: MatchingEngine, carpenter_skills: list[str]
) -> None:
    # One candidate per opening and one shortlist per registrant: five vacancies
    # of 12 openings take the 60 registrants, and no vacancy fills up before
    # the quota cell does.
    settings = make_settings(
        database_url,
        shortlist_ratio=1,
        max_shortlists_per_registrant=1,
        ingest_batch_rows=100,
    )
    with TestClient(create_app(settings, engine=engine)) as client:
        market = load_market(client, carpenter_skills, registrants=60, cap=100)
        candidates: list[tuple[str, str]] = []
        for number in range(5):
            vacancy_id = f"V-{number}"
            client.post(
                "/v1/vacancies",
                json=vacancy_body(vacancy_id, openings=12),
                headers=market.employer,
            )
            shortlist = _shortlist(client, market, vacancy_id)
            candidates += [
                (shortlist["id"], item["candidate_id"])
                for item in shortlist["candidates"][:10]
            ]
        lowered = client.patch(
            f"/v1/quota-cells/{CELL}",
            json={"cap": CONCURRENCY_CAP},
            headers=admin_headers(),
        )
        barrier = threading.Barrier(CONCURRENT_CLIENTS)

        def select(item: tuple[str, str]) -> tuple[int, str]:
            shortlist_id, candidate_id = item
            barrier.wait()
            response = client.post(
                f"/v1/shortlists/{shortlist_id}/selections",
                json={"candidate_ids": [candidate_id]},
                headers=market.employer,
            )
            return response.status_code, response.json().get("code", "")

        with ThreadPoolExecutor(max_workers=CONCURRENT_CLIENTS) as pool:
            outcomes = list(pool.map(select, candidates))

        assert lowered.status_code == 200
        assert len(candidates) == CONCURRENT_CLIENTS
        assert len({candidate for _, candidate in candidates}) == CONCURRENT_CLIENTS
        assert sum(status == 200 for status, _ in outcomes) == CONCURRENCY_CAP
        assert sorted({code for status, code in outcomes if status != 200}) == [
            "quota_exceeded"
        ]
        assert _cell(client)["used"] == CONCURRENCY_CAP
        placed = sum(
            client.get(f"/v1/vacancies/V-{number}", headers=market.employer).json()[
                "placements"
            ]
            for number in range(5)
        )
        assert placed == CONCURRENCY_CAP
