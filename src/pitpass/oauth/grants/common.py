"""What every grant shares: the one response shape and the refresh tokens it carries."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from starlette.responses import JSONResponse

from pitpass.core import openid
from pitpass.core.policy import OAuthError
from pitpass.http.json_body import FastJSONResponse
from pitpass.oauth.requests import Caller
from pitpass.oauth.responses import NO_STORE
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage.records import ClientRecord, NewRefreshToken, SessionRecord


def require(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise OAuthError("invalid_request", f"{name} missing")


def token_response(
    runtime: OAuthRuntime,
    client: ClientRecord,
    session: SessionRecord,
    scope: str,
    refresh_token: str | None,
    now: datetime,
    caller: Caller,
    nonce: str | None = None,
) -> JSONResponse:
    """`{access_token, token_type, expires_in, refresh_token?, refresh_token_expires_in?,
    scope}` (PRODUCT.md §4), and `id_token` last when the scope has `openid`: from a code
    (OpenID Connect Core §3.1.3.3, with the request's `nonce`) or a refresh (§12.2)."""
    access_token = runtime.signer.access_token(client, session, scope, now)
    body: dict[str, Any] = {
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": client.access_token_seconds,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
        body["refresh_token_expires_in"] = client.refresh_token_seconds
    body["scope"] = scope
    if openid.asks_for_openid(scope):
        body["id_token"] = runtime.signer.id_token(
            openid.IdTokenFacts(
                issuer=runtime.issuer,
                client_id=client.client_id,
                customer_id=session.member.customer_id,
                auth_time=session.auth_time,
                now=now,
                lifetime_seconds=client.access_token_seconds,
                access_token=access_token,
                nonce=nonce,
            )
        )
    return FastJSONResponse(body, headers=NO_STORE | caller.headers)


def new_refresh(
    runtime: OAuthRuntime, client: ClientRecord, session_id: str, now: datetime
) -> tuple[str, NewRefreshToken]:
    """A refresh token (256 random bits, opaque) and what is stored of it: a keyed hash."""
    token = secrets.token_urlsafe(32)
    stored = NewRefreshToken(
        runtime.refresh_hash(token),
        session_id,
        now,
        now + timedelta(seconds=client.refresh_token_seconds),
    )
    return token, stored
