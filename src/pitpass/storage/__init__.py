"""The protocol's storage: codes, sessions, refresh tokens and the client cache (store.py)."""

from __future__ import annotations

from sqlalchemy import Engine

from pitpass.storage.postgres import PostgresTokenStore
from pitpass.storage.sqlite import SqliteTokenStore
from pitpass.storage.store import STORAGE_UNAVAILABLE_ERRORS, TokenStore

__all__ = ["STORAGE_UNAVAILABLE_ERRORS", "TokenStore", "token_store"]


def token_store(engine: Engine) -> TokenStore:
    """The store for the engine's database."""
    if engine.dialect.name == "sqlite":
        return SqliteTokenStore(engine)
    return PostgresTokenStore(engine)
