"""`TokenVerifier`: a resource server's check of a Pitpass access token.

    verifier = TokenVerifier("https://auth.example/oauth2", "data-server")
    token = verifier.verify(access_token, scopes=["iracing.auth"])
    token.customer_id, token.client_id, token.scopes

Access tokens are JWTs of RFC 9068's profile, signed ES256 by the issuer. The
validation of RFC 9068 §4, in its order:
1. the header's `typ` is `at+jwt` (or `application/at+jwt`);
3. `iss` is exactly the issuer;
4. `aud` names this resource server;
5. the signature verifies with the issuer's key named by `kid` (from its JWKS, never
   from the token's `jku`), with ES256 and nothing else: the token's `alg` does not
   choose the algorithm, so `none` and HS256-keyed-with-the-public-key fail;
6. `exp` has not passed (nor `nbf` and `iat` still to come), within `leeway` seconds;
7. the resource's required scopes are all in `scope`.
(Step 2, encrypted tokens, does not apply: Pitpass signs, never encrypts.)

A verified token is remembered by a SHA-256 hash of its text, at most `cache_size`
of them (least recently used out first), so a token presented again costs a hash and
a dictionary look-up; its `exp`, the presence of its key in the JWKS and the scopes
asked are checked on every use. With `introspection=(client_id, client_secret)` each
token that passed offline is also checked with the issuer (RFC 7662), answers kept
`introspection_ttl` seconds: that catches signed-out sessions.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import anyio.to_thread
import httpx
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingAlgorithmError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

from pitpass_kit.errors import KitError, MissingScope, TokenRejected
from pitpass_kit.resource.introspection import Introspector
from pitpass_kit.resource.jwks import ALGORITHM, JwksCache, WouldBlock

# RFC 9068 §4 step 1 (media types compare case-insensitively, RFC 2045 §5.1).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_CHARS = 8192  # Pitpass's are under 1,000; longer is junk, refused before hashing

DEFAULT_LEEWAY_SECONDS = 30
DEFAULT_MIN_REFETCH_SECONDS = 10.0
DEFAULT_JWKS_MAX_AGE_SECONDS = 300.0
DEFAULT_CACHE_SIZE = 10_000
DEFAULT_INTROSPECTION_TTL_SECONDS = 10.0

# ES256 only; header parameters beyond RFC 7515's are ignored, as RFC 7515 §4 says,
# unless listed in `crit` (then refused).
_SIGNATURES = JWSRegistry(algorithms=[ALGORITHM], strict_check_header=False)

Scopes = str | Iterable[str]


@dataclass(frozen=True)
class VerifiedToken:
    """An access token that passed: its claims (read-only) and the ones most often needed."""

    claims: Mapping[str, Any]
    subject: str
    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    expires_at: float
    issued_at: float
    token_id: str
    key_id: str
    session_id: str | None
    customer_id: int | None

    def has_scopes(self, scopes: Scopes) -> bool:
        return scope_set(scopes) <= self.scopes


def scope_set(scopes: Scopes) -> frozenset[str]:
    """Scopes as a set; a string is a space-separated list, as in the `scope` claim."""
    if isinstance(scopes, str):
        return frozenset(scopes.split())
    return frozenset(scopes)


class TokenVerifier:
    """Verifies access tokens of one issuer for one resource server (`audience`: its
    identifier, or several, any of which the token's `aud` may name). Thread-safe; one
    per process is enough.

    Rejections raise `TokenRejected` (`invalid_token`, with a `reason`) or `MissingScope`
    (`insufficient_scope`); `TemporarilyUnavailable` when the issuer's keys or its
    introspection cannot be reached and nothing cached decides."""

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        jwks_uri: str | None = None,
        leeway: int = DEFAULT_LEEWAY_SECONDS,
        min_refetch_interval: float = DEFAULT_MIN_REFETCH_SECONDS,
        jwks_max_age: float = DEFAULT_JWKS_MAX_AGE_SECONDS,
        cache_size: int = DEFAULT_CACHE_SIZE,
        introspection: tuple[str, str] | None = None,
        introspection_endpoint: str | None = None,
        introspection_ttl: float = DEFAULT_INTROSPECTION_TTL_SECONDS,
        customer_id_claim: str = "iracing_cust_id",
        http: httpx.Client | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not self.audiences:
            raise KitError("a resource server needs its audience: the `aud` value it answers to")
        self.leeway = leeway
        self.cache_size = cache_size
        self.customer_id_claim = customer_id_claim
        self.clock = clock
        self._own_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)
        base = issuer.rstrip("/")
        self.jwks = JwksCache(
            jwks_uri or f"{base}/jwks",
            self.http,
            max_age=jwks_max_age,
            min_refetch_interval=min_refetch_interval,
            timer=timer,
        )
        self.introspector: Introspector | None = None
        if introspection is not None:
            client_id, client_secret = introspection
            self.introspector = Introspector(
                introspection_endpoint or f"{base}/introspect",
                client_id,
                client_secret,
                self.http,
                ttl=introspection_ttl,
                size=cache_size,
                timer=timer,
            )
        self._claims_rules = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=leeway,
            # RFC 9068 §2.2's claims, all required; `iss` exactly, `aud` naming one of ours.
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "values": list(self.audiences)},
            exp={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    # ----- verifying --------------------------------------------------------------------

    def verify(
        self, token: str, scopes: Scopes = (), *, introspect: bool | None = None
    ) -> VerifiedToken:
        """The verified token, else TokenRejected or MissingScope. May block on a JWKS
        fetch (rare) or an introspection; in async code use `verify_async`.
        `introspect`: ask the issuer too (default: when `introspection` was given)."""
        return self._verify(token, scope_set(scopes), self._introspects(introspect), True)

    async def verify_async(
        self, token: str, scopes: Scopes = (), *, introspect: bool | None = None
    ) -> VerifiedToken:
        """As `verify`, on the event loop when no network call is needed (a known key, a
        cached answer), else in a worker thread so the loop never waits on the network."""
        required, introspects = scope_set(scopes), self._introspects(introspect)
        try:
            return self._verify(token, required, introspects, False)
        except WouldBlock:
            work = functools.partial(self._verify, token, required, introspects, True)
            return await anyio.to_thread.run_sync(work)

    def _introspects(self, introspect: bool | None) -> bool:
        if introspect and self.introspector is None:
            raise KitError("introspection asked, but the verifier has no introspection=")
        return self.introspector is not None if introspect is None else introspect

    def _verify(
        self, token: str, required: frozenset[str], introspect: bool, may_block: bool
    ) -> VerifiedToken:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise TokenRejected("malformed", "the access token is not a signed JWT")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        verified = self._remembered(digest, may_block)
        if verified is None:
            verified = self._check(token, may_block)
            self._remember(digest, verified)
        if introspect:
            assert self.introspector is not None
            self.introspector.check(token, digest, may_block=may_block)
        if not required <= verified.scopes:  # RFC 9068 §4 step 7; RFC 6750 §3.1
            raise MissingScope(required, verified.scopes)
        return verified

    # ----- the cache of verified tokens -------------------------------------------------

    def _remembered(self, digest: bytes, may_block: bool) -> VerifiedToken | None:
        with self._lock:
            verified = self._verified.get(digest)
            if verified is None:
                return None
            self._verified.move_to_end(digest)
        try:
            if verified.expires_at <= int(self.clock()) - self.leeway:  # as joserfc's rule
                raise TokenRejected("exp", "the access token has expired")
            self.jwks.key(verified.key_id, may_block=may_block)  # still published?
        except TokenRejected:
            with self._lock:
                self._verified.pop(digest, None)
            raise
        return verified

    def _remember(self, digest: bytes, verified: VerifiedToken) -> None:
        with self._lock:
            self._verified[digest] = verified
            while len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)

    # ----- RFC 9068 §4 ------------------------------------------------------------------

    def _check(self, token: str, may_block: bool) -> VerifiedToken:
        if token.count(".") != 2:
            raise TokenRejected("malformed", "the access token is not a signed JWT")
        key_for = functools.partial(self._key_for, may_block=may_block)
        try:
            # Steps 1 and 5: joserfc refuses any `alg` but ES256 before asking `key_for`,
            # which checks `typ` and finds the key by `kid`; then the signature.
            decoded = jwt.decode(token, key_for, registry=_SIGNATURES)
        except (UnsupportedAlgorithmError, MissingAlgorithmError) as error:
            raise TokenRejected("alg", f"only {ALGORITHM} access tokens are accepted") from error
        except BadSignatureError as error:
            raise TokenRejected("signature", "the access token's signature is wrong") from error
        except (JoseError, ValueError, TypeError) as error:
            raise TokenRejected("malformed", "the access token is not a signed JWT") from error
        claims = decoded.claims
        try:
            self._claims_rules.validate(claims)  # steps 3, 4 and 6
        except ClaimError as error:
            raise _claim_rejection(error, claims) from error
        return self._verified_token(claims, str(decoded.header["kid"]))

    def _key_for(self, token: Any, *, may_block: bool) -> ECKey:
        header = token.headers()
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise TokenRejected("typ", "not an access token: its typ is not at+jwt (RFC 9068)")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise TokenRejected("kid", "the access token names no key (kid)")
        return self.jwks.key(kid, may_block=may_block)

    def _verified_token(self, claims: dict[str, Any], kid: str) -> VerifiedToken:
        subject, client_id, scope = claims["sub"], claims["client_id"], claims.get("scope", "")
        if not isinstance(client_id, str) or not isinstance(scope, str | None):
            raise TokenRejected("claims", "the access token's client_id or scope is malformed")
        audience = claims["aud"]
        customer_id = claims.get(self.customer_id_claim)
        session_id = claims.get("session_id")
        return VerifiedToken(
            claims=MappingProxyType(claims),
            subject=subject,
            client_id=client_id,
            scopes=frozenset((scope or "").split()),
            audience=(audience,) if isinstance(audience, str) else tuple(audience),
            expires_at=claims["exp"],
            issued_at=claims["iat"],
            token_id=claims["jti"],
            key_id=kid,
            session_id=session_id if isinstance(session_id, str) else None,
            customer_id=customer_id if type(customer_id) is int else None,
        )

    # ----- for web frameworks -----------------------------------------------------------

    def dependency(
        self,
        scopes: Scopes = (),
        *,
        introspect: bool | None = None,
        realm: str | None = None,
    ) -> Callable[..., Awaitable[VerifiedToken]]:
        """A FastAPI dependency: `token: VerifiedToken = Depends(verifier.dependency(["s"]))`.
        Answers RFC 6750 §3's 401, 403 or 400 with `WWW-Authenticate`; for the body, see
        `pitpass_kit.resource.dependency.install_error_handler`. FastAPI is imported
        only here: the kit does not depend on it."""
        from pitpass_kit.resource.dependency import bearer_dependency

        return bearer_dependency(self, scope_set(scopes), introspect, realm)


_CLAIM_REJECTIONS = {
    "iss": "the access token comes from another issuer",
    "aud": "the access token is not meant for this resource server (aud)",
    "nbf": "the access token is not valid yet (nbf)",
    "iat": "the access token was issued in the future (iat)",
}


def _claim_rejection(error: ClaimError, claims: Mapping[str, Any]) -> TokenRejected:
    if isinstance(error, ExpiredTokenError):
        return TokenRejected("exp", "the access token has expired")
    if isinstance(error, MissingClaimError):
        return TokenRejected("claims", f"the access token lacks the claims {error.claim}")
    value = claims.get(error.claim)
    is_time = type(value) is int or (type(value) is float and math.isfinite(value))
    ill_typed = error.claim in ("exp", "nbf", "iat") and not is_time
    if error.claim in _CLAIM_REJECTIONS and not ill_typed:
        return TokenRejected(error.claim, _CLAIM_REJECTIONS[error.claim])
    return TokenRejected("claims", f"the access token's {error.claim} claim is malformed")
