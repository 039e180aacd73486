"""Refresh tokens: opaque, stored hashed, single use, rotated on every refresh (RFC 9700 §4.14)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from pitpass.storage import sql
from pitpass.storage.base import StoreEngine
from pitpass.storage.records import (
    NewRefreshToken,
    RefreshState,
    RefreshSuccessor,
    SessionActivity,
)


class RefreshTokenStore(StoreEngine):
    async def refresh_state(self, db: Any, token_hash: str) -> RefreshState | None:
        row = await self._fetchrow(db, sql.SELECT_REFRESH_STATE, {"token_hash": token_hash})
        if row is None:
            return None
        read_time = self.read_time
        return RefreshState(
            used_at=None if row["used_at"] is None else read_time(row["used_at"]),
            expires_at=read_time(row["expires_at"]),
            created_at=read_time(row["created_at"]),
            session=sql.session_record(row, read_time),
        )

    async def refresh_successor(self, db: Any, spent: RefreshState) -> RefreshSuccessor | None:
        """The refresh token that the rotation spending `spent` issued, if any."""
        assert spent.used_at is not None
        params = {
            "session_id": spent.session.session_id,
            "spent_at": self.write_time(spent.used_at),
        }
        row = await self._fetchrow(db, sql.SELECT_REFRESH_SUCCESSOR, params)
        if row is None:
            return None
        return RefreshSuccessor(token_hash=row["token_hash"], used=row["used_at"] is not None)

    @abstractmethod
    async def rotate_refresh_token(
        self,
        db: Any,
        spent_hash: str | None,
        fresh: NewRefreshToken,
        activity: SessionActivity,
        retire: bool = False,
    ) -> bool:
        """Spend `spent_hash` (None: inside the grace period, already spent), store
        `fresh` and record the activity, all or nothing. False: someone spent it first,
        or the session was signed out. `retire`: `spent_hash` is a successor a retry
        replaces (sql.MARK_REFRESH_RETIRED)."""
