"""`throughline probes`: health, reconciliation, freshness and stuck-work checks."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import typer
from rich.markup import escape
from rich.table import Column, Table
from sqlalchemy import Engine, func, select

from store.monitoring import ProbeFinding, ProbeResult
from throughline.console import console

app = typer.Typer(
    help="Probes: scheduled checks for what did not happen (health, reconciliation, "
    "freshness, stuck work). `serve` runs them on their intervals; these commands show the "
    "latest results and run one now.",
    no_args_is_help=True,
)

STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}
FORMAT = typer.Option("table", "--format", help="table or json.")


def _latest(engine: Engine) -> dict[str, ProbeResult]:
    from sqlalchemy.orm import Session

    latest = (
        select(ProbeResult.probe, func.max(ProbeResult.id).label("id"))
        .group_by(ProbeResult.probe)
        .subquery()
    )
    with Session(engine) as session:
        rows = session.scalars(select(ProbeResult).join(latest, latest.c.id == ProbeResult.id))
        return {r.probe: r for r in rows}


def _status(value: str) -> str:
    return f"[{STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _check_format(fmt: str) -> None:
    if fmt not in ("table", "json"):
        raise typer.BadParameter(f"--format must be table or json, not {fmt!r}")


def every_text(every: dt.timedelta) -> str:
    """An interval as configured (`1m`, `15m`, `2h`), not as `0:01:00`."""
    seconds = int(every.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@app.command("list")
def list_probes(ctx: typer.Context, fmt: str = FORMAT) -> None:
    """List every configured probe, how often it runs, and its latest result."""
    from probes.registry import build_probes, interval
    from throughline.runtime import open_store

    _check_format(fmt)
    settings = ctx.obj.settings()
    probes = build_probes(settings)
    intervals = {probe.name: interval(probe, settings) for probe in probes}
    latest = _latest(open_store(settings))
    rows: list[dict[str, Any]] = []
    for probe in probes:
        last = latest.get(probe.name)
        rows.append(
            {
                "probe": probe.name,
                "kind": probe.kind.value,
                "every": str(intervals[probe.name]),
                "status": last.status.value if last else None,
                "last_run": last.started_at.isoformat() if last else None,
                "observed": last.observed if last else None,
                "description": probe.description,
            }
        )
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    # The name whole (it is what `probes run` and `show` take; its prefix is the kind,
    # which JSON gives on its own) and the moment of the last run on one line.
    table = Table(
        Column("probe", no_wrap=True),
        "every",
        "status",
        Column("last run", no_wrap=True),
        "observed",
        title="probes",
    )
    for row in rows:
        last = latest.get(row["probe"])
        table.add_row(
            row["probe"],
            every_text(intervals[row["probe"]]),
            _status(row["status"]) if row["status"] else "[dim]never run[/]",
            last.started_at.strftime("%m-%d %H:%M") if last else "",
            escape(row["observed"] or row["description"]),
        )
    console.print(table)


def _print_result(engine: Engine, result_id: int, limit: int) -> None:
    with engine.connect() as conn:
        result = conn.execute(select(ProbeResult).where(ProbeResult.id == result_id)).one()
        total = conn.execute(
            select(func.count()).where(ProbeFinding.probe_result_id == result_id)
        ).scalar_one()
        findings = conn.execute(
            select(ProbeFinding)
            .where(ProbeFinding.probe_result_id == result_id)
            .order_by(ProbeFinding.id)
            .limit(limit)
        ).all()
    console.print(
        f"{result.probe}: {_status(result.status.value)} — {escape(result.observed or '')} "
        f"[dim]({result.duration_ms} ms, result #{result.id}"
        f"{', trace ' + result.trace_id if result.trace_id else ''})[/]"
    )
    if not findings:
        return
    table = Table("finding", "object", "deal", "system", "amount", "detail")
    for f in findings:
        amount = f"{f.currency or ''} {f.amount:,.2f}".strip() if f.amount is not None else ""
        detail = json.dumps(f.detail, default=str)[:120] if f.detail else ""
        table.add_row(
            f.kind,
            f"{f.object_type or ''} {f.object_id or ''}".strip(),
            f.deal_id or "",
            f.system or "",
            amount,
            detail,
        )
    console.print(table)
    if total > len(findings):
        console.print(
            f"[dim]{total - len(findings)} more finding(s): "
            f"`throughline probes show {result.probe} --limit {total}`[/]"
        )


@app.command("run")
def run_probe(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="The probe to run (see `probes list`)."),
    all_probes: bool = typer.Option(False, "--all", help="Run every probe, one after another."),
    limit: int = typer.Option(20, help="Show at most this many findings per probe."),
) -> None:
    """Run a probe now, store its result like a scheduled run, and show what it found.
    Exits 1 when a probe failed."""
    from probes.registry import find, open_probe_suite
    from store.engine import make_engine
    from store.states import ProbeStatus
    from throughline.runtime import stored_tracing

    if not name and not all_probes:
        raise typer.BadParameter("name a probe (see `throughline probes list`) or pass --all")
    settings = ctx.obj.settings()
    engine = make_engine(settings.database.url, immediate=True)
    failed = False
    with stored_tracing(settings, engine, "throughline-cli") as provider:
        suite = open_probe_suite(settings, engine, provider.get_tracer("probes"))
        try:
            try:
                chosen = suite.probes if all_probes else [find(suite.probes, name)]
            except KeyError as exc:
                raise typer.BadParameter(str(exc.args[0])) from None
            for probe in chosen:
                run = suite.runner.run(probe)
                failed |= run.status is ProbeStatus.FAIL
                _print_result(engine, run.result_id, limit)
        finally:
            suite.close()
    if failed:
        raise typer.Exit(1)


@app.command("show")
def show_probe(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The probe whose latest result to show."),
    limit: int = typer.Option(50, help="Show at most this many findings."),
) -> None:
    """Show a probe's latest stored result with the records it found."""
    from throughline.runtime import open_store

    engine = open_store(ctx.obj.settings())
    latest = _latest(engine).get(name)
    if latest is None:
        console.print(f"{name}: no result stored yet (run `throughline probes run {name}`).")
        raise typer.Exit(1)
    _print_result(engine, latest.id, limit)
