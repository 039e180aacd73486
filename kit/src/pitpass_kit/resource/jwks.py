"""The issuer's signing keys, read from its JWKS (RFC 7517) and kept in memory.

RFC 9068 §4 step 5: a resource server verifies with the keys the authorization server
publishes, here `<issuer>/jwks` (the token's own `jku` header is never followed: it is
whatever the sender wrote). The set is fetched on first use, again once it is
`max_age` old, and again when a token names a `kid` it lacks (a rotation): but never
twice within `min_refetch_interval`, so a flood of made-up `kid`s costs a dictionary
miss each and the issuer one request per interval. A failed fetch keeps the keys we
had; the next attempt waits out the same interval.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from pitpass_kit.errors import TemporarilyUnavailable, TokenRejected

ALGORITHM = "ES256"  # the only one Pitpass signs with, and the only one accepted
MAX_JWKS_BYTES = 256 * 1024  # a key set of a few keys is ~200 bytes each

log = logging.getLogger("pitpass_kit.resource")


class WouldBlock(Exception):
    """Raised instead of a network call when the caller said it may not block (an event
    loop); the caller repeats the work in a worker thread."""


class _FetchFailed(Exception):
    pass


class JwksCache:
    """Thread-safe: lookups read without a lock; one thread fetches at a time, and threads
    that waited for it use its answer instead of fetching again."""

    def __init__(
        self,
        uri: str,
        http: httpx.Client,
        *,
        max_age: float,
        min_refetch_interval: float,
        timer: Callable[[], float],
    ) -> None:
        self.uri = uri
        self.http = http
        self.max_age = max_age
        self.min_refetch_interval = min_refetch_interval
        self.timer = timer
        self.fetches = 0  # attempts so far
        self._lock = threading.Lock()
        self._keys: Mapping[str, ECKey] | None = None
        self._fetched_at = -math.inf  # timer() of the last fetch that succeeded
        self._attempted_at = -math.inf  # timer() of the last attempt, whatever came of it
        self._failure: str | None = None  # why the last attempt failed, if it did

    def key(self, kid: str, *, may_block: bool = True) -> ECKey:
        """The public key `kid`, else TokenRejected(`kid`) once the set was looked at again
        (or could not be: then TemporarilyUnavailable, as we cannot tell)."""
        keys = self._keys
        if keys is not None and self.timer() - self._fetched_at < self.max_age:
            found = keys.get(kid)
            if found is not None:
                return found  # the common case: fresh set, known key
        attempted = self._attempted_at
        if self.timer() - attempted >= self.min_refetch_interval:
            if not may_block:
                raise WouldBlock
            self._refresh(attempted)
        elif self._lock.locked():
            # Another thread's fetch is under way (it set `_attempted_at` first): wait
            # for its answer rather than answer from the set it is replacing.
            if not may_block:
                raise WouldBlock
            with self._lock:
                pass
        keys = self._keys
        if keys is None:
            raise TemporarilyUnavailable(
                f"the issuer's keys could not be fetched from {self.uri}: {self._failure}",
                status=503,
            )
        found = keys.get(kid)
        if found is not None:
            return found  # possibly from a set past max_age, if the last fetch failed
        if self._failure is not None:
            raise TemporarilyUnavailable(
                f"no key {kid!r} known, and the issuer's keys could not be fetched again: "
                f"{self._failure}",
                status=503,
            )
        raise TokenRejected("kid", f"the issuer publishes no key {kid!r}")

    def _refresh(self, attempted: float) -> None:
        with self._lock:
            if self._attempted_at != attempted:
                return  # another thread fetched while we waited for the lock
            self._attempted_at = self.timer()
            self.fetches += 1
            try:
                keys = self._fetch()
            except _FetchFailed as failure:
                self._failure = str(failure)
                log.warning("JWKS fetch from %s failed: %s", self.uri, failure)
                return
            self._keys, self._fetched_at, self._failure = keys, self._attempted_at, None

    def _fetch(self) -> dict[str, ECKey]:
        try:
            # Never through a redirect (httpx follows none unless told to).
            with self.http.stream("GET", self.uri, headers={"Accept": "application/json"}) as got:
                if got.status_code != 200:
                    raise _FetchFailed(f"HTTP {got.status_code}")
                body = bytearray()
                for chunk in got.iter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _FetchFailed(f"more than {MAX_JWKS_BYTES} bytes")
        except httpx.HTTPError as error:
            raise _FetchFailed(f"{type(error).__name__}: {error}") from error
        try:
            document = json.loads(bytes(body))
        except ValueError as error:
            raise _FetchFailed("not JSON") from error
        listed = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(listed, list):
            raise _FetchFailed("no 'keys' array")
        keys = {kid: key for kid, key in map(_public_es256_key, listed) if key is not None}
        if not keys:
            raise _FetchFailed("no ES256 signing key in the set")
        return keys


def _public_es256_key(jwk: Any) -> tuple[str, ECKey | None]:
    """(kid, key) of a P-256 signing key, only its public members; (…, None) for any other."""
    if not isinstance(jwk, dict):
        return "", None
    kid = jwk.get("kid")
    if (
        not isinstance(kid, str)
        or jwk.get("kty") != "EC"
        or jwk.get("crv") != "P-256"
        or jwk.get("use", "sig") != "sig"
        or jwk.get("alg", ALGORITHM) != ALGORITHM
    ):
        return "", None
    try:
        public = {name: jwk[name] for name in ("kty", "crv", "x", "y")}
        return kid, ECKey.import_key(public)
    except (JoseError, KeyError, TypeError, ValueError):
        return "", None
