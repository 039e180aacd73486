"""Staff commands: `pitpass requests …`, `pitpass clients …`, `pitpass access-list …`.

Every change names the staff member who makes it (`--as EMAIL`), which the
audit log records. Bad input: one line on stderr and exit status 2.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from pitpass.cli_common import JsonOption, context, fail, print_json, print_table
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.services import access_lists, client_details, client_secrets, request_queue, workflow
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails, name_field
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.services.members import find_by_email
from pitpass.services.paging import Page

requests_app = typer.Typer(no_args_is_help=True, help="Client registration requests")
clients_app = typer.Typer(no_args_is_help=True, help="Issued clients")
access_app = typer.Typer(no_args_is_help=True, help="Access lists of password-limited clients")

ActorOption = Annotated[str, typer.Option("--as", help="Email of the staff member acting")]
MessageOption = Annotated[str, typer.Option(help="Message to the developer")]

CLI_OPTIONS = {
    "access_token_seconds": "--access-token-seconds",
    "refresh_token_seconds": "--refresh-token-seconds",
    "refresh_grace_seconds": "--refresh-grace-seconds",
    "client_name": "--name",
    "client_type": "--type",
    "flows": "--flow",
    "description": "--description",
    "developer_name": "--developer-name",
    "developer_url": "--developer-url",
    "developer_email": "--developer-email",
    "redirect_uris": "--redirect-uri",
    "audiences": "--audience",
}


def _option_name(field: str) -> str:
    """`redirect_uris.0` → `--redirect-uri #1`: the option, and which of its values."""
    return name_field(field, CLI_OPTIONS, lambda option, index: f"{option} #{index + 1}")


def explain(error: ServiceError) -> str:
    """All problems on one line, each named by the option that caused it."""
    errors = client_details.without_summaries(error.errors)
    return "; ".join(f"{_option_name(key)}: {message}" for key, message in errors.items())


@contextmanager
def staff_session(actor_email: str) -> Iterator[tuple[AppContext, Session, Member]]:
    """A transaction acting as a staff member; registration errors end in one line."""
    with context() as ctx:
        mail_ids: list[int] = []
        try:
            with ctx.session() as db:
                actor = find_by_email(db, actor_email)
                if actor is None or not actor.is_staff or actor.is_disabled:
                    raise fail(f"--as: {actor_email!r} is not an active staff member")
                db.info["mail_ids"] = mail_ids
                yield ctx, db, actor
        except ServiceError as error:
            raise fail(explain(error)) from None
        if mail_ids:
            asyncio.run(ctx.mailer.deliver(ctx.session_factory, mail_ids))


def queue_mail(db: Session, mail_ids: list[int]) -> None:
    db.info["mail_ids"].extend(mail_ids)


def _request(db: Session, request_id: int) -> RegistrationRequest:
    item = db.get(RegistrationRequest, request_id)
    if item is None:
        raise fail(f"there is no request #{request_id}")
    return item


def _client(db: Session, client_id: str) -> Client:
    client = clients_service.by_client_id(db, client_id)
    if client is None:
        raise fail(f"there is no client {client_id!r}")
    return client


def request_summary(db: Session, item: RegistrationRequest) -> dict[str, Any]:
    client = clients_service.by_pk(db, item.client_pk)
    requester = db.get(Member, item.requester_id)
    return {
        "id": item.id,
        "status": item.status,
        "kind": "change" if item.is_change else "new",
        "client_id": client.client_id if client else None,
        "requester": requester.email if requester else None,
        "submitted_at": item.submitted_at.isoformat(),
        "due_at": item.due_at.isoformat(),
        "overdue": request_queue.is_overdue(item),
        "staff_message": item.staff_message,
        **ClientDetails.of(item).as_dict(),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def client_summary(db: Session, client: Client) -> dict[str, Any]:
    status = client_secrets.secret_status(db, client)
    return {
        "client_id": client.client_id,
        "state": "disabled" if client.is_disabled else "live",
        **ClientDetails.of(client).as_dict(),
        "secret_created_at": _iso(status.created_at if status else None),
        "previous_secret_valid_until": _iso(status.previous_valid_until if status else None),
        "access_list": access_lists.shown(db, client, to_staff=True),
    }


def _show(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    width = max(len(key) for key in summary)
    for key, value in summary.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        typer.echo(f"{key.ljust(width)}  {'' if shown is None else shown}")


def _show_page(
    title: str, columns: list[str], summaries: list[dict[str, Any]], info: Page, as_json: bool
) -> None:
    if as_json:
        print_json({"items": summaries, "page": info.number, "total": info.total})
        return
    print_table(f"{title} ({info.total}; page {info.number} of {info.last})", columns, summaries)


# ----- requests --------------------------------------------------------------------------


@requests_app.command("list")
def requests_list(
    status: Annotated[str, typer.Option(help="Comma-separated statuses")] = "submitted",
    page: Annotated[int, typer.Option(min=1)] = 1,
    as_json: JsonOption = False,
) -> None:
    """The review queue, earliest due first."""
    statuses = [s.strip() for s in status.split(",")]
    known = set(workflow.STATUSES)
    if unknown := [s for s in statuses if s not in known]:
        raise fail(f"--status: unknown status {unknown[0]!r}; use {', '.join(sorted(known))}")
    with context() as ctx, ctx.session() as db:
        rows, info = request_queue.staff_queue(db, page, statuses)
        summaries = [request_summary(db, r) for r in rows]
    columns = ["id", "client_name", "kind", "status", "due_at", "overdue", "requester"]
    _show_page("Requests", columns, summaries, info, as_json)


@requests_app.command("show")
def requests_show(request_id: int, as_json: JsonOption = False) -> None:
    """One request with its automatic checks."""
    with context() as ctx, ctx.session() as db:
        item = _request(db, request_id)
        review = workflow.review_request(db, ctx.settings, item)
        summary = request_summary(db, item) | {
            "blocked": [f"{_option_name(k)}: {m}" for k, m in review.errors.items()],
            "warnings": [
                f"{_option_name(k)}: {m}" for k, ms in review.warnings.items() for m in ms
            ],
        }
    _show(summary, as_json)


@requests_app.command("approve")
def requests_approve(
    request_id: int, actor: ActorOption, message: MessageOption = "", as_json: JsonOption = False
) -> None:
    """Approve: issue the client (the secret goes to the developer by a one-time link)."""
    with staff_session(actor) as (ctx, db, staff):
        issued = workflow.approve(ctx, db, _request(db, request_id), staff, message)
        queue_mail(db, issued.mail_ids)
        summary = {"id": request_id, "status": "approved", "client_id": issued.client.client_id}
    if as_json:
        print_json(summary)
    else:
        typer.echo(f"approved request #{request_id}: client_id {summary['client_id']}")


@requests_app.command("reject")
def requests_reject(request_id: int, actor: ActorOption, message: MessageOption = "") -> None:
    """Reject, telling the developer why (--message is required)."""
    with staff_session(actor) as (ctx, db, staff):
        queue_mail(db, workflow.decide(ctx, db, _request(db, request_id), staff, "reject", message))
    typer.echo(f"rejected request #{request_id}")


@requests_app.command("request-changes")
def requests_request_changes(
    request_id: int, actor: ActorOption, message: MessageOption = ""
) -> None:
    """Send the request back to the developer with what to change (--message is required)."""
    with staff_session(actor) as (ctx, db, staff):
        item = _request(db, request_id)
        queue_mail(db, workflow.decide(ctx, db, item, staff, "request-changes", message))
    typer.echo(f"asked for changes to request #{request_id}")


@requests_app.command("remind")
def requests_remind() -> None:
    """Mail staff the requests close to or past their due date (for cron)."""
    with context() as ctx:
        with ctx.session() as db:
            due, mail_ids = request_queue.send_reminders(ctx, db)
        if mail_ids:
            asyncio.run(ctx.mailer.deliver(ctx.session_factory, mail_ids))
    typer.echo(f"{due} request(s) near or past due; {len(mail_ids)} reminder(s) sent")


# ----- clients -------------------------------------------------------------------------


@clients_app.command("list")
def clients_list(
    page: Annotated[int, typer.Option(min=1)] = 1, as_json: JsonOption = False
) -> None:
    with context() as ctx, ctx.session() as db:
        rows, info = clients_service.all_clients(db, page)
        summaries = [client_summary(db, c) for c in rows]
    columns = ["client_id", "client_name", "client_type", "flows", "state"]
    _show_page("Clients", columns, summaries, info, as_json)


@clients_app.command("show")
def clients_show(client_id: str, as_json: JsonOption = False) -> None:
    with context() as ctx, ctx.session() as db:
        summary = client_summary(db, _client(db, client_id))
    _show(summary, as_json)


@clients_app.command("create")
def clients_create(
    actor: ActorOption,
    name: Annotated[str, typer.Option(help="Client name, shown to members")],
    client_type: Annotated[
        str, typer.Option("--type", help="server-side, single-page-app, mobile or native")
    ],
    flow: Annotated[
        list[str], typer.Option(help="authorization_code and/or password_limited (repeatable)")
    ],
    developer_email: Annotated[str, typer.Option(help="Developer's email")],
    developer_name: Annotated[str, typer.Option(help="Developer's name")] = "",
    developer_url: Annotated[str, typer.Option(help="Developer's https URL")] = "",
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="Redirect URI (repeatable)")
    ] = None,
    audience: Annotated[list[str] | None, typer.Option(help="Audience (repeatable)")] = None,
    description: Annotated[str, typer.Option(help="What the client is")] = "",
    owner: Annotated[str, typer.Option(help="Member who manages it in the portal")] = "",
    as_json: JsonOption = False,
) -> None:
    """Issue a client directly (a registration that reached staff by other channels).

    Prints the client_id and, for server-side clients, the secret: once.
    """
    details = ClientDetails(
        client_name=name,
        client_type=client_type,
        flows=flow,
        description=description,
        developer_name=developer_name,
        developer_url=developer_url,
        developer_email=developer_email,
        redirect_uris=redirect_uri or [],
        audiences=audience or [],
    )
    with staff_session(actor) as (ctx, db, staff):
        owner_member = find_by_email(db, owner or developer_email)
        if owner and owner_member is None:
            raise fail(f"--owner: no member has the email {owner!r}")
        issued = clients_service.create_client(ctx, db, details, staff, owner=owner_member)
        summary = {"client_id": issued.client.client_id, "client_secret": issued.secret}
    if as_json:
        print_json(summary)
        return
    typer.echo(f"client_id:     {summary['client_id']}")
    if issued.secret:
        typer.echo(f"client_secret: {issued.secret}")
        typer.echo("(shown once: it is stored only as a keyed hash)")
    else:
        typer.echo("no client_secret: public clients use PKCE")


def _set_state(client_id: str, actor: str, disabled: bool) -> None:
    with staff_session(actor) as (_ctx, db, staff):
        clients_service.set_disabled(db, _client(db, client_id), disabled, staff)
    typer.echo(f"{'disabled' if disabled else 'enabled'} {client_id}")


@clients_app.command("disable")
def clients_disable(client_id: str, actor: ActorOption) -> None:
    _set_state(client_id, actor, True)


@clients_app.command("enable")
def clients_enable(client_id: str, actor: ActorOption) -> None:
    _set_state(client_id, actor, False)


@clients_app.command("rotate-secret")
def clients_rotate_secret(client_id: str, actor: ActorOption, as_json: JsonOption = False) -> None:
    """A new secret, printed once; the previous one keeps working for the grace period."""
    with staff_session(actor) as (ctx, db, staff):
        secret = client_secrets.rotate_secret(ctx, db, _client(db, client_id), staff)
    if as_json:
        print_json({"client_id": client_id, "client_secret": secret})
    else:
        typer.echo(f"client_secret: {secret}")
        typer.echo("(shown once; the previous secret stays valid for the grace period)")


@clients_app.command("set-lifetimes")
def clients_set_lifetimes(
    client_id: str,
    actor: ActorOption,
    access_token_seconds: Annotated[int | None, typer.Option(help="Default 600")] = None,
    refresh_token_seconds: Annotated[
        int | None, typer.Option(help="Default 604800; 0 issues no refresh tokens")
    ] = None,
    refresh_grace_seconds: Annotated[
        int | None, typer.Option(help="A reused refresh token is forgiven this long; default 0")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Token lifetimes of one client (PRODUCT.md §4)."""
    with staff_session(actor) as (_ctx, db, staff):
        result = clients_service.set_lifetimes(
            db,
            _client(db, client_id),
            staff,
            {
                "access_token_seconds": access_token_seconds,
                "refresh_token_seconds": refresh_token_seconds,
                "refresh_grace_seconds": refresh_grace_seconds,
            },
        )
    if as_json:
        print_json({"client_id": client_id, **result})
    else:
        typer.echo(", ".join(f"{name} {value}" for name, value in result.items()))


# ----- access lists ----------------------------------------------------------------------


@access_app.command("show")
def access_show(client_id: str, as_json: JsonOption = False) -> None:
    with context() as ctx, ctx.session() as db:
        rows = client_summary(db, _client(db, client_id))["access_list"]
    if as_json:
        print_json(rows)
    else:
        print_table(f"Access list of {client_id}", ["email", "customer_id", "state"], rows)


@access_app.command("add")
def access_add(client_id: str, member: str, actor: ActorOption) -> None:
    """Add a member (email or customer id); active at once: staff act on their request."""
    with staff_session(actor) as (ctx, db, staff):
        _entry, added, _mail = access_lists.add_to_access_list(
            ctx, db, _client(db, client_id), member, staff, by_staff=True
        )
        email = added.email
    typer.echo(f"{email} can now use {client_id} (password_limited)")


@access_app.command("remove")
def access_remove(client_id: str, member: str, actor: ActorOption) -> None:
    with staff_session(actor) as (_ctx, db, staff):
        removed = access_lists.remove_from_access_list(db, _client(db, client_id), member, staff)
        email = removed.email
    typer.echo(f"removed {email} from {client_id}")
