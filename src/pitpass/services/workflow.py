"""The review workflow of registration requests (PRODUCT.md §3).

Workflow: submitted → approved | rejected | changes_requested; a request with
changes requested can be edited and resubmitted; the requester can withdraw
it. Every transition is one conditional UPDATE on the expected status (two
staff members cannot both decide), is recorded in the audit log (which is
also the request's history) and is mailed to the requester.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from pitpass.config import Settings
from pitpass.db.models import Client, Member, RegistrationRequest, utcnow
from pitpass.services import audit
from pitpass.services.client_changes import Difference, differences
from pitpass.services.client_details import (
    ClientDetails,
    Review,
    is_confidential,
    review_details,
)
from pitpass.services.client_secrets import issue_secret, live_secrets
from pitpass.services.clients import Issued, new_client
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError

SUBMITTED = "submitted"
CHANGES_REQUESTED = "changes_requested"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
OPEN_STATUSES = (SUBMITTED, CHANGES_REQUESTED)
STATUSES = (*OPEN_STATUSES, APPROVED, REJECTED, WITHDRAWN)


def _changed_client(db: Session, request: RegistrationRequest) -> Client | None:
    """The live client a change request would change; None for a new client."""
    return db.get(Client, request.client_pk) if request.is_change and request.client_pk else None


def _its_client(db: Session, request: RegistrationRequest) -> Client | None:
    """The client a request is about: the one it changes, or the one its approval created."""
    return db.get(Client, request.client_pk) if request.client_pk else None


def review_request(db: Session, settings: Settings, request: RegistrationRequest) -> Review:
    """The automatic checks of a request as it stands, as staff see them before deciding.

    Checked against its own client, so an approved request never clashes with the
    client its approval created, nor a change request with the client it changes."""
    return review_details(
        db, settings, ClientDetails.of(request), changing=_its_client(db, request)
    )


def changes_asked(db: Session, request: RegistrationRequest) -> list[Difference]:
    """A change request's difference from its live client, field by field (empty for a new
    client's request)."""
    live = _changed_client(db, request)
    if live is None:
        return []
    return differences(ClientDetails.of(live), ClientDetails.of(request).cleaned())


def _notify(ctx: AppContext, db: Session, request: RegistrationRequest, what: str) -> int:
    member = db.get(Member, request.requester_id)
    assert member is not None
    service = ctx.settings.profile.service_name
    subject = f"{service}: your client request #{request.id} {what}"
    lines = [
        f"Hello {member.display_name},",
        "",
        f"Your request #{request.id} for the client '{request.client_name}' {what}.",
    ]
    if request.staff_message:
        lines += ["", "Message from staff:", request.staff_message]
    lines += ["", f"See it at {ctx.settings.public_base_url}/portal/requests/{request.id}", ""]
    return ctx.mailer.enqueue(db, member.email, subject, "\n".join(lines), "request_update").id


def submit(
    ctx: AppContext,
    db: Session,
    requester: Member,
    details: ClientDetails,
    *,
    changing: Client | None = None,
    ip: str | None = None,
) -> tuple[RegistrationRequest, list[int]]:
    """A new request (or a change request for `changing`); returns it and the mail ids."""
    review = review_details(db, ctx.settings, details, changing=changing)
    if not review.ok:
        raise ServiceError.fields(review.errors)
    now = utcnow()
    request = RegistrationRequest(
        requester_id=requester.id,
        client_pk=changing.id if changing else None,
        is_change=changing is not None,
        status=SUBMITTED,
        submitted_at=now,
        due_at=now + timedelta(days=ctx.settings.request_due_days),
    )
    review.details.write_to(request)
    db.add(request)
    db.flush()
    audit.record_for_request(
        db,
        "request.submitted",
        request,
        requester,
        ip,
        {"client_id": changing.client_id} if changing else {},
    )
    return request, [_notify(ctx, db, request, "was received")]


