"""`throughline users`: local dashboard accounts (bcrypt password hashes) and their roles."""

from __future__ import annotations

import datetime as dt

import typer
from sqlalchemy import Engine, insert, select, update

from store.access import User
from store.states import Role
from throughline.console import console, errors

app = typer.Typer(
    help="Dashboard accounts: executive, finance, oncall or admin. Passwords are kept only "
    "as bcrypt hashes; an account without a password signs in through single sign-on.",
    no_args_is_help=True,
)


def hash_password(password: str, rounds: int = 12) -> str:
    import bcrypt

    if not password:
        raise ValueError("a password cannot be empty")
    if len(password.encode()) > 72:
        raise ValueError("a password can be at most 72 bytes (bcrypt's limit)")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def add_user(
    engine: Engine,
    username: str,
    role: Role,
    password: str | None,
    now: dt.datetime,
    rounds: int = 12,
) -> None:
    """Create an account; `password=None` makes it single-sign-on only."""
    if not username.strip():
        raise ValueError("a user name cannot be empty")
    digest = hash_password(password, rounds) if password is not None else None
    with engine.begin() as conn:
        conn.execute(
            insert(User).values(
                username=username.strip(), password_hash=digest, role=role, created_at=now
            )
        )


@app.command()
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name (for single sign-on: the e-mail)."),
    role: Role = typer.Option(..., "--role", "-r", help="executive, finance, oncall or admin."),
    sso: bool = typer.Option(
        False, "--sso", help="No password: the user signs in through the identity provider."
    ),
) -> None:
    """Add a dashboard user; asks for the password twice (not echoed)."""
    from sqlalchemy.exc import IntegrityError

    from throughline.runtime import open_store

    settings = ctx.obj.settings()
    password = None if sso else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        add_user(open_store(settings), name, role, password, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        errors.print(f"[red]{exc}[/]", highlight=False)
        raise typer.Exit(2) from None
    except IntegrityError:
        errors.print(f"[red]a user named {name!r} exists already[/]", highlight=False)
        raise typer.Exit(2) from None
    console.print(f"added {name!r} as {role.value}", highlight=False)


@app.command("list")
def list_users(ctx: typer.Context) -> None:
    """List users: name, role, sign-in (password or SSO), created, disabled."""
    from rich.table import Table

    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).connect() as conn:
        rows = conn.execute(select(User).order_by(User.username)).all()
    if not rows:
        console.print("no users yet: add one with `throughline users add NAME --role admin`")
        return
    table = Table("name", "role", "sign-in", "created", "disabled")
    for row in rows:
        table.add_row(
            row.username,
            str(row.role),
            "password" if row.password_hash else "sso",
            row.created_at.isoformat(timespec="minutes"),
            row.disabled_at.isoformat(timespec="minutes") if row.disabled_at else "",
        )
    console.print(table)


@app.command()
def disable(ctx: typer.Context, name: str = typer.Argument(..., help="The user's name.")) -> None:
    """Disable a user: they can no longer sign in."""
    from throughline.runtime import open_store

    with open_store(ctx.obj.settings()).begin() as conn:
        changed = conn.execute(
            update(User)
            .where(User.username == name, User.disabled_at.is_(None))
            .values(disabled_at=dt.datetime.now(dt.UTC))
        ).rowcount
    if not changed:
        errors.print(f"[red]no active user named {name!r}[/]", highlight=False)
        raise typer.Exit(1)
    console.print(f"disabled {name!r}", highlight=False)
