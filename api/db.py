"""Database engine, sessions and migrations for SQLite and PostgreSQL.

Write transactions differ by database:

- On SQLite, :meth:`Database.write_session` starts with ``BEGIN IMMEDIATE``,
  which takes the database's write lock at once. Writers therefore run one at
  a time, and a transaction never fails half-way when it upgrades a read lock.
  The file is in WAL mode, so readers go on while a writer holds the lock.
- On PostgreSQL, transactions are READ COMMITTED; quota updates rely on row
  locks taken by conditional ``UPDATE`` statements (see
  :mod:`api.services.selections`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Seconds a SQLite connection waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_SECONDS = 60.0

_IMMEDIATE_OPTION = "labourmatch_begin_immediate"


def create_database_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 50
) -> Engine:
    """Create an engine for a SQLite or ``postgresql+psycopg`` URL."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
            },
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True
    )


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite issues its own BEGIN lazily and cannot say IMMEDIATE; turning its
    # transaction handling off lets the "begin" hook below emit the statement.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine with read and write session factories.

    Parameters
    ----------
    engine
        Engine from :func:`create_database_engine`.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self.is_postgresql = engine.dialect.name == "postgresql"
        write_engine = engine.execution_options(**{_IMMEDIATE_OPTION: True})
        self._reader = sessionmaker(bind=engine, expire_on_commit=False)
        self._writer = sessionmaker(bind=write_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Open a session for reads and small writes; commit on success."""
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """Open a session whose transaction takes the SQLite write lock at once."""
        with self._writer() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied."""
        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        logger.debug("database schema is at the latest migration")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config() -> Config:
    """Return an Alembic configuration built in code, with no alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config
