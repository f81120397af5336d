"""`throughline kpis`: Quote-to-cash KPIs by window and slice."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from enum import StrEnum
from typing import Any

import typer

from throughline.console import console, errors

app = typer.Typer(
    help="Quote-to-cash KPIs by window and slice. With no subcommand: compute and print "
    "them now (nothing is stored; `kpis refresh` stores snapshots).",
    invoke_without_command=True,
)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FIELDS = ["kpi", "window", "dimension", "slice", "value", "unit", "member_count", "formula"]


def parse_as_of(value: str | None) -> dt.datetime:
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        errors.print(f"[red]--as-of: not an ISO date-time: {value!r}[/]", highlight=False)
        raise typer.Exit(2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _rows(window: str, by: str, as_of: dt.datetime, ctx: typer.Context) -> list[dict[str, Any]]:
    from kpis.compute import compute_kpis
    from kpis.definitions import DEFINITIONS, DIMENSION_ALIASES
    from kpis.frames import load_integration_frames, load_store_frames
    from kpis.windows import POINT_IN_TIME
    from throughline.config import parse_duration
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    try:
        duration = parse_duration(window)
    except ValueError as exc:
        errors.print(f"[red]--window: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    settings = settings.model_copy(
        update={"kpis": settings.kpis.model_copy(update={"windows": [duration]})}
    )
    dimension = DIMENSION_ALIASES.get(by, by)
    engine = open_store(settings)
    try:
        with engine.connect() as conn:
            frames, integration = load_store_frames(conn), load_integration_frames(conn)
    finally:
        engine.dispose()
    values = compute_kpis(frames, integration, settings, as_of)
    return [
        {
            "kpi": v.kpi,
            "window": v.window,
            "dimension": v.dimension,
            "slice": v.dimension_value,
            "value": v.value,
            "unit": v.unit,
            "member_count": v.member_count,
            "formula": DEFINITIONS[v.kpi].formula,
        }
        for v in values
        if v.dimension == dimension and v.window in (str(duration), POINT_IN_TIME)
    ]


def _show(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit in ("deals", "attempts", "messages"):
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def print_rows(rows: list[dict[str, Any]], output: OutputFormat) -> None:
    if output is OutputFormat.JSON:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if output is OutputFormat.CSV:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.table import Table

    table = Table("kpi", "window", "slice", "value", "unit", "members")
    for row in rows:
        table.add_row(
            row["kpi"],
            row["window"],
            row["slice"] if row["dimension"] == "all" else f"{row['dimension']}={row['slice']}",
            _show(row["value"], row["unit"]),
            row["unit"],
            str(row["member_count"]),
        )
    console.print(table)


@app.callback()
def show(
    ctx: typer.Context,
    window: str = typer.Option("30d", "--window", "-w", help="Window, e.g. 1d, 7d, 30d, 90d."),
    by: str = typer.Option(
        "all", "--by", help="Slice by: all, entity, region, practice, currency, flow, system."
    ),
    output: OutputFormat = typer.Option(OutputFormat.TABLE, "--format", "-f", help="Output."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Compute as of this ISO date-time (UTC). Default: now."
    ),
) -> None:
    """Compute the KPIs now from the store and print them (windowed ones for --window,
    plus the point-in-time ones: WIP, backlog, funnel, DSO, pending activations)."""
    if ctx.invoked_subcommand is not None:
        return
    print_rows(_rows(window, by, parse_as_of(as_of), ctx), output)


@app.command("refresh")
def refresh_command(
    ctx: typer.Context,
    as_of: str | None = typer.Option(None, "--as-of", help="ISO date-time (UTC). Default: now."),
) -> None:
    """Compute every KPI for every configured window and slice and store the snapshots."""
    from kpis.snapshot_rows import SnapshotOrderError
    from kpis.snapshots import refresh
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    engine = open_store(settings)
    try:
        report = refresh(engine, settings, parse_as_of(as_of))
    except SnapshotOrderError as exc:
        errors.print(f"[red]--as-of: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    console.print(
        f"computed {report.values} KPI values as of {report.as_of.isoformat()}, "
        f"{report.written} changed since the previous refresh and stored "
        f"({report.mode} refresh, {report.deals_read} deals read, {report.seconds:.2f}s)",
        highlight=False,
    )
