"""Registrant features built batch-wise, checked against per-row definitions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from matching.features import (
    FeatureBuilder,
    ResolutionMemo,
    pool_profile_vectors,
)
from matching.models import Registrant
from matching.normalise import ConceptMatch
from matching.rounds import MatchingEngine
from matching.taxonomy import Taxonomy

UNMAPPED_TEXT = "qwzx plorbing of vrenks"


def _registrant(external_id: str, **changes: Any) -> Registrant:
    fields: dict[str, Any] = {
        "agency_id": "AG-PH",
        "external_id": external_id,
        "origin": "PH",
        "birth_year": 1990,
        "available_from": "2026-03-01",
        "consent": True,
    }
    fields.update(changes)
    return Registrant.model_validate(fields)


@pytest.fixture(scope="module")
def skill_uris(taxonomy: Taxonomy) -> list[str]:
    """Three ESCO skill URIs with distinct preferred labels."""
    uris: list[str] = []
    labels: set[str] = set()
    for uri in sorted(taxonomy.skills):
        label = taxonomy.skills[uri].preferred_label
        if label not in labels:
            uris.append(uri)
            labels.add(label)
        if len(uris) == 3:
            return uris
    raise AssertionError("the taxonomy has fewer than three skills")


@pytest.fixture(scope="module")
def batch(taxonomy: Taxonomy, skill_uris: list[str]) -> list[Registrant]:
    """Rows with repeated skills, a URI beside its own label, free text and no skills."""
    first, second, third = skill_uris
    second_label = taxonomy.skills[second].preferred_label
    return [
        _registrant(
            "R1",
            skills=[first, second, first],
            occupations=[{"isco_code": "7115", "years_experience": 3}],
        ),
        _registrant(
            "R2",
            skills=[second_label, UNMAPPED_TEXT, second],
            occupations=[
                {"isco_code": "7115", "years_experience": 2},
                {"isco_code": "7119", "years_experience": 5},
            ],
        ),
        _registrant("R3"),
        _registrant(
            "R4",
            skills=[third, UNMAPPED_TEXT.upper()],
            occupations=[{"title": "carpenter"}],
        ),
    ]


def _key(match: ConceptMatch) -> str:
    if match.uri is not None:
        return match.uri
    return "text:" + match.raw.strip().lower()


def _row_columns(features: Any, row: int) -> list[int]:
    skills = features.skills
    return sorted(skills.indices[skills.indptr[row] : skills.indptr[row + 1]].tolist())


def test_skill_matrix_counts_each_key_once(
    engine: MatchingEngine, batch: list[Registrant]
) -> None:
    builder = engine.builder
    features = builder.build_registrants(batch)

    assert features.skills.shape[0] == len(batch)
    for row, registrant in enumerate(batch):
        matches = builder.normaliser.map_skills(list(registrant.skills))
        expected = sorted({builder.vocabulary.index[_key(match)] for match in matches})
        assert _row_columns(features, row) == expected
    assert features.skills.data.tolist() == [1.0] * features.skills.nnz


def test_skill_matches_follow_input_order(
    engine: MatchingEngine, batch: list[Registrant]
) -> None:
    features = engine.builder.build_registrants(batch)

    for registrant, matches in zip(batch, features.skill_matches, strict=True):
        assert [match.raw for match in matches] == list(registrant.skills)


def test_vectors_equal_per_row_pooling(
    engine: MatchingEngine, batch: list[Registrant]
) -> None:
    builder = engine.builder
    features = builder.build_registrants(batch)

    skill_labels = [
        [builder.skill_label(match) for match in matches]
        for matches in features.skill_matches
    ]
    # A title pools as its ESCO label, else the text given, else the ISCO group name.
    titles = [
        [
            match.label
            or claim.title
            or builder.taxonomy.isco_groups[claim.isco_code or ""]
            for claim, match in zip(registrant.occupations, matches, strict=True)
        ]
        for registrant, matches in zip(batch, features.occupation_matches, strict=True)
    ]
    expected = pool_profile_vectors(builder.encoder, skill_labels, titles)
    np.testing.assert_allclose(features.vectors, expected, atol=1e-6)
    assert not features.vectors[2].any()


def test_minor_group_years_add_up(
    engine: MatchingEngine, batch: list[Registrant]
) -> None:
    builder = engine.builder
    features = builder.build_registrants(batch)

    minor = features.isco_columns[3]["711"]
    assert features.minor_years[[0], [minor]][0] == pytest.approx(3.0)
    assert features.minor_years[[1], [minor]][0] == pytest.approx(7.0)
    unit = features.isco_columns[4]["7119"]
    assert features.isco[4][[1], [unit]][0] == 1.0
    assert features.isco[4][[0], [unit]][0] == 0.0


def test_distinct_skill_keys_keep_first_order(
    engine: MatchingEngine, batch: list[Registrant], skill_uris: list[str]
) -> None:
    resolved = engine.builder.resolve_registrants(batch)

    indptr, keys = resolved.distinct_skill_keys()
    rows = [
        [resolved.skill_keys[key] for key in keys[start:stop]]
        for start, stop in zip(indptr[:-1], indptr[1:], strict=True)
    ]
    assert rows[0] == [skill_uris[0], skill_uris[1]]
    assert rows[1] == [skill_uris[1], "text:" + UNMAPPED_TEXT]
    assert rows[2] == []
    assert rows[3] == [skill_uris[2], "text:" + UNMAPPED_TEXT]


def test_resolve_leaves_vocabulary_alone(
    taxonomy: Taxonomy, engine: MatchingEngine, batch: list[Registrant]
) -> None:
    builder = FeatureBuilder(
        taxonomy, engine.builder.normaliser, engine.builder.encoder
    )

    builder.resolve_registrants(batch)

    assert len(builder.vocabulary) == 0


def test_memo_across_batches_changes_nothing(
    engine: MatchingEngine, batch: list[Registrant]
) -> None:
    builder = engine.builder
    memo = ResolutionMemo()
    builder.resolve_registrants(batch[:2], memo=memo)

    with_memo = builder.resolve_registrants(batch[1:], memo=memo)
    without = builder.resolve_registrants(batch[1:])

    assert UNMAPPED_TEXT in memo.skills
    assert with_memo.skill_matches_per_row() == without.skill_matches_per_row()
    assert with_memo.occupation_matches == without.occupation_matches
    assert with_memo.skill_keys == without.skill_keys
    np.testing.assert_array_equal(with_memo.vectors, without.vectors)


def test_build_registrants_empty_batch(engine: MatchingEngine) -> None:
    features = engine.builder.build_registrants([])

    assert features.count == 0
    assert features.vectors.shape == (0, engine.builder.encoder.dim)
    assert features.skills.shape[0] == 0
    assert features.skill_matches == ()
