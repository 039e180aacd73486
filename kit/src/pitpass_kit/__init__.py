"""The client developer's kit for Pitpass: `pitpass_kit.client` for apps that get and
refresh tokens, `pitpass_kit.resource` for the APIs that accept them."""

from pitpass_kit.client import AuthorizationRequest, BearerAuth, OAuthClient
from pitpass_kit.errors import (
    CallbackError,
    InvalidClient,
    InvalidGrant,
    IssuerMismatch,
    KitError,
    NotSignedIn,
    OAuthError,
    RateLimited,
    StateMismatch,
    TemporarilyUnavailable,
)
from pitpass_kit.stores import (
    FileTokenStore,
    LockTimeout,
    MemoryTokenStore,
    RedisTokenStore,
    StoreError,
    TokenSet,
)

__all__ = [
    "AuthorizationRequest",
    "BearerAuth",
    "CallbackError",
    "FileTokenStore",
    "InvalidClient",
    "InvalidGrant",
    "IssuerMismatch",
    "KitError",
    "LockTimeout",
    "MemoryTokenStore",
    "NotSignedIn",
    "OAuthClient",
    "OAuthError",
    "RateLimited",
    "RedisTokenStore",
    "StateMismatch",
    "StoreError",
    "TemporarilyUnavailable",
    "TokenSet",
]
