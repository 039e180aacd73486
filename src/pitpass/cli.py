"""The `pitpass` command. Bad input: one line on stderr and a non-zero exit."""

from __future__ import annotations

import secrets
import sys
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy import func, select

from pitpass import cli_common as common
from pitpass import metrics
from pitpass.cli_common import JsonOption, fail, print_json, print_table
from pitpass.cli_members import members_app
from pitpass.cli_sandbox import sandbox_command
from pitpass.cli_staff import access_app, clients_app, requests_app
from pitpass.db import migrate
from pitpass.db.models import Member, utcnow
from pitpass.services import keys as keys_service
from pitpass.services import members as members_service
from pitpass.services import secret_keys
from pitpass.services.members import MemberError, NewMember

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Pitpass authorization service")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
keys_app = typer.Typer(no_args_is_help=True, help="Token signing keys")
secret_key_app = typer.Typer(no_args_is_help=True, help="PITPASS_SECRET_KEY rotation")
app.add_typer(db_app, name="db")
app.add_typer(members_app, name="members")
app.command("sandbox")(sandbox_command)
app.add_typer(keys_app, name="keys")
app.add_typer(secret_key_app, name="secret-key")
app.add_typer(requests_app, name="requests")
app.add_typer(clients_app, name="clients")
app.add_typer(access_app, name="access-list")

BOOTSTRAP_STAFF_EMAIL = "staff@pitpass.test"
# On SIGTERM, requests already started may finish for this long; then they are cancelled.
# It matches nginx's proxy_read_timeout in deploy/: past it no client is waiting any more.
GRACEFUL_SHUTDOWN_SECONDS = 30


# ----- serve and schema --------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
    timeout_graceful_shutdown: Annotated[
        int,
        typer.Option(
            min=1, max=3600, help="Seconds in-flight requests may take to finish after SIGTERM"
        ),
    ] = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Run the service."""
    import uvicorn

    from pitpass.logs import configure_logging
    from pitpass.serving import BoundedHttpToolsProtocol

    settings = common.settings()
    with common.context() as context:
        if not migrate.is_up_to_date(context.engine):
            raise fail("the database schema is not up to date; run `pitpass db upgrade` first")
    if workers > 1 and not settings.redis_url:
        typer.echo(
            "pitpass: warning: several workers without PITPASS_REDIS_URL keep separate "
            "rate-limit counters",
            err=True,
        )
    base = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    typer.echo(f"{settings.profile.service_name} is starting at {base}/ (sign in at {base}/signin)")
    if workers > 1:
        # Before the workers start: they import prometheus_client in multiprocess mode.
        metrics.prepare_multiprocess_dir(settings.data_dir)
    configure_logging()
    uvicorn.run(
        "pitpass.app:create_server_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=timeout_graceful_shutdown,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        # httptools with a header-size limit and a header deadline (serving.py).
        http=BoundedHttpToolsProtocol,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    with common.context() as context:
        migrate.upgrade(context.engine)
        context.keyring.prepare()  # stores the token-hash key before anything needs it
    typer.echo("database schema is up to date")


@app.command()
def setup() -> None:
    """Upgrade the schema; on an empty database create a staff account and print its password."""
    with common.context() as context:
        migrate.upgrade(context.engine)
        context.keyring.prepare()
        with context.session() as db:
            keys_service.ensure_active_key(db, context.keyring)
            if db.scalar(select(func.count()).select_from(Member)):
                typer.echo("database ready; sign in with an existing account")
                return
            password = secrets.token_urlsafe(15)
            members_service.create_member(
                db,
                NewMember(
                    email=BOOTSTRAP_STAFF_EMAIL,
                    display_name="Pitpass staff",
                    password=password,
                    is_staff=True,
                ),
                actor_label="setup",
            )
    typer.echo("Created the first staff account (shown once, write it down):")
    typer.echo(f"  email:    {BOOTSTRAP_STAFF_EMAIL}")
    typer.echo(f"  password: {password}")
    typer.echo("Without SMTP, the sign-in code is printed in the service log and in /console/mail.")


# ----- members -------------------------------------------------------------------


def _read_password() -> str:
    """From a hidden prompt on a terminal, else the first line of stdin; never from argv."""
    if sys.stdin.isatty():
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline()
    if not line:
        raise fail("no password given on stdin")
    return line.rstrip("\r\n")


@members_app.command("create")
def members_create(
    email: Annotated[str, typer.Option(help="Email address (sign-in name)")],
    name: Annotated[str, typer.Option(help="Display name")],
    staff: Annotated[bool, typer.Option("--staff", help="Give the staff role")] = False,
    customer_id: Annotated[int | None, typer.Option(help="Customer id (default: next)")] = None,
    group_id: Annotated[list[int] | None, typer.Option(help="Group id (repeatable)")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a member; the password is read from a prompt or stdin."""
    password = _read_password()
    with common.context() as context, context.session() as db:
        try:
            member = members_service.create_member(
                db,
                NewMember(
                    email=email,
                    display_name=name,
                    password=password,
                    is_staff=staff,
                    customer_id=customer_id,
                    group_ids=group_id or [],
                ),
                actor_label=common.actor_label(),
            )
        except MemberError as error:
            option = {"display_name": "name", "group_ids": "group-id"}.get(error.field, error.field)
            raise fail(f"--{option.replace('_', '-')}: {error.message}") from None
        summary = _member_summary(member)
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"created member {summary['email']} with customer id {summary['customer_id']}")


