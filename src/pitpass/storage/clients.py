"""The client cache: what the protocol needs of a client, read at most every two seconds."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Dialect

from pitpass.core import policy
from pitpass.storage import sql
from pitpass.storage.base import StoreEngine
from pitpass.storage.records import ClientRecord

CLIENT_CACHE_SECONDS = 2.0  # a disabled client or a rotated secret takes effect this fast
CLIENT_CACHE_SIZE = 10_000  # then the cache starts again: memory stays bounded


class ClientCache(StoreEngine):
    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self._clients: dict[str, tuple[float, ClientRecord | None]] = {}

    async def client(self, client_id: str, now: datetime) -> ClientRecord | None:
        cached = self._clients.get(client_id)
        if cached and time.monotonic() - cached[0] < CLIENT_CACHE_SECONDS:
            return cached[1]
        async with self.connection() as db:
            record = await self._load_client(db, client_id, now)
        if len(self._clients) > CLIENT_CACHE_SIZE:
            self._clients.clear()
        self._clients[client_id] = (time.monotonic(), record)
        return record

    async def _load_client(self, db: Any, client_id: str, now: datetime) -> ClientRecord | None:
        row = await self._fetchrow(db, sql.SELECT_CLIENT, {"client_id": client_id})
        if row is None:
            return None
        secrets = await self._fetchall(
            db, sql.SELECT_CLIENT_SECRETS, {"pk": row["id"], "now": self.write_time(now)}
        )
        return ClientRecord(
            pk=row["id"],
            client_id=row["client_id"],
            name=row["name"],
            client_type=row["client_type"],
            flows=sql.json_list(row["flows"]),
            redirect_uris=sql.json_list(row["redirect_uris"]),
            audiences=sql.json_list(row["audiences"]),
            is_disabled=bool(row["is_disabled"]),
            access_token_seconds=row["access_token_seconds"],
            refresh_token_seconds=row["refresh_token_seconds"],
            refresh_grace_seconds=row["refresh_grace_seconds"],
            secret_hashes=tuple(secret["secret_hash"] for secret in secrets),
            is_confidential=policy.is_confidential(row["client_type"]),
        )

    def forget_cached_clients(self) -> None:
        self._clients.clear()
