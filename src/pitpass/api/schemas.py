"""JSON shapes of the registration API.

RFC 7591 metadata names where they fit (`client_name`, `client_uri`,
`redirect_uris`, `contacts`, `grant_types`, `token_endpoint_auth_method`),
plus Pitpass's own fields (`client_type`, `description`, `developer_name`,
`audiences`).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from pitpass.core import policy
from pitpass.core.client_names import MAX_NAME_LENGTH as MAX_CLIENT_NAME_LENGTH
from pitpass.core.redirect_uris import MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS
from pitpass.db.models import Client, RegistrationRequest
from pitpass.services.client_details import (
    MAX_DESCRIPTION_LENGTH,
    MAX_DEVELOPER_NAME_LENGTH,
    MAX_DEVELOPER_URL_LENGTH,
    ClientDetails,
    name_field,
)
from pitpass.services.client_secrets import SecretStatus
from pitpass.services.members import MAX_EMAIL_LENGTH

# Our field names → the API's (RFC 7591) names, for error reports.
API_FIELD_NAMES = {
    "flows": "grant_types",
    "developer_url": "client_uri",
    "developer_email": "contacts",
}


DETAIL_FIELDS = [f.name for f in fields(ClientDetails)]


def api_field(internal: str) -> str:
    """`redirect_uris.2` → `redirect_uris[2]`; `developer_url` → `client_uri`."""
    return name_field(internal, API_FIELD_NAMES, lambda name, index: f"{name}[{index}]")


def enforced(**schema: Any) -> dict[str, Any]:
    """What the services enforce, declared in the OpenAPI document from their own
    constants. Pydantic does not check it a second time: a request past it gets the
    service's message for that field (services/client_details.py), one rule in one place."""
    return schema


