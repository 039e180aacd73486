"""The rest of the protocol (PRODUCT.md §4): member endpoints of the reference service,
and the standard ones it lacks: RFC 7009 revocation, RFC 7662 introspection, the
JWKS and RFC 8414 metadata. Plain Starlette endpoints, like /token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pitpass.db.models import (
    Client,
    OAuthSession,
    RememberedBrowser,
    WebSession,
    utcnow,
)
from pitpass.oauth.errors import NO_STORE, OAuthError, json_error, storage_unavailable
from pitpass.oauth.store import STORAGE_UNAVAILABLE_ERRORS, SessionRecord
from pitpass.oauth.token import (
    FORM,
    MAX_BODY,
    Caller,
    OAuthRuntime,
    authenticate_client,
    log,
    parse_form,
)
from pitpass.oauth.tokens import jwks_document
from pitpass.services.connected_apps import browser_and_os

Endpoint = Callable[[Request], Awaitable[Response]]


def _runtime(request: Request) -> OAuthRuntime:
    runtime: OAuthRuntime = request.app.state.oauth
    return runtime


def _caller(request: Request) -> Caller:
    return Caller(
        ip=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:512] or None,
    )


def oauth_endpoint(handler: Callable[[Request, OAuthRuntime], Awaitable[Response]]) -> Endpoint:
    """OAuthError → the JSON error shape of PRODUCT.md §4."""

    async def endpoint(request: Request) -> Response:
        runtime = _runtime(request)
        try:
            return await handler(request, runtime)
        except OAuthError as error:
            return json_error(runtime.issuer, error)
        except STORAGE_UNAVAILABLE_ERRORS:
            log.exception("protocol endpoint: storage unavailable")
            return json_error(runtime.issuer, storage_unavailable())

    return endpoint


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if not body:
        return {}
    if content_type != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM}")
    if len(body) > MAX_BODY:
        raise OAuthError("invalid_request", "the request body is too large")
    return parse_form(body)


# ----- bearer-protected member endpoints ------------------------------------------------


@dataclass(frozen=True)
class Bearer:
    claims: dict[str, Any]
    session: SessionRecord


async def bearer(request: Request, runtime: OAuthRuntime, needs_scope: str | None = None) -> Bearer:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OAuthError("invalid_token", "send the access token as Authorization: Bearer …")
    claims = runtime.signer.verify(token.strip(), utcnow())
    if claims is None:
        raise OAuthError("invalid_token", "the access token is invalid or expired")
    async with runtime.store.connection() as db:
        session = await runtime.store.session(db, str(claims.get("session_id")))
    if session is None or not session.active:
        raise OAuthError("invalid_token", "the session of this access token was signed out")
    if needs_scope and needs_scope not in str(claims.get("scope") or "").split():
        raise OAuthError("insufficient_scope", f"this endpoint needs the {needs_scope} scope")
    return Bearer(claims, session)


async def profile(request: Request, runtime: OAuthRuntime) -> Response:
    """`GET /oauth2/iracing/profile`: the member's name and customer id."""
    caller = await bearer(request, runtime, needs_scope="iracing.profile")
    return JSONResponse(
        {"iracing_name": caller.session.display_name, "iracing_cust_id": caller.session.customer_id}
    )


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def session_view(
    row: OAuthSession, client: Client, current_id: str, scopes: dict[str, str]
) -> dict[str, Any]:
    """One session with the reference service's fields; what we cannot know is null."""
    first_browser, first_os = browser_and_os(row.first_user_agent)
    last_browser, last_os = browser_and_os(row.last_user_agent)
    view: dict[str, Any] = {
        "session_id": row.id,
        "client_id": client.client_id,
        "client_name": client.name,
        "client_developer_name": client.developer_name,
        "client_developer_url": client.developer_url,
        "client_developer_email": client.developer_email,
        "scope": row.scope,
        "scope_descriptions": [scopes.get(s, s) for s in row.scope.split()],
        "auth_time": _epoch(row.auth_time),
        "last_activity": _epoch(row.last_activity_at),
        "session_expiration": _epoch(row.expires_at),
        "current_session": row.id == current_id,
        "impersonated": False,
        "impersonation_note": None,
    }
    for prefix, ip, agent, browser, system in (
        ("first", row.first_ip, row.first_user_agent, first_browser, first_os),
        ("last", row.last_ip, row.last_user_agent, last_browser, last_os),
    ):
        view |= {
            f"{prefix}_ip": ip,
            f"{prefix}_continent": None,
            f"{prefix}_country": None,
            f"{prefix}_subdivisions": None,
            f"{prefix}_city": None,
            f"{prefix}_user_agent_header": agent,
            f"{prefix}_user_agent_operating_system": system,
            f"{prefix}_user_agent_browser": browser,
        }
    return view


