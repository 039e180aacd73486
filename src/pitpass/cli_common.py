"""What every `pitpass` command shares: one-line failures, settings, output."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import OperationalError, ProgrammingError

from pitpass.config import ConfigError, Settings, load_settings
from pitpass.services.context import AppContext

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
out = Console()


def fail(message: str) -> typer.Exit:
    """Print `pitpass: <message>` on stderr; raise the result to exit with status 2."""
    typer.echo(f"pitpass: {message}", err=True)
    return typer.Exit(2)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        raise fail(str(error)) from None


@contextmanager
def context() -> Iterator[AppContext]:
    app_context = AppContext.from_settings(settings())
    try:
        yield app_context
    except (OperationalError, ProgrammingError) as error:
        raise fail(
            f"the database refused the operation ({type(error.orig).__name__}); "
            "is it reachable and upgraded (`pitpass db upgrade`)?"
        ) from None
    finally:
        app_context.close()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def print_table(title: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        cells = (row[c] for c in columns)
        table.add_row(*(", ".join(map(str, v)) if isinstance(v, list) else str(v) for v in cells))
    out.print(table)


def actor_label() -> str:
    """Who ran a command, for the audit log, when no staff member is named."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
