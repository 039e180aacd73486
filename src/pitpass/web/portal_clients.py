"""The developer portal's client pages: the secret, the access list, the emailed link (issue #3).

Under /portal (web/portal.py includes this router).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from pitpass.db.models import Client
from pitpass.http.caller import client_of
from pitpass.http.confirm import confirmation_page, is_confirmed
from pitpass.http.context import app_context, deliver_later
from pitpass.http.notices import NOTICES
from pitpass.http.render import render
from pitpass.services import access_lists, client_secrets
from pitpass.services.errors import ServiceError
from pitpass.web.client_snippets import token_snippets
from pitpass.web.portal_common import FormText, member_session, not_found, own_client, redirect

router = APIRouter()


def _client_page(
    request: Request, db: Session, client: Client, status_code: int = 200, **more: Any
) -> Response:
    context = app_context(request)
    values = {
        "client": client,
        "secret": client_secrets.secret_status(db, client),
        "access": access_lists.shown(db, client, to_staff=False),
        "grace_days": context.settings.secret_grace_days,
        "snippets": token_snippets(client, context.settings.issuer),
        "masking_page": f"{context.settings.issuer_path.rstrip('/')}/book/masking.html",
        "errors": {},
    } | more
    return render(request, "portal_client.html", values, status_code=status_code)


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, client_id: str) -> Response:
    with member_session(request) as (_context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        return _client_page(request, db, client)


@router.post("/clients/{client_id}/reveal", response_class=HTMLResponse)
def client_reveal(request: Request, client_id: str, csrf_token: FormText = "") -> Response:
    with member_session(request, csrf_token) as (context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        try:
            secret = client_secrets.reveal_in_portal(
                context, db, client, member, client_of(request).ip
            )
        except client_secrets.RevealRefused as refused:
            return _client_page(request, db, client, 409, notice_error=refused.message)
    return render(request, "portal_secret.html", {"client": client, "secret": secret})


@router.post("/clients/{client_id}/rotate", response_class=HTMLResponse)
def client_rotate(
    request: Request, client_id: str, csrf_token: FormText = "", confirmed: FormText = ""
) -> Response:
    with member_session(request, csrf_token) as (context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        if not is_confirmed(confirmed):
            days = context.settings.secret_grace_days
            return confirmation_page(
                request,
                title=f"Rotate the secret of {client.name}?",
                explanation=f"A new secret is shown once. The current one keeps working for "
                f"{days} days: put the new one on your server before then.",
                button="Rotate the secret",
                cancel_path=f"/portal/clients/{client.client_id}",
            )
        try:
            secret = client_secrets.rotate_secret(
                context, db, client, member, client_of(request).ip
            )
        except ServiceError as error:
            return _client_page(request, db, client, 409, notice_error=error.errors["client"])
    return render(
        request,
        "portal_secret.html",
        {
            "client": client,
            "secret": secret,
            "rotated": True,
            "grace_days": context.settings.secret_grace_days,
            "notice": NOTICES["secret-rotated"],
        },
    )


@router.post("/clients/{client_id}/access", response_class=HTMLResponse)
def access_add(
    request: Request,
    client_id: str,
    background: BackgroundTasks,
    csrf_token: FormText = "",
    member_reference: FormText = "",
) -> Response:
    with member_session(request, csrf_token) as (context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        try:
            _entry, _added, mail_ids = access_lists.add_to_access_list(
                context,
                db,
                client,
                member_reference,
                member,
                by_staff=False,
                ip=client_of(request).ip,
            )
        except ServiceError as error:
            page = _client_page(
                request,
                db,
                client,
                429 if error.retry_after else 400,
                errors=error.errors,
                member_reference=member_reference,
            )
            if error.retry_after:
                page.headers["Retry-After"] = str(error.retry_after)
            return page
    deliver_later(background, context, mail_ids)
    return redirect(f"/portal/clients/{client_id}")


@router.post("/clients/{client_id}/access/remove", response_class=HTMLResponse)
def access_remove(
    request: Request, client_id: str, csrf_token: FormText = "", member_reference: FormText = ""
) -> Response:
    with member_session(request, csrf_token) as (_context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        try:
            access_lists.remove_from_access_list(
                db, client, member_reference, member, client_of(request).ip
            )
        except ServiceError as error:
            return _client_page(request, db, client, 400, errors=error.errors)
    return redirect(f"/portal/clients/{client_id}")


# ----- the emailed one-time secret link -----------------------------------------------


@router.get("/secret/{token}", response_class=HTMLResponse)
def secret_link_page(request: Request, token: str) -> Response:
    """A page with a button, not the secret: mail scanners that follow links spend nothing."""
    with member_session(request) as (context, db, member):
        client, refusal = client_secrets.reveal_link_client(context, db, token)
        values = _link_values(client, member.id) | {"token": token, "refusal": refusal}
    return render(request, "portal_secret_link.html", values)


def _link_values(client: Client | None, member_id: int) -> dict[str, Any]:
    """The link's client, and a way back to its page when it is the member's own."""
    mine = client is not None and client.owner_id == member_id
    return {
        "client": client,
        "client_path": f"/portal/clients/{client.client_id}" if mine and client else None,
    }


@router.post("/secret/{token}", response_class=HTMLResponse)
def secret_link_reveal(request: Request, token: str, csrf_token: FormText = "") -> Response:
    with member_session(request, csrf_token) as (context, db, member):
        try:
            client, secret = client_secrets.reveal_by_link(
                context, db, token, member, client_of(request).ip
            )
        except client_secrets.RevealRefused as refused:
            linked, _refusal = client_secrets.reveal_link_client(context, db, token)
            values = _link_values(linked, member.id) | {"refusal": refused.message}
            return render(request, "portal_secret_link.html", values, status_code=410)
    return render(request, "portal_secret.html", {"client": client, "secret": secret})
