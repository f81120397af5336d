"""`throughline sandbox`: the simulated firm, five systems as HTTP services."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from throughline.console import console, errors

if TYPE_CHECKING:
    from sandbox.runner import SandboxOptions
    from throughline.config import Settings

app = typer.Typer(
    help="Run the simulated firm: five systems as HTTP services, with faults and history.",
    no_args_is_help=True,
)

PROFILES = ("none", "default", "chaos")


def sandbox_options(
    settings: Settings,
    seed: int | None = None,
    faults: str | None = None,
    directory: Path | None = None,
) -> SandboxOptions:
    """The sandbox as the configuration describes it: ports and credentials come from
    `systems.*`, so the connectors and the sandbox always agree."""
    from pydantic import SecretStr

    from sandbox.runner import DEFAULT_PORTS, SandboxOptions
    from store.states import System
    from throughline.config import ApiKeyAuth, OAuth2Auth, TrytonAuth

    profile = faults or settings.sandbox.faults
    if profile not in PROFILES:
        errors.print(f"[red]unknown fault profile {profile!r}[/]: use one of {', '.join(PROFILES)}")
        raise typer.Exit(2)
    ports: dict[str, int] = {}
    secrets: dict[str, str] = {}
    for system in System:
        config = settings.systems.get(system)
        auth = config.auth
        if isinstance(auth, TrytonAuth):  # a real ERP replaces the sandbox's: keep its port
            ports[system.value] = DEFAULT_PORTS[system.value]
            continue
        ports[system.value] = config.base_url.port or 80
        secret: SecretStr | None = None
        if isinstance(auth, OAuth2Auth):
            secret = auth.client_secret
        elif isinstance(auth, ApiKeyAuth):
            secret = auth.api_key
        if secret is not None:
            secrets[system.value] = secret.get_secret_value()
    return SandboxOptions(
        directory=directory or settings.sandbox.directory,
        seed=settings.sandbox.seed if seed is None else seed,
        faults=profile,  # type: ignore[arg-type]
        ports=ports,
        secrets=secrets,
        admin_key=settings.sandbox.admin_key.get_secret_value(),
        system_faults={s.value: f for s, f in settings.sandbox.system_faults.items()},
    )


SEED = typer.Option(None, "--seed", help="Scenario seed. Default: sandbox.seed (42).")
FAULTS = typer.Option(
    None, "--faults", help="Fault profile: none, default or chaos. Default: sandbox.faults."
)
DIRECTORY = typer.Option(
    None, "--dir", help="Where the systems keep their SQLite files. Default: sandbox.directory."
)


@app.command("up")
def up(
    ctx: typer.Context,
    seed: int | None = SEED,
    faults: str | None = FAULTS,
    speedup: float | None = typer.Option(
        None, "--speedup", min=0.001, help="Simulated seconds per real second. Default: 60."
    ),
    directory: Path | None = DIRECTORY,
) -> None:
    """Start the five sandbox services and run the firm live until Ctrl-C.

    CRM, CLM, PSA, billing and ERP each serve their own API (with /healthz and /docs) on
    the port of `systems.<name>.base_url`; the firm's people act on the simulated clock.
    Change faults at run time with PUT /admin/faults (header X-Admin-Key).
    """
    from sandbox.runner import LiveSandbox
    from throughline.runtime import stop_on_signals

    settings = ctx.obj.settings()
    options = sandbox_options(settings, seed, faults, directory)
    try:
        live = LiveSandbox(options, speedup or settings.sandbox.speedup, dt.date.today())
        live.start()
    except (ValueError, RuntimeError) as exc:
        errors.print(f"[red]sandbox not started:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"[bold]Sandbox firm[/] seed {options.seed}, faults {options.faults}, "
        f"simulated {live.clock.now():%Y-%m-%d %H:%M} at {speedup or settings.sandbox.speedup}x",
        highlight=False,
    )
    for system, url in live.urls.items():
        console.print(f"  {system:<8} {url}  ({url}/docs)", highlight=False)
    console.print(f"  data in {options.directory}; Ctrl-C stops the sandbox.", highlight=False)
    with stop_on_signals() as stopping:
        while not stopping.wait(0.5):
            pass
    live.stop()
    console.print("sandbox stopped.")


@app.command("backfill")
def backfill(
    ctx: typer.Context,
    days: int | None = typer.Option(
        None, "--days", min=1, help="Simulated days to run. Default: sandbox.history_days (90)."
    ),
    seed: int | None = SEED,
    faults: str | None = FAULTS,
    directory: Path | None = DIRECTORY,
) -> None:
    """Simulate N days of the firm's history at full speed, synced by our connectors.

    A new firm starts N days ago; an existing one goes on from its last day. Each simulated
    day the people act in their own systems, then the connectors carry the records between
    the systems, so the store fills with the spans and lifecycle events live operation
    would have produced.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from store import migrate
    from throughline.history import backfill_with_syncs
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    options = sandbox_options(settings, seed, faults, directory)
    total = days or settings.sandbox.history_days
    engine = open_store(settings)
    migrate.upgrade(engine)
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("simulating days", total=total)
            history = backfill_with_syncs(
                settings,
                engine,
                options,
                total,
                dt.date.today(),
                on_day=lambda _day: progress.advance(task),
            )
    except ValueError as exc:
        errors.print(f"[red]backfill refused:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    report = history.sandbox
    console.print(
        f"simulated {report.first_day} .. {report.last_day} (seed {options.seed}) "
        f"in {options.directory}; {history.messages} sync steps run",
        highlight=False,
    )
    for system, collections in report.records.items():
        counts = ", ".join(f"{n} {name}" for name, n in collections.items()) or "empty"
        console.print(f"  {system:<8} {counts}", highlight=False)
    figures = report.figures
    console.print(
        f"  ground truth: {figures['deals_won']} deals won, {figures['deals_lost']} lost, "
        f"{figures['invoices']} invoices expected with perfect syncs",
        highlight=False,
    )
