"""Score registrant-vacancy pairs in [0, 1] from named, explainable components.

The score is a weighted mean of the components that apply to the vacancy:

- ``semantic``: cosine similarity of the pooled profile and vacancy vectors,
  clipped to [0, 1];
- ``essential_skills``: share of the vacancy's essential ESCO skills the
  registrant lists (applies when the vacancy has essential skills);
- ``isco_proximity``: 1 for the same ISCO-08 unit group, 0.75 for the same
  minor group, 0.5 sub-major, 0.25 major, else 0 (best over the
  registrant's occupations);
- ``experience``: years in the vacancy's ISCO minor group over the years
  asked for (or ``ScoreWeights.experience_target_years`` when the vacancy
  asks for none), capped at 1;
- ``language_margin``: per language minimum, 0.5 when met exactly plus 0.25
  per CEFR level above, capped at 1, averaged (applies when there are
  minimums);
- ``skill_profile``: IDF-weighted cosine between the registrant's ESCO skills
  and the essential and optional skills of the vacancy's ESCO occupation
  (applies when the caller passes :class:`~matching.skill_profile.OccupationEvidence`
  and the vacancy has such a profile);
- ``occupation_match``: the normaliser's confidence that a registrant's
  occupation claim is the vacancy's own ESCO occupation, else 0 (applies
  with the same evidence, when the features carry normalisation outcomes).

A component that does not apply is left out and the remaining weights are
renormalised, so a vacancy without language minimums is not scored as if
every candidate met them perfectly.

The default weights were chosen on synthetic markets from
:func:`matching.synth.generate_market`, where a registrant's skills are
drawn from the ESCO relations of a hidden true occupation. There the two
profile components put registrants of the vacancy's own occupation on top
more often than the pooled-vector cosine did, and more weight on experience
lowered nDCG@3 slightly. Without evidence the other five weights
renormalise to about 0.43 semantic, 0.29 essential skills, 0.14 ISCO
proximity and 0.07 each for experience and language margin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from matching.eligibility import Eligibility
from matching.features import ISCO_LEVELS, RegistrantFeatures, VacancyProfile
from matching.skill_profile import OccupationEvidence

# Components computed from RegistrantFeatures and VacancyProfile alone.
COMPONENTS: tuple[str, ...] = (
    "semantic",
    "essential_skills",
    "isco_proximity",
    "experience",
    "language_margin",
)
# Components that also need OccupationEvidence for the registrant batch.
PROFILE_COMPONENTS: tuple[str, ...] = ("skill_profile", "occupation_match")
ALL_COMPONENTS: tuple[str, ...] = COMPONENTS + PROFILE_COMPONENTS

# Credit for sharing the vacancy's ISCO group at each level (digits kept).
ISCO_LEVEL_CREDIT = {4: 1.0, 3: 0.75, 2: 0.5, 1: 0.25}


@dataclass(frozen=True, kw_only=True)
class ScoreWeights:
    """Weights of the score components; they need not sum to one.

    Attributes
    ----------
    semantic, essential_skills, isco_proximity, experience, language_margin
        Non-negative weight of each component.
    skill_profile, occupation_match
        Non-negative weight of each component that needs
        :class:`~matching.skill_profile.OccupationEvidence`.
    experience_target_years
        Years of experience that earn full credit when a vacancy sets no minimum.
    """

    semantic: float = 0.15
    essential_skills: float = 0.10
    isco_proximity: float = 0.05
    experience: float = 0.025
    language_margin: float = 0.025
    skill_profile: float = 0.45
    occupation_match: float = 0.20
    experience_target_years: float = 3.0

    def __post_init__(self) -> None:
        for name in ALL_COMPONENTS:
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(
                    f"score weight {name} is {value}, but it must be finite and >= 0"
                )
        if sum(getattr(self, name) for name in ALL_COMPONENTS) <= 0:
            raise ValueError(
                "score weights are all zero; give at least one component a positive weight"
            )
        if self.experience_target_years <= 0:
            raise ValueError(
                f"experience_target_years is {self.experience_target_years}, but it must be > 0"
            )

    def as_dict(self) -> dict[str, float]:
        """Return the weights as a plain dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class ComponentScores:
    """Component values for a set of registrants against one vacancy.

    Attributes
    ----------
    rows
        (K,) registrant rows the values belong to.
    values
        Component name to (K,) float64 values in [0, 1]; only the components
        that apply to the vacancy are present.
    total
        (K,) float64 weighted score in [0, 1].
    """

    rows: NDArray[np.int64]
    values: dict[str, NDArray[np.float64]]
    total: NDArray[np.float64]


