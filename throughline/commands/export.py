"""`throughline export`: Export the lifecycle and KPIs for other tools."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from throughline.console import console

app = typer.Typer(help="Export the lifecycle and KPIs for other tools.", no_args_is_help=True)

CSV_FIELDS = [
    "as_of",
    "superseded_at",
    "kpi",
    "window",
    "dimension",
    "dimension_value",
    "value",
    "unit",
    "member_count",
]


@app.command("ocel")
def ocel(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="File to write.", dir_okay=False),
) -> None:
    """Write the lifecycle as an OCEL 2.0 JSON event log (objects: deal, contract, project,
    invoice, posting, payment, billable item; events with their object links)."""
    from kpis.ocel import write_ocel
    from throughline.runtime import open_store

    engine = open_store(ctx.obj.settings())
    try:
        with out.open("w", encoding="utf-8") as handle:
            objects, events = write_ocel(engine, handle)
    finally:
        engine.dispose()
    console.print(f"wrote {out}: {objects} objects, {events} events (OCEL 2.0 JSON)")


@app.command("csv")
def snapshots_csv(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", "-o", help="File to write.", dir_okay=False),
    latest: bool = typer.Option(False, "--latest", help="Only the latest refresh's values."),
) -> None:
    """Write the stored KPI snapshots as CSV, oldest first. Refreshes store a value only
    when it changed, so each row holds from `as_of` (the refresh that computed it) until
    `superseded_at` (the refresh that computed something else; empty while current)."""
    from sqlalchemy import select

    from kpis.snapshot_rows import CURRENT
    from store.monitoring import KpiSnapshot
    from throughline.runtime import open_store

    engine = open_store(ctx.obj.settings())
    query = select(*(getattr(KpiSnapshot, f) for f in CSV_FIELDS)).order_by(
        KpiSnapshot.as_of,
        KpiSnapshot.kpi,
        KpiSnapshot.window,
        KpiSnapshot.dimension,
        KpiSnapshot.dimension_value,
    )
    try:
        if latest:
            query = query.where(CURRENT)
        count = 0
        with engine.connect() as conn, out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            for row in conn.execute(query):
                superseded = row[1].isoformat() if row[1] is not None else ""
                writer.writerow([row[0].isoformat(), superseded, *row[2:]])
                count += 1
    finally:
        engine.dispose()
    console.print(f"wrote {out}: {count} snapshot rows")
