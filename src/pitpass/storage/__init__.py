"""The protocol's storage: codes, sessions, refresh tokens and the client cache (store.py)."""

from __future__ import annotations

from sqlalchemy import Engine

from pitpass.db.engine import DEFAULT_TIMEOUT_SECONDS
from pitpass.storage.postgres import PostgresTokenStore
from pitpass.storage.sqlite import SqliteTokenStore
from pitpass.storage.store import STORAGE_UNAVAILABLE_ERRORS, TokenStore

__all__ = ["STORAGE_UNAVAILABLE_ERRORS", "TokenStore", "token_store"]


def token_store(engine: Engine, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> TokenStore:
    """The store for the engine's database; every storage call ends within `timeout_seconds`
    (SQLite: the engine's busy timeout, db/engine.py)."""
    if engine.dialect.name == "sqlite":
        return SqliteTokenStore(engine)
    return PostgresTokenStore(engine, timeout_seconds)
