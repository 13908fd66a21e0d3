"""Benchmark mapping real job-ad titles to ESCO occupations.

Reads ``fixtures/reference/jobbert_job_titles_val.csv.gz``: 15,463 job-ad
titles, each labelled with the preferred label of an ESCO v1.0.5 occupation.
Rows whose label is not a v1.1.1 preferred label are dropped, and the count is
printed. Each method ranks up to 10 occupations per title:

- ``rapidfuzz``: rapidfuzz alone over the preferred and alternative labels.
  A token_sort_ratio pass over every label keeps the 200 best labels, WRatio
  rescores them, and an occupation scores its best label. (WRatio over every
  label costs about 0.2 s per title on 2 cores.)
- ``embedding``: all-MiniLM-L6-v2 alone. An occupation scores the best cosine
  between the title and its preferred and alternative labels, whose vectors
  come from the shipped seed.
- ``product``: ``Normaliser.rank_occupations``, the ranking the engine uses:
  label, description and skill cosines, rapidfuzz and word-overlap scores and
  priors from the ESCO hierarchy and ISCO groups.

It reports top-1 and top-5 accuracy and the mean reciprocal rank over the top
10 (a title whose occupation is not in the top 10 counts 0). The rows are
split in two halves by a seeded shuffle: the 13 weights of the product
ranking were fitted on the ``tuning`` half, and features were kept or dropped
by their gain there, so the ``held-out`` half gives the honest figure. No
other parameter of any method was learnt from this file. The ``all`` rows
cover the whole file.

Run, for example::

    python benchmarks/bench_titles.py                # about 10 minutes on 2 cores
    python benchmarks/bench_titles.py --limit 500    # 500 sampled rows of each half
    python benchmarks/bench_titles.py --write        # also write benchmarks/results/titles.md
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process, utils

from matching.embedding import LabelEncoder, normalise_label
from matching.normalise import Normaliser
from matching.taxonomy import DEFAULT_FIXTURES_DIR, Taxonomy, load_taxonomy

TITLES_FILE = DEFAULT_FIXTURES_DIR / "reference" / "jobbert_job_titles_val.csv.gz"
RESULTS_FILE = Path(__file__).resolve().parent / "results" / "titles.md"
# Seed of the shuffle that splits the rows into the tuning and held-out halves.
# The product ranking's weights were tuned on the tuning half of this split.
SPLIT_SEED = 20240601
TOP_K = 10
# Labels kept by the token_sort_ratio pass of the rapidfuzz method.
RAPIDFUZZ_SHORTLIST = 200

Ranking = list[str]


@dataclass(frozen=True)
class TitleSet:
    """Job titles with the URI of their labelled occupation."""

    titles: tuple[str, ...]
    uris: tuple[str, ...]
    dropped: int


@dataclass(frozen=True)
class Scores:
    """Ranking quality of one method on one set of rows."""

    rows: int
    top1: float
    top5: float
    mrr: float
    seconds: float


def load_titles(taxonomy: Taxonomy, path: Path = TITLES_FILE) -> TitleSet:
    """Read the titles and map each label to a v1.1.1 occupation by preferred label."""
    by_label = {
        normalise_label(occupation.preferred_label): occupation.uri
        for occupation in taxonomy.occupations.values()
    }
    titles: list[str] = []
    uris: list[str] = []
    dropped = 0
    with gzip.open(path, "rt", encoding="utf-8", newline="") as stream:
        for row in csv.DictReader(stream):
            uri = by_label.get(
                normalise_label(row["esco_occupation_preferred_label_v1_0_5"])
            )
            if uri is None or not row["job_title"].strip():
                dropped += 1
                continue
            titles.append(row["job_title"])
            uris.append(uri)
    return TitleSet(tuple(titles), tuple(uris), dropped)


def split_halves(count: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Return the row positions of the tuning half and the held-out half.

    Each half is in shuffled order, so its first N rows are a random sample:
    the file is sorted by label, and its first rows would cover few labels.
    """
    order = np.random.default_rng(seed).permutation(count)
    middle = count // 2
    return order[:middle], order[middle:]


