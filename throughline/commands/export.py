"""`throughline export`: Export the lifecycle and KPIs for other tools."""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import typer

from throughline.console import console, errors

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


@contextlib.contextmanager
def output_file(out: Path, newline: str | None = None) -> Iterator[IO[str]]:
    """`out` opened for writing through a temporary file beside it, renamed into place
    only when everything was written: an export that fails (or is interrupted) leaves no
    half-written file and whatever `out` held before. A missing directory or one we may
    not write is a clear error (exit 2), not a traceback."""
    folder = out.resolve().parent
    if not folder.is_dir():
        errors.print(f"[red]--out: the directory {folder} does not exist[/]", highlight=False)
        raise typer.Exit(2)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=folder)
    except OSError as exc:
        errors.print(f"[red]--out: cannot write in {folder}: {exc.strerror}[/]", highlight=False)
        raise typer.Exit(2) from None
    try:
        with open(fd, "w", encoding="utf-8", newline=newline) as handle:
            yield handle
        os.chmod(temporary, 0o666 & ~_umask())  # as a plainly opened file (mkstemp: 0600)
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
        with output_file(out) as handle, console.status(f"writing {out} ..."):
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
        with engine.connect() as conn, output_file(out, newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_FIELDS)
            for row in conn.execute(query):
                superseded = row[1].isoformat() if row[1] is not None else ""
                writer.writerow([row[0].isoformat(), superseded, *row[2:]])
                count += 1
    finally:
        engine.dispose()
    console.print(f"wrote {out}: {count} snapshot rows")
    if not count:
        console.print("No KPI snapshots are stored yet: `throughline kpis refresh` stores one.")
