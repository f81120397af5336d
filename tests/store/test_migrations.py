"""The migrations create exactly the declared schema on both databases, and undo it."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from store import migrate
from store.engine import make_engine
from store.schema import metadata
from store.telemetry import WebhookSource


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


def test_whole_kpi_snapshots_become_changes_and_back(database_url: str) -> None:
    """Migration 0003: rows stored as whole snapshots (every value at every refresh) read
    the same at every stored moment afterwards, and a downgrade restores them."""
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0002")
    insert = sa.text(
        'INSERT INTO kpi_snapshots (kpi, "window", dimension, dimension_value, as_of, value, '
        "unit, member_count) VALUES (:kpi, '30d', 'all', 'all', :at, :value, 'USD', 1)"
    )
    first, second = "2026-06-01 00:00:00.000000", "2026-06-02 00:00:00.000000"
    with engine.begin() as conn:
        conn.execute(
            insert,
            [
                {"kpi": "dso", "at": first, "value": 40.0},
                {"kpi": "backlog", "at": first, "value": 10.0},
                {"kpi": "dso", "at": second, "value": 41.0},
            ],
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        refreshes = conn.execute(
            sa.text('SELECT "values", changed FROM kpi_refreshes ORDER BY as_of')
        ).all()
        rows = conn.execute(
            sa.text(
                "SELECT kpi, value, superseded_at IS NULL FROM kpi_snapshots ORDER BY as_of, kpi"
            )
        ).all()
    assert [tuple(r) for r in refreshes] == [(2, 2), (1, 1)]
    # backlog was not in the second snapshot: it ends there, as dso's first value does
    assert [(k, v, bool(c)) for k, v, c in rows] == [
        ("backlog", 10.0, False),
        ("dso", 40.0, False),
        ("dso", 41.0, True),
    ]
    migrate.downgrade(engine, "0002")
    with engine.connect() as conn:
        back = conn.execute(
            sa.text("SELECT kpi, value FROM kpi_snapshots ORDER BY as_of, kpi")
        ).all()
    assert [tuple(r) for r in back] == [("backlog", 10.0), ("dso", 40.0), ("dso", 41.0)]


def test_webhook_sources_are_filled_from_stored_cloudevents(database_url: str) -> None:
    """Migration 0004: each CloudEvent source's last event and count, from the dedup keys
    of the lifecycle events already stored (`ce:<source>:<id>`); spans are not sources."""
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0003")
    insert = sa.text(
        "INSERT INTO lifecycle_events (dedup_key, object_type, object_id, stage, occurred_at, "
        "recorded_at) VALUES (:key, 'deal', 'D1', 'closed_won', :at, :at)"
    )
    with engine.begin() as conn:
        conn.execute(
            insert,
            [
                {"key": "ce:/sandbox/psa:psa-1", "at": "2026-06-01 00:00:00.000000"},
                {"key": "ce:/sandbox/psa:psa-2", "at": "2026-06-03 00:00:00.000000"},
                {"key": "ce:/sandbox/psa:psa-3", "at": "2026-06-02 00:00:00.000000"},
                {"key": "ce:urn:billing:zuora:evt-9", "at": "2026-06-04 12:30:00.000000"},
                {"key": "span:0af7651916cd43dd:b7ad6b71", "at": "2026-06-05 00:00:00.000000"},
            ],
        )
    migrate.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                WebhookSource.source, WebhookSource.last_received_at, WebhookSource.events
            ).order_by(WebhookSource.source)
        ).all()
    utc = dt.UTC
    assert [tuple(r) for r in rows] == [
        ("/sandbox/psa", dt.datetime(2026, 6, 3, tzinfo=utc), 3),
        ("urn:billing:zuora", dt.datetime(2026, 6, 4, 12, 30, tzinfo=utc), 1),
    ]
    migrate.downgrade(engine, "0003")
    assert "webhook_sources" not in sa.inspect(engine).get_table_names()
    engine.dispose()
