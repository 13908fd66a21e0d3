"""Benchmark the HTTP service: bulk upload throughput and shortlist latency.

For each database (a SQLite file, then PostgreSQL) the script starts the real
app under uvicorn on 127.0.0.1, and

1. streams a synthetic registrant file through ``POST /v1/registrants:bulk``
   with httpx and reports rows per second end to end and the process's peak
   resident memory during the upload;
2. posts the market's vacancies and sends ``--requests`` shortlist requests,
   one after another, reporting the first request (it builds the registrant
   matrix) apart and the p50 and p95 latency of the rest.

Client and server share one process, so the memory figures include the client
and the loaded matching engine; the growth during the upload shows whether
the upload streams.

Before the timed uploads, every registrant is normalised and embedded once
(``--no-warm-up`` skips this), so both databases see warm label caches; the
warm-up time is printed, because it is what a first upload of new free text
costs.

Generating 100k records one by one, and normalising the new misspellings they
bring, takes many minutes, so only ``--base-registrants`` records are
generated. Further rows repeat them in order with a copy number appended to
the external id (``R0000042-c3``). Every row is distinct for the database, but
rows past the base bring no skill text or title that the first ones did not,
so the upload normalises no new text after the first ``--base-registrants``
rows. A run with ``--registrants`` equal to ``--base-registrants`` measures a
file in which every row is generated.

The printed figures include the CPU time the process used during the upload
and the load average, because on a shared machine other processes' load
lowers the rows per second.

Run, for example::

    python benchmarks/bench_api.py --registrants 100000 --vacancies 300

Targets on 2 cores: at least 5,000 rows/s and a p95 shortlist latency of at
most 200 ms with 100k registrants loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shlex
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import sqlalchemy as sa
import uvicorn
from sqlalchemy.engine import make_url

from api.main import create_app
from api.settings import Settings
from matching.models import Registrant
from matching.rounds import MatchingEngine
from matching.synth import MarketSpec, SyntheticMarket, generate_market
from matching.writers import write_registrants

BENCH_AGENCY = "AG-BENCH"
BENCH_EMPLOYER = "E-BENCH"
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
UPLOAD_CHUNK_BYTES = 1 << 20
MEMORY_SAMPLE_SECONDS = 0.1
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/labourmatch_bench"


@dataclass
class DatabaseFigures:
    """Figures measured on one database."""

    name: str
    rows: int
    upload_seconds: float
    upload_cpu_seconds: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    rss_before_mib: float
    rss_peak_mib: float
    first_shortlist_ms: float
    p50_ms: float
    p95_ms: float
    requests: int
    report: dict[str, Any]


class MemorySampler:
    """Record the peak resident memory of this process in a background thread."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_SAMPLE_SECONDS):
            self.peak = max(self.peak, self.process.memory_info().rss)


class LocalServer:
    """The app under uvicorn on 127.0.0.1, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", log_config=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 300
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 300 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--registrants",
        type=int,
        default=100_000,
        help="rows to upload (default: %(default)s)",
    )
    parser.add_argument(
        "--base-registrants",
        type=int,
        default=10_000,
        help="registrants generated record by record; rows past them repeat them "
        "with new external ids (default: %(default)s)",
    )
    parser.add_argument(
        "--vacancies",
        type=int,
        default=300,
        help="vacancies in the market (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=200,
        help="timed shortlist requests (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="market seed (default: %(default)s)"
    )
    parser.add_argument(
        "--typo-rate",
        type=float,
        default=MarketSpec().typo_rate,
        help="share of misspelt skills; each distinct misspelling is normalised and "
        "embedded on its own (default: %(default)s)",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        default="csv",
        help="upload format (default: %(default)s)",
    )
    parser.add_argument(
        "--batch-rows",
        type=int,
        default=2_000,
        help="rows per ingest transaction (default: %(default)s)",
    )
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default: %(default)s)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LABOURMATCH_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="PostgreSQL database to recreate and use (default: %(default)s)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder for the data file and SQLite database",
    )
    parser.add_argument(
        "--no-warm-up",
        action="store_true",
        help="time the uploads with cold label caches",
    )
    args = parser.parse_args(argv)
    for name in ("registrants", "base_registrants", "vacancies"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def build_market(args: argparse.Namespace, engine: MatchingEngine) -> SyntheticMarket:
    spec = MarketSpec(
        registrants=min(args.registrants, args.base_registrants),
        vacancies=args.vacancies,
        seed=args.seed,
        typo_rate=args.typo_rate,
    )
    return generate_market(engine.builder.taxonomy, spec)


def upload_rows(market: SyntheticMarket, rows: int) -> Iterator[Registrant]:
    """Yield ``rows`` registrants: the market's, then copies with new external ids."""
    base = market.registrants
    for row in range(rows):
        copy, position = divmod(row, len(base))
        # One agency uploads everything, so one key and one stream cover the market.
        update: dict[str, Any] = {"agency_id": BENCH_AGENCY}
        if copy:
            update["external_id"] = f"{base[position].external_id}-c{copy}"
        yield base[position].model_copy(update=update)


