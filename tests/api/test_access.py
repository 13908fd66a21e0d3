"""Access control: keys, roles and tenants on every route."""

from __future__ import annotations

from typing import Any

import pytest
from api_testing import Market, admin_headers, issue_key, vacancy_body
from fastapi.testclient import TestClient

# Every route behind a key, with a body that would be valid for its owner.
ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/registrants:bulk", None),
    ("GET", "/v1/registrants/R0001", None),
    ("DELETE", "/v1/registrants/R0001", None),
    ("POST", "/v1/vacancies", vacancy_body("V-9")),
    ("GET", "/v1/vacancies", None),
    ("GET", "/v1/vacancies/V-1", None),
    ("POST", "/v1/vacancies/V-1/shortlist", None),
    ("GET", "/v1/shortlists/sl_x", None),
    ("POST", "/v1/shortlists/sl_x/selections", {"candidate_ids": ["cand_x"]}),
    ("POST", "/v1/agreements", None),
    ("GET", "/v1/agreements", None),
    ("GET", "/v1/agreements/AGR-PH-DE", None),
    ("PATCH", "/v1/agreements/AGR-PH-DE", {}),
    ("POST", "/v1/agreements/AGR-PH-DE:close", None),
    ("POST", "/v1/quota-cells", None),
    ("GET", "/v1/quota-cells", None),
    ("GET", "/v1/quota-cells/Q-PH-DE-F", None),
    ("PATCH", "/v1/quota-cells/Q-PH-DE-F", {}),
    ("POST", "/v1/quota-cells/Q-PH-DE-F:close", None),
    ("POST", "/v1/rounds", None),
    ("GET", "/v1/rounds", None),
    ("GET", "/v1/rounds/rd_x", None),
    ("POST", "/v1/keys", {"role": "admin"}),
    ("GET", "/v1/keys", None),
    ("DELETE", "/v1/keys/abc", None),
]


def _call(
    client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_route_needs_a_key(client: TestClient) -> None:
    for method, path, body in ROUTES:
        missing = _call(client, method, path, body, {})
        unknown = _call(
            client, method, path, body, {"X-API-Key": "lm_not-a-key-at-all-000000"}
        )

        assert missing.status_code == 401, (method, path)
        assert "missing X-API-Key" in missing.json()["detail"], (method, path)
        assert unknown.status_code == 401, (method, path)
        assert "invalid or revoked API key" in unknown.json()["detail"], (method, path)


def test_openapi_lists_every_route(client: TestClient) -> None:
    response = client.get("/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for _, path, _ in ROUTES:
        template = (
            path.replace("R0001", "{external_id}")
            .replace("V-1", "{vacancy_id}")
            .replace("sl_x", "{shortlist_id}")
            .replace("AGR-PH-DE", "{agreement_id}")
            .replace("Q-PH-DE-F", "{cell_id}")
            .replace("rd_x", "{round_id}")
            .replace("/abc", "/{key_id}")
        )
        assert template in paths, template


def test_revoked_key_rejected(client: TestClient, market: Market) -> None:
    key_id = client.get("/v1/keys", headers=admin_headers()).json()[-1]["id"]
    revoked = client.delete(f"/v1/keys/{key_id}", headers=admin_headers())

    response = client.get("/v1/vacancies", headers=market.other_employer)

    assert revoked.status_code == 200
    assert response.status_code == 401


def test_last_admin_key_cannot_be_revoked(client: TestClient) -> None:
    admin_id = client.get("/v1/keys", headers=admin_headers()).json()[0]["id"]

    response = client.delete(f"/v1/keys/{admin_id}", headers=admin_headers())

    assert response.status_code == 409
    assert admin_id in response.json()["detail"]


def test_role_mismatch_forbidden(client: TestClient, market: Market) -> None:
    cases = [
        (market.agency, "GET", "/v1/vacancies"),
        (market.employer, "GET", "/v1/registrants/R0001"),
        (market.employer, "GET", "/v1/quota-cells"),
        (market.agency, "POST", "/v1/rounds"),
        (admin_headers(), "GET", "/v1/vacancies"),
    ]
    for headers, method, path in cases:
        response = client.request(method, path, headers=headers)

        assert response.status_code == 403, (method, path)
        assert "needs a key with role" in response.json()["detail"], (method, path)


def test_tenant_key_needs_tenant_id(client: TestClient) -> None:
    response = client.post("/v1/keys", json={"role": "agency"}, headers=admin_headers())

    assert response.status_code == 422
    assert "tenant_id is missing" in response.json()["detail"]


def test_other_tenants_resources_not_found(client: TestClient, market: Market) -> None:
    created = client.post(
        "/v1/vacancies", json=vacancy_body("V-1"), headers=market.employer
    )
    shortlist = client.post(
        "/v1/vacancies/V-1/shortlist", headers=market.employer
    ).json()
    candidate = shortlist["candidates"][0]["candidate_id"]
    shortlist_id = shortlist["id"]
    cases = [
        (
            market.other_agency,
            "GET",
            "/v1/registrants/R0001",
            None,
            "registrant 'R0001'",
        ),
        (
            market.other_agency,
            "DELETE",
            "/v1/registrants/R0001",
            None,
            "registrant 'R0001'",
        ),
        (market.other_employer, "GET", "/v1/vacancies/V-1", None, "vacancy 'V-1'"),
        (
            market.other_employer,
            "POST",
            "/v1/vacancies/V-1/shortlist",
            None,
            "vacancy 'V-1'",
        ),
        (
            market.other_employer,
            "GET",
            f"/v1/shortlists/{shortlist_id}",
            None,
            f"shortlist '{shortlist_id}'",
        ),
        (
            market.other_employer,
            "POST",
            f"/v1/shortlists/{shortlist_id}/selections",
            {"candidate_ids": [candidate]},
            f"shortlist '{shortlist_id}'",
        ),
    ]

    assert created.status_code == 201
    for headers, method, path, body, words in cases:
        response = _call(client, method, path, body, headers)

        assert response.status_code == 404, (method, path)
        assert response.json()["detail"] == f"{words} not found", (method, path)
    assert client.get("/v1/registrants/R0001", headers=market.agency).status_code == 200
    assert (
        client.get(
            f"/v1/shortlists/{shortlist_id}", headers=market.employer
        ).status_code
        == 200
    )
    others = client.get("/v1/vacancies", headers=market.other_employer).json()
    assert others == []


def test_pseudonyms_differ_between_employers(
    client: TestClient, market: Market
) -> None:
    third = issue_key(client, "employer", "E-DE-3")
    for headers in (market.employer, third):
        client.post(
            "/v1/vacancies", json=vacancy_body("V-1", openings=4), headers=headers
        )

    first = client.post("/v1/vacancies/V-1/shortlist", headers=market.employer).json()
    second = client.post("/v1/vacancies/V-1/shortlist", headers=third).json()

    first_ids = {candidate["candidate_id"] for candidate in first["candidates"]}
    second_ids = {candidate["candidate_id"] for candidate in second["candidates"]}
    assert first_ids
    assert second_ids
    assert not first_ids & second_ids
