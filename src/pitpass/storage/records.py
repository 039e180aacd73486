"""What the protocol store reads and writes: plain records, no ORM objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple


@dataclass(frozen=True)
class ClientRecord:
    pk: int
    client_id: str
    name: str
    client_type: str
    flows: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    audiences: tuple[str, ...]
    is_disabled: bool
    access_token_seconds: int
    refresh_token_seconds: int
    refresh_grace_seconds: int
    secret_hashes: tuple[str, ...]  # live secrets: current and, during grace, previous
    is_confidential: bool  # policy.is_confidential(client_type), decided once per load


@dataclass(frozen=True)
class MemberFields:
    """What a session shows of its member (claims, the profile endpoint)."""

    customer_id: int
    display_name: str
    group_ids: list[int]
    member_disabled: bool


@dataclass(frozen=True)
class SessionRecord:
    """A session with what `policy.session_is_live` and the tokens need."""

    session_id: str
    member_id: int
    client_pk: int
    scope: str
    auth_time: datetime
    expires_at: datetime
    revoked: bool
    member: MemberFields
    client_disabled: bool = False

    @property
    def member_disabled(self) -> bool:
        return self.member.member_disabled


class Liveness(NamedTuple):
    """Only what `policy.why_not_live` reads of a session (introspection's one read; a
    tuple, the cheapest record to build on this path)."""

    revoked: bool
    expires_at: datetime
    member_disabled: bool
    client_disabled: bool


@dataclass(frozen=True)
class NewCode:
    """An authorization code to store: its keyed hash and what its redemption opens."""

    code_hash: str
    client_pk: int
    member_id: int
    session_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    web_session_id: int | None
    nonce: str | None = None  # OpenID Connect: the request's, for the ID token


@dataclass(frozen=True)
class CodeState:
    """An authorization code as stored, and its member (None when the member is gone)."""

    code: NewCode
    consumed: bool
    member: MemberFields | None


@dataclass(frozen=True)
class RefreshState:
    """A refresh token as stored, with its session."""

    used_at: datetime | None
    expires_at: datetime
    created_at: datetime
    session: SessionRecord

    @property
    def retired(self) -> bool:
        """Spent by a client's retry of its predecessor (sql.MARK_REFRESH_RETIRED)."""
        return self.used_at is not None and self.expires_at <= self.used_at


@dataclass(frozen=True)
class RefreshSuccessor:
    """The refresh token a rotation issued in place of the one it spent."""

    token_hash: str
    used: bool


@dataclass(frozen=True)
class PasswordMember:
    """A member as the password_limited grant finds them by email."""

    member_id: int
    password_hash: str
    fields: MemberFields


@dataclass(frozen=True)
class NewSession:
    """A session to open: from a code, or directly (password_limited, no browser)."""

    session_id: str
    member_id: int
    client_pk: int
    scope: str
    auth_time: datetime
    now: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    web_session_id: int | None

    @classmethod
    def from_code(cls, code: NewCode, now: datetime, expires_at: datetime) -> NewSession:
        return cls(
            **_carried(code),
            now=now,
            expires_at=expires_at,
            ip=code.ip,
            user_agent=code.user_agent,
            web_session_id=code.web_session_id,
        )

    def record(self, member: MemberFields) -> SessionRecord:
        """The record of this session once opened, with its member as already read."""
        return SessionRecord(
            **_carried(self), expires_at=self.expires_at, revoked=False, member=member
        )


def _carried(source: NewCode | NewSession) -> dict[str, Any]:
    """What a code hands on to the session it opens, and that session to its record."""
    return {
        "session_id": source.session_id,
        "member_id": source.member_id,
        "client_pk": source.client_pk,
        "scope": source.scope,
        "auth_time": source.auth_time,
    }


@dataclass(frozen=True)
class NewRefreshToken:
    token_hash: str
    session_id: str
    now: datetime
    expires_at: datetime


@dataclass(frozen=True)
class SessionActivity:
    """What a refresh records on its session (the member's "last activity")."""

    now: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


@dataclass(frozen=True)
class SessionsToSignOut:
    """Which live sessions a sign-out ends: every condition given must hold."""

    session_id: str | None = None
    member_id: int | None = None
    client_pk: int | None = None

    def params(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in (
                ("session_id", self.session_id),
                ("member_id", self.member_id),
                ("client_pk", self.client_pk),
            )
            if value is not None
        }
