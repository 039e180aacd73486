"""For resource servers, the APIs that accept Pitpass access tokens (issue #13, item 2).

- `TokenVerifier(issuer, audience)`: offline verification of `at+jwt` ES256 access
  tokens (RFC 9068 §4) against the issuer's JWKS, optionally with introspection
  (RFC 7662); `verify`, `verify_async`, and `dependency(...)` for FastAPI.
- `BearerMiddleware`: the same for any ASGI app, answering RFC 6750 §3.
- `install_error_handler(app)` (from `pitpass_kit.resource.dependency`, which imports
  FastAPI): the dependency's refusals in the service's error shape.

Refusals are the typed errors of `pitpass_kit.errors`: `TokenRejected` (invalid_token,
with its `reason`), `MissingScope` (insufficient_scope), `TemporarilyUnavailable`.
"""

from pitpass_kit.errors import MissingScope, TemporarilyUnavailable, TokenRejected
from pitpass_kit.resource.asgi import BearerMiddleware
from pitpass_kit.resource.verifier import TokenVerifier, VerifiedToken

__all__ = [
    "BearerMiddleware",
    "MissingScope",
    "TemporarilyUnavailable",
    "TokenRejected",
    "TokenVerifier",
    "VerifiedToken",
]
