"""The protocol's policy (PRODUCT.md §4): what Pitpass accepts, how long a session lives,
which errors it answers. One place: the endpoints enforce it, the RFC 8414 metadata
(oauth/discovery.py) and the developer book's tables are generated from it.

Platform-specific names (scopes, the identity scope) come from the compatibility
profile (config.Profile), never from literals here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pitpass.config import Profile
from pitpass.core import openid, pkce
from pitpass.core.scopes import join_scope, parse_scope, unknown_scopes

# ----- grants, response types, PKCE ---------------------------------------------------------

AUTHORIZATION_CODE = "authorization_code"
REFRESH_TOKEN = "refresh_token"  # noqa: S105 - a grant type, not a secret
PASSWORD_LIMITED = "password_limited"  # noqa: S105 - the reference's headless grant
GRANT_TYPES = (AUTHORIZATION_CODE, REFRESH_TOKEN, PASSWORD_LIMITED)
# The grants a client may be approved for (PRODUCT.md §3 "flows"); refresh follows either.
CLIENT_FLOWS = (AUTHORIZATION_CODE, PASSWORD_LIMITED)
RESPONSE_TYPES = ("code",)
RESPONSE_MODES = ("query",)
PKCE_METHODS = pkce.METHODS
DEFAULT_PKCE_METHOD = pkce.DEFAULT_METHOD

# ----- clients and how they authenticate (RFC 6749 §2.1, §2.3) ------------------------------

CONFIDENTIAL_CLIENT_TYPE = "server-side"  # the one type that holds a secret
PUBLIC_CLIENT_TYPES = ("single-page-app", "mobile", "native")
CLIENT_TYPES = (CONFIDENTIAL_CLIENT_TYPE, *PUBLIC_CLIENT_TYPES)
# The secret, masked (PRODUCT.md §4), in the form body or with HTTP Basic; public: none.
TOKEN_AUTH_METHODS = ("client_secret_post", "client_secret_basic", "none")
# Introspection answers resource servers, which authenticate as confidential clients.
INTROSPECTION_AUTH_METHODS = ("client_secret_post", "client_secret_basic")


def is_confidential(client_type: str) -> bool:
    return client_type == CONFIDENTIAL_CLIENT_TYPE


# ----- scopes (RFC 6749 §3.3) ---------------------------------------------------------------


class ScopeRefused(ValueError):
    """A scope the server does not know, or (at a refresh) more than was granted; the
    message is the error_description clients see."""


def requested_scope(raw: str | None, profile: Profile, *, openid_allowed: bool = False) -> str:
    """The scope a request asks for, or the profile's default when it names none.

    `openid` (OpenID Connect) is an addition that only `/authorize` accepts: the profile's
    scopes are checked as before, and `openid` alone asks for nothing else (it is not
    topped up with the default scope)."""
    wanted = parse_scope(raw) if raw and raw.strip() else [profile.default_scope]
    if openid.OPENID_SCOPE in wanted and not openid_allowed:
        raise ScopeRefused(
            f"scope {openid.OPENID_SCOPE} is for signing in through /authorize "
            "(OpenID Connect), not for this grant"
        )
    known = [*profile.scopes, openid.OPENID_SCOPE] if openid_allowed else profile.scopes
    if extra := unknown_scopes(wanted, known):
        raise ScopeRefused(f"unknown scope {extra[0]}")
    return join_scope(wanted)


def narrowed_scope(raw: str | None, granted: str) -> str:
    """RFC 6749 §6: a refresh may ask for fewer scopes than granted, never more."""
    if not raw:
        return granted
    wanted = parse_scope(raw)
    if extra := unknown_scopes(wanted, granted.split()):
        raise ScopeRefused(f"scope {extra[0]} was not granted to this session")
    return join_scope(wanted)


def scope_words(profile: Profile) -> dict[str, str]:
    """The words a member reads for each scope: the profile's, and OpenID Connect's."""
    return profile.scopes | {openid.OPENID_SCOPE: openid.OPENID_MEANING}


def scope_meanings(scope: str, profile: Profile) -> list[tuple[str, str]]:
    """Each scope with the words a member reads for it (consent page, /sessions)."""
    words = scope_words(profile)
    return [(name, words.get(name, name)) for name in scope.split()]


def grants_refresh(scope: str, refresh_token_seconds: int, profile: Profile) -> bool:
    """A grant for identity verification only gets no refresh token (PRODUCT.md §4),
    nor does a client whose refresh tokens are switched off (lifetime 0). `openid` is
    identity too: a sign-in asking only for it, or for it and the identity scope, gets none."""
    identity_only = set(scope.split()) <= {profile.identity_scope, openid.OPENID_SCOPE}
    return not identity_only and refresh_token_seconds > 0


# ----- token lifetimes and sessions --------------------------------------------------------

DEFAULT_ACCESS_TOKEN_SECONDS = 600
DEFAULT_REFRESH_TOKEN_SECONDS = 7 * 86_400
DEFAULT_REFRESH_GRACE_SECONDS = 0
# Bounds of the per-client lifetimes staff may set (PRODUCT.md §4 gives the defaults).
LIFETIME_BOUNDS = {
    # From 10 s: a client developer testing their refresh logic (the kit, issue #13).
    "access_token_seconds": (10, 86_400),
    "refresh_token_seconds": (0, 90 * 86_400),  # 0: no refresh tokens for this client
    "refresh_grace_seconds": (0, 300),
}


class SpentRefresh(StrEnum):
    """What presenting an already spent refresh token is (`judge_spent_refresh`)."""

    GRACE = "grace"  # inside the client's grace period: reissue, spend nothing
    RETRY = "retry"  # perhaps a retry of an unanswered rotation: look at the successor
    REUSE = "reuse"  # RFC 9700 §4.14.2: the token leaked; end the session


def judge_spent_refresh(
    spent_at: datetime, retired: bool, grace_seconds: int, now: datetime
) -> SpentRefresh:
    """A successor that a retry `retired` is never usable again: had its answer reached
    someone after all, that someone is not the client that retried. A client with a grace
    period (`refresh_grace_seconds` > 0) has its retries covered by it, and only by it:
    a grace reissue is not the rotation's recorded successor, so the retry rule would
    leave two live chains. With the default grace of 0, `is_retry_of_unanswered_rotation`
    decides. docs/decisions.md "A rotation nobody heard" gives the trade-off."""
    if retired:
        return SpentRefresh.REUSE
    if grace_seconds > 0:
        # `now` was read before another request's `used_at`: a racer can see a negative
        # age, which is inside any grace period.
        inside = (now - spent_at).total_seconds() <= grace_seconds
        return SpentRefresh.GRACE if inside else SpentRefresh.REUSE
    return SpentRefresh.RETRY


def is_retry_of_unanswered_rotation(
    spent_at: datetime, successor_used: bool, now: datetime, retry_seconds: int
) -> bool:
    """A spent refresh token presented again (grace 0, not retired): a client retrying a
    rotation it never heard back from (a timeout, a dropped connection, a server killed
    after its commit), rather than a reuse (RFC 9700 §4.14.2)?

    Yes while the token it was rotated into has never been used, within `retry_seconds`
    of the rotation: the unused successor is then retired and a new one issued, so the
    session still has one live refresh token. Once the successor was used, or later, it
    is reuse as before."""
    if successor_used:
        return False
    return (now - spent_at).total_seconds() <= retry_seconds


def session_expires_at(
    now: datetime, access_token_seconds: int, refresh_token_seconds: int
) -> datetime:
    """A session lives as long as the longest token issued in it: its refresh token, and
    never less than its access token (a client without refresh tokens still has a live
    session while its access token is valid). Opening and every refresh set it anew."""
    return now + timedelta(seconds=max(access_token_seconds, refresh_token_seconds))


class SessionLiveness(Protocol):
    """What decides whether a session is live."""

    @property
    def revoked(self) -> bool: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def member_disabled(self) -> bool: ...
    @property
    def client_disabled(self) -> bool: ...


def why_not_live(session: SessionLiveness, now: datetime) -> str | None:
    """The one rule of a live session: not signed out, not expired, and neither its
    member nor its client disabled. None when live, else why not (for error messages).
    Introspection, Bearer endpoints, the grants, `/sessions` and the account page use it."""
    if session.revoked:
        return "the session was signed out"
    if session.expires_at <= now:
        return "the session expired"
    if session.member_disabled:
        return "the member's account is disabled"
    if session.client_disabled:
        return "this client is disabled"
    return None


def session_is_live(session: SessionLiveness, now: datetime) -> bool:
    return why_not_live(session, now) is None


class SignOutReason(StrEnum):
    """Why a session was signed out: the closed set stored in `oauth_sessions.revoked_reason`."""

    CODE_REPLAY = "code_replay"  # RFC 6749 §4.1.2
    REFRESH_TOKEN_REUSE = "refresh_token_reuse"  # noqa: S105 - RFC 9700 §4.14.2
    RFC7009 = "rfc7009"  # the client revoked a token
    REVOKE_CURRENT = "revoke_current"  # the reference's /revoke/current
    REVOKE_SESSIONS = "revoke_sessions"  # the reference's /revoke/sessions
    REVOKE_CLIENT = "revoke_client"  # the reference's /revoke/client
    MEMBER_SIGNED_OUT = "member_signed_out"  # from the account page, one session
    MEMBER_DISCONNECTED = "member_disconnected"  # from the account page, one app
    CLIENT_DISABLED = "client_disabled"  # by staff
    ACCOUNT_DELETED = "account_deleted"  # the member deleted their account
    MEMBER_DISABLED = "member_disabled"  # by staff (issue #12, item 7)
    PASSWORD_RESET = "password_reset"  # noqa: S105 - the member reset a forgotten password


# ----- errors (PRODUCT.md §4) --------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRule:
    status: int
    reason: str  # `status_reason`; invalid_client's is the reference's own
    explanation: str  # the developer book's line: what it means and what to do


ERRORS = {
    "access_denied": ErrorRule(
        401, "Unauthorized", "The member declined, or is not allowed. Ask again later; do not loop."
    ),
    "insufficient_scope": ErrorRule(
        403,
        "Forbidden",
        "The access token lacks the scope this endpoint needs: ask for it at `/authorize`.",
    ),
    "invalid_client": ErrorRule(
        403,
        "Unauthorized",
        "The client is unknown, or its authentication failed: send the client secret masked "
        "with the client_id, once (body or HTTP Basic).",
    ),
    "invalid_grant": ErrorRule(
        400,
        "Bad Request",
        "The code or refresh token is unknown, expired, already used or issued to another "
        "client; or the PKCE verifier or redirect_uri does not match. Start a new authorization.",
    ),
    "invalid_request": ErrorRule(
        400,
        "Bad Request",
        "A parameter is missing, repeated or malformed; the description says which.",
    ),
    "invalid_scope": ErrorRule(400, "Bad Request", "A scope is unknown, or more than was granted."),
    "invalid_token": ErrorRule(
        401,
        "Unauthorized",
        "The access token is malformed, expired, or its session was signed out.",
    ),
    "unauthorized_client": ErrorRule(
        400,
        "Bad Request",
        "This client may not use this flow, is disabled, or is over its rate limit (then "
        "`Retry-After` says when to come back).",
    ),
    "unsupported_grant_type": ErrorRule(
        400, "Bad Request", "Use " + ", ".join(GRANT_TYPES[:-1]) + f" or {GRANT_TYPES[-1]}."
    ),
    "unsupported_response_type": ErrorRule(
        400, "Bad Request", "Use " + " or ".join(f"response_type={t}" for t in RESPONSE_TYPES) + "."
    ),
    # OpenID Connect Core §3.1.2.6 and §6: only ever sent back to a redirect URI, to a
    # request whose scope has `openid`; the status is what the JSON shape would carry.
    "login_required": ErrorRule(
        401,
        "Unauthorized",
        "OpenID Connect, `prompt=none`: the member would have to sign in (or sign in again "
        "for `max_age`). Send them to `/authorize` without `prompt=none`.",
    ),
    "consent_required": ErrorRule(
        401,
        "Unauthorized",
        "OpenID Connect, `prompt=none`: the member has not agreed to these scopes for "
        "your client. Send them to `/authorize` without `prompt=none`.",
    ),
    "request_not_supported": ErrorRule(
        400, "Bad Request", "OpenID Connect request objects (`request`) are not supported."
    ),
    "request_uri_not_supported": ErrorRule(
        400, "Bad Request", "OpenID Connect `request_uri` is not supported."
    ),
    "registration_not_supported": ErrorRule(
        400,
        "Bad Request",
        "OpenID Connect's `registration` parameter is not supported: clients are registered "
        "through the developer portal.",
    ),
    "server_error": ErrorRule(
        500, "Internal Server Error", "Something failed on our side; quote the `x-request-id`."
    ),
    "temporarily_unavailable": ErrorRule(503, "Service Unavailable", "Try again shortly."),
}


class OAuthError(Exception):
    """An error of the table above, with its description and any extra response headers."""

    def __init__(self, error: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        if error not in ERRORS:
            raise ValueError(f"unknown OAuth error {error!r}")
        self.error = error
        self.description = description
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return ERRORS[self.error].status


def error_uri(issuer: str, error: str) -> str:
    """Each error's entry in the developer book (PRODUCT.md §5)."""
    return f"{issuer}/book/errors.html#{error}"
