"""In-process matrix of every stored registrant, refreshed incrementally.

Scoring needs all registrants as column arrays (:class:`RegistrantFeatures`).
Reading 100k rows per shortlist request would dominate its latency, so each
app keeps one :class:`RegistrantRegistry` that remembers the registry version
it has seen. Every transaction that writes or erases registrants bumps the
one-row ``registry_version`` counter and stamps its rows (or tombstones) with
the new value; a refresh reads only rows stamped after the last version seen.

The counter row is updated inside the writing transaction, so on PostgreSQL a
second writer waits for the first to commit before it gets its number, and on
SQLite writers run one at a time: versions become visible in increasing order,
and no row with a version at or below the last one seen can appear later.

Between refreshes the registrants are kept as flat column arrays
(:mod:`api.services.registrant_columns`), so a refresh decodes only the
changed rows and rebuilds the matrix with whole-array operations.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.services.registrant_columns import (
    assemble_features,
    empty_columns,
    occupation_evidence,
    parse_rows,
)
from api.tables import RegistrantRow, RegistrantTombstone, RegistryVersion
from matching.features import ISCO_LEVELS, FeatureBuilder, RegistrantFeatures
from matching.skill_profile import OccupationEvidence, skill_idf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrySnapshot:
    """Features of every stored registrant at one registry version.

    Attributes
    ----------
    version
        Registry version the snapshot reflects.
    features
        Column arrays in the order of ``registrant_ids``.
    evidence
        Skill profiles and occupation claims of ``features``, for the
        ``skill_profile`` and ``occupation_match`` score components.
    registrant_ids
        (N,) int64 database ids of the rows of ``features``.
    row_of
        Database id to row of ``features``.
    """

    version: int
    features: RegistrantFeatures
    evidence: OccupationEvidence
    registrant_ids: NDArray[np.int64]
    row_of: dict[int, int]


def read_version(session: Session) -> int:
    """Return the current registry version."""
    return int(session.execute(select(RegistryVersion.version)).scalar_one())


def bump_version(session: Session) -> int:
    """Increment the registry version inside the caller's transaction and return it.

    The update takes the counter row's lock until the transaction ends, which
    orders concurrent writers (see the module notes).
    """
    row = session.get(RegistryVersion, 1, with_for_update=True)
    assert row is not None, "the initial migration inserts the registry_version row"
    row.version += 1
    session.flush()
    return row.version


class RegistrantRegistry:
    """Registrant features for scoring, refreshed from the database on demand.

    Parameters
    ----------
    builder
        The engine's feature builder; its skill vocabulary numbers the skill
        columns, so vacancy profiles built by it line up with the matrix.
    builder_lock
        Lock held while the builder's vocabulary is read or extended.
    """

    def __init__(self, builder: FeatureBuilder, builder_lock: threading.RLock) -> None:
        self._builder = builder
        self._builder_lock = builder_lock
        self._lock = threading.Lock()
        self._columns = empty_columns()
        self._version = -1
        self._snapshot: RegistrySnapshot | None = None
        self._level_columns = _isco_columns(builder)
        self._idf = skill_idf(builder.taxonomy)
        self._occupation_uris = sorted(builder.taxonomy.occupations)
        self._occupation_position = {
            uri: position for position, uri in enumerate(self._occupation_uris)
        }
        self._refresher = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="registry-refresh"
        )
        self._refresh_queued = threading.Event()

    @property
    def built_version(self) -> int:
        """Registry version of the latest matrix built, or -1 before the first."""
        snapshot = self._snapshot
        return snapshot.version if snapshot is not None else -1

    def refresh_in_background(
        self, open_session: Callable[[], AbstractContextManager[Session]]
    ) -> None:
        """Queue a refresh, so that the next request finds the matrix current.

        A bulk upload calls this when it ends, because decoding 100k new rows
        takes seconds that the first shortlist request would otherwise wait.
        A request that arrives during the refresh waits for it to finish. At
        most one refresh is queued at a time.
        """
        if self._refresh_queued.is_set():
            return
        self._refresh_queued.set()
        try:
            self._refresher.submit(self._refresh, open_session)
        except RuntimeError:
            # The app is stopping and the executor is shut down.
            self._refresh_queued.clear()

    def close(self) -> None:
        """Wait for a running background refresh and drop a queued one."""
        self._refresher.shutdown(wait=True, cancel_futures=True)

    def _refresh(
        self, open_session: Callable[[], AbstractContextManager[Session]]
    ) -> None:
        self._refresh_queued.clear()
        try:
            with open_session() as session:
                self.snapshot(session)
        except Exception:
            # The next request refreshes the matrix itself, and reports its error.
            logger.exception("background refresh of the registrant matrix failed")

    def snapshot(self, session: Session) -> RegistrySnapshot:
        """Return the features of every registrant committed so far.

        Reads only rows changed since the previous call; rebuilds the arrays
        only when something changed.
        """
        with self._lock:
            current = read_version(session)
            if current != self._version or self._snapshot is None:
                self._apply_changes(session, current)
                self._snapshot = self._build(current)
            return self._snapshot

    def _apply_changes(self, session: Session, current: int) -> None:
        started = time.perf_counter()
        with _garbage_collection_paused():
            changed, erased = self._read_changes(session)
            read_seconds = time.perf_counter() - started
            parsed = parse_rows(
                changed,
                skill_columns=self._skill_columns,
                occupation_position=self._occupation_position,
            )
        before = self._columns.count
        self._columns = self._columns.replace(parsed, erased)
        self._version = current
        logger.debug(
            "registry refreshed to version %d: %d rows read in %.3f s, %d erased "
            "ids, %d to %d registrants, %.3f s in all",
            current,
            len(changed),
            read_seconds,
            erased.size,
            before,
            self._columns.count,
            time.perf_counter() - started,
        )

    def _read_changes(self, session: Session) -> tuple[list[Any], NDArray[np.int64]]:
        """Return the rows written and the ids erased since the last version seen."""
        since = self._version
        changed = session.execute(
            select(
                RegistrantRow.id,
                RegistrantRow.agency_id,
                RegistrantRow.external_id,
                RegistrantRow.origin,
                RegistrantRow.features,
                RegistrantRow.vector,
            )
            .where(RegistrantRow.version > since)
            # The version index yields this order. Rows inserted by a bulk load
            # then come in id order and need no reordering.
            .order_by(RegistrantRow.version, RegistrantRow.id)
        ).all()
        erased = np.array(
            session.execute(
                select(RegistrantTombstone.registrant_id).where(
                    RegistrantTombstone.version > since
                )
            )
            .scalars()
            .all(),
            dtype=np.int64,
        )
        return list(changed), erased

    def _skill_columns(self, keys: list[str]) -> NDArray[np.int64]:
        """Return the vocabulary column of each key, adding new keys."""
        vocabulary = self._builder.vocabulary
        distinct = dict.fromkeys(keys)
        # Only the lookup of distinct keys holds the builder lock, which
        # uploads and vacancy profiles need too.
        with self._builder_lock:
            column_of = {key: vocabulary.id_of(key) for key in distinct}
        return np.fromiter(
            map(column_of.__getitem__, keys), dtype=np.int64, count=len(keys)
        )

    def _build(self, version: int) -> RegistrySnapshot:
        started = time.perf_counter()
        columns = self._columns
        with self._builder_lock:
            width = max(len(self._builder.vocabulary), 1)
            skill_columns = dict(self._builder.vocabulary.index)
        features = assemble_features(columns, self._level_columns, width)
        evidence = occupation_evidence(
            OccupationEvidence.build(
                self._builder.taxonomy, skill_columns, features, idf=self._idf
            ),
            columns,
            self._occupation_uris,
        )
        snapshot = RegistrySnapshot(
            version=version,
            features=features,
            evidence=evidence,
            registrant_ids=columns.ids,
            row_of=dict(zip(columns.ids.tolist(), range(columns.count), strict=True)),
        )
        logger.debug(
            "registry matrix of %d registrants built in %.3f s",
            columns.count,
            time.perf_counter() - started,
        )
        return snapshot


@contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector, unless it is off already.

    Decoding 100k rows makes millions of lists and dicts. Each collection
    they trigger scans the whole heap, which contains the taxonomy and the
    model. At 20k rows, reading and decoding took about 1.6 times as long with
    the collector running (measured on 2 shared cores). The objects made here
    hold no reference cycles, so reference counting frees them.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _isco_columns(builder: FeatureBuilder) -> dict[int, dict[str, int]]:
    groups = builder.taxonomy.isco_groups
    return {
        level: {
            code: position
            for position, code in enumerate(
                sorted(c for c in groups if len(c) == level)
            )
        }
        for level in ISCO_LEVELS
    }
