"""The labourmatch command line on the bundled example files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from matching.cli import build_parser, main

EXAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "examples"


def _match_args(registrants: Path, out: Path, cache_dir: Path) -> list[str]:
    return [
        "match",
        "--registrants",
        str(registrants),
        "--vacancies",
        str(EXAMPLES / "vacancies.csv"),
        "--agreements",
        str(EXAMPLES / "agreements.jsonl"),
        "--out",
        str(out),
        "--cache-dir",
        str(cache_dir),
        "--quiet",
    ]


@pytest.mark.slow
def test_match_writes_shortlists(tmp_path: Path, vector_cache_dir: Path) -> None:
    out = tmp_path / "round.json"
    status = main(_match_args(EXAMPLES / "registrants.csv", out, vector_cache_dir))
    assert status == 0
    report = json.loads(out.read_text())
    assert report["round"]["registrants"] == 40
    assert report["round"]["vacancies"] == 6
    assert report["round"]["gap"] <= 1e-6
    assert len(report["shortlists"]) == 6
    assert report["quota_cells"]


def test_match_bad_row_writes_nothing(
    tmp_path: Path, vector_cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registrants = tmp_path / "registrants.csv"
    shutil.copy(EXAMPLES / "registrants.csv", registrants)
    lines = registrants.read_text().splitlines()
    # The origin is the third column, before any quoted cell.
    fields = lines[3].split(",")
    fields[2] = "QQ"
    lines[3] = ",".join(fields)
    registrants.write_text("\n".join(lines) + "\n")
    out = tmp_path / "round.json"

    status = main(_match_args(registrants, out, vector_cache_dir))

    assert status == 2
    assert not out.exists()
    assert list(tmp_path.glob(".round.json*")) == []
    message = capsys.readouterr().err
    assert "registrants.csv: line 4" in message
    assert "field 'origin'" in message
    assert "'QQ'" in message


def test_match_missing_file_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "round.json"
    status = main(_match_args(tmp_path / "absent.csv", out, tmp_path))
    assert status == 2
    assert not out.exists()
    assert "cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "match", "synth", "serve"])
def test_every_command_has_help(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "usage: labourmatch" in text
    assert "--help" in text
