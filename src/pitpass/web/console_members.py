"""The console's members (issue #12, item 7): find a member, see them whole, disable or
enable the account, grant or remove staff. The rules are services/member_admin.py's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context, deliver_later
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.http.row_ids import row_id
from pitpass.services import member_admin
from pitpass.services.errors import ServiceError
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_staff

# Included by web/console.py's router, which adds the /console prefix.
router = APIRouter()

ASKS_FIRST = ("disable", "remove-staff", "clear-two-step")  # http/confirm.py
NOTICE_OF_ACTION = {
    "disable": "member-disabled",
    "enable": "member-enabled",
    "grant-staff": "staff-granted",
    "remove-staff": "staff-removed",
    "clear-two-step": "two-step-cleared",
}


@router.get("/members", response_class=HTMLResponse)
def members_page(request: Request, q: str = "", page: int = 1) -> Response:
    require_staff(request)
    values: dict[str, object] = {"members": [], "page": None, "q": q, "errors": {}}
    with app_context(request).session() as db:
        try:
            values["members"], values["page"] = member_admin.search(db, q, page)
        except ServiceError as error:  # a query no email, name or id can match
            values["errors"] = error.errors
            return render(request, "console_members.html", values, status_code=400)
    return render(request, "console_members.html", values)


def _member_page(
    request: Request, member_id: int, status_code: int = 200, **more: object
) -> Response:
    with app_context(request).session() as db:
        member = member_admin.by_id(db, member_id)
        if member is None:
            return error_page(request, "No such member", f"There is no member #{member_id}.", 404)
        values: dict[str, object] = {
            "overview": member_admin.overview(db, member),
            "errors": {},
            "reason": "",
            "action": "",
        }
    return render(request, "console_member.html", values | more, status_code=status_code)


@router.get(f"/members/{row_id('member_id')}", response_class=HTMLResponse)
def member_page(request: Request, member_id: int) -> Response:
    require_staff(request)
    return _member_page(request, member_id)


def _confirmation(
    request: Request, action: str, email: str, member_id: int, reason: str
) -> Response:
    if action == "disable":
        title, button = f"Disable {email}?", "Disable the account"
        explanation = (
            f"{email} is signed out of Pitpass and of every app at once: every access "
            "and refresh token stops working, and signing in is refused until staff "
            "enable the account again."
        )
    elif action == "clear-two-step":
        title, button = f"Turn off {email}'s authenticator app?", "Turn off the app"
        explanation = (
            f"{email} signs in with the emailed code again and the recovery codes stop "
            "working. Do this only for the member, after checking who is asking."
        )
    else:
        title, button = f"Remove staff from {email}?", "Remove staff"
        explanation = f"{email} can no longer open the staff console or act as staff."
    return confirmation_page(
        request,
        title=title,
        explanation=f"{explanation} Reason kept in the audit log: “{reason}”.",
        button=button,
        cancel_path=f"/console/members/{member_id}",
        fields={"reason": reason},
    )


@router.post(f"/members/{row_id('member_id')}/{{action}}", response_class=HTMLResponse)
def member_action(
    request: Request,
    background: BackgroundTasks,
    member_id: int,
    action: str,
    csrf_token: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """ASKS_FIRST actions ask once more (http/confirm.py); every action needs a reason."""
    require_csrf(request, csrf_token)
    staff = require_staff(request)
    ip = client_of(request).ip
    try:
        with app_context(request).session() as db:
            member = member_admin.by_id(db, member_id)
            if member is None or action not in member_admin.ACTIONS:
                no_action = "That member or action does not exist."
                return error_page(request, "No such action", no_action, 404)
            # Refusals show beside the form at once, not after the confirmation step.
            kept = member_admin.check(db, member, staff, action, reason)
            if action in ASKS_FIRST and not is_confirmed(confirmed):
                return _confirmation(request, action, member.email, member_id, kept)
            context = app_context(request)
            mail_ids = member_admin.act(context, db, member, staff, action, kept, ip)
    except ServiceError as error:  # refused before anything was written
        more = {"errors": error.errors, "reason": reason, "action": action}
        return _member_page(request, member_id, 400, **more)
    deliver_later(background, app_context(request), mail_ids)
    path = f"/console/members/{member_id}"
    return RedirectResponse(done_url(path, NOTICE_OF_ACTION[action]), status_code=303)
