"""Download my data and delete my account (issue #12, item 2)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pitpass.db.models import Client
from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context, deliver_later
from pitpass.http.cookies import REMEMBER_COOKIE, SESSION_COOKIE, delete_cookie
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import account_data, account_deletion, reauth
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.web.guards import signed_in_here

router = APIRouter()

FormText = Annotated[str, Form()]
DELETE = "account-delete"


@router.get("/account/data")
def download_data(request: Request) -> Response:
    """The member's data as a JSON file (services/account_data.py)."""
    context = app_context(request)
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        data = account_data.export(db, member, client_of(request).ip)
        filename = f"pitpass-data-{member.customer_id}.json"
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _delete_page(
    request: Request, clients: list[Client], error: str = "", status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "account_delete.html",
        {"clients": clients, "error": error},
        status_code=status_code,
    )


def _consequences(clients: list[Client]) -> str:
    owned = (
        f" Your clients {', '.join(c.name for c in clients)} will be disabled for everyone."
        if clients
        else ""
    )
    return (
        "You are signed out everywhere and every app you let in loses access." + owned + " "
        "Your email address is freed and your name removed; what you did stays in the "
        "audit log under a pseudonym. This cannot be undone."
    )


@router.get("/account/delete", response_class=HTMLResponse)
def delete_page(request: Request) -> Response:
    context = app_context(request)
    with context.session() as db:
        member, _session_id = signed_in_here(request, db)
        return _delete_page(request, account_deletion.clients_to_disable(db, member))


@router.post("/account/delete", response_class=HTMLResponse)
def delete_account(
    request: Request,
    background: BackgroundTasks,
    password: FormText = "",
    proof: FormText = "",
    confirmed: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    """Password first, then the confirmation step, which carries a proof, not the password."""
    require_csrf(request, csrf_token)
    context: AppContext = app_context(request)
    ip = client_of(request).ip
    with context.session() as db:
        member, session_id = signed_in_here(request, db)
        clients = account_deletion.clients_to_disable(db, member)
        if refusal := account_deletion.refusal(db, member):
            return _delete_page(request, clients, refusal, 409)
        where = reauth.step(
            context,
            db,
            member,
            session_id,
            DELETE,
            password=password,
            proof_value=proof,
            confirmed=is_confirmed(confirmed),
            ip=ip,
        )
        if where.problem:
            return _delete_page(request, clients, where.problem, 400)
        if where.act:
            try:
                mail_id = account_deletion.delete_account(context, db, member, ip)
            except ServiceError as error:  # the other staff member left a moment ago
                return _delete_page(request, clients, next(iter(error.errors.values())), 409)
        else:
            fields = {"proof": where.proof}
            return confirmation_page(
                request,
                title="Delete your account for good?",
                explanation=_consequences(clients),
                button="Delete my account",
                cancel_path="/account",
                fields=fields,
            )
    deliver_later(background, context, [mail_id])
    response = RedirectResponse(done_url("/signin", "account-deleted"), status_code=303)
    delete_cookie(request, response, SESSION_COOKIE)
    delete_cookie(request, response, REMEMBER_COOKIE)
    return response
