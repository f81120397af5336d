"""`throughline deals`: look up deals and their lifecycle."""

from __future__ import annotations

import json
from dataclasses import asdict

import typer
from rich.table import Column, Table

from throughline.console import console, errors

app = typer.Typer(help="Look up deals and their lifecycle.", no_args_is_help=True)


@app.command("list")
def list_deals(
    ctx: typer.Context,
    stage: str | None = typer.Option(None, help="Only deals at this stage, e.g. closed_won."),
    entity: str | None = typer.Option(None, "--entity", help="Only this legal entity."),
    search: str | None = typer.Option(
        None, "--search", "-q", help="A deal, account or invoice id."
    ),
    limit: int = typer.Option(50, min=1, max=500, help="Deals per page."),
    cursor: str | None = typer.Option(None, help="Continue from a previous page's cursor."),
) -> None:
    """List deals with their stage, age and value, a page at a time."""
    from store import deal_queries
    from store.states import DealStage
    from throughline.runtime import open_store

    stages = [s.value for s in DealStage]
    if stage is not None and stage not in stages:
        errors.print(
            f"[red]--stage: unknown stage {stage!r}: choose from {', '.join(stages)}[/]",
            highlight=False,
        )
        raise typer.Exit(2)
    with open_store(ctx.obj.settings()).connect() as conn:
        try:
            page = deal_queries.list_deals(
                conn, stage=stage, legal_entity=entity, search=search, limit=limit, cursor=cursor
            )
        except deal_queries.BadCursor as exc:
            errors.print(f"[red]{exc}[/]", highlight=False)
            raise typer.Exit(2) from None
    if not page.deals:
        console.print(
            "no deals match."
            if (stage or entity or search)
            else "no deals yet: send lifecycle spans or CloudEvents to the collector, or run "
            "`throughline demo`."
        )
        return
    # The deal id (what `deals show` takes) and the value are never cut: in a narrow
    # terminal the other cells wrap, and an account column shows only when some deal has an
    # account name.
    accounts = any(d.account_name for d in page.deals)
    columns = [Column("deal", no_wrap=True)]
    if accounts:
        columns.append(Column("account"))
    columns += [
        Column("entity"),
        Column("stage", overflow="fold"),
        Column("since"),
        Column("value", justify="right", no_wrap=True),
    ]
    table = Table(*columns)
    for d in page.deals:
        cells = [d.id]
        if accounts:
            cells.append(d.account_name or "")
        cells += [
            d.legal_entity or "",
            d.stage or "",
            d.stage_entered_at.strftime("%Y-%m-%d %H:%M") if d.stage_entered_at else "",
            f"{d.amount:,.2f} {d.currency}" if d.amount is not None else "",
        ]
        table.add_row(*cells)
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@app.command()
def show(
    ctx: typer.Context,
    deal_id: str = typer.Argument(..., help="The deal (CRM opportunity) id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole record as JSON."),
) -> None:
    """Show one deal: its stages with times, its objects and every sync step."""
    from store import deal_queries
    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).connect() as conn:
        detail = deal_queries.deal_detail(conn, deal_id)
    if detail is None:
        errors.print(f"[red]no deal {deal_id!r}[/]", highlight=False)
        raise typer.Exit(1)
    if as_json:
        console.print_json(json.dumps(asdict(detail), default=str))
        return
    d = detail.deal
    value = f"{d.amount:,.2f} {d.currency}" if d.amount is not None else "value unknown"
    console.print(
        f"[bold]{d.id}[/] {d.name or ''} — {d.stage or 'no stage yet'}, {value}", highlight=False
    )
    timeline = Table("when", "object", "stage", "system", "trace")
    for e in detail.events:
        timeline.add_row(
            e.occurred_at.strftime("%Y-%m-%d %H:%M"),
            f"{e.object_type} {e.object_id}",
            e.stage,
            e.source_system or "",
            (e.trace_id or "")[:12],
        )
    console.print(timeline)
    if detail.steps:
        steps = Table("started", "step", "system", "status", "ms")
        for s in detail.steps:
            steps.add_row(
                s.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                s.name,
                s.system or "",
                s.status + (f": {s.status_message}" if s.status_message else ""),
                f"{s.duration_ms:.0f}",
            )
        console.print(steps)
