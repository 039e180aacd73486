"""Authorization codes (RFC 6749 §4.1.2): stored hashed, spent exactly once."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any

from pitpass.storage import sql
from pitpass.storage.base import StoreEngine
from pitpass.storage.records import CodeState, NewRefreshToken, NewSession


class CodeStore(StoreEngine):
    async def code_state(self, db: Any, code_hash: str) -> CodeState | None:
        row = await self._fetchrow(db, sql.SELECT_CODE_STATE, {"code_hash": code_hash})
        if row is None:
            return None
        # The member's columns are all NULL when the member is gone (LEFT JOIN).
        member = None if row["customer_id"] is None else sql.member_fields(row)
        code = sql.code_record(row, self.read_time)
        return CodeState(code, row["consumed_at"] is not None, member)

    async def consume_code(self, db: Any, code_hash: str, now: datetime) -> bool:
        """Spend the code without redeeming it (a failed redemption: one try per code)."""
        spent = await self._fetchrow(
            db, sql.CONSUME_CODE, {"now": self.write_time(now), "code_hash": code_hash}
        )
        return spent is not None

    @abstractmethod
    async def redeem_code(
        self, db: Any, code_hash: str, session: NewSession, refresh: NewRefreshToken | None
    ) -> bool:
        """Spend the code and open its session (with its first refresh token), all or
        nothing. False: someone spent the code first."""
