"""The reference's headless grant, `password_limited` (PRODUCT.md §4): confidential clients,
accepted access-list members, the password masked with the username, rate limited."""

from __future__ import annotations

import uuid

import anyio
from starlette.responses import JSONResponse

from pitpass.core import policy
from pitpass.core.masking import normalise_identifier
from pitpass.core.policy import OAuthError, ScopeRefused
from pitpass.db.models import utcnow
from pitpass.oauth.grants.common import new_refresh, require, token_response
from pitpass.oauth.requests import Caller
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services.members import masked_password_matches
from pitpass.storage.records import ClientRecord, NewSession, PasswordMember


async def password_limited_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    if not client.is_confidential or policy.PASSWORD_LIMITED not in client.flows:
        raise OAuthError("unauthorized_client", "this client may not use password_limited")
    require(params, "username", "password")
    username = normalise_identifier(params["username"])
    # In a thread: a slow Redis must not stall the event loop (issue #11).
    await anyio.to_thread.run_sync(_take_rate_limit, runtime, client, username, caller)
    profile = runtime.ctx.settings.profile
    try:
        scope = policy.requested_scope(params.get("scope"), profile)
    except ScopeRefused as refused:
        raise OAuthError("invalid_scope", str(refused)) from None
    store, now = runtime.store, utcnow()
    async with store.connection() as db:
        found = await store.member_by_email(db, username)
        listed = found is not None and await store.on_access_list(db, client.pk, found.member_id)
    if not listed:
        # The list before the password: a client can test no password but those of the
        # members who accepted it, and unknown and unlisted usernames read the same
        # (docs/decisions.md "password_limited: who can be tried, who can be limited").
        raise OAuthError(
            "invalid_grant",
            "no member of this client's accepted access list has this username",
            caller.headers,
        )
    try:
        # argon2 takes a while: off the event loop.
        member = await anyio.to_thread.run_sync(_check_password, found, params["password"])
    except OAuthError as error:
        error.headers |= caller.headers
        raise
    async with store.connection() as db:
        session_id = str(uuid.uuid4())
        refresh, stored = (
            new_refresh(runtime, client, session_id, now)
            if policy.grants_refresh(scope, client.refresh_token_seconds, profile)
            else (None, None)
        )
        opening = NewSession(
            session_id=session_id,
            member_id=member.member_id,
            client_pk=client.pk,
            scope=scope,
            auth_time=now,
            now=now,
            expires_at=policy.session_expires_at(
                now, client.access_token_seconds, client.refresh_token_seconds
            ),
            ip=caller.ip,
            user_agent=caller.user_agent,
            web_session_id=None,
        )
        await store.open_session(db, opening, stored)
    # The session just written, with the member as read above: no second read.
    session = opening.record(member.fields)
    return token_response(runtime, client, session, scope, refresh, now, caller)


def _take_rate_limit(
    runtime: OAuthRuntime, client: ClientRecord, username: str, caller: Caller
) -> None:
    """Per client and username, with `RateLimit-*` on every answer (PRODUCT.md §4)."""
    throttle = runtime.ctx.throttles.password_limited
    allowed, remaining, reset = throttle.take(f"{client.client_id}:{username}")
    caller.headers |= {
        "RateLimit-Limit": str(throttle.limit.amount),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    if not allowed:
        raise OAuthError(
            "unauthorized_client",
            f"too many password_limited sign-ins; retry in {reset} seconds",
            caller.headers | {"Retry-After": str(reset)},
        )


def _check_password(found: PasswordMember | None, masked_password: str) -> PasswordMember:
    """argon2id of the masked password (the form the client sends); same cost either way."""
    stored_hash = found.password_hash if found else None
    if not masked_password_matches(stored_hash, masked_password) or found is None:
        raise OAuthError("invalid_grant", "invalid username or password")
    if found.fields.member_disabled:
        raise OAuthError("invalid_grant", "the member's account is disabled")
    return found
