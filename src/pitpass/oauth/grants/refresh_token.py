"""The refresh_token grant (RFC 6749 §6): single use, rotated on every refresh, reuse
ends the session (RFC 9700 §4.14.2) unless inside the client's grace period, or a retry
of a rotation whose answer never reached the client (policy.is_retry_of_unanswered_rotation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from starlette.responses import JSONResponse

from pitpass import metrics
from pitpass.core import policy
from pitpass.core.policy import OAuthError, ScopeRefused, SignOutReason, SpentRefresh
from pitpass.db.models import utcnow
from pitpass.oauth.grants.common import new_refresh, require, token_response
from pitpass.oauth.requests import Caller
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage.records import (
    ClientRecord,
    RefreshState,
    SessionActivity,
    SessionRecord,
    SessionsToSignOut,
)


async def refresh_token_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    """Judge the token on a read, then spend and replace it in one conditional write.

    Losing the write to a concurrent request makes this a reuse: the token is judged
    again, now spent (RFC 9700 §4.14.2). A retry spends the unused successor instead,
    by the same conditional write, so of two concurrent retries one wins, the other
    is judged again and finds the successor used: reuse.
    """
    require(params, "refresh_token")
    store, now = runtime.store, utcnow()
    spent_hash = runtime.refresh_hash(params["refresh_token"])
    expires_at = policy.session_expires_at(
        now, client.access_token_seconds, client.refresh_token_seconds
    )
    activity = SessionActivity(now, expires_at, caller.ip, caller.user_agent)
    async with store.connection() as db:
        for _judgement in ("first", "after a lost race"):
            state = await store.refresh_state(db, spent_hash)
            session, spend, retire = await _usable_refresh(
                runtime, db, client, state, now, spent_hash
            )
            try:
                scope = policy.narrowed_scope(params.get("scope"), session.scope)
            except ScopeRefused as refused:
                raise OAuthError("invalid_scope", str(refused)) from None
            refresh, stored = new_refresh(runtime, client, session.session_id, now)
            if await store.rotate_refresh_token(db, spend, stored, activity, retire):
                return token_response(runtime, client, session, scope, refresh, now, caller)
    raise OAuthError("invalid_grant", "the session was signed out")


async def _usable_refresh(
    runtime: OAuthRuntime,
    db: Any,
    client: ClientRecord,
    state: RefreshState | None,
    now: datetime,
    presented_hash: str,
) -> tuple[SessionRecord, str | None, bool]:
    """The token's session, the refresh token the rotation spends (the presented one, its
    unused successor, or none inside the grace period), and whether that spend retires a
    successor (a retry); else OAuthError."""
    if state is None:
        raise OAuthError("invalid_grant", "unknown refresh token")
    spend: str | None = presented_hash
    retire = False
    if state.used_at is None:
        if state.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh token expired")
    else:
        verdict = policy.judge_spent_refresh(
            state.used_at, state.retired, client.refresh_grace_seconds, now
        )
        if verdict is SpentRefresh.GRACE:
            spend = None  # a retry inside the client's grace period
        elif verdict is SpentRefresh.RETRY:
            spend, retire = await _retried_successor(runtime, db, state, now), True
        else:
            await _end_session_for_reuse(runtime, db, state, now)
    session = state.session
    if session.client_pk != client.pk:
        raise OAuthError("invalid_grant", "this refresh token was issued to another client")
    if (why := policy.why_not_live(session, now)) is not None:
        raise OAuthError("invalid_grant", why)
    return session, spend, retire


async def _retried_successor(
    runtime: OAuthRuntime, db: Any, state: RefreshState, now: datetime
) -> str:
    """The successor to spend when this spent token is a retry; else reuse ends the session."""
    assert state.used_at is not None
    successor = await runtime.store.refresh_successor(db, state)
    retry_seconds = runtime.ctx.settings.refresh_retry_seconds
    if successor is not None and policy.is_retry_of_unanswered_rotation(
        state.used_at, successor.used, now, retry_seconds
    ):
        return successor.token_hash
    await _end_session_for_reuse(runtime, db, state, now)


async def _end_session_for_reuse(
    runtime: OAuthRuntime, db: Any, state: RefreshState, now: datetime
) -> NoReturn:
    # RFC 9700 §4.14.2: a refresh token used twice means it leaked; end the session.
    which = SessionsToSignOut(session_id=state.session.session_id)
    await runtime.store.sign_out(db, which, SignOutReason.REFRESH_TOKEN_REUSE, now)
    metrics.count_refresh_token_reuse()
    raise OAuthError("invalid_grant", "refresh token already used: the whole session is revoked")