async def sessions(request: Request, runtime: OAuthRuntime) -> Response:
    """`GET /oauth2/sessions`: the member's live sessions of the calling client."""
    caller = await bearer(request, runtime)
    # The ORM's queries run in a worker thread: the loop also serves the token endpoint.
    views = await anyio.to_thread.run_sync(_live_session_views, runtime, caller.session)
    return JSONResponse({"sessions": views}, headers=NO_STORE)


def _live_session_views(runtime: OAuthRuntime, current: SessionRecord) -> list[dict[str, Any]]:
    with runtime.ctx.session() as db:
        client = db.get(Client, current.client_pk)
        assert client is not None
        rows = db.scalars(
            select(OAuthSession)
            .where(
                OAuthSession.member_id == current.member_id,
                OAuthSession.client_pk == client.id,
                OAuthSession.revoked_at.is_(None),
                OAuthSession.expires_at > utcnow(),
            )
            .order_by(OAuthSession.created_at)
        )
        scopes = runtime.ctx.settings.profile.scopes
        return [session_view(row, client, current.session_id, scopes) for row in rows]


async def _sign_out(runtime: OAuthRuntime, session_id: str, reason: str) -> None:
    """Sign out one session (the token store's statement, on the loop without blocking)."""
    async with runtime.store.connection() as db:
        await runtime.store.revoke_session(db, session_id, utcnow(), reason)


async def revoke_sessions_where(runtime: OAuthRuntime, reason: str, *conditions: Any) -> None:
    """Sign out the live sessions matching `conditions` (ORM, in a worker thread)."""
    await anyio.to_thread.run_sync(_revoke_sessions_where, runtime, reason, *conditions)


def _revoke_sessions_where(runtime: OAuthRuntime, reason: str, *conditions: Any) -> None:
    now = utcnow()
    with runtime.ctx.session() as db:
        rows = list(
            db.scalars(select(OAuthSession).where(OAuthSession.revoked_at.is_(None), *conditions))
        )
        for row in rows:
            row.revoked_at = now
            row.revoked_reason = reason


def _forget_browser_of(runtime: OAuthRuntime, session_id: str) -> None:
    with runtime.ctx.session() as db:
        row = db.get(OAuthSession, session_id)
        web = db.get(WebSession, row.web_session_id) if row and row.web_session_id else None
        if web is not None and web.remembered_browser_id is not None:
            remembered = db.get(RememberedBrowser, web.remembered_browser_id)
            if remembered is not None and remembered.revoked_at is None:
                remembered.revoked_at = utcnow()


async def revoke_current(request: Request, runtime: OAuthRuntime) -> Response:
    """`POST /oauth2/revoke/current` (optional `forget_browser=true`): 200, empty body."""
    caller = await bearer(request, runtime)
    form = await _form(request)
    forget = form.get("forget_browser", "false").lower()
    if forget not in ("true", "false"):
        raise OAuthError("invalid_request", "forget_browser must be true or false")
    session_id = caller.session.session_id
    await _sign_out(runtime, session_id, "revoke_current")
    if forget == "true":
        await anyio.to_thread.run_sync(_forget_browser_of, runtime, session_id)
    return Response(status_code=200, headers=NO_STORE)


async def revoke_listed_sessions(request: Request, runtime: OAuthRuntime) -> Response:
    """`POST /oauth2/revoke/sessions` (`session_ids`, comma-separated): 200, empty body."""
    caller = await bearer(request, runtime)
    form = await _form(request)
    ids = [s.strip() for s in form.get("session_ids", "").split(",") if s.strip()]
    if not ids:
        raise OAuthError("invalid_request", "session_ids missing")
    await revoke_sessions_where(
        runtime,
        "revoke_sessions",
        OAuthSession.id.in_(ids),
        OAuthSession.member_id == caller.session.member_id,
        OAuthSession.client_pk == caller.session.client_pk,
    )
    return Response(status_code=200, headers=NO_STORE)


async def revoke_client(request: Request, runtime: OAuthRuntime) -> Response:
    """`POST /oauth2/revoke/client`: every session of this client for the member."""
    caller = await bearer(request, runtime)
    await revoke_sessions_where(
        runtime,
        "revoke_client",
        OAuthSession.member_id == caller.session.member_id,
        OAuthSession.client_pk == caller.session.client_pk,
    )
    return Response(status_code=200, headers=NO_STORE)


# ----- RFC 7009 and RFC 7662 ---------------------------------------------------------------


