"""`POST /oauth2/token`: the hot path (PRODUCT.md §4, RFC 6749 §3.2).

A plain Starlette endpoint: no dependency injection, no ORM. Three grants,
one response shape. Client secrets arrive masked (`mask_secret(secret,
client_id)`), in the form body or with HTTP Basic, and are compared against
keyed hashes of the masked form.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import parse_qsl, unquote_plus

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pitpass.core import pkce
from pitpass.core.masking import normalise_identifier
from pitpass.core.scopes import join_scope, parse_scope, unknown_scopes
from pitpass.db.models import utcnow
from pitpass.oauth.errors import NO_STORE, OAuthError, json_error, storage_unavailable
from pitpass.oauth.store import (
    STORAGE_UNAVAILABLE_ERRORS,
    ClientRecord,
    CodeRecord,
    NewRefreshToken,
    NewSession,
    PasswordMember,
    RefreshState,
    SessionActivity,
    SessionRecord,
    TokenStore,
    session_opened_by,
)
from pitpass.oauth.tokens import TokenSigner
from pitpass.services.client_secrets import secret_hash
from pitpass.services.context import AppContext
from pitpass.services.members import masked_password_matches

log = logging.getLogger("pitpass.oauth")

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024


@dataclass
class OAuthRuntime:
    """What the protocol endpoints share; built once per process in create_app."""

    ctx: AppContext
    store: TokenStore
    signer: TokenSigner

    @property
    def issuer(self) -> str:
        return self.ctx.settings.issuer

    def code_hash(self, code: str) -> str:
        return self.ctx.keyring.token_hash(f"code:{code}")

    def refresh_hash(self, token: str) -> str:
        return self.ctx.keyring.token_hash(f"refresh:{token}")


@dataclass
class Caller:
    ip: str | None
    user_agent: str | None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers


def parse_form(body: bytes) -> dict[str, str]:
    """The form's parameters; a repeated one is invalid_request (RFC 6749 §3.2)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "the form body is not UTF-8") from None
    params: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in params:
            raise OAuthError("invalid_request", f"parameter {name} is repeated")
        params[name] = value
    return params


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: Basic base64(urlencode(client_id) ":" urlencode(secret))."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError("invalid_request", "malformed HTTP Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise OAuthError("invalid_request", "malformed HTTP Basic credentials")
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(
    runtime: OAuthRuntime, params: dict[str, str], authorization: str | None, caller: Caller
) -> ClientRecord:
    basic = _basic_credentials(authorization)
    client_id = params.get("client_id", "")
    secret = params.get("client_secret")
    if basic is not None:
        if secret is not None:
            raise OAuthError(
                "invalid_request", "send the client secret in the body or with Basic, not both"
            )
        if client_id and client_id != basic[0]:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        client_id, secret = basic
    if not client_id:
        raise OAuthError("invalid_request", "client_id missing")
    client = await runtime.store.client(client_id, utcnow())
    if client is None:
        _failed_client_auth(runtime, client_id, caller, "unknown client")
    assert client is not None
    if client.is_disabled:
        raise OAuthError("unauthorized_client", "this client is disabled")
    if client.is_confidential:
        if not secret:
            _failed_client_auth(runtime, client_id, caller, "client_secret missing: send it masked")
        presented = secret_hash(runtime.ctx, secret or "")
        # Every live secret is compared, in constant time (RFC 6749 §10.1, rotation grace).
        matched = False
        for stored in client.secret_hashes:
            matched |= hmac.compare_digest(presented, stored)
        if not matched:
            _failed_client_auth(
                runtime,
                client_id,
                caller,
                "client authentication failed: send the secret masked with the client_id",
            )
    elif secret:
        raise OAuthError("invalid_client", "this is a public client: it has no secret to send")
    return client


def _failed_client_auth(runtime: OAuthRuntime, client_id: str, caller: Caller, why: str) -> None:
    """Count the failure; over the limit, say when to come back (PRODUCT.md §4).

    Only failures touch the limiter, so a correct request never waits on it (or
    on Redis): guessing a 256-bit secret fails either way, the limit tames the
    load of the guessing.
    """
    throttle = runtime.ctx.throttles.client_auth
    key = f"{client_id}:{caller.ip}"
    throttle.count_failure(key)
    if (wait := throttle.retry_after(key)) is not None:
        raise OAuthError(
            "invalid_client",
            f"too many failed client authentications; retry in {wait} seconds",
            {"Retry-After": str(wait)},
        )
    raise OAuthError("invalid_client", why)


def _grants_refresh(client: ClientRecord, scope: str) -> bool:
    """A grant for identity verification only (`iracing.profile`) gets no refresh token."""
    profile_only = set(scope.split()) <= {"iracing.profile"}
    return not profile_only and client.refresh_token_seconds > 0


