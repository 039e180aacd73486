"""The authenticator app on the account pages: set up, new recovery codes, turn off
(issue #12, item 2). The rules are services/totp.py's."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pitpass.core.paths import safe_next_path
from pitpass.db.models import Member
from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context, deliver_later
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import reauth, totp
from pitpass.services.context import AppContext
from pitpass.web.guards import signed_in_here

router = APIRouter()

FormText = Annotated[str, Form()]
PAGE = "/account/two-step"
DISABLE = "two-step-disable"


def _next(candidate: str) -> str:
    """Where to go once the app is on (staff sent here from a staff page), or nothing."""
    return safe_next_path(candidate, "") if candidate else ""


def _page_path(next_path: str) -> str:
    return f"{PAGE}?{urlencode({'next': next_path})}" if next_path else PAGE


def _page(
    request: Request,
    context: AppContext,
    db: Session,
    member: Member,
    next_path: str = "",
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {
        "enabled": totp.is_enabled(member),
        "enabled_at": member.totp_enabled_at,
        "codes_left": totp.recovery_codes_left(db, member),
        "enrolment": totp.pending_enrolment(context, member),
        "staff_required": totp.staff_must_enrol(context.settings, member),
        "next": next_path,
        "errors": errors or {},
    }
    page = render(request, "two_step.html", values, status_code=400 if errors else 200)
    if values["enrolment"]:
        page.headers["Cache-Control"] = "no-store"  # the key is on it
    return page


def _codes_page(request: Request, codes: list[str], continue_path: str) -> HTMLResponse:
    page = render(request, "two_step_codes.html", {"codes": codes, "continue": continue_path})
    page.headers["Cache-Control"] = "no-store"  # shown once: not kept by the browser
    return page


@router.get(PAGE, response_class=HTMLResponse)
def two_step_page(request: Request, next: str = "") -> Response:
    context = app_context(request)
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        return _page(request, context, db, member, _next(next))


@router.post(f"{PAGE}/start")
def start_enrolment(
    request: Request, password: FormText = "", next: FormText = "", csrf_token: FormText = ""
) -> Response:
    """The password first: from a browser left signed in, a stranger could otherwise put
    their own app (and its recovery codes) between the member and the account."""
    require_csrf(request, csrf_token)
    context = app_context(request)
    ip = client_of(request).ip
    next_path = _next(next)
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        if totp.is_enabled(member):
            return RedirectResponse(PAGE, status_code=303)
        problem = reauth.password_problem(context, db, member, password, "two-step-start", ip)
        if problem:
            return _page(request, context, db, member, next_path, {"start_password": problem})
        totp.begin_enrolment(context, db, member, ip)
    return RedirectResponse(_page_path(next_path) + "#set-up", status_code=303)


@router.post(f"{PAGE}/confirm", response_class=HTMLResponse)
def confirm_enrolment(
    request: Request, code: FormText = "", next: FormText = "", csrf_token: FormText = ""
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    next_path = _next(next)
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        if totp.is_enabled(member):  # sent twice: the first one turned it on
            return RedirectResponse(PAGE, status_code=303)
        match, codes = totp.confirm_enrolment(context, db, member, code, client_of(request).ip)
        if match is not totp.Match.ACCEPTED:
            service = context.settings.profile.service_name
            message = (
                f"That code is not right. Type the code the app shows for {service} now."
                if match is totp.Match.WRONG
                else "Enter the 6-digit code your app shows."
            )
            return _page(request, context, db, member, next_path, {"code": message})
    return _codes_page(request, codes, next_path or done_url(PAGE, "two-step-on"))


@router.post(f"{PAGE}/recovery-codes", response_class=HTMLResponse)
def new_recovery_codes(
    request: Request, password: FormText = "", csrf_token: FormText = ""
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    ip = client_of(request).ip
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        if not totp.is_enabled(member):
            return RedirectResponse(PAGE, status_code=303)
        problem = reauth.password_problem(context, db, member, password, "recovery-codes", ip)
        if problem:
            return _page(request, context, db, member, errors={"codes_password": problem})
        codes = totp.replace_recovery_codes(context, db, member, ip)
    return _codes_page(request, codes, done_url(PAGE, "recovery-codes-replaced"))


@router.post(f"{PAGE}/disable", response_class=HTMLResponse)
def disable(
    request: Request,
    background: BackgroundTasks,
    password: FormText = "",
    proof: FormText = "",
    confirmed: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    """Password first, then the confirmation step, which carries a proof, not the password."""
    require_csrf(request, csrf_token)
    context = app_context(request)
    ip = client_of(request).ip
    with context.session() as db:
        member, session_id = signed_in_here(request, db)
        if not totp.is_enabled(member):
            return RedirectResponse(PAGE, status_code=303)
        where = reauth.step(
            context,
            db,
            member,
            session_id,
            DISABLE,
            password=password,
            proof_value=proof,
            confirmed=is_confirmed(confirmed),
            ip=ip,
        )
        if where.problem:
            return _page(request, context, db, member, errors={"disable_password": where.problem})
        if where.act:
            mail_id = totp.disable(context, db, member, ip)
            deliver_later(background, context, [mail_id])
            return RedirectResponse(done_url(PAGE, "two-step-off"), status_code=303)
        fields = {"proof": where.proof}
    return confirmation_page(
        request,
        title="Turn off the authenticator app?",
        explanation=(
            "Sign-in will ask for a code sent by email instead, and your recovery codes "
            "stop working."
        ),
        button="Turn off the app",
        cancel_path=PAGE,
        fields=fields,
    )
