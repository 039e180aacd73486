"""OAuth errors on the wire, exactly as PRODUCT.md §4 and the reference book define them.

A JSON body `{status, status_reason, error, error_description, error_uri}`
when the client or its redirect URI cannot be trusted (and at /token), or a
redirect carrying `error`, `error_description`, `error_uri` and `state` when
they can. Each `error_uri` lands on the error's entry in the developer book.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from starlette.responses import JSONResponse, RedirectResponse

# error → (HTTP status, status_reason); invalid_client's reason is the reference's own.
STATUS = {
    "access_denied": (401, "Unauthorized"),
    "insufficient_scope": (403, "Forbidden"),
    "invalid_client": (403, "Unauthorized"),
    "invalid_grant": (400, "Bad Request"),
    "invalid_request": (400, "Bad Request"),
    "invalid_scope": (400, "Bad Request"),
    "invalid_token": (401, "Unauthorized"),
    "unauthorized_client": (400, "Bad Request"),
    "unsupported_grant_type": (400, "Bad Request"),
    "unsupported_response_type": (400, "Bad Request"),
    "server_error": (500, "Internal Server Error"),
    "temporarily_unavailable": (503, "Service Unavailable"),
}

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


class OAuthError(Exception):
    def __init__(self, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        if error not in STATUS:
            raise ValueError(f"unknown OAuth error {error!r}")
        self.error = error
        self.description = description
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return STATUS[self.error][0]


def storage_unavailable() -> OAuthError:
    return OAuthError("temporarily_unavailable", "storage is unavailable; retry shortly")


def error_uri(issuer: str, error: str) -> str:
    return f"{issuer}/book/errors.html#{error}"


def _error_body(
    issuer: str, status: int, reason: str, error: str, description: str
) -> dict[str, object]:
    return {
        "status": status,
        "status_reason": reason,
        "error": error,
        "error_description": description,
        "error_uri": error_uri(issuer, error),
    }


def json_error(issuer: str, error: OAuthError) -> JSONResponse:
    status, reason = STATUS[error.error]
    body = _error_body(issuer, status, reason, error.error, error.description)
    headers = NO_STORE | error.headers
    if error.error == "invalid_token":
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{error.description}"'
        )
    return JSONResponse(body, status_code=status, headers=headers)


def method_not_allowed(issuer: str, allowed: Iterable[str]) -> JSONResponse:
    """A protocol endpoint asked with another method: HTTP 405 with `Allow` (RFC 9110
    §15.5.6), in PRODUCT.md §4's error shape rather than a page or a 500."""
    allow = ", ".join(sorted(allowed))
    description = f"this endpoint answers {allow} only"
    body = _error_body(issuer, 405, "Method Not Allowed", "invalid_request", description)
    return JSONResponse(body, status_code=405, headers=NO_STORE | {"Allow": allow})


def with_query(uri: str, params: dict[str, str]) -> str:
    """Append parameters, keeping a registered query string (RFC 6749 §3.1.2)."""
    separator = "&" if "?" in uri else "?"
    return f"{uri}{separator}{urlencode(params)}"


def redirect_error(
    issuer: str, redirect_uri: str, error: OAuthError, state: str | None
) -> RedirectResponse:
    params = {
        "error": error.error,
        "error_description": error.description,
        "error_uri": error_uri(issuer, error.error),
    }
    if state is not None:
        params["state"] = state
    params["iss"] = issuer  # RFC 9207 §2: on errors too
    return RedirectResponse(with_query(redirect_uri, params), status_code=302)
