"""Map free-text skills and occupation titles to ESCO concepts.

Each text goes through these steps, and the first that decides wins:

1. **uri**: the text is an ESCO URI. A known URI maps with confidence 1; an
   unknown one stays unmapped with confidence 0.
2. **exact**: the text equals a preferred, alternative or hidden label, ignoring
   case and repeated whitespace. Confidence 1.
3. **fuzzy** (spelling fast path): the text becomes a label after a spelling
   correction, each word at most one edit (insertion, deletion, substitution
   or adjacent transposition) from a word of the labels. The corrections are
   tried in this order: words not in the label vocabulary and of at least
   four characters, then a transposition across a space, then any one word
   (texts of at least nine characters). Confidence ``SPELLING_CONFIDENCE``.
   The path costs tens of microseconds per text and is skipped when the
   threshold is above that confidence.
4. **fuzzy** / **semantic** for skills: the text is searched for, lower-cased
   and without filler words that job ads add ("excellent ... skills").
   rapidfuzz proposes the concepts whose labels are closest in spelling. With
   ``semantic_search=True`` the concepts whose preferred labels are nearest in
   embedding space are proposed as well. Each proposed concept scores
   ``max(lexical_weight * wratio + (1 - lexical_weight) * cosine,
   qratio - 0.2)``. Here ``wratio`` and ``qratio`` are the best rapidfuzz
   WRatio and QRatio of the text against the concept's labels, scaled to
   [0, 1]. ``cosine`` is the cosine similarity, clipped at 0, between the
   embeddings of the text and of the concept's preferred label. The second
   term keeps misspelt labels mapping (see ``_SPELLING_MARGIN``). The best
   concept wins. Its method is "fuzzy" when rapidfuzz proposed it and
   "semantic" when only the embedding search did.
5. **fuzzy** / **semantic** for occupations: every occupation is ranked
   against the title without its bracketed parts and filler words ("urgent
   hiring"). The score is linear in embedding cosines with the occupation's
   labels, their centroid, its essential skills and the first sentence of its
   ESCO description. It adds rapidfuzz and word-overlap scores and priors
   from the taxonomy's structure, such as the number of narrower occupations
   (see ``_OccupationRanker``). The confidence is the softmax probability of the
   top occupation among all occupations. The method is "fuzzy" when the
   title shares a word with a label of that occupation and "semantic"
   otherwise.
6. **unmapped**: the best score is below the threshold. The match keeps the
   raw text and the best score as its confidence.

The label indexes are built on first use and memoised results are kept per
normalised text, so one :class:`Normaliser` should be reused across calls.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process, utils
from rapidfuzz.distance import OSA
from scipy import sparse

from matching.embedding import (
    LabelEncoder,
    OccupationProfiles,
    default_profile_path,
    normalise_label,
    read_occupation_profiles,
)
from matching.exceptions import ModelLoadError
from matching.taxonomy import Occupation, Skill, Taxonomy

logger = logging.getLogger(__name__)

MatchMethod = Literal["uri", "exact", "fuzzy", "semantic", "unmapped"]

ESCO_URI_PREFIX = "http://data.europa.eu/esco/"

# Calibrated with semantic_search off on these sets:
# - 47 job-ad skill phrases and 289 job-ad skill spans labelled with ESCO skills
# - 150 ESCO skill labels with one typo, and 150 with two
# - 214 job-ad skill spans whose labellers found no ESCO skill
# - 10 nonsense strings
# At 0.68 no nonsense string maps (the best scores 0.51, and 0.63 with
# semantic_search). 99% of one-typo and 89% of two-typo skill labels map to the
# right concept. 24% of the spans with no ESCO skill still map. Of the labelled
# spans 45% map to the labelled skill, 20% to another and 35% stay unmapped.
# A score at or above the threshold maps.
DEFAULT_SKILL_THRESHOLD = 0.68
# The occupation confidence is the softmax probability of the top occupation
# (see _OccupationRanker). On 3,000 titles of the tuning half of the JobBERT
# validation set, 73% reach 0.1. Of those, 41% have the labelled occupation
# first, against 33% of all titles, because the labels are noisy. Ten
# nonsense strings score at most 0.04. Of 300 occupation labels with one
# typo, 98% take the spelling fast path and 97% map to the right occupation.
DEFAULT_OCCUPATION_THRESHOLD = 0.1
# The embedding gets the larger share because it separates lexically similar
# concepts. Weights from 0.3 to 0.5 scored within 3 points of each other on
# the labelled sets above.
DEFAULT_LEXICAL_WEIGHT = 0.4
# all-MiniLM-L6-v2 splits misspelt words into unrelated word pieces, so one or
# two typos can drop the cosine to about 0.2. A concept whose label is spelt
# almost like the text (QRatio, a plain edit-distance ratio) therefore also
# scores QRatio minus this margin: a QRatio of 0.88 or more maps at the default
# thresholds whatever the cosine.
_SPELLING_MARGIN = 0.2

# Labels kept per text by the cheap first pass over every label (QRatio through
# rapidfuzz.process.cdist), and concepts kept after the WRatio rescoring.
_FIRST_PASS_LABELS = 40
_CANDIDATE_CONCEPTS = 8
_SEMANTIC_CONCEPTS = 8
# Texts per cdist call: bounds the (texts x labels) uint8 score matrix to about
# 256 x 112k = 29 MB.
_CDIST_CHUNK = 256

_LABEL_PRIORITY = {"preferred": 0, "alt": 1, "hidden": 2}

# Confidence of a text mapped by the spelling fast path: one edit per word
# away from a label, so just below an exact match.
SPELLING_CONFIDENCE = 0.95
# Only words of at least this many characters that are not in the label
# vocabulary are corrected. Shorter words have too many neighbours one edit
# away ("ail" is one edit from "aid", "air", "all", "mail", ...).
_MIN_CORRECTED_WORD = 4
# Corrected phrases tried per text when several words have candidates.
_MAX_SPELLING_PHRASES = 32
# A known word, or one shorter than _MIN_CORRECTED_WORD, is replaced only in
# texts of at least this many characters. There one edit keeps the rapidfuzz
# QRatio at 0.88 or more, which maps on the full path too (_SPELLING_MARGIN).
_MIN_EDITED_PHRASE = 9

# Words that job ads wrap around a skill or title but that no ESCO label needs.
# They are removed from the search text only, never from exact matching, and a
# text made only of them is searched as it is.
_SKILL_FILLER_WORDS = frozenset(
    {
        "skills",
        "skill",
        "good",
        "excellent",
        "strong",
        "proven",
        "solid",
        "great",
        "sound",
    }
)
_TITLE_FILLER_WORDS = frozenset(
    {
        "urgent",
        "urgently",
        "hiring",
        "vacancy",
        "vacancies",
        "wanted",
        "required",
        "immediate",
        "needed",
        "position",
        "job",
    }
)


@dataclass(frozen=True)
class ConceptMatch:
    """Outcome of mapping one text to an ESCO concept.

    Attributes
    ----------
    raw
        The text as given.
    uri
        ESCO URI of the concept, or None when unmapped.
    label
        Preferred label of the concept, or None when unmapped.
    confidence
        Score in [0, 1]. For an unmapped text it is the best score found.
    method
        "uri", "exact", "fuzzy", "semantic" or "unmapped" (see the module docs).
    """

    raw: str
    uri: str | None
    label: str | None
    confidence: float
    method: MatchMethod

    @property
    def mapped(self) -> bool:
        """Whether the text was mapped to a concept."""
        return self.uri is not None


@dataclass(frozen=True)
class _Decision:
    uri: str | None
    label: str | None
    confidence: float
    method: MatchMethod


class _LabelIndex:
    """Labels of one concept kind (skills or occupations) in search-ready form."""

    def __init__(self, concepts: Sequence[Skill | Occupation]) -> None:
        started = time.perf_counter()
        self.uris: list[str] = [concept.uri for concept in concepts]
        self.preferred: list[str] = [concept.preferred_label for concept in concepts]
        self.position: dict[str, int] = {
            uri: index for index, uri in enumerate(self.uris)
        }

        # Normalised label -> (priority, concept) pairs, for exact matches.
        self.exact: dict[str, list[tuple[int, int]]] = {}
        # rapidfuzz-processed label -> concepts, for fuzzy matches.
        processed: dict[str, list[int]] = {}
        self.concept_labels: list[tuple[str, ...]] = []
        for index, concept in enumerate(concepts):
            labelled = (
                [("preferred", concept.preferred_label)]
                + [("alt", label) for label in concept.alt_labels]
                + [("hidden", label) for label in concept.hidden_labels]
            )
            own_processed = []
            for kind, label in labelled:
                key = normalise_label(label)
                if key:
                    self.exact.setdefault(key, []).append(
                        (_LABEL_PRIORITY[kind], index)
                    )
                choice = utils.default_process(label)
                if choice:
                    owners = processed.setdefault(choice, [])
                    if not owners or owners[-1] != index:
                        owners.append(index)
                    own_processed.append(choice)
            self.concept_labels.append(tuple(dict.fromkeys(own_processed)))
        self.choices: list[str] = list(processed)
        self.choice_concepts: list[tuple[int, ...]] = [
            tuple(owners) for owners in processed.values()
        ]
        self._semantic_matrix: NDArray[np.float32] | None = None
        self._spelling: _SpellingIndex | None = None
        # Memoised choice among the owners of a shared label.
        self._exact_choice: dict[str, int] = {}
        logger.debug(
            "indexed %d concepts, %d exact keys, %d fuzzy choices in %.2f s",
            len(self.uris),
            len(self.exact),
            len(self.choices),
            time.perf_counter() - started,
        )

    @property
    def spelling(self) -> _SpellingIndex:
        """Spelling correction over the words of this kind's labels, built on first use."""
        if self._spelling is None:
            self._spelling = _SpellingIndex(self.exact)
        return self._spelling

    def correct_spelling(self, key: str) -> int | None:
        """Return the concept whose label ``key`` misspells by one edit per word."""
        for phrase in itertools.chain(
            self.spelling.corrected_phrases(key),
            _boundary_swaps(key),
            self.spelling.one_word_edits(key),
        ):
            concept = self.exact_concept(phrase)
            if concept is not None:
                return concept
        return None

    def exact_concept(self, key: str) -> int | None:
        """Return the concept a label key maps to exactly, or None."""
        concept = self._exact_choice.get(key)
        if concept is None:
            owners = self.exact.get(key)
            if not owners:
                return None
            concept = _pick_exact_owner(self, key, owners)
            self._exact_choice[key] = concept
        return concept

    def semantic_matrix(
        self, encoder: LabelEncoder, *, show_progress: bool = False
    ) -> NDArray[np.float32]:
        """Return the (concepts, dim) matrix of preferred-label vectors."""
        if self._semantic_matrix is None:
            self._semantic_matrix = encoder.encode(
                self.preferred, show_progress=show_progress
            )
        return self._semantic_matrix


