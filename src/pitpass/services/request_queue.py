"""Reading registration requests: the staff queue, a member's requests, a request's
history, due dates and the reminders about them (PRODUCT.md §3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from pitpass.config import Settings
from pitpass.db.models import AuditEvent, Member, RegistrationRequest, utcnow
from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.paging import Page, fetch_page
from pitpass.services.workflow import SUBMITTED


def staff_queue(
    db: Session, number: int = 1, statuses: Sequence[str] = (SUBMITTED,), per_page: int = 50
) -> tuple[list[RegistrationRequest], Page]:
    """Open requests, the most urgent (earliest due) first."""
    where = RegistrationRequest.status.in_(statuses)
    order = (RegistrationRequest.due_at, RegistrationRequest.id)
    return fetch_page(db, RegistrationRequest, where, order, number, per_page)


def requests_of(
    db: Session, member: Member, number: int = 1, per_page: int = 50
) -> tuple[list[RegistrationRequest], Page]:
    where = RegistrationRequest.requester_id == member.id
    order = (RegistrationRequest.id.desc(),)
    return fetch_page(db, RegistrationRequest, where, order, number, per_page)


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


@dataclass(frozen=True)
class QueueSummary:
    """What the console home counts (issue #12, item 7)."""

    waiting: int  # waiting for staff
    due_soon: int  # of those, due within the reminder window and not yet overdue
    overdue: int
    oldest: list[RegistrationRequest]  # the longest waiting, oldest first
    due_soon_days: int


def queue_summary(
    db: Session, settings: Settings, now: datetime | None = None, oldest: int = 5
) -> QueueSummary:
    """ "Due soon" is the reminders' window, so the home page and the reminder mail agree."""
    now = now or utcnow()
    horizon = now + timedelta(days=settings.reminder_days_before_due)
    waiting = RegistrationRequest.status == SUBMITTED

    def count(*where: ColumnElement[bool]) -> int:
        query = select(func.count()).select_from(RegistrationRequest).where(waiting, *where)
        return db.scalar(query) or 0

    return QueueSummary(
        waiting=count(),
        due_soon=count(RegistrationRequest.due_at >= now, RegistrationRequest.due_at <= horizon),
        overdue=count(RegistrationRequest.due_at < now),
        oldest=list(
            db.scalars(
                select(RegistrationRequest)
                .where(waiting)
                .order_by(RegistrationRequest.submitted_at, RegistrationRequest.id)
                .limit(oldest)
            )
        ),
        due_soon_days=settings.reminder_days_before_due,
    )


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
