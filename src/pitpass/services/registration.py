"""Registration requests: validate, submit, review, decide (PRODUCT.md §3).

Workflow: submitted → approved | rejected | changes_requested; a request with
changes requested can be edited and resubmitted; the requester can withdraw
it. Every transition is one conditional UPDATE on the expected status (two
staff members cannot both decide), is recorded in the audit log (which is
also the request's history) and is mailed to the requester.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from pitpass.config import Settings
from pitpass.core.client_names import check_client_name, name_key
from pitpass.core.redirect_uris import check_redirect_uri_list
from pitpass.db.models import AuditEvent, Client, Member, RegistrationRequest, utcnow
from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.members import email_problem

CLIENT_TYPES = ("server-side", "single-page-app", "mobile", "native")
FLOWS = ("authorization_code", "password_limited")
PUBLIC_CLIENT_TYPES = frozenset({"single-page-app", "mobile", "native"})
MAX_DESCRIPTION_LENGTH = 200
MAX_DEVELOPER_NAME_LENGTH = 100

SUBMITTED = "submitted"
CHANGES_REQUESTED = "changes_requested"
APPROVED = "approved"
REJECTED = "rejected"
WITHDRAWN = "withdrawn"
OPEN_STATUSES = (SUBMITTED, CHANGES_REQUESTED)


@dataclass
class ClientDetails:
    """Every field of a request (PRODUCT.md §3): one shape for pages, API and CLI."""

    client_name: str = ""
    client_type: str = ""
    flows: list[str] = field(default_factory=list)
    description: str = ""
    developer_name: str = ""
    developer_url: str = ""
    developer_email: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)

    @property
    def password_limited_only(self) -> bool:
        return self.flows == ["password_limited"]

    def cleaned(self) -> ClientDetails:
        """Trimmed, blank list entries dropped, flows and audiences de-duplicated."""
        return ClientDetails(
            client_name=self.client_name.strip(),
            client_type=self.client_type.strip(),
            flows=[flow for flow in FLOWS if flow in {f.strip() for f in self.flows}]
            + sorted({f.strip() for f in self.flows} - set(FLOWS) - {""}),
            description=self.description.strip(),
            developer_name=self.developer_name.strip(),
            developer_url=self.developer_url.strip(),
            developer_email=self.developer_email.strip(),
            redirect_uris=[uri.strip() for uri in self.redirect_uris if uri.strip()],
            audiences=list(dict.fromkeys(a.strip() for a in self.audiences if a.strip())),
        )

    @classmethod
    def of(cls, record: RegistrationRequest | Client) -> ClientDetails:
        name = record.client_name if isinstance(record, RegistrationRequest) else record.name
        return cls(
            client_name=name,
            client_type=record.client_type,
            flows=list(record.flows),
            description=record.description,
            developer_name=record.developer_name or "",
            developer_url=record.developer_url or "",
            developer_email=record.developer_email,
            redirect_uris=list(record.redirect_uris),
            audiences=list(record.audiences),
        )

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Review:
    """The automatic checks: `errors` block (field → message), `warnings` flag for staff."""

    details: ClientDetails
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def warn(self, key: str, message: str) -> None:
        self.warnings.setdefault(key, []).append(message)


class RegistrationError(Exception):
    """Bad input or a transition not allowed now; `errors` maps fields to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _check_developer_url(url: str) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname or " " in url:
        return "the developer URL must be an https URL such as https://www.myleague.com"
    if "@" in parts.netloc or parts.fragment:
        return "the developer URL must not contain user information or a fragment"
    if len(url) > 2000:
        return "the developer URL may be at most 2000 characters"
    return None


