"""The registration JSON API, `/api/v1` (issue #3, item 4; OpenAPI at /docs).

Callers are signed-in members (the session cookie of the web pages). Every
request that changes something must also carry the `X-CSRF-Token` header
(from `GET /api/v1/me`): a cross-site page cannot set it without CORS, which
Pitpass never grants.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from pitpass.api.schemas import (
    AccessEntryOut,
    CheckOut,
    ClientMetadata,
    ClientOut,
    ClientPage,
    ErrorBody,
    FieldError,
    MemberReference,
    MeOut,
    RequestOut,
    RequestPage,
    SecretOut,
    StaffMessage,
    StaffRequestOut,
    StaffRequestPage,
    StaffRequestSummary,
    api_field,
)
from pitpass.db.models import Client, Member, RegistrationRequest
from pitpass.services import (
    access_lists,
    client_details,
    client_secrets,
    members,
    paging,
    request_queue,
    workflow,
)
from pitpass.services import clients as clients_service
from pitpass.services.client_secrets import RevealRefused
from pitpass.services.context import AppContext
from pitpass.services.errors import ErrorKind, ServiceError
from pitpass.web.common import CsrfRejected as _CsrfRejected
from pitpass.web.common import (
    app_context,
    client_of,
    csrf_token,
    current_member,
    deliver_later,
    require_csrf,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input; `fields` names each field at fault"},
    401: {"model": ErrorBody, "description": "Not signed in"},
    403: {"model": ErrorBody, "description": "Missing X-CSRF-Token, or not allowed"},
    404: {"model": ErrorBody, "description": "No such thing of yours"},
    409: {"model": ErrorBody, "description": "Not possible in the current state"},
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, description: str, fields: list[FieldError] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.body = ErrorBody(error=error, error_description=description, fields=fields or [])

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status)


# Fields of the API's own bodies: RFC 7591's metadata error codes do not name them.
BODY_FIELDS = frozenset(MemberReference.model_fields) | frozenset(StaffMessage.model_fields)


def from_service_error(error: ServiceError) -> ApiError:
    """A conflict → 409; a field error → 400 with the RFC 7591 §3.2.2 code that fits."""
    if error.kind is ErrorKind.CONFLICT:
        return ApiError(409, "conflict", " ".join(error.errors.values()))
    fields = [
        FieldError(field=api_field(key), message=message)
        for key, message in client_details.without_summaries(error.errors).items()
    ]
    if BODY_FIELDS & error.errors.keys():
        code = "invalid_request"
    elif all(f.field.startswith("redirect_uris") for f in fields):
        code = "invalid_redirect_uri"
    else:
        code = "invalid_client_metadata"
    return ApiError(400, code, "; ".join(f"{f.field}: {f.message}" for f in fields), fields)


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


def staff_reading(request: Request) -> Member:
    member = signed_in(request)
    if not member.is_staff:
        raise ApiError(403, "forbidden", "this endpoint is for staff")
    return member


def staff_changing(member: Annotated[Member, Depends(changing)]) -> Member:
    if not member.is_staff:
        raise ApiError(403, "forbidden", "this endpoint is for staff")
    return member


Reader = Annotated[Member, Depends(signed_in)]
Changer = Annotated[Member, Depends(changing)]
StaffReader = Annotated[Member, Depends(staff_reading)]
StaffChanger = Annotated[Member, Depends(staff_changing)]


def _own_request(db: Session, member: Member, request_id: int) -> RegistrationRequest:
    item = db.get(RegistrationRequest, request_id)
    if item is None or item.requester_id != member.id:
        raise ApiError(404, "not_found", f"you have no request #{request_id}")
    return item


def _own_client(db: Session, member: Member, client_id: str) -> Client:
    client = clients_service.by_client_id(db, client_id)
    if client is None or client.owner_id != member.id:
        raise ApiError(404, "not_found", f"you have no client {client_id}")
    return client


def _any_client(db: Session, client_id: str) -> Client:
    client = clients_service.by_client_id(db, client_id)
    if client is None:
        raise ApiError(404, "not_found", f"there is no client {client_id}")
    return client


def _page_info(info: paging.Page) -> dict[str, int]:
    return {"page": info.number, "per_page": info.per_page, "total": info.total}


def _requests_out(db: Session, items: list[RegistrationRequest]) -> list[RequestOut]:
    """The clients of all the requests in one query, however many are listed."""
    clients = clients_service.by_pks(db, {item.client_pk for item in items})
    return [RequestOut.of_request(item, clients.get(item.client_pk)) for item in items]


def _request_out(db: Session, item: RegistrationRequest) -> RequestOut:
    return _requests_out(db, [item])[0]


def _clients_out(db: Session, clients: list[Client]) -> list[ClientOut]:
    """The secret status of all the clients in one query, however many are listed."""
    statuses = client_secrets.secret_statuses(db, clients)
    return [ClientOut.of_client(client, statuses.get(client.id)) for client in clients]


def _client_out(db: Session, client: Client) -> ClientOut:
    return _clients_out(db, [client])[0]


def _access_out(db: Session, client: Client) -> list[AccessEntryOut]:
    return [
        AccessEntryOut(
            email=m.email,
            customer_id=m.customer_id,
            state="active" if entry.accepted_at else "pending",
        )
        for entry, m in access_lists.access_list(db, client)
    ]


def _access_client(db: Session, actor: Member, client_id: str, by_staff: bool) -> Client:
    """Staff manage any client's access list; a developer only their own clients'."""
    return _any_client(db, client_id) if by_staff else _own_client(db, actor, client_id)


def _add_access(
    request: Request, client_id: str, reference: str, actor: Member, by_staff: bool
) -> tuple[list[AccessEntryOut], AppContext, list[int]]:
    """The access list after adding `reference`, and the invitation mail to send."""
    with unit_of_work(request) as (context, db):
        client = _access_client(db, actor, client_id, by_staff)
        _entry, _added, mail_ids = access_lists.add_to_access_list(
            context, db, client, reference, actor, by_staff=by_staff, ip=client_of(request).ip
        )
        return _access_out(db, client), context, mail_ids


def _remove_access(
    request: Request, client_id: str, reference: str, actor: Member, *, by_staff: bool
) -> list[AccessEntryOut]:
    with unit_of_work(request) as (_context, db):
        client = _access_client(db, actor, client_id, by_staff)
        access_lists.remove_from_access_list(db, client, reference, actor, client_of(request).ip)
        return _access_out(db, client)


# ----- members -------------------------------------------------------------------------


@router.get("/me", response_model=MeOut, tags=["members"])
def me(request: Request, member: Reader) -> MeOut:
    """Who is signed in, and the CSRF token that changes need."""
    return MeOut(
        email=member.email,
        display_name=member.display_name,
        customer_id=member.customer_id,
        staff=member.is_staff,
        csrf_token=csrf_token(request),
    )


@router.get("/requests", response_model=RequestPage, tags=["requests"])
def list_requests(request: Request, member: Reader, page: int = 1) -> RequestPage:
    with unit_of_work(request) as (_context, db):
        rows, info = request_queue.requests_of(db, member, page)
        return RequestPage(items=_requests_out(db, rows), **_page_info(info))


@router.post("/requests", response_model=RequestOut, status_code=201, tags=["requests"])
def create_request(
    request: Request, body: ClientMetadata, member: Changer, background: BackgroundTasks
) -> RequestOut:
    """Ask for a new client; staff review it within the due period."""
    _one_contact(body)
    with unit_of_work(request) as (context, db):
        item, mail_ids = workflow.submit(
            context, db, member, body.to_details(), ip=client_of(request).ip
        )
        result = _request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


def _one_contact(body: ClientMetadata) -> None:
    if len(body.contacts) > 1:
        raise ApiError(
            400,
            "invalid_client_metadata",
            "contacts: give exactly one email, the developer's",
            [FieldError(field="contacts", message="give exactly one email, the developer's")],
        )


@router.get("/requests/{request_id}", response_model=RequestOut, tags=["requests"])
def get_request(request: Request, request_id: int, member: Reader) -> RequestOut:
    with unit_of_work(request) as (_context, db):
        return _request_out(db, _own_request(db, member, request_id))


@router.put("/requests/{request_id}", response_model=RequestOut, tags=["requests"])
def resubmit_request(
    request: Request,
    request_id: int,
    body: ClientMetadata,
    member: Changer,
    background: BackgroundTasks,
) -> RequestOut:
    """Edit and resubmit a request whose changes were requested."""
    _one_contact(body)
    with unit_of_work(request) as (context, db):
        item = _own_request(db, member, request_id)
        mail_ids = workflow.resubmit(
            context, db, item, member, body.to_details(), client_of(request).ip
        )
        result = _request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.post("/requests/{request_id}/withdraw", response_model=RequestOut, tags=["requests"])
def withdraw_request(
    request: Request, request_id: int, member: Changer, background: BackgroundTasks
) -> RequestOut:
    with unit_of_work(request) as (context, db):
        item = _own_request(db, member, request_id)
        mail_ids = workflow.withdraw(context, db, item, member, client_of(request).ip)
        result = _request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.get("/clients", response_model=ClientPage, tags=["clients"])
def list_clients(request: Request, member: Reader, page: int = 1) -> ClientPage:
    with unit_of_work(request) as (_context, db):
        rows, info = clients_service.clients_of(db, member, page)
        return ClientPage(items=_clients_out(db, rows), **_page_info(info))


@router.get("/clients/{client_id}", response_model=ClientOut, tags=["clients"])
def get_client(request: Request, client_id: str, member: Reader) -> ClientOut:
    with unit_of_work(request) as (_context, db):
        return _client_out(db, _own_client(db, member, client_id))


@router.post("/clients/{client_id}/secret/reveal", response_model=SecretOut, tags=["clients"])
def reveal_secret(request: Request, client_id: str, member: Changer) -> SecretOut:
    """The issued secret, exactly once (or through the emailed link, whichever comes first)."""
    with unit_of_work(request) as (context, db):
        client = _own_client(db, member, client_id)
        try:
            secret = client_secrets.reveal_in_portal(
                context, db, client, member, client_of(request).ip
            )
        except RevealRefused as refused:
            raise ApiError(409, "already_viewed", refused.message) from None
        return SecretOut(client_id=client.client_id, client_secret=secret)


@router.post("/clients/{client_id}/secret/rotate", response_model=SecretOut, tags=["clients"])
def rotate_secret(request: Request, client_id: str, member: Changer) -> SecretOut:
    """A new secret, returned once; the previous one works until `previous_secret_valid_until`."""
    with unit_of_work(request) as (context, db):
        client = _own_client(db, member, client_id)
        secret = client_secrets.rotate_secret(context, db, client, member, client_of(request).ip)
        status = client_secrets.secret_status(db, client)
        return SecretOut(
            client_id=client.client_id,
            client_secret=secret,
            previous_secret_valid_until=status.previous_valid_until if status else None,
        )


@router.post(
    "/clients/{client_id}/change-requests",
    response_model=RequestOut,
    status_code=201,
    tags=["clients"],
)
def request_change(
    request: Request,
    client_id: str,
    body: ClientMetadata,
    member: Changer,
    background: BackgroundTasks,
) -> RequestOut:
    """Ask to change a live client; it keeps working as it is until staff approve."""
    _one_contact(body)
    with unit_of_work(request) as (context, db):
        client = _own_client(db, member, client_id)
        item, mail_ids = workflow.submit(
            context, db, member, body.to_details(), changing=client, ip=client_of(request).ip
        )
        result = _request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.get(
    "/clients/{client_id}/access-list", response_model=list[AccessEntryOut], tags=["access lists"]
)
def get_access_list(request: Request, client_id: str, member: Reader) -> list[AccessEntryOut]:
    with unit_of_work(request) as (_context, db):
        return _access_out(db, _own_client(db, member, client_id))


@router.post(
    "/clients/{client_id}/access-list",
    response_model=list[AccessEntryOut],
    status_code=201,
    tags=["access lists"],
)
def add_to_access_list(
    request: Request,
    client_id: str,
    body: MemberReference,
    member: Changer,
    background: BackgroundTasks,
) -> list[AccessEntryOut]:
    """Invite a member; they must accept from their account page before the grant works."""
    result, context, mail_ids = _add_access(request, client_id, body.member, member, False)
    deliver_later(background, context, mail_ids)
    return result


@router.delete(
    "/clients/{client_id}/access-list/{reference}",
    response_model=list[AccessEntryOut],
    tags=["access lists"],
)
def remove_from_access_list(
    request: Request, client_id: str, reference: str, member: Changer
) -> list[AccessEntryOut]:
    return _remove_access(request, client_id, reference, member, by_staff=False)


# ----- staff ---------------------------------------------------------------------------


def _staff_summaries(db: Session, items: list[RegistrationRequest]) -> list[StaffRequestSummary]:
    """Requesters and clients in one query each, however many requests are listed."""
    requesters = members.by_ids(db, {item.requester_id for item in items})
    return [
        StaffRequestSummary(
            **out.model_dump(),
            requester_email=requesters[item.requester_id].email,
            requester_customer_id=requesters[item.requester_id].customer_id,
            overdue=request_queue.is_overdue(item),
        )
        for item, out in zip(items, _requests_out(db, items), strict=True)
    ]


def _staff_request_out(
    context: AppContext, db: Session, item: RegistrationRequest
) -> StaffRequestOut:
    review = workflow.review_request(db, context.settings, item)
    checks = [
        CheckOut(level="blocked", field=api_field(k), message=m)
        for k, m in client_details.without_summaries(review.errors).items()
    ] + [
        CheckOut(level="warning", field=api_field(k), message=m)
        for k, messages in review.warnings.items()
        for m in messages
    ]
    return StaffRequestOut(**_staff_summaries(db, [item])[0].model_dump(), checks=checks)


@router.get("/staff/requests", response_model=StaffRequestPage, tags=["staff"])
def staff_queue(
    request: Request, staff: StaffReader, page: int = 1, status: str = workflow.SUBMITTED
) -> StaffRequestPage:
    """The review queue, earliest due first (a request's checks: GET it by id)."""
    with unit_of_work(request) as (_context, db):
        rows, info = request_queue.staff_queue(db, page, [s.strip() for s in status.split(",")])
        return StaffRequestPage(items=_staff_summaries(db, rows), **_page_info(info))


@router.get("/staff/requests/{request_id}", response_model=StaffRequestOut, tags=["staff"])
def staff_get_request(request: Request, request_id: int, staff: StaffReader) -> StaffRequestOut:
    with unit_of_work(request) as (context, db):
        item = db.get(RegistrationRequest, request_id)
        if item is None:
            raise ApiError(404, "not_found", f"there is no request #{request_id}")
        return _staff_request_out(context, db, item)


@router.post(
    "/staff/requests/{request_id}/{decision}", response_model=StaffRequestOut, tags=["staff"]
)
def staff_decide(
    request: Request,
    request_id: int,
    decision: str,
    body: StaffMessage,
    staff: StaffChanger,
    background: BackgroundTasks,
) -> StaffRequestOut:
    """`decision` is approve (message optional), reject or request-changes (message required)."""
    with unit_of_work(request) as (context, db):
        item = db.get(RegistrationRequest, request_id)
        if item is None:
            raise ApiError(404, "not_found", f"there is no request #{request_id}")
        if decision not in workflow.DECISIONS:
            raise ApiError(404, "not_found", "decide with approve, reject or request-changes")
        ip = client_of(request).ip
        mail_ids = workflow.decide(context, db, item, staff, decision, body.message, ip)
        result = _staff_request_out(context, db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.get("/staff/clients", response_model=ClientPage, tags=["staff"])
def staff_clients(request: Request, staff: StaffReader, page: int = 1) -> ClientPage:
    with unit_of_work(request) as (_context, db):
        rows, info = clients_service.all_clients(db, page)
        return ClientPage(items=_clients_out(db, rows), **_page_info(info))


def _set_disabled(request: Request, client_id: str, staff: Member, disabled: bool) -> ClientOut:
    with unit_of_work(request) as (_context, db):
        client = _any_client(db, client_id)
        clients_service.set_disabled(db, client, disabled, staff, client_of(request).ip)
        return _client_out(db, client)


@router.post("/staff/clients/{client_id}/disable", response_model=ClientOut, tags=["staff"])
def staff_disable_client(request: Request, client_id: str, staff: StaffChanger) -> ClientOut:
    """Stop the client: it can no longer sign anyone in."""
    return _set_disabled(request, client_id, staff, True)


@router.post("/staff/clients/{client_id}/enable", response_model=ClientOut, tags=["staff"])
def staff_enable_client(request: Request, client_id: str, staff: StaffChanger) -> ClientOut:
    return _set_disabled(request, client_id, staff, False)


@router.post(
    "/staff/clients/{client_id}/access-list",
    response_model=list[AccessEntryOut],
    status_code=201,
    tags=["staff"],
)
def staff_access_add(
    request: Request, client_id: str, body: MemberReference, staff: StaffChanger
) -> list[AccessEntryOut]:
    """Staff additions are active at once: staff act on the member's own request."""
    return _add_access(request, client_id, body.member, staff, True)[0]


@router.delete(
    "/staff/clients/{client_id}/access-list/{reference}",
    response_model=list[AccessEntryOut],
    tags=["staff"],
)
def staff_access_remove(
    request: Request, client_id: str, reference: str, staff: StaffChanger
) -> list[AccessEntryOut]:
    return _remove_access(request, client_id, reference, staff, by_staff=True)
