"""Bearer access tokens at the member endpoints (RFC 6750 §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from pitpass.core import policy
from pitpass.core.policy import OAuthError
from pitpass.db.models import utcnow
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.storage.records import SessionRecord


@dataclass(frozen=True)
class Bearer:
    claims: dict[str, Any]
    session: SessionRecord


async def bearer(request: Request, runtime: OAuthRuntime, needs_scope: str | None = None) -> Bearer:
    """The caller's valid access token and its live session, else invalid_token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise OAuthError("invalid_token", "send the access token as Authorization: Bearer …")
    now = utcnow()
    claims = runtime.signer.verify(token.strip(), now)
    if claims is None:
        raise OAuthError("invalid_token", "the access token is invalid or expired")
    async with runtime.store.connection() as db:
        session = await runtime.store.session(db, str(claims.get("session_id")))
    if session is None or not policy.session_is_live(session, now):
        raise OAuthError("invalid_token", "the session of this access token was signed out")
    if needs_scope and needs_scope not in str(claims.get("scope") or "").split():
        raise OAuthError("insufficient_scope", f"this endpoint needs the {needs_scope} scope")
    return Bearer(claims, session)
