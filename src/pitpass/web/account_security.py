"""Password and email settings at /account/security (issue #12, item 2);
services/account_security.py holds the rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from pitpass.db.models import Member
from pitpass.http.caller import client_of
from pitpass.http.context import app_context, deliver_later
from pitpass.http.csrf import require_csrf
from pitpass.http.members import SignInRequired, browser_session
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import account_security as security
from pitpass.services.account_security import SettingsRefused
from pitpass.web.guards import require_member

router = APIRouter()

FormText = Annotated[str, Form()]
PAGE = "/account/security"
CONFIRM_PAGE = "/account/security/email"


def _member_sending(request: Request, csrf_token: str) -> Member:
    require_csrf(request, csrf_token)
    return require_member(request)


def _fresh(db: Session, member: Member) -> Member:
    """The member read again in this unit of work (never a stale copy written back)."""
    fresh = db.get(Member, member.id, populate_existing=True)
    if fresh is None:
        raise SignInRequired(PAGE)
    return fresh


def _refused_page(
    request: Request, template: str, values: dict[str, object], refused: SettingsRefused
) -> Response:
    values = {**values, "errors": refused.errors}
    page = render(request, template, values, status_code=refused.status_code)
    if refused.retry_after:
        page.headers["Retry-After"] = str(refused.retry_after)
    return page


def _settings_values(request: Request, member: Member, new_email: str = "") -> dict[str, object]:
    with app_context(request).session() as db:
        pending = security.pending_email_change(db, member)
    return {
        "errors": {},
        "new_email": new_email,
        "pending_email": pending.new_email if pending else "",
    }


@router.get(PAGE, response_class=HTMLResponse)
def settings_page(request: Request) -> Response:
    member = require_member(request)
    return render(request, "account_security.html", _settings_values(request, member))


@router.post(f"{PAGE}/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    background: BackgroundTasks,
    current_password: FormText = "",
    new_password: FormText = "",
    new_password_again: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    member = _member_sending(request, csrf_token)
    context = app_context(request)
    fields = {
        "current_password": current_password,
        "new_password": new_password,
        "new_password_again": new_password_again,
    }
    refused: SettingsRefused | None = None
    with context.session() as db:
        signed_in = browser_session(request, db)
        if signed_in is None:  # signed out by another tab a moment ago
            return RedirectResponse("/signin", status_code=303)
        try:
            mail_id = security.change_password(
                context, db, signed_in.member, fields, signed_in.web_session.id, client_of(request)
            )
        except SettingsRefused as error:
            refused = error  # the failure is counted and audited: commit that much
    if refused is not None:
        values = _settings_values(request, member)
        return _refused_page(request, "account_security.html", values, refused)
    deliver_later(background, context, [mail_id])
    return RedirectResponse(done_url(PAGE, "password-changed"), status_code=303)


@router.post(f"{PAGE}/email", response_class=HTMLResponse)
def start_email_change(
    request: Request,
    background: BackgroundTasks,
    new_email: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    member = _member_sending(request, csrf_token)
    context = app_context(request)
    try:
        with context.session() as db:
            mail_ids = security.start_email_change(
                context, db, _fresh(db, member), new_email, client_of(request)
            )
    except SettingsRefused as refused:
        values = _settings_values(request, member, new_email[:320])
        return _refused_page(request, "account_security.html", values, refused)
    deliver_later(background, context, mail_ids)
    return RedirectResponse(CONFIRM_PAGE, status_code=303)


def _confirm_values(request: Request, member: Member) -> dict[str, object] | None:
    with app_context(request).session() as db:
        pending = security.pending_email_change(db, member)
        if pending is None:
            return None
        return {
            "errors": {},
            "new_email": pending.new_email,
            "minutes": app_context(request).settings.signin_code_minutes,
        }


@router.get(CONFIRM_PAGE, response_class=HTMLResponse)
def confirm_page(request: Request) -> Response:
    member = require_member(request)
    values = _confirm_values(request, member)
    if values is None:
        return RedirectResponse(PAGE, status_code=303)
    return render(request, "account_email_confirm.html", values)


@router.post(f"{CONFIRM_PAGE}/confirm", response_class=HTMLResponse)
def confirm_email_change(
    request: Request,
    background: BackgroundTasks,
    code: FormText = "",
    current_password: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    member = _member_sending(request, csrf_token)
    context = app_context(request)
    refused: SettingsRefused | None = None
    mail_ids: list[int] = []
    with context.session() as db:
        signed_in = browser_session(request, db)
        if signed_in is None:  # signed out by another tab a moment ago
            return RedirectResponse("/signin", status_code=303)
        try:
            mail_ids = security.confirm_email_change(
                context,
                db,
                signed_in.member,
                code,
                current_password,
                signed_in.web_session.id,
                client_of(request),
            )
        except SettingsRefused as error:
            refused = error  # a wrong code costs a try: commit that much
    if refused is not None:
        values = _confirm_values(request, member)
        if values is None:  # spent: the settings page says so beside the email field
            values = _settings_values(request, member)
            again = SettingsRefused({"new_email": refused.message})
            return _refused_page(request, "account_security.html", values, again)
        return _refused_page(request, "account_email_confirm.html", values, refused)
    deliver_later(background, context, mail_ids)
    return RedirectResponse(done_url(PAGE, "email-changed"), status_code=303)