def score_vacancy(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    eligibility: Eligibility,
    rows: NDArray[np.int64],
    weights: ScoreWeights,
    *,
    evidence: OccupationEvidence | None = None,
) -> ComponentScores:
    """Score the given registrant rows against one vacancy.

    Parameters
    ----------
    features
        The registrant batch.
    profile
        The vacancy.
    eligibility
        Rule outcome for this vacancy (its language margins feed a component).
    rows
        (K,) int64 rows of the registrants to score, usually the eligible ones.
    weights
        Component weights.
    evidence
        Skill profiles and occupation claims of the registrant batch, for the
        ``skill_profile`` and ``occupation_match`` components; without it they
        do not apply.

    Returns
    -------
    ComponentScores

    Raises
    ------
    ValueError
        If ``evidence`` was built for a different registrant batch.
    """
    values: dict[str, NDArray[np.float64]] = {}
    similarity = features.vectors[rows] @ profile.vector
    values["semantic"] = np.clip(similarity.astype(np.float64), 0.0, 1.0)

    if profile.essential_skill_ids:
        columns = np.array(
            [
                column
                for column in profile.essential_skill_ids
                if column < features.skills.shape[1]
            ],
            dtype=np.int64,
        )
        matched = np.zeros(rows.size, dtype=np.float64)
        if columns.size:
            matched = np.asarray(
                features.skills[rows][:, columns].sum(axis=1), dtype=np.float64
            ).ravel()
        values["essential_skills"] = matched / len(profile.essential_skill_ids)

    values["isco_proximity"] = _isco_proximity(features, profile, rows)
    values["experience"] = _experience(features, profile, rows, weights)
    if eligibility.languages:
        margins = eligibility.language_margin[rows].astype(np.float64)
        credit = np.clip(0.5 + 0.25 * margins, 0.0, 1.0)
        values["language_margin"] = credit.mean(axis=1)
    if evidence is not None:
        values.update(_profile_components(evidence, features, profile, rows))

    total = np.zeros(rows.size, dtype=np.float64)
    weight_sum = 0.0
    for name, value in values.items():
        weight = getattr(weights, name)
        total += weight * value
        weight_sum += weight
    if weight_sum > 0:
        total /= weight_sum
    return ComponentScores(rows=rows, values=values, total=total)


def _isco_proximity(
    features: RegistrantFeatures, profile: VacancyProfile, rows: NDArray[np.int64]
) -> NDArray[np.float64]:
    proximity = np.zeros(rows.size, dtype=np.float64)
    if profile.isco_code is None:
        return proximity
    for level in reversed(ISCO_LEVELS):
        column = features.isco_columns[level].get(profile.isco_code[:level])
        if column is None:
            continue
        has_group = features.isco[level][rows][:, [column]].toarray().ravel() > 0
        proximity[has_group] = ISCO_LEVEL_CREDIT[level]
    return proximity


def _experience(
    features: RegistrantFeatures,
    profile: VacancyProfile,
    rows: NDArray[np.int64],
    weights: ScoreWeights,
) -> NDArray[np.float64]:
    if profile.isco_code is None:
        return np.zeros(rows.size, dtype=np.float64)
    column = features.isco_columns[3].get(profile.isco_code[:3])
    if column is None:
        return np.zeros(rows.size, dtype=np.float64)
    years = features.minor_years[rows][:, [column]].toarray().ravel().astype(np.float64)
    target = profile.vacancy.min_experience_years or weights.experience_target_years
    return np.clip(years / target, 0.0, 1.0)


def _profile_components(
    evidence: OccupationEvidence,
    features: RegistrantFeatures,
    profile: VacancyProfile,
    rows: NDArray[np.int64],
) -> dict[str, NDArray[np.float64]]:
    values: dict[str, NDArray[np.float64]] = {}
    similarity = evidence.skill_profile_similarity(features, profile, rows)
    if similarity is not None:
        values["skill_profile"] = similarity
    match = evidence.occupation_match(profile, rows)
    if match is not None:
        values["occupation_match"] = match
    return values
