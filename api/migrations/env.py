"""Alembic environment: runs on the connection the service passes in.

:meth:`api.db.Database.upgrade` puts an open connection in
``config.attributes["connection"]``. Without one (the ``alembic`` command line
with ``-x url=...``), an engine is made from that URL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from api.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations(connection: Connection) -> None:
    is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(
            "no database connection; pass one with "
            "`alembic -x url=sqlite:///file.sqlite ...`"
        )
    with create_engine(url).begin() as new_connection:
        run_migrations(new_connection)
