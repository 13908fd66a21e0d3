"""Tests for matching.normalise with the real taxonomy and the real model."""

from __future__ import annotations

import random

import numpy as np
import pytest

from matching.embedding import (
    LabelEncoder,
    OccupationProfiles,
    default_profile_path,
    load_sentence_model,
    read_occupation_profiles,
)
from matching.exceptions import ModelLoadError
from matching.normalise import SPELLING_CONFIDENCE, ConceptMatch, Normaliser
from matching.synth import _misspell
from matching.taxonomy import Taxonomy

SOFTWARE_DEVELOPER = (
    "http://data.europa.eu/esco/occupation/f2b15a0e-e65a-438a-affb-29b9d50b77d1"
)
TECHNICAL_DIRECTOR = (
    "http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"
)
MANAGE_MUSICAL_STAFF = (
    "http://data.europa.eu/esco/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab"
)
COMMUNICATE_WITH_CUSTOMERS = (
    "http://data.europa.eu/esco/skill/0da516ee-e70e-4384-be13-f5ff80be8127"
)
FEED_ADDITIVES = "http://data.europa.eu/esco/skill/d112bf1b-70a7-423a-b35b-5616bd3ee02e"
TYPES_OF_WINE = "http://data.europa.eu/esco/skill/30385f84-3f06-4f5b-b93f-e34997013a8b"

NONSENSE = ["qwzx blorft", "asdfgh", "zzxq vvbn plomf"]


@pytest.fixture(scope="module")
def encoder() -> LabelEncoder:
    return LabelEncoder(load_sentence_model())


@pytest.fixture(scope="module")
def normaliser(taxonomy: Taxonomy, encoder: LabelEncoder) -> Normaliser:
    return Normaliser(taxonomy, encoder)


@pytest.fixture(scope="module")
def strict(taxonomy: Taxonomy, encoder: LabelEncoder) -> Normaliser:
    """A normaliser whose thresholds leave every search result unmapped."""
    return Normaliser(taxonomy, encoder, skill_threshold=1.0, occupation_threshold=0.99)


def _skill_uri(taxonomy: Taxonomy, preferred_label: str) -> str:
    return next(
        s.uri for s in taxonomy.skills.values() if s.preferred_label == preferred_label
    )


def test_concept_match_mapped() -> None:
    mapped = ConceptMatch(raw="x", uri="u", label="l", confidence=1.0, method="exact")
    unmapped = ConceptMatch(
        raw="x", uri=None, label=None, confidence=0.2, method="unmapped"
    )
    assert mapped.mapped
    assert not unmapped.mapped


def test_map_skill_preferred_label_exact(normaliser: Normaliser) -> None:
    match = normaliser.map_skill("  Manage   MUSICAL staff ")
    assert match.uri == MANAGE_MUSICAL_STAFF
    assert match.method == "exact"
    assert match.confidence == 1.0
    assert match.label == "manage musical staff"
    assert match.raw == "  Manage   MUSICAL staff "


def test_map_skill_alt_label(normaliser: Normaliser) -> None:
    match = normaliser.map_skill("coordinate duties of musical staff")
    assert match.uri == MANAGE_MUSICAL_STAFF
    assert match.method == "exact"
    assert match.label == "manage musical staff"


def test_map_occupation_alt_label(normaliser: Normaliser) -> None:
    match = normaliser.map_occupation("Head of Technical Department")
    assert match.uri == TECHNICAL_DIRECTOR
    assert match.method == "exact"


def test_map_skill_hidden_label(taxonomy: Taxonomy, normaliser: Normaliser) -> None:
    # The first skill whose hidden label no other concept uses as any label.
    counts: dict[str, int] = {}
    for skill in taxonomy.skills.values():
        labels = (skill.preferred_label, *skill.alt_labels, *skill.hidden_labels)
        for label in {text.lower() for text in labels}:
            counts[label] = counts.get(label, 0) + 1
    skill, hidden = next(
        (skill, label)
        for uri, skill in sorted(taxonomy.skills.items())
        for label in skill.hidden_labels
        if counts[label.lower()] == 1
    )
    match = normaliser.map_skill(hidden)
    assert match.uri == skill.uri
    assert match.method == "exact"


def test_map_skill_misspelt(normaliser: Normaliser) -> None:
    match = normaliser.map_skill("comunicate with custmers")
    assert match.uri == COMMUNICATE_WITH_CUSTOMERS
    assert match.method == "fuzzy"
    assert normaliser.skill_threshold <= match.confidence < 1.0


