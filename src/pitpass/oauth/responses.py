"""OAuth errors on the wire, exactly as PRODUCT.md §4 and the reference book define them.

A JSON body `{status, status_reason, error, error_description, error_uri}`
when the client or its redirect URI cannot be trusted (and at /token), or a
redirect carrying `error`, `error_description`, `error_uri` and `state` when
they can. The table of errors is the policy's (core/policy.py).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from pitpass.core.policy import ERRORS, OAuthError, error_uri
from pitpass.http.json_body import FastJSONResponse
from pitpass.oauth.runtime import OAuthRuntime, runtime_of
from pitpass.services.outages import UNAVAILABLE_ERRORS, description, unavailable_kind

log = logging.getLogger("pitpass.oauth")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, OAuthRuntime], Awaitable[Response]]


def storage_unavailable(error: BaseException) -> OAuthError:
    return OAuthError("temporarily_unavailable", description(error))


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


# RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (printable ASCII without
# '"' and '\\'), and a header must be latin-1 on the wire anyway.
_HEADER_SAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
BEARER_ERRORS = frozenset({"invalid_token", "insufficient_scope"})


def header_safe(text: str) -> str:
    """`text` within RFC 6750 §3's characters: compatibility forms first ("…" is "..."),
    anything still outside them is dropped."""
    return _HEADER_SAFE.sub("", unicodedata.normalize("NFKD", text))


def www_authenticate(error: OAuthError) -> str:
    """The Bearer challenge of a protected resource (RFC 6750 §3)."""
    return f'Bearer error="{error.error}", error_description="{header_safe(error.description)}"'


def json_error(issuer: str, error: OAuthError) -> JSONResponse:
    rule = ERRORS[error.error]
    body = _error_body(issuer, rule.status, rule.reason, error.error, error.description)
    headers = NO_STORE | error.headers
    if error.error in BEARER_ERRORS:
        headers["WWW-Authenticate"] = www_authenticate(error)
    return FastJSONResponse(body, status_code=rule.status, headers=headers)


def method_not_allowed(issuer: str, allowed: Iterable[str]) -> JSONResponse:
    """A protocol endpoint asked with another method: HTTP 405 with `Allow` (RFC 9110
    §15.5.6), in PRODUCT.md §4's error shape rather than a page or a 500."""
    allow = ", ".join(sorted(allowed))
    description = f"this endpoint answers {allow} only"
    body = _error_body(issuer, 405, "Method Not Allowed", "invalid_request", description)
    return FastJSONResponse(body, status_code=405, headers=NO_STORE | {"Allow": allow})


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


def protocol_endpoint(handler: Handler) -> Endpoint:
    """A plain Starlette endpoint whose OAuthError, or an unavailable database or Redis
    (services/outages.py), becomes the JSON error shape of PRODUCT.md §4."""

    async def endpoint(request: Request) -> Response:
        runtime = runtime_of(request)
        try:
            return await handler(request, runtime)
        except OAuthError as error:
            return json_error(runtime.issuer, error)
        except UNAVAILABLE_ERRORS as error:
            log.warning(
                "protocol endpoint: %s unavailable",
                unavailable_kind(error),
                extra={"error": type(error).__name__},
            )
            return json_error(runtime.issuer, storage_unavailable(error))

    endpoint.__name__ = handler.__name__
    return endpoint
