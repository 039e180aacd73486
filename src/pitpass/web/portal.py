"""The developer portal: request a client, follow requests, ask for changes (issue #3).

The client pages (secret, access list) are in web/portal_clients.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from pitpass.db.models import RegistrationRequest
from pitpass.http.caller import client_of
from pitpass.http.context import app_context, deliver_later
from pitpass.http.render import render
from pitpass.http.row_ids import row_id
from pitpass.services import client_details, request_queue, workflow
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails
from pitpass.services.errors import ServiceError
from pitpass.web import portal_clients
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_member
from pitpass.web.portal_common import (
    Details,
    FormText,
    form_refused,
    form_values,
    member_session,
    not_found,
    own_client,
    own_request,
    redirect,
)

router = APIRouter(prefix="/portal")


@router.get("", response_class=HTMLResponse)
def overview(request: Request, page: int = 1) -> Response:
    with member_session(request) as (_context, db, member):
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
    with member_session(request, csrf_token) as (context, db, member):
        review = client_details.review_details(db, context.settings, details)
        if not review.ok:
            return form_refused(request, "portal_request_new.html", review)
        created, mail_ids = workflow.submit(context, db, member, details, ip=client_of(request).ip)
    deliver_later(background, context, mail_ids)
    return redirect(f"/portal/requests/{created.id}", "request-sent")


def _request_values(db: Session, found: RegistrationRequest) -> dict[str, Any]:
    return {
        "item": found,
        "events": request_queue.history(db, found),
        "client": clients_service.by_pk(db, found.client_pk),
        "changes": workflow.changes_asked(db, found)
        if found.status in workflow.OPEN_STATUSES
        else [],
    }


@router.get(f"/requests/{row_id('request_id')}", response_class=HTMLResponse)
def request_page(request: Request, request_id: int) -> Response:
    with member_session(request) as (context, db, member):
        found = own_request(db, member, request_id)
        if found is None:
            return not_found(request, "request")
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
    with member_session(request, csrf_token) as (context, db, member):
        found = own_request(db, member, request_id)
        if found is None:
            return not_found(request, "request")
        review = workflow.review_edit(db, context.settings, found, details)
        if not review.ok:
            values = _request_values(db, found) | {"overdue": False}
            return form_refused(request, "portal_request.html", review, **values)
        try:
            mail_ids = workflow.resubmit(
                context, db, found, member, details, ip=client_of(request).ip
            )
        except ServiceError as error:  # no longer waiting for changes
            message = " ".join(error.errors.values())
            return error_page(request, "Cannot resubmit", message, 409)
    deliver_later(background, context, mail_ids)
    return redirect(f"/portal/requests/{request_id}", "request-resubmitted")


@router.post(f"/requests/{row_id('request_id')}/withdraw")
def request_withdraw(
    request: Request, request_id: int, background: BackgroundTasks, csrf_token: FormText = ""
) -> Response:
    with member_session(request, csrf_token) as (context, db, member):
        found = own_request(db, member, request_id)
        if found is None:
            return not_found(request, "request")
        try:
            mail_ids = workflow.withdraw(context, db, found, member, client_of(request).ip)
        except ServiceError as error:
            return error_page(request, "Cannot withdraw", error.errors["status"], 409)
    deliver_later(background, context, mail_ids)
    return redirect(f"/portal/requests/{request_id}", "request-withdrawn")


@router.get("/clients/{client_id}/change", response_class=HTMLResponse)
def change_page(request: Request, client_id: str) -> Response:
    with member_session(request) as (context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
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
    with member_session(request, csrf_token) as (context, db, member):
        client = own_client(db, member, client_id)
        if client is None:
            return not_found(request, "client")
        review = client_details.review_details(db, context.settings, details, changing=client)
        if not review.ok:
            return form_refused(request, "portal_change.html", review, client=client)
        created, mail_ids = workflow.submit(
            context, db, member, details, changing=client, ip=client_of(request).ip
        )
    deliver_later(background, context, mail_ids)
    return redirect(f"/portal/requests/{created.id}", "change-sent")


# The client pages, under the same /portal prefix.
router.include_router(portal_clients.router)