def score_rankings(
    rankings: Sequence[Ranking], truth: Sequence[str], seconds: float
) -> Scores:
    """Return top-1, top-5 and MRR@10 of rankings against the true URIs."""
    reciprocal = []
    top1 = top5 = 0
    for ranking, uri in zip(rankings, truth, strict=True):
        ranking = ranking[:TOP_K]
        rank = ranking.index(uri) + 1 if uri in ranking else 0
        top1 += rank == 1
        top5 += 1 <= rank <= 5
        reciprocal.append(1.0 / rank if rank else 0.0)
    count = len(truth)
    return Scores(
        count, top1 / count, top5 / count, float(np.mean(reciprocal)), seconds
    )


class LabelTable:
    """Preferred and alternative labels of every occupation, one row per label."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.uris = sorted(taxonomy.occupations)
        labels: list[str] = []
        owners: list[int] = []
        for position, uri in enumerate(self.uris):
            occupation = taxonomy.occupations[uri]
            for label in dict.fromkeys(
                normalise_label(text)
                for text in (occupation.preferred_label, *occupation.alt_labels)
            ):
                labels.append(label)
                owners.append(position)
        self.labels = labels
        self.owners = np.array(owners, dtype=np.intp)
        self.processed = [utils.default_process(label) for label in labels]

    def top_occupations(self, label_scores: np.ndarray) -> Ranking:
        """Return the URIs of the best occupations, each scored by its best label."""
        best = np.full(len(self.uris), -np.inf)
        np.maximum.at(best, self.owners, label_scores)
        count = min(TOP_K, len(best))
        top = np.argpartition(-best, count - 1)[:count]
        top = top[np.lexsort((top, -best[top]))]
        return [self.uris[position] for position in top if np.isfinite(best[position])]


def rank_rapidfuzz(titles: Sequence[str], table: LabelTable) -> list[Ranking]:
    """Rank occupations by the best WRatio of the title against their labels."""
    rankings = []
    queries = [utils.default_process(title) for title in titles]
    for start in range(0, len(queries), 256):
        chunk = queries[start : start + 256]
        first_pass = process.cdist(
            chunk,
            table.processed,
            scorer=fuzz.token_sort_ratio,
            dtype=np.uint8,
            workers=-1,
        )
        for query, scores in zip(chunk, first_pass, strict=True):
            shortlist = np.argpartition(scores, -RAPIDFUZZ_SHORTLIST)[
                -RAPIDFUZZ_SHORTLIST:
            ]
            label_scores = np.full(len(table.labels), -np.inf)
            for label in shortlist:
                label_scores[label] = fuzz.WRatio(query, table.processed[label])
            rankings.append(table.top_occupations(label_scores))
    return rankings


def rank_embedding(
    titles: Sequence[str], table: LabelTable, encoder: LabelEncoder
) -> list[Ranking]:
    """Rank occupations by the best cosine of the title against their labels."""
    label_vectors = encoder.encode(table.labels)
    title_vectors = encoder.encode([" ".join(title.split()) or "-" for title in titles])
    rankings = []
    for start in range(0, len(titles), 256):
        similarities = title_vectors[start : start + 256] @ label_vectors.T
        rankings.extend(table.top_occupations(row) for row in similarities)
    return rankings


def rank_product(titles: Sequence[str], normaliser: Normaliser) -> list[Ranking]:
    """Rank occupations with ``Normaliser.rank_occupations``."""
    return [
        [uri for uri, _ in normaliser.rank_occupations(title, k=TOP_K)]
        for title in titles
    ]


def machine_line() -> str:
    processor = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({processor}), "
        f"Python {platform.python_version()}"
    )


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return (
        f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} (1, 5, 15 min) "
        "when the table was written"
    )


def format_table(
    results: dict[str, dict[str, Scores]], title_set: TitleSet, argv: Sequence[str]
) -> str:
    command = shlex.join(["python", "benchmarks/bench_titles.py", *argv])
    lines = [
        "## Job-title normalisation",
        "",
        f"- command: `{command}`",
        f"- machine: {machine_line()}",
        f"- date: {dt.date.today().isoformat()}",
        f"- load: {load_line()}",
        f"- data: `{TITLES_FILE.relative_to(TITLES_FILE.parents[2])}`, "
        f"{len(title_set.titles):,} titles kept, {title_set.dropped} dropped "
        "(label not a v1.1.1 preferred label)",
        f"- split: seeded shuffle (seed {SPLIT_SEED}); product weights fitted on "
        "the tuning half, so held-out is the honest figure",
        "",
        "| method | rows | titles | top-1 | top-5 | MRR@10 | titles/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for method, by_rows in results.items():
        for rows, scores in by_rows.items():
            rate = scores.rows / scores.seconds if scores.seconds > 0 else float("nan")
            lines.append(
                f"| {method} | {rows} | {scores.rows:,} | {scores.top1:.3f} | "
                f"{scores.top5:.3f} | {scores.mrr:.3f} | {rate:,.0f} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="evaluate a seeded sample of N rows of each half (default: all rows)",
    )
    parser.add_argument(
        "--methods",
        default="rapidfuzz,embedding,product",
        help="comma-separated methods to run (default: all three)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="label-vector disk cache for the title vectors (default: memory only)",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"also write the table to {RESULTS_FILE.relative_to(RESULTS_FILE.parents[2])}",
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit is {args.limit}, but it must be at least 1")
    unknown = set(args.methods.split(",")) - {"rapidfuzz", "embedding", "product"}
    if unknown:
        parser.error(
            f"--methods names {', '.join(sorted(unknown))}; choose from rapidfuzz, "
            "embedding, product"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    taxonomy = load_taxonomy()
    title_set = load_titles(taxonomy)
    tuning, held_out = split_halves(len(title_set.titles))
    if args.limit is not None:
        tuning, held_out = tuning[: args.limit], held_out[: args.limit]
    print(
        f"{len(title_set.titles):,} titles kept, {title_set.dropped} dropped; "
        f"evaluating {len(tuning):,} tuning and {len(held_out):,} held-out rows",
        file=sys.stderr,
    )
    rows = np.concatenate([tuning, held_out])
    titles = [title_set.titles[row] for row in rows]
    truth = [title_set.uris[row] for row in rows]

    encoder = LabelEncoder(cache_dir=args.cache_dir)
    table = LabelTable(taxonomy)
    normaliser = Normaliser(taxonomy, encoder)
    # The title vectors are computed once, up front, and shared by the two
    # methods that embed; their time is left out of the titles/s column.
    encoder.encode([" ".join(title.split()) or "-" for title in titles])
    methods: dict[str, Callable[[], list[Ranking]]] = {
        "rapidfuzz": lambda: rank_rapidfuzz(titles, table),
        "embedding": lambda: rank_embedding(titles, table, encoder),
        "product": lambda: rank_product(titles, normaliser),
    }

    results: dict[str, dict[str, Scores]] = {}
    halves = {
        "tuning": slice(0, len(tuning)),
        "held-out": slice(len(tuning), len(rows)),
        "all": slice(0, len(rows)),
    }
    for name in args.methods.split(","):
        started = time.perf_counter()
        rankings = methods[name]()
        seconds = time.perf_counter() - started
        results[name] = {
            half: score_rankings(
                rankings[part],
                truth[part],
                seconds * (part.stop - part.start) / len(rows),
            )
            for half, part in halves.items()
        }
        print(f"{name}: {seconds:.1f} s", file=sys.stderr)

    table_text = format_table(results, title_set, argv)
    print(table_text)
    if args.write:
        RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_FILE.write_text(table_text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
