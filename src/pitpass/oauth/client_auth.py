"""Client authentication (RFC 6749 §2.3): the masked secret (PRODUCT.md §4) in the form
body or with HTTP Basic; public clients send their client_id alone."""

from __future__ import annotations

import base64
import hmac
from urllib.parse import unquote_plus

import anyio

from pitpass.core.policy import OAuthError
from pitpass.db.models import utcnow
from pitpass.oauth.requests import Caller, refuse_nul
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services.client_secrets import secret_hash
from pitpass.storage.records import ClientRecord


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: Basic base64(urlencode(client_id) ":" urlencode(secret))."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        # The header arrives as latin-1 text; anything but base64's ASCII is malformed,
        # and so is a decoded text that is not UTF-8 (RFC 7617 §2.1).
        decoded = base64.b64decode(header[6:].strip().encode("ascii"), validate=True)
        text = decoded.decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeError are ValueErrors
        raise OAuthError("invalid_request", "malformed HTTP Basic credentials") from None
    client_id, colon, secret = text.partition(":")
    if not colon:
        raise OAuthError("invalid_request", "malformed HTTP Basic credentials")
    # Percent-decoding may make bytes that are not UTF-8 (strict, not "replaced") or a NUL.
    try:
        credentials = (
            unquote_plus(client_id, errors="strict"),
            unquote_plus(secret, errors="strict"),
        )
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", "malformed HTTP Basic credentials") from None
    refuse_nul("client_id", credentials[0])
    refuse_nul("client_secret", credentials[1])
    return credentials


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
        raise await _failed(runtime, client_id, caller, "unknown client")
    if client.is_disabled:
        raise OAuthError("unauthorized_client", "this client is disabled")
    if not client.is_confidential:
        if secret:
            raise OAuthError("invalid_client", "this is a public client: it has no secret to send")
        return client
    if not secret:
        raise await _failed(runtime, client_id, caller, "client_secret missing: send it masked")
    presented = secret_hash(runtime.ctx, secret)
    # Every live secret is compared, in constant time (RFC 6749 §10.1, rotation grace).
    matched = False
    for stored in client.secret_hashes:
        matched |= hmac.compare_digest(presented, stored)
    if not matched:
        raise await _failed(
            runtime,
            client_id,
            caller,
            "client authentication failed: send the secret masked with the client_id",
        )
    return client


async def _failed(runtime: OAuthRuntime, client_id: str, caller: Caller, why: str) -> OAuthError:
    """Count the failure; over the limit, say when to come back (PRODUCT.md §4).

    Only failures touch the limiter, so a correct request never waits on it (or
    on Redis): guessing a 256-bit secret fails either way, the limit tames the
    load of the guessing. The counting runs in a thread: a slow Redis must not
    stall the event loop, and every other request with it.
    """
    return await anyio.to_thread.run_sync(_count_failure, runtime, f"{client_id}:{caller.ip}", why)


def _count_failure(runtime: OAuthRuntime, key: str, why: str) -> OAuthError:
    throttle = runtime.ctx.throttles.client_auth
    throttle.count_failure(key)
    if (wait := throttle.retry_after(key)) is not None:
        return OAuthError(
            "invalid_client",
            f"too many failed client authentications; retry in {wait} seconds",
            {"Retry-After": str(wait)},
        )
    return OAuthError("invalid_client", why)