def _token_response(
    runtime: OAuthRuntime,
    client: ClientRecord,
    session: SessionRecord,
    scope: str,
    refresh_token: str | None,
    now: datetime,
    caller: Caller,
) -> JSONResponse:
    body: dict[str, Any] = {
        "access_token": runtime.signer.access_token(client, session, scope, now),
        "token_type": "Bearer",
        "expires_in": client.access_token_seconds,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
        body["refresh_token_expires_in"] = client.refresh_token_seconds
    body["scope"] = scope
    return JSONResponse(body, headers=NO_STORE | caller.headers)


def _new_refresh(
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


def _require(params: dict[str, str], *names: str) -> None:
    for name in names:
        if not params.get(name):
            raise OAuthError("invalid_request", f"{name} missing")


# ----- the grants ------------------------------------------------------------------------


async def authorization_code_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    """Judge the code on a read, then spend it and open its session in one write.

    Losing the write to a concurrent redemption makes this a replay.
    """
    _require(params, "code", "redirect_uri")
    if "authorization_code" not in client.flows:
        raise OAuthError("unauthorized_client", "this client may not use authorization_code")
    store, now = runtime.store, utcnow()
    code_hash = runtime.code_hash(params["code"])
    async with store.connection() as db:
        state = await store.code_state(db, code_hash)
        if state is None:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if state.consumed:
            await _replayed(runtime, db, state.code.session_id, now)
        code, session = state.code, state.session
        failure = _check_code(code, client, params, now)
        if failure is None and (session is None or session.member_disabled):
            failure = OAuthError("invalid_grant", "the member's account is disabled")
        if failure is not None:
            await store.consume_code(db, code_hash, now)  # one try per code
            raise failure
        assert session is not None
        refresh, stored = (
            _new_refresh(runtime, client, code.session_id, now)
            if _grants_refresh(client, code.scope)
            else (None, None)
        )
        lifetime = max(client.refresh_token_seconds, client.access_token_seconds)
        opening = NewSession.from_code(code, now, now + timedelta(seconds=lifetime))
        if not await store.redeem_code(db, code_hash, opening, stored):
            await _replayed(runtime, db, code.session_id, now)
    return _token_response(runtime, client, session, code.scope, refresh, now, caller)


async def _replayed(runtime: OAuthRuntime, db: Any, session_id: str, now: datetime) -> NoReturn:
    """RFC 6749 §4.1.2: a code used twice revokes what the first use issued."""
    await runtime.store.revoke_session(db, session_id, now, "code_replay")
    raise OAuthError("invalid_grant", "authorization code already used; its tokens are revoked")


def _check_code(
    code: CodeRecord, client: ClientRecord, params: dict[str, str], now: datetime
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
    method = code.code_challenge_method or pkce.DEFAULT_METHOD  # stored with every challenge
    if not pkce.verifier_matches(verifier, code.code_challenge, method):
        return OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
    return None


async def refresh_token_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    """Judge the token on a read, then spend and replace it in one conditional write.

    Losing the write to a concurrent request makes this a reuse: the token is judged
    again, now spent (RFC 9700 §4.14.2).
    """
    _require(params, "refresh_token")
    store, now = runtime.store, utcnow()
    spent_hash = runtime.refresh_hash(params["refresh_token"])
    activity = SessionActivity(
        now, now + timedelta(seconds=client.refresh_token_seconds), caller.ip, caller.user_agent
    )
    async with store.connection() as db:
        for _judgement in ("first", "after a lost race"):
            state = await store.refresh_state(db, spent_hash)
            session, still_unspent = await _usable_refresh(runtime, db, client, state, now)
            scope = _narrowed_scope(params.get("scope"), session.scope)
            refresh, stored = _new_refresh(runtime, client, session.session_id, now)
            spend = spent_hash if still_unspent else None
            if await store.rotate_refresh_token(db, spend, stored, activity):
                return _token_response(runtime, client, session, scope, refresh, now, caller)
    raise OAuthError("invalid_grant", "the session was signed out")


async def _usable_refresh(
    runtime: OAuthRuntime,
    db: Any,
    client: ClientRecord,
    state: RefreshState | None,
    now: datetime,
) -> tuple[SessionRecord, bool]:
    """The token's session, and whether the token is still to be spent; else OAuthError."""
    if state is None:
        raise OAuthError("invalid_grant", "unknown refresh token")
    if state.used_at is None:
        if state.expires_at <= now:
            raise OAuthError("invalid_grant", "refresh token expired")
        still_unspent = True
    else:
        grace = client.refresh_grace_seconds
        # `now` was read before another request's `used_at`: a racer can see a negative
        # age, so a grace of 0 must mean no grace at all, not "age <= 0".
        if not (grace > 0 and (now - state.used_at).total_seconds() <= grace):
            # RFC 9700 §4.14.2: a refresh token used twice means it leaked; end the session.
            await runtime.store.revoke_session(
                db, state.session.session_id, now, "refresh_token_reuse"
            )
            raise OAuthError(
                "invalid_grant", "refresh token already used: the whole session is revoked"
            )
        still_unspent = False  # a retry inside the client's grace period
    if (failure := _check_session(state.session, client)) is not None:
        raise failure
    return state.session, still_unspent


def _check_session(session: SessionRecord | None, client: ClientRecord) -> OAuthError | None:
    if session is None or session.client_pk != client.pk:
        return OAuthError("invalid_grant", "this refresh token was issued to another client")
    if session.revoked:
        return OAuthError("invalid_grant", "the session was signed out")
    if session.member_disabled:
        return OAuthError("invalid_grant", "the member's account is disabled")
    return None


def _narrowed_scope(requested: str | None, granted: str) -> str:
    """RFC 6749 §6: a refresh may ask for fewer scopes, never more."""
    if not requested:
        return granted
    wanted = parse_scope(requested)
    if extra := unknown_scopes(wanted, granted.split()):
        raise OAuthError("invalid_scope", f"scope {extra[0]} was not granted to this session")
    return join_scope(wanted)


async def password_limited_grant(
    runtime: OAuthRuntime, client: ClientRecord, params: dict[str, str], caller: Caller
) -> JSONResponse:
    """The reference's headless grant: confidential clients, accepted access-list members."""
    if not client.is_confidential or "password_limited" not in client.flows:
        raise OAuthError("unauthorized_client", "this client may not use password_limited")
    _require(params, "username", "password")
    username = normalise_identifier(params["username"])
    allowed, remaining, reset = runtime.ctx.throttles.password_limited.take(
        f"{client.client_id}:{username}"
    )
    limit = runtime.ctx.throttles.password_limited.limit.amount
    caller.headers |= {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    if not allowed:
        raise OAuthError(
            "unauthorized_client",
            f"too many password_limited sign-ins; retry in {reset} seconds",
            caller.headers | {"Retry-After": str(reset)},
        )
    scope = _requested_scope(runtime, params.get("scope"))
    store, now = runtime.store, utcnow()
    async with store.connection() as db:
        found = await store.member_by_email(db, username)
    try:
        # argon2 takes a while: off the event loop.
        valid = await anyio.to_thread.run_sync(_check_password, found, params["password"])
    except OAuthError as error:
        error.headers |= caller.headers
        raise
    assert found is not None and valid
    async with store.connection() as db:
        if not await store.on_access_list(db, client.pk, found.member_id):
            raise OAuthError(
                "invalid_grant",
                "this member is not on the client's access list, or has not accepted it",
                caller.headers,
            )
        session_id = str(uuid.uuid4())
        refresh, stored = (
            _new_refresh(runtime, client, session_id, now)
            if _grants_refresh(client, scope)
            else (None, None)
        )
        opening = NewSession(
            session_id=session_id,
            member_id=found.member_id,
            client_pk=client.pk,
            scope=scope,
            auth_time=now,
            now=now,
            expires_at=now + timedelta(seconds=client.refresh_token_seconds),
            ip=caller.ip,
            user_agent=caller.user_agent,
            web_session_id=None,
        )
        await store.open_session(db, opening, stored)
    # The session just written, with the member as read above: no second read.
    session = session_opened_by(opening, found.fields)
    return _token_response(runtime, client, session, scope, refresh, now, caller)


def _check_password(found: PasswordMember | None, masked_password: str) -> bool:
    """argon2id of the masked password (the form the client sends); same cost either way."""
    stored_hash = found.password_hash if found else None
    if not masked_password_matches(stored_hash, masked_password) or not found:
        raise OAuthError("invalid_grant", "invalid username or password")
    if found.disabled:
        raise OAuthError("invalid_grant", "the member's account is disabled")
    return True


def _requested_scope(runtime: OAuthRuntime, raw: str | None) -> str:
    profile = runtime.ctx.settings.profile
    wanted = parse_scope(raw) if raw and raw.strip() else [profile.default_scope]
    if extra := unknown_scopes(wanted, profile.scopes):
        raise OAuthError("invalid_scope", f"unknown scope {extra[0]}")
    return join_scope(wanted)


GRANTS = {
    "authorization_code": authorization_code_grant,
    "refresh_token": refresh_token_grant,
    "password_limited": password_limited_grant,
}


async def _handle(
    runtime: OAuthRuntime, body: bytes, authorization: str | None, caller: Caller
) -> Response:
    params = parse_form(body)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "grant_type missing")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant_type} is not supported")
    client = await authenticate_client(runtime, params, authorization, caller)
    return await grant(runtime, client, params, caller)


async def token_endpoint(request: Request) -> Response:
    runtime: OAuthRuntime = request.app.state.oauth
    caller = Caller(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )
    try:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != FORM:
            raise OAuthError("invalid_request", f"send the parameters as {FORM}")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise OAuthError("invalid_request", "the request body is too large")
        return await _handle(runtime, body, request.headers.get("authorization"), caller)
    except OAuthError as error:
        return json_error(runtime.issuer, error)
    except STORAGE_UNAVAILABLE_ERRORS:
        log.exception("token endpoint: storage unavailable")
        return json_error(runtime.issuer, storage_unavailable())
