"""Build the reference fixtures in ``fixtures/`` from the raw public data.

Reads the ESCO v1.1.1 CSV release (classification and relations zips) and a few
small reference tables, keeps only the columns the engine uses and writes
gzip-compressed CSVs plus ``fixtures/MANIFEST.json``.

The output is byte-for-byte deterministic: rows are sorted, gzip headers carry
no file name and a zero modification time, and the manifest has no timestamps.

Usage::

    python scripts/build_fixtures.py [--data-dir ../shared/data] [--out-dir fixtures]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import shutil
import sys
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT_DIR = REPO_ROOT / "fixtures"

TAXONOMY_VERSION = "esco-1.1.1"

CLASSIFICATION_ZIP = Path("esco_v1.1.1/ESCO_dataset_v1.1.1_classification_en_csv.zip")
RELATIONS_ZIP = Path("esco_v1.1.1/ESCO_dataset_v1.1.1_classification_relations_csv.zip")
SHORTAGE_CSV = Path("shortage_lists/eu_eures_shortage_occupations.csv")
QUOTAS_CSV = Path("quotas/bilateral_labour_migration_quotas.csv")
JOB_TITLES_CSV = Path("dev/jobbert_job_titles_val.csv")

# Separator of list cells in the fixtures. ESCO itself separates list items with
# newlines inside one cell; no v1.1.1 label contains "|", and the build checks it.
LIST_SEPARATOR = "|"

UNREGULATED_URI = "http://data.europa.eu/esco/regulated-professions/unregulated"

OCCUPATION_COLUMNS = (
    "uri",
    "isco_code",
    "preferred_label",
    "alt_labels",
    "hidden_labels",
    "regulated",
)
SKILL_COLUMNS = (
    "uri",
    "preferred_label",
    "alt_labels",
    "hidden_labels",
    "skill_type",
    "reuse_level",
)
RELATION_COLUMNS = ("occupation_uri", "skill_uri", "relation_type")
ISCO_COLUMNS = ("code", "level", "title")
RELATION_TYPES = ("essential", "optional")


def read_zip_csv(archive: Path, member: str) -> Iterator[dict[str, str]]:
    """Yield the rows of one CSV member of a zip archive as string dicts."""
    with zipfile.ZipFile(archive) as zipped, zipped.open(member) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield from csv.DictReader(text)


def clean_label(label: str) -> str:
    """Return ``label`` with its whitespace (no-break spaces included) collapsed."""
    return " ".join(label.split())


def clean_label_list(cell: str, *, exclude: Iterable[str] = ()) -> list[str]:
    """Split an ESCO newline-separated list cell into cleaned, de-duplicated labels.

    Labels in ``exclude`` (for example the preferred label) are dropped, so each
    label appears once per concept. The original order is kept.
    """
    seen = set(exclude)
    labels = []
    for item in cell.split("\n"):
        label = clean_label(item)
        if label and label not in seen:
            seen.add(label)
            labels.append(label)
    for label in labels:
        if LIST_SEPARATOR in label:
            raise ValueError(
                f"label {label!r} contains the list separator {LIST_SEPARATOR!r}; "
                "choose another LIST_SEPARATOR before rebuilding"
            )
    return labels


def is_regulated(note: str) -> bool:
    """Return whether an ESCO regulatedProfessionNote marks a regulated profession.

    The ESCO "unregulated" URI and an empty note both count as not regulated.
    An empty note means unknown; the engine treats unknown as not regulated.
    """
    note = note.strip()
    return bool(note) and note != UNREGULATED_URI


def build_occupations(archive: Path) -> list[dict[str, str]]:
    """Return the occupation rows, sorted by URI."""
    rows = []
    for source in read_zip_csv(archive, "occupations_en.csv"):
        preferred = clean_label(source["preferredLabel"])
        alt_labels = clean_label_list(source["altLabels"], exclude=[preferred])
        hidden_labels = clean_label_list(
            source["hiddenLabels"], exclude=[preferred, *alt_labels]
        )
        isco_code = source["iscoGroup"].strip()
        if not (len(isco_code) == 4 and isco_code.isdigit()):
            raise ValueError(
                f"occupation {source['conceptUri']} has iscoGroup {isco_code!r}, "
                "but ESCO occupations must sit in a 4-digit ISCO-08 unit group"
            )
        rows.append(
            {
                "uri": source["conceptUri"].strip(),
                "isco_code": isco_code,
                "preferred_label": preferred,
                "alt_labels": LIST_SEPARATOR.join(alt_labels),
                "hidden_labels": LIST_SEPARATOR.join(hidden_labels),
                "regulated": "true"
                if is_regulated(source["regulatedProfessionNote"])
                else "false",
            }
        )
    rows.sort(key=lambda row: row["uri"])
    return rows


def build_skills(archive: Path) -> list[dict[str, str]]:
    """Return the skill rows, sorted by URI."""
    rows = []
    for source in read_zip_csv(archive, "skills_en.csv"):
        preferred = clean_label(source["preferredLabel"])
        alt_labels = clean_label_list(source["altLabels"], exclude=[preferred])
        hidden_labels = clean_label_list(
            source["hiddenLabels"], exclude=[preferred, *alt_labels]
        )
        rows.append(
            {
                "uri": source["conceptUri"].strip(),
                "preferred_label": preferred,
                "alt_labels": LIST_SEPARATOR.join(alt_labels),
                "hidden_labels": LIST_SEPARATOR.join(hidden_labels),
                "skill_type": source["skillType"].strip(),
                "reuse_level": source["reuseLevel"].strip(),
            }
        )
    rows.sort(key=lambda row: row["uri"])
    return rows


def build_relations(
    archive: Path, occupation_uris: set[str], skill_uris: set[str]
) -> tuple[list[dict[str, str]], dict[str, int]]:
    """Return the occupation-skill relation rows and the counts of dropped rows.

    Rows whose occupation or skill is missing from the classification files are
    dropped and counted, and so are exact duplicates.
    """
    kept: set[tuple[str, str, str]] = set()
    dropped = {"unknown_occupation": 0, "unknown_skill": 0, "duplicate": 0}
    for source in read_zip_csv(archive, "occupationSkillRelations.csv"):
        relation_type = source["relationType"].strip()
        if relation_type not in RELATION_TYPES:
            raise ValueError(
                f"relationType {relation_type!r} is not one of {RELATION_TYPES}"
            )
        key = (
            source["occupationUri"].strip(),
            source["skillUri"].strip(),
            relation_type,
        )
        if key[0] not in occupation_uris:
            dropped["unknown_occupation"] += 1
        elif key[1] not in skill_uris:
            dropped["unknown_skill"] += 1
        elif key in kept:
            dropped["duplicate"] += 1
        else:
            kept.add(key)
    ordered = sorted(kept, key=lambda key: (key[0], key[2], key[1]))
    rows = [dict(zip(RELATION_COLUMNS, key, strict=True)) for key in ordered]
    return rows, dropped


def build_isco_groups(archive: Path) -> list[dict[str, str]]:
    """Return the ISCO-08 groups of all four levels, sorted by code."""
    rows = []
    for source in read_zip_csv(archive, "ISCOGroups_en.csv"):
        code = source["code"].strip()
        if not (1 <= len(code) <= 4 and code.isdigit()):
            raise ValueError(f"ISCO group code {code!r} is not 1 to 4 digits")
        rows.append(
            {
                "code": code,
                "level": str(len(code)),
                "title": clean_label(source["preferredLabel"]),
            }
        )
    rows.sort(key=lambda row: row["code"])
    return rows


def write_gzip_csv(
    path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]
) -> None:
    """Write rows as a gzip-compressed CSV with a fixed header and no gzip timestamp."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_gzip_bytes(path, buffer.getvalue().encode("utf-8"))


