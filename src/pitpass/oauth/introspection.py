"""`POST /oauth2/introspect` (RFC 7662), for confidential clients: resource servers
authenticate as one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pitpass.core import policy
from pitpass.core.policy import OAuthError
from pitpass.db.models import utcnow
from pitpass.http.json_body import FastJSONResponse
from pitpass.oauth.client_auth import authenticate_client
from pitpass.oauth.requests import caller_of, read_form
from pitpass.oauth.responses import NO_STORE
from pitpass.oauth.runtime import OAuthRuntime


def _inactive() -> Response:
    """RFC 7662 §2.2: whatever the reason, an unusable token is only `active: false`."""
    return FastJSONResponse({"active": False}, headers=NO_STORE)


async def introspect(request: Request, runtime: OAuthRuntime) -> Response:
    form = await read_form(request)
    client = await authenticate_client(
        runtime, form, request.headers.get("authorization"), caller_of(request)
    )
    if not client.is_confidential:
        raise OAuthError("invalid_client", "introspection is for confidential clients")
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token missing")
    now, store = utcnow(), runtime.store
    if token.count(".") == 2:
        claims = runtime.signer.verify(token, now)
        if claims is None:
            return _inactive()
        async with store.connection() as db:
            session = await store.liveness(db, str(claims.get("session_id")))
        if session is None or policy.why_not_live(session, now) is not None:
            return _inactive()
        return FastJSONResponse(
            {"active": True, "token_type": "Bearer", **claims}, headers=NO_STORE
        )
    async with store.connection() as db:
        state = await store.refresh_state(db, runtime.refresh_hash(token))
    if state is None or state.session.client_pk != client.pk:
        return _inactive()
    usable = state.used_at is None and state.expires_at > now
    if not usable or not policy.session_is_live(state.session, now):
        return _inactive()
    return FastJSONResponse(
        {
            "active": True,
            "token_type": "refresh_token",
            "client_id": client.client_id,
            "scope": state.session.scope,
            "exp": int(state.expires_at.timestamp()),
            "iat": int(state.created_at.timestamp()),
            "session_id": state.session.session_id,
        },
        headers=NO_STORE,
    )
