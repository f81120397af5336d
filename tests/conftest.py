"""Shared fixtures: a migrated store on SQLite and on PostgreSQL, free ports, and the rule
that a test missing a system package skips locally but fails in CI."""

from __future__ import annotations

import os
import random
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from store import migrate
from store.engine import make_engine, normalize_url

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REQUIRE_ALL = os.environ.get("THROUGHLINE_REQUIRE_ALL") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with a visible reason locally; under THROUGHLINE_REQUIRE_ALL=1 (CI) fail."""
    if REQUIRE_ALL:
        pytest.fail(f"THROUGHLINE_REQUIRE_ALL=1 and {reason}", pytrace=False)
    pytest.skip(reason)


def wait_until(
    condition: Callable[[], bool], seconds: float = 30.0, what: str = "the condition"
) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds`. For waiting on
    other processes and threads, whose clocks a test cannot inject."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g} s"
        time.sleep(0.05)


def require_binary(name: str, package: str | None = None) -> str:
    """Path of a system binary a test needs, or skip/fail naming the Debian package."""
    path = shutil.which(name)
    if path is None:
        skip_or_fail(f"`{name}` not found: apt-get install {package or name}")
    assert path is not None
    return path


def _ephemeral_floor() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_EPHEMERAL_FLOOR = _ephemeral_floor()
_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now, for a server the test starts later. Chosen below the kernel's
    ephemeral range: a port the kernel picks (bind to 0) can be given to an outgoing
    connection between this call and the server's bind ("address already in use", seen
    in the suite), one below that range cannot."""
    floor = min(_EPHEMERAL_FLOOR, 32768)
    for _ in range(200):
        port = random.randrange(max(1024, floor - 12000), floor)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found below {floor}")


class PostgresLane:
    """One database per test run (dropped at the end), one schema per test inside it."""

    def __init__(self, admin_url: URL) -> None:
        self.admin_url = admin_url
        self.database = f"throughline_test_{uuid.uuid4().hex[:10]}"
        self._admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        self.url = admin_url.set(database=self.database)
        self._run = create_engine(self.url, isolation_level="AUTOCOMMIT")

    def new_schema_url(self) -> tuple[str, URL]:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with self._run.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        return schema, self.url.update_query_dict({"options": f"-csearch_path={schema}"})

    def drop_schema(self, schema: str) -> None:
        with self._run.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))

    def close(self) -> None:
        self._run.dispose()
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self._admin.dispose()


@pytest.fixture(scope="session")
def postgres_lane() -> Iterator[PostgresLane | None]:
    raw = os.environ.get("THROUGHLINE_TEST_DATABASE_URL") or DEFAULT_PG_URL
    try:
        lane = PostgresLane(normalize_url(make_url(raw)))
    except DBAPIError as exc:
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        reason = f"PostgreSQL unreachable at {make_url(raw).render_as_string()}: {first_line}"
        if REQUIRE_ALL:
            pytest.fail(f"THROUGHLINE_REQUIRE_ALL=1 and {reason}", pytrace=False)
        yield None
        # Locally each PostgreSQL test skips with this reason.
        return
    yield lane
    lane.close()


def _pg_reason(lane: PostgresLane | None) -> None:
    if lane is None:
        skip_or_fail(
            "PostgreSQL lane off: no server at THROUGHLINE_TEST_DATABASE_URL "
            f"(default {DEFAULT_PG_URL})"
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'throughline.db'}"
        return
    lane: PostgresLane | None = request.getfixturevalue("postgres_lane")
    _pg_reason(lane)
    assert lane is not None
    schema, url = lane.new_schema_url()
    yield url.render_as_string(hide_password=False)
    lane.drop_schema(schema)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A store migrated to head."""
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()