def test_map_occupation_misspelt(normaliser: Normaliser) -> None:
    match = normaliser.map_occupation("sofware develloper")
    assert match.uri == SOFTWARE_DEVELOPER
    assert match.method == "fuzzy"


def test_map_skill_filler_words(taxonomy: Taxonomy, normaliser: Normaliser) -> None:
    match = normaliser.map_skill("Excellent communication skills")
    assert match.uri == _skill_uri(taxonomy, "communication")
    assert match.method == "fuzzy"


@pytest.mark.parametrize("text", NONSENSE)
def test_map_skill_nonsense_unmapped(normaliser: Normaliser, text: str) -> None:
    match = normaliser.map_skill(text)
    assert match.method == "unmapped"
    assert match.uri is None
    assert match.label is None
    assert match.raw == text
    assert 0.0 < match.confidence < normaliser.skill_threshold


@pytest.mark.parametrize("text", NONSENSE)
def test_map_occupation_nonsense_unmapped(normaliser: Normaliser, text: str) -> None:
    match = normaliser.map_occupation(text)
    assert match.method == "unmapped"
    assert match.uri is None
    assert match.confidence < normaliser.occupation_threshold


@pytest.mark.parametrize("text", ["", "   ", "?!/ --"])
def test_map_skill_blank_unmapped(normaliser: Normaliser, text: str) -> None:
    match = normaliser.map_skill(text)
    assert match.method == "unmapped"
    assert match.confidence == 0.0
    assert match.raw == text


def test_map_skill_uri(normaliser: Normaliser) -> None:
    match = normaliser.map_skill(f" {MANAGE_MUSICAL_STAFF} ")
    assert match.method == "uri"
    assert match.uri == MANAGE_MUSICAL_STAFF
    assert match.label == "manage musical staff"
    assert match.confidence == 1.0


def test_map_occupation_uri(normaliser: Normaliser) -> None:
    match = normaliser.map_occupation(SOFTWARE_DEVELOPER)
    assert match.method == "uri"
    assert match.uri == SOFTWARE_DEVELOPER


@pytest.mark.parametrize(
    "uri",
    [
        "http://data.europa.eu/esco/skill/00000000-0000-0000-0000-000000000000",
        SOFTWARE_DEVELOPER,  # an occupation is not a skill
    ],
)
def test_map_skill_unknown_uri(normaliser: Normaliser, uri: str) -> None:
    match = normaliser.map_skill(uri)
    assert match.method == "unmapped"
    assert match.uri is None
    assert match.confidence == 0.0


def test_map_skills_batch_order(normaliser: Normaliser) -> None:
    texts = [
        "Python",
        "qwzx blorft",
        "python ",
        MANAGE_MUSICAL_STAFF,
        "comunicate with custmers",
    ]
    matches = normaliser.map_skills(texts)
    assert [match.raw for match in matches] == texts
    assert matches[0].uri == matches[2].uri
    assert matches[0].uri is not None
    assert [match.method for match in matches] == [
        "exact",
        "unmapped",
        "exact",
        "uri",
        "fuzzy",
    ]


def test_map_skills_memoised(normaliser: Normaliser) -> None:
    first = normaliser.map_skills(["comunicate with custmers"])[0]
    second = normaliser.map_skills(["Comunicate  with custmers"])[0]
    assert second.uri == first.uri
    assert second.confidence == first.confidence


def test_map_skills_rejects_string(normaliser: Normaliser) -> None:
    with pytest.raises(TypeError, match="not one string"):
        normaliser.map_skills("Python")


def test_map_skill_rejects_non_string(normaliser: Normaliser) -> None:
    with pytest.raises(TypeError, match=r"texts\[0\] has type NoneType"):
        normaliser.map_skill(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["skill_threshold", "occupation_threshold", "lexical_weight"]
)
def test_normaliser_rejects_bad_weights(
    taxonomy: Taxonomy, encoder: LabelEncoder, name: str
) -> None:
    with pytest.raises(ValueError, match=f"{name} is 1.5"):
        Normaliser(taxonomy, encoder, **{name: 1.5})


def test_threshold_one_leaves_fuzzy_unmapped(strict: Normaliser) -> None:
    match = strict.map_skill("comunicate with custmers")
    assert match.method == "unmapped"
    assert 0.5 < match.confidence < 1.0
    assert strict.map_skill("communicate with customers").method == "exact"