def _member_summary(member: Member) -> dict[str, Any]:
    return {
        "customer_id": member.customer_id,
        "email": member.email,
        "display_name": member.display_name,
        "group_ids": member.group_ids,
        "staff": member.is_staff,
        "disabled": member.is_disabled,
        "created_at": member.created_at.isoformat(),
    }


@members_app.command("list")
def members_list(
    as_json: JsonOption = False,
) -> None:
    """List members."""
    with common.context() as context, context.session() as db:
        rows = [_member_summary(m) for m in db.scalars(select(Member).order_by(Member.id))]
    if as_json:
        print_json(rows)
        return
    print_table("Members", ["customer_id", "email", "display_name", "staff", "disabled"], rows)


# ----- keys --------------------------------------------------------------------------


def _key_status(record: Any, now: datetime) -> str:
    if record.retired_at is not None and record.retired_at <= now:
        return "retired"
    return "next" if record.created_at > now else "active"  # next: published, signs later


def _key_summary(record: Any) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "algorithm": record.algorithm,
        "status": _key_status(record, utcnow()),
        "created_at": record.created_at.isoformat(),
        "retired_at": record.retired_at.isoformat() if record.retired_at else None,
    }


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List signing keys, newest first."""
    with common.context() as context, context.session() as db:
        rows = [_key_summary(record) for record in keys_service.all_keys(db)]
    if as_json:
        print_json(rows)
        return
    print_table("Signing keys", ["kid", "algorithm", "status", "created_at", "retired_at"], rows)


@keys_app.command("rotate")
def keys_rotate(
    as_json: JsonOption = False,
) -> None:
    """Make a new signing key; older keys stay published until their tokens expire."""
    with common.context() as context, context.session() as db:
        new, retired = keys_service.rotate(db, context.keyring, common.actor_label())
        summary = _key_summary(new) | {"retired": retired}
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"new signing key {summary['kid']}; retired: {', '.join(retired) or 'none'}")


# ----- secret key --------------------------------------------------------------------


@secret_key_app.command("rewrap")
def secret_key_rewrap(as_json: JsonOption = False) -> None:
    """Re-seal everything at rest under PITPASS_SECRET_KEY (reading with the previous keys);
    afterwards PITPASS_SECRET_KEY_PREVIOUS is no longer needed. Safe to run again."""
    with common.context() as context:
        try:
            with context.session() as db:
                report = secret_keys.rewrap(db, context.keyring)
        except secret_keys.UnreadableSealed as error:
            raise fail(str(error)) from None
    if as_json:
        print_json({"resealed": report.resealed, "already_current": report.already_current})
    else:
        typer.echo(report.summary())


def main() -> None:
    app()
