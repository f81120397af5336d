"""A real Tryton ERP for the demo: a ready database under ./var (built once, about a
minute) served by `trytond` on its own port, and the settings that point the ERP there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from pydantic import AnyHttpUrl, SecretStr

from throughline.config import Settings, Systems, SystemSettings, TrytonAuth

DATABASE = "firm"
PASSWORD = "admin"  # the demo's own local ERP, reachable on loopback only


class TrytonUnavailable(RuntimeError):
    pass


def start_tryton(directory: Path, port: int) -> subprocess.Popen[bytes]:
    """Build the database if it is not there yet, then start trytond and wait for it."""
    try:
        from connectors.tryton_setup import build_database, write_config
    except ImportError as exc:  # pragma: no cover - the extra is part of make test
        raise TrytonUnavailable(str(exc)) from exc
    trytond = shutil.which("trytond", path=str(Path(sys.executable).parent))
    if trytond is None:
        raise TrytonUnavailable(
            "trytond is not installed: .venv/bin/pip install -e '.[tryton]' (make test does)"
        )
    if not (directory / "ready").exists():
        build_database(directory, DATABASE, PASSWORD)
        (directory / "ready").touch()
    config = write_config(directory, port)
    server = subprocess.Popen(
        [trytond, "-c", str(config), "-d", DATABASE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/{DATABASE}/rpc/"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.post(
                url, json={"id": 0, "method": "common.server.version", "params": []}, timeout=2
            )
            return server
        except httpx.TransportError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise TrytonUnavailable(f"trytond did not start on port {port}") from None
            time.sleep(0.2)


def with_tryton(settings: Settings, port: int) -> Settings:
    erp = SystemSettings(
        base_url=AnyHttpUrl(f"http://127.0.0.1:{port}"),
        auth=TrytonAuth(database=DATABASE, username="admin", password=SecretStr(PASSWORD)),
    )
    systems = {s: getattr(settings.systems, s) for s in ("crm", "clm", "psa", "billing")}
    return settings.model_copy(update={"systems": Systems(**systems, erp=erp)})