def move_status(
    db: Session,
    request: RegistrationRequest,
    allowed_from: Sequence[str],
    to: str,
    **values: object,
) -> None:
    """One conditional UPDATE: the status moves only if it is still what was read."""
    moved = db.execute(
        update(RegistrationRequest)
        .where(RegistrationRequest.id == request.id, RegistrationRequest.status.in_(allowed_from))
        .values(status=to, updated_at=utcnow(), **values)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        db.refresh(request)
        raise ServiceError.conflict(
            "status",
            f"request #{request.id} is {request.status.replace('_', ' ')}; "
            f"it cannot be {to.replace('_', ' ')} now",
        )
    db.refresh(request)


def review_edit(
    db: Session, settings: Settings, request: RegistrationRequest, details: ClientDetails
) -> Review:
    """The checks of the details a request is being edited to, against the client it changes."""
    return review_details(db, settings, details, changing=_changed_client(db, request))


def resubmit(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    details: ClientDetails,
    ip: str | None = None,
) -> list[int]:
    if request.requester_id != requester.id:
        raise ServiceError.conflict("request", "only the member who sent a request can edit it")
    review = review_edit(db, ctx.settings, request, details)
    if not review.ok:
        raise ServiceError.fields(review.errors)
    now = utcnow()
    move_status(
        db,
        request,
        [CHANGES_REQUESTED],
        SUBMITTED,
        staff_message=None,  # answered: the history keeps it, the page no longer shows it
        submitted_at=now,
        due_at=now + timedelta(days=ctx.settings.request_due_days),
    )
    review.details.write_to(request)
    audit.record_for_request(db, "request.resubmitted", request, requester, ip)
    return [_notify(ctx, db, request, "was resubmitted")]


def withdraw(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    ip: str | None = None,
) -> list[int]:
    if request.requester_id != requester.id:
        raise ServiceError.conflict("request", "only the member who sent a request can withdraw it")
    move_status(db, request, OPEN_STATUSES, WITHDRAWN, decided_at=utcnow())
    audit.record_for_request(db, "request.withdrawn", request, requester, ip)
    return [_notify(ctx, db, request, "was withdrawn")]


def check_decision(decision: str, message: str) -> None:
    """Refuse, before any confirmation step, a decision whose required message is missing."""
    if decision in _SEND_BACKS:
        _require_message(message, _SEND_BACKS[decision].what_to_write)


def _require_message(message: str, what: str) -> str:
    message = message.strip()
    if not message:
        raise ServiceError.field("message", f"write a message telling the developer {what}")
    if len(message) > 4000:
        raise ServiceError.field("message", "keep the message under 4000 characters")
    return message


@dataclass(frozen=True)
class _SendBack:
    """A staff decision that needs a message: request changes, or reject."""

    to: str
    what_to_write: str
    mail_words: str


_SEND_BACKS = {
    "request-changes": _SendBack(CHANGES_REQUESTED, "what to change", "needs changes"),
    "reject": _SendBack(REJECTED, "why the request was rejected", "was rejected"),
}
# Staff decisions as URLs, forms and commands name them.
DECISIONS = ("approve", *_SEND_BACKS)


def decide(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    decision: str,
    message: str,
    ip: str | None = None,
) -> list[int]:
    """Carry out one of DECISIONS (`message` required but to approve); returns the mail ids."""
    if decision == "approve":
        return approve(ctx, db, request, staff, message, ip).mail_ids
    how = _SEND_BACKS[decision]
    text = _require_message(message, how.what_to_write)
    decided_at = {"decided_at": utcnow()} if how.to == REJECTED else {}
    move_status(
        db, request, [SUBMITTED], how.to, staff_message=text, decided_by_id=staff.id, **decided_at
    )
    audit.record_for_request(db, f"request.{how.to}", request, staff, ip, {"message": text})
    return [_notify(ctx, db, request, how.mail_words)]


def approve(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    message: str = "",
    ip: str | None = None,
) -> Issued:
    """Approve: create the client (or apply the change) and, for server-side, a secret."""
    changing = _changed_client(db, request)
    review = review_details(db, ctx.settings, ClientDetails.of(request), changing=changing)
    if not review.ok:
        # The request's own fields are at fault (a field error), under `request.` to
        # tell them apart from the message staff typed.
        raise ServiceError.fields(
            {f"request.{k}": v for k, v in review.errors.items()}
            | {"status": "the request no longer passes the checks; request changes instead"}
        )
    move_status(
        db,
        request,
        [SUBMITTED],
        APPROVED,
        decided_by_id=staff.id,
        decided_at=utcnow(),
        staff_message=message.strip() or None,
    )
    requester = db.get(Member, request.requester_id)
    assert requester is not None
    reveal_link = None
    if changing is not None:
        review.details.write_to(changing)
        client = changing
        if is_confidential(client) and not live_secrets(db, client):
            reveal_link = issue_secret(ctx, db, client, reveal=True)[2]
    else:
        client = new_client(db, review.details, requester.id)
        request.client_pk = client.id
        if is_confidential(client):
            reveal_link = issue_secret(ctx, db, client, reveal=True)[2]
    audit.record_for_request(
        db,
        "request.approved",
        request,
        staff,
        ip,
        {"client_id": client.client_id, "change": request.is_change},
    )
    action = "client.changed" if changing else "client.created"
    audit.record_for_client(db, action, client, staff, ip)
    mail_ids = [_approval_mail(ctx, db, request, requester, client, reveal_link)]
    return Issued(client, None, mail_ids)


def _approval_mail(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    client: Client,
    reveal_link: str | None,
) -> int:
    service = ctx.settings.profile.service_name
    lines = [
        f"Hello {requester.display_name},",
        "",
        f"Your request #{request.id} was approved.",
        "",
        f"client_id: {client.client_id}",
    ]
    if reveal_link:
        hours = ctx.settings.secret_link_hours
        lines += [
            "",
            f"Your client_secret can be viewed once, within {hours} hours, at:",
            reveal_link,
            "(or once from the client's page in the portal). Store it safely: "
            "it cannot be shown again, only rotated.",
        ]
    elif not is_confidential(client):
        lines += ["", "This is a public client: it has no secret and must use PKCE."]
    if request.staff_message:
        lines += ["", "Message from staff:", request.staff_message]
    lines += ["", f"Manage it at {ctx.settings.public_base_url}/portal/clients/{client.client_id}"]
    return ctx.mailer.enqueue(
        db,
        requester.email,
        f"{service}: your client '{client.name}' is ready",
        "\n".join(lines) + "\n",
        "request_approved",
    ).id
