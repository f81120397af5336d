"""The `throughline` command line."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import typer

from throughline import commands
from throughline.config import ConfigError, Settings, find_config_file, load_settings
from throughline.console import console, errors, print_problems

app = typer.Typer(
    name="throughline",
    help=(
        "Throughline keeps a professional-services firm's quote-to-cash path healthy: it runs "
        "the syncs between CRM, CLM, PSA, billing and ERP, traces every deal through its "
        "lifecycle, computes the KPIs, raises SLA alerts and replays failed syncs exactly once."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@dataclass
class CliState:
    config_path: Path | None

    def settings(self) -> Settings:
        """Load the configuration, or print every problem and exit 2."""
        path = find_config_file(self.config_path, os.environ)
        try:
            return load_settings(path)
        except ConfigError as exc:
            print_problems(exc)
            raise typer.Exit(2) from None


@app.callback()
def root(
    ctx: typer.Context,
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="YAML config file. Default: $THROUGHLINE_CONFIG, else ./throughline.yaml if it "
        "exists, else built-in defaults (the sandbox demo).",
        dir_okay=False,
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        for noisy in ("alembic", "httpx", "httpcore", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # A run that outlasts its interval makes APScheduler skip the next tick with a
        # warning each time (the syncs under load); job_runs shows the gap instead.
        logging.getLogger("apscheduler.scheduler").addFilter(
            lambda record: "maximum number of running instances" not in record.getMessage()
        )
    ctx.obj = CliState(config_path=config)


# --- configuration and store ----------------------------------------------------------------


@app.command("check-config")
def check_config(
    ctx: typer.Context,
    file: Path | None = typer.Argument(
        None, help="Config file to check. Default: the one `--config` or the environment names."
    ),
) -> None:
    """Validate a config file and the THROUGHLINE_* environment.

    Prints every problem with its key path (e.g. `systems.erp.base_url: not a URL`) and exits
    2 if there is any; prints OK and a summary otherwise.
    """
    path = file if file is not None else find_config_file(ctx.obj.config_path, os.environ)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print_problems(exc)
        raise typer.Exit(2) from None
    overrides = sorted(k for k in os.environ if k.startswith("THROUGHLINE_") and "__" in k)
    console.print(
        f"[green]OK[/] {path if path is not None else 'built-in defaults'}", highlight=False
    )
    console.print(
        f"  database {_redact_url(settings.database.url)}; collector on "
        f"{settings.server.host}:{settings.server.port}; {len(settings.slas)} SLAs; "
        f"{len(settings.alerts.rules)} alert rules, {len(settings.alerts.channels)} channels",
        highlight=False,
    )
    if overrides:
        console.print(f"  environment overrides: {', '.join(overrides)}", highlight=False)


def _redact_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


migrate_app = typer.Typer(
    help="Create or upgrade the store's schema (Alembic). With no subcommand: upgrade to head.",
    invoke_without_command=True,
)
app.add_typer(migrate_app, name="migrate")


@migrate_app.callback()
def migrate_up(
    ctx: typer.Context,
    revision: str = typer.Option("head", "--to", help="Target revision to upgrade to."),
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from store import migrate
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    engine = open_store(settings)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    console.print(
        f"store {_redact_url(settings.database.url)}: {before or 'empty'} -> {after}",
        highlight=False,
    )


@migrate_app.command("down")
def migrate_down(
    ctx: typer.Context,
    revision: str = typer.Argument(
        "base", help="Revision to downgrade to; `base` drops every table (data is lost)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Downgrade the schema. Downgrading to `base` deletes all stored data."""
    from store import migrate
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    if not yes:
        typer.confirm(
            f"Downgrade {_redact_url(settings.database.url)} to {revision}? Data in dropped "
            "tables is lost.",
            abort=True,
        )
    engine = open_store(settings)
    before = migrate.current_revision(engine)
    migrate.downgrade(engine, revision)
    console.print(
        f"store: {before or 'empty'} -> {migrate.current_revision(engine) or 'base'}",
        highlight=False,
    )


@migrate_app.command("status")
def migrate_status(ctx: typer.Context) -> None:
    """Show the store's schema revision and whether it is at head."""
    from store import migrate
    from throughline.runtime import open_store

    engine = open_store(ctx.obj.settings())
    current, head = migrate.current_revision(engine), migrate.head_revision()
    state = (
        "[green]up to date[/]"
        if current == head
        else "[yellow]behind: run `throughline migrate`[/]"
    )
    console.print(f"current {current or 'empty'}, head {head}: {state}", highlight=False)
    if current != head:
        raise typer.Exit(1)


@app.command()
def prune(ctx: typer.Context) -> None:
    """Delete old spans, sync attempts and probe results now.

    Ages come from `retention.*`; `serve` runs this every `retention.interval` on its own.
    """
    from throughline.runtime import open_store, run_retention

    settings = ctx.obj.settings()
    report = run_retention(open_store(settings), settings)
    console.print(
        f"pruned {report.spans} spans (> {settings.retention.spans}), {report.sync_attempts} "
        f"sync attempts (> {settings.retention.sync_attempts}), {report.probe_results} probe "
        f"results (> {settings.retention.probe_results})",
        highlight=False,
    )


