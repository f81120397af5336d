"""`throughline dlq`: list, inspect and replay dead letters."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from connectors.dead_letters import DeadLetterFilter
from throughline.config import parse_duration
from throughline.console import console, errors

app = typer.Typer(
    help="Dead letters: list, inspect and replay failed syncs, exactly once.",
    no_args_is_help=True,
)


def _filter(
    flow: str | None,
    system: str | None,
    error_class: str | None,
    deal: str | None,
    since: str | None,
) -> DeadLetterFilter:
    start = None
    if since:
        start = dt.datetime.now(dt.UTC) - parse_duration(since).timedelta
    return DeadLetterFilter(
        flow=flow, system=system, error_class=error_class, deal_id=deal, since=start
    )


FLOW = typer.Option(None, help="Only this flow, e.g. invoice_to_ar.")
SYSTEM = typer.Option(None, help="Only this target system: crm, clm, psa, billing, erp.")
ERROR = typer.Option(None, "--error-class", help="Only this error class, e.g. server_error.")
DEAL = typer.Option(None, "--deal", help="Only dead letters blocking this deal.")
SINCE = typer.Option(None, help="Only those that died within this long, e.g. 24h or 7d.")


@app.command("list")
def list_letters(
    ctx: typer.Context,
    flow: str | None = FLOW,
    system: str | None = SYSTEM,
    error_class: str | None = ERROR,
    deal: str | None = DEAL,
    since: str | None = SINCE,
) -> None:
    """List open dead letters, oldest first."""
    from connectors.dead_letters import find_dead_letters
    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).connect() as conn:
        rows = find_dead_letters(conn, _filter(flow, system, error_class, deal, since))
    if not rows:
        console.print("no open dead letters match.")
        return
    table = Table("id", "died", "flow.step", "system", "deal", "error class", "error")
    for letter, step, _key, _attempts in rows:
        table.add_row(
            str(letter.id),
            letter.dead_at.strftime("%Y-%m-%d %H:%M"),
            f"{letter.flow}.{step}",
            str(letter.system),
            letter.deal_id or "",
            letter.error_class,
            (letter.error or "")[:80],
        )
    console.print(table)
    console.print(f"{len(rows)} open dead letter(s)")


@app.command()
def show(
    ctx: typer.Context, letter_id: int = typer.Argument(..., help="The dead letter's id.")
) -> None:
    """Show one dead letter: the message, its payload and every attempt."""
    import json

    from connectors.dead_letters import dead_letter_detail
    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).connect() as conn:
        detail = dead_letter_detail(conn, letter_id)
    if detail is None:
        errors.print(f"[red]no dead letter {letter_id}[/]", highlight=False)
        raise typer.Exit(1)
    letter, message = detail["dead_letter"], detail["message"]
    console.print(
        f"[bold]dead letter {letter.id}[/] ({letter.state}) — {letter.flow}.{message.step} "
        f"to {letter.system}, deal {letter.deal_id}",
        highlight=False,
    )
    console.print(f"error {letter.error_class}: {letter.error}", highlight=False, markup=False)
    console.print(f"idempotency key {message.idempotency_key}", highlight=False)
    console.print_json(json.dumps(message.payload, default=str))
    table = Table("attempt", "started", "outcome", "error class", "HTTP", "ms", "trace")
    for a in detail["attempts"]:
        table.add_row(
            str(a.attempt_no),
            a.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            str(a.outcome),
            a.error_class or "",
            str(a.http_status or ""),
            str(a.duration_ms),
            a.trace_id or "",
        )
    console.print(table)


@app.command()
def replay(
    ctx: typer.Context,
    ids: list[int] = typer.Argument(None, help="Dead letter ids; or use the filters / --all."),
    all_open: bool = typer.Option(False, "--all", help="Replay every open dead letter."),
    flow: str | None = FLOW,
    system: str | None = SYSTEM,
    error_class: str | None = ERROR,
    deal: str | None = DEAL,
    since: str | None = SINCE,
    reason: str = typer.Option(..., "--reason", "-r", help="Why: recorded with the replay."),
    actor: str = typer.Option(None, "--as", help="Who asks (default: $USER)."),
) -> None:
    """Queue dead letters for replay. Each replay keeps its idempotency key, so a step that
    did reach the target the first time is found there, not done twice."""
    import getpass

    from connectors.dead_letters import find_dead_letters
    from connectors.replay import request_replay
    from throughline.runtime import open_store

    filtered = any(v is not None for v in (flow, system, error_class, deal, since))
    if not ids and not all_open and not filtered:
        errors.print("[red]name dead letter ids, give a filter, or pass --all[/]", highlight=False)
        raise typer.Exit(2)
    engine = open_store(ctx.obj.settings())
    with engine.connect() as conn:
        rows = find_dead_letters(conn, _filter(flow, system, error_class, deal, since))
    chosen = [letter.id for letter, *_ in rows if not ids or letter.id in ids]
    if not chosen:
        console.print("nothing to replay: no open dead letter matches.")
        return
    requests = request_replay(
        engine, chosen, actor or getpass.getuser(), reason, dt.datetime.now(dt.UTC)
    )
    console.print(
        f"queued {len(requests)} replay(s); the workers run them next "
        f"(see `throughline dlq list` and the health page).",
        highlight=False,
    )