class _SpellingIndex:
    """Word-level spelling correction over the words of one kind's labels.

    A SymSpell-style index for edit distance 1: every vocabulary word, and
    every string made by deleting one character from it, points back to the
    word. A misspelt word finds its candidates by looking itself and its own
    single deletions up. That covers an inserted, deleted or substituted
    character, and an adjacent transposition ("wlder" and "welder" share
    "wder"). Candidates are then checked with the optimal string alignment
    distance, which counts a transposition as one edit.
    """

    def __init__(self, label_keys: Iterable[str]) -> None:
        started = time.perf_counter()
        counts: dict[str, int] = {}
        for key in label_keys:
            for word in key.split(" "):
                counts[word] = counts.get(word, 0) + 1
        self.frequency = counts
        # Most frequent first, so each lookup list is already in tie order.
        by_frequency = sorted(counts, key=lambda word: (-counts[word], word))
        lookup: dict[str, list[str]] = {}
        for word in by_frequency:
            for variant in dict.fromkeys((word, *_single_deletions(word))):
                lookup.setdefault(variant, []).append(word)
        self._lookup = {variant: tuple(words) for variant, words in lookup.items()}
        logger.debug(
            "indexed %d label words, %d lookup keys in %.2f s",
            len(counts),
            len(self._lookup),
            time.perf_counter() - started,
        )

    def candidates(self, word: str) -> list[str]:
        """Return the vocabulary words one edit from ``word``, most frequent first."""
        checked = {word}
        found = []
        for variant in (word, *_single_deletions(word)):
            for candidate in self._lookup.get(variant, ()):
                if candidate in checked:
                    continue
                checked.add(candidate)
                # Two different deletions can meet in a word two edits away.
                if OSA.distance(word, candidate, score_cutoff=1) <= 1:
                    found.append(candidate)
        return sorted(
            found, key=lambda candidate: (-self.frequency[candidate], candidate)
        )

    def corrected_phrases(self, key: str) -> Iterator[str]:
        """Yield spellings of ``key`` with its unknown words corrected, best first.

        Only words not in the vocabulary and of at least
        ``_MIN_CORRECTED_WORD`` characters are replaced. Nothing is yielded
        when no word needs correcting or an unknown word has no candidate.
        """
        options: list[list[str]] = []
        corrected = False
        for word in key.split(" "):
            if word in self.frequency or len(word) < _MIN_CORRECTED_WORD:
                options.append([word])
                continue
            candidates = self.candidates(word)
            if not candidates:
                return
            options.append(candidates)
            corrected = True
        if not corrected:
            return
        phrases = itertools.product(*options)
        for words in itertools.islice(phrases, _MAX_SPELLING_PHRASES):
            yield " ".join(words)

    def one_word_edits(self, key: str) -> Iterator[str]:
        """Yield ``key`` with any one word replaced by a word one edit away.

        Catches the typos that :meth:`corrected_phrases` leaves alone: in a
        short word ("fo" for "of"), or one that makes another vocabulary word
        ("fed" for "feed"). Nothing is yielded for keys shorter than
        ``_MIN_EDITED_PHRASE`` characters, where one edit changes too much.
        """
        if len(key) < _MIN_EDITED_PHRASE:
            return
        words = key.split(" ")
        for position, word in enumerate(words):
            for candidate in self.candidates(word):
                yield " ".join([*words[:position], candidate, *words[position + 1 :]])


