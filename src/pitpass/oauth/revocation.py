"""`POST /oauth2/revoke` (RFC 7009): revoking either token signs out its whole session."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pitpass.core.policy import OAuthError, SignOutReason
from pitpass.db.models import utcnow
from pitpass.oauth.client_auth import authenticate_client
from pitpass.oauth.requests import caller_of, read_form
from pitpass.oauth.responses import NO_STORE
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage.records import SessionsToSignOut


async def revoke(request: Request, runtime: OAuthRuntime) -> Response:
    form = await read_form(request)
    client = await authenticate_client(
        runtime, form, request.headers.get("authorization"), caller_of(request)
    )
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token missing")
    now = utcnow()
    claims = runtime.signer.verify(token, now) if token.count(".") == 2 else None
    session_id: str | None = None
    issued_to_caller = True
    async with runtime.store.connection() as db:
        if claims is not None:
            session_id = str(claims.get("session_id"))
            issued_to_caller = claims.get("client_id") == client.client_id
        elif (
            state := await runtime.store.refresh_state(db, runtime.refresh_hash(token))
        ) is not None:
            session_id = state.session.session_id
            issued_to_caller = state.session.client_pk == client.pk
        if not issued_to_caller:
            raise OAuthError("invalid_grant", "this token was issued to another client")
        if session_id is not None:  # §2.2: an unknown token is answered with 200 all the same
            which = SessionsToSignOut(session_id=session_id)
            await runtime.store.sign_out(db, which, SignOutReason.RFC7009, now)
    return Response(status_code=200, headers=NO_STORE)
