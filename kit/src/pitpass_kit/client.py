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
import secrets
import threading
import time
import webbrowser
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import asdict, dataclass
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
from pitpass_kit.stores import MemoryTokenStore, TokenSet, TokenStore

# Refresh this long before expiry (capped at half a token's lifetime, TokenSet.fresh).
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0
# The reference's name for its resource-owner password grant (PRODUCT.md §4).
PASSWORD_GRANT = "password_limited"  # noqa: S105 (a grant name)


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


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OAuthClient:
    """One client of the service, acting for one member through one token store.

    `base_url` is the issuer path (`https://host/oauth2`); the endpoints are under it.
    `issuer` is what RFC 9207's `iss` must equal on the redirect back (the base URL
    unless told otherwise); with `require_iss` a redirect without it is refused too.
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
        require_iss: bool = False,
        password_grant: str = PASSWORD_GRANT,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        http: httpx.Client | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._masked_secret = None if client_secret is None else mask(client_secret, client_id)
        self.store: TokenStore = store if store is not None else MemoryTokenStore()
        self.redirect_uri = redirect_uri
        self.scope = scope
        self.issuer = (issuer or self.base_url).rstrip("/")
        self.require_iss = require_iss
        self.password_grant = password_grant
        self.refresh_margin = refresh_margin
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        # The last tokens this process saw: the fast path reads no store while they are fresh.
        self._held: TokenSet | None = None
        # Grant → monotonic time before which the server asked us not to come back.
        self._not_before: dict[str, float] = {}
        self._not_before_lock = threading.Lock()
        self.rate_limit: RateLimitStatus | None = None

    # ----- getting tokens ------------------------------------------------------------

    def password_limited(self, username: str, password: str, scope: str | None = None) -> TokenSet:
        """The allow-listed password grant: the password leaves masked with the username."""
        form = {"grant_type": self.password_grant, "username": username}
        form["password"] = mask(password, username)
        return self._keep(self._token_request(form | self._scope(scope)))

    def authorization_request(
        self,
        scope: str | None = None,
        *,
        redirect_uri: str | None = None,
        nonce: str | None = None,
        **extra: str,
    ) -> AuthorizationRequest:
        """The `/authorize` URL with PKCE S256 and a fresh `state`; keep the returned
        request until the member comes back (`finish_authorization`)."""
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
        query |= extra
        url = f"{self.base_url}/authorize?{urlencode(query)}"
        return AuthorizationRequest(url, state, verifier, redirect_uri, nonce)

    def finish_authorization(self, request: AuthorizationRequest, callback_url: str) -> TokenSet:
        """Check the redirect back (state, RFC 9207 `iss`, error) and exchange the code."""
        params = dict(parse_qsl(urlsplit(callback_url).query))
        # RFC 6749 §10.12: an answer carrying another state was not asked for by us.
        if not hmac.compare_digest(params.get("state", "").encode(), request.state.encode()):
            raise StateMismatch("the redirect's state is not the one this request sent")
        iss = params.get("iss")
        if iss is None and self.require_iss:
            raise IssuerMismatch("the redirect carries no iss (RFC 9207)")
        if iss is not None and iss.rstrip("/") != self.issuer:
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
        return self._keep(self._token_request(form))

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
            (open_browser or webbrowser.open)(request.url)
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
        if stored.fresh(time.time(), self.refresh_margin):
            self._held = stored
            return stored
        return self.refresh(stale_access_token=stored.access_token)

    def cached_access_token(self) -> str | None:
        """The token this process holds, if still fresh; never waits on a store or a lock."""
        held = self._held
        return held.access_token if held and held.fresh(time.time(), self.refresh_margin) else None

    def refresh(self, stale_access_token: str | None = None) -> TokenSet:
        """Refresh, holding the store's lock. If the store already holds another access
        token than `stale_access_token` (someone refreshed while we waited), that one is
        returned instead: one refresh per expiry, never a reuse."""
        with self.store.lock():
            current = self.store.load()
            if current is None:
                raise NotSignedIn("no tokens in the store: sign the member in first")
            someone_refreshed = current.access_token != stale_access_token
            if someone_refreshed and current.fresh(time.time(), self.refresh_margin):
                self._held = current
                return current
            if current.refresh_token is None or (
                current.refresh_expires_at is not None and current.refresh_expires_at <= time.time()
            ):
                self.store.save(None)
                raise NotSignedIn("the session has no usable refresh token: sign in again")
            form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
            try:
                answer = self._token_request(form)
            except InvalidGrant:
                # Spent, expired or revoked: these tokens will never work again.
                self.store.save(None)
                self._held = None
                raise
            return self._keep(answer)

    def sign_out(self) -> None:
        """Revoke the refresh token (RFC 7009), which ends the session, and forget it."""
        with self.store.lock():
            current = self.store.load()
            if current is not None and current.refresh_token is not None:
                self._post(
                    "/revoke",
                    {"token": current.refresh_token, "token_type_hint": "refresh_token"},
                )
            self.store.save(None)
            self._held = None

    def auth(self) -> BearerAuth:
        """An `httpx.Auth` for calls to APIs with this client's tokens."""
        return BearerAuth(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OAuthClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----- the token endpoint ----------------------------------------------------------

    def _scope(self, scope: str | None) -> dict[str, str]:
        scope = scope if scope is not None else self.scope
        return {} if scope is None else {"scope": scope}

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        grant = form["grant_type"]
        with self._not_before_lock:
            wait = self._not_before.get(grant, 0.0) - time.monotonic()
        if wait > 0:
            raise RateLimited(
                f"the server asked for {wait:.0f} s more before another {grant}",
                error="unauthorized_client",
                retry_after=wait,
            )
        try:
            return self._post("/token", form)
        except RateLimited as limited:
            with self._not_before_lock:
                self._not_before[grant] = time.monotonic() + limited.retry_after
            raise

    def _post(self, path: str, form: dict[str, str]) -> dict[str, Any]:
        form = form | {"client_id": self.client_id}
        if self._masked_secret is not None:
            form["client_secret"] = self._masked_secret
        try:
            response = self._http.post(f"{self.base_url}{path}", data=form)
        except httpx.TransportError as error:
            raise TemporarilyUnavailable(f"{path}: {error}") from error
        self.rate_limit = rate_limit_status(response.headers) or self.rate_limit
        body = _json_object(response)
        if response.is_success:
            return body
        raise error_from(
            str(body.get("error") or ""),
            str(body.get("error_description") or response.reason_phrase),
            status=response.status_code,
            headers=response.headers,
            error_uri=body.get("error_uri"),
        )

    def _keep(self, answer: dict[str, Any]) -> TokenSet:
        try:
            now = time.time()
            refresh_lifetime = answer.get("refresh_token_expires_in")
            tokens = TokenSet(
                access_token=str(answer["access_token"]),
                expires_at=now + float(answer["expires_in"]),
                obtained_at=now,
                refresh_token=answer.get("refresh_token"),
                refresh_expires_at=None if refresh_lifetime is None else now + refresh_lifetime,
                scope=str(answer.get("scope", "")),
                token_type=str(answer.get("token_type", "Bearer")),
                id_token=answer.get("id_token"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServerError(f"the token response is not one: {error}") from error
        self.store.save(tokens)
        self._held = tokens
        return tokens


def _json_object(response: httpx.Response) -> dict[str, Any]:
    if response.is_success and not response.content:
        return {}  # RFC 7009 §2.2: revocation answers 200 with no body
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body
    if response.is_success:
        raise ServerError(f"{response.url.path} answered {response.status_code} without JSON")
    # No error shape (a proxy's page, say): classify by status alone.
    error = "temporarily_unavailable" if response.status_code in (502, 503, 504) else ""
    return {"error": error or ("server_error" if response.status_code >= 500 else "")}


class BearerAuth(httpx.Auth):
    """Attaches the member's access token; on a 401 refreshes once and retries once.
    Works with `httpx.Client` and `httpx.AsyncClient` alike."""

    def __init__(self, client: OAuthClient) -> None:
        self.client = client

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
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
    "OAuthError",
    "pkce_pair",
]