def _single_deletions(word: str) -> list[str]:
    return [word[:position] + word[position + 1 :] for position in range(len(word))]


def _boundary_swaps(key: str) -> Iterator[str]:
    """Yield ``key`` with each character next to a non-alphanumeric one swapped.

    Undoes a transposition across a word boundary ("wel dmetal"), which the
    word-level correction cannot see.
    """
    for position in range(len(key) - 1):
        first, second = key[position], key[position + 1]
        if first == second or (first.isalnum() and second.isalnum()):
            continue
        swapped = key[:position] + second + first + key[position + 2 :]
        yield normalise_label(swapped)


# Words that carry no occupation in a job title, beside _TITLE_FILLER_WORDS.
# "cum" joins two roles in South and South-East Asian job ads ("driver cum
# clerk").
_TITLE_STOP_WORDS = frozenset(
    {"and", "or", "of", "for", "the", "a", "an", "in", "on", "at", "to", "with", "cum"}
)
# Bracketed parts of a job title ("(Mandarin speaker)", "[urgent]") mostly name
# a place, a language or a shift, so the title is searched without them.
_TITLE_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]")

# Weights of the occupation ranking score, a linear function of the features
# listed in _OccupationRanker. They were fitted on the tuning half of the
# JobBERT validation titles, split as benchmarks/bench_titles.py splits them,
# by listwise logistic regression (a softmax over all 3,007 occupations, L2
# penalty 1e-3 on the weights). Scores go through a softmax over occupations,
# so a constant added to every score changes nothing. A bonus for title words
# in the ISCO unit group's title, and one for a shared head noun, got weights
# near 0 and were dropped. These gained under 0.002 MRR on the same half and
# were dropped too: softmax pooling over labels, ISCO-group maxima, cosines
# with skill labels, and scoring the parts of a title split at "/", "-" or
# "cum" separately. So was a linear adapter of the vectors, trained on ESCO
# labels only to pull each label towards its occupation's centroid.
# NOTE: many of those titles come from Malaysian job boards and their labels
# are noisy; titles from other sources may rank better with other weights.
_RANKING_WEIGHTS = {
    "cos_max": 5.367,
    "cos_centroid": 4.944,
    "cos_skills": 3.471,
    "cos_description": 3.256,
    "token_sort": 1.463,
    "title_coverage": 2.0,
    "preferred_coverage": -2.277,
    "preferred_recall": 2.684,
    "log_group_size": -0.3,
    "centrality": 2.653,
    "group_centrality": 2.09,
    "log_narrower": -2.031,
    "log_description_chars": -0.379,
}
# Titles scored per batch: bounds the (titles x labels) cosine matrix to
# about 256 x 33k float32, 34 MB.
_RANKING_CHUNK = 256


