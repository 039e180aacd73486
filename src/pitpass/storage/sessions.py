"""Sessions: one sign-in of a member to a client, and who may open one."""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime
from typing import Any

from pitpass.core.policy import SignOutReason
from pitpass.storage import sql
from pitpass.storage.base import StoreEngine
from pitpass.storage.records import (
    Liveness,
    NewRefreshToken,
    NewSession,
    PasswordMember,
    SessionRecord,
    SessionsToSignOut,
)


class SessionStore(StoreEngine):
    async def session(self, db: Any, session_id: str) -> SessionRecord | None:
        row = await self._fetchrow(db, sql.SELECT_SESSION, {"id": session_id})
        return None if row is None else sql.session_record(row, self.read_time)

    async def liveness(self, db: Any, session_id: str) -> Liveness | None:
        """What decides whether the session is live, and no more (introspection)."""
        row = await self._fetchrow(db, sql.SELECT_LIVENESS, {"id": session_id})
        if row is None:
            return None
        return Liveness(
            row["revoked_at"] is not None,
            self.read_time(row["expires_at"]),
            bool(row["member_disabled"]),
            bool(row["client_disabled"]),
        )

    @abstractmethod
    async def open_session(
        self, db: Any, session: NewSession, refresh: NewRefreshToken | None
    ) -> None:
        """Insert a session without a code (password_limited) with its first refresh token."""

    async def sign_out(
        self, db: Any, which: SessionsToSignOut, reason: SignOutReason, now: datetime
    ) -> int:
        """End the live sessions `which` names; how many there were."""
        params = sql.sign_out_params(which, reason, now, self.write_time)
        return len(await self._fetchall(db, sql.sign_out(which), params))

    # ----- who may open a session without a browser (password_limited) --------------------

    async def member_by_email(self, db: Any, email: str) -> PasswordMember | None:
        """The member with this email: the argon2 hash of their masked password, and what
        a session of theirs shows."""
        row = await self._fetchrow(db, sql.SELECT_MEMBER_BY_EMAIL, {"email": email})
        if row is None:
            return None
        return PasswordMember(row["id"], row["password_hash"], sql.member_fields(row))

    async def on_access_list(self, db: Any, client_pk: int, member_id: int) -> bool:
        row = await self._fetchrow(
            db, sql.SELECT_ACCESS, {"client_pk": client_pk, "member_id": member_id}
        )
        return row is not None
