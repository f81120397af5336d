"""`throughline sandbox up` and `backfill` as a user runs them: real processes, ports
from the configuration, real HTTP, Ctrl-C."""

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

from sandbox.runner import SandboxOptions, backfill
from sandbox.services import SYSTEMS
from tests.conftest import free_port
from tests.sandbox.http import client_for

THROUGHLINE = [sys.executable, "-m", "throughline"]


def _run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*THROUGHLINE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def test_backfill_simulates_history_and_goes_on_from_where_it_stopped(tmp_path: Path) -> None:
    # The backfill runs our syncs too: their store goes under tmp_path, not ./var.
    store = {"THROUGHLINE_DATABASE__URL": f"sqlite:///{tmp_path}/store.db"}
    first = _run(["sandbox", "backfill", "--days", "14", "--dir", str(tmp_path)], store)
    assert first.returncode == 0, first.stderr
    assert "crm      36 accounts" in first.stdout
    assert "psa      36 users" in first.stdout
    assert (tmp_path / "crm.db").exists() and (tmp_path / "erp.db").exists()
    first_end = dt.date.fromisoformat(first.stdout.split(" .. ")[1].split(" ")[0])
    again = backfill(SandboxOptions(directory=tmp_path), 3, dt.date.today())
    assert again.first_day == first_end + dt.timedelta(days=1)
    assert again.last_day == first_end + dt.timedelta(days=3)
    assert again.records["crm"]["opportunities"] >= int(
        first.stdout.split("accounts, ")[1].split(" opportunities")[0]
    )
    # One directory, one world: another seed is refused before anything is written.
    with pytest.raises(ValueError, match="belongs to seed 42"):
        backfill(SandboxOptions(directory=tmp_path, seed=9), 3, dt.date.today())


def test_up_serves_the_five_systems_on_the_configured_ports_until_ctrl_c(tmp_path: Path) -> None:
    ports = {system: free_port() for system in SYSTEMS}
    env = {
        f"THROUGHLINE_SYSTEMS__{s.upper()}__BASE_URL": f"http://127.0.0.1:{p}"
        for s, p in ports.items()
    }
    env["THROUGHLINE_SANDBOX__ADMIN_KEY"] = "cli-admin"
    config = tmp_path / "throughline.yaml"
    config.write_text("sandbox:\n  system_faults:\n    crm: {error_rate: 0.0, latency_ms: 0}\n")
    proc = subprocess.Popen(
        [
            *THROUGHLINE,
            "-c",
            str(config),
            "sandbox",
            "up",
            "--seed",
            "3",
            "--faults",
            "chaos",
            "--speedup",
            "86400",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        # as when a script starts it in the background: SIGINT inherited as ignored, and
        # `kill -INT` (what Ctrl-C sends) must stop it all the same
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        admin = {"X-Admin-Key": "cli-admin"}
        deadline = time.monotonic() + 60
        clocks: dict[str, str] = {}
        for system, port in ports.items():
            while True:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, f"{system} not up"
                try:
                    faults = httpx.get(f"http://127.0.0.1:{port}/admin/faults", headers=admin)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert faults.status_code == 200
            # The chaos profile, but CRM calmed down by the configuration.
            assert faults.json()["config"]["error_rate"] == (0.0 if system == "crm" else 0.08)
            assert faults.json()["config"]["token_ttl_seconds"] == 300
            clock = httpx.get(f"http://127.0.0.1:{port}/admin/clock", headers=admin).json()
            clocks[system] = clock["simulated"]
            openapi = httpx.get(f"http://127.0.0.1:{port}/openapi.json")
            assert openapi.status_code == 200
        # The simulated clock runs at 86400x: a day a second.
        later = httpx.get(f"http://127.0.0.1:{ports['crm']}/admin/clock", headers=admin).json()
        assert later["simulated"] > clocks["crm"]
        # Calm CRM down at run time; the configured secret works on the configured port,
        # and sales open opportunities as the simulated days go by (a day a second).
        crm = f"http://127.0.0.1:{ports['crm']}"
        calm = httpx.put(f"{crm}/admin/faults", json={"profile": "none"}, headers=admin)
        assert calm.status_code == 200
        with client_for(crm, "crm") as client:
            while True:
                assert time.monotonic() < deadline, "no opportunity opened in live mode"
                listed = client.get("/services/data/v59.0/opportunities").json()
                if listed["totalSize"] > 0:
                    break
                time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "sandbox stopped." in out
    assert f"crm      http://127.0.0.1:{ports['crm']}" in out


def test_a_bad_per_system_fault_setting_is_named_by_its_key() -> None:
    options = SandboxOptions(directory=Path("unused"), system_faults={"erp": {"error_rate": 3}})
    with pytest.raises(ValueError, match=r"sandbox.system_faults.erp.error_rate"):
        options.fault_configs()
    calm = SandboxOptions(directory=Path("unused"), faults="chaos", system_faults={"psa": {}})
    assert calm.fault_configs()["psa"].error_rate == 0.08
