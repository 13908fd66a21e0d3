"""Score components against the real taxonomy, normaliser and model."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from matching.eligibility import AgreementIndex, evaluate_eligibility
from matching.features import RegistrantFeatures, VacancyProfile
from matching.models import OccupationClaim, Registrant, Vacancy
from matching.rounds import MatchingEngine, summarise_round
from matching.scoring import (
    ALL_COMPONENTS,
    COMPONENTS,
    PROFILE_COMPONENTS,
    ScoreWeights,
    score_vacancy,
)
from matching.skill_profile import OccupationEvidence, skill_idf
from matching.synth import MarketSpec, generate_market
from matching.taxonomy import Taxonomy

START = dt.date(2026, 6, 1)


def _occupation_with_skills(taxonomy: Taxonomy, isco_prefix: str) -> str:
    """Return an occupation in an ISCO group with at least six essential skills."""
    for uri in taxonomy.occupations_in_isco(isco_prefix):
        if len(taxonomy.essential_skills(uri)) >= 6:
            return uri
    raise AssertionError(f"no occupation under ISCO {isco_prefix} has six skills")


def _registrant(
    number: int, skills: tuple[str, ...], claims: tuple[OccupationClaim, ...] = ()
) -> Registrant:
    return Registrant(
        agency_id="AG-PH-1",
        external_id=f"R{number:04d}",
        origin="PH",
        birth_year=1990,
        occupations=claims,
        skills=skills,
        available_from=START - dt.timedelta(days=30),
        consent=True,
    )


def _vacancy(taxonomy: Taxonomy, uri: str) -> Vacancy:
    occupation = taxonomy.occupations[uri]
    return Vacancy(
        id="V-1",
        employer_id="E-1",
        destination="DE",
        sector="F",
        esco_uri=uri,
        isco_code=occupation.isco_code,
        title=occupation.preferred_label,
        openings=1,
        start_date=START,
    )


def _score(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    weights: ScoreWeights,
    evidence: OccupationEvidence | None,
):
    eligibility = evaluate_eligibility(features, profile, AgreementIndex([]))
    rows = np.arange(features.count, dtype=np.int64)
    return score_vacancy(
        features, profile, eligibility, rows, weights, evidence=evidence
    )


@pytest.fixture(scope="module")
def welder_case(engine: MatchingEngine, taxonomy: Taxonomy):
    """Build a welding vacancy and five registrants to score against it.

    Row 0 lists the vacancy occupation's essential skills and claims that
    occupation by ESCO URI. Row 1 lists a nursing occupation's essential
    skills. Row 2 lists only the profile's most common skill across ESCO
    occupations, and row 3 only its rarest. Row 4 is row 0 with the claim
    given as an ISCO code.
    """
    own = _occupation_with_skills(taxonomy, "7212")
    other = _occupation_with_skills(taxonomy, "2221")
    own_skills = taxonomy.essential_skills(own)
    idf = skill_idf(taxonomy)
    by_idf = sorted(own_skills, key=lambda skill: idf[skill])
    registrants = [
        _registrant(1, own_skills, (OccupationClaim(esco_uri=own),)),
        _registrant(2, taxonomy.essential_skills(other)),
        _registrant(3, (by_idf[0],)),
        _registrant(4, (by_idf[-1],)),
        _registrant(5, own_skills, (OccupationClaim(isco_code="7212"),)),
    ]
    builder = engine.builder
    features = builder.build_registrants(registrants)
    profile = builder.build_vacancy(_vacancy(taxonomy, own))
    evidence = OccupationEvidence.build(
        taxonomy, builder.vocabulary.index, features, idf=idf
    )
    return features, profile, evidence


def test_skill_profile_prefers_own_occupation_skills(welder_case) -> None:
    features, profile, evidence = welder_case
    scores = _score(features, profile, ScoreWeights(), evidence)
    similarity = scores.values["skill_profile"]
    assert np.all((similarity >= 0.0) & (similarity <= 1.0))
    assert similarity[0] > 0.5
    assert similarity[1] < 0.1
    assert similarity[0] > similarity[1]
    assert scores.total[0] > scores.total[1]


def test_skill_profile_discounts_generic_skills(welder_case) -> None:
    features, profile, evidence = welder_case
    similarity = _score(features, profile, ScoreWeights(), evidence).values[
        "skill_profile"
    ]
    generic, specific = similarity[2], similarity[3]
    assert specific > generic


def test_occupation_match_uses_normalised_claim(welder_case) -> None:
    features, profile, evidence = welder_case
    match = _score(features, profile, ScoreWeights(), evidence).values[
        "occupation_match"
    ]
    assert match[0] == pytest.approx(1.0)
    assert match[1] == 0.0
    # An ISCO code alone does not name the ESCO occupation.
    assert match[4] == 0.0


def test_weights_renormalise_over_applicable_components(welder_case) -> None:
    features, profile, evidence = welder_case
    weights = ScoreWeights()
    for supplied in (None, evidence):
        scores = _score(features, profile, weights, supplied)
        applied = list(scores.values)
        expected_names = set(COMPONENTS) - {"language_margin"}
        if supplied is not None:
            expected_names |= set(PROFILE_COMPONENTS)
        assert set(applied) == expected_names
        weight_sum = sum(getattr(weights, name) for name in applied)
        expected = sum(
            getattr(weights, name) * scores.values[name] for name in applied
        )
        np.testing.assert_allclose(scores.total, expected / weight_sum, atol=1e-12)
        assert np.all((scores.total >= 0.0) & (scores.total <= 1.0))


def test_profile_components_skipped_without_evidence(welder_case) -> None:
    features, profile, _ = welder_case
    scores = _score(features, profile, ScoreWeights(), None)
    for name in PROFILE_COMPONENTS:
        assert name not in scores.values


def test_only_profile_weight_scores_profile(welder_case) -> None:
    features, profile, evidence = welder_case
    zero = {name: 0.0 for name in ALL_COMPONENTS}
    weights = ScoreWeights(**{**zero, "skill_profile": 1.0})
    scores = _score(features, profile, weights, evidence)
    np.testing.assert_allclose(scores.total, scores.values["skill_profile"])


def test_evidence_for_other_batch_raises(welder_case) -> None:
    features, profile, evidence = welder_case
    subset = features.take(np.array([0, 1], dtype=np.int64))
    with pytest.raises(ValueError, match="build it again"):
        _score(subset, profile, ScoreWeights(), evidence)


def test_evidence_on_subset_matches_whole_batch(
    welder_case, engine: MatchingEngine, taxonomy: Taxonomy
) -> None:
    features, profile, evidence = welder_case
    rows = np.array([3, 0, 4], dtype=np.int64)
    subset = features.take(rows)
    subset_evidence = OccupationEvidence.build(
        taxonomy, engine.builder.vocabulary.index, subset
    )
    whole = _score(features, profile, ScoreWeights(), evidence)
    part = _score(subset, profile, ScoreWeights(), subset_evidence)
    for name in PROFILE_COMPONENTS:
        np.testing.assert_allclose(part.values[name], whole.values[name][rows])
    np.testing.assert_allclose(part.total, whole.total[rows])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"skill_profile": -0.1}, "skill_profile"),
        ({"occupation_match": float("nan")}, "occupation_match"),
        ({name: 0.0 for name in ALL_COMPONENTS}, "all zero"),
    ],
)
def test_score_weights_reject_invalid(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScoreWeights(**changes)


def test_round_explanation_shows_profile_components(
    engine: MatchingEngine, taxonomy: Taxonomy
) -> None:
    market = generate_market(taxonomy, MarketSpec(registrants=150, vacancies=6, seed=5))
    result = engine.run_round(market.registrants, market.vacancies, market.agreements)
    candidates = [
        candidate
        for entry in summarise_round(result)["shortlists"]
        for candidate in entry["candidates"]
    ]
    assert candidates
    for candidate in candidates:
        components = candidate["components"]
        assert "skill_profile" in components
        assert "occupation_match" in components
        assert 0.0 <= components["skill_profile"] <= 1.0
        assert 0.0 <= components["occupation_match"] <= 1.0
