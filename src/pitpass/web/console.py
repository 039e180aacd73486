"""The staff console: its home, recent mail, the audit log, the review queue, clients
(issue #2, items 5 and 6; issue #3). Members are web/console_members.py's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pitpass.db.models import Member, RegistrationRequest, utcnow
from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context, deliver_later
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.http.row_ids import row_id
from pitpass.services import (
    access_lists,
    audit,
    client_details,
    client_secrets,
    request_queue,
    workflow,
)
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails
from pitpass.services.context import AppContext
from pitpass.services.crypto import SealError
from pitpass.services.errors import ServiceError
from pitpass.web import console_members
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_staff

router = APIRouter(prefix="/console")


@router.get("", response_class=HTMLResponse)
def console_home(request: Request) -> Response:
    require_staff(request)
    context = app_context(request)
    with context.session() as db:
        summary = request_queue.queue_summary(db, context.settings)
    return render(request, "console_home.html", {"summary": summary, "now": utcnow()})


router.include_router(console_members.router)  # /console/members…


@router.get("/mail", response_class=HTMLResponse)
def mail_page(request: Request) -> Response:
    require_staff(request)
    context = app_context(request)
    mailer = context.mailer
    rows = []
    with context.session() as db:
        for message in mailer.recent(db):
            body = None
            # With SMTP the mailbox is the recipient's; offline, this page is the mailbox.
            if not mailer.smtp_configured:
                try:
                    body = mailer.body_of(message)
                except SealError:
                    body = "(sealed under another secret key)"
            rows.append({"message": message, "body": body})
    return render(request, "console_mail.html", {"rows": rows, "smtp": mailer.smtp_configured})


def _parse_day(value: str) -> tuple[datetime | None, str | None]:
    if not value:
        return None, None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        return None, f"'{value}' is not a date; use YYYY-MM-DD."
    return datetime(day.year, day.month, day.day, tzinfo=UTC), None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    actor: str = "",
    action: str = "",
    target: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    require_staff(request)
    since_at, since_error = _parse_day(since)
    until_day, until_error = _parse_day(until)
    errors = {
        key: message for key, message in (("since", since_error), ("until", until_error)) if message
    }
    events = []
    if not errors:
        wanted = audit.AuditFilter(
            actor=actor,
            action=action,
            target=target,
            since=since_at,
            until=until_day + timedelta(days=1) if until_day else None,  # the whole last day
        )
        with app_context(request).session() as db:
            events = audit.search(db, wanted)
    return render(
        request,
        "console_audit.html",
        {
            "events": events,
            "errors": errors,
            "filters": {
                "actor": actor,
                "action": action,
                "target": target,
                "since": since,
                "until": until,
            },
        },
        status_code=400 if errors else 200,
    )


# ----- the review queue (issue #3) ------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
def queue_page(request: Request, page: int = 1, show: str = "open") -> Response:
    require_staff(request)
    # open: waiting for staff; waiting: for the developer; anything else: all.
    shown = {"open": (workflow.SUBMITTED,), "waiting": (workflow.CHANGES_REQUESTED,)}
    statuses = shown.get(show, workflow.STATUSES)
    with app_context(request).session() as db:
        rows, page_info = request_queue.staff_queue(db, page, statuses)
    now = utcnow()
    return render(
        request,
        "console_queue.html",
        {
            "rows": [
                {
                    "item": row,
                    "age_days": (now - row.submitted_at).days,
                    "overdue": request_queue.is_overdue(row, now),
                }
                for row in rows
            ],
            "page": page_info,
            "show": show,
        },
    )


def _request_review_page(
    request: Request, request_id: int, status_code: int = 200, **more: object
) -> Response:
    context = app_context(request)
    with context.session() as db:
        item = db.get(RegistrationRequest, request_id)
        if item is None:
            return error_page(
                request, "No such request", f"There is no request #{request_id}.", 404
            )
        requester = db.get(Member, item.requester_id)
        values = {
            "item": item,
            "details": ClientDetails.of(item),
            "review": workflow.review_request(db, context.settings, item),
            "changes": workflow.changes_asked(db, item),
            "requester": requester,
            "requester_clients": clients_service.clients_of(db, requester, 1, 20)[0]
            if requester
            else [],
            "client": clients_service.by_pk(db, item.client_pk),
            "events": request_queue.history(db, item),
            "overdue": request_queue.is_overdue(item),
            "labels": client_details.FIELD_LABELS,
            "errors": {},
        }
    return render(request, "console_request.html", values | more, status_code=status_code)


@router.get(f"/requests/{row_id('request_id')}", response_class=HTMLResponse)
def request_review(request: Request, request_id: int) -> Response:
    require_staff(request)
    return _request_review_page(request, request_id)


@contextmanager
def _staff_change(
    request: Request, csrf_token: str
) -> Iterator[tuple[AppContext, Session, Member]]:
    """A form a staff member sent, and one transaction for what it changes."""
    require_csrf(request, csrf_token)
    staff = require_staff(request)
    context = app_context(request)
    with context.session() as db:
        yield context, db, staff


# The notice after each decision (http/notices.py).
DECISION_NOTICES = {
    "approve": "request-approved",
    "reject": "request-rejected",
    "request-changes": "changes-requested",
}


@router.post(f"/requests/{row_id('request_id')}/{{decision}}", response_class=HTMLResponse)
def request_decide(
    request: Request,
    request_id: int,
    decision: str,
    background: BackgroundTasks,
    csrf_token: Annotated[str, Form()] = "",
    message: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    ip = client_of(request).ip
    try:
        with _staff_change(request, csrf_token) as (context, db, staff):
            item = db.get(RegistrationRequest, request_id)
            if item is None or decision not in workflow.DECISIONS:
                no_action = "Approve, reject or request changes."
                return error_page(request, "No such action", no_action, 404)
            if decision == "reject" and not is_confirmed(confirmed):
                workflow.check_decision(decision, message)  # a missing reason: beside its field
                return confirmation_page(
                    request,
                    title=f"Reject request #{item.id} for {item.client_name}?",
                    explanation="The developer is emailed your reason. A rejected request "
                    "cannot be reopened: they would have to send a new one.",
                    button="Reject the request",
                    cancel_path=f"/console/requests/{item.id}",
                    fields={"message": message},
                )
            mail_ids = workflow.decide(context, db, item, staff, decision, message, ip)
    except ServiceError as error:  # refused before anything was written
        more = {"errors": error.errors, "decision": decision, "message": message}
        return _request_review_page(request, request_id, 400, **more)
    deliver_later(background, context, mail_ids)
    done = done_url(f"/console/requests/{request_id}", DECISION_NOTICES[decision])
    return RedirectResponse(done, status_code=303)


# ----- clients -------------------------------------------------------------------------


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, page: int = 1) -> Response:
    require_staff(request)
    with app_context(request).session() as db:
        rows, page_info = clients_service.all_clients(db, page)
    return render(request, "console_clients.html", {"clients": rows, "page": page_info})


def _staff_client_page(
    request: Request, client_id: str, status_code: int = 200, **more: object
) -> Response:
    with app_context(request).session() as db:
        client = clients_service.by_client_id(db, client_id)
        if client is None:
            return error_page(request, "No such client", f"There is no client {client_id}.", 404)
        values: dict[str, object] = {
            "client": client,
            "owner": db.get(Member, client.owner_id) if client.owner_id else None,
            "access": access_lists.shown(db, client, to_staff=True),
            "secret": client_secrets.secret_status(db, client),
            "errors": {},
        }
    return render(request, "console_client.html", values | more, status_code=status_code)


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def staff_client_page(request: Request, client_id: str) -> Response:
    require_staff(request)
    return _staff_client_page(request, client_id)


CLIENT_ACTIONS = ("disable", "enable", "access-add", "access-remove")


@router.post("/clients/{client_id}/{action}", response_class=HTMLResponse)
def staff_client_action(
    request: Request,
    client_id: str,
    action: str,
    csrf_token: Annotated[str, Form()] = "",
    member_reference: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    ip = client_of(request).ip
    try:
        with _staff_change(request, csrf_token) as (context, db, staff):
            client = clients_service.by_client_id(db, client_id)
            if client is None or action not in CLIENT_ACTIONS:
                no_action = "That client or action does not exist."
                return error_page(request, "No such action", no_action, 404)
            if action == "disable" and not is_confirmed(confirmed):
                return confirmation_page(
                    request,
                    title=f"Disable {client.name}?",
                    explanation="Every session of the client is signed out at once and it "
                    "can get no new tokens until staff enable it again.",
                    button="Disable the client",
                    cancel_path=f"/console/clients/{client.client_id}",
                )
            if action in ("disable", "enable"):
                clients_service.set_disabled(db, client, action == "disable", staff, ip)
            elif action == "access-add":
                access_lists.add_to_access_list(
                    context, db, client, member_reference, staff, by_staff=True, ip=ip
                )
            else:
                access_lists.remove_from_access_list(db, client, member_reference, staff, ip)
    except ServiceError as error:  # refused before anything was written
        more = {"errors": error.errors, "member_reference": member_reference}
        return _staff_client_page(request, client_id, 400, **more)
    done = {"disable": "client-disabled", "enable": "client-enabled"}.get(action)
    path = f"/console/clients/{client_id}"
    return RedirectResponse(done_url(path, done) if done else path, status_code=303)