def _stem_word(word: str) -> str:
    """Strip an English plural ending, so "engineers" matches "engineer"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _title_words(text: str) -> list[str]:
    """Return the distinct stemmed content words of a title or label."""
    words = utils.default_process(text).split()
    stemmed = (_stem_word(word) for word in words if word not in _TITLE_STOP_WORDS)
    return list(dict.fromkeys(stemmed))


def _clean_title(key: str) -> str:
    """Return a title key without bracketed parts and filler words."""
    without_brackets = _TITLE_BRACKETS.sub(" ", key)
    words = [
        word
        for word in without_brackets.split()
        if utils.default_process(word) not in _TITLE_FILLER_WORDS
    ]
    return " ".join(words) or key


class _OccupationRanker:
    """Score every occupation against job titles with the taxonomy's structure.

    The score of a (title, occupation) pair is the sum of these features,
    each times its weight in ``_RANKING_WEIGHTS``:

    - ``cos_max``: best cosine between the title and any label of the
      occupation (preferred, alternative, hidden);
    - ``cos_centroid``: cosine with the mean vector of those labels;
    - ``cos_skills``: cosine with the mean vector of the preferred labels of
      the occupation's essential skills;
    - ``token_sort``: best rapidfuzz token_sort_ratio against its labels;
    - ``title_coverage``: share of the title's words, weighted by inverse
      document frequency over occupations, that appear in any of its labels;
    - ``preferred_coverage``: the same against its preferred label only;
    - ``preferred_recall``: share of its preferred label's weighted words
      that appear in the title;
    - ``cos_description``: cosine with the vector of the first sentence of
      its ESCO description;
    - priors independent of the title. ``log_group_size`` is the log of the
      number of occupations in its ISCO unit group. ``centrality`` is the
      mean cosine between its centroid and every other occupation's, and
      ``group_centrality`` the same within its ISCO sub-major group.
      ``log_narrower`` is the log of one plus the number of narrower
      occupations in the ESCO hierarchy, and ``log_description_chars`` the
      log of the length of its ESCO description.

    All label vectors come from the encoder, so from the shipped seed when
    there is one. The description vectors and the hierarchy counts come from
    the occupation profile file (see :func:`read_occupation_profiles`).
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        index: _LabelIndex,
        encoder: LabelEncoder,
        profiles: OccupationProfiles,
    ) -> None:
        started = time.perf_counter()
        occupations = [taxonomy.occupations[uri] for uri in index.uris]
        label_keys: list[str] = []
        starts: list[int] = []
        for occupation in occupations:
            starts.append(len(label_keys))
            label_keys.extend(_occupation_label_keys(occupation))
        self.encoder = encoder
        self.label_starts = np.array(starts, dtype=np.intp)
        # token_sort_ratio is the Indel ratio of the strings with their words
        # sorted. Sorting the 33k labels once, instead of in every cdist call,
        # makes a one-title call about 30 times faster.
        self.label_sorted_words = [
            _sorted_words(utils.default_process(key)) for key in label_keys
        ]
        self.label_vectors = encoder.encode(label_keys)
        self.centroids = _row_normalised(
            np.add.reduceat(self.label_vectors, self.label_starts, axis=0)
        )
        self.skill_centroids = _skill_centroids(taxonomy, index.uris, encoder)

        rows = _profile_rows(profiles, index.uris)
        self.description_vectors = _row_normalised(
            profiles.description_vectors[rows].astype(np.float32)
        )
        self._build_word_matrices(occupations, label_keys)

        self.prior_features = self._prior_features(occupations)
        self.prior_features["log_narrower"] = np.log1p(
            profiles.narrower_counts[rows]
        ).astype(np.float32)
        self.prior_features["log_description_chars"] = np.log(
            np.maximum(profiles.description_chars[rows], 1)
        ).astype(np.float32)
        self.prior = sum(
            (
                _RANKING_WEIGHTS[name] * values
                for name, values in self.prior_features.items()
            ),
            np.zeros(len(occupations), dtype=np.float32),
        ).astype(np.float32)
        logger.debug(
            "built the occupation ranker over %d labels in %.2f s",
            len(label_keys),
            time.perf_counter() - started,
        )

    def _build_word_matrices(
        self, occupations: Sequence[Occupation], label_keys: Sequence[str]
    ) -> None:
        count = len(occupations)
        ends = [*self.label_starts[1:], len(label_keys)]
        occupation_words = [
            set().union(*(_title_words(key) for key in label_keys[start:end]))
            for start, end in zip(self.label_starts, ends, strict=True)
        ]
        preferred_words = [
            _title_words(occupation.preferred_label) for occupation in occupations
        ]

        frequency: dict[str, int] = {}
        for words in occupation_words:
            for word in words:
                frequency[word] = frequency.get(word, 0) + 1
        self.vocabulary = {
            word: column for column, word in enumerate(sorted(frequency))
        }
        self.idf = np.array(
            [
                np.log((count + 1) / (frequency[word] + 0.5))
                for word in sorted(frequency)
            ],
            dtype=np.float32,
        )
        # A title word no label contains weighs as much as the rarest word.
        self.unknown_idf = float(np.log(count + 1))

        # Word x occupation matrices, stored transposed once for the products
        # in _score_chunk: 0/1 membership in any label, 0/1 membership in the
        # preferred label, and the preferred label's idf weights.
        occupation_matrix = self._word_matrix(occupation_words)
        preferred_matrix = self._word_matrix(preferred_words)
        preferred_weights = preferred_matrix.multiply(self.idf[None, :]).tocsr()
        self.occupation_words_t = occupation_matrix.T.tocsr()
        self.preferred_words_t = preferred_matrix.T.tocsr()
        self.preferred_weights_t = preferred_weights.T.tocsr()
        self.preferred_totals = np.asarray(preferred_weights.sum(axis=1)).ravel() + 1e-9

    def _word_matrix(self, word_sets: Sequence[Iterable[str]]) -> sparse.csr_matrix:
        rows, columns = [], []
        for row, words in enumerate(word_sets):
            for word in words:
                column = self.vocabulary.get(word)
                if column is not None:
                    rows.append(row)
                    columns.append(column)
        values = np.ones(len(rows), dtype=np.float32)
        shape = (len(word_sets), len(self.vocabulary))
        return sparse.csr_matrix((values, (rows, columns)), shape=shape)

    def _prior_features(
        self, occupations: Sequence[Occupation]
    ) -> dict[str, NDArray[np.float32]]:
        group_sizes: dict[str, int] = {}
        for occupation in occupations:
            group_sizes[occupation.isco_code] = (
                group_sizes.get(occupation.isco_code, 0) + 1
            )
        log_group_size = np.log(
            [group_sizes[occupation.isco_code] for occupation in occupations]
        )
        similarity = self.centroids @ self.centroids.T
        np.fill_diagonal(similarity, 0.0)
        count = len(occupations)
        centrality = similarity.sum(axis=1) / max(count - 1, 1)
        sub_major = np.array([occupation.isco_code[:2] for occupation in occupations])
        group_centrality = np.zeros(count)
        for code in np.unique(sub_major):
            members = np.flatnonzero(sub_major == code)
            if len(members) > 1:
                block = similarity[np.ix_(members, members)]
                group_centrality[members] = block.sum(axis=1) / (len(members) - 1)
        return {
            "log_group_size": log_group_size.astype(np.float32),
            "centrality": centrality.astype(np.float32),
            "group_centrality": group_centrality.astype(np.float32),
        }

    def score_titles(
        self, keys: Sequence[str]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Return the ranking scores of every occupation for each title key.

        Returns
        -------
        scores
            (len(keys), occupations) float32 array; higher is better.
        shares_word
            Boolean array of the same shape: whether the title and a label of
            the occupation share a content word.
        """
        cleaned = [_clean_title(key) for key in keys]
        vectors = self.encoder.encode(cleaned)
        scores = []
        shares = []
        for start in range(0, len(keys), _RANKING_CHUNK):
            chunk = slice(start, start + _RANKING_CHUNK)
            chunk_scores, chunk_shares = self._score_chunk(
                cleaned[chunk], vectors[chunk]
            )
            scores.append(chunk_scores)
            shares.append(chunk_shares)
        return np.concatenate(scores), np.concatenate(shares)

    def _score_chunk(
        self, cleaned: Sequence[str], vectors: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        features = self.title_features(cleaned, vectors)
        scores = np.tile(self.prior, (len(cleaned), 1))
        for name, values in features.items():
            scores += _RANKING_WEIGHTS[name] * values
        return scores.astype(np.float32), features["title_coverage"] > 0

    def title_features(
        self, cleaned: Sequence[str], vectors: NDArray[np.float32]
    ) -> dict[str, NDArray[np.float32]]:
        """Return each title-dependent feature as a (titles, occupations) array.

        The coverage features are already divided by the title's idf total
        and the preferred label's, as the ranking score uses them.
        """
        similarity = vectors @ self.label_vectors.T
        features = {
            "cos_max": np.maximum.reduceat(similarity, self.label_starts, axis=1),
            "cos_centroid": vectors @ self.centroids.T,
            "cos_skills": vectors @ self.skill_centroids.T,
            "cos_description": vectors @ self.description_vectors.T,
        }

        queries = [utils.default_process(text) for text in cleaned]
        token_sort = process.cdist(
            [_sorted_words(query) for query in queries],
            self.label_sorted_words,
            scorer=fuzz.ratio,
            dtype=np.uint8,
            workers=-1,
        )
        best_token_sort = np.maximum.reduceat(token_sort, self.label_starts, axis=1)
        features["token_sort"] = best_token_sort.astype(np.float32) / 100.0

        title_weights, title_present, totals = self._title_word_vectors(queries)
        title_coverage = (title_weights @ self.occupation_words_t).toarray()
        preferred_coverage = (title_weights @ self.preferred_words_t).toarray()
        preferred_recall = (title_present @ self.preferred_weights_t).toarray()
        features["title_coverage"] = title_coverage / totals[:, None]
        features["preferred_coverage"] = preferred_coverage / totals[:, None]
        features["preferred_recall"] = preferred_recall / self.preferred_totals
        return features

    def _title_word_vectors(
        self, queries: Sequence[str]
    ) -> tuple[sparse.csr_matrix, sparse.csr_matrix, NDArray[np.float32]]:
        """Return each title's idf-weighted and 0/1 word rows and its idf total."""
        rows, columns, totals = [], [], []
        for row, query in enumerate(queries):
            total = 0.0
            for word in _title_words(query):
                column = self.vocabulary.get(word)
                if column is None:
                    total += self.unknown_idf
                    continue
                total += float(self.idf[column])
                rows.append(row)
                columns.append(column)
            totals.append(max(total, 1e-9))
        shape = (len(queries), len(self.vocabulary))
        present = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)), shape=shape
        )
        weighted = present.multiply(self.idf[None, :]).tocsr()
        return weighted, present, np.array(totals, dtype=np.float32)