def review_details(
    db: Session, settings: Settings, details: ClientDetails, *, changing: Client | None = None
) -> Review:
    """Check every field at once; messages say what is wrong and how to fix it."""
    d = details.cleaned()
    review = Review(d)
    errors = review.errors

    name = check_client_name(d.client_name, settings.profile.brand_words)
    if name.problems:
        errors["client_name"] = name.problems[0]
    else:
        for warning in name.warnings:
            review.warn("client_name", warning)
        clash = db.scalar(
            select(Client.client_id).where(
                Client.name_key == name_key(d.client_name),
                Client.is_disabled.is_(False),
                Client.id != (changing.id if changing else -1),
            )
        )
        if clash:
            errors["client_name"] = (
                f"a live client is already called '{d.client_name}'; choose another name"
            )

    if d.client_type not in CLIENT_TYPES:
        errors["client_type"] = f"choose the client type: one of {', '.join(CLIENT_TYPES)}"
    unknown_flows = [f for f in d.flows if f not in FLOWS]
    if unknown_flows:
        errors["flows"] = (
            f"unknown flow '{unknown_flows[0]}'; choose authorization_code and/or password_limited"
        )
    elif not d.flows:
        errors["flows"] = "choose at least one flow: authorization_code or password_limited"
    elif "password_limited" in d.flows and d.client_type in PUBLIC_CLIENT_TYPES:
        errors["flows"] = (
            "password_limited needs a server-side client: only a server can keep the secret"
        )

    if len(d.description) > MAX_DESCRIPTION_LENGTH:
        errors["description"] = f"keep the description under {MAX_DESCRIPTION_LENGTH} characters"

    shown_to_members = not d.password_limited_only
    if shown_to_members and not d.developer_name:
        errors["developer_name"] = "enter the developer's name members will see on the consent page"
    elif len(d.developer_name) > MAX_DEVELOPER_NAME_LENGTH:
        errors["developer_name"] = f"use at most {MAX_DEVELOPER_NAME_LENGTH} characters"
    if shown_to_members and not d.developer_url:
        errors["developer_url"] = (
            "enter the developer's website members will see, such as https://www.myleague.com"
        )
    elif problem := _check_developer_url(d.developer_url):
        errors["developer_url"] = problem
    if problem := email_problem(d.developer_email.lower()):
        errors["developer_email"] = problem.replace("Enter your", "Enter the developer's")

    if "authorization_code" in d.flows and not d.redirect_uris:
        errors["redirect_uris"] = (
            "add at least one redirect URI: the authorization_code flow sends members back to it"
        )
    for index, check in enumerate(check_redirect_uri_list(d.redirect_uris, d.client_type)):
        if check.problems:
            errors.setdefault(f"redirect_uris.{index}", check.problems[0])
            errors.setdefault("redirect_uris", f"redirect URI {index + 1}: {check.problems[0]}")
        for warning in check.warnings:
            review.warn(f"redirect_uris.{index}", warning)

    allowed = settings.profile.audiences
    unknown = [a for a in d.audiences if a not in allowed]
    if unknown:
        errors["audiences"] = (
            f"unknown audience '{unknown[0]}'; choose from: {', '.join(allowed) or 'none'}"
        )
    return review


# ----- the workflow ------------------------------------------------------------------


