"""An OAuth client for Pitpass and for the service it reproduces.

    client = OAuthClient("https://auth.example/oauth2", "my-app", "its secret",
                         store=FileTokenStore("~/.my-app/tokens.json"))
    client.password_limited("member@example.com", "their password")
    client.access_token()        # valid for a while yet; refreshed when due

Masking (PRODUCT.md §4) is built in: pass the secret and the password as they are.
`access_token()` refreshes single-flight: every thread and process sharing the store
refreshes at most once per expiry, because refresh tokens are single use and a
reuse revokes the member's whole session (RFC 9700 §4.14).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import sys
import threading
import time
import warnings
import webbrowser
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import anyio.to_thread
import httpx

from pitpass_kit.errors import (
    CallbackError,
    InvalidGrant,
    IssuerMismatch,
    KitError,
    NotSignedIn,
    OAuthError,
    RateLimited,
    RateLimitStatus,
    ServerError,
    StateMismatch,
    TemporarilyUnavailable,
    error_from,
    rate_limit_status,
)
from pitpass_kit.loopback import LoopbackReceiver
from pitpass_kit.masking import mask
from pitpass_kit.stores import LockTimeout, MemoryTokenStore, StoreError, TokenSet, TokenStore

# Refresh this long before expiry (capped at half a token's lifetime, TokenSet.fresh).
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0
# After a refresh failed for a passing reason, keep using the still valid token this long
# before trying again, rather than every caller queueing on the lock to fail in turn.
REFRESH_RETRY_SECONDS = 5.0
# The reference's name for its resource-owner password grant (PRODUCT.md §4).
PASSWORD_GRANT = "password_limited"  # noqa: S105 (a grant name)
# Parameters `authorization_request` sets itself: `extra` may not change them.
RESERVED_AUTHORIZE_PARAMETERS = frozenset(
    {"client_id", "redirect_uri", "response_type", "code_challenge", "code_challenge_method"}
    | {"state", "scope", "nonce"}
)
# Failures after which a token that has not yet expired is still worth using.
PASSING_FAILURES = (TemporarilyUnavailable, ServerError, RateLimited, LockTimeout, StoreError)


@dataclass(frozen=True)
class AuthorizationRequest:
    """What a web app keeps (in its session) between sending the member to `/authorize`
    and the redirect back: `to_dict()` and `from_dict()` make it storable."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str
    nonce: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


def s256_challenge(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(verifier)), without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier (RFC 7636 §4.1: 43 to 128 unreserved characters) and its challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256_challenge(verifier)


def _checked_base_url(base_url: str) -> str:
    """A mistyped address is a configuration error, not an outage to retry."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KitError(f"base_url must be an address like https://host/oauth2: {base_url!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        warnings.warn(
            f"{base_url} is plain http: the masked secret and the tokens travel in clear",
            stacklevel=3,
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _callback_parameters(callback: str | Mapping[str, str]) -> dict[str, str]:
    """The redirect's query, given as the full address, a query string or a mapping."""
    if isinstance(callback, Mapping):
        return dict(callback)
    parts = urlsplit(callback)
    query = parts.query if parts.scheme in ("http", "https") else callback.lstrip("?")
    params = dict(parse_qsl(query))
    if not params:
        raise CallbackError(f"no query parameters in the redirect {callback[:200]!r}")
    return params


