"""The staff endpoints of `/api/v1`: the review queue, decisions, every client."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from sqlalchemy.orm import Session

from pitpass.api.errors import ERRORS, ApiError
from pitpass.api.schemas import (
    AccessEntryOut,
    CheckOut,
    ClientOut,
    ClientPage,
    MemberReference,
    StaffMessage,
    StaffRequestOut,
    StaffRequestPage,
    StaffRequestSummary,
    api_field,
)
from pitpass.api.shared import (
    StaffChanger,
    StaffReader,
    add_access,
    any_client,
    client_out,
    clients_out,
    page_info,
    remove_access,
    requests_out,
    unit_of_work,
)
from pitpass.db.models import Member, RegistrationRequest
from pitpass.http.caller import client_of
from pitpass.http.context import deliver_later
from pitpass.http.row_ids import row_id
from pitpass.services import (
    client_details,
    members,
    request_queue,
    workflow,
)
from pitpass.services import clients as clients_service
from pitpass.services.context import AppContext

router = APIRouter(responses=ERRORS)


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
        for item, out in zip(items, requests_out(db, items), strict=True)
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
        return StaffRequestPage(items=_staff_summaries(db, rows), **page_info(info))


@router.get(
    f"/staff/requests/{row_id('request_id')}", response_model=StaffRequestOut, tags=["staff"]
)
def staff_get_request(request: Request, request_id: int, staff: StaffReader) -> StaffRequestOut:
    with unit_of_work(request) as (context, db):
        item = db.get(RegistrationRequest, request_id)
        if item is None:
            raise ApiError(404, "not_found", f"there is no request #{request_id}")
        return _staff_request_out(context, db, item)


@router.post(
    f"/staff/requests/{row_id('request_id')}/{{decision}}",
    response_model=StaffRequestOut,
    tags=["staff"],
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
        return ClientPage(items=clients_out(db, rows), **page_info(info))


def _set_disabled(request: Request, client_id: str, staff: Member, disabled: bool) -> ClientOut:
    with unit_of_work(request) as (_context, db):
        client = any_client(db, client_id)
        clients_service.set_disabled(db, client, disabled, staff, client_of(request).ip)
        return client_out(db, client)


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
    return add_access(request, client_id, body.member, staff, True)[0]


@router.delete(
    "/staff/clients/{client_id}/access-list/{reference}",
    response_model=list[AccessEntryOut],
    tags=["staff"],
)
def staff_access_remove(
    request: Request, client_id: str, reference: str, staff: StaffChanger
) -> list[AccessEntryOut]:
    return remove_access(request, client_id, reference, staff, by_staff=True)
