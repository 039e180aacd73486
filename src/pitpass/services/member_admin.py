"""Staff managing members (issue #12, item 7): find one, see them whole, disable or
enable the account, grant or remove staff. The console pages and `pitpass members …`
both call these functions, so the rules below hold whichever way staff act.

Every change names its staff actor and a reason, both kept in the audit log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from pitpass.core.policy import SignOutReason
from pitpass.db.models import (
    AuditEvent,
    Client,
    Member,
    OAuthSession,
    WebSession,
    utcnow,
)
from pitpass.services import audit, totp
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.services.members import MAX_CUSTOMER_ID, MAX_EMAIL_LENGTH
from pitpass.services.paging import Page, fetch_page
from pitpass.services.ways_in import end_ways_in
from pitpass.storage import sync

MAX_REASON_LENGTH = 500
MAX_QUERY_LENGTH = MAX_EMAIL_LENGTH
RECENT_EVENTS = 20
# Control characters have no place in an email, a name or a customer id (and PostgreSQL
# cannot even compare a NUL): a query holding one is refused rather than run.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

ACTIONS = ("disable", "enable", "grant-staff", "remove-staff", "clear-two-step")


# ----- finding members -----------------------------------------------------------------


def query_problem(query: str) -> str | None:
    if len(query) > MAX_QUERY_LENGTH:
        return f"Search with at most {MAX_QUERY_LENGTH} characters."
    if _CONTROL.search(query) or "\n" in query or "\t" in query:
        return "Search with an email, a name or a customer id (no control characters)."
    return None


def _matching(query: str) -> ColumnElement[bool] | None:
    """Email or name containing the words, or exactly this customer id."""
    if not query:
        return None
    words = query.lower()
    found = or_(
        Member.email.contains(words, autoescape=True),
        func.lower(Member.display_name).contains(words, autoescape=True),
    )
    # isascii: "²" is a digit to str.isdigit() but not to int().
    if query.isascii() and query.isdigit() and 0 < int(query) <= MAX_CUSTOMER_ID:
        found = or_(found, Member.customer_id == int(query))
    return found


def search(
    db: Session, query: str, number: int = 1, per_page: int = 50
) -> tuple[list[Member], Page]:
    """Members matching `query` (all members when empty), newest first, one page of them.
    A query nobody could have typed in good faith raises a field error on `q`."""
    query = query.strip()
    if problem := query_problem(query):
        raise ServiceError.field("q", problem)
    return fetch_page(db, Member, _matching(query), (Member.id.desc(),), number, per_page)


def by_id(db: Session, member_id: int) -> Member | None:
    return db.get(Member, member_id)


# ----- one member, whole ------------------------------------------------------------------


@dataclass(frozen=True)
class MemberOverview:
    member: Member
    clients: list[Client]
    web_sessions: list[WebSession]
    oauth_sessions: list[tuple[OAuthSession, Client]]
    events: list[AuditEvent]
    enabled_staff: int


def _live_web_sessions(db: Session, member: Member, now: datetime) -> list[WebSession]:
    return list(
        db.scalars(
            select(WebSession)
            .where(
                WebSession.member_id == member.id,
                WebSession.revoked_at.is_(None),
                WebSession.expires_at > now,
            )
            .order_by(WebSession.created_at.desc())
        )
    )


def _events_about_or_by(db: Session, member: Member) -> list[AuditEvent]:
    about = and_(
        AuditEvent.target_type == "member", AuditEvent.target_id == str(member.customer_id)
    )
    return list(
        db.scalars(
            select(AuditEvent)
            .where(or_(AuditEvent.actor_member_id == member.id, about))
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(RECENT_EVENTS)
        )
    )


def overview(db: Session, member: Member) -> MemberOverview:
    now = utcnow()
    sessions = sync.live_sessions(db, member.id, now)
    clients_by_pk = (
        {
            c.id: c
            for c in db.scalars(
                select(Client).where(Client.id.in_({s.client_pk for s in sessions}))
            )
        }
        if sessions
        else {}
    )
    return MemberOverview(
        member=member,
        clients=list(
            db.scalars(select(Client).where(Client.owner_id == member.id).order_by(Client.name))
        ),
        web_sessions=_live_web_sessions(db, member, now) if not member.is_disabled else [],
        oauth_sessions=[(s, clients_by_pk[s.client_pk]) for s in sessions],
        events=_events_about_or_by(db, member),
        enabled_staff=len(_enabled_staff_ids(db, lock=False)),
    )


# ----- the rules of a change ---------------------------------------------------------------


def reason_problem(reason: str) -> str | None:
    if not reason:
        return "Say why: the reason is kept in the audit log."
    if len(reason) > MAX_REASON_LENGTH:
        return f"Use at most {MAX_REASON_LENGTH} characters."
    if _CONTROL.search(reason):
        return "Write the reason as plain text (no control characters)."
    return None


def _enabled_staff_ids(db: Session, *, lock: bool) -> set[int]:
    query = select(Member.id).where(Member.is_staff.is_(True), Member.is_disabled.is_(False))
    # Locked, two staff removing each other at once cannot both see the other remain:
    # the second waits, then counts again (PostgreSQL; SQLite runs one writer at a time).
    return set(db.scalars(query.with_for_update() if lock else query))


def _last_staff(member: Member, change: str) -> ServiceError:
    return ServiceError.conflict(
        "member",
        f"{member.email} is the last enabled staff member and cannot {change}: nobody "
        "would be left to review requests or manage members. Grant staff to someone "
        "else first.",
    )


def keep_one_staff(db: Session, member: Member, change: str) -> None:
    """Refuse a change that would leave no enabled staff member."""
    if not (member.is_staff and not member.is_disabled):
        return
    if not _enabled_staff_ids(db, lock=True) - {member.id}:
        raise _last_staff(member, change)


def write_flags(db: Session, member: Member, change: str, **flags: bool) -> None:
    """Store the member's new flags. When they take away an enabled staff member, the same
    statement requires another one to remain: SQLite has no FOR UPDATE and its reads hold
    no snapshot, so only a condition inside the write itself sees a concurrent change."""
    write = update(Member).where(Member.id == member.id).values(**flags)
    if member.is_staff and not member.is_disabled:
        other = aliased(Member)
        write = write.where(
            exists().where(
                other.is_staff.is_(True), other.is_disabled.is_(False), other.id != member.id
            )
        )
    if db.execute(write.execution_options(synchronize_session=False)).rowcount != 1:  # type: ignore[attr-defined]
        raise _last_staff(member, change)
    db.refresh(member)


def check(db: Session, member: Member, staff: Member, action: str, reason: str) -> str:
    """Refuse (ServiceError) what `action` may not do, changing nothing; else the reason as
    it will be kept. The pages call it before their confirmation step, and each action
    before it acts."""
    if action not in ACTIONS:
        raise ValueError(f"unknown member action {action!r}")
    if not staff.is_staff or staff.is_disabled:
        raise ServiceError.conflict("actor", f"{staff.email} is not an active staff member.")
    reason = reason.strip()
    if problem := reason_problem(reason):
        raise ServiceError.field("reason", problem)
    if action == "disable":
        if member.is_disabled:
            raise ServiceError.conflict("member", f"{member.email} is already disabled.")
        keep_one_staff(db, member, "be disabled")
        if member.id == staff.id:
            raise ServiceError.conflict(
                "member", "You cannot disable your own account; ask another staff member."
            )
    elif action == "enable":
        if member.deleted_at is not None:
            raise ServiceError.conflict(
                "member", "This account was deleted by its member and cannot be enabled."
            )
        if not member.is_disabled:
            raise ServiceError.conflict("member", f"{member.email} is not disabled.")
    elif action == "grant-staff":
        if member.deleted_at is not None:
            raise ServiceError.conflict("member", "This account was deleted by its member.")
        if member.is_staff:
            raise ServiceError.conflict("member", f"{member.email} is already staff.")
    elif action == "clear-two-step":
        if member.id == staff.id:  # the account page asks for the password first
            raise ServiceError.conflict(
                "member", "Turn off your own authenticator app on your account page."
            )
        if not totp.is_enabled(member):
            raise ServiceError.conflict("member", f"{member.email} has no authenticator app.")
    else:
        if not member.is_staff:
            raise ServiceError.conflict("member", f"{member.email} is not staff.")
        keep_one_staff(db, member, "lose staff")
        if member.id == staff.id:
            raise ServiceError.conflict(
                "member", "You cannot remove your own staff flag; ask another staff member."
            )
    return reason


def _record(
    db: Session,
    action: str,
    member: Member,
    staff: Member,
    reason: str,
    ip: str | None,
    **details: object,
) -> None:
    audit.record(
        db,
        action,
        actor=staff,
        target_type="member",
        target_id=member.customer_id,
        ip=ip,
        details={"reason": reason, **details},
    )


def disable(db: Session, member: Member, staff: Member, reason: str, ip: str | None = None) -> None:
    """Disable the account and end everything it holds: every web session and remembered
    browser, every OAuth session (so each access and refresh token is inactive at once:
    introspection and the Bearer endpoints read the session and the member's flag on every
    call, with no cache between)."""
    reason = check(db, member, staff, "disable", reason)
    write_flags(db, member, "be disabled", is_disabled=True)
    ended = end_ways_in(db, member, apps=SignOutReason.MEMBER_DISABLED)
    _record(
        db,
        "member.disabled",
        member,
        staff,
        reason,
        ip,
        web_sessions=ended.web_sessions,
        oauth_sessions=ended.app_sessions,
    )


def enable(db: Session, member: Member, staff: Member, reason: str, ip: str | None = None) -> None:
    """Enable the account again; its sessions stay ended (the member signs in afresh)."""
    reason = check(db, member, staff, "enable", reason)
    write_flags(db, member, "be enabled", is_disabled=False)
    _record(db, "member.enabled", member, staff, reason, ip)


def set_staff(
    db: Session, member: Member, staff: Member, on: bool, reason: str, ip: str | None = None
) -> None:
    """Grant (`on`) or remove the staff flag."""
    reason = check(db, member, staff, "grant-staff" if on else "remove-staff", reason)
    write_flags(db, member, "lose staff", is_staff=on)
    _record(db, "member.staff_granted" if on else "member.staff_removed", member, staff, reason, ip)


def clear_two_step(
    ctx: AppContext, db: Session, member: Member, staff: Member, reason: str, ip: str | None
) -> int:
    """Turn off a member's authenticator app (lost phone and recovery codes): sign-in
    emails a code again. The member is told by mail; the id of that mail."""
    reason = check(db, member, staff, "clear-two-step", reason)
    mail_id = totp.disable(ctx, db, member, ip, by_staff=True)
    _record(db, "member.two_step_cleared", member, staff, reason, ip)
    return mail_id


def act(
    ctx: AppContext,
    db: Session,
    member: Member,
    staff: Member,
    action: str,
    reason: str,
    ip: str | None = None,
) -> list[int]:
    """One of ACTIONS by name (the console's forms post to `/members/<id>/<action>`); the
    ids of the mail to send."""
    if action == "clear-two-step":
        return [clear_two_step(ctx, db, member, staff, reason, ip)]
    if action == "disable":
        disable(db, member, staff, reason, ip)
    elif action == "enable":
        enable(db, member, staff, reason, ip)
    elif action in ("grant-staff", "remove-staff"):
        set_staff(db, member, staff, action == "grant-staff", reason, ip)
    else:
        raise ValueError(f"unknown member action {action!r}")
    return []
