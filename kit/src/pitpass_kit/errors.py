"""Typed errors: one exception class per error of the service's JSON error shape.

The service answers failures as `{"status", "status_reason", "error",
"error_description", "error_uri"}` (and as `error=…` query parameters on a
redirect). Each `error` value has its class here, so callers catch what they can
act on. A rate limit is never retried blindly: `retry_after` says how many seconds
the server asked for (`Retry-After`), and the client refuses locally until then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A Retry-After beyond this is read as this: a typo on the server must not lock a client
# out for good.
LONGEST_RETRY_AFTER_SECONDS = 86_400.0
# A 429 that says nothing of when to come back: wait this long.
DEFAULT_RETRY_AFTER_SECONDS = 1.0


class KitError(Exception):
    """Anything this kit raises."""


class OAuthError(KitError):
    """An error the server answered, in its error shape."""

    error = "unknown_error"

    def __init__(
        self,
        description: str = "",
        *,
        status: int | None = None,
        error_uri: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
        error: str | None = None,
    ) -> None:
        if error is not None:
            self.error = error
        self.description = description
        self.status = status
        self.error_uri = error_uri
        self.retry_after = retry_after
        self.request_id = request_id
        super().__init__(f"{self.error}: {description}" if description else self.error)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (a ProcessPoolExecutor pickles what a worker raised).
        fields = {
            "status": self.status,
            "error_uri": self.error_uri,
            "retry_after": self.retry_after,
            "request_id": self.request_id,
            "error": self.error,
        }
        return (_rebuild, (type(self), self.description, fields))


def _rebuild(cls: type[OAuthError], description: str, fields: dict[str, Any]) -> OAuthError:
    return cls(description, **fields)


class AccessDenied(OAuthError):
    error = "access_denied"


class InsufficientScope(OAuthError):
    error = "insufficient_scope"


class InvalidClient(OAuthError):
    error = "invalid_client"


class InvalidGrant(OAuthError):
    """The code or refresh token is spent, expired or unknown: sign the member in again."""

    error = "invalid_grant"


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class InvalidToken(OAuthError):
    error = "invalid_token"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class RateLimited(OAuthError):
    """Over a rate limit: the reference answers 400 `unauthorized_client` with
    `Retry-After`, other limits 429. Come back after `retry_after` seconds; `error`
    keeps what the server said."""

    error = "unauthorized_client"
    retry_after: float


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class ServerError(OAuthError):
    error = "server_error"


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"


ERROR_CLASSES: dict[str, type[OAuthError]] = {
    cls.error: cls
    for cls in (
        AccessDenied,
        InsufficientScope,
        InvalidClient,
        InvalidGrant,
        InvalidRequest,
        InvalidScope,
        InvalidToken,
        UnauthorizedClient,
        UnsupportedGrantType,
        UnsupportedResponseType,
        ServerError,
        TemporarilyUnavailable,
    )
}


class CallbackError(KitError):
    """The redirect back from `/authorize` cannot be trusted (RFC 6749 §10.12, RFC 9207)."""


class StateMismatch(CallbackError):
    pass


class IssuerMismatch(CallbackError):
    pass


class NotSignedIn(KitError):
    """The token store holds no tokens: sign the member in first."""


@dataclass(frozen=True)
class RateLimitStatus:
    """The `RateLimit-*` headers of the last answer that carried them."""

    limit: int
    remaining: int
    reset: float


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds (RFC 9110 §10.2.3 also allows an HTTP date; the
    service sends seconds, and a date is read as 'later than now')."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        from time import time

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return LONGEST_RETRY_AFTER_SECONDS
    return min(max(0.0, seconds), LONGEST_RETRY_AFTER_SECONDS)


def rate_limit_status(headers: Mapping[str, str]) -> RateLimitStatus | None:
    try:
        return RateLimitStatus(
            limit=int(headers["ratelimit-limit"]),
            remaining=int(headers["ratelimit-remaining"]),
            reset=float(headers["ratelimit-reset"]),
        )
    except (KeyError, ValueError):
        return None


def error_from(
    error: str,
    description: str,
    *,
    status: int | None,
    headers: Mapping[str, str],
    error_uri: str | None = None,
) -> OAuthError:
    """The typed exception for one error answer (JSON body or redirect parameters)."""
    retry_after = retry_after_seconds(headers)
    cls = ERROR_CLASSES.get(error, OAuthError)
    if status == 429:
        cls = RateLimited
        if retry_after is None:
            # RateLimit-Reset: seconds until the window resets (the IETF draft's reading).
            reset = retry_after_seconds({"retry-after": headers.get("ratelimit-reset", "")})
            retry_after = reset if reset is not None else DEFAULT_RETRY_AFTER_SECONDS
    elif retry_after is not None and error == "unauthorized_client":
        cls = RateLimited
    return cls(
        description,
        error=error or cls.error,
        status=status,
        error_uri=error_uri,
        retry_after=retry_after,
        request_id=headers.get("x-request-id"),
    )


# ----- a resource server's refusals (pitpass_kit.resource) ------------------------------


class TokenRejected(InvalidToken):
    """An access token a resource server must refuse (RFC 6750 §3.1 `invalid_token`, HTTP 401).

    `reason` names the rule it broke: `malformed`, `typ`, `alg`, `kid` (no such key in the
    issuer's JWKS, even after looking again), `signature`, a claim (`iss`, `aud`, `exp`,
    `nbf`, `iat`, `claims` for a missing or ill-typed one), or `inactive` (introspection
    said so: revoked, or its session signed out)."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description, status=401)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.reason, self.description))


class MissingScope(InsufficientScope):
    """A valid access token without every scope the resource needs (RFC 6750 §3.1, HTTP 403).
    `required` is what the resource asked for, `missing` what the token lacks."""

    def __init__(self, required: frozenset[str], granted: frozenset[str]) -> None:
        self.required = tuple(sorted(required))
        self.missing = tuple(sorted(required - granted))
        self._granted = granted
        super().__init__(f"the access token lacks the scope {' '.join(self.missing)}", status=403)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (frozenset(self.required), self._granted))