def _profile_rows(profiles: OccupationProfiles, uris: Sequence[str]) -> NDArray[np.intp]:
    """Return the row of each URI in the profile file, which must cover them all."""
    position = {uri: row for row, uri in enumerate(profiles.uris)}
    missing = [uri for uri in uris if uri not in position]
    if missing:
        raise ModelLoadError(
            f"the occupation profile file has no row for {len(missing)} of the "
            f"taxonomy's occupations, for example {missing[0]}; rebuild it with "
            "`python scripts/build_occupation_profiles.py`"
        )
    return np.array([position[uri] for uri in uris], dtype=np.intp)


def _sorted_words(text: str) -> str:
    return " ".join(sorted(text.split()))


def _occupation_label_keys(occupation: Occupation) -> list[str]:
    labels = (
        occupation.preferred_label,
        *occupation.alt_labels,
        *occupation.hidden_labels,
    )
    return [key for key in dict.fromkeys(map(normalise_label, labels)) if key]


def _skill_centroids(
    taxonomy: Taxonomy, uris: Sequence[str], encoder: LabelEncoder
) -> NDArray[np.float32]:
    """Return the normalised mean vector of each occupation's essential skills."""
    skill_keys: dict[str, int] = {}
    members: list[list[int]] = []
    for uri in uris:
        rows = []
        for skill_uri in taxonomy.essential_skills(uri):
            key = normalise_label(taxonomy.skills[skill_uri].preferred_label)
            rows.append(skill_keys.setdefault(key, len(skill_keys)))
        members.append(rows)
    dimension = encoder.dim
    if not skill_keys:
        return np.zeros((len(uris), dimension), dtype=np.float32)
    skill_vectors = encoder.encode(list(skill_keys))
    centroids = np.zeros((len(uris), dimension), dtype=np.float32)
    for row, rows in enumerate(members):
        if rows:
            centroids[row] = skill_vectors[rows].mean(axis=0)
    return _row_normalised(centroids)