def _apply(record: RegistrationRequest, details: ClientDetails) -> None:
    record.client_name = details.client_name
    record.client_type = details.client_type
    record.flows = details.flows
    record.description = details.description
    record.developer_name = details.developer_name or None
    record.developer_url = details.developer_url or None
    record.developer_email = details.developer_email
    record.redirect_uris = details.redirect_uris
    record.audiences = details.audiences


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
        raise RegistrationError(review.errors)
    now = utcnow()
    request = RegistrationRequest(
        requester_id=requester.id,
        client_pk=changing.id if changing else None,
        is_change=changing is not None,
        status=SUBMITTED,
        submitted_at=now,
        due_at=now + timedelta(days=ctx.settings.request_due_days),
    )
    _apply(request, review.details)
    db.add(request)
    db.flush()
    audit.record(
        db,
        "request.submitted",
        actor=requester,
        target_type="request",
        target_id=request.id,
        ip=ip,
        details={"client_id": changing.client_id} if changing else {},
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
        raise RegistrationError(
            {
                "status": f"request #{request.id} is {request.status.replace('_', ' ')}; "
                f"it cannot be {to.replace('_', ' ')} now"
            }
        )
    db.refresh(request)


def resubmit(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    details: ClientDetails,
    ip: str | None = None,
) -> list[int]:
    if request.requester_id != requester.id:
        raise RegistrationError({"request": "only the member who sent a request can edit it"})
    changing = (
        db.get(Client, request.client_pk) if request.is_change and request.client_pk else None
    )
    review = review_details(db, ctx.settings, details, changing=changing)
    if not review.ok:
        raise RegistrationError(review.errors)
    now = utcnow()
    move_status(
        db,
        request,
        [CHANGES_REQUESTED],
        SUBMITTED,
        submitted_at=now,
        due_at=now + timedelta(days=ctx.settings.request_due_days),
    )
    _apply(request, review.details)
    audit.record(
        db,
        "request.resubmitted",
        actor=requester,
        target_type="request",
        target_id=request.id,
        ip=ip,
    )
    return [_notify(ctx, db, request, "was resubmitted")]


def withdraw(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    requester: Member,
    ip: str | None = None,
) -> list[int]:
    if request.requester_id != requester.id:
        raise RegistrationError({"request": "only the member who sent a request can withdraw it"})
    move_status(db, request, OPEN_STATUSES, WITHDRAWN, decided_at=utcnow())
    audit.record(
        db,
        "request.withdrawn",
        actor=requester,
        target_type="request",
        target_id=request.id,
        ip=ip,
    )
    return [_notify(ctx, db, request, "was withdrawn")]


def _require_message(message: str, what: str) -> str:
    message = message.strip()
    if not message:
        raise RegistrationError({"message": f"write a message telling the developer {what}"})
    if len(message) > 4000:
        raise RegistrationError({"message": "keep the message under 4000 characters"})
    return message


def _send_back(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    message: str,
    ip: str | None,
    *,
    to: str,
    what_to_write: str,
    mail_words: str,
) -> list[int]:
    """A staff decision that needs a message: request changes, or reject."""
    text = _require_message(message, what_to_write)
    decided_at = {"decided_at": utcnow()} if to == REJECTED else {}
    move_status(
        db, request, [SUBMITTED], to, staff_message=text, decided_by_id=staff.id, **decided_at
    )
    audit.record(
        db,
        f"request.{to}",
        actor=staff,
        target_type="request",
        target_id=request.id,
        ip=ip,
        details={"message": text},
    )
    return [_notify(ctx, db, request, mail_words)]


def request_changes(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    message: str,
    ip: str | None = None,
) -> list[int]:
    return _send_back(
        ctx,
        db,
        request,
        staff,
        message,
        ip,
        to=CHANGES_REQUESTED,
        what_to_write="what to change",
        mail_words="needs changes",
    )


def reject(
    ctx: AppContext,
    db: Session,
    request: RegistrationRequest,
    staff: Member,
    message: str,
    ip: str | None = None,
) -> list[int]:
    return _send_back(
        ctx,
        db,
        request,
        staff,
        message,
        ip,
        to=REJECTED,
        what_to_write="why the request was rejected",
        mail_words="was rejected",
    )


# ----- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int
    total: int

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page


def page_of(total: int, number: int, per_page: int = 50) -> Page:
    return Page(max(1, min(number, max(1, -(-total // per_page)))), per_page, total)


def staff_queue(
    db: Session, number: int = 1, statuses: Sequence[str] = (SUBMITTED,), per_page: int = 50
) -> tuple[list[RegistrationRequest], Page]:
    """Open requests, the most urgent (earliest due) first."""
    where = RegistrationRequest.status.in_(statuses)
    total = db.scalar(select(func.count()).select_from(RegistrationRequest).where(where)) or 0
    page = page_of(total, number, per_page)
    rows = db.scalars(
        select(RegistrationRequest)
        .where(where)
        .order_by(RegistrationRequest.due_at, RegistrationRequest.id)
        .offset(page.offset)
        .limit(page.per_page)
    )
    return list(rows), page


def requests_of(
    db: Session, member: Member, number: int = 1, per_page: int = 50
) -> tuple[list[RegistrationRequest], Page]:
    where = RegistrationRequest.requester_id == member.id
    total = db.scalar(select(func.count()).select_from(RegistrationRequest).where(where)) or 0
    page = page_of(total, number, per_page)
    rows = db.scalars(
        select(RegistrationRequest)
        .where(where)
        .order_by(RegistrationRequest.id.desc())
        .offset(page.offset)
        .limit(page.per_page)
    )
    return list(rows), page


def history(db: Session, request: RegistrationRequest) -> list[AuditEvent]:
    """The request's history is its slice of the audit log, oldest first."""
    return list(
        db.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == "request", AuditEvent.target_id == str(request.id))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    )


def is_overdue(request: RegistrationRequest, now: datetime | None = None) -> bool:
    return request.status == SUBMITTED and request.due_at < (now or utcnow())


def due_for_reminder(db: Session, settings: Settings) -> list[RegistrationRequest]:
    horizon = utcnow() + timedelta(days=settings.reminder_days_before_due)
    return list(
        db.scalars(
            select(RegistrationRequest)
            .where(RegistrationRequest.status == SUBMITTED, RegistrationRequest.due_at <= horizon)
            .order_by(RegistrationRequest.due_at)
        )
    )


def send_reminders(ctx: AppContext, db: Session) -> tuple[int, list[int]]:
    """Mail every staff member the requests close to or past their due date."""
    due = due_for_reminder(db, ctx.settings)
    if not due:
        return 0, []
    now = utcnow()
    lines = []
    for request in due:
        state = "OVERDUE" if is_overdue(request, now) else "due soon"
        lines.append(
            f"#{request.id} {request.client_name!r} — {state}, due "
            f"{request.due_at:%Y-%m-%d %H:%M} UTC: "
            f"{ctx.settings.public_base_url}/console/requests/{request.id}"
        )
    body = "Client requests waiting for a decision:\n\n" + "\n".join(lines) + "\n"
    subject = f"{ctx.settings.profile.service_name}: {len(due)} client request(s) need a decision"
    staff = db.scalars(
        select(Member).where(Member.is_staff.is_(True), Member.is_disabled.is_(False))
    )
    mail_ids = [ctx.mailer.enqueue(db, m.email, subject, body, "staff_reminder").id for m in staff]
    audit.record(db, "requests.reminded", actor_label="system", details={"requests": len(due)})
    return len(due), mail_ids


TEMPLATES: dict[str, ClientDetails] = {
    # The seed's two sample requests; the sample name "My iRacing Data Tool" would
    # itself fail the brand rule, so the template uses an honest name.
    "data-tool": ClientDetails(
        client_name="My Sim Data Tool",
        client_type="server-side",
        flows=["password_limited"],
        description="discord-bot",
        developer_email="developer@example.com",
        audiences=["data-server"],
    ),
    "league-manager": ClientDetails(
        client_name="My League Manager",
        client_type="server-side",
        flows=["authorization_code"],
        description="league manager website",
        developer_name="My Racing League Inc.",
        developer_url="https://www.myleague.com",
        developer_email="developer@example.com",
        redirect_uris=[
            "https://www.myleague.com/oauth/callback",
            "https://staging.myleague.com/oauth/callback",
        ],
        audiences=["data-server"],
    ),
}


def template(name: str, settings: Settings) -> ClientDetails:
    """A starting template; audiences limited to what this deployment offers."""
    chosen = TEMPLATES.get(name, ClientDetails(flows=["authorization_code"]))
    return replace(
        chosen, audiences=[a for a in chosen.audiences if a in settings.profile.audiences]
    )


FIELD_LABELS = {
    "client_name": "Client name",
    "client_type": "Client type",
    "flows": "Flows",
    "description": "Description",
    "developer_name": "Developer's name",
    "developer_url": "Developer's URL",
    "developer_email": "Developer's email",
    "redirect_uris": "Redirect URIs",
    "audiences": "Audiences",
}

REDIRECT_URI_KEY = re.compile(r"redirect_uris\.(\d+)")
