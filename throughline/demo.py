"""The demo on the embedded default: the sandbox firm with months of history synced by our
connectors, then the firm live on its accelerated clock with the syncs running, and
`serve` (collector, KPI refresh, retention) and the dashboard, until Ctrl-C."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy import Engine, func, select

from store.objects import Deal
from throughline.config import Settings
from throughline.runtime import serve

logger = logging.getLogger(__name__)


def _has_history(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(Deal)).scalar())


def build_history(settings: Settings, engine: Engine, console: Console, days: int) -> None:
    from throughline.commands.sandbox import sandbox_options
    from throughline.history import backfill_with_syncs

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"building {days} days of history", total=days)
        history = backfill_with_syncs(
            settings,
            engine,
            sandbox_options(settings),
            days,
            dt.date.today(),
            on_day=lambda _day: progress.advance(task),
        )
    report = history.sandbox
    console.print(
        f"  history {report.first_day} .. {report.last_day}: {report.figures['deals_won']} deals "
        f"won, {history.messages} sync steps run",
        highlight=False,
    )


def ensure_demo_account(settings: Settings, engine: Engine, console: Console) -> None:
    """A first run on loopback gets a `demo` / `demo` admin account for the dashboard."""
    from store.access import User
    from store.states import Role
    from throughline.commands.users import add_user

    if settings.dashboard.host not in ("127.0.0.1", "localhost", "::1"):
        return
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(User)).scalar_one():
            return
    add_user(engine, "demo", Role.ADMIN, "demo", dt.datetime.now(dt.UTC))
    console.print(
        "  dashboard sign-in: demo / demo (admin; created for loopback only)", highlight=False
    )


def run_demo(
    settings: Settings, engine: Engine, console: Console, config_file: Path | None
) -> None:
    from dashboard.launch import streamlit_command
    from sandbox.runner import LiveSandbox
    from throughline.commands.sandbox import sandbox_options

    if not _has_history(engine):
        build_history(settings, engine, console, settings.sandbox.history_days)
    ensure_demo_account(settings, engine, console)
    live = LiveSandbox(sandbox_options(settings), settings.sandbox.speedup, dt.date.today())
    live.start()
    env = dict(os.environ)
    if config_file is not None:
        env["THROUGHLINE_CONFIG"] = str(config_file.resolve())
    # Its own process group: Ctrl-C reaches the demo, which then stops the dashboard.
    dashboard = subprocess.Popen(
        streamlit_command(settings),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    d, s = settings.dashboard, settings.server
    console.print(f"  dashboard  http://{d.host}:{d.port}", highlight=False)
    console.print(
        f"  collector  http://{s.host}:{s.port}/docs  (OTLP at /v1/traces)", highlight=False
    )
    console.print(
        f"  sandbox    {', '.join(f'{k} {v}' for k, v in live.urls.items())}", highlight=False
    )
    console.print("  Ctrl-C stops the demo.")
    try:
        # The scheduler syncs every 5 s, and probes and KPIs read the firm's fast clock.
        serve(settings, engine, now=live.clock.now, sync_every=dt.timedelta(seconds=5))
    finally:
        dashboard.send_signal(signal.SIGTERM)
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        live.stop()
