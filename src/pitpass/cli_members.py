"""Staff acting on members: `pitpass members disable|enable|set-staff|clear-two-step EMAIL
--as STAFF` (issue #12, item 7). The rules are services/member_admin.py's, as in the console.

`--reason` is required here as on the pages: every such change is audited with its
actor and its reason, and a reason typed later cannot be added to the log.
"""

from __future__ import annotations

from typing import Annotated

import typer

from pitpass.cli_common import fail
from pitpass.cli_staff import ActorOption, queue_mail, staff_session
from pitpass.services import member_admin
from pitpass.services.errors import ServiceError
from pitpass.services.members import find_by_email

members_app = typer.Typer(no_args_is_help=True, help="Member accounts")

EmailArgument = Annotated[str, typer.Argument(help="The member's email")]
ReasonOption = Annotated[str, typer.Option(help="Why (required; kept in the audit log with --as)")]
OPTION_OF_FIELD = {"reason": "--reason", "actor": "--as"}


def _act(email: str, actor: str, action: str, reason: str) -> None:
    with staff_session(actor) as (ctx, db, staff):
        member = find_by_email(db, email)
        if member is None:
            raise fail(f"no member has the email {email!r}")
        try:
            queue_mail(db, member_admin.act(ctx, db, member, staff, action, reason))
        except ServiceError as error:  # refused before anything was written
            raise fail(
                "; ".join(
                    f"{OPTION_OF_FIELD[key]}: {message}" if key in OPTION_OF_FIELD else message
                    for key, message in error.errors.items()
                )
            ) from None


@members_app.command("disable")
def members_disable(
    email: EmailArgument,
    actor: ActorOption,
    reason: ReasonOption = "",
) -> None:
    """Disable an account: signs it out everywhere; every token is inactive at once."""
    _act(email, actor, "disable", reason)
    typer.echo(f"disabled {email}: signed out everywhere")


@members_app.command("enable")
def members_enable(
    email: EmailArgument,
    actor: ActorOption,
    reason: ReasonOption = "",
) -> None:
    """Enable a disabled account (the member signs in afresh)."""
    _act(email, actor, "enable", reason)
    typer.echo(f"enabled {email}")


@members_app.command("set-staff")
def members_set_staff(
    email: EmailArgument,
    actor: ActorOption,
    off: Annotated[bool, typer.Option("--off", help="Remove staff instead of granting it")] = False,
    reason: ReasonOption = "",
) -> None:
    """Grant staff (or, with --off, remove it)."""
    _act(email, actor, "remove-staff" if off else "grant-staff", reason)
    typer.echo(f"{email} is {'no longer' if off else 'now'} staff")


@members_app.command("clear-two-step")
def members_clear_two_step(
    email: EmailArgument,
    actor: ActorOption,
    reason: ReasonOption = "",
) -> None:
    """Turn off a member's authenticator app (lost phone and recovery codes); they are
    told by mail and sign in with the emailed code again."""
    _act(email, actor, "clear-two-step", reason)
    typer.echo(f"{email}'s authenticator app is off: sign-in emails a code again")
