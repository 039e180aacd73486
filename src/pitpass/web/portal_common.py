"""What the portal's request pages and client pages share: the member's transaction,
their own requests and clients, and the request form."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from pitpass.core import policy
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.http.context import app_context
from pitpass.http.csrf import require_csrf
from pitpass.http.notices import done_url
from pitpass.http.render import render
from pitpass.services import clients as clients_service
from pitpass.services.client_details import ClientDetails, Review
from pitpass.services.context import AppContext
from pitpass.web.error_page import error_page
from pitpass.web.guards import require_member

FormText = Annotated[str, Form()]


def redirect(location: str, done: str | None = None) -> RedirectResponse:
    """303 to `location`, with the notice `done` (http/notices.py) when given."""
    return RedirectResponse(done_url(location, done) if done else location, status_code=303)


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


def form_refused(request: Request, template: str, review: Review, **more: Any) -> Response:
    """The form again, with what the checks found (`more` may name other errors)."""
    found = {"details": review.details, "errors": review.errors, "warnings": review.warnings}
    values = form_values(app_context(request), **(found | more))
    return render(request, template, values, status_code=400)


@contextmanager
def member_session(
    request: Request, csrf_token: str | None = None
) -> Iterator[tuple[AppContext, Session, Member]]:
    """The signed-in member and one transaction; a change (`csrf_token`) checks the form first."""
    if csrf_token is not None:
        require_csrf(request, csrf_token)
    member = require_member(request)
    context = app_context(request)
    with context.session() as db:
        yield context, db, member


def own_request(db: Session, member: Member, request_id: int) -> RegistrationRequest | None:
    found = db.get(RegistrationRequest, request_id)
    return found if found is not None and found.requester_id == member.id else None


def own_client(db: Session, member: Member, client_id: str) -> Client | None:
    found = clients_service.by_client_id(db, client_id)
    return found if found is not None and found.owner_id == member.id else None


def not_found(request: Request, what: str) -> Response:
    return error_page(
        request, f"No such {what}", f"There is no {what} of yours at this address.", 404
    )