def write_upload_file(market: SyntheticMarket, rows: int, path: Path, fmt: str) -> None:
    write_registrants(upload_rows(market, rows), path, fmt=fmt)


def warm_up(engine: MatchingEngine, market: SyntheticMarket, batch_rows: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(market.registrants), batch_rows):
        engine.builder.build_registrants(market.registrants[start : start + batch_rows])
    engine.builder.build_vacancies(market.vacancies)
    return time.perf_counter() - started


def recreate_postgres(url: str) -> None:
    parsed = make_url(url)
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'
            )
            connection.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    finally:
        admin.dispose()


def stream_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(UPLOAD_CHUNK_BYTES):
            yield chunk


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def run_database(
    name: str,
    url: str,
    args: argparse.Namespace,
    engine: MatchingEngine,
    market: SyntheticMarket,
    data_file: Path,
) -> DatabaseFigures:
    settings = Settings(
        database_url=url,
        bootstrap_admin_key=ADMIN_KEY,
        ingest_batch_rows=args.batch_rows,
        max_reported_row_errors=100,
        log_level="WARNING",
    )
    app = create_app(settings, engine=engine)
    admin = {"X-API-Key": ADMIN_KEY}
    media_type = "text/csv" if args.format == "csv" else "application/x-ndjson"
    with (
        LocalServer(app) as server,
        httpx.Client(base_url=server.url, timeout=None) as client,
    ):
        agency = _issue(client, admin, "agency", BENCH_AGENCY)
        employer = _issue(client, admin, "employer", BENCH_EMPLOYER)
        for agreement in market.agreements:
            response = client.post(
                "/v1/agreements",
                content=agreement.model_dump_json(),
                headers={**admin, "Content-Type": "application/json"},
            )
            response.raise_for_status()

        rss_before = psutil.Process().memory_info().rss
        load_before = os.getloadavg()
        with MemorySampler() as sampler:
            started = time.perf_counter()
            cpu_started = time.process_time()
            response = client.post(
                "/v1/registrants:bulk",
                content=stream_file(data_file),
                headers={**agency, "Content-Type": media_type},
            )
            upload_seconds = time.perf_counter() - started
            upload_cpu_seconds = time.process_time() - cpu_started
        load_after = os.getloadavg()
        response.raise_for_status()
        report = response.json()

        vacancy_ids = []
        for vacancy in market.vacancies:
            body = vacancy.model_dump(mode="json", exclude={"employer_id"})
            client.post("/v1/vacancies", json=body, headers=employer).raise_for_status()
            vacancy_ids.append(vacancy.id)
        started = time.perf_counter()
        client.post(
            f"/v1/vacancies/{vacancy_ids[0]}/shortlist", headers=employer
        ).raise_for_status()
        first_ms = (time.perf_counter() - started) * 1000
        latencies = []
        for request in range(args.requests):
            vacancy_id = vacancy_ids[(request + 1) % len(vacancy_ids)]
            started = time.perf_counter()
            client.post(
                f"/v1/vacancies/{vacancy_id}/shortlist", headers=employer
            ).raise_for_status()
            latencies.append(time.perf_counter() - started)
    return DatabaseFigures(
        name=name,
        rows=report["rows_read"],
        upload_seconds=upload_seconds,
        upload_cpu_seconds=upload_cpu_seconds,
        load_before=load_before,
        load_after=load_after,
        rss_before_mib=rss_before / 2**20,
        rss_peak_mib=sampler.peak / 2**20,
        first_shortlist_ms=first_ms,
        p50_ms=percentile_ms(latencies, 50),
        p95_ms=percentile_ms(latencies, 95),
        requests=len(latencies),
        report={
            key: report[key]
            for key in ("accepted", "updated", "unchanged", "rejected_count", "batches")
        },
    )


