"""The developer portal: request a client, follow requests, manage clients (issue #3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pitpass.core import policy
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.http.caller import client_of
from pitpass.http.context import app_context, deliver_later
from pitpass.http.csrf import require_csrf
from pitpass.http.render import render
from pitpass.http.row_ids import row_id
from pitpass.services import access_lists, client_details, client_secrets, request_queue, workflow
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails, Review
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_member

router = APIRouter(prefix="/portal")

FormText = Annotated[str, Form()]


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


class RequestForm(BaseModel):
    """The request form (templates/_request_form.html): the fields of ClientDetails,
    with the redirect URIs one a line."""

    client_name: str = ""
    client_type: str = ""
    flows: list[str] = []
    description: str = ""
    developer_name: str = ""
    developer_url: str = ""
    developer_email: str = ""
    redirect_uris: str = ""
    audiences: list[str] = []


def details_from_form(form: Annotated[RequestForm, Form()]) -> ClientDetails:
    return ClientDetails(**form.model_dump() | {"redirect_uris": form.redirect_uris.splitlines()})


Details = Annotated[ClientDetails, Depends(details_from_form)]


def form_values(context: AppContext, **more: Any) -> dict[str, Any]:
    return {
        "audiences": context.settings.profile.audiences,
        "client_types": policy.CLIENT_TYPES,
        "errors": {},
        "warnings": {},
    } | more


def _form_refused(request: Request, template: str, review: Review, **more: Any) -> Response:
    """The form again, with what the checks found (`more` may name other errors)."""
    found = {"details": review.details, "errors": review.errors, "warnings": review.warnings}
    values = form_values(app_context(request), **(found | more))
    return render(request, template, values, status_code=400)


@contextmanager
def _member_session(
    request: Request, csrf_token: str | None = None
) -> Iterator[tuple[AppContext, Session, Member]]:
    """The signed-in member and one transaction; a change (`csrf_token`) checks the form first."""
    if csrf_token is not None:
        require_csrf(request, csrf_token)
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        yield context, db, member


def _own_request(db: Session, member: Member, request_id: int) -> RegistrationRequest | None:
    found = db.get(RegistrationRequest, request_id)
    return found if found is not None and found.requester_id == member.id else None


def _own_client(db: Session, member: Member, client_id: str) -> Client | None:
    found = clients_service.by_client_id(db, client_id)
    return found if found is not None and found.owner_id == member.id else None


def _not_found(request: Request, what: str) -> Response:
    return error_page(
        request, f"No such {what}", f"There is no {what} of yours at this address.", 404
    )


@router.get("", response_class=HTMLResponse)
def overview(request: Request, page: int = 1) -> Response:
    with _member_session(request) as (_context, db, member):
        requests, requests_page = request_queue.requests_of(db, member, page)
        clients, _ = clients_service.clients_of(db, member, 1, per_page=200)
    return render(
        request,
        "portal_overview.html",
        {
            "requests": requests,
            "requests_page": requests_page,
            "clients": clients,
            "overdue": request_queue.is_overdue,
        },
    )


@router.get("/requests/new", response_class=HTMLResponse)
def new_request_page(request: Request, template: str = "") -> Response:
    require_member(request)
    context = app_context(request)
    details = client_details.template(template, context.settings)
    return render(
        request,
        "portal_request_new.html",
        form_values(context, details=details, template=template),
    )


@router.post("/requests/new", response_class=HTMLResponse)
def new_request_submit(
    request: Request, background: BackgroundTasks, details: Details, csrf_token: FormText = ""
) -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        review = client_details.review_details(db, context.settings, details)
        if not review.ok:
            return _form_refused(request, "portal_request_new.html", review)
        created, mail_ids = workflow.submit(context, db, member, details, ip=client_of(request).ip)
    deliver_later(background, context, mail_ids)
    return _redirect(f"/portal/requests/{created.id}")


def _request_values(db: Session, found: RegistrationRequest) -> dict[str, Any]:
    return {
        "item": found,
        "events": request_queue.history(db, found),
        "client": clients_service.by_pk(db, found.client_pk),
    }


@router.get(f"/requests/{row_id('request_id')}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int) -> Response:
    with _member_session(request) as (context, db, member):
        found = _own_request(db, member, request_id)
        if found is None:
            return _not_found(request, "request")
        values = _request_values(db, found)
    return render(
        request,
        "portal_request.html",
        form_values(
            context, details=ClientDetails.of(found), overdue=request_queue.is_overdue(found)
        )
        | values,
    )


@router.post(f"/requests/{row_id('request_id')}/edit", response_class=HTMLResponse)
def request_resubmit(
    request: Request,
    request_id: int,
    background: BackgroundTasks,
    details: Details,
    csrf_token: FormText = "",
) -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        found = _own_request(db, member, request_id)
        if found is None:
            return _not_found(request, "request")
        try:
            mail_ids = workflow.resubmit(
                context, db, found, member, details, ip=client_of(request).ip
            )
        except ServiceError as error:
            review = client_details.review_details(db, context.settings, details)
            values = _request_values(db, found) | {"errors": error.errors, "overdue": False}
            return _form_refused(request, "portal_request.html", review, **values)
    deliver_later(background, context, mail_ids)
    return _redirect(f"/portal/requests/{request_id}")


@router.post(f"/requests/{row_id('request_id')}/withdraw")
def request_withdraw(
    request: Request, request_id: int, background: BackgroundTasks, csrf_token: FormText = ""
) -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        found = _own_request(db, member, request_id)
        if found is None:
            return _not_found(request, "request")
        try:
            mail_ids = workflow.withdraw(context, db, found, member, client_of(request).ip)
        except ServiceError as error:
            return error_page(request, "Cannot withdraw", error.errors["status"], 409)
    deliver_later(background, context, mail_ids)
    return _redirect(f"/portal/requests/{request_id}")


# ----- my clients -----------------------------------------------------------------


def _client_page(
    request: Request, db: Session, client: Client, status_code: int = 200, **more: Any
) -> Response:
    context = app_context(request)
    values = {
        "client": client,
        "secret": client_secrets.secret_status(db, client),
        "access": access_lists.shown(db, client, to_staff=False),
        "grace_days": context.settings.secret_grace_days,
        "errors": {},
    } | more
    return render(request, "portal_client.html", values, status_code=status_code)


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(request: Request, client_id: str) -> Response:
    with _member_session(request) as (_context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
        return _client_page(request, db, client)


@router.post("/clients/{client_id}/reveal", response_class=HTMLResponse)
def client_reveal(request: Request, client_id: str, csrf_token: FormText = "") -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
        try:
            secret = client_secrets.reveal_in_portal(
                context, db, client, member, client_of(request).ip
            )
        except client_secrets.RevealRefused as refused:
            return _client_page(request, db, client, 409, notice_error=refused.message)
    return render(request, "portal_secret.html", {"client": client, "secret": secret})


@router.post("/clients/{client_id}/rotate", response_class=HTMLResponse)
def client_rotate(request: Request, client_id: str, csrf_token: FormText = "") -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
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
        },
    )


@router.get("/clients/{client_id}/change", response_class=HTMLResponse)
def change_page(request: Request, client_id: str) -> Response:
    with _member_session(request) as (context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
    return render(
        request,
        "portal_change.html",
        form_values(context, client=client, details=ClientDetails.of(client)),
    )


@router.post("/clients/{client_id}/change", response_class=HTMLResponse)
def change_submit(
    request: Request,
    client_id: str,
    background: BackgroundTasks,
    details: Details,
    csrf_token: FormText = "",
) -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
        review = client_details.review_details(db, context.settings, details, changing=client)
        if not review.ok:
            return _form_refused(request, "portal_change.html", review, client=client)
        created, mail_ids = workflow.submit(
            context, db, member, details, changing=client, ip=client_of(request).ip
        )
    deliver_later(background, context, mail_ids)
    return _redirect(f"/portal/requests/{created.id}")


@router.post("/clients/{client_id}/access", response_class=HTMLResponse)
def access_add(
    request: Request,
    client_id: str,
    background: BackgroundTasks,
    csrf_token: FormText = "",
    member_reference: FormText = "",
) -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
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
    return _redirect(f"/portal/clients/{client_id}")


@router.post("/clients/{client_id}/access/remove", response_class=HTMLResponse)
def access_remove(
    request: Request, client_id: str, csrf_token: FormText = "", member_reference: FormText = ""
) -> Response:
    with _member_session(request, csrf_token) as (_context, db, member):
        client = _own_client(db, member, client_id)
        if client is None:
            return _not_found(request, "client")
        try:
            access_lists.remove_from_access_list(
                db, client, member_reference, member, client_of(request).ip
            )
        except ServiceError as error:
            return _client_page(request, db, client, 400, errors=error.errors)
    return _redirect(f"/portal/clients/{client_id}")


# ----- the emailed one-time secret link -----------------------------------------------


@router.get("/secret/{token}", response_class=HTMLResponse)
def secret_link_page(request: Request, token: str) -> Response:
    """A page with a button, not the secret: mail scanners that follow links spend nothing."""
    with _member_session(request) as (context, db, _member):
        client = client_secrets.reveal_link_client(context, db, token)
    return render(request, "portal_secret_link.html", {"client": client, "token": token})


@router.post("/secret/{token}", response_class=HTMLResponse)
def secret_link_reveal(request: Request, token: str, csrf_token: FormText = "") -> Response:
    with _member_session(request, csrf_token) as (context, db, member):
        try:
            client, secret = client_secrets.reveal_by_link(
                context, db, token, member, client_of(request).ip
            )
        except client_secrets.RevealRefused as refused:
            return error_page(request, "Secret not shown", refused.message, 410)
    return render(request, "portal_secret.html", {"client": client, "secret": secret})