def test_one_typo_labels_map(taxonomy: Taxonomy, normaliser: Normaliser) -> None:
    # 30 preferred labels of at least two words, each with one character
    # deleted. 99% of 150 skill labels with one typo mapped correctly during
    # calibration.
    generator = random.Random(7)
    skills = sorted(
        (s for s in taxonomy.skills.values() if len(s.preferred_label.split()) >= 2),
        key=lambda skill: skill.uri,
    )
    sample = generator.sample(skills, 30)
    texts = []
    for skill in sample:
        label = skill.preferred_label
        position = generator.randrange(1, len(label) - 1)
        texts.append(label[:position] + label[position + 1 :])
    matches = normaliser.map_skills(texts)
    correct = sum(
        match.uri == skill.uri for match, skill in zip(matches, sample, strict=True)
    )
    assert correct >= 27, list(zip(texts, [m.label for m in matches], strict=True))


def test_rank_occupations_exact_first(normaliser: Normaliser) -> None:
    ranked = normaliser.rank_occupations("Software Developer", k=5)
    assert ranked[0] == (SOFTWARE_DEVELOPER, 1.0)
    assert len(ranked) == 5
    assert len({uri for uri, _ in ranked}) == 5
    scores = [score for _, score in ranked[1:]]
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= score <= 1.0 for score in scores)


def test_rank_occupations_free_text(taxonomy: Taxonomy, normaliser: Normaliser) -> None:
    ranked = normaliser.rank_occupations("senior java developer", k=12)
    assert len(ranked) == 12
    top_codes = {taxonomy.occupations[uri].isco_code[:2] for uri, _ in ranked[:3]}
    assert "25" in top_codes


def test_rank_occupations_blank(normaliser: Normaliser) -> None:
    assert normaliser.rank_occupations("  ") == []


def test_rank_occupations_rejects_bad_k(normaliser: Normaliser) -> None:
    with pytest.raises(ValueError, match="k is 0"):
        normaliser.rank_occupations("cook", k=0)


def test_semantic_search_proposes_skills(
    taxonomy: Taxonomy, encoder: LabelEncoder, normaliser: Normaliser
) -> None:
    # The skills' preferred-label vectors come from the shipped seed.
    text = "talking to clients on the phone"
    lexical_only = normaliser.map_skill(text)
    semantic = Normaliser(taxonomy, encoder, semantic_search=True).map_skill(text)
    assert lexical_only.method == "unmapped"
    assert semantic.method == "semantic"
    assert semantic.label == "communicate by telephone"


def test_map_occupation_paraphrase(normaliser: Normaliser) -> None:
    match = normaliser.map_occupation("person who cuts hair")
    # Both ESCO occupations cut hair as their main task.
    assert match.label in {"hairdresser", "barber"}
    assert match.confidence >= normaliser.occupation_threshold


@pytest.mark.parametrize(
    ("title", "label"),
    [
        # Job-ad titles from fixtures/reference/jobbert_job_titles_val.csv.gz
        # with the occupation they are labelled with; none is an ESCO label.
        ("Data Analyst (FMCG Sector)", "data analyst"),
        ("Kitchen Helper Moktis Alor Setar", "kitchen assistant"),
        ("Restaurant Operations Manager", "restaurant manager"),
        ("Oracle SQL Developer", "database developer"),
        ("Lorry Driver Needed", "cargo vehicle driver"),
        ("Mobile Developer (Java/Kotlin)", "mobile application developer"),
    ],
)
def test_rank_occupations_job_ad_titles(
    taxonomy: Taxonomy, normaliser: Normaliser, title: str, label: str
) -> None:
    ranked = normaliser.rank_occupations(title, k=10)
    assert taxonomy.occupations[ranked[0][0]].preferred_label == label
    match = normaliser.map_occupation(title)
    assert match.uri == ranked[0][0]
    assert match.confidence == ranked[0][1]


def test_rank_occupations_scores_sum_below_one(normaliser: Normaliser) -> None:
    # Scores are softmax probabilities over all occupations.
    ranked = normaliser.rank_occupations("night shift bread maker", k=50)
    scores = [score for _, score in ranked]
    assert len(ranked) == 50
    assert scores == sorted(scores, reverse=True)
    assert 0.0 < sum(scores) <= 1.0 + 1e-6


def test_map_occupation_threshold_unmaps(strict: Normaliser) -> None:
    match = strict.map_occupation("Restaurant Operations Manager")
    assert match.method == "unmapped"
    assert match.uri is None
    assert 0.0 < match.confidence < 0.99


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("communicate with custommers", "insertion"),
        ("comunicate with customers", "deletion"),
        ("communicate with cuxtomers", "substitution"),
        ("communciate with customers", "transposition"),
        ("communicate wit hcustomers", "transposition across a space"),
    ],
)
def test_spelling_fast_path_one_edit(
    normaliser: Normaliser, text: str, kind: str
) -> None:
    match = normaliser.map_skill(text)
    assert match.uri == COMMUNICATE_WITH_CUSTOMERS, kind
    assert match.method == "fuzzy"
    assert match.confidence == SPELLING_CONFIDENCE


