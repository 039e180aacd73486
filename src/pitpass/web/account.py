"""The member's own account page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.core import policy
from pitpass.db.models import Member
from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context
from pitpass.http.cookies import REMEMBER_COOKIE, delete_cookie
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.http.row_ids import row_id
from pitpass.services import access_lists, audit, connected_apps, signin
from pitpass.services import clients as clients_service
from pitpass.services.errors import ServiceError
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_member

router = APIRouter()


def _member_sending(request: Request, csrf_token: str) -> Member:
    """The member who sent a form, which must carry this browser's CSRF token."""
    require_csrf(request, csrf_token)
    return require_member(request)


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return RedirectResponse("/account", status_code=303)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, forgotten: str = "") -> Response:
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        memory = signin.browser_memory(context, db, request.cookies.get(REMEMBER_COOKIE), member)
        invitations = access_lists.invitations_for(db, member)
    return render(
        request,
        "account.html",
        {
            "remembered": memory is signin.BrowserMemory.REMEMBERED,
            "invitations": invitations,
            "notice": "This browser will ask for a code at the next sign-in." if forgotten else "",
        },
    )


@router.post(f"/account/access/{row_id('entry_id')}/{{answer}}")
def answer_access_invitation(
    request: Request, entry_id: int, answer: str, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """Accept or decline a place on a password-limited client's access list (PRODUCT.md §3)."""
    member = _member_sending(request, csrf_token)
    if answer not in ("accept", "decline"):
        return error_page(request, "Unknown answer", "Answer with accept or decline.", 404)
    with app_context(request).session() as db:
        try:
            access_lists.answer_invitation(
                db, entry_id, member, answer == "accept", client_of(request).ip
            )
        except ServiceError as error:
            return error_page(request, "Invitation closed", error.errors["invitation"], 409)
    return RedirectResponse("/account", status_code=303)


@router.post("/account/forget-browser")
def forget_browser(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    member = _member_sending(request, csrf_token)
    context = app_context(request)
    with context.session() as db:
        signin.forget_browser(context, db, request.cookies.get(REMEMBER_COOKIE))
        audit.record(db, "browser.forgotten", actor=member, ip=client_of(request).ip)
    response = RedirectResponse("/account?forgotten=1", status_code=303)
    delete_cookie(request, response, REMEMBER_COOKIE)
    return response


# ----- connected apps (issue #4, item 6) ----------------------------------------------------


@router.get("/account/apps", response_class=HTMLResponse)
def connected_apps_page(request: Request) -> Response:
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        apps = connected_apps.connected_apps(db, member)
    return render(
        request,
        "account_apps.html",
        {
            "apps": apps,
            "scope_words": policy.scope_words(context.settings.profile),
            "device_label": connected_apps.device_label,
        },
    )


@router.post("/account/apps/sessions/{session_id}/sign-out")
def sign_out_app_session(
    request: Request, session_id: str, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    member = _member_sending(request, csrf_token)
    with app_context(request).session() as db:
        connected_apps.sign_out_session(db, member, session_id, client_of(request).ip)
    return RedirectResponse("/account/apps", status_code=303)


@router.post("/account/apps/{client_id}/{action}")
def disconnect_app(
    request: Request,
    client_id: str,
    action: str,
    csrf_token: Annotated[str, Form()] = "",
    confirmed: Annotated[str, Form()] = "",
) -> Response:
    """`sign-out` ends every session of the client; `withdraw` also forgets the consent."""
    member = _member_sending(request, csrf_token)
    withdraw = action == "withdraw"
    with app_context(request).session() as db:
        client = clients_service.by_client_id(db, client_id)
        if client is None or action not in ("sign-out", "withdraw"):
            no_app = "That app or action does not exist."
            return error_page(request, "No such app", no_app, 404)
        if not is_confirmed(confirmed):
            return confirmation_page(
                request,
                title=f"Withdraw consent from {client.name}?"
                if withdraw
                else f"Sign out of {client.name} everywhere?",
                explanation=(
                    f"{client.name} is signed out on every device and must ask for your "
                    "consent again before it can sign you in."
                    if withdraw
                    else f"{client.name} is signed out on every device; "
                    "you can sign in again at any time."
                ),
                button="Withdraw consent" if withdraw else "Sign out everywhere",
                cancel_path="/account/apps",
            )
        connected_apps.disconnect(
            db, member, client, client_of(request).ip, withdraw_consent=withdraw
        )
    done = "consent-withdrawn" if withdraw else "app-signed-out"
    return RedirectResponse(done_url("/account/apps", done), status_code=303)
