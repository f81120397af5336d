"""`throughline probes list|run|show` on a migrated store (SQLite: the commands are the
same on PostgreSQL, which the probe tests cover)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from throughline.cli import app


def run(args: list[str], env: dict[str, str]) -> Any:
    """In-process: the same command line, without a Python start per call."""
    return CliRunner().invoke(app, args, env=env)


def test_list_run_and_show(tmp_path: Path) -> None:
    env = {"THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path}/store.db"}
    assert run(["migrate"], env).exit_code == 0

    listed = run(["probes", "list", "--format", "json"], env)
    assert listed.exit_code == 0, listed.stderr
    rows = {row["probe"]: row for row in json.loads(listed.stdout)}
    assert {"health.crm", "freshness.outbox", "stuck.deals", "reconcile.invoices_vs_postings"} <= (
        set(rows)
    )
    assert rows["stuck.deals"]["status"] is None  # never run yet
    assert rows["health.erp"]["every"] == "0:01:00"
    table = run(["probes", "list"], env).stdout  # 80 columns
    assert "reconcile.contracts_vs_schedules" in table  # whole: `probes run` takes it
    assert "│ health.erp " in table and " 1m " in table

    ran = run(["probes", "run", "freshness.outbox"], env)
    assert ran.exit_code == 0, ran.stderr
    assert "freshness.outbox: ok" in ran.stdout
    shown = run(["probes", "show", "freshness.outbox"], env)
    assert "no overdue sync messages" in shown.stdout
    again = json.loads(run(["probes", "list", "--format", "json"], env).stdout)
    assert {r["probe"]: r["status"] for r in again}["freshness.outbox"] == "ok"

    # Nothing listens on the sandbox ports here: the health probe fails, and so does the run.
    down = run(
        ["probes", "run", "health.crm"],
        {**env, "THROUGHLINE_SYSTEMS__CRM__BASE_URL": "http://127.0.0.1:9"},
    )
    assert down.exit_code == 1
    assert "health.crm: fail" in down.stdout
    assert "unreachable" in down.stdout


def test_a_wrong_name_or_no_name_is_a_clear_error(tmp_path: Path) -> None:
    env = {"THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path}/store.db"}
    assert run(["migrate"], env).exit_code == 0
    wrong = run(["probes", "run", "health.sap"], env)
    assert wrong.exit_code == 2
    assert "no probe named 'health.sap'" in wrong.stderr
    assert "health.crm" in wrong.stderr
    none = run(["probes", "run"], env)
    assert none.exit_code == 2
    assert "pass --all" in none.stderr
    never = run(["probes", "show", "stuck.deals"], env)
    assert never.exit_code == 1
    assert "no result stored yet" in never.stdout
