"""Run the matching benchmarks and rebuild benchmarks/RESULTS.md.

Presets (``--preset``):

- ``small`` (default, a few minutes on 2 cores): quality on 3,000
  registrants; candidate generation and solvers at 2,000 and 20,000.
- ``medium``: quality on 10,000 registrants; scale runs at 2,000, 20,000
  and 100,000.
- ``large``: the scale runs at 1,000,000 registrants only. They take over an
  hour on 2 cores and about 10 GB of memory, and their rows join those of
  earlier runs.
- ``all``: everything above.

Each benchmark writes its fragment under ``benchmarks/results/`` and its
plots under ``benchmarks/plots/``; RESULTS.md is rebuilt from every fragment
present, including those other scripts wrote.

Run, for example::

    python -m benchmarks                      # small preset
    python -m benchmarks --preset medium
    python -m benchmarks --preset large --only scale
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.render import render_quality, render_scale

PRESETS: dict[str, dict[str, list[Any]]] = {
    "small": {"quality": [(3_000, 150)], "scale": [2_000, 20_000]},
    "medium": {"quality": [(10_000, 500)], "scale": [2_000, 20_000, 100_000]},
    "large": {"quality": [], "scale": [1_000_000]},
    "all": {
        "quality": [(3_000, 150), (10_000, 500)],
        "scale": [2_000, 20_000, 100_000, 1_000_000],
    },
}
# Quota tightness of the quality markets: the generator's default, where
# quota cells bind and leave some shortlists short, and a loose one, where
# only the scores and registrant caps decide.
QUALITY_TIGHTNESS = (0.8, 10.0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="small",
        help="run sizes: small (quality on 3,000 registrants, scale at 2,000 and "
        "20,000), medium (quality on 10,000, scale up to 100,000), large (scale "
        "at 1,000,000 only, over an hour on 2 cores) or all of them "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        choices=("quality", "scale"),
        action="append",
        help="run only this benchmark; repeat for several (default: all of them)",
    )
    parser.add_argument(
        "--shape",
        choices=("slack", "contended"),
        action="append",
        help="market shape of the scale runs; repeat for both "
        "(default: slack and contended)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=11,
        help="seed of every market (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path.home() / ".cache" / "labourmatch",
        help="label-vector cache of the quality runs (default: ~/.cache/labourmatch)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="folder for the problems handed between processes (default: a temporary one)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset = PRESETS[args.preset]
    selected = set(args.only or ("quality", "scale"))
    command = report.current_command()
    machine = report.current_machine()
    report.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report.PLOTS_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    if "quality" in selected and preset["quality"]:
        store = _load_store("quality")
        for registrants, vacancies in preset["quality"]:
            for tightness in QUALITY_TIGHTNESS:
                _log(f"quality: {registrants} registrants, quota tightness {tightness}")
                entry = _run_quality(args, registrants, vacancies, tightness)
                entry.update(
                    command=command, machine=machine.describe(), date=report.today()
                )
                store[f"{registrants}-{vacancies}-{tightness}-{args.seed}"] = entry
        _save_store("quality", store)
        report.write_fragment("quality", render_quality(store))

    if "scale" in selected and preset["scale"]:
        from benchmarks.scale import run_scale

        store = _load_store("scale")
        with tempfile.TemporaryDirectory() as temporary:
            work_dir = args.work_dir or Path(temporary)
            for size in preset["scale"]:
                for record in run_scale(
                    [size],
                    seed=args.seed,
                    work_dir=work_dir,
                    shapes=tuple(args.shape or ("slack", "contended")),
                    log=_log,
                ):
                    record.update(
                        command=command, machine=machine.describe(), date=report.today()
                    )
                    store[f"{record['size']}-{record['shape']}"] = record
                    _save_store("scale", store)
                    report.write_fragment("solver", render_scale(store))
    _log(f"done in {time.perf_counter() - started:.0f} s; see {report.RESULTS_FILE}")
    return 0


def _run_quality(
    args: argparse.Namespace, registrants: int, vacancies: int, tightness: float
) -> dict[str, Any]:
    from benchmarks.quality import run_quality
    from matching.rounds import MatchingEngine

    engine = MatchingEngine.from_fixtures(cache_dir=args.cache_dir)
    started = time.perf_counter()
    qualities, timings = run_quality(
        engine,
        registrants=registrants,
        vacancies=vacancies,
        seed=args.seed,
        quota_tightness=tightness,
    )
    return {
        "registrants": registrants,
        "vacancies": vacancies,
        "quota_tightness": tightness,
        "seed": args.seed,
        "seconds": time.perf_counter() - started,
        "timings": timings,
        "scorers": [quality.__dict__ for quality in qualities],
    }


def _load_store(name: str) -> dict[str, Any]:
    path = report.RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _save_store(name: str, store: dict[str, Any]) -> None:
    path = report.RESULTS_DIR / f"{name}.json"
    path.write_text(
        json.dumps(store, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
