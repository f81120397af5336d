"""Alembic environment, configured from code (see store.migrate): the caller hands over a
live connection in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from store.schema import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `throughline migrate` (store.migrate), not bare alembic"
    )
run_migrations(connection)
