"""For resource servers, the APIs that accept Pitpass access tokens (issue #13, item 2).

- `TokenVerifier(issuer, audience)`: offline verification of `at+jwt` ES256 access
  tokens (RFC 9068 §4) against the issuer's JWKS, optionally with introspection
  (RFC 7662); `verify`, and `verify_async` for event loops.

Refusals are the typed errors of `pitpass_kit.errors`: `TokenRejected` (invalid_token,
with its `reason`), `MissingScope` (insufficient_scope), `TemporarilyUnavailable`.
"""

from pitpass_kit.errors import MissingScope, TemporarilyUnavailable, TokenRejected
from pitpass_kit.resource.verifier import TokenVerifier, VerifiedToken

__all__ = [
    "MissingScope",
    "TemporarilyUnavailable",
    "TokenRejected",
    "TokenVerifier",
    "VerifiedToken",
]
