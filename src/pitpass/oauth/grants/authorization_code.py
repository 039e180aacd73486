"""The authorization_code grant (RFC 6749 §4.1.3, PKCE RFC 7636 §4.6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NoReturn

from starlette.responses import JSONResponse

from pitpass import metrics
from pitpass.core import pkce, policy
from pitpass.core.policy import OAuthError, SignOutReason
from pitpass.db.models import utcnow
from pitpass.oauth.grants.common import new_refresh, require, token_response
from pitpass.oauth.requests import Caller
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage.records import ClientRecord, NewCode, NewSession, SessionsToSignOut


async def authorization_code_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    """Judge the code on a read, then spend it and open its session in one write.

    Losing the write to a concurrent redemption makes this a replay.
    """
    require(params, "code", "redirect_uri")
    if policy.AUTHORIZATION_CODE not in client.flows:
        raise OAuthError("unauthorized_client", "this client may not use authorization_code")
    store, now = runtime.store, utcnow()
    profile = runtime.ctx.settings.profile
    code_hash = runtime.code_hash(params["code"])
    async with store.connection() as db:
        state = await store.code_state(db, code_hash)
        if state is None:
            raise OAuthError("invalid_grant", "unknown authorization code")
        code, member = state.code, state.member
        if state.consumed:
            await _replayed(runtime, db, code.session_id, now)
        failure = _check_code(code, client, params, now)
        if failure is None and (member is None or member.member_disabled):
            failure = OAuthError("invalid_grant", "the member's account is disabled")
        if failure is not None:
            await store.consume_code(db, code_hash, now)  # one try per code
            raise OAuthError("invalid_grant", f"{failure.description}{SPENT}")
        assert member is not None
        refresh, stored = (
            new_refresh(runtime, client, code.session_id, now)
            if policy.grants_refresh(code.scope, client.refresh_token_seconds, profile)
            else (None, None)
        )
        expires_at = policy.session_expires_at(
            now, client.access_token_seconds, client.refresh_token_seconds
        )
        opening = NewSession.from_code(code, now, expires_at)
        if not await store.redeem_code(db, code_hash, opening, stored):
            await _replayed(runtime, db, code.session_id, now)
    session = opening.record(member)
    return token_response(
        runtime, client, session, code.scope, refresh, now, caller, nonce=code.nonce
    )


# Every failed exchange spends the code (one try): the answer says so, not only the retry's.
SPENT = "; the code cannot be reused: start the sign-in again"


async def _replayed(runtime: OAuthRuntime, db: Any, session_id: str, now: datetime) -> NoReturn:
    """RFC 6749 §4.1.2: a code used twice revokes what the first use issued."""
    which = SessionsToSignOut(session_id=session_id)
    await runtime.store.sign_out(db, which, SignOutReason.CODE_REPLAY, now)
    metrics.count_authorization_code_replay()
    # The code may have been spent by a failed exchange (one try per code): say so, or a
    # developer retrying after a wrong code_verifier would look for a double redemption.
    raise OAuthError(
        "invalid_grant",
        "authorization code already used: an earlier exchange of it succeeded or failed, "
        "and a code is good for one try; anything it issued is revoked. Start the sign-in again",
    )


def _check_code(
    code: NewCode, client: ClientRecord, params: dict[str, str], now: datetime
) -> OAuthError | None:
    if code.client_pk != client.pk:
        return OAuthError("invalid_grant", "this code was issued to another client")
    if code.expires_at <= now:
        return OAuthError("invalid_grant", "authorization code expired")
    if params["redirect_uri"] != code.redirect_uri:
        return OAuthError("invalid_grant", "redirect_uri differs from the one sent to /authorize")
    verifier = params.get("code_verifier")
    if code.code_challenge is None:
        if verifier is not None:
            # RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
            return OAuthError("invalid_grant", "code_verifier sent but no code_challenge was")
        return None
    if not verifier:
        return OAuthError("invalid_grant", "code_verifier missing: a code_challenge was sent")
    method = code.code_challenge_method or policy.DEFAULT_PKCE_METHOD  # stored with a challenge
    if not pkce.verifier_matches(verifier, code.code_challenge, method):
        return OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    return None
