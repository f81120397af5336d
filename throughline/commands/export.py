"""`throughline export`: Export the lifecycle and KPIs for other tools."""

from __future__ import annotations

import csv
from pathlib import Path

import typer

from throughline.console import console

app = typer.Typer(help="Export the lifecycle and KPIs for other tools.", no_args_is_help=True)

CSV_FIELDS = [
    "as_of",
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
    latest: bool = typer.Option(False, "--latest", help="Only the latest snapshot."),
) -> None:
    """Write the stored KPI snapshots as CSV, oldest first (one row per value)."""
    from sqlalchemy import select

    from kpis.snapshots import latest_as_of
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
            query = query.where(KpiSnapshot.as_of == latest_as_of(engine))
        count = 0
        with engine.connect() as conn, out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            for row in conn.execute(query):
                writer.writerow([row[0].isoformat(), *row[1:]])
                count += 1
    finally:
        engine.dispose()
    console.print(f"wrote {out}: {count} snapshot rows")
