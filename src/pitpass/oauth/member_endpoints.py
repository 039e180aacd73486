"""The reference service's member endpoints (PRODUCT.md §4): the profile, the member's
sessions of the calling client, and signing them out; and OpenID Connect's `/userinfo`.
Bearer-protected."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

from pitpass.core import openid, policy
from pitpass.core.policy import OAuthError, SignOutReason
from pitpass.db.models import Client, OAuthSession, RememberedBrowser, WebSession, utcnow
from pitpass.http.json_body import FastJSONResponse
from pitpass.oauth.bearer import bearer
from pitpass.oauth.requests import read_form
from pitpass.oauth.responses import NO_STORE
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services.connected_apps import browser_and_os
from pitpass.storage import sync
from pitpass.storage.records import SessionRecord, SessionsToSignOut


async def profile(request: Request, runtime: OAuthRuntime) -> Response:
    """`GET /oauth2/iracing/profile`: the member's name and customer id."""
    caller = await bearer(request, runtime, needs_scope=runtime.ctx.settings.profile.identity_scope)
    member = caller.session.member
    return FastJSONResponse(
        {"iracing_name": member.display_name, "iracing_cust_id": member.customer_id}
    )


async def userinfo(request: Request, runtime: OAuthRuntime) -> Response:
    """`GET|POST /oauth2/userinfo` (OpenID Connect Core §5.3): the claims the access token's
    scopes allow. The token comes in the Authorization header, as at every Bearer endpoint
    here (RFC 6750 §2.1); errors are RFC 6750 §3's, with `WWW-Authenticate`."""
    caller = await bearer(request, runtime, needs_scope=openid.OPENID_SCOPE)
    member = caller.session.member
    claims = openid.userinfo_claims(
        str(caller.claims.get("scope") or ""),
        member.customer_id,
        member.display_name,
        runtime.ctx.settings.profile,
    )
    return FastJSONResponse(claims, headers=NO_STORE)


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def session_view(
    row: OAuthSession, client: Client, current_id: str, meanings: list[tuple[str, str]]
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
        "scope_descriptions": [words for _name, words in meanings],
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
    return FastJSONResponse({"sessions": views}, headers=NO_STORE)


def _live_session_views(runtime: OAuthRuntime, current: SessionRecord) -> list[dict[str, Any]]:
    profile = runtime.ctx.settings.profile
    with runtime.ctx.session() as db:
        client = db.get(Client, current.client_pk)
        assert client is not None
        rows = sync.live_sessions(db, current.member_id, utcnow(), client_pk=client.id)
        return [
            session_view(row, client, current.session_id, policy.scope_meanings(row.scope, profile))
            for row in rows
        ]


async def _sign_out(runtime: OAuthRuntime, which: SessionsToSignOut, reason: SignOutReason) -> None:
    async with runtime.store.connection() as db:
        await runtime.store.sign_out(db, which, reason, utcnow())


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
    form = await read_form(request)
    forget = form.get("forget_browser", "false").lower()
    if forget not in ("true", "false"):
        raise OAuthError("invalid_request", "forget_browser must be true or false")
    session_id = caller.session.session_id
    await _sign_out(runtime, SessionsToSignOut(session_id=session_id), SignOutReason.REVOKE_CURRENT)
    if forget == "true":
        await anyio.to_thread.run_sync(_forget_browser_of, runtime, session_id)
    return Response(status_code=200, headers=NO_STORE)


async def revoke_listed_sessions(request: Request, runtime: OAuthRuntime) -> Response:
    """`POST /oauth2/revoke/sessions` (`session_ids`, comma-separated): 200, empty body.
    Only the member's sessions of the calling client are signed out."""
    caller = await bearer(request, runtime)
    form = await read_form(request)
    ids = {s.strip() for s in form.get("session_ids", "").split(",") if s.strip()}
    if not ids:
        raise OAuthError("invalid_request", "session_ids missing")
    member_id, client_pk = caller.session.member_id, caller.session.client_pk
    async with runtime.store.connection() as db:
        for session_id in sorted(ids):
            which = SessionsToSignOut(
                session_id=session_id, member_id=member_id, client_pk=client_pk
            )
            await runtime.store.sign_out(db, which, SignOutReason.REVOKE_SESSIONS, utcnow())
    return Response(status_code=200, headers=NO_STORE)


async def revoke_client(request: Request, runtime: OAuthRuntime) -> Response:
    """`POST /oauth2/revoke/client`: every session of this client for the member."""
    caller = await bearer(request, runtime)
    which = SessionsToSignOut(
        member_id=caller.session.member_id, client_pk=caller.session.client_pk
    )
    await _sign_out(runtime, which, SignOutReason.REVOKE_CLIENT)
    return Response(status_code=200, headers=NO_STORE)
