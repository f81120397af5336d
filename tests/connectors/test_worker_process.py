"""A worker process killed (SIGKILL) in the middle of a run, then restarted, leaves the
same final state with no duplicate in any system."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from store import migrate
from store.engine import make_engine
from store.outbox import SyncMessage
from tests.connectors.firm import Firm, start_firm

ROOT = Path(__file__).resolve().parents[2]


def _env(store_url: str, urls: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, "THROUGHLINE_DATABASE__URL": store_url}
    for system, url in urls.items():
        prefix = f"THROUGHLINE_SYSTEMS__{system.upper()}"
        env[f"{prefix}__BASE_URL"] = url
        env[f"{prefix}__RATE_LIMIT__REQUESTS_PER_SECOND"] = "500"
        env[f"{prefix}__RATE_LIMIT__BURST"] = "500"
    return env


def _states(engine: sa.Engine) -> Counter[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(SyncMessage.state, sa.func.count()).group_by(SyncMessage.state)
        ).all()
    return Counter({str(state): count for state, count in rows})


def _wait(
    condition: Callable[[], bool],
    what: str,
    worker: subprocess.Popen[str],
    log: Path,
    seconds: float = 180,
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert worker.poll() is None, f"{what} exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _records(firm: Firm, system: str, collection: str) -> list[dict]:  # type: ignore[type-arg]
    return firm.world.services[system].store.all(collection)


def test_a_worker_killed_mid_run_and_restarted_leaves_no_duplicates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    engine = make_engine(url, immediate=True)
    migrate.upgrade(engine)
    firm = start_firm(tmp_path, engine, seed=42, horizon_days=60)
    try:
        firm.run(30)  # a month synced in-process
        firm.world.run_days(30)  # then a month of the firm's work nobody has carried yet
        done_before = _states(engine)["succeeded"]
        env = _env(url, firm.servers.urls)
        command = [
            sys.executable,
            "-m",
            "throughline",
            "worker",
            "--interval",
            "1s",
            "--lease",
            "2s",
        ]
        first_log = tmp_path / "first.log"
        with first_log.open("w") as log:
            first = subprocess.Popen(
                [*command, "--name", "first"],
                env=env,
                cwd=ROOT,
                text=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(
            lambda: _states(engine)["succeeded"] >= done_before + 30,
            "the first worker",
            first,
            first_log,
        )
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
        second_log = tmp_path / "second.log"
        with second_log.open("w") as log:
            second = subprocess.Popen(
                [*command, "--name", "second"],
                env=env,
                cwd=ROOT,
                text=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            quiet = {"rounds": 0}

            def drained() -> bool:
                states = _states(engine)
                busy = states["pending"] + states["running"]
                quiet["rounds"] = quiet["rounds"] + 1 if busy == 0 else 0
                return quiet["rounds"] >= 10  # idle for a second: nothing left, nothing new

            _wait(drained, "the restarted worker", second, second_log)
        finally:
            second.send_signal(signal.SIGINT)
            second.wait(timeout=60)
        assert second.returncode == 0, second_log.read_text()[-3000:]
        assert "worker stopped" in second_log.read_text()
        assert set(_states(engine)) == {"succeeded"}
        won = {o["id"] for o in _records(firm, "crm", "opportunities") if o["isWon"]}
        agreements = Counter(
            a["source_ref"]["opportunity_id"] for a in _records(firm, "clm", "agreements")
        )
        assert set(agreements) == won and max(agreements.values()) == 1
        executed = [a for a in _records(firm, "clm", "agreements") if a["status"] == "executed"]
        for system, collection, field, expected in (
            (
                "erp",
                "customers",
                "externalId",
                {a["counterparty"]["crm_account_id"] for a in executed},
            ),
            ("psa", "workspaces", "external_reference", {a["id"] for a in executed}),
            ("billing", "billing_schedules", "contract_number", {a["id"] for a in executed}),
            ("billing", "charges", "source_reference", None),
            (
                "erp",
                "ar_postings",
                "externalId",
                {i["id"] for i in _records(firm, "billing", "invoices")},
            ),
        ):
            counts = Counter(r[field] for r in _records(firm, system, collection))
            assert counts and max(counts.values()) == 1, (system, collection)
            if expected is not None:
                assert set(counts) == expected, (system, collection)
    finally:
        firm.stop()
