"""The migrations create exactly the declared schema on both databases, and undo it."""

from __future__ import annotations

import sqlalchemy as sa

from store import migrate
from store.engine import make_engine
from store.schema import metadata


def test_upgrade_creates_every_declared_table_and_leaves_no_autogenerate_diff(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.schema_drift(engine) == []


def test_downgrade_to_base_drops_everything_and_upgrade_again_works(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert migrate.schema_drift(engine) == []


def test_drift_check_notices_a_table_the_migrations_do_not_create(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_spans_flow_start_unix_nano"))
    drift = migrate.schema_drift(engine)
    assert [d[0] for d in drift] == ["add_index"]
    assert drift[0][1].name == "ix_spans_flow_start_unix_nano"
