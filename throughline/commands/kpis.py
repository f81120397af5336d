"""`throughline kpis`: Quote-to-cash KPIs by window and slice."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from dataclasses import dataclass
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


def _rows(window: str, by: str, as_of: dt.datetime, ctx: typer.Context) -> Computed:
    from kpis.compute import compute_kpis
    from kpis.definitions import DEFINITIONS, dimension_named
    from kpis.frames import load_integration_frames, load_store_frames
    from kpis.windows import POINT_IN_TIME
    from throughline.config import parse_duration
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    try:
        duration = parse_duration(window)
        if duration.amount <= 0:
            raise ValueError(f"must be longer than 0 (got {duration})")
    except ValueError as exc:
        errors.print(f"[red]--window: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    settings = settings.model_copy(
        update={"kpis": settings.kpis.model_copy(update={"windows": [duration]})}
    )
    try:
        dimension = dimension_named(by)
    except ValueError as exc:
        errors.print(f"[red]--by: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    engine = open_store(settings)
    try:
        with engine.connect() as conn:
            frames, integration = load_store_frames(conn), load_integration_frames(conn)
    finally:
        engine.dispose()
    values = compute_kpis(frames, integration, settings, as_of)
    rows = [
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
    return Computed(rows, as_of, str(duration), len(frames.deals))


@dataclass(frozen=True)
class Computed:
    rows: list[dict[str, Any]]
    as_of: dt.datetime
    window: str
    deals: int
    """deals in the store: none means every value is empty, which the table says"""


COUNTED = {"deals", "attempts", "messages"}


def duration_text(seconds: float) -> str:
    """A duration as people read it: `3d 12h`, `5h 20m`, `4m 10s`, `45s`."""
    total = round(seconds)
    sign, total = ("-" if total < 0 else ""), abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    return f"{sign}{minutes}m {secs}s" if minutes else f"{sign}{secs}s"


def value_text(value: float | None, unit: str) -> str:
    """A value with its unit for the table (JSON and CSV keep the number and the unit)."""
    if value is None:
        return "-"
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "seconds":
        return duration_text(value)
    if unit in COUNTED:
        return f"{value:,.0f}"
    return f"{value:,.2f} {unit}"


def print_rows(computed: Computed, output: OutputFormat) -> None:
    rows = computed.rows
    if output is OutputFormat.JSON:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if output is OutputFormat.CSV:
        writer = csv.DictWriter(sys.stdout, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.table import Column, Table

    sliced = any(row["dimension"] != "all" for row in rows)
    dimension = rows[0]["dimension"] if sliced else None
    # KPI names and values whole (several names share a long prefix); a long slice
    # value wraps instead
    columns = [Column("kpi", no_wrap=True), Column("window", no_wrap=True)]
    if dimension is not None:
        header = "entity" if dimension == "legal_entity" else dimension
        widest = max(len(row["slice"]) for row in rows)
        columns.append(Column(header, overflow="fold", min_width=max(len(header), min(widest, 20))))
    columns += [
        Column("value", justify="right", no_wrap=True),
        Column("members", justify="right", no_wrap=True),
    ]
    table = Table(
        *columns,
        title=f"as of {computed.as_of:%Y-%m-%d %H:%M} UTC, {computed.window} window",
    )
    for row in rows:
        cells = [row["kpi"], row["window"]]
        if dimension is not None:
            cells.append(row["slice"])
        cells += [value_text(row["value"], row["unit"]), f"{row['member_count']:,}"]
        table.add_row(*cells)
    console.print(table)
    if not computed.deals:
        console.print(
            "The store holds no deals yet, so every value is empty: run `throughline demo` "
            "for the sandbox firm, or `throughline serve` with your systems configured "
            "(README: Running against real systems)."
        )
    elif not rows:
        console.print("No values for this slice in the store yet.")


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
    from store.engine import make_engine
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    engine = open_store(settings)
    # writes wait for a running demo's or server's writers instead of failing
    write_engine = make_engine(engine.url, immediate=True)
    try:
        report = refresh(engine, settings, parse_as_of(as_of), write_engine=write_engine)
    except SnapshotOrderError as exc:
        errors.print(f"[red]--as-of: {exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    finally:
        write_engine.dispose()
        engine.dispose()
    console.print(
        f"computed {report.values} KPI values as of {report.as_of.isoformat()}, "
        f"{report.written} changed since the previous refresh and stored "
        f"({report.mode} refresh, {report.deals_read} deals read, {report.seconds:.2f}s)",
        highlight=False,
    )
