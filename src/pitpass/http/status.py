"""What an error status is called: the error page's title and the API's `error` code.

Statuses not listed (400 from a malformed form, say) share OTHER; request
validation errors have their own wording (MALFORMED), whatever their status.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusText:
    title: str  # heading of the error page
    api_error: str  # `error` of the API's error body (api/schemas.py ErrorBody)


STATUS_TEXT: dict[int, StatusText] = {
    404: StatusText("Page not found", "not_found"),
    405: StatusText("Method not allowed", "method_not_allowed"),
    413: StatusText("Request too large", "request_too_large"),
    503: StatusText("Temporarily unavailable", "temporarily_unavailable"),
}
OTHER = StatusText("Request refused", "error")
MALFORMED = StatusText("Bad request", "invalid_request")


def status_text(status: int) -> StatusText:
    return STATUS_TEXT.get(status, OTHER)
