"""The staff console: recent mail, the audit log, members (issue #2, items 5 and 6)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from pitpass.db.models import Member
from pitpass.services import audit
from pitpass.services.crypto import SealError
from pitpass.web.common import app_context, render, require_staff

router = APIRouter(prefix="/console")


@router.get("", response_class=HTMLResponse)
def console_home(request: Request) -> Response:
    require_staff(request)
    return render(request, "console_home.html")


@router.get("/members", response_class=HTMLResponse)
def members_page(request: Request) -> Response:
    require_staff(request)
    with app_context(request).session() as db:
        members = list(db.scalars(select(Member).order_by(Member.id.desc()).limit(500)))
    return render(request, "console_members.html", {"members": members})


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
