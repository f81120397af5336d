"""Terminal output shared by the commands: consoles, config problems, unbuilt commands."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from throughline.config import ConfigError

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)


def print_problems(exc: ConfigError) -> None:
    errors.print(f"[bold red]{exc.source}[/]: {len(exc.problems)} problem(s)", highlight=False)
    for problem in exc.problems:
        errors.print(f"  {problem}", highlight=False, markup=False)


def not_built(what: str, issue: int | None) -> NoReturn:
    """Say plainly that a command is planned but not built, and fail."""
    plan = f"issue #{issue}" if issue else "a later issue"
    errors.print(
        f"[yellow]not built yet:[/] {what} arrives with {plan}. Nothing was done.",
        highlight=False,
    )
    raise typer.Exit(3)


def planned_group(
    name: str, help_text: str, commands: dict[str, str], issue: int | None
) -> typer.Typer:
    """A command group whose commands are planned; each says so and exits non-zero."""
    group = typer.Typer(help=help_text, no_args_is_help=True)
    plan = f"issue #{issue}" if issue else "a later issue"
    for command, description in commands.items():
        what = f"`throughline {name} {command}`"
        group.command(command, help=f"{description} [not built yet: {plan}]")(
            lambda _what=what: not_built(_what, issue)
        )
    return group
