"""A seeded store per test (on SQLite and on the PostgreSQL lane) and a signed-in app."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from tests.dashboard.seed import NOW, PASSWORD, seed

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture
def seeded(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The seeded store, and the environment pointing the app at it."""
    seed(engine)
    monkeypatch.setenv("THROUGHLINE_DATABASE__URL", database_url)
    monkeypatch.delenv("THROUGHLINE_CONFIG", raising=False)
    yield engine


def open_app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["clock"] = NOW
    return at.run()


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    at.text_input(key="sign_in_username").input(username)
    at.text_input(key="sign_in_password").input(password)
    return at.button[0].click().run()


@pytest.fixture
def app_as(seeded: Engine) -> Callable[[str], AppTest]:
    def _open(username: str) -> AppTest:
        at = sign_in(open_app(), username)
        assert not at.exception, at.exception
        return at

    return _open
