"""A migrated store shared by the tests of one module (migrating per test is what makes
a database test slow), on SQLite or on the PostgreSQL lane of tests/conftest.py."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from store import migrate
from store.engine import make_engine
from tests.conftest import PostgresLane, skip_or_fail


@contextlib.contextmanager
def module_store(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "sqlite":
        folder = request.getfixturevalue("tmp_path_factory").mktemp("kpis")
        engine = make_engine(f"sqlite:///{folder / 'throughline.db'}")
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
        return
    lane: PostgresLane | None = request.getfixturevalue("postgres_lane")
    if lane is None:
        skip_or_fail("PostgreSQL lane off: no server at THROUGHLINE_TEST_DATABASE_URL")
    assert lane is not None
    schema, url = lane.new_schema_url()
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    lane.drop_schema(schema)
