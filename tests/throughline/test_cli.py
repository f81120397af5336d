"""The command line as a user drives it: real processes, real signals, real HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from store import migrate
from store.engine import make_engine
from store.schema import metadata
from tests.conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
THROUGHLINE = [sys.executable, "-m", "throughline"]


def run(
    args: list[str], env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*THROUGHLINE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
        **kw,  # type: ignore[arg-type]
    )


def test_migrate_up_and_down_through_the_command_line(database_url: str) -> None:
    env = {"THROUGHLINE_DATABASE__URL": database_url}
    up = run(["migrate"], env)
    assert up.returncode == 0, up.stderr
    assert f"empty -> {migrate.head_revision()}" in up.stdout
    assert set(sa.inspect(make_engine(database_url)).get_table_names()) >= set(metadata.tables)
    assert run(["migrate", "status"], env).returncode == 0

    down = run(["migrate", "down", "--yes"], env)
    assert down.returncode == 0, down.stderr
    assert f"{migrate.head_revision()} -> base" in down.stdout
    assert set(sa.inspect(make_engine(database_url)).get_table_names()) <= {"alembic_version"}
    status = run(["migrate", "status"], env)
    assert status.returncode == 1
    assert "behind" in status.stdout


def test_migrate_down_asks_before_dropping_data(tmp_path: Path) -> None:
    env = {"THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path}/t.db"}
    assert run(["migrate"], env).returncode == 0
    refused = run(["migrate", "down"], env, input="n\n")
    assert refused.returncode != 0
    assert "spans" in sa.inspect(make_engine(env["THROUGHLINE_DATABASE__URL"])).get_table_names()


def test_check_config_names_three_mistakes_and_exits_non_zero(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "systems:\n"
        "  erp: {base_url: 'erp dot example', auth: {kind: api_key, api_key: k}}\n"
        "retention: {spans: forever}\n"
        "alerts: {rules: [{name: r, kind: dead_letters, threshold: 1, colour: red}]}\n"
    )
    result = run(["check-config", str(path)])
    assert result.returncode == 2
    assert "3 problem(s)" in result.stderr
    assert "systems.erp.base_url: not a URL: 'erp dot example'" in result.stderr
    assert "retention.spans: not a duration: 'forever'" in result.stderr
    assert "alerts.rules[0].colour: unknown key" in result.stderr


def test_check_config_says_ok_on_the_example_file() -> None:
    result = run(["check-config", str(ROOT / "throughline.example.yaml")])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK")


def test_every_command_explains_itself_in_help() -> None:
    top = run(["--help"])
    assert top.returncode == 0
    for command in [
        "demo",
        "serve",
        "dashboard",
        "migrate",
        "check-config",
        "prune",
        "sandbox",
        "kpis",
        "deals",
        "dlq",
        "alerts",
        "export",
        "probes",
    ]:
        assert f" {command} " in top.stdout, command
        sub = run([command, "--help"])
        assert sub.returncode == 0, (command, sub.stderr)
        assert "Usage:" in sub.stdout


def test_a_command_not_built_yet_says_so_and_fails() -> None:
    result = run(["alerts", "ack"])
    assert result.returncode != 0
    assert "not built yet" in result.stderr
    assert "Nothing was done" in result.stderr


def test_a_bad_config_stops_a_command_before_it_does_anything(tmp_path: Path) -> None:
    result = run(["migrate"], {"THROUGHLINE_DATABASE__URL": "oracle://x/y"})
    assert result.returncode == 2
    assert "database.url: unsupported database 'oracle'" in result.stderr
    assert "Traceback" not in result.stderr


def _wait_healthy(url: str, proc: subprocess.Popen[str], deadline_s: float = 30) -> httpx.Response:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited early: {proc.communicate()}")
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not up within {deadline_s}s")


@pytest.fixture
def demo_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path}/var/throughline.db",
        "THROUGHLINE_SERVER__PORT": str(free_port()),
        "THROUGHLINE_DASHBOARD__PORT": str(free_port()),
        "THROUGHLINE_SANDBOX__DIRECTORY": str(tmp_path / "sandbox"),
        "THROUGHLINE_SANDBOX__HISTORY_DAYS": "14",
        "THROUGHLINE_PROBES__HEALTH_INTERVAL": "5s",
    }
    for system in ("CRM", "CLM", "PSA", "BILLING", "ERP"):
        env[f"THROUGHLINE_SYSTEMS__{system}__BASE_URL"] = f"http://127.0.0.1:{free_port()}"
    yield env


def test_demo_builds_history_serves_everything_and_stops_cleanly_on_ctrl_c(
    demo_env: dict[str, str],
) -> None:
    port, dashboard = demo_env["THROUGHLINE_SERVER__PORT"], demo_env["THROUGHLINE_DASHBOARD__PORT"]
    proc = subprocess.Popen(
        [*THROUGHLINE, "demo"],
        env=demo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = _wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, deadline_s=240)
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "store": "ok", "schema": migrate.head_revision()}
        deals = httpx.get(f"http://127.0.0.1:{port}/api/v1/deals").json()["deals"]
        assert deals, "the demo built no history"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert "throughline_store_up 1.0" in metrics
        crm = demo_env["THROUGHLINE_SYSTEMS__CRM__BASE_URL"]
        assert httpx.get(f"{crm}/healthz").json()["system"] == "crm"  # the firm is live
        # The scheduler runs the probes against the live firm: the CRM answers, healthy.
        healthy = 'throughline_probe_status{kind="health",probe="health.crm",system="crm"} 0.0'
        wait_until(
            lambda: healthy in httpx.get(f"http://127.0.0.1:{port}/metrics").text,
            60,
            "a health probe result on /metrics",
        )
        page = _wait_healthy(f"http://127.0.0.1:{dashboard}/", proc, deadline_s=60)
        assert page.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "demo stopped." in out
    assert "Traceback" not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{dashboard}/", timeout=2)  # the dashboard stopped too


def test_serve_refuses_a_store_that_is_not_migrated(demo_env: dict[str, str]) -> None:
    result = subprocess.run(
        [*THROUGHLINE, "serve"],
        env=demo_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "run `throughline migrate` first" in result.stderr


def test_a_token_created_on_the_command_line_opens_ingest_until_revoked(tmp_path: Path) -> None:
    from collector.auth import TokenVerifier

    url = f"sqlite:///{tmp_path}/t.db"
    env = {"THROUGHLINE_DATABASE__URL": url}
    assert run(["migrate"], env).returncode == 0
    created = run(["tokens", "create", "mulesoft", "--scope", "ingest", "--expires-in", "30d"], env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("tl_")
    assert "not shown again" in created.stderr
    verifier = TokenVerifier(make_engine(url), cache_seconds=0)
    assert verifier.allows(f"Bearer {token}", "ingest")
    assert not verifier.allows(f"Bearer {token}", "replay")
    listed = run(["tokens", "list"], env)
    assert "mulesoft" in listed.stdout and token not in listed.stdout
    assert run(["tokens", "create", "mulesoft"], env).returncode == 2
    assert run(["tokens", "revoke", "mulesoft"], env).returncode == 0
    assert not verifier.allows(f"Bearer {token}", "ingest")


def test_deals_list_and_show_read_what_the_collector_stored(engine: sa.Engine) -> None:
    import datetime as dt
    from decimal import Decimal

    from collector.lifecycle import Observation
    from collector.lifecycle_store import LifecycleApplier

    t0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    with engine.begin() as conn:
        LifecycleApplier(conn, t0).apply(
            [
                Observation(
                    "a",
                    "closed_won",
                    t0,
                    "OPP-1",
                    {},
                    Decimal("5000"),
                    "EUR",
                    details={"account_name": "Acme GmbH"},
                ),
                Observation(
                    "b",
                    "contract_executed",
                    t0 + dt.timedelta(days=1),
                    "OPP-1",
                    {"contract": "CTR-1"},
                ),
            ]
        )
    env = {"THROUGHLINE_DATABASE__URL": engine.url.render_as_string(hide_password=False)}
    listed = run(["deals", "list"], env)
    assert listed.returncode == 0, listed.stderr
    assert "OPP-1" in listed.stdout and "Acme GmbH" in listed.stdout
    assert "5,000.00 EUR" in listed.stdout
    shown = run(["deals", "show", "OPP-1"], env)
    assert shown.returncode == 0, shown.stderr
    assert "contract CTR-1" in shown.stdout and "contract_executed" in shown.stdout
    assert run(["deals", "show", "OPP-404"], env).returncode == 1
    empty = run(["deals", "list", "--stage", "first_cash"], env)
    assert "no deals match" in empty.stdout
    bogus = run(["deals", "list", "--stage", "posted"], env)
    assert bogus.returncode == 2
    assert "--stage: unknown stage 'posted': choose from closed_won," in bogus.stderr

    long_id = "0065g00000XYZ7766554"  # a Salesforce-style id
    with engine.begin() as conn:
        LifecycleApplier(conn, t0).apply(
            [
                Observation(
                    "c",
                    "closed_won",
                    t0,
                    long_id,
                    {},
                    Decimal("1250000"),
                    "USD",
                    details={"account_name": "Northwind Professional Services"},
                )
            ]
        )
    # 80 columns: the id `deals show` takes and the value are never cut; the rest wraps
    crowded = run(["deals", "list", "-q", long_id], env).stdout
    assert long_id in crowded and "1,250,000.00 USD" in crowded
