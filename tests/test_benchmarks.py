"""Smoke test of the scale benchmark: worker processes, records and report."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import render, report
from benchmarks.scale import run_scale


@pytest.mark.slow
def test_scale_benchmark_small_market(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(report, "PLOTS_DIR", tmp_path / "plots")
    monkeypatch.setattr(report, "RESULTS_FILE", tmp_path / "RESULTS.md")
    (tmp_path / "plots").mkdir()

    records = run_scale(
        [2_000],
        seed=3,
        work_dir=tmp_path / "work",
        shapes=("contended",),
        log=lambda message: None,
    )

    assert len(records) == 1
    record = records[0]
    assert record["pairs"] > 0
    assert record["auto_violations"] == 0
    assert set(record["solvers"]) == {"exact", "relaxed", "greedy"}
    for method, solved in record["solvers"].items():
        assert solved["violations"] == 0, method
        assert solved["bound"] >= solved["objective"] - 1e-9, method
    exact = record["solvers"]["exact"]
    assert exact["status"] == "optimal"
    assert record["solvers"]["greedy"]["objective"] <= exact["objective"] + 1e-9
    assert 0.0 <= record["recall"] <= 1.0

    record.update(command="pytest", machine="test machine", date="2026-01-01")
    text = render.render_scale({"2000-contended": record})
    report.write_fragment("solver", text)

    assert "### Solvers" in text
    assert "auto (exact-highs-mip)" in text
    assert (tmp_path / "plots" / "scale_time.png").stat().st_size > 0
    assert "## Candidate generation" in (tmp_path / "RESULTS.md").read_text()