def _row_normalised(matrix: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalised: NDArray[np.float32] = (matrix / np.maximum(norms, 1e-12)).astype(
        np.float32
    )
    return normalised


class Normaliser:
    """Map free-text skills and occupation titles to ESCO concepts.

    Parameters
    ----------
    taxonomy
        ESCO concepts to map to.
    encoder
        Embeds texts and preferred labels for re-ranking. When None, a
        memory-only :class:`LabelEncoder` is created, which loads the model on
        first use.
    skill_threshold, occupation_threshold
        Minimum confidence in [0, 1] for a fuzzy or semantic match to count.
        For skills it is the combined score of the search, for occupations
        the softmax probability of the top occupation (see the module docs).
        A threshold above ``SPELLING_CONFIDENCE`` turns the spelling fast
        path off for that kind.
    lexical_weight
        Weight in [0, 1] of the rapidfuzz score in the combined score; the
        embedding cosine gets the rest.
    semantic_search
        Also propose the skills whose preferred labels are nearest in
        embedding space. This needs the vector of every skill preferred label
        (13,896 in ESCO v1.1.1), which the encoder reads from its seed.
        Occupations are always ranked against every occupation's labels.
    occupation_profiles
        Description vectors and hierarchy counts of every occupation for the
        occupation ranking. When None, the shipped file for the encoder's
        model and taxonomy version is read on the first occupation search,
        and a missing file raises :class:`ModelLoadError` then.

    Notes
    -----
    Results are memoised by normalised text, so repeated texts cost one dict
    lookup. ``map_skills`` batches the rapidfuzz pass and the embedding of
    all texts that need them. One instance may be shared between threads;
    calls are serialised.

    Measured on a 2-core VM shared with other jobs, per new distinct skill
    text: exact and alternative labels 0.015 ms, URIs 0.008 ms, one-typo
    labels on the spelling fast path 0.05 ms, and texts that need the search
    10 to 30 ms, mostly for embedding the text itself. The label vectors of
    candidate concepts come from the encoder's seed. The first use of each
    kind builds its label index (0.7 s for skills) and its spelling index
    (0.7 s). The first occupation search builds the occupation ranker
    (2 s), which needs the vectors of all 33,093 occupation labels. Without
    a seed, embedding them takes minutes.

    NOTE: the memo grows with every distinct text and is never trimmed, so a
    long-running service should replace the instance now and then.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        encoder: LabelEncoder | None = None,
        *,
        skill_threshold: float = DEFAULT_SKILL_THRESHOLD,
        occupation_threshold: float = DEFAULT_OCCUPATION_THRESHOLD,
        lexical_weight: float = DEFAULT_LEXICAL_WEIGHT,
        semantic_search: bool = False,
        occupation_profiles: OccupationProfiles | None = None,
    ) -> None:
        if not isinstance(taxonomy, Taxonomy):
            raise TypeError(
                f"taxonomy must be a Taxonomy, not {type(taxonomy).__name__}"
            )
        for name, value in (
            ("skill_threshold", skill_threshold),
            ("occupation_threshold", occupation_threshold),
            ("lexical_weight", lexical_weight),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is {value}, but it must be between 0 and 1")
        self.taxonomy = taxonomy
        self.encoder = encoder if encoder is not None else LabelEncoder()
        self.skill_threshold = float(skill_threshold)
        self.occupation_threshold = float(occupation_threshold)
        self.lexical_weight = float(lexical_weight)
        self.semantic_search = bool(semantic_search)
        self._indexes: dict[str, _LabelIndex] = {}
        self._ranker: _OccupationRanker | None = None
        self._profiles = occupation_profiles
        self._memo: dict[str, dict[str, _Decision]] = {"skill": {}, "occupation": {}}
        self._lock = threading.RLock()

    def map_skill(self, text: str) -> ConceptMatch:
        """Map one skill text to an ESCO skill.

        Parameters
        ----------
        text
            Free text, an ESCO label, or an ESCO skill URI.

        Returns
        -------
        ConceptMatch

        Raises
        ------
        TypeError
            If ``text`` is not a string.
        """
        return self.map_skills([text])[0]

    def map_skills(self, texts: Sequence[str]) -> list[ConceptMatch]:
        """Map many skill texts to ESCO skills in one batch.

        Parameters
        ----------
        texts
            Free texts, ESCO labels or ESCO skill URIs.

        Returns
        -------
        list of ConceptMatch
            One match per text, in input order.

        Raises
        ------
        TypeError
            If ``texts`` is a single string or contains a non-string.
        """
        return self._map("skill", texts)

    def map_occupation(self, title: str) -> ConceptMatch:
        """Map one job title to an ESCO occupation.

        Parameters
        ----------
        title
            Free text, an ESCO label, or an ESCO occupation URI.

        Returns
        -------
        ConceptMatch

        Raises
        ------
        TypeError
            If ``title`` is not a string.
        """
        return self._map("occupation", [title])[0]

    def map_occupations(self, titles: Sequence[str]) -> list[ConceptMatch]:
        """Map many job titles to ESCO occupations in one batch.

        Parameters
        ----------
        titles
            Free texts, ESCO labels or ESCO occupation URIs.

        Returns
        -------
        list of ConceptMatch
            One match per title, in input order.

        Raises
        ------
        TypeError
            If ``titles`` is a single string or contains a non-string.
        """
        return self._map("occupation", titles)

    def rank_occupations(self, title: str, k: int = 10) -> list[tuple[str, float]]:
        """Return the occupations that best match a job title, best first.

        Parameters
        ----------
        title
            Free text, an ESCO label, or an ESCO occupation URI.
        k
            Maximum number of occupations to return.

        Returns
        -------
        list of (str, float)
            Occupation URI and score in [0, 1]. A URI or exact label match
            comes first with score 1, and a spelling fast-path match with
            ``SPELLING_CONFIDENCE``. The other scores are softmax
            probabilities over all occupations, so they sum to at most 1.
            The list is empty when the title has no letters or digits. No
            threshold is applied.

        Notes
        -----
        About 20 to 45 ms per title on a 2-core VM shared with other jobs
        (38 ms on average over 15,318 titles at a load average near 5), plus
        embedding the title when it is not cached. On the held-out half of
        the JobBERT validation titles the top 10 give an MRR of 0.41 (see
        ``benchmarks/bench_titles.py``).

        Raises
        ------
        TypeError
            If ``title`` is not a string or ``k`` is not an int.
        ValueError
            If ``k`` is less than 1.
        """
        if not isinstance(title, str):
            raise TypeError(f"title must be a str, not {type(title).__name__}")
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"k must be an int, not {type(k).__name__}")
        if k < 1:
            raise ValueError(f"k is {k}, but it must be at least 1")
        with self._lock:
            index = self._index("occupation")
            key = normalise_label(title)
            ranked: dict[str, float] = {}
            decided = self._decide_without_search(index, title, key)
            if decided is None:
                decided = _decide_by_spelling(index, key)
            if decided is not None and decided.uri is not None:
                ranked[decided.uri] = decided.confidence
            if not _search_texts("occupation", key)[0] or title.strip().startswith(
                ESCO_URI_PREFIX
            ):
                return list(ranked.items())[:k]

            scores, _shares_word = self._occupation_ranker().score_titles([key])
            probabilities = _softmax(scores[0])
            # Ties go to the smaller URI: the index is sorted by URI.
            order = np.lexsort((np.arange(len(probabilities)), -probabilities))
            for concept in order[: k + len(ranked)]:
                ranked.setdefault(
                    index.uris[concept], round(float(probabilities[concept]), 6)
                )
            return list(ranked.items())[:k]

    def warm_cache(self, *, show_progress: bool = False) -> int:
        """Embed the preferred label of every ESCO skill and occupation.

        Re-ranking uses the preferred labels of candidate concepts as they
        come up, and ``semantic_search`` needs all of them. With the shipped
        seed they are read, not embedded. Without it, calling this once per
        encoder cache folder moves the cost of embedding them up front.

        Parameters
        ----------
        show_progress
            Show the sentence-transformers progress bar.

        Returns
        -------
        int
            Number of preferred labels embedded or read from the cache.

        Notes
        -----
        ESCO v1.1.1 has 16,903 preferred labels. Embedding them took about
        two minutes on a 2-core AMD EPYC VM; a later call with the same
        disk cache reads them in well under a second.
        """
        with self._lock:
            total = 0
            for kind in ("skill", "occupation"):
                index = self._index(kind)
                index.semantic_matrix(self.encoder, show_progress=show_progress)
                total += len(index.preferred)
            return total

    def _index(self, kind: str) -> _LabelIndex:
        index = self._indexes.get(kind)
        if index is None:
            concepts: Mapping[str, Skill] | Mapping[str, Occupation]
            if kind == "skill":
                concepts = self.taxonomy.skills
            else:
                concepts = self.taxonomy.occupations
            index = _LabelIndex([concepts[uri] for uri in sorted(concepts)])
            self._indexes[kind] = index
        return index

    def _occupation_ranker(self) -> _OccupationRanker:
        if self._ranker is None:
            if self._profiles is None:
                self._profiles = read_occupation_profiles(
                    default_profile_path(
                        self.encoder.model_name, self.encoder.taxonomy_version
                    )
                )
            self._ranker = _OccupationRanker(
                self.taxonomy, self._index("occupation"), self.encoder, self._profiles
            )
        return self._ranker

    def _threshold(self, kind: str) -> float:
        return self.skill_threshold if kind == "skill" else self.occupation_threshold

    def _map(self, kind: str, texts: Sequence[str]) -> list[ConceptMatch]:
        if isinstance(texts, str):
            raise TypeError(
                "texts must be a sequence of strings, not one string; wrap it in a list"
            )
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(
                    f"texts[{position}] has type {type(text).__name__}, "
                    "but texts must be strings"
                )
        with self._lock:
            memo = self._memo[kind]
            keys = [_memo_key(text) for text in texts]
            pending = [
                (key, text)
                for key, text in dict(zip(keys, texts, strict=True)).items()
                if key not in memo
            ]
            if pending:
                self._decide_batch(kind, pending)
            return [
                _to_match(text, memo[key])
                for key, text in zip(keys, texts, strict=True)
            ]

    def _decide_batch(self, kind: str, pending: Sequence[tuple[str, str]]) -> None:
        started = time.perf_counter()
        index = self._index(kind)
        memo = self._memo[kind]
        searched: list[str] = []
        # A threshold above the fast path's confidence turns the fast path off.
        use_spelling = self._threshold(kind) <= SPELLING_CONFIDENCE
        for key, text in pending:
            decided = self._decide_without_search(index, text, key)
            if decided is None and use_spelling:
                decided = _decide_by_spelling(index, key)
            if decided is not None:
                memo[key] = decided
            elif not _search_texts(kind, key)[0]:
                # Only punctuation or symbols, so rapidfuzz and the model get
                # nothing to compare.
                memo[key] = _Decision(None, None, 0.0, "unmapped")
            else:
                searched.append(key)
        if searched:
            self._search_batch(kind, index, searched)
        logger.debug(
            "mapped %d %s texts (%d searched) in %.2f s",
            len(pending),
            kind,
            len(searched),
            time.perf_counter() - started,
        )

    def _decide_without_search(
        self, index: _LabelIndex, text: str, key: str
    ) -> _Decision | None:
        """Return the URI or exact-label decision, or None when a search is needed."""
        if not key:
            return _Decision(None, None, 0.0, "unmapped")
        stripped = text.strip()
        if stripped.startswith(ESCO_URI_PREFIX):
            position = index.position.get(stripped)
            if position is None:
                return _Decision(None, None, 0.0, "unmapped")
            return _Decision(
                index.uris[position], index.preferred[position], 1.0, "uri"
            )
        concept = index.exact_concept(key)
        if concept is not None:
            return _Decision(
                index.uris[concept], index.preferred[concept], 1.0, "exact"
            )
        return None

    def _search_batch(self, kind: str, index: _LabelIndex, keys: Sequence[str]) -> None:
        if kind == "occupation":
            self._rank_batch(index, keys)
            return
        memo = self._memo[kind]
        threshold = self._threshold(kind)
        texts = [_search_texts(kind, key) for key in keys]
        for start in range(0, len(keys), _CDIST_CHUNK):
            chunk = keys[start : start + _CDIST_CHUNK]
            queries = [query for query, _ in texts[start : start + _CDIST_CHUNK]]
            model_texts = [
                model_text for _, model_text in texts[start : start + _CDIST_CHUNK]
            ]
            scored = self._score_candidates(index, queries, model_texts)
            for key, candidates in zip(chunk, scored, strict=True):
                memo[key] = _best_decision(index, candidates, threshold)

    def _rank_batch(self, index: _LabelIndex, keys: Sequence[str]) -> None:
        """Map job titles to the top occupation of the ranking, or leave them unmapped."""
        memo = self._memo["occupation"]
        scores, shares_word = self._occupation_ranker().score_titles(keys)
        for row, key in enumerate(keys):
            probabilities = _softmax(scores[row])
            concept = int(np.argmax(probabilities))
            confidence = round(float(probabilities[concept]), 6)
            if confidence < self.occupation_threshold:
                memo[key] = _Decision(None, None, confidence, "unmapped")
                continue
            method: MatchMethod = "fuzzy" if shares_word[row, concept] else "semantic"
            memo[key] = _Decision(
                index.uris[concept], index.preferred[concept], confidence, method
            )

    def _score_candidates(
        self,
        index: _LabelIndex,
        queries: Sequence[str],
        model_texts: Sequence[str],
        *,
        concept_limit: int = _CANDIDATE_CONCEPTS,
    ) -> list[dict[int, tuple[float, bool]]]:
        """Score the candidate concepts of each text.

        ``queries`` are the rapidfuzz forms and ``model_texts`` the model forms
        of the same texts. Returns, per text, concept position -> (combined
        score, proposed only by the embedding search).
        """
        lexical = _lexical_candidates(
            index, queries, max(concept_limit, _CANDIDATE_CONCEPTS)
        )
        semantic: list[set[int]] = [set() for _ in queries]
        if self.semantic_search:
            query_vectors = self.encoder.encode(model_texts)
            semantic_limit = min(
                max(concept_limit, _SEMANTIC_CONCEPTS), len(index.uris)
            )
            similarities = query_vectors @ index.semantic_matrix(self.encoder).T
            for row, scores in enumerate(similarities):
                nearest = np.argpartition(-scores, semantic_limit - 1)[:semantic_limit]
                semantic[row] = {int(concept) for concept in nearest}

        # One encode call for the texts and all candidate labels: on a busy
        # 2-core machine each call of the model costs 0.1 to 0.5 s on its own.
        needed = sorted(
            {concept for row in lexical for concept in row}.union(*semantic)
        )
        vectors = self.encoder.encode(
            [*model_texts, *(index.preferred[concept] for concept in needed)]
        )
        query_vectors = vectors[: len(model_texts)]
        vector_of = {
            concept: vectors[len(model_texts) + position]
            for position, concept in enumerate(needed)
        }

        results = []
        for row, query in enumerate(queries):
            candidates: dict[int, tuple[float, bool]] = {}
            for concept in lexical[row].keys() | semantic[row]:
                by_search = concept not in lexical[row]
                lexical_score = lexical[row].get(concept)
                if lexical_score is None:
                    lexical_score = _score_labels(query, index.concept_labels[concept])
                cosine = max(float(np.dot(query_vectors[row], vector_of[concept])), 0.0)
                fused = (
                    self.lexical_weight * lexical_score.weighted
                    + (1.0 - self.lexical_weight) * cosine
                )
                spelled = lexical_score.spelling - _SPELLING_MARGIN
                candidates[concept] = (min(max(fused, spelled, 0.0), 1.0), by_search)
            results.append(candidates)
        return results


def _softmax(scores: NDArray[np.float32]) -> NDArray[np.float64]:
    shifted: NDArray[np.float64] = np.exp(
        scores.astype(np.float64) - float(scores.max())
    )
    return shifted / float(shifted.sum())


def _decide_by_spelling(index: _LabelIndex, key: str) -> _Decision | None:
    """Return the spelling fast path's decision, or None when it finds no label."""
    concept = index.correct_spelling(key)
    if concept is None:
        return None
    return _Decision(
        index.uris[concept], index.preferred[concept], SPELLING_CONFIDENCE, "fuzzy"
    )


def _search_texts(kind: str, key: str) -> tuple[str, str]:
    """Return the texts that rapidfuzz and the model search for.

    The rapidfuzz text is lower case with punctuation replaced by spaces, as the
    label choices are. The model text keeps punctuation ("c++", "c#").
    """
    words = key.split()
    filler = _SKILL_FILLER_WORDS if kind == "skill" else _TITLE_FILLER_WORDS
    kept = [word for word in words if utils.default_process(word) not in filler]
    words = kept or words
    model_text = " ".join(words)
    return utils.default_process(model_text), model_text


def _memo_key(text: str) -> str:
    stripped = text.strip()
    # URIs are case-sensitive; labels are not.
    return stripped if stripped.startswith(ESCO_URI_PREFIX) else normalise_label(text)


def _to_match(text: str, decision: _Decision) -> ConceptMatch:
    return ConceptMatch(
        raw=text,
        uri=decision.uri,
        label=decision.label,
        confidence=decision.confidence,
        method=decision.method,
    )


def _pick_exact_owner(
    index: _LabelIndex, key: str, owners: Sequence[tuple[int, int]]
) -> int:
    """Choose among concepts sharing a label: preferred over alt over hidden,
    then the preferred label closest in spelling, then the smallest URI."""
    best_priority = min(priority for priority, _ in owners)
    tied = sorted(
        {concept for priority, concept in owners if priority == best_priority}
    )
    if len(tied) == 1:
        return tied[0]
    return max(
        tied,
        key=lambda concept: (
            fuzz.ratio(key, index.preferred[concept].lower()),
            -concept,
        ),
    )


@dataclass(frozen=True)
class _LexicalScore:
    """Best rapidfuzz scores, in [0, 1], of a text against one concept's labels."""

    weighted: float  # WRatio: tolerant of word order and partial overlap
    spelling: float  # QRatio: normalised Levenshtein similarity of whole strings


def _lexical_candidates(
    index: _LabelIndex, queries: Sequence[str], concept_limit: int
) -> list[dict[int, _LexicalScore]]:
    """Return, per query, the lexical scores of the top candidate concepts."""
    # QRatio over every label is cheap (a few ms per query); WRatio is about
    # 100 times slower, so it only rescores the first pass's shortlist.
    first_pass = process.cdist(
        queries, index.choices, scorer=fuzz.QRatio, dtype=np.uint8, workers=-1
    )
    limit = min(max(_FIRST_PASS_LABELS, 4 * concept_limit), len(index.choices))
    results = []
    for query, scores in zip(queries, first_pass, strict=True):
        if limit < len(scores):
            shortlist = np.argpartition(scores, -limit)[-limit:]
        else:
            shortlist = np.arange(len(scores))
        weighted: dict[int, float] = {}
        spelling: dict[int, float] = {}
        for choice in shortlist:
            weighted_score = fuzz.WRatio(query, index.choices[choice]) / 100.0
            spelling_score = float(scores[choice]) / 100.0
            for concept in index.choice_concepts[choice]:
                weighted[concept] = max(weighted.get(concept, 0.0), weighted_score)
                spelling[concept] = max(spelling.get(concept, 0.0), spelling_score)
        ranked = sorted(weighted, key=lambda concept: (-weighted[concept], concept))[
            :concept_limit
        ]
        results.append(
            {
                concept: _LexicalScore(weighted[concept], spelling[concept])
                for concept in ranked
            }
        )
    return results


def _score_labels(query: str, labels: Sequence[str]) -> _LexicalScore:
    """Return the lexical scores of a query against all labels of one concept."""
    if not labels:
        return _LexicalScore(0.0, 0.0)
    weighted = process.extractOne(query, labels, scorer=fuzz.WRatio)
    spelling = process.extractOne(query, labels, scorer=fuzz.QRatio)
    return _LexicalScore(
        float(weighted[1]) / 100.0 if weighted is not None else 0.0,
        float(spelling[1]) / 100.0 if spelling is not None else 0.0,
    )


def _best_decision(
    index: _LabelIndex, candidates: dict[int, tuple[float, bool]], threshold: float
) -> _Decision:
    if not candidates:
        return _Decision(None, None, 0.0, "unmapped")
    concept, (score, by_search) = max(
        candidates.items(), key=lambda item: (item[1][0], -item[0])
    )
    if score < threshold:
        return _Decision(None, None, round(score, 6), "unmapped")
    method: MatchMethod = "semantic" if by_search else "fuzzy"
    return _Decision(
        index.uris[concept], index.preferred[concept], round(score, 6), method
    )
