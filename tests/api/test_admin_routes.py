"""Agreements, quota cells and the audit trail."""

from __future__ import annotations

import sqlalchemy as sa
from api_testing import CELL, Market, admin_headers, agreement_body, vacancy_body
from fastapi.testclient import TestClient

from api.tables import AuditEvent


def test_agreement_read_shows_live_use(client: TestClient, market: Market) -> None:
    response = client.get("/v1/agreements/AGR-PH-DE", headers=admin_headers())

    assert response.status_code == 200
    agreement = response.json()["agreement"]
    assert agreement["quota_cells"][0]["id"] == CELL
    assert agreement["quota_cells"][0]["used"] == 0
    assert response.json()["closed_at"] is None


def test_agreement_repeated_id_conflicts(client: TestClient, market: Market) -> None:
    response = client.post(
        "/v1/agreements", json=agreement_body(), headers=admin_headers()
    )

    assert response.status_code == 409
    assert response.json()["detail"] == "agreement 'AGR-PH-DE' already exists"


def test_agreement_overlap_in_corridor_conflicts(
    client: TestClient, market: Market
) -> None:
    body = {**agreement_body(), "id": "AGR-PH-DE-2", "quota_cells": []}

    response = client.post("/v1/agreements", json=body, headers=admin_headers())

    assert response.status_code == 409
    assert "AGR-PH-DE-2" in response.json()["detail"]
    assert (
        client.get("/v1/agreements/AGR-PH-DE-2", headers=admin_headers()).status_code
        == 404
    )


def test_agreement_invalid_body_rejected(client: TestClient) -> None:
    body = {**agreement_body(), "origin": "DE"}

    response = client.post("/v1/agreements", json=body, headers=admin_headers())

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


def test_agreement_update_and_close(client: TestClient, market: Market) -> None:
    updated = client.patch(
        "/v1/agreements/AGR-PH-DE",
        json={"valid_to": "2028-06-30"},
        headers=admin_headers(),
    )
    bad = client.patch(
        "/v1/agreements/AGR-PH-DE",
        json={"valid_to": "2020-01-01"},
        headers=admin_headers(),
    )
    closed = client.post("/v1/agreements/AGR-PH-DE:close", headers=admin_headers())
    client.post("/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer)
    shortlist = client.post(
        "/v1/vacancies/V-1/shortlist", headers=market.employer
    ).json()

    assert updated.status_code == 200
    assert updated.json()["agreement"]["valid_to"] == "2028-06-30"
    assert bad.status_code == 422
    assert closed.json()["closed_at"] is not None
    assert shortlist["candidates"] == []
    assert shortlist["unfilled"]["excluded"] == {"no_agreement": 12}


def test_quota_cell_lifecycle(client: TestClient, market: Market) -> None:
    created = client.post(
        "/v1/quota-cells",
        json={
            "id": "Q-PH-DE-7115",
            "isco_prefix": "7115",
            "cap": 4,
            "period_start": "2026-01-01",
            "period_end": "2026-12-31",
            "agreement_ids": ["AGR-PH-DE"],
        },
        headers=admin_headers(),
    )
    patched = client.patch(
        "/v1/quota-cells/Q-PH-DE-7115", json={"cap": 6}, headers=admin_headers()
    )
    listed = client.get("/v1/quota-cells", headers=admin_headers()).json()
    closed = client.post("/v1/quota-cells/Q-PH-DE-7115:close", headers=admin_headers())
    missing = client.get("/v1/quota-cells/Q-NONE", headers=admin_headers())
    client.post("/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer)
    shortlist = client.post(
        "/v1/vacancies/V-1/shortlist", headers=market.employer
    ).json()

    assert created.status_code == 201
    assert created.json()["agreement_ids"] == ["AGR-PH-DE"]
    assert patched.json()["cap"] == 6
    assert sorted(cell["id"] for cell in listed) == sorted([CELL, "Q-PH-DE-7115"])
    assert closed.json()["remaining"] == 0
    assert missing.status_code == 404
    assert missing.json()["detail"] == "quota cell 'Q-NONE' not found"
    assert shortlist["candidates"] == []
    assert shortlist["unfilled"]["reason"]["codes"] == ["quota_cell:Q-PH-DE-7115"]


def test_quota_cell_bad_period_rejected(client: TestClient, market: Market) -> None:
    response = client.patch(
        f"/v1/quota-cells/{CELL}",
        json={"period_end": "2025-01-01"},
        headers=admin_headers(),
    )

    assert response.status_code == 422


def test_audit_records_shortlist_selection_erasure(
    client: TestClient, market: Market, database_url: str
) -> None:
    client.post("/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer)
    shortlist = client.post(
        "/v1/vacancies/V-1/shortlist", headers=market.employer
    ).json()
    client.post(
        f"/v1/shortlists/{shortlist['id']}/selections",
        json={"candidate_ids": [shortlist["candidates"][0]["candidate_id"]]},
        headers=market.employer,
    )
    client.delete("/v1/registrants/R0002", headers=market.agency)
    client.post("/v1/rounds", headers=admin_headers())

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            events = connection.execute(
                sa.select(AuditEvent.action, AuditEvent.key_id, AuditEvent.input_sha256)
            ).all()
    finally:
        engine.dispose()

    actions = {event.action for event in events}
    assert {"upload", "shortlist", "selection", "erasure", "round"} <= actions
    for event in events:
        assert len(event.input_sha256) == 64
        assert len(event.key_id) == 16
