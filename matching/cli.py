"""The ``labourmatch`` command line: demo, match, synth and serve."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from matching.codes import QUOTA_MODES
from matching.exceptions import InputError, LabourmatchError
from matching.readers import iter_agreements, iter_registrants, iter_vacancies, read_all

logger = logging.getLogger("labourmatch")

METHODS = ("auto", "exact", "relaxed", "greedy")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_cache_dir() -> Path:
    """Return the label-vector cache folder: ``$XDG_CACHE_HOME/labourmatch``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labourmatch"


class _Progress:
    """Draw one tqdm bar per stage of a long step, on standard error."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        bar = self.bars.get(stage)
        if bar is None:
            bar = tqdm(
                total=total,
                desc=stage,
                unit="item",
                file=sys.stderr,
                leave=False,
                mininterval=0.5,
            )
            self.bars[stage] = bar
        bar.update(done - bar.n)
        if done >= total:
            bar.close()


def integer_in_range(
    minimum: int, maximum: int | None = None
) -> Callable[[str], int]:
    """Return an argparse type that accepts integers from ``minimum`` to ``maximum``."""
    allowed = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid value '{text}'; expected an integer {allowed}"
            ) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(
                f"invalid value {value}; expected an integer {allowed}"
            )
        return value

    return parse


def positive_float(text: str) -> float:
    """Parse a finite number greater than zero, as an argparse type."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value '{text}'; expected a number > 0"
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid value {text}; expected a number > 0"
        )
    return value


def _add_round_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("matching round")
    group.add_argument(
        "--quota-mode",
        choices=QUOTA_MODES,
        default="guaranteed",
        help="guaranteed: a quota cell's shortlist cap is its remaining quota; "
        "proportional: the agreement's shortlist ratio times the remaining quota "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--method",
        choices=METHODS,
        default="auto",
        help="solver: exact MIP, relaxed (LP relaxation, rounding and refill), greedy "
        "baseline, or auto by problem size (default: %(default)s)",
    )
    group.add_argument(
        "--shortlist-ratio",
        type=integer_in_range(1),
        default=3,
        help="candidates per opening (default: %(default)s)",
    )
    group.add_argument(
        "--max-shortlists",
        type=integer_in_range(1),
        default=2,
        help="shortlists one registrant may appear on in the round (default: %(default)s)",
    )
    group.add_argument(
        "--candidates-per-vacancy",
        type=integer_in_range(0),
        default=100,
        help="eligible registrants kept per vacancy, best scores first; 0 keeps all "
        "(default: %(default)s)",
    )
    group.add_argument(
        "--time-limit",
        type=positive_float,
        default=120.0,
        help="solver wall-clock limit in seconds (default: %(default)s)",
    )
    group.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="folder of the label-vector cache (default: $XDG_CACHE_HOME/labourmatch)",
    )
    group.add_argument("--quiet", action="store_true", help="draw no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="labourmatch",
        description="Pre-selection shortlists for bilateral labour-migration programmes.",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="WARNING",
        help="logging level, any case (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="build a sample market from the bundled ESCO data and run a matching round",
        description="Build a seeded synthetic labour market from the bundled ESCO data "
        "(EURES shortage occupations, corridors modelled on real programmes) and run a "
        "matching round, printing shortlists and a round summary.",
    )
    demo.add_argument(
        "--registrants",
        type=integer_in_range(1),
        default=3000,
        help="registrants in the market (default: %(default)s)",
    )
    demo.add_argument(
        "--vacancies",
        type=integer_in_range(1),
        default=120,
        help="vacancies in the market (default: %(default)s)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=7,
        help="seed of the market generator (default: %(default)s)",
    )
    demo.add_argument(
        "--show",
        type=integer_in_range(0),
        default=3,
        help="shortlists to print in full (default: %(default)s)",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the whole round as JSON to this file",
    )
    _add_round_options(demo)

    match = commands.add_parser(
        "match",
        help="run a matching round on your own files",
        description="Read registrants, vacancies and agreements, run a matching round and "
        "write shortlists with explanations as JSON. Nothing is written if any input "
        "record is invalid.",
    )
    match.add_argument(
        "--registrants", type=Path, required=True, help="registrants, .csv or .jsonl"
    )
    match.add_argument(
        "--vacancies", type=Path, required=True, help="vacancies, .csv or .jsonl"
    )
    match.add_argument(
        "--agreements", type=Path, required=True, help="agreements, .jsonl or .json"
    )
    match.add_argument("--out", type=Path, required=True, help="output JSON file")
    _add_round_options(match)

    synth = commands.add_parser(
        "synth",
        help="write a synthetic labour market to files",
        description="Write a seeded synthetic market as registrants, vacancies and "
        "agreements files plus the hidden true occupations, for benchmarks and trials.",
    )
    synth.add_argument(
        "--registrants",
        type=integer_in_range(1),
        default=3000,
        help="registrants (default: %(default)s)",
    )
    synth.add_argument(
        "--vacancies",
        type=integer_in_range(1),
        default=120,
        help="vacancies (default: %(default)s)",
    )
    synth.add_argument(
        "--seed", type=int, default=7, help="generator seed (default: %(default)s)"
    )
    synth.add_argument(
        "--quota-tightness",
        type=positive_float,
        default=0.8,
        help="remaining quota per cell as a share of the shortlist slots that could use it "
        "(default: %(default)s)",
    )
    synth.add_argument(
        "--format",
        choices=("jsonl", "csv"),
        default="jsonl",
        help="registrant and vacancy file format (default: %(default)s)",
    )
    synth.add_argument(
        "--out-dir",
        type=Path,
        required=True,
        help="folder to write into (created if missing)",
    )

    serve = commands.add_parser(
        "serve",
        help="start the HTTP service",
        description="Start the HTTP service with uvicorn. The database comes from "
        "LABOURMATCH_DATABASE_URL (default: a SQLite file in the working folder).",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--port",
        type=integer_in_range(1, 65535),
        default=8000,
        help="TCP port (default: %(default)s)",
    )
    return parser


