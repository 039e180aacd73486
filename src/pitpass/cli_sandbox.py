"""`pitpass sandbox`: one command for a client developer's first minute (issue #13, item 4).
The rules are services/sandbox.py's; this prints what they made and a snippet that works
as printed (the same curl the portal's client page shows, web/client_snippets.py)."""

from __future__ import annotations

import shlex
import time
from typing import Annotated

import typer

from pitpass import cli_common as common
from pitpass.cli_common import JsonOption, fail, print_json
from pitpass.db.models import Client
from pitpass.services import sandbox
from pitpass.services.clients import by_client_id
from pitpass.services.errors import ServiceError
from pitpass.services.members import MemberError
from pitpass.storage.clients import CLIENT_CACHE_SECONDS
from pitpass.web.client_snippets import token_snippets

OPTION_OF_FIELD = {"customer_id": "--customer-id", "email": "--email", "actor": "--as"}


def _snippet(made: sandbox.Sandbox, client: Client, issuer: str) -> str:
    """The password_limited curl of the client page, with the variables it reads set."""
    curl = next(s for s in token_snippets(client, issuer) if s.id == "curl-password_limited")
    exports = {
        "CLIENT_SECRET": made.client_secret,
        "MEMBER_EMAIL": made.email,
        "MEMBER_PASSWORD": made.password,
    }
    lines = [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    # The page's first line asks the reader to set these: here they are set above it.
    code = [line for line in curl.code.splitlines() if not line.startswith("# First set")]
    return "\n".join([*lines, *code])


def _exports(made: sandbox.Sandbox) -> str:
    names = {
        "CLIENT_ID": made.client_id,
        "CLIENT_SECRET": made.client_secret,
        "MEMBER_EMAIL": made.email,
        "MEMBER_PASSWORD": made.password,
    }
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in names.items())


def sandbox_command(
    email: Annotated[str, typer.Option(help="The sandbox member's email")] = sandbox.DEFAULT_EMAIL,
    customer_id: Annotated[
        int | None, typer.Option(help="The sandbox member's customer id (default: next free)")
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--as", help="Staff member who issues the client (default: the oldest)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Make (or reuse) a member and a server-side client with both flows on this database,
    and print credentials and a curl that gets a token at once."""
    with common.context() as ctx:
        try:
            with ctx.session() as db:
                made = sandbox.prepare(ctx, db, email, customer_id, actor)
                client = by_client_id(db, made.client_id)
                assert client is not None  # made or found a moment ago
                snippet = _snippet(made, client, ctx.settings.issuer)
        except MemberError as error:
            raise fail(f"{OPTION_OF_FIELD.get(error.field, '--email')}: {error.message}") from None
        except ServiceError as error:
            raise fail(
                "; ".join(
                    f"{OPTION_OF_FIELD[key]}: {message}" if key in OPTION_OF_FIELD else message
                    for key, message in error.errors.items()
                )
            ) from None
    if made.reused:
        # A running server reads a client's secrets at most every CLIENT_CACHE_SECONDS: wait
        # that long so the new secret works the moment it is printed (scripts use it at once).
        time.sleep(CLIENT_CACHE_SECONDS)
    if as_json:
        print_json({**made.__dict__, "issuer": ctx.settings.issuer, "snippet": snippet})
        return
    typer.echo(("Reused" if made.reused else "Made") + " the sandbox on this database:")
    typer.echo(f"  member:        {made.email} (customer id {made.customer_id})")
    typer.echo(f"  password:      {made.password}")
    typer.echo(f"  client_id:     {made.client_id}")
    typer.echo(f"  client_secret: {made.client_secret}  (shown once; a new one on each run)")
    typer.echo(f"  redirect_uri:  {made.redirect_uri}")
    typer.echo("\nA token with password_limited, as printed (bash, curl and openssl):\n")
    typer.echo(snippet)
    typer.echo("\nThe Python kit's snippets (book: The Python kit) read these:\n")
    typer.echo(_exports(made))
