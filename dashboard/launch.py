"""Start the dashboard: `streamlit run dashboard/app.py` as a child process, headless, on
`dashboard.host` / `dashboard.port`, with the same configuration the command line read."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from throughline.config import Settings

logger = logging.getLogger(__name__)

APP = Path(__file__).resolve().parent / "app.py"


def streamlit_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={settings.dashboard.host}",
        f"--server.port={settings.dashboard.port}",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        "--client.toolbarMode=minimal",
    ]


def run_dashboard(
    settings: Settings, config_file: Path | None, environ: Mapping[str, str] | None = None
) -> int:
    """Run the dashboard until Ctrl-C (or SIGTERM); returns Streamlit's exit code.

    The child reads its settings as the command line did: the same config file (passed as
    THROUGHLINE_CONFIG) and the same THROUGHLINE_* environment."""
    env = dict(os.environ if environ is None else environ)
    if config_file is not None:
        env["THROUGHLINE_CONFIG"] = str(config_file.resolve())
    child = subprocess.Popen(streamlit_command(settings), env=env)
    previous = signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        return child.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to the whole process group; give Streamlit time to stop.
        try:
            return child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            logger.warning("the dashboard did not stop within 10 s; killing it")
            child.kill()
            return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