def _issue(
    client: httpx.Client, admin: dict[str, str], role: str, tenant: str
) -> dict[str, str]:
    response = client.post(
        "/v1/keys", json={"role": role, "tenant_id": tenant}, headers=admin
    )
    response.raise_for_status()
    return {"X-API-Key": response.json()["key"]}


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"


def _load(values: tuple[float, float, float]) -> str:
    return "/".join(f"{value:.2f}" for value in values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="labourmatch-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    engine = MatchingEngine.from_fixtures(cache_dir=Settings().label_cache_dir)
    # As in the service: one PyTorch thread leaves the other core to the upload.
    engine.builder.encoder.num_threads = 1
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    market = build_market(args, engine)
    data_file = workdir / f"registrants.{args.format}"
    write_upload_file(market, args.registrants, data_file, args.format)
    generate_seconds = time.perf_counter() - started
    warm_seconds = None if args.no_warm_up else warm_up(engine, market, args.batch_rows)

    figures = []
    for name in databases:
        if name == "sqlite":
            sqlite_file = workdir / "bench.sqlite"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{sqlite_file}"
        elif name == "postgresql":
            recreate_postgres(args.postgres_url)
            url = args.postgres_url
        else:
            raise SystemExit(f"unknown database '{name}'; use sqlite or postgresql")
        figures.append(run_database(name, url, args, engine, market, data_file))

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}")
    print(f"machine: {machine_line()}")
    copies = (
        f", rows past {len(market.registrants)} repeat them with new external ids"
        if args.registrants > len(market.registrants)
        else ""
    )
    print(
        f"data: {args.registrants} registrant rows ({data_file.stat().st_size / 2**20:.1f} "
        f"MiB {args.format}) from {len(market.registrants)} generated registrants"
        f"{copies}; {len(market.vacancies)} vacancies, typo rate {args.typo_rate}, "
        f"batch {args.batch_rows} rows"
    )
    print(
        f"engine load {load_seconds:.1f} s, market generation {generate_seconds:.1f} s"
    )
    if warm_seconds is not None:
        print(
            f"warm-up (normalise and embed every registrant once, label cache as found): "
            f"{warm_seconds:.1f} s = {len(market.registrants) / warm_seconds:.0f} rows/s"
        )
    peak_rusage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for item in figures:
        print(
            f"{item.name}: upload {item.rows} rows in {item.upload_seconds:.1f} s = "
            f"{item.rows / item.upload_seconds:.0f} rows/s {item.report}; process CPU "
            f"{item.upload_cpu_seconds:.1f} s = "
            f"{item.rows / item.upload_cpu_seconds:.0f} rows per CPU-second; load "
            f"average {_load(item.load_before)} before, {_load(item.load_after)} "
            f"after; RSS "
            f"{item.rss_before_mib:.0f} MiB before, {item.rss_peak_mib:.0f} MiB peak "
            f"(+{item.rss_peak_mib - item.rss_before_mib:.0f} MiB); first shortlist "
            f"{item.first_shortlist_ms:.0f} ms; shortlist p50 {item.p50_ms:.1f} ms, "
            f"p95 {item.p95_ms:.1f} ms over {item.requests} requests"
        )
    print(f"process peak RSS (getrusage): {peak_rusage:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