class OAuthClient:
    """One client of the service, acting for one member through one token store.

    `base_url` is the issuer path (`https://host/oauth2`); the endpoints are under it.
    `issuer` is what RFC 9207's `iss` must equal on the redirect back (the base URL
    unless told otherwise). `require_iss`: True refuses a redirect without `iss`; None
    (the default) requires it when the server's RFC 8414 metadata says it sends it.
    """

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | None = None,
        *,
        store: TokenStore | None = None,
        redirect_uri: str | None = None,
        scope: str | None = None,
        issuer: str | None = None,
        require_iss: bool | None = None,
        password_grant: str = PASSWORD_GRANT,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = _checked_base_url(base_url)
        self.client_id = client_id
        self._masked_secret = None if client_secret is None else mask(client_secret, client_id)
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.issuer = issuer or self.base_url
        self.require_iss = require_iss
        self.password_grant = password_grant
        self.refresh_margin = refresh_margin
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        # The last tokens this process saw: the fast path reads no store while they are fresh.
        self._held: TokenSet | None = None
        # Not before this monotonic time is a failed refresh tried again (REFRESH_RETRY_SECONDS).
        self._refresh_retry_at = 0.0
        # (grant, username) → monotonic time before which the server asked us not to return.
        self._not_before: dict[tuple[str, str], float] = {}
        self._not_before_lock = threading.Lock()
        self.rate_limit: RateLimitStatus | None = None

    # ----- getting tokens ------------------------------------------------------------

    def password_limited(self, username: str, password: str, scope: str | None = None) -> TokenSet:
        """The allow-listed password grant: the password leaves masked with the username.
        The server limits it per client and username; so does the kit's local refusal."""
        form = {"grant_type": self.password_grant, "username": username}
        form["password"] = mask(password, username)
        answer = self._token_request(form | self._scope(scope), who=username.strip().lower())
        return self._keep_new_sign_in(answer)

    def authorization_request(
        self,
        scope: str | None = None,
        *,
        redirect_uri: str | None = None,
        nonce: str | None = None,
        **extra: str,
    ) -> AuthorizationRequest:
        """The `/authorize` URL with PKCE S256 and a fresh `state`; keep the returned
        request until the member comes back (`finish_authorization`). `extra` adds
        parameters such as `prompt`; it cannot change the ones this method sets."""
        clashing = sorted(RESERVED_AUTHORIZE_PARAMETERS & set(extra))
        if clashing:
            raise KitError(f"authorization_request sets {', '.join(clashing)} itself")
        redirect_uri = redirect_uri or self.redirect_uri
        if redirect_uri is None:
            raise KitError("a redirect_uri is needed: pass it here or to OAuthClient")
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        query = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
        } | self._scope(scope)
        if nonce is not None:
            query["nonce"] = nonce
        url = f"{self.base_url}/authorize?{urlencode(query | extra)}"
        return AuthorizationRequest(url, state, verifier, redirect_uri, nonce)

    def finish_authorization(
        self, request: AuthorizationRequest, callback: str | Mapping[str, str]
    ) -> TokenSet:
        """Check the redirect back (state, RFC 9207 `iss`, error) and exchange the code.
        `callback` is the address the member came back to, its query, or its parameters.
        A code works once: take the stored request out of the session before calling this,
        so that a reloaded callback page cannot spend it again (which ends the session)."""
        params = _callback_parameters(callback)
        # RFC 6749 §10.12: an answer carrying another state was not asked for by us.
        if not hmac.compare_digest(params.get("state", "").encode(), request.state.encode()):
            raise StateMismatch("the redirect's state is not the one this request sent")
        iss = params.get("iss")
        if iss is None and self._iss_required():
            raise IssuerMismatch("the redirect carries no iss, and this server sends one")
        if iss is not None and iss != self.issuer:  # RFC 9207 §2.4: simple string comparison
            raise IssuerMismatch(f"the redirect comes from {iss!r}, not {self.issuer!r}")
        if "error" in params:
            raise error_from(
                params["error"],
                params.get("error_description", ""),
                status=None,
                headers={},
                error_uri=params.get("error_uri"),
            )
        code = params.get("code")
        if not code:
            raise CallbackError("the redirect carries neither a code nor an error")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "code_verifier": request.code_verifier,
        }
        return self._keep_new_sign_in(self._token_request(form))

    def sign_in_with_browser(
        self,
        scope: str | None = None,
        *,
        open_browser: Callable[[str], object] | None = None,
        timeout: float = 300.0,
        path: str = "/callback",
    ) -> TokenSet:
        """For native and command-line apps (RFC 8252): listen on an ephemeral loopback
        port, open the system browser at `/authorize`, wait for the redirect back.
        Register `http://127.0.0.1/callback` (no port: any port is accepted, §7.3)."""
        with LoopbackReceiver(path) as receiver:
            request = self.authorization_request(scope, redirect_uri=receiver.redirect_uri)
            if open_browser is not None:
                open_browser(request.url)
            elif not webbrowser.open(request.url):
                # No browser here (SSH, a container): the member can open it elsewhere.
                print(f"Open this address to sign in:\n  {request.url}", file=sys.stderr)
            callback = receiver.wait_for(request.state, timeout)
        return self.finish_authorization(request, callback)

    # ----- using tokens --------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token, refreshed first when it is within the margin of expiry."""
        return self.tokens().access_token

    def tokens(self) -> TokenSet:
        held = self._held
        if held is not None and held.fresh(time.time(), self.refresh_margin):
            return held
        stored = self.store.load()
        if stored is None:
            raise NotSignedIn("no tokens in the store: sign the member in first")
        now = time.time()
        if stored.fresh(now, self.refresh_margin):
            self._held = stored
            return stored
        still_valid = stored.expires_at > now
        can_refresh = stored.refresh_token is not None and (
            stored.refresh_expires_at is None or stored.refresh_expires_at > now
        )
        if still_valid and (not can_refresh or time.monotonic() < self._refresh_retry_at):
            return stored  # nothing to refresh with, or a refresh just failed: use it up
        try:
            return self.refresh(stale_access_token=stored.access_token)
        except PASSING_FAILURES:
            if not still_valid:
                raise
            # The token still works (resource servers check it offline): keep using it.
            self._refresh_retry_at = time.monotonic() + REFRESH_RETRY_SECONDS
            return stored

    def cached_access_token(self) -> str | None:
        """The token this process holds, if still fresh; never waits on a store or a lock."""
        held = self._held
        return held.access_token if held and held.fresh(time.time(), self.refresh_margin) else None

    def refresh(self, stale_access_token: str | None = None) -> TokenSet:
        """Refresh now, holding the store's lock. With `stale_access_token` (the token an
        API refused, or the one found due), a store that already holds another, fresh
        token (someone refreshed while we waited) gives that one instead: one refresh
        per expiry, never a reuse."""
        with self.store.lock():
            current = self.store.load()
            if current is None:
                raise NotSignedIn("no tokens in the store: sign the member in first")
            now = time.time()
            someone_refreshed = (
                stale_access_token is not None and current.access_token != stale_access_token
            )
            if someone_refreshed and current.fresh(now, self.refresh_margin):
                self._held = current
                return current
            if current.refresh_token is None or (
                current.refresh_expires_at is not None and current.refresh_expires_at <= now
            ):
                raise NotSignedIn("the session has no usable refresh token: sign in again")
            form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
            try:
                answer = self._token_request(form)
            except InvalidGrant:
                # Spent, expired or revoked: these tokens will never work again.
                self.store.save(None)
                self._held = None
                raise
            return self._keep(answer, previous=current)

    def sign_out(self) -> None:
        """Revoke the refresh token (RFC 7009), which ends the session, and forget the
        tokens, even when the server cannot be reached."""
        with self.store.lock():
            try:
                current = self.store.load()
                if current is not None and current.refresh_token is not None:
                    self._post(
                        "/revoke",
                        {"token": current.refresh_token, "token_type_hint": "refresh_token"},
                    )
            finally:
                self.store.save(None)
                self._held = None

    def auth(self) -> BearerAuth:
        """An `httpx.Auth` for calls to APIs with this client's tokens."""
        return BearerAuth(self)

    def close(self) -> None:
        """Closes the HTTP client this object made (not one passed in as `http`)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----- the endpoints ---------------------------------------------------------------

    def _scope(self, scope: str | None) -> dict[str, str]:
        scope = scope if scope is not None else self.scope
        return {} if scope is None else {"scope": scope}

    _metadata_says_iss: bool | None = None

    def _iss_required(self) -> bool:
        """RFC 9207 §2.4: a server whose metadata says it sends `iss` must be held to it."""
        if self.require_iss is not None:
            return self.require_iss
        if self._metadata_says_iss is None:
            parts = urlsplit(self.base_url)
            where = f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server"
            try:
                metadata = self._http.get(where + parts.path)
                says = metadata.is_success and bool(
                    metadata.json().get("authorization_response_iss_parameter_supported")
                )
            except (httpx.HTTPError, ValueError, AttributeError):
                says = False  # no metadata (the reference publishes none): not required
            self._metadata_says_iss = says
        return self._metadata_says_iss

    def _token_request(self, form: dict[str, str], who: str = "") -> dict[str, Any]:
        key = (form["grant_type"], who)
        with self._not_before_lock:
            wait = self._not_before.get(key, 0.0) - time.monotonic()
        if wait > 0:
            raise RateLimited(
                f"the server asked for {wait:.0f} s more before another {key[0]}",
                error="unauthorized_client",
                retry_after=wait,
            )
        try:
            return self._post("/token", form)
        except OAuthError as error:
            # Whatever carried Retry-After (a rate limit, a client-authentication
            # throttle): not asked again before then.
            if error.retry_after is not None:
                with self._not_before_lock:
                    self._not_before[key] = time.monotonic() + error.retry_after
            raise

    def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        form = form | {"client_id": self.client_id}
        if self._masked_secret is not None:
            form["client_secret"] = self._masked_secret
        url = f"{self.base_url}{path}"
        try:
            response = self._http.post(url, data=form)
        except httpx.TransportError as error:
            raise TemporarilyUnavailable(f"POST {url}: {error}") from error
        self.rate_limit = rate_limit_status(response.headers) or self.rate_limit
        if response.is_success and not response.content:
            return {}  # RFC 7009 §2.2: revocation answers 200 with no body
        body = _json_object(response)
        if response.is_success:
            if body is None:
                raise ServerError(f"POST {url} answered {response.status_code} without JSON")
            return body
        if body is None or "error" not in body:
            # No error shape (a proxy's page, a wrong address): classified by status alone.
            where = response.headers.get("location")
            detail = f"POST {url} answered {response.status_code} {response.reason_phrase}"
            body = {
                "error": _error_of_status(response.status_code),
                "error_description": detail + (f" ({where})" if where else ""),
            }
        raise error_from(
            str(body.get("error") or ""),
            str(body.get("error_description") or response.reason_phrase),
            status=response.status_code,
            headers=response.headers,
            error_uri=body.get("error_uri"),
        )

    def _keep_new_sign_in(self, answer: dict[str, Any]) -> TokenSet:
        # Under the lock, so that a refresh in flight cannot overwrite the new sign-in.
        with self.store.lock():
            return self._keep(answer, previous=None)

    def _keep(self, answer: dict[str, Any], previous: TokenSet | None) -> TokenSet:
        try:
            now = time.time()
            tokens = TokenSet(
                access_token=str(answer["access_token"]),
                expires_at=now + float(answer["expires_in"]),
                obtained_at=now,
                refresh_token=answer.get("refresh_token"),
                refresh_expires_at=_expiry(now, answer.get("refresh_token_expires_in")),
                scope=str(answer.get("scope", "")),
                token_type=str(answer.get("token_type", "Bearer")),
                id_token=answer.get("id_token"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServerError(f"the token response is not one: {error}") from error
        if previous is not None:
            # RFC 6749 §6/§5.1: a refresh answer may leave out what did not change.
            if "refresh_token" not in answer:
                tokens = replace(
                    tokens,
                    refresh_token=previous.refresh_token,
                    refresh_expires_at=previous.refresh_expires_at,
                )
            if "scope" not in answer:
                tokens = replace(tokens, scope=previous.scope)
        self.store.save(tokens)
        self._held = tokens
        return tokens


def _error_of_status(status: int) -> str:
    if status in (502, 503, 504):
        return "temporarily_unavailable"
    return "server_error" if status >= 500 else ""


def _expiry(now: float, seconds: Any) -> float | None:
    return None if seconds is None else now + float(seconds)


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class BearerAuth(httpx.Auth):
    """Attaches the member's access token; on a 401 refreshes once and retries once.
    Works with `httpx.Client` and `httpx.AsyncClient` alike."""

    def __init__(self, client: OAuthClient) -> None:
        self.client = client

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.read()  # a streamed body is kept, so that the retry can send it again
        token = self.client.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = self.client.refresh(stale_access_token=token)
            request.headers["Authorization"] = f"Bearer {fresh.access_token}"
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()
        # Stores and locks block, so they run in a worker thread; a fresh token does not.
        token = self.client.cached_access_token()
        if token is None:
            token = await anyio.to_thread.run_sync(self.client.access_token)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            fresh = await anyio.to_thread.run_sync(self.client.refresh, token)
            request.headers["Authorization"] = f"Bearer {fresh.access_token}"
            yield request


__all__ = [
    "AuthorizationRequest",
    "BearerAuth",
    "OAuthClient",
    "pkce_pair",
    "s256_challenge",
]
