"""The labourmatch command line on the bundled example files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from matching.cli import build_parser, format_round, main
from matching.readers import iter_agreements, iter_registrants, iter_vacancies, read_all
from matching.rounds import MatchingEngine, RoundConfig, summarise_round

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


def _replace_cell(path: Path, line: int, column: int, value: str) -> None:
    """Set one cell of an unquoted CSV line, counting lines and columns from 1."""
    lines = path.read_text().splitlines()
    cells = lines[line - 1].split(",")
    cells[column - 1] = value
    lines[line - 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def test_match_reports_errors_of_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registrants = tmp_path / "registrants.csv"
    vacancies = tmp_path / "vacancies.csv"
    agreements = tmp_path / "agreements.jsonl"
    shutil.copy(EXAMPLES / "registrants.csv", registrants)
    shutil.copy(EXAMPLES / "vacancies.csv", vacancies)
    shutil.copy(EXAMPLES / "agreements.jsonl", agreements)
    # Origin is the third registrant column, sector and openings the fourth and
    # eighth vacancy columns, all before any quoted cell.
    _replace_cell(registrants, 4, 3, "QQ")
    _replace_cell(vacancies, 2, 4, "QQ")
    _replace_cell(vacancies, 2, 8, "0")
    agreement_lines = agreements.read_text().splitlines()
    agreement_lines[1] = agreement_lines[1].replace(
        '"destination":"DE"', '"destination":"XX"'
    )
    agreements.write_text("\n".join(agreement_lines) + "\n")
    out = tmp_path / "round.json"
    argv = _match_args(registrants, out, tmp_path)
    argv[argv.index("--vacancies") + 1] = str(vacancies)
    argv[argv.index("--agreements") + 1] = str(agreements)

    status = main(argv)

    assert status == 2
    assert not out.exists()
    message = capsys.readouterr().err
    assert "registrants.csv: line 4, record 'R0000003', field 'origin'" in message
    assert "vacancies.csv: line 2, record 'V-00001', field 'sector'" in message
    assert "field 'openings': Input should be greater than or equal to 1" in message
    expected = "agreements.jsonl: line 2, record 'AGR-BA-DE', field 'destination'"
    assert expected in message
    assert "'XX'" in message


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


def test_log_level_unknown_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--log-level", "foo", "demo"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "usage: labourmatch" in message
    assert "argument --log-level: invalid choice: 'FOO'" in message
    assert "Traceback" not in message


def test_log_level_any_case_accepted() -> None:
    args = build_parser().parse_args(["--log-level", "debug", "demo"])
    assert args.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("argv", "option", "allowed"),
    [
        (["demo", "--shortlist-ratio", "0"], "--shortlist-ratio", "an integer >= 1"),
        (["demo", "--max-shortlists", "-1"], "--max-shortlists", "an integer >= 1"),
        (
            ["demo", "--candidates-per-vacancy", "-5"],
            "--candidates-per-vacancy",
            "an integer >= 0",
        ),
        (["demo", "--time-limit", "0"], "--time-limit", "a number > 0"),
        (["demo", "--time-limit", "nan"], "--time-limit", "a number > 0"),
        (["demo", "--registrants", "0"], "--registrants", "an integer >= 1"),
        (["demo", "--show", "-1"], "--show", "an integer >= 0"),
        (["demo", "--shortlist-ratio", "two"], "--shortlist-ratio", "an integer >= 1"),
        (
            ["synth", "--out-dir", "x", "--vacancies", "0"],
            "--vacancies",
            "an integer >= 1",
        ),
        (
            ["synth", "--out-dir", "x", "--quota-tightness", "-0.5"],
            "--quota-tightness",
            "a number > 0",
        ),
        (["serve", "--port", "70000"], "--port", "an integer from 1 to 65535"),
    ],
)
def test_numeric_option_out_of_range_is_usage_error(
    argv: list[str], option: str, allowed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "usage: labourmatch" in message
    assert f"argument {option}: invalid value" in message
    assert f"expected {allowed}" in message


def test_numeric_option_boundary_accepted() -> None:
    args = build_parser().parse_args(
        ["demo", "--shortlist-ratio", "1", "--candidates-per-vacancy", "0"]
    )
    assert args.shortlist_ratio == 1
    assert args.candidates_per_vacancy == 0


@pytest.mark.slow
def test_round_text_names_places_and_shortfall(engine: MatchingEngine) -> None:
    registrants = read_all(EXAMPLES / "registrants.csv", iter_registrants)
    vacancies = read_all(EXAMPLES / "vacancies.csv", iter_vacancies)
    agreements = read_all(EXAMPLES / "agreements.jsonl", iter_agreements)
    # Far more places than the 40 registrants can fill leaves vacancies short.
    config = RoundConfig(shortlist_ratio=50)
    result = engine.run_round(registrants, vacancies, agreements, config=config)
    summary = summarise_round(result)

    text = format_round(summary, show=len(summary["shortlists"]))

    short = [entry for entry in summary["shortlists"] if "unfilled" in entry]
    assert short
    for entry in summary["shortlists"]:
        prefix = f"Vacancy {entry['vacancy_id']}:"
        heading = next(line for line in text.splitlines() if prefix in line)
        assert f"{entry['shortlist_size']} places" in heading
        assert f"{len(entry['candidates'])} shortlisted" in heading
        assert f"{entry['eligible_registrants']} eligible" in heading
        assert "shortlist of" not in heading
        if "unfilled" in entry:
            codes = "+".join(entry["unfilled"]["reason"]["codes"])
            assert f"{entry['unfilled']['missing']} short, binding: {codes}" in heading
        else:
            assert "binding" not in heading