@pytest.mark.parametrize(
    ("text", "uri"),
    [
        # "fed" and "ty" are words of other labels, or too short to correct
        # on their own, so only the one-word-edit pass finds these.
        ("fed additives", FEED_ADDITIVES),
        ("types fo wine", TYPES_OF_WINE),
    ],
)
def test_spelling_fast_path_known_words(
    normaliser: Normaliser, text: str, uri: str
) -> None:
    match = normaliser.map_skill(text)
    assert match.uri == uri
    assert match.confidence == SPELLING_CONFIDENCE


def test_spelling_fast_path_occupation(normaliser: Normaliser) -> None:
    match = normaliser.map_occupation("Sofware Developer")
    assert match.uri == SOFTWARE_DEVELOPER
    assert match.method == "fuzzy"
    assert match.confidence == SPELLING_CONFIDENCE


def test_spelling_fast_path_leaves_short_texts(normaliser: Normaliser) -> None:
    # One edit in a short text changes too much to trust without the search:
    # "fed" is a word of other labels, so only a one-word edit could map it.
    match = normaliser.map_skill("fed")
    assert match.confidence != SPELLING_CONFIDENCE


def test_spelling_fast_path_synthetic_typos(
    taxonomy: Taxonomy, normaliser: Normaliser
) -> None:
    # The typo generator of the synthetic markets, on 300 preferred and
    # alternative labels. 99.8% of 20,000 such typos took the fast path when
    # this was written; the rest go through the search.
    generator = np.random.default_rng(11)
    skills = [taxonomy.skills[uri] for uri in sorted(taxonomy.skills)]
    texts, uris = [], []
    for position in generator.choice(len(skills), size=300, replace=False):
        skill = skills[int(position)]
        labels = (skill.preferred_label, *skill.alt_labels)
        text = _misspell(labels[int(generator.integers(len(labels)))], generator)
        texts.append(text)
        uris.append(skill.uri)
    matches = normaliser.map_skills(texts)
    fast = [match for match in matches if match.confidence == SPELLING_CONFIDENCE]
    correct = sum(match.uri == uri for match, uri in zip(matches, uris, strict=True))
    assert len(fast) >= 285
    assert correct >= 285


def test_spelling_fast_path_off_above_threshold(strict: Normaliser) -> None:
    match = strict.map_skill("comunicate with customers")
    assert match.confidence != SPELLING_CONFIDENCE


@pytest.mark.parametrize(
    ("title", "alt_label", "label"),
    [
        # An ESCO alternative label with a word that no label of the
        # occupation contains, so neither the exact match nor the spelling
        # fast path decides.
        ("experienced lorry driver", "lorry driver", "cargo vehicle driver"),
        ("experienced software engineer", "software engineer", "software developer"),
    ],
)
def test_rank_occupations_extended_alt_labels(
    taxonomy: Taxonomy, normaliser: Normaliser, title: str, alt_label: str, label: str
) -> None:
    occupation = next(
        occupation
        for occupation in taxonomy.occupations.values()
        if occupation.preferred_label == label
    )
    assert alt_label in occupation.alt_labels
    ranked = normaliser.rank_occupations(title, k=5)
    assert taxonomy.occupations[ranked[0][0]].preferred_label == label


def test_rank_occupations_deterministic(normaliser: Normaliser) -> None:
    first = normaliser.rank_occupations("night shift bread maker", k=10)
    fresh = Normaliser(normaliser.taxonomy, normaliser.encoder)
    second = fresh.rank_occupations("night shift bread maker", k=10)
    assert first == second


def test_occupation_profiles_missing_occupation(
    taxonomy: Taxonomy, encoder: LabelEncoder
) -> None:
    shipped = read_occupation_profiles(default_profile_path())
    partial = OccupationProfiles(
        uris=shipped.uris[1:],
        description_vectors=shipped.description_vectors[1:],
        narrower_counts=shipped.narrower_counts[1:],
        description_chars=shipped.description_chars[1:],
        model_name=shipped.model_name,
        taxonomy_version=shipped.taxonomy_version,
    )
    normaliser = Normaliser(taxonomy, encoder, occupation_profiles=partial)
    with pytest.raises(ModelLoadError, match="no row for 1 of"):
        normaliser.rank_occupations("night shift bread maker")
