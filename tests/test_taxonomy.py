"""Tests for matching.taxonomy and scripts/build_fixtures.py, on the real fixtures."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from matching.exceptions import TaxonomyError
from matching.taxonomy import (
    DEFAULT_FIXTURES_DIR,
    REBUILD_COMMAND,
    TAXONOMY_VERSION,
    Occupation,
    Taxonomy,
    load_taxonomy,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_fixtures.py"
RAW_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

SOFTWARE_DEVELOPER = (
    "http://data.europa.eu/esco/occupation/f2b15a0e-e65a-438a-affb-29b9d50b77d1"
)
TECHNICAL_DIRECTOR = (
    "http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34"
)
MANAGE_MUSICAL_STAFF = (
    "http://data.europa.eu/esco/skill/0005c151-5b5a-4a66-8aac-60e734beb1ab"
)


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy()


def test_load_taxonomy_counts(taxonomy: Taxonomy) -> None:
    assert taxonomy.version == TAXONOMY_VERSION
    assert len(taxonomy.occupations) == 3007
    assert len(taxonomy.skills) == 13896
    assert len(taxonomy.isco_groups) == 619


def test_load_taxonomy_isco_levels(taxonomy: Taxonomy) -> None:
    levels = {length: 0 for length in range(1, 5)}
    for code in taxonomy.isco_groups:
        levels[len(code)] += 1
    assert levels == {1: 10, 2: 43, 3: 130, 4: 436}


def test_occupation_fields(taxonomy: Taxonomy) -> None:
    occupation = taxonomy.occupation(TECHNICAL_DIRECTOR)
    assert isinstance(occupation, Occupation)
    assert occupation.preferred_label == "technical director"
    assert occupation.isco_code == "2654"
    assert "head of technical department" in occupation.alt_labels
    assert occupation.preferred_label not in occupation.alt_labels
    assert occupation.regulated is False


def test_occupation_labels_cleaned(taxonomy: Taxonomy) -> None:
    for occupation in taxonomy.occupations.values():
        for label in (
            occupation.preferred_label,
            *occupation.alt_labels,
            *occupation.hidden_labels,
        ):
            assert label == " ".join(label.split()), occupation.uri
            assert label, occupation.uri


def test_regulated_professions(taxonomy: Taxonomy) -> None:
    regulated = {
        o.preferred_label for o in taxonomy.occupations.values() if o.regulated
    }
    assert len(regulated) == 15
    assert "midwife" in regulated
    assert "general practitioner" in regulated


def test_skill_fields(taxonomy: Taxonomy) -> None:
    skill = taxonomy.skill(MANAGE_MUSICAL_STAFF)
    assert skill.preferred_label == "manage musical staff"
    assert "manage music staff" in skill.alt_labels
    assert skill.skill_type == "skill/competence"
    assert skill.reuse_level == "sector-specific"


def test_skill_types_known(taxonomy: Taxonomy) -> None:
    skill_types = {skill.skill_type for skill in taxonomy.skills.values()}
    reuse_levels = {skill.reuse_level for skill in taxonomy.skills.values()}
    assert skill_types == {"skill/competence", "knowledge", ""}
    assert reuse_levels == {
        "transversal",
        "cross-sector",
        "sector-specific",
        "occupation-specific",
        "",
    }


def test_essential_and_optional_skills(taxonomy: Taxonomy) -> None:
    essential = taxonomy.essential_skills(SOFTWARE_DEVELOPER)
    optional = taxonomy.optional_skills(SOFTWARE_DEVELOPER)
    assert len(essential) > 5
    assert len(optional) > 5
    assert list(essential) == sorted(essential)
    assert set(essential).isdisjoint(optional)
    assert all(uri in taxonomy.skills for uri in essential + optional)


def test_relation_total_matches_manifest(taxonomy: Taxonomy) -> None:
    manifest = json.loads(
        (DEFAULT_FIXTURES_DIR / "MANIFEST.json").read_text(encoding="utf-8")
    )
    total = sum(
        len(taxonomy.essential_skills(uri)) + len(taxonomy.optional_skills(uri))
        for uri in taxonomy.occupations
    )
    assert total == manifest["files"]["esco/occupation_skill_relations.csv.gz"]["rows"]
    assert manifest["dropped_relations"]["unknown_occupation"] == 67


def test_unknown_occupation_key_error(taxonomy: Taxonomy) -> None:
    unknown = "http://data.europa.eu/esco/occupation/not-a-concept"
    with pytest.raises(KeyError, match="not-a-concept"):
        taxonomy.occupation(unknown)
    with pytest.raises(KeyError, match="not-a-concept"):
        taxonomy.essential_skills(unknown)


def test_unknown_skill_key_error(taxonomy: Taxonomy) -> None:
    with pytest.raises(KeyError, match="is not in taxonomy"):
        taxonomy.skill("http://data.europa.eu/esco/skill/not-a-concept")


def test_occupations_in_isco_leading_zero(taxonomy: Taxonomy) -> None:
    uris = taxonomy.occupations_in_isco("0110")
    assert uris
    assert list(uris) == sorted(uris)
    assert all(taxonomy.occupations[uri].isco_code == "0110" for uri in uris)


def test_occupations_in_isco_prefix_levels(taxonomy: Taxonomy) -> None:
    unit = set(taxonomy.occupations_in_isco("2512"))
    minor = set(taxonomy.occupations_in_isco("251"))
    major = set(taxonomy.occupations_in_isco("2"))
    assert SOFTWARE_DEVELOPER in unit
    assert unit <= minor <= major
    assert len(major) == sum(
        1 for o in taxonomy.occupations.values() if o.isco_code[0] == "2"
    )


def test_occupations_in_isco_unknown_code(taxonomy: Taxonomy) -> None:
    assert taxonomy.occupations_in_isco("9999") == ()


@pytest.mark.parametrize("prefix", ["", "12345", "2a", " 2"])
def test_occupations_in_isco_invalid(taxonomy: Taxonomy, prefix: str) -> None:
    with pytest.raises(ValueError, match="1 to 4 digits"):
        taxonomy.occupations_in_isco(prefix)


def test_occupations_in_isco_int_rejected(taxonomy: Taxonomy) -> None:
    with pytest.raises(TypeError, match="leading zeros"):
        taxonomy.occupations_in_isco(2512)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("0", True),
        ("01", True),
        ("011", True),
        ("0110", True),
        ("2512", True),
        ("9999", False),
        ("25120", False),
        ("", False),
    ],
)
def test_is_isco_code(taxonomy: Taxonomy, code: str, expected: bool) -> None:
    assert taxonomy.is_isco_code(code) is expected


def test_isco_group_titles(taxonomy: Taxonomy) -> None:
    assert taxonomy.isco_groups["2"] == "Professionals"
    assert taxonomy.isco_groups["0110"] == "Commissioned armed forces officers"


def test_mappings_read_only(taxonomy: Taxonomy) -> None:
    with pytest.raises(TypeError):
        taxonomy.occupations["x"] = taxonomy.occupation(SOFTWARE_DEVELOPER)  # type: ignore[index]
    with pytest.raises(TypeError):
        taxonomy.isco_groups["x"] = "y"  # type: ignore[index]


def _copy_fixtures(target: Path) -> Path:
    shutil.copytree(DEFAULT_FIXTURES_DIR / "esco", target / "esco")
    shutil.copyfile(DEFAULT_FIXTURES_DIR / "MANIFEST.json", target / "MANIFEST.json")
    return target


def test_load_taxonomy_missing_file(tmp_path: Path) -> None:
    fixtures = _copy_fixtures(tmp_path / "fixtures")
    (fixtures / "esco" / "skills.csv.gz").unlink()
    with pytest.raises(TaxonomyError, match="skills.csv.gz is missing") as raised:
        load_taxonomy(fixtures)
    assert REBUILD_COMMAND in str(raised.value)


def test_load_taxonomy_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="MANIFEST.json is missing"):
        load_taxonomy(tmp_path / "nowhere")


def test_load_taxonomy_wrong_version(tmp_path: Path) -> None:
    fixtures = _copy_fixtures(tmp_path / "fixtures")
    manifest_path = fixtures / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["taxonomy_version"] = "esco-1.0.5"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(TaxonomyError, match="esco-1.0.5"):
        load_taxonomy(fixtures)


def test_load_taxonomy_corrupt_gzip(tmp_path: Path) -> None:
    fixtures = _copy_fixtures(tmp_path / "fixtures")
    path = fixtures / "esco" / "occupations.csv.gz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(TaxonomyError, match="occupations.csv.gz is unreadable"):
        load_taxonomy(fixtures)


def _file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.slow
@pytest.mark.skipif(
    not RAW_DATA_DIR.is_dir(), reason="raw reference data folder not present"
)
def test_build_fixtures_deterministic(tmp_path: Path) -> None:
    outputs = [tmp_path / "first", tmp_path / "second"]
    for out_dir in outputs:
        completed = subprocess.run(
            [
                sys.executable,
                str(BUILD_SCRIPT),
                "--data-dir",
                str(RAW_DATA_DIR),
                "--out-dir",
                str(out_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr

    first = _file_digests(outputs[0])
    second = _file_digests(outputs[1])
    assert first == second
    # The committed fixtures must be what the script builds today.
    committed = {
        name: digest
        for name, digest in _file_digests(DEFAULT_FIXTURES_DIR).items()
        if name in first
    }
    assert committed == first


def test_build_fixtures_missing_input(tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            str(BUILD_SCRIPT),
            "--data-dir",
            str(tmp_path),
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert "missing input files" in completed.stderr
    assert not (tmp_path / "out").exists()
