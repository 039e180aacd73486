"""The registration JSON API, `/api/v1` (issue #3, item 4; OpenAPI at /docs).

Callers are signed-in members (the session cookie of the web pages). Every
request that changes something must also carry the `X-CSRF-Token` header
(from `GET /api/v1/me`): a cross-site page cannot set it without CORS, which
Pitpass never grants.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request

from pitpass.api import staff
from pitpass.api.errors import ERRORS, THROTTLED, ApiError
from pitpass.api.schemas import (
    AccessEntryOut,
    ClientMetadata,
    ClientOut,
    ClientPage,
    FieldError,
    MemberReference,
    MeOut,
    RequestOut,
    RequestPage,
    SecretOut,
)
from pitpass.api.shared import (
    Changer,
    Reader,
    access_out,
    add_access,
    client_out,
    clients_out,
    own_client,
    own_request,
    page_info,
    remove_access,
    request_out,
    requests_out,
    unit_of_work,
)
from pitpass.http.caller import client_of
from pitpass.http.context import deliver_later
from pitpass.http.csrf import csrf_token
from pitpass.http.row_ids import row_id
from pitpass.services import (
    client_secrets,
    request_queue,
    workflow,
)
from pitpass.services import clients as clients_service
from pitpass.services.client_secrets import RevealRefused

router = APIRouter(prefix="/api/v1", responses=ERRORS)


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
        return RequestPage(items=requests_out(db, rows), **page_info(info))


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
        result = request_out(db, item)
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


@router.get(f"/requests/{row_id('request_id')}", response_model=RequestOut, tags=["requests"])
def get_request(request: Request, request_id: int, member: Reader) -> RequestOut:
    with unit_of_work(request) as (_context, db):
        return request_out(db, own_request(db, member, request_id))


@router.put(f"/requests/{row_id('request_id')}", response_model=RequestOut, tags=["requests"])
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
        item = own_request(db, member, request_id)
        mail_ids = workflow.resubmit(
            context, db, item, member, body.to_details(), client_of(request).ip
        )
        result = request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.post(
    f"/requests/{row_id('request_id')}/withdraw", response_model=RequestOut, tags=["requests"]
)
def withdraw_request(
    request: Request, request_id: int, member: Changer, background: BackgroundTasks
) -> RequestOut:
    with unit_of_work(request) as (context, db):
        item = own_request(db, member, request_id)
        mail_ids = workflow.withdraw(context, db, item, member, client_of(request).ip)
        result = request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.get("/clients", response_model=ClientPage, tags=["clients"])
def list_clients(request: Request, member: Reader, page: int = 1) -> ClientPage:
    with unit_of_work(request) as (_context, db):
        rows, info = clients_service.clients_of(db, member, page)
        return ClientPage(items=clients_out(db, rows), **page_info(info))


@router.get("/clients/{client_id}", response_model=ClientOut, tags=["clients"])
def get_client(request: Request, client_id: str, member: Reader) -> ClientOut:
    with unit_of_work(request) as (_context, db):
        return client_out(db, own_client(db, member, client_id))


@router.post("/clients/{client_id}/secret/reveal", response_model=SecretOut, tags=["clients"])
def reveal_secret(request: Request, client_id: str, member: Changer) -> SecretOut:
    """The issued secret, exactly once (or through the emailed link, whichever comes first)."""
    with unit_of_work(request) as (context, db):
        client = own_client(db, member, client_id)
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
        client = own_client(db, member, client_id)
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
    """Ask to change a live client; it keeps working as it is until staff approve.

    The client type cannot change (400 `invalid_client_metadata`, field `client_type`):
    request a new client instead."""
    _one_contact(body)
    with unit_of_work(request) as (context, db):
        client = own_client(db, member, client_id)
        item, mail_ids = workflow.submit(
            context, db, member, body.to_details(), changing=client, ip=client_of(request).ip
        )
        result = request_out(db, item)
    deliver_later(background, context, mail_ids)
    return result


@router.get(
    "/clients/{client_id}/access-list", response_model=list[AccessEntryOut], tags=["access lists"]
)
def get_access_list(request: Request, client_id: str, member: Reader) -> list[AccessEntryOut]:
    with unit_of_work(request) as (_context, db):
        return access_out(db, own_client(db, member, client_id), to_staff=False)


@router.post(
    "/clients/{client_id}/access-list",
    response_model=list[AccessEntryOut],
    status_code=201,
    tags=["access lists"],
    responses=THROTTLED,
)
def add_to_access_list(
    request: Request,
    client_id: str,
    body: MemberReference,
    member: Changer,
    background: BackgroundTasks,
) -> list[AccessEntryOut]:
    """Invite a member; they must accept from their account page before the grant works."""
    result, context, mail_ids = add_access(request, client_id, body.member, member, False)
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
    return remove_access(request, client_id, reference, member, by_staff=False)


# After the member endpoints, as before the split.
router.include_router(staff.router)
