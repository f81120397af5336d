"""`throughline tokens`: API tokens for ingest and the REST API."""

from __future__ import annotations

import datetime as dt

import typer
from sqlalchemy import select

from throughline.config import parse_duration
from throughline.console import console, errors

app = typer.Typer(
    help="API tokens. A token is shown once, at creation; the store keeps only its digest.",
    no_args_is_help=True,
)


@app.command()
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A unique name, e.g. the sender: mulesoft-prod."),
    scope: list[str] = typer.Option(
        ["ingest"],
        "--scope",
        "-s",
        help="ingest, read, replay, approve or admin; repeat for several.",
    ),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="Lifetime such as 90d; default: no expiry."
    ),
) -> None:
    """Create a token and print it (the only time it is shown)."""
    from sqlalchemy.exc import IntegrityError

    from collector.auth import create_token
    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    now = dt.datetime.now(dt.UTC)
    try:
        expires = now + parse_duration(expires_in).timedelta if expires_in else None
        token = create_token(open_store(settings), name, set(scope), now, expires)
    except ValueError as exc:
        errors.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except IntegrityError:
        errors.print(f"[red]a token named {name!r} exists already[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(token, highlight=False)
    errors.print(
        f"token {name!r} ({', '.join(sorted(scope))}"
        f"{', expires ' + expires.isoformat(timespec='minutes') if expires else ''}): "
        "send it as `Authorization: Bearer <token>`; it is not shown again.",
        highlight=False,
    )


@app.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """List tokens: name, scopes, created, expiry, revoked."""
    from rich.table import Table

    from store.access import ApiToken
    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).connect() as conn:
        rows = conn.execute(select(ApiToken).order_by(ApiToken.created_at)).all()
    if not rows:
        console.print("no tokens yet: create one with `throughline tokens create NAME`")
        return
    table = Table("name", "scopes", "created", "expires", "revoked")
    for row in rows:
        table.add_row(
            row.name,
            row.scopes,
            row.created_at.isoformat(timespec="minutes"),
            row.expires_at.isoformat(timespec="minutes") if row.expires_at else "never",
            row.revoked_at.isoformat(timespec="minutes") if row.revoked_at else "",
        )
    console.print(table)


@app.command()
def revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token; senders using it get 401 within seconds."""
    from collector.auth import revoke_token
    from throughline.runtime import open_store

    if not revoke_token(open_store(ctx.obj.settings()), name, dt.datetime.now(dt.UTC)):
        errors.print(f"[red]no active token named {name!r}[/]", highlight=False)
        raise typer.Exit(1)
    console.print(f"revoked {name!r}", highlight=False)
