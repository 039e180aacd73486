"""The API's error answers: one JSON shape, and service errors mapped by their kind."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from pitpass.api.schemas import (
    ErrorBody,
    FieldError,
    MemberReference,
    StaffMessage,
    api_field,
)
from pitpass.services import (
    client_details,
)
from pitpass.services.errors import ErrorKind, ServiceError

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad input; `fields` names each field at fault"},
    401: {"model": ErrorBody, "description": "Not signed in"},
    403: {"model": ErrorBody, "description": "Missing X-CSRF-Token, or not allowed"},
    404: {"model": ErrorBody, "description": "No such thing of yours"},
    409: {"model": ErrorBody, "description": "Not possible in the current state"},
}


THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "Too many attempts; retry after Retry-After seconds"}
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        fields: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.body = ErrorBody(error=error, error_description=description, fields=fields or [])
        self.headers = headers

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(), status_code=self.status, headers=self.headers)


# Fields of the API's own bodies: RFC 7591's metadata error codes do not name them.
BODY_FIELDS = frozenset(MemberReference.model_fields) | frozenset(StaffMessage.model_fields)


def from_service_error(error: ServiceError) -> ApiError:
    """A conflict → 409; throttled → 429 with Retry-After; a field error → 400 with
    the RFC 7591 §3.2.2 code that fits."""
    if error.kind is ErrorKind.CONFLICT:
        return ApiError(409, "conflict", " ".join(error.errors.values()))
    if error.kind is ErrorKind.THROTTLED:
        return ApiError(
            429,
            "too_many_requests",
            " ".join(error.errors.values()),
            headers={"Retry-After": str(error.retry_after or 1)},
        )
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
