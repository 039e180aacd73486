"""`POST /oauth2/token`: the hot path (PRODUCT.md §4, RFC 6749 §3.2).

A plain Starlette endpoint: no dependency injection, no ORM. Three grants,
one response shape (grants/).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pitpass import metrics
from pitpass.core import policy
from pitpass.core.policy import OAuthError
from pitpass.oauth.client_auth import authenticate_client
from pitpass.oauth.grants.authorization_code import authorization_code_grant
from pitpass.oauth.grants.password_limited import password_limited_grant
from pitpass.oauth.grants.refresh_token import refresh_token_grant
from pitpass.oauth.requests import Caller, caller_of, read_form
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage import STORAGE_UNAVAILABLE_ERRORS
from pitpass.storage.records import ClientRecord

Grant = Callable[[OAuthRuntime, ClientRecord, dict[str, str], Caller], Awaitable[JSONResponse]]

GRANTS: dict[str, Grant] = {
    policy.AUTHORIZATION_CODE: authorization_code_grant,
    policy.REFRESH_TOKEN: refresh_token_grant,
    policy.PASSWORD_LIMITED: password_limited_grant,
}
assert set(GRANTS) == set(policy.GRANT_TYPES), "every grant of the policy has a module"


async def token(request: Request, runtime: OAuthRuntime) -> Response:
    grant_type = None
    try:
        params = await read_form(request)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "grant_type missing")
        grant = GRANTS.get(grant_type)
        if grant is None:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
        caller = caller_of(request)
        client = await authenticate_client(
            runtime, params, request.headers.get("authorization"), caller
        )
        response = await grant(runtime, client, params, caller)
    except Exception as error:
        metrics.count_grant(grant_type, _outcome(error))
        raise
    metrics.count_grant(grant_type, metrics.ISSUED)
    return response


def _outcome(error: Exception) -> str:
    """The error code the client is answered (protocol_endpoint turns the error into it)."""
    if isinstance(error, OAuthError):
        return error.error
    if isinstance(error, STORAGE_UNAVAILABLE_ERRORS):
        return "temporarily_unavailable"
    return "server_error"