class ClientMetadata(BaseModel):
    """What a developer asks for: the fields of a client request (see the developer book)."""

    client_name: str = Field(
        "",
        examples=["My League Manager"],
        json_schema_extra=enforced(maxLength=MAX_CLIENT_NAME_LENGTH),
    )
    client_type: str = Field(
        "",
        examples=[policy.CONFIDENTIAL_CLIENT_TYPE],
        description=", ".join(policy.CLIENT_TYPES[:-1]) + f" or {policy.CLIENT_TYPES[-1]}",
        json_schema_extra=enforced(enum=list(policy.CLIENT_TYPES)),
    )
    grant_types: list[str] = Field(
        default_factory=list,
        examples=[["authorization_code"]],
        description="authorization_code and/or password_limited (server-side only)",
        json_schema_extra=enforced(
            items={"type": "string", "enum": list(policy.CLIENT_FLOWS)},
            maxItems=len(policy.CLIENT_FLOWS),
            uniqueItems=True,
        ),
    )
    description: str = Field(
        "",
        examples=["league manager website"],
        json_schema_extra=enforced(maxLength=MAX_DESCRIPTION_LENGTH),
    )
    developer_name: str = Field(
        "",
        examples=["My Racing League Inc."],
        json_schema_extra=enforced(maxLength=MAX_DEVELOPER_NAME_LENGTH),
    )
    client_uri: str = Field(
        "",
        examples=["https://www.myleague.com"],
        description="the developer's URL, shown to members",
        json_schema_extra=enforced(maxLength=MAX_DEVELOPER_URL_LENGTH),
    )
    contacts: list[str] = Field(
        default_factory=list,
        examples=[["developer@example.com"]],
        description="one email: the developer's",
        json_schema_extra=enforced(
            items={"type": "string", "maxLength": MAX_EMAIL_LENGTH}, minItems=1, maxItems=1
        ),
    )
    redirect_uris: list[str] = Field(
        default_factory=list,
        examples=[["https://www.myleague.com/oauth/callback"]],
        json_schema_extra=enforced(
            items={"type": "string", "maxLength": MAX_REDIRECT_URI_LENGTH},
            maxItems=MAX_REDIRECT_URIS,
        ),
    )
    audiences: list[str] = Field(default_factory=list, examples=[["data-server"]])

    def to_details(self) -> ClientDetails:
        values: dict[str, Any] = {
            name: getattr(self, API_FIELD_NAMES.get(name, name)) for name in DETAIL_FIELDS
        }
        # RFC 7591 `contacts` is a list; a client has one developer email.
        values["developer_email"] = self.contacts[0] if self.contacts else ""
        return ClientDetails(**values)

    @classmethod
    def of(cls, details: ClientDetails) -> ClientMetadata:
        values: dict[str, Any] = {
            API_FIELD_NAMES.get(k, k): v for k, v in details.as_dict().items()
        }
        values["contacts"] = [details.developer_email] if details.developer_email else []
        return cls(**values)


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every API error: a code, a sentence, and the fields at fault."""

    error: str = Field(examples=["invalid_redirect_uri"])
    error_description: str
    fields: list[FieldError] = Field(default_factory=list)


class RequestOut(ClientMetadata):
    id: int
    status: str
    kind: str = Field(description="new or change")
    client_id: str | None
    token_endpoint_auth_method: str
    submitted_at: datetime
    due_at: datetime
    decided_at: datetime | None
    staff_message: str | None

    @classmethod
    def of_request(cls, item: RegistrationRequest, client: Client | None) -> RequestOut:
        metadata = ClientMetadata.of(ClientDetails.of(item)).model_dump()
        return cls(
            **metadata,
            id=item.id,
            status=item.status,
            kind="change" if item.is_change else "new",
            client_id=client.client_id if client else None,
            token_endpoint_auth_method=auth_method(item.client_type),
            submitted_at=item.submitted_at,
            due_at=item.due_at,
            decided_at=item.decided_at,
            staff_message=item.staff_message,
        )


class CheckOut(BaseModel):
    level: str = Field(description="blocked or warning")
    field: str
    message: str


class StaffRequestSummary(RequestOut):
    requester_email: str
    requester_customer_id: int
    overdue: bool


class StaffRequestOut(StaffRequestSummary):
    checks: list[CheckOut] = Field(description="the automatic checks: blocked or warning")


class SecretStatusOut(BaseModel):
    created_at: datetime | None
    last_rotated_at: datetime | None
    previous_valid_until: datetime | None
    reveal_pending_until: datetime | None
    viewed_at: datetime | None

    @classmethod
    def of(cls, status: SecretStatus) -> SecretStatusOut:
        # The same names but one; fields the API does not show (revealed_via) are ignored.
        return cls(viewed_at=status.revealed_at, **asdict(status))


class ClientOut(ClientMetadata):
    client_id: str
    token_endpoint_auth_method: str
    disabled: bool
    created_at: datetime
    secret: SecretStatusOut | None

    @classmethod
    def of_client(cls, client: Client, status: SecretStatus | None) -> ClientOut:
        return cls(
            **ClientMetadata.of(ClientDetails.of(client)).model_dump(),
            client_id=client.client_id,
            token_endpoint_auth_method=auth_method(client.client_type),
            disabled=client.is_disabled,
            created_at=client.created_at,
            secret=SecretStatusOut.of(status) if status else None,
        )


def auth_method(client_type: str) -> str:
    """RFC 7591 §2: public clients authenticate with nothing but PKCE."""
    return "client_secret_post" if policy.is_confidential(client_type) else "none"


class SecretOut(BaseModel):
    """Shown once: store it, it cannot be read again."""

    client_id: str
    client_secret: str
    previous_secret_valid_until: datetime | None = None


class AccessEntryOut(BaseModel):
    email: str | None = Field(description="shown to staff only")
    customer_id: int
    display_name: str | None = Field(
        description="shown to staff, and to the developer once the member accepted"
    )
    state: str = Field(description="active or pending (waiting for the member to accept)")


class MemberReference(BaseModel):
    member: str = Field(examples=["racer@example.com"], description="email or customer id")


class StaffMessage(BaseModel):
    message: str = ""


class MeOut(BaseModel):
    email: str
    display_name: str
    customer_id: int
    staff: bool
    csrf_token: str = Field(description="send it back as the X-CSRF-Token header on changes")


class RequestPage(BaseModel):
    items: list[RequestOut]
    page: int
    per_page: int
    total: int


class StaffRequestPage(BaseModel):
    items: list[StaffRequestSummary]
    page: int
    per_page: int
    total: int


class ClientPage(BaseModel):
    items: list[ClientOut]
    page: int
    per_page: int
    total: int
