"""OpenID Connect Core 1.0, the rules without I/O: what the `openid` scope adds to an
authorization request, the ID token's claims, and what `/userinfo` says.

A request whose scope lacks `openid` is a plain OAuth 2.0 request: none of this applies
to it, and its answers are the reference service's, byte for byte (issue #13, item 3).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pitpass.config import Profile

OPENID_SCOPE = "openid"
# What the consent page and the account pages say `openid` shares.
OPENID_MEANING = "Know who you are: your customer id"

# §3.1.2.1 `prompt`; `verify` is the reference service's own (PRODUCT.md §4).
PROMPT_NONE = "none"
PROMPT_LOGIN = "login"
PROMPT_CONSENT = "consent"
PROMPT_VERIFY = "verify"
PROMPT_VALUES = (PROMPT_NONE, PROMPT_LOGIN, PROMPT_CONSENT, PROMPT_VERIFY)

SUBJECT_TYPES = ("public",)  # §8: `sub` is the customer id, the same for every client
MAX_NONCE_LENGTH = 255  # the column's size; a nonce is a random value of a few dozen
MAX_AGE_LIMIT = 10**9  # seconds (31 years): larger values mean "any sign-in" anyway
# §2 names no `typ`; "JWT" (RFC 7519 §5.1) tells an ID token from an access token (at+jwt).
ID_TOKEN_TYPE = "JWT"  # noqa: S105 - a header value, not a secret
# Authorization request parameters this server does not support, and the error each gets
# when an OpenID Connect request carries it (§6.1, §6.2, §7.2.1).
UNSUPPORTED_PARAMETERS = {
    "request": "request_not_supported",
    "request_uri": "request_uri_not_supported",
    "registration": "registration_not_supported",
}


def asks_for_openid(scope: str) -> bool:
    return OPENID_SCOPE in scope.split()


@dataclass(frozen=True)
class Prompt:
    none: bool = False
    login: bool = False
    consent: bool = False
    verify: bool = False


def parse_prompt(raw: str | None, openid: bool) -> Prompt:
    """`prompt` as the request means it. Without `openid`, the reference service's reading:
    only `verify` has a meaning and any other value is ignored (PRODUCT.md §4). With it,
    §3.1.2.1's values (and `verify`); anything else is refused (ValueError)."""
    # Space-delimited (§3.1.2.1), ASCII space only: a tab is part of a (refused) value.
    values = [value for value in (raw or "").split(" ") if value]
    if not openid:
        return Prompt(verify=PROMPT_VERIFY in values)
    for value in values:
        if value not in PROMPT_VALUES:
            raise ValueError(f"prompt {value} is not supported: use none, login or consent")
    if PROMPT_NONE in values and len(set(values)) > 1:
        raise ValueError("prompt=none cannot be combined with other values")  # §3.1.2.1
    return Prompt(
        none=PROMPT_NONE in values,
        login=PROMPT_LOGIN in values,
        consent=PROMPT_CONSENT in values,
        verify=PROMPT_VERIFY in values,
    )


def parse_max_age(raw: str | None) -> int | None:
    """§3.1.2.1 `max_age`: seconds, a non-negative integer; None when absent or empty
    (RFC 6749 §3.1: a parameter without a value is treated as omitted). Any larger value
    means the same as MAX_AGE_LIMIT."""
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise ValueError("max_age must be a number of seconds (0 or more)")
    digits = raw.lstrip("0") or "0"
    if len(digits) > len(str(MAX_AGE_LIMIT)):
        return MAX_AGE_LIMIT
    return min(int(digits), MAX_AGE_LIMIT)


def checked_nonce(raw: str | None) -> str | None:
    """§3.1.2.1 `nonce`: returned unchanged in the ID token, so stored with the code."""
    if not raw:
        return None  # RFC 6749 §3.1: a parameter without a value is treated as omitted
    if len(raw) > MAX_NONCE_LENGTH:
        raise ValueError(f"nonce is longer than {MAX_NONCE_LENGTH} characters")
    return raw


def signed_in_too_long_ago(auth_time: datetime, now: datetime, max_age: int | None) -> bool:
    """§3.1.2.1: past `max_age` seconds since the member's sign-in, sign in again."""
    return max_age is not None and (now - auth_time).total_seconds() > max_age


def at_hash(access_token: str) -> str:
    """§3.1.3.6: the left half of the SHA-256 of the access token (ES256 hashes with
    SHA-256), base64url without padding."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class IdTokenFacts:
    """What an ID token says, gathered by the grant that issues it."""

    issuer: str
    client_id: str
    customer_id: int
    auth_time: datetime
    now: datetime
    lifetime_seconds: int
    access_token: str
    nonce: str | None  # the authorization request's; never at a refresh (§12.2)


def id_token_claims(facts: IdTokenFacts) -> dict[str, Any]:
    """§2 and §3.1.3.6. `aud` is the client alone; `azp`, which §2 then allows but does
    not require, names it again (OAuth 2.0 clients often check it)."""
    issued = int(facts.now.timestamp())
    claims: dict[str, Any] = {
        "iss": facts.issuer,
        "sub": str(facts.customer_id),
        "aud": facts.client_id,
        "azp": facts.client_id,
        "exp": issued + facts.lifetime_seconds,
        "iat": issued,
        "auth_time": int(facts.auth_time.timestamp()),
    }
    if facts.nonce is not None:
        claims["nonce"] = facts.nonce
    claims["at_hash"] = at_hash(facts.access_token)
    return claims


def userinfo_claims(
    scope: str, customer_id: int, display_name: str, profile: Profile
) -> dict[str, Any]:
    """§5.3.2: `sub` always, the same as the ID token's; what the identity scope's consent
    words name (display name and customer id) only when it was granted."""
    claims: dict[str, Any] = {"sub": str(customer_id)}
    if profile.identity_scope in scope.split():
        claims["name"] = display_name  # §5.1
        claims[profile.claim_customer_id] = customer_id
    return claims


def claims_supported(profile: Profile) -> list[str]:
    """Discovery's `claims_supported`: the ID token's and /userinfo's claims."""
    return [
        "iss",
        "sub",
        "aud",
        "azp",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
        "name",
        profile.claim_customer_id,
    ]