async def revoke(request: Request, runtime: OAuthRuntime) -> Response:
    """RFC 7009: revoking either token signs out its whole session (§2.1)."""
    form = await _form(request)
    client = await authenticate_client(
        runtime, form, request.headers.get("authorization"), _caller(request)
    )
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token missing")
    claims = runtime.signer.verify(token, utcnow()) if token.count(".") == 2 else None
    session_id: str | None = None
    issued_to_caller = True
    if claims is not None:
        session_id = str(claims.get("session_id"))
        issued_to_caller = claims.get("client_id") == client.client_id
    else:
        async with runtime.store.connection() as db:
            state = await runtime.store.refresh_state(db, runtime.refresh_hash(token))
        if state is not None:
            session_id = state.session.session_id
            issued_to_caller = state.session.client_pk == client.pk
    if not issued_to_caller:
        raise OAuthError("invalid_grant", "this token was issued to another client")
    if session_id is not None:  # §2.2: an unknown token is answered with 200 all the same
        await _sign_out(runtime, session_id, "rfc7009")
    return Response(status_code=200, headers=NO_STORE)


def _inactive() -> Response:
    """RFC 7662 §2.2: whatever the reason, an unusable token is only `active: false`."""
    return JSONResponse({"active": False}, headers=NO_STORE)


async def introspect(request: Request, runtime: OAuthRuntime) -> Response:
    """RFC 7662, for confidential clients (resource servers authenticate as one)."""
    form = await _form(request)
    client = await authenticate_client(
        runtime, form, request.headers.get("authorization"), _caller(request)
    )
    if not client.is_confidential:
        raise OAuthError("invalid_client", "introspection is for confidential clients")
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token missing")
    if token.count(".") == 2:
        claims = runtime.signer.verify(token, utcnow())
        if claims is None:
            return _inactive()
        async with runtime.store.connection() as db:
            if not await runtime.store.session_is_active(db, str(claims.get("session_id"))):
                return _inactive()
        return JSONResponse({"active": True, "token_type": "Bearer", **claims}, headers=NO_STORE)
    async with runtime.store.connection() as db:
        state = await runtime.store.refresh_state(db, runtime.refresh_hash(token))
    if state is None or state.session.client_pk != client.pk:
        return _inactive()
    usable = state.used_at is None and state.expires_at > utcnow()
    if not usable or not state.session.active:
        return _inactive()
    return JSONResponse(
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


# ----- keys and metadata ----------------------------------------------------------------------


async def jwks(request: Request, runtime: OAuthRuntime) -> Response:
    document = await anyio.to_thread.run_sync(_jwks_document, runtime)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=60"})


def _jwks_document(runtime: OAuthRuntime) -> dict[str, Any]:
    with runtime.ctx.session() as db:
        return jwks_document(db)


def metadata_document(runtime: OAuthRuntime) -> dict[str, Any]:
    """RFC 8414: only what this server accepts."""
    issuer = runtime.issuer
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "scopes_supported": sorted(runtime.ctx.settings.profile.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "password_limited"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_post",
            "client_secret_basic",
        ],
        "code_challenge_methods_supported": ["plain", "S256"],
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": f"{issuer}/book/",
    }


async def metadata(request: Request, runtime: OAuthRuntime) -> Response:
    return JSONResponse(
        metadata_document(runtime), headers={"Cache-Control": "public, max-age=300"}
    )


def protocol_routes(issuer_path: str) -> list[Route]:
    base = issuer_path.rstrip("/")
    from pitpass.oauth.token import token_endpoint

    return [
        Route(f"{base}/token", token_endpoint, methods=["POST"]),
        Route(f"{base}/introspect", oauth_endpoint(introspect), methods=["POST"]),
        Route(f"{base}/revoke", oauth_endpoint(revoke), methods=["POST"]),
        Route(f"{base}/revoke/current", oauth_endpoint(revoke_current), methods=["POST"]),
        Route(f"{base}/revoke/sessions", oauth_endpoint(revoke_listed_sessions), methods=["POST"]),
        Route(f"{base}/revoke/client", oauth_endpoint(revoke_client), methods=["POST"]),
        Route(f"{base}/iracing/profile", oauth_endpoint(profile), methods=["GET"]),
        Route(f"{base}/sessions", oauth_endpoint(sessions), methods=["GET"]),
        Route(f"{base}/jwks", oauth_endpoint(jwks), methods=["GET"]),
        Route(
            f"/.well-known/oauth-authorization-server{base}",
            oauth_endpoint(metadata),
            methods=["GET"],
        ),
        Route(
            f"{base}/.well-known/oauth-authorization-server",
            oauth_endpoint(metadata),
            methods=["GET"],
        ),
    ]