def _round_config(args: argparse.Namespace) -> Any:
    from matching.rounds import RoundConfig

    return RoundConfig(
        shortlist_ratio=args.shortlist_ratio,
        max_shortlists_per_registrant=args.max_shortlists,
        quota_mode=args.quota_mode,
        method=args.method,
        candidates_per_vacancy=args.candidates_per_vacancy or None,
        time_limit_seconds=args.time_limit,
    )


def _engine(args: argparse.Namespace) -> Any:
    from matching.rounds import MatchingEngine

    return MatchingEngine.from_fixtures(cache_dir=args.cache_dir or default_cache_dir())


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` through a temporary file, so no partial file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2, ensure_ascii=False)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_demo(args: argparse.Namespace) -> int:
    """Generate the sample market, run a round and print the outcome."""
    from matching.rounds import summarise_round
    from matching.synth import MarketSpec, generate_market

    started = time.perf_counter()
    config = _round_config(args)
    engine = _engine(args)
    spec = MarketSpec(
        registrants=args.registrants, vacancies=args.vacancies, seed=args.seed
    )
    market = generate_market(engine.builder.taxonomy, spec)
    progress = _Progress(not args.quiet)
    result = engine.run_round(
        market.registrants,
        market.vacancies,
        market.agreements,
        config=config,
        progress=progress,
    )
    summary = summarise_round(result, round_date=spec.round_date)
    summary["round"]["timings_seconds"]["total"] = round(
        time.perf_counter() - started, 2
    )
    print(format_round(summary, show=args.show))
    if args.out is not None:
        write_json_atomically(args.out, summary)
        print(f"\nWrote the whole round to {args.out}")
    return 0


def run_match(args: argparse.Namespace) -> int:
    """Run a matching round on the user's files and write the shortlists."""
    from matching.rounds import summarise_round

    started = time.perf_counter()
    config = _round_config(args)
    inputs, errors = _read_inputs(args)
    if errors:
        for error in errors:
            _print_input_error(error)
        return 2
    registrants, vacancies, agreements = inputs
    engine = _engine(args)
    progress = _Progress(not args.quiet)
    result = engine.run_round(
        registrants, vacancies, agreements, config=config, progress=progress
    )
    summary = summarise_round(result)
    summary["round"]["timings_seconds"]["total"] = round(
        time.perf_counter() - started, 2
    )
    write_json_atomically(args.out, summary)
    print(format_summary(summary))
    print(f"Wrote {len(summary['shortlists'])} shortlists to {args.out}")
    return 0


def _read_inputs(
    args: argparse.Namespace,
) -> tuple[list[list[Any]], list[InputError]]:
    """Read all three input files, so one bad file does not hide another's errors."""
    inputs: list[list[Any]] = []
    errors: list[InputError] = []
    for path, reader in (
        (args.registrants, iter_registrants),
        (args.vacancies, iter_vacancies),
        (args.agreements, iter_agreements),
    ):
        try:
            inputs.append(read_all(path, reader))
        except InputError as error:
            errors.append(error)
            inputs.append([])
    return inputs, errors


def _print_input_error(error: InputError) -> None:
    print(f"labourmatch: invalid input: {error}", file=sys.stderr)


def run_synth(args: argparse.Namespace) -> int:
    """Write a synthetic market to files."""
    from matching.synth import MarketSpec, generate_market, write_market
    from matching.taxonomy import load_taxonomy

    spec = MarketSpec(
        registrants=args.registrants,
        vacancies=args.vacancies,
        seed=args.seed,
        quota_tightness=args.quota_tightness,
    )
    market = generate_market(load_taxonomy(), spec)
    paths = write_market(market, args.out_dir, fmt=args.format)
    for path in paths:
        print(path)
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Start the HTTP service."""
    import uvicorn

    from api.main import create_app

    uvicorn.run(create_app(), host=args.host, port=args.port, log_config=None)
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """Return the round summary as readable lines."""
    info = summary["round"]
    lines = [
        "Round summary",
        f"  registrants {info['registrants']}, vacancies {info['vacancies']}, "
        f"candidate pairs {info['candidate_pairs']}, quota cells {info['quota_cells']}",
        f"  shortlisted {info['shortlisted']} candidates with {info['method']} ({info['status']})",
        f"  objective {info['objective']:.4f}, bound {info['bound']:.4f}, gap {info['gap']:.4%}",
        "  time "
        + ", ".join(
            f"{name.removesuffix('_seconds')} {value:.2f} s"
            for name, value in info["timings_seconds"].items()
        ),
        "",
        "Quota cells (shortlisted / shortlist cap; quota used / cap)",
    ]
    for cell in summary["quota_cells"]:
        scope = cell["sector"] or "all sectors"
        price = (
            ""
            if cell["shadow_price"] is None
            else f", shadow price {cell['shadow_price']:.3f}"
        )
        lines.append(
            f"  {cell['id']:<18} {scope:<12} {cell['shortlisted']:>5} / {cell['shortlist_cap']:<5}"
            f" quota {cell['quota_used']} / {cell['quota_cap']}{price}"
        )
    short = [entry for entry in summary["shortlists"] if "unfilled" in entry]
    lines.append("")
    lines.append(f"Vacancies left short: {len(short)} of {len(summary['shortlists'])}")
    for entry in short[:5]:
        codes = _binding_codes(entry["unfilled"]["reason"])
        missing = entry["unfilled"]["missing"]
        lines.append(f"  {entry['vacancy_id']}: {missing} missing, binding: {codes}")
    return "\n".join(lines)


def _binding_codes(reason: dict[str, Any] | str | None) -> str:
    if isinstance(reason, dict):
        return "+".join(reason["codes"])
    return "unknown" if reason is None else str(reason)


def _vacancy_heading(entry: dict[str, Any]) -> str:
    occupation = entry["occupation"]
    heading = (
        f"Vacancy {entry['vacancy_id']}: {occupation['label']} "
        f"(ISCO {occupation['isco_code']}), {entry['shortlist_size']} places, "
        f"{len(entry['candidates'])} shortlisted, "
        f"{entry['eligible_registrants']} eligible"
    )
    if "unfilled" in entry:
        codes = _binding_codes(entry["unfilled"]["reason"])
        heading += f"; {entry['unfilled']['missing']} short, binding: {codes}"
    return heading


def format_round(summary: dict[str, Any], *, show: int) -> str:
    """Return the first ``show`` shortlists and the round summary as text."""
    lines: list[str] = []
    for entry in summary["shortlists"][:show]:
        lines.append(_vacancy_heading(entry))
        for candidate in entry["candidates"]:
            parts = ", ".join(
                f"{name} {value:.2f}" for name, value in candidate["components"].items()
            )
            lines.append(
                f"  {candidate['rank']}. {candidate['registrant']}  score {candidate['score']:.3f}  ({parts})"
            )
            matched = candidate["matched_essential_skills"]
            missing = candidate["missing_essential_skills"]
            lines.append(
                f"     essential skills {len(matched)}/{len(matched) + len(missing)}"
                + (f", missing e.g. {', '.join(missing[:2])}" if missing else "")
                + f"; languages {candidate['language_margin'] or 'none required'}"
                + f"; recognition {candidate['recognition']}"
            )
        lines.append("")
    lines.append(format_summary(summary))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(levelname)s %(name)s: %(message)s"
    )
    handlers = {
        "demo": run_demo,
        "match": run_match,
        "synth": run_synth,
        "serve": run_serve,
    }
    try:
        return handlers[args.command](args)
    except InputError as error:
        _print_input_error(error)
        return 2
    except (LabourmatchError, ValueError) as error:
        print(f"labourmatch: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