def write_gzip_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` gzip-compressed with an empty file name and mtime 0."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0
        ) as compressed,
    ):
        compressed.write(payload)


def count_csv_rows(payload: bytes) -> int:
    """Return the number of records (header excluded) in UTF-8 CSV bytes."""
    reader = csv.reader(io.StringIO(payload.decode("utf-8"), newline=""))
    return sum(1 for _ in reader) - 1


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def require_inputs(data_dir: Path) -> None:
    """Raise FileNotFoundError naming every input file missing under ``data_dir``."""
    inputs = (
        CLASSIFICATION_ZIP,
        RELATIONS_ZIP,
        SHORTAGE_CSV,
        QUOTAS_CSV,
        JOB_TITLES_CSV,
    )
    missing = [
        str(data_dir / name) for name in inputs if not (data_dir / name).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            "missing input files: " + ", ".join(missing) + "; pass the folder that "
            "contains esco_v1.1.1/, shortage_lists/, quotas/ and dev/ with --data-dir"
        )


def build(data_dir: Path, out_dir: Path) -> dict[str, object]:
    """Build every fixture file under ``out_dir`` and return the manifest written.

    Parameters
    ----------
    data_dir
        Folder with the raw reference data (``esco_v1.1.1/``, ``shortage_lists/``,
        ``quotas/``, ``dev/``).
    out_dir
        Fixture folder; ``esco/`` and ``reference/`` are created inside it.

    Returns
    -------
    dict
        The content of ``MANIFEST.json``.
    """
    require_inputs(data_dir)
    esco_dir = out_dir / "esco"
    reference_dir = out_dir / "reference"
    esco_dir.mkdir(parents=True, exist_ok=True)
    reference_dir.mkdir(parents=True, exist_ok=True)

    classification = data_dir / CLASSIFICATION_ZIP
    occupations = build_occupations(classification)
    skills = build_skills(classification)
    relations, dropped = build_relations(
        data_dir / RELATIONS_ZIP,
        {row["uri"] for row in occupations},
        {row["uri"] for row in skills},
    )
    isco_groups = build_isco_groups(classification)

    tables = {
        "esco/occupations.csv.gz": (OCCUPATION_COLUMNS, occupations),
        "esco/skills.csv.gz": (SKILL_COLUMNS, skills),
        "esco/occupation_skill_relations.csv.gz": (RELATION_COLUMNS, relations),
        "esco/isco_groups.csv.gz": (ISCO_COLUMNS, isco_groups),
    }
    files: dict[str, dict[str, object]] = {}
    for name, (columns, rows) in tables.items():
        write_gzip_csv(out_dir / name, columns, rows)
        files[name] = {"rows": len(rows)}

    for source, name in (
        (SHORTAGE_CSV, "reference/eu_eures_shortage_occupations.csv"),
        (QUOTAS_CSV, "reference/bilateral_labour_migration_quotas.csv"),
    ):
        shutil.copyfile(data_dir / source, out_dir / name)
        files[name] = {"rows": count_csv_rows((out_dir / name).read_bytes())}

    job_titles = (data_dir / JOB_TITLES_CSV).read_bytes()
    write_gzip_bytes(out_dir / "reference/jobbert_job_titles_val.csv.gz", job_titles)
    files["reference/jobbert_job_titles_val.csv.gz"] = {
        "rows": count_csv_rows(job_titles)
    }

    for name, entry in files.items():
        entry["sha256"] = sha256_of(out_dir / name)

    manifest: dict[str, object] = {
        "taxonomy_version": TAXONOMY_VERSION,
        "files": files,
        "dropped_relations": dropped,
        "sources": {
            str(name): sha256_of(data_dir / name)
            for name in (
                CLASSIFICATION_ZIP,
                RELATIONS_ZIP,
                SHORTAGE_CSV,
                QUOTAS_CSV,
                JOB_TITLES_CSV,
            )
        },
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out_dir / "MANIFEST.json").write_text(text, encoding="utf-8")
    return manifest


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=(
            "folder with the raw reference data "
            "(default: ../shared/data next to the repository)"
        ),
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="fixture folder to write (default: fixtures/ in the repository)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Build the fixtures and print one line per file written."""
    args = parse_args(argv)
    try:
        manifest = build(args.data_dir, args.out_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"build_fixtures: {error}", file=sys.stderr)
        return 1
    files = manifest["files"]
    assert isinstance(files, dict)
    for name, entry in sorted(files.items()):
        print(f"{args.out_dir / name}: {entry['rows']} rows")
    print(f"dropped relations: {manifest['dropped_relations']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
