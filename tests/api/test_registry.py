"""The in-process registrant matrix: incremental refreshes match a full rebuild."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
from api_testing import Market, registrant_row, registrants_csv, upload
from fastapi.testclient import TestClient

from api.context import ServiceContext
from api.services.registrant_columns import VECTOR_DTYPE, parse_rows
from api.services.registry import RegistrantRegistry, RegistrySnapshot, read_version
from matching.features import ISCO_LEVELS

# The background refresh of a few rows takes well under a second.
REFRESH_TIMEOUT_SECONDS = 30.0


def _assert_same_matrix(actual: RegistrySnapshot, expected: RegistrySnapshot) -> None:
    got, want = actual.features, expected.features
    assert actual.version == expected.version
    assert np.array_equal(actual.registrant_ids, expected.registrant_ids)
    assert actual.row_of == expected.row_of
    assert got.keys == want.keys
    assert np.array_equal(got.origin, want.origin)
    assert np.array_equal(got.consent, want.consent)
    assert np.array_equal(got.available_from, want.available_from)
    assert np.array_equal(got.vectors, want.vectors)

    assert np.array_equal(got.skills.toarray(), want.skills.toarray())
    for level in ISCO_LEVELS:
        assert np.array_equal(got.isco[level].toarray(), want.isco[level].toarray())
    assert np.array_equal(got.minor_years.toarray(), want.minor_years.toarray())

    assert got.language_rows.keys() == want.language_rows.keys()
    for language, rows in want.language_rows.items():
        assert np.array_equal(got.language_rows[language], rows), language
        assert np.array_equal(
            got.language_rank[language], want.language_rank[language]
        ), language
        assert np.array_equal(
            got.language_test_day[language], want.language_test_day[language]
        ), language

    assert np.array_equal(got.qualification_row, want.qualification_row)
    assert np.array_equal(got.qualification_level, want.qualification_level)
    assert np.array_equal(got.qualification_field, want.qualification_field)
    assert np.array_equal(got.qualification_country, want.qualification_country)

    assert np.array_equal(
        actual.evidence.registrant_norm, expected.evidence.registrant_norm
    )
    assert actual.evidence.occupation_claims is not None
    assert expected.evidence.occupation_claims is not None
    assert np.array_equal(
        actual.evidence.occupation_claims.toarray(),
        expected.evidence.occupation_claims.toarray(),
    )


def test_incremental_matrix_equals_rebuild(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    context: ServiceContext = client.app.state.context  # type: ignore[attr-defined]
    with context.database.session() as session:
        before = context.registry.snapshot(session)
    changed = registrant_row(
        3,
        carpenter_skills,
        occupations="carpenter=7; 7112=1",
        languages="en:C1:IELTS:2025-03-01; de:B1:Goethe:2025-01-10",
    )
    added = [
        registrant_row(
            100 + number,
            carpenter_skills,
            occupations="joiner=2",
            qualifications="4:carpentry:PH",
            languages="de:A2:Goethe:2024-11-02",
        )
        for number in range(3)
    ]

    uploaded = upload(client, market.agency, registrants_csv([changed, *added]))
    erased = client.delete("/v1/registrants/R0005", headers=market.agency)
    with context.database.session() as session:
        incremental = context.registry.snapshot(session)
        rebuilt = RegistrantRegistry(
            context.engine.builder, context.builder_lock
        ).snapshot(session)
        version = read_version(session)

    assert uploaded.status_code == 200, uploaded.text
    assert erased.status_code == 204
    assert before.features.count == 12
    assert incremental.version == version
    assert incremental.features.count == 12 - 1 + len(added)
    assert "AG-PH-1/R0005" not in incremental.features.keys
    assert "AG-PH-1/R0100" in incremental.features.keys
    assert sorted(incremental.features.language_rows) == ["de", "en"]
    _assert_same_matrix(incremental, rebuilt)


def test_upload_refreshes_matrix_in_background(
    client: TestClient, market: Market, carpenter_skills: list[str]
) -> None:
    context: ServiceContext = client.app.state.context  # type: ignore[attr-defined]
    rows = [registrant_row(200 + number, carpenter_skills) for number in range(5)]

    uploaded = upload(client, market.agency, registrants_csv(rows))
    with context.database.session() as session:
        version = read_version(session)
    deadline = time.monotonic() + REFRESH_TIMEOUT_SECONDS
    while context.registry.built_version != version and time.monotonic() < deadline:
        time.sleep(0.05)

    assert uploaded.status_code == 200, uploaded.text
    assert context.registry.built_version == version


def _stored_row(registrant_id: int, skills: list[str]) -> SimpleNamespace:
    features = {
        "skills": skills,
        "occupations": [["7115", 2.0]],
        "occupation_matches": [],
        "languages": [["en", 4, 739000]],
        "qualifications": [],
        "consent": True,
        "available_day": 739000,
    }
    return SimpleNamespace(
        id=registrant_id,
        agency_id="AG",
        external_id=f"R{registrant_id}",
        origin="PH",
        features=json.dumps(features),
        vector=np.full(4, registrant_id, dtype=VECTOR_DTYPE).tobytes(),
    )


def test_columns_replace_keeps_reused_id() -> None:
    vocabulary: dict[str, int] = {}

    def skill_columns(keys: list[str]) -> np.ndarray:
        return np.array(
            [vocabulary.setdefault(key, len(vocabulary)) for key in keys],
            dtype=np.int64,
        )

    def parse(rows: list[SimpleNamespace]):  # type: ignore[no-untyped-def]
        return parse_rows(rows, skill_columns=skill_columns, occupation_position={})

    stored = parse(
        [
            _stored_row(1, ["a", "b"]),
            _stored_row(2, ["b", "a", "b"]),
            _stored_row(3, ["d"]),
        ]
    )
    # Row 1 is erased. Row 2 is erased and its id reused by a new row, which is
    # read in the same refresh as row 4.
    replaced = stored.replace(
        parse([_stored_row(4, ["a"]), _stored_row(2, ["c"])]),
        np.array([1, 2], dtype=np.int64),
    )

    assert stored.lists["skills"].values["column"].tolist() == [0, 1, 0, 1, 2]
    assert replaced.ids.tolist() == [2, 3, 4]
    assert replaced.per_row["key"].tolist() == ["AG/R2", "AG/R3", "AG/R4"]
    assert replaced.lists["skills"].indptr.tolist() == [0, 1, 2, 3]
    assert replaced.lists["skills"].values["column"].tolist() == [3, 2, 0]
    assert replaced.per_row["vector"][:, 0].tolist() == [2.0, 3.0, 4.0]
