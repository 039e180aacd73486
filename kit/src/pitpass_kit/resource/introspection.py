"""Asking the issuer whether a token is still active (RFC 7662), with a short cache.

Offline verification cannot know that a member signed out or that a session was
revoked; `POST <issuer>/introspect` can. The resource server authenticates as a
confidential client, its secret masked with its client_id as every Pitpass client
secret is (PRODUCT.md §4). Answers, active or not, are kept `ttl` seconds by a hash
of the token, at most `size` of them: a sign-out takes effect within `ttl`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import httpx

from pitpass_kit.errors import TemporarilyUnavailable, TokenRejected, error_from
from pitpass_kit.masking import mask
from pitpass_kit.resource.jwks import WouldBlock


class Introspector:
    def __init__(
        self,
        endpoint: str,
        client_id: str,
        client_secret: str,
        http: httpx.Client,
        *,
        ttl: float,
        size: int,
        timer: Callable[[], float],
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self._masked_secret = mask(client_secret, client_id)
        self.http = http
        self.ttl = ttl
        self.size = size
        self.timer = timer
        self.requests = 0  # asked the issuer this many times
        self._lock = threading.Lock()
        self._answers: OrderedDict[bytes, tuple[bool, float]] = OrderedDict()

    def check(self, token: str, digest: bytes, *, may_block: bool) -> None:
        """Nothing if the issuer calls the token active (now, or within `ttl`), else
        TokenRejected(`inactive`)."""
        now = self.timer()
        with self._lock:
            answer = self._answers.get(digest)
            if answer is not None and answer[1] > now:
                self._answers.move_to_end(digest)
                active: bool | None = answer[0]
            else:
                active = None
        if active is None:
            if not may_block:
                raise WouldBlock
            active = self._ask(token)
            with self._lock:
                self._answers[digest] = (active, self.timer() + self.ttl)
                self._answers.move_to_end(digest)
                while len(self._answers) > self.size:
                    self._answers.popitem(last=False)
        if not active:
            raise TokenRejected(
                "inactive", "the issuer says the access token is no longer active (signed out)"
            )

    def _ask(self, token: str) -> bool:
        form = {
            "token": token,
            "token_type_hint": "access_token",
            "client_id": self.client_id,
            "client_secret": self._masked_secret,
        }
        self.requests += 1
        try:
            response = self.http.post(self.endpoint, data=form)
        except httpx.HTTPError as error:
            raise TemporarilyUnavailable(
                f"introspection at {self.endpoint} failed: {type(error).__name__}: {error}",
                status=503,
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise TemporarilyUnavailable(
                f"introspection answered HTTP {response.status_code} without JSON", status=503
            )
        if response.status_code == 200 and isinstance(body.get("active"), bool):
            return bool(body["active"])  # RFC 7662 §2.2: `active` is the answer
        if response.status_code >= 500 or response.status_code == 200:
            raise TemporarilyUnavailable(
                f"introspection answered HTTP {response.status_code} without an answer",
                status=503,
            )
        # A refusal of the resource server itself (wrong secret: invalid_client): an
        # operator's problem, raised as the typed error, never a token's rejection.
        raise error_from(
            str(body.get("error") or ""),
            str(body.get("error_description") or response.reason_phrase),
            status=response.status_code,
            headers=response.headers,
            error_uri=body.get("error_uri"),
        )
