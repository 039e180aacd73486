"""RFC 6750 on the wire, for the ASGI middleware and the FastAPI dependency: reading the
`Authorization: Bearer` header (§2.1) and answering a refusal (§3) with its
`WWW-Authenticate` challenge and a JSON body in the service's error shape
(PRODUCT.md §4: `status`, `status_reason`, `error`, `error_description`, `error_uri`)."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pitpass_kit.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MissingScope,
    OAuthError,
    TemporarilyUnavailable,
)

STATUS_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    503: "Service Unavailable",
}
NO_TOKEN = "this resource needs an access token: send Authorization: Bearer <token>"  # noqa: S105

# RFC 6750 §3: error_description and scope are %x20-21 / %x23-5B / %x5D-7E (printable
# ASCII without '"' and '\'); a header is latin-1 on the wire anyway.
_OUTSIDE_HEADER = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def header_safe(text: str) -> str:
    """`text` within RFC 6750 §3's characters: compatibility forms first ("…" is "..."),
    anything still outside them dropped."""
    return _OUTSIDE_HEADER.sub("", unicodedata.normalize("NFKD", text))


def bearer_token(authorization: Iterable[str]) -> str | None:
    """The token of the request's `Authorization` header values; None when there are no
    Bearer credentials (RFC 6750 §3.1: then the answer carries no error code);
    InvalidRequest when they are malformed or repeated. Tokens in a query or a form
    (§2.2, §2.3) are not looked for."""
    values = list(authorization)
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header", status=400)
    if not values:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":  # auth-schemes are case-insensitive (RFC 9110 §11.1)
        return None
    token = token.strip()
    if not token or " " in token:
        raise InvalidRequest("the Authorization header is not 'Bearer <token>'", status=400)
    return token


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, object]

    def content(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


def refusal(error: OAuthError | None, issuer: str, realm: str | None = None) -> Answer | None:
    """The answer to a request refused with `error` (None: it carried no token at all);
    None for an error that is not the request's (a misconfigured verifier): re-raise it."""
    challenge = [f'realm="{header_safe(realm)}"'] if realm is not None else []
    if error is None:
        status, code, description = 401, "invalid_token", NO_TOKEN
    else:
        code, description = error.error, error.description
        if isinstance(error, InsufficientScope):
            status = 403
        elif isinstance(error, InvalidToken):
            status = 401
        elif isinstance(error, InvalidRequest):
            status = 400
        elif isinstance(error, TemporarilyUnavailable):
            status = 503
        else:
            return None
        if status != 503:
            challenge.append(f'error="{code}"')
            challenge.append(f'error_description="{header_safe(description)}"')
        if isinstance(error, MissingScope):
            challenge.append(f'scope="{header_safe(" ".join(error.required))}"')
    headers = {"Cache-Control": "no-store"}
    if status != 503:
        headers["WWW-Authenticate"] = " ".join(["Bearer", ", ".join(challenge)]).strip()
    body: dict[str, object] = {
        "status": status,
        "status_reason": STATUS_REASONS[status],
        "error": code,
        "error_description": description,
        "error_uri": f"{issuer.rstrip('/')}/book/errors.html#{code}",
    }
    return Answer(status, headers, body)
