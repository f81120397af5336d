"""`throughline approvals`: the steps waiting for a person (approval checkpoints), and the
decisions on them."""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.table import Table

from store.states import ApprovalState
from throughline.console import console, errors

app = typer.Typer(
    help="Approval checkpoints: invoices above `approvals.invoice_above` wait here before "
    "their AR posting, and with `approvals.over_cap` billables past their contract's cap "
    "before their charge; list them, approve or reject.",
    no_args_is_help=True,
)

STATES = ", ".join(s.value for s in ApprovalState)


@app.command("list")
def list_approvals(
    ctx: typer.Context,
    state: str = typer.Option("open", help=f"Only this state ({STATES}) or `all`."),
    limit: int = typer.Option(50, min=1, max=1000, help="At most this many rows."),
    offset: int = typer.Option(0, min=0, help="Skip this many rows first (the next page)."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
) -> None:
    """List approvals, the longest waiting first."""
    from connectors.approvals import list_approvals as find
    from throughline.runtime import open_store

    wanted = None
    if state != "all":
        try:
            wanted = ApprovalState(state)
        except ValueError:
            errors.print(f"[red]--state {state!r}: use one of {STATES} or all[/]", highlight=False)
            raise typer.Exit(2) from None
    rows, total = find(open_store(ctx.obj.settings()), wanted, limit=limit, offset=offset)
    if as_json:
        console.print_json(json.dumps({"total": total, "approvals": [r.as_json() for r in rows]}))
        return
    if not rows:
        console.print(
            f"no {'' if wanted is None else wanted.value + ' '}approvals"
            + (" (set approvals.invoice_above to hold large invoices)" if total == 0 else ""),
            highlight=False,
        )
        return
    now = dt.datetime.now(dt.UTC)
    table = Table("id", "state", "waited")
    for name in ("object", "deal", "amount"):  # whole, on one line: they are copied
        table.add_column(name, no_wrap=True, min_width=8)
    table.add_column("decided")
    reasons = []
    for r in rows:
        waited = (r.decided_at or now) - r.requested_at
        decided = f"{r.decided_by} {r.decided_at:%m-%d %H:%M}" if r.decided_at else ""
        table.add_row(
            str(r.id),
            r.state.value,
            _age(waited),
            r.object_id,
            r.deal_id or "",
            f"{r.amount:,.2f} {r.currency}",
            decided,
        )
        reasons.append(f"{r.id}: {r.reason}" + (f" — {r.note}" if r.note else ""))
    console.print(table)
    for line in reasons:  # whole, under the table: too long for a column
        console.print(line, highlight=False, markup=False)
    shown = f"{offset + 1}-{offset + len(rows)} of {total}"
    more = f"; next page: --offset {offset + len(rows)}" if offset + len(rows) < total else ""
    console.print(f"{shown} approval(s){more}", highlight=False)


def _age(delta: dt.timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _decide(
    ctx: typer.Context, ids: list[int], approve: bool, note: str | None, actor: str | None
) -> None:
    import getpass

    from connectors.approvals import DecisionError, decide
    from throughline.runtime import open_store

    try:
        decisions = decide(
            open_store(ctx.obj.settings()),
            ids,
            approve=approve,
            actor=actor or getpass.getuser(),
            note=note,
            now=dt.datetime.now(dt.UTC),
        )
    except DecisionError as exc:
        errors.print(f"[red]nothing decided: {exc}[/]", highlight=False)
        raise typer.Exit(1) from None
    done = "approved: the workers post them next" if approve else "rejected: each is a dead letter"
    console.print(
        f"{len(decisions)} {done} ({', '.join(str(d.approval_id) for d in decisions)})",
        highlight=False,
    )


IDS = typer.Argument(..., help="Approval ids (see `throughline approvals list`).")
ACTOR = typer.Option(None, "--as", help="Who decides (default: $USER); audited.")


@app.command()
def approve(
    ctx: typer.Context,
    ids: list[int] = IDS,
    note: str = typer.Option(None, "--note", "-n", help="Why, recorded with the decision."),
    actor: str = ACTOR,
) -> None:
    """Approve: each held step is due again at once and runs as if never held."""
    _decide(ctx, ids, True, note, actor)


@app.command()
def reject(
    ctx: typer.Context,
    ids: list[int] = IDS,
    note: str = typer.Option(
        ..., "--note", "-n", help="Why: recorded, and the dead letter says it."
    ),
    actor: str = ACTOR,
) -> None:
    """Reject: each held step becomes a dead letter (`approval_rejected`) for finance;
    replaying it asks for approval again."""
    _decide(ctx, ids, False, note, actor)
