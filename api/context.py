"""Everything one app instance shares between requests.

The app factory builds one :class:`ServiceContext` and stores it on
``app.state.context``; routes reach it through :func:`api.deps.get_context`.
Nothing here is module-level state, so several apps (the tests make one per
database) live side by side in one process.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from api.db import Database
from api.services.registry import RegistrantRegistry
from api.settings import Settings
from matching.features import VacancyProfile
from matching.rounds import MatchingEngine


@dataclass
class ServiceContext:
    """Settings, database, engine and caches of one running app.

    Attributes
    ----------
    settings
        The validated settings.
    database
        Engine and session factories.
    engine
        The matching engine (taxonomy, normaliser, label encoder).
    registry
        The registrant matrix cache.
    pseudonym_secret
        HMAC key of candidate pseudonyms.
    builder_lock
        Held while the feature builder runs: its skill vocabulary is a plain
        dict that grows as new skills are seen.
    shortlist_lock
        Serialises shortlist builds in this process, so two builds never count
        the same remaining quota twice. PostgreSQL builds also take an advisory
        lock, which covers several processes.
    rounds
        Runs matching rounds in the background, one at a time.
    uploads_in_progress
        Agencies with an upload running in this process; ``upload_guard``
        guards the set.
    vacancy_profiles
        Built vacancy profiles by (vacancy row id, stored record), so that a
        repeated shortlist request does not wait for the builder lock.
    """

    settings: Settings
    database: Database
    engine: MatchingEngine
    registry: RegistrantRegistry
    pseudonym_secret: bytes
    builder_lock: threading.RLock
    shortlist_lock: threading.Lock = field(default_factory=threading.Lock)
    rounds: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="round"
        )
    )
    uploads_in_progress: set[str] = field(default_factory=set)
    upload_guard: threading.Lock = field(default_factory=threading.Lock)
    vacancy_profiles: dict[tuple[int, str], VacancyProfile] = field(
        default_factory=dict
    )
