"""The demo on the embedded default: the sandbox firm with months of history synced by our
connectors, then the firm live on its accelerated clock with the syncs, KPI refresh and
retention running, the collector serving, and the dashboard, until Ctrl-C."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from sqlalchemy import Engine, func, select

from store.objects import Deal
from throughline.config import Settings
from throughline.runtime import PeriodicJob, run_worker, serve

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


def refresh_kpis(settings: Settings, engine: Engine) -> Callable[[], object]:
    from kpis.snapshots import KpiRefresher

    refresher = KpiRefresher(engine, settings)
    return lambda: refresher.refresh(dt.datetime.now(dt.UTC))


def run_demo(
    settings: Settings, engine: Engine, console: Console, config_file: Path | None
) -> None:
    from dashboard.launch import streamlit_command
    from sandbox.runner import LiveSandbox
    from throughline.commands.sandbox import sandbox_options

    if not _has_history(engine):
        build_history(settings, engine, console, settings.sandbox.history_days)
    refresh = refresh_kpis(settings, engine)
    refresh()
    live = LiveSandbox(sandbox_options(settings), settings.sandbox.speedup, dt.date.today())
    live.start()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(settings, engine, stop),
        kwargs={"name": "demo", "interval": dt.timedelta(seconds=5), "clock": live.clock.now},
        name="worker",
        daemon=True,
    )
    worker.start()
    kpi_job = PeriodicJob("kpis", settings.kpis.refresh_interval.timedelta, refresh)
    kpi_job.start()
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
        serve(settings, engine)
    finally:
        stop.set()
        kpi_job.stop()
        dashboard.send_signal(signal.SIGTERM)
        try:
            dashboard.wait(timeout=10)
        except subprocess.TimeoutExpired:
            dashboard.kill()
        worker.join(timeout=30)
        live.stop()
