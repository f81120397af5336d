"""`throughline dashboard` serves the app on the configured port and stops on Ctrl-C;
`throughline users add` stores a bcrypt hash the dashboard accepts."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from dashboard.accounts import authenticate
from store.access import User
from store.states import Role
from tests.conftest import free_port

THROUGHLINE = [sys.executable, "-m", "throughline"]


def test_dashboard_command_serves_on_the_configured_port_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path / 'throughline.db'}",
        "THROUGHLINE_DASHBOARD__PORT": str(port),
    }
    proc = subprocess.Popen(
        [*THROUGHLINE, "dashboard"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not come up in 60 s"
            time.sleep(0.3)
        # Ctrl-C in a terminal signals the whole process group.
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    assert f"dashboard on http://127.0.0.1:{port}" in out
    assert "Traceback" not in out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_users_add_prompts_for_the_password_and_stores_only_a_bcrypt_hash(
    engine: Engine, database_url: str
) -> None:
    result = subprocess.run(
        [*THROUGHLINE, "users", "add", "dana", "--role", "finance"],
        input="s3cret pass\ns3cret pass\n",
        capture_output=True,
        text=True,
        env={**os.environ, "THROUGHLINE_DATABASE__URL": database_url},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "added 'dana' as finance" in result.stdout
    with engine.connect() as conn:
        stored = conn.execute(select(User.password_hash, User.role)).one()
    assert stored.password_hash.startswith("$2") and "s3cret" not in stored.password_hash
    assert stored.role == Role.FINANCE
    signed = authenticate(engine, "dana", "s3cret pass")
    assert signed is not None and signed.role is Role.FINANCE
    assert authenticate(engine, "dana", "wrong") is None


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        ("2026-06-26 10:00", 5, "2026-07-03 10:00"),  # Friday + 5 business days
        ("2026-06-27 10:00", 1, "2026-06-30 00:00"),  # Saturday: the clock starts Monday
        ("2026-06-29 09:00", 4, "2026-07-03 09:00"),  # Monday + 4
    ],
    ids=["friday", "saturday", "monday"],
)
def test_business_days_count_monday_to_friday(start: str, days: int, due: str) -> None:
    from probes.sla_clock import add_business_days

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)

    assert add_business_days(at(start), days) == at(due)
