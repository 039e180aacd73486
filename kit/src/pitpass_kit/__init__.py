"""The client developer's kit for Pitpass: `pitpass_kit.client` for apps that get and
refresh tokens, `pitpass_kit.resource` for the APIs that accept them."""

from pitpass_kit.client import AuthorizationRequest, BearerAuth, OAuthClient
from pitpass_kit.errors import KitError, OAuthError, RateLimited
from pitpass_kit.stores import FileTokenStore, MemoryTokenStore, RedisTokenStore, TokenSet

__all__ = [
    "AuthorizationRequest",
    "BearerAuth",
    "FileTokenStore",
    "KitError",
    "MemoryTokenStore",
    "OAuthClient",
    "OAuthError",
    "RateLimited",
    "RedisTokenStore",
    "TokenSet",
]
