"""Sign-in, the emailed code, sign-out and self sign-up (issue #2, item 4)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.core.paths import safe_next_path
from pitpass.db.models import Member, SignInChallenge
from pitpass.http.caller import client_of
from pitpass.http.context import app_context, deliver_later
from pitpass.http.cookies import (
    CHALLENGE_COOKIE,
    REMEMBER_COOKIE,
    SESSION_COOKIE,
    delete_cookie,
    set_cookie,
)
from pitpass.http.csrf import require_csrf
from pitpass.http.journey import app_journey, with_next
from pitpass.http.members import current_member
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import fresh_verification, second_step, signin, signin_limits, signup
from pitpass.services import members as members_service
from pitpass.services.context import AppContext
from pitpass.services.members import NewMember

router = APIRouter()

FormText = Annotated[str, Form()]


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def _masked_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(1, len(local) - 1)}@{domain}"


def _signed_in_response(
    request: Request, context: AppContext, session_token: str, next_path: str
) -> RedirectResponse:
    response = _redirect(next_path)
    set_cookie(
        request, response, SESSION_COOKIE, session_token, context.settings.web_session_hours * 3600
    )
    return response


def _code_step_response(
    request: Request,
    background: BackgroundTasks,
    context: AppContext,
    challenge_token: str,
    mail_ids: list[int],
) -> RedirectResponse:
    deliver_later(background, context, mail_ids)
    response = _redirect("/signin/code")
    set_cookie(
        request,
        response,
        CHALLENGE_COOKIE,
        challenge_token,
        context.settings.signin_code_minutes * 60,
    )
    return response


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str = "", verify: str = "", again: str = "") -> Response:
    """`verify`: prompt=verify; `again`: an app asked for a fresh sign-in (OpenID Connect
    prompt=login or max_age). Either shows the form to a member already signed in."""
    next_path = safe_next_path(next)
    if current_member(request) is not None and not verify and not again:
        return _redirect(next_path)
    values = _signin_values(request, next, bool(verify), bool(again))
    return render(request, "signin.html", values)


def _signin_values(
    request: Request, next: str, verify: bool, again: bool = False
) -> dict[str, object]:
    """The sign-in page's values, with the app it continues to (http/journey.py); the
    sign-up link keeps `next` only when one was given."""
    next_path = safe_next_path(next)
    return {
        "next": next_path,
        "verify": verify,
        "again": again,
        "journey": app_journey(request, next_path),
        "signup_url": with_next("/signup", next),
    }


@router.post("/signin", response_class=HTMLResponse)
def signin_submit(
    request: Request,
    background: BackgroundTasks,
    email: FormText = "",
    password: FormText = "",
    next: FormText = "",
    verify: FormText = "",
    again: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    client = client_of(request)
    next_path = safe_next_path(next)
    force_code = bool(verify)  # prompt=verify: ignore the remembered browser (PRODUCT.md §4)
    remember_cookie = request.cookies.get(REMEMBER_COOKIE)
    with context.session() as db:
        try:
            member = signin.check_credentials(context, db, email, password, client)
            if force_code:
                signin.forget_browser(context, db, remember_cookie)
                memory, remembered_id = signin.BrowserMemory.NOT_REMEMBERED, None
            elif signin_limits.remembered_browsers_suspended(context, member.email):
                memory, remembered_id = signin.BrowserMemory.NOT_REMEMBERED, None
            else:
                memory, remembered_id = signin.recognise_browser(
                    context, db, remember_cookie, member
                )
            if memory is signin.BrowserMemory.REMEMBERED:
                # No code typed: this sign-in can prove a fresh sign-in (prompt=login,
                # max_age), never a prompt=verify (services/fresh_verification.py).
                fresh = fresh_verification.nonce_in_path(
                    context, fresh_verification.FRESH_SIGNIN, next_path
                )
                session_token = signin.open_web_session(
                    context, db, member, client, remembered_id, fresh_signin_nonce=fresh
                )
                return _signed_in_response(request, context, session_token, next_path)
            # The authenticator app's code instead of a mail when the member has one.
            challenge_token, mail_ids = second_step.start(
                context,
                db,
                member,
                next_path,
                client,
                remembered_browser_rejected=memory is signin.BrowserMemory.INVALID,
            )
        except signin_limits.SignInRefused as refused:
            return _signin_refused(request, refused, next_path, force_code, email, bool(again))
    response = _code_step_response(request, background, context, challenge_token, mail_ids)
    if memory is signin.BrowserMemory.INVALID or force_code:
        delete_cookie(request, response, REMEMBER_COOKIE)
    return response


def _signin_refused(
    request: Request,
    refused: signin_limits.SignInRefused,
    next_path: str,
    verify: bool,
    email: str,
    again: bool = False,
) -> Response:
    values = _signin_values(request, next_path, verify, again)
    response = render(
        request,
        "signin.html",
        {**values, "email": email, "error": refused.message},
        status_code=refused.status_code,
    )
    if refused.retry_after:
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


@router.get("/signin/code", response_class=HTMLResponse)
def code_page(request: Request, recovery: str = "") -> Response:
    context = app_context(request)
    token = request.cookies.get(CHALLENGE_COOKIE)
    with context.session() as db:
        challenge = signin.pending_challenge(context, db, token)
        if challenge is None or challenge.consumed_at is not None:
            return _redirect("/signin")
        member = db.get(Member, challenge.member_id)
        app = second_step.asks_for_app(context, db, token)
    values = _code_page_values(request, context, challenge, member, app, bool(recovery))
    return render(request, "code.html", values)


def _code_page_values(
    request: Request,
    context: AppContext,
    challenge: SignInChallenge | None,
    member: Member | None,
    app: bool = False,
    recovery: bool = False,
) -> dict[str, object]:
    return {
        # The app's code (or a recovery code) instead of the emailed one (services/totp.py).
        "app": app,
        "recovery": app and recovery,
        "sent_to": _masked_email(member.email) if member and not app else "",
        "minutes": context.settings.signin_code_minutes,
        "remember_days": context.settings.remember_browser_days,
        "browser_rejected": bool(challenge and challenge.remembered_browser_rejected),
        "journey": app_journey(request, challenge.next_path if challenge else None),
    }


@router.post("/signin/code", response_class=HTMLResponse)
def code_submit(
    request: Request,
    code: FormText = "",
    remember: FormText = "",
    method: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    client = client_of(request)
    recovery = method == "recovery"
    with context.session() as db:
        token = request.cookies.get(CHALLENGE_COOKIE)
        check = second_step.check(context, db, token, code, recovery=recovery)
        challenge = check.challenge
        member = db.get(Member, challenge.member_id) if challenge else None
        if check.outcome is signin.CodeOutcome.ACCEPTED and challenge and member:
            remembered = signin.remember_browser(context, db, member) if remember else None
            session_token = signin.open_web_session(
                context,
                db,
                member,
                client,
                remembered[1] if remembered else None,
                # prompt=verify, prompt=login, max_age: this sign-in was done for the request
                # whose mark is in the challenge's return path; record its nonce
                # (services/fresh_verification.py).
                prompt_verify_nonce=fresh_verification.nonce_in_path(
                    context, fresh_verification.PROMPT_VERIFY, challenge.next_path
                ),
                fresh_signin_nonce=fresh_verification.nonce_in_path(
                    context, fresh_verification.FRESH_SIGNIN, challenge.next_path
                ),
            )
            remember_value = remembered[0] if remembered else None
            response = _signed_in_response(request, context, session_token, challenge.next_path)
            delete_cookie(request, response, CHALLENGE_COOKIE)
            if remember_value:
                set_cookie(
                    request,
                    response,
                    REMEMBER_COOKIE,
                    remember_value,
                    context.settings.remember_browser_days * 86400,
                )
            return response
    values = _code_page_values(request, context, challenge, member, check.app, recovery)
    values["error"] = check.message
    values["start_over"] = check.outcome not in (
        signin.CodeOutcome.WRONG,
        signin.CodeOutcome.MALFORMED,
        signin.CodeOutcome.REPLAYED,
    )
    page = render(request, "code.html", values, status_code=429 if check.retry_after else 400)
    if check.retry_after:
        page.headers["Retry-After"] = str(check.retry_after)
    return page


@router.post("/signin/code/resend", response_class=HTMLResponse)
def code_resend(
    request: Request, background: BackgroundTasks, csrf_token: FormText = ""
) -> Response:
    """A new code for this sign-in (issue #12); throttled, and the old code stops working."""
    require_csrf(request, csrf_token)
    context = app_context(request)
    token = request.cookies.get(CHALLENGE_COOKIE)
    with context.session() as db:
        try:
            mail_id = second_step.resend(context, db, token, client_of(request))
        except signin_limits.SignInRefused as refused:
            challenge = signin.pending_challenge(context, db, token)
            if challenge is None or challenge.consumed_at is not None:
                return _redirect("/signin")
            member = db.get(Member, challenge.member_id)
            values = _code_page_values(request, context, challenge, member) | {
                "resend_error": refused.message
            }
            page = render(request, "code.html", values, status_code=refused.status_code)
            if refused.retry_after:
                page.headers["Retry-After"] = str(refused.retry_after)
            return page
    deliver_later(background, context, [mail_id] if mail_id else [])
    return _redirect(done_url("/signin/code", "code-resent"))


@router.post("/signout")
def signout(request: Request, csrf_token: FormText = "", next: FormText = "") -> Response:
    """Sign out; with `next` ("Not you?" on consent), sign in again to go there."""
    require_csrf(request, csrf_token)
    context = app_context(request)
    with context.session() as db:
        signin.close_web_session(
            context, db, request.cookies.get(SESSION_COOKIE), client_of(request)
        )
    response = _redirect(done_url(with_next("/signin", next), "signed-out"))
    delete_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/signup", response_class=HTMLResponse)
def signup_page(request: Request, next: str = "") -> Response:
    if not app_context(request).settings.signup_open:
        return render(request, "signup_closed.html", status_code=404)
    return render(request, "signup.html", _signup_values(request, next, {}, {}))


@router.post("/signup", response_class=HTMLResponse)
def signup_submit(
    request: Request,
    background: BackgroundTasks,
    email: FormText = "",
    display_name: FormText = "",
    password: FormText = "",
    password_again: FormText = "",
    next: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    require_csrf(request, csrf_token)
    context = app_context(request)
    next_path = safe_next_path(next)
    if not context.settings.signup_open:
        return render(request, "signup_closed.html", status_code=404)
    client = client_of(request)
    new = NewMember(email=email, display_name=display_name, password=password)
    try:
        with context.session() as db:
            # Never "this email has an account": services/signup.py answers both alike.
            problems = members_service.validate_new_member(db, new, email_taken_is_a_problem=False)
            errors = {problem.field: problem.message for problem in problems}
            if "password" not in errors and password != password_again:
                errors["password_again"] = "The two passwords are not the same."  # noqa: S105
            if errors:
                return _signup_refused(request, next, email, display_name, errors)
            challenge_token, mail_ids = signup.sign_up(context, db, new, client, next_path)
    except members_service.MemberError:  # the same email, a moment earlier: now it exists
        with context.session() as db:
            winner = members_service.find_by_email(db, new.email)
            if winner is None:  # the race was for a customer id: nothing was created
                retry = {"email": "Another sign-up happened at the same moment. Send it again."}
                return _signup_refused(request, next, email, display_name, retry)
            challenge_token, mail_ids = signup.answer_existing_account(
                context, db, winner, password, client, next_path
            )
    return _code_step_response(request, background, context, challenge_token, mail_ids)


def _signup_values(
    request: Request, next: str, values: dict[str, str], errors: dict[str, str]
) -> dict[str, object]:
    # An app's sign-up keeps its `next` through the code step to consent (http/journey.py).
    kept = safe_next_path(next, default="")
    return {
        "values": values,
        "errors": errors,
        "next": kept,
        "journey": app_journey(request, kept),
    }


def _signup_refused(
    request: Request, next: str, email: str, display_name: str, errors: dict[str, str]
) -> Response:
    values = {"email": email, "display_name": display_name}
    return render(
        request, "signup.html", _signup_values(request, next, values, errors), status_code=400
    )
