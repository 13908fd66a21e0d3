"""Score registrants against the full ESCO profile of a vacancy's occupation.

ESCO links each occupation to essential and optional skills. A registrant of
that occupation lists a noisy subset of them: some dropped, a few optional
ones added, some unrelated. Two score components compare a registrant with
the vacancy's occupation rather than with the vacancy's text:

- ``skill_profile``: cosine similarity between the registrant's ESCO skills
  and the occupation's skill profile, with every skill weighted by its
  inverse document frequency over ESCO occupations. Essential skills weigh 1
  and optional ones ``OPTIONAL_SKILL_WEIGHT``. A generic skill such as
  "communication" that many occupations list then counts for little, and a
  registrant whose skills sit mostly outside the profile scores low.
- ``occupation_match``: the normaliser's confidence that one of the
  registrant's occupation claims is the vacancy's own ESCO occupation, else 0.

:class:`OccupationEvidence` contains what these need about one registrant
batch and the skill columns of the run, so that each vacancy costs two sparse
products over the rows scored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from matching.features import RegistrantFeatures, VacancyProfile
from matching.taxonomy import Taxonomy

# Weight of an optional ESCO skill against an essential one in the profile.
# On synthetic markets from matching.synth.generate_market, 0.5 ranked the
# registrants of the vacancy's occupation better than 0.25 or 1.
OPTIONAL_SKILL_WEIGHT = 0.5


def skill_idf(taxonomy: Taxonomy) -> dict[str, float]:
    """Compute the inverse document frequency of each ESCO skill over occupations.

    Parameters
    ----------
    taxonomy
        ESCO occupations and their essential and optional skills.

    Returns
    -------
    dict of str to float
        Skill URI to ``log(occupations / occupations listing the skill)``,
        for every skill that at least one occupation lists; a skill listed
        by every occupation gets 0.
    """
    counts: dict[str, int] = {}
    for uri in taxonomy.occupations:
        related = set(taxonomy.essential_skills(uri))
        related.update(taxonomy.optional_skills(uri))
        for skill in related:
            counts[skill] = counts.get(skill, 0) + 1
    total = len(taxonomy.occupations)
    return {skill: math.log(total / count) for skill, count in counts.items()}


@dataclass(frozen=True)
class SkillProfile:
    """IDF-weighted skill profile of one vacancy over the run's skill columns.

    Attributes
    ----------
    columns
        (P,) int64 skill columns of the profile that some registrant may hold.
    weights
        (P,) float64 weight of each column: role weight times IDF.
    norm
        L2 norm over the whole profile, including skills that no registrant
        lists, so that a registrant cannot reach 1 with a small part of it.
    """

    columns: NDArray[np.int64]
    weights: NDArray[np.float64]
    norm: float


@dataclass(frozen=True)
class OccupationEvidence:
    """Registrant evidence for the ``skill_profile`` and ``occupation_match`` scores.

    Build it with :meth:`build` for one registrant batch, after the vacancies
    are built, so that the skill columns cover every skill of the run.

    Attributes
    ----------
    taxonomy
        ESCO reference data the profiles come from.
    skill_columns
        Skill key (ESCO URI, or ``text:`` plus the raw text for an unmapped
        skill) to its column in ``RegistrantFeatures.skills``.
    column_keys
        The inverse of ``skill_columns``.
    idf
        ESCO skill URI to its inverse document frequency, from :func:`skill_idf`.
    column_idf
        (S,) float64 IDF per column of the registrants' skill matrix. An
        unmapped skill gets 0 because it is not linked to any occupation.
    registrant_norm
        (N,) float64 L2 norm of each registrant's IDF-weighted skill vector.
    occupation_claims
        (N, occupations) CSR confidence of each registrant's normalised
        occupation claims, or None when the features carry no normalisation
        outcome (features generated as arrays).
    occupation_columns
        ESCO occupation URI to its column in ``occupation_claims``.
    """

    taxonomy: Taxonomy
    skill_columns: Mapping[str, int]
    column_keys: Mapping[int, str]
    idf: Mapping[str, float]
    column_idf: NDArray[np.float64]
    registrant_norm: NDArray[np.float64]
    occupation_claims: sp.csr_array | None
    occupation_columns: Mapping[str, int]

    @classmethod
    def build(
        cls,
        taxonomy: Taxonomy,
        skill_columns: Mapping[str, int],
        features: RegistrantFeatures,
        *,
        idf: Mapping[str, float] | None = None,
    ) -> OccupationEvidence:
        """Index the skills and occupation claims of a registrant batch.

        Parameters
        ----------
        taxonomy
            ESCO reference data.
        skill_columns
            The run's skill vocabulary, ``FeatureBuilder.vocabulary.index``.
        features
            The registrant batch; the evidence is valid for its rows only.
        idf
            Precomputed :func:`skill_idf` of ``taxonomy``; computed when omitted.

        Returns
        -------
        OccupationEvidence
        """
        weights = dict(idf) if idf is not None else skill_idf(taxonomy)
        width = features.skills.shape[1]
        column_idf = np.zeros(width, dtype=np.float64)
        for key, column in skill_columns.items():
            if column < width:
                column_idf[column] = weights.get(key, 0.0)
        squared = features.skills @ np.square(column_idf)
        occupation_columns = {
            uri: position for position, uri in enumerate(sorted(taxonomy.occupations))
        }
        return cls(
            taxonomy=taxonomy,
            skill_columns=dict(skill_columns),
            column_keys={column: key for key, column in skill_columns.items()},
            idf=weights,
            column_idf=column_idf,
            registrant_norm=np.sqrt(np.asarray(squared, dtype=np.float64)),
            occupation_claims=_occupation_claims(features, occupation_columns),
            occupation_columns=occupation_columns,
        )

    @property
    def count(self) -> int:
        """Number of registrants the evidence describes."""
        return int(self.registrant_norm.size)

    def skill_profile(self, profile: VacancyProfile) -> SkillProfile | None:
        """Return the vacancy's IDF-weighted skill profile, or None when it has none.

        The profile contains the ESCO essential (weight 1) and optional
        (weight ``OPTIONAL_SKILL_WEIGHT``) skills of the vacancy's occupation
        and the ESCO skills the vacancy lists as essential (weight 1).
        """
        roles: dict[str, float] = {}
        uri = profile.occupation.uri
        if uri is not None and uri in self.taxonomy.occupations:
            for skill in self.taxonomy.optional_skills(uri):
                roles[skill] = OPTIONAL_SKILL_WEIGHT
            for skill in self.taxonomy.essential_skills(uri):
                roles[skill] = 1.0
        for column in profile.essential_skill_ids:
            key = self.column_keys.get(column)
            # NOTE: a listed skill the normaliser left unmapped has no IDF, so
            # it is left out of the profile.
            if key is not None and key in self.idf:
                roles[key] = 1.0

        weighted = {
            skill: role * self.idf.get(skill, 0.0) for skill, role in roles.items()
        }
        norm = math.sqrt(sum(weight * weight for weight in weighted.values()))
        if norm <= 0.0:
            return None
        width = self.column_idf.size
        present = [
            (self.skill_columns[skill], weight)
            for skill, weight in weighted.items()
            if self.skill_columns.get(skill, width) < width and weight > 0
        ]
        return SkillProfile(
            columns=np.array([column for column, _ in present], dtype=np.int64),
            weights=np.array([weight for _, weight in present], dtype=np.float64),
            norm=norm,
        )

    def skill_profile_similarity(
        self,
        features: RegistrantFeatures,
        profile: VacancyProfile,
        rows: NDArray[np.int64],
    ) -> NDArray[np.float64] | None:
        """Return the ``skill_profile`` component of the rows, None if not applicable.

        Parameters
        ----------
        features
            The registrant batch the evidence was built from.
        profile
            The vacancy.
        rows
            (K,) int64 registrant rows.

        Returns
        -------
        ndarray of float64, shape (K,), or None
            Cosine in [0, 1]; 0 for a registrant with no ESCO skill. None when
            the vacancy has no ESCO occupation and lists no ESCO skill.
        """
        self._check_batch(features)
        skills = self.skill_profile(profile)
        if skills is None:
            return None
        vector = np.zeros(self.column_idf.size, dtype=np.float64)
        vector[skills.columns] = skills.weights * self.column_idf[skills.columns]
        dot = np.asarray(features.skills[rows] @ vector, dtype=np.float64)
        norms = self.registrant_norm[rows] * skills.norm
        similarity = np.divide(
            dot, norms, out=np.zeros(rows.size, dtype=np.float64), where=norms > 0
        )
        return np.clip(similarity, 0.0, 1.0)

    def occupation_match(
        self, profile: VacancyProfile, rows: NDArray[np.int64]
    ) -> NDArray[np.float64] | None:
        """Return the ``occupation_match`` component, or None where not applicable.

        The value is the highest normalisation confidence among the
        registrant's occupation claims that map to the vacancy's ESCO
        occupation, and 0 when none does. It does not apply when the vacancy
        has no ESCO occupation or the features carry no normalisation outcome.
        """
        uri = profile.occupation.uri
        if self.occupation_claims is None or uri is None:
            return None
        column = self.occupation_columns.get(uri)
        if column is None:
            return None
        claims = self.occupation_claims[rows][:, [column]].toarray().ravel()
        return np.clip(claims.astype(np.float64), 0.0, 1.0)

    def _check_batch(self, features: RegistrantFeatures) -> None:
        if features.count != self.count or features.skills.shape[1] != (
            self.column_idf.size
        ):
            raise ValueError(
                f"occupation evidence was built for {self.count} registrants and "
                f"{self.column_idf.size} skill columns, but the features have "
                f"{features.count} and {features.skills.shape[1]}; build it again "
                "for this batch"
            )


def _occupation_claims(
    features: RegistrantFeatures, occupation_columns: Mapping[str, int]
) -> sp.csr_array | None:
    """Confidence per (registrant, ESCO occupation), highest over the claims."""
    if not features.occupation_matches:
        return None
    best: dict[tuple[int, int], float] = {}
    for row, matches in enumerate(features.occupation_matches):
        for match in matches:
            column = (
                occupation_columns.get(match.uri) if match.uri is not None else None
            )
            if column is None:
                continue
            key = (row, column)
            best[key] = max(best.get(key, 0.0), float(match.confidence))
    shape = (features.count, max(len(occupation_columns), 1))
    if not best:
        return sp.csr_array(shape, dtype=np.float64)
    rows = np.array([key[0] for key in best], dtype=np.int64)
    columns = np.array([key[1] for key in best], dtype=np.int64)
    values = np.array(list(best.values()), dtype=np.float64)
    return sp.csr_array((values, (rows, columns)), shape=shape)
