"""What the member and staff endpoints share: who calls, one transaction per call,
finding the caller's things, and the output shapes of lists (read in one query each)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from pitpass.api.errors import ApiError, from_service_error
from pitpass.api.schemas import (
    AccessEntryOut,
    ClientOut,
    RequestOut,
)
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.http.caller import client_of
from pitpass.http.context import app_context
from pitpass.http.csrf import CsrfRejected as _CsrfRejected
from pitpass.http.csrf import require_csrf
from pitpass.http.members import current_member
from pitpass.services import (
    access_lists,
    client_secrets,
    paging,
    totp,
)
from pitpass.services import clients as clients_service
from pitpass.services.context import AppContext
from pitpass.services.errors import ServiceError


@contextmanager
def unit_of_work(request: Request) -> Iterator[tuple[AppContext, Session]]:
    """A transaction; service errors become API errors, nothing half-written."""
    context = app_context(request)
    try:
        with context.session() as db:
            yield context, db
    except ServiceError as error:
        raise from_service_error(error) from None


def signed_in(request: Request) -> Member:
    member = current_member(request)
    if member is None:
        raise ApiError(401, "unauthorized", "sign in first: this API uses the web session")
    return member


def changing(request: Request, x_csrf_token: Annotated[str, Header()] = "") -> Member:
    """Members changing something must prove the call comes from their own page or script."""
    member = signed_in(request)
    try:
        require_csrf(request, x_csrf_token)
    except _CsrfRejected:
        raise ApiError(
            403,
            "csrf_token_missing",
            "send the X-CSRF-Token header with the csrf_token from GET /api/v1/me",
        ) from None
    return member


def _staff_only(request: Request, member: Member) -> Member:
    if not member.is_staff:
        raise ApiError(403, "forbidden", "this endpoint is for staff")
    if totp.staff_must_enrol(app_context(request).settings, member):
        raise ApiError(
            403,
            "two_step_required",
            "staff must turn on an authenticator app first: open /account/two-step",
        )
    return member


def staff_reading(request: Request) -> Member:
    return _staff_only(request, signed_in(request))


def staff_changing(request: Request, member: Annotated[Member, Depends(changing)]) -> Member:
    return _staff_only(request, member)


Reader = Annotated[Member, Depends(signed_in)]
Changer = Annotated[Member, Depends(changing)]
StaffReader = Annotated[Member, Depends(staff_reading)]
StaffChanger = Annotated[Member, Depends(staff_changing)]


def own_request(db: Session, member: Member, request_id: int) -> RegistrationRequest:
    item = db.get(RegistrationRequest, request_id)
    if item is None or item.requester_id != member.id:
        raise ApiError(404, "not_found", f"you have no request #{request_id}")
    return item


def own_client(db: Session, member: Member, client_id: str) -> Client:
    client = clients_service.by_client_id(db, client_id)
    if client is None or client.owner_id != member.id:
        raise ApiError(404, "not_found", f"you have no client {client_id}")
    return client


def any_client(db: Session, client_id: str) -> Client:
    client = clients_service.by_client_id(db, client_id)
    if client is None:
        raise ApiError(404, "not_found", f"there is no client {client_id}")
    return client


def page_info(info: paging.Page) -> dict[str, int]:
    return {"page": info.number, "per_page": info.per_page, "total": info.total}


def requests_out(db: Session, items: list[RegistrationRequest]) -> list[RequestOut]:
    """The clients of all the requests in one query, however many are listed."""
    clients = clients_service.by_pks(db, {item.client_pk for item in items})
    return [RequestOut.of_request(item, clients.get(item.client_pk)) for item in items]


def request_out(db: Session, item: RegistrationRequest) -> RequestOut:
    return requests_out(db, [item])[0]


def clients_out(db: Session, clients: list[Client]) -> list[ClientOut]:
    """The secret status of all the clients in one query, however many are listed."""
    statuses = client_secrets.secret_statuses(db, clients)
    return [ClientOut.of_client(client, statuses.get(client.id)) for client in clients]


def client_out(db: Session, client: Client) -> ClientOut:
    return clients_out(db, [client])[0]


def access_out(db: Session, client: Client, *, to_staff: bool) -> list[AccessEntryOut]:
    return [AccessEntryOut(**row) for row in access_lists.shown(db, client, to_staff=to_staff)]


def _access_client(db: Session, actor: Member, client_id: str, by_staff: bool) -> Client:
    """Staff manage any client's access list; a developer only their own clients'."""
    return any_client(db, client_id) if by_staff else own_client(db, actor, client_id)


def add_access(
    request: Request, client_id: str, reference: str, actor: Member, by_staff: bool
) -> tuple[list[AccessEntryOut], AppContext, list[int]]:
    """The access list after adding `reference`, and the invitation mail to send."""
    with unit_of_work(request) as (context, db):
        client = _access_client(db, actor, client_id, by_staff)
        _entry, _added, mail_ids = access_lists.add_to_access_list(
            context, db, client, reference, actor, by_staff=by_staff, ip=client_of(request).ip
        )
        return access_out(db, client, to_staff=by_staff), context, mail_ids


def remove_access(
    request: Request, client_id: str, reference: str, actor: Member, *, by_staff: bool
) -> list[AccessEntryOut]:
    with unit_of_work(request) as (_context, db):
        client = _access_client(db, actor, client_id, by_staff)
        access_lists.remove_from_access_list(db, client, reference, actor, client_of(request).ip)
        return access_out(db, client, to_staff=by_staff)
