"""In CI (THROUGHLINE_REQUIRE_ALL=1) an unreachable PostgreSQL fails the run, never skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def _pytest_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/store/test_migrations.py::test_upgrade_creates_every_declared_table_and_leaves_no_autogenerate_diff",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_unreachable_postgres_fails_the_suite_when_everything_is_required() -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    result = _pytest_with({"THROUGHLINE_REQUIRE_ALL": "1", "THROUGHLINE_TEST_DATABASE_URL": dead})
    assert result.returncode != 0
    assert "1 passed" in result.stdout and "1 error" in result.stdout
    assert "PostgreSQL unreachable" in result.stdout


def test_unreachable_postgres_skips_visibly_locally() -> None:
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    result = _pytest_with({"THROUGHLINE_REQUIRE_ALL": "0", "THROUGHLINE_TEST_DATABASE_URL": dead})
    assert result.returncode == 0
    assert "1 passed, 1 skipped" in result.stdout