# --- running ------------------------------------------------------------------------------


@app.command()
def serve(ctx: typer.Context) -> None:
    """Run the collector server until Ctrl-C.

    REST API under /api/v1, /metrics and /healthz on `server.port` (4318, the OTLP/HTTP
    port), with retention in the background. The schema must be migrated first.
    """
    from throughline.runtime import open_store
    from throughline.runtime import serve as run_server

    settings = ctx.obj.settings()
    engine = open_store(settings)
    try:
        run_server(settings, engine)
    except RuntimeError as exc:
        errors.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(1) from None


@app.command()
def worker(
    ctx: typer.Context,
    interval: str = typer.Option("5s", help="Pause between rounds of polling and syncing."),
    once: bool = typer.Option(False, "--once", help="One round, then exit."),
    name: str = typer.Option(None, help="Worker name recorded on claimed messages."),
    lease: str = typer.Option(
        "5m", help="How long a claimed message is ours; a worker that dies loses it after this."
    ),
) -> None:
    """Run the syncs: poll the five systems for changes and work the outbox until Ctrl-C.

    Run several on one PostgreSQL to share the load; on SQLite run one.
    """
    import signal
    import socket
    import threading

    from store import migrate
    from throughline.config import parse_duration
    from throughline.runtime import open_store, run_worker

    try:
        pause, hold = parse_duration(interval).timedelta, parse_duration(lease).timedelta
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = ctx.obj.settings()
    engine = open_store(settings)
    if migrate.current_revision(engine) != migrate.head_revision():
        errors.print("[red]the store's schema is not at head: run `throughline migrate` first[/]")
        raise typer.Exit(1)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    ran = run_worker(
        settings,
        engine,
        stop,
        name=name or f"{socket.gethostname()}:{os.getpid()}",
        interval=pause,
        once=once,
        lease=hold,
    )
    console.print(f"worker stopped after {ran} message(s).", highlight=False)


@app.command()
def demo(
    ctx: typer.Context,
    erp: str = typer.Option(
        "sandbox",
        "--erp",
        help="sandbox: the sandbox firm's ERP. tryton: a real Tryton ERP server, built under "
        "./var/tryton on first use (needs the `tryton` extra).",
    ),
    tryton_port: int = typer.Option(8000, help="Port for trytond with --erp tryton."),
) -> None:
    """Run the demo on the embedded default until Ctrl-C.

    Migrates the SQLite store under ./var; on the first run builds `sandbox.history_days`
    of the sandbox firm's history synced by our connectors (a progress bar shows it); then
    runs the firm live, the syncs, KPI refresh, the collector and the dashboard.
    """
    from store import migrate
    from throughline.demo import run_demo
    from throughline.runtime import open_store

    if erp not in ("sandbox", "tryton"):
        raise typer.BadParameter(f"--erp {erp!r}: use sandbox or tryton")
    settings = ctx.obj.settings()
    engine = open_store(settings)
    migrate.upgrade(engine)
    console.print(f"[bold]Throughline demo[/] — store {_redact_url(settings.database.url)}")
    tryton = None
    if erp == "tryton":
        from throughline.tryton_erp import TrytonUnavailable, start_tryton, with_tryton

        console.print(
            f"  starting the Tryton ERP on port {tryton_port} (first use builds its "
            "database, about a minute)"
        )
        try:
            tryton = start_tryton(Path("var/tryton").resolve(), tryton_port)
        except TrytonUnavailable as exc:
            errors.print(f"[red]{exc}[/]", highlight=False)
            raise typer.Exit(1) from None
        settings = with_tryton(settings, tryton_port)
    try:
        run_demo(settings, engine, console, find_config_file(ctx.obj.config_path, os.environ))
    finally:
        if tryton is not None:
            tryton.terminate()
            tryton.wait(timeout=30)
    console.print("demo stopped.")


@app.command()
def dashboard(ctx: typer.Context) -> None:
    """Open the Streamlit dashboard on `dashboard.port`.

    Serves the app on `dashboard.host`:`dashboard.port` (8501) until Ctrl-C, reading the
    store from `database.url`. Sign in with an account from `throughline users add`.
    """
    from dashboard.launch import run_dashboard

    state: CliState = ctx.obj
    settings = state.settings()
    path = find_config_file(state.config_path, os.environ)
    console.print(
        f"dashboard on http://{settings.dashboard.host}:{settings.dashboard.port} "
        "(Ctrl-C stops it)",
        highlight=False,
    )
    code = run_dashboard(settings, path)
    if code not in (0, -2, 130):
        raise typer.Exit(code)


# --- command groups, one module each ---------------------------------------------------------

for _name, _group in commands.GROUPS.items():
    app.add_typer(_group, name=_name)


def main() -> None:
    app()
