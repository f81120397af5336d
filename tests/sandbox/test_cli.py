"""`throughline sandbox up` and `backfill` as a user runs them: real processes, ports
from the configuration, real HTTP, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from sandbox.services import SYSTEMS
from tests.conftest import free_port

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
    first = _run(["sandbox", "backfill", "--days", "21", "--dir", str(tmp_path)])
    assert first.returncode == 0, first.stderr
    assert "crm      36 accounts" in first.stdout
    assert "psa      36 users" in first.stdout
    assert (tmp_path / "crm.db").exists() and (tmp_path / "erp.db").exists()
    again = _run(["sandbox", "backfill", "--days", "7", "--dir", str(tmp_path)])
    assert again.returncode == 0, again.stderr
    first_end = first.stdout.split(" .. ")[1].split(" ")[0]
    second_start = again.stdout.split("simulated ")[1].split(" ..")[0]
    assert second_start > first_end
    other = _run(["sandbox", "backfill", "--days", "7", "--seed", "9", "--dir", str(tmp_path)])
    assert other.returncode == 1
    assert "belongs to seed 42" in other.stderr


def test_up_serves_the_five_systems_on_the_configured_ports_until_ctrl_c(tmp_path: Path) -> None:
    ports = {system: free_port() for system in SYSTEMS}
    env = {
        f"THROUGHLINE_SYSTEMS__{s.upper()}__BASE_URL": f"http://127.0.0.1:{p}"
        for s, p in ports.items()
    }
    env["THROUGHLINE_SANDBOX__ADMIN_KEY"] = "cli-admin"
    proc = subprocess.Popen(
        [
            *THROUGHLINE,
            "sandbox",
            "up",
            "--seed",
            "3",
            "--faults",
            "chaos",
            "--speedup",
            "3600",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
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
            assert faults.json()["config"]["error_rate"] == 0.08  # the chaos profile
            clock = httpx.get(f"http://127.0.0.1:{port}/admin/clock", headers=admin).json()
            clocks[system] = clock["simulated"]
            openapi = httpx.get(f"http://127.0.0.1:{port}/openapi.json")
            assert openapi.status_code == 200
        # The simulated clock runs at 3600x: an hour a second.
        later = httpx.get(f"http://127.0.0.1:{ports['crm']}/admin/clock", headers=admin).json()
        assert later["simulated"] > clocks["crm"]
        # The configured secret works against the configured port.
        token = httpx.post(
            f"http://127.0.0.1:{ports['erp']}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "throughline",
                "client_secret": "sandbox-erp",
            },
        )
        assert token.status_code in (200, 500, 502, 503, 504)  # chaos may answer 5xx
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "sandbox stopped." in out
    assert f"crm      http://127.0.0.1:{ports['crm']}" in out
