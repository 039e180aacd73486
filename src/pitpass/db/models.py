"""The schema: one model per table, the same on SQLite and PostgreSQL.

Secrets never appear here in clear: tokens and codes are keyed hashes
(`Keyring.token_hash`), passwords are argon2id hashes of the masked password,
and anything that must be read back (mail bodies, private keys) is sealed
with AES-GCM (`Keyring.seal`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pitpass.core import policy
from pitpass.core.paths import MAX_NEXT_PATH


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python on both engines (SQLite keeps no zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[int]: JSON,
        list[str]: JSON,
    }


class Member(Base):
    """An account holder (PRODUCT.md §2). Staff are members with `is_staff`."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored normalised (trimmed, lower case): the masking rule lower-cases it anyway.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    customer_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    group_ids: Mapped[list[int]] = mapped_column(default=list)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # argon2id of mask_secret(password, email) (PRODUCT.md §4, issue #2 item 3).
    password_hash: Mapped[str] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None]
    # The authenticator app (RFC 6238), sealed like the mail bodies; set once enrolment
    # is confirmed with a first code. Replaces the emailed code as the second step.
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None]
    # The last TOTP time step accepted, so one code cannot be used twice (RFC 6238 §5.2).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Set when the member deletes the account: the row stays, pseudonymised, for the
    # audit trail (issue #12).
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PasswordReset(Base):
    """An emailed single-use link to choose a new password (issue #12, item 1)."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    next_path: Mapped[str] = mapped_column(String(MAX_NEXT_PATH))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))


class EmailChange(Base):
    """A new address waiting for the code sent to it (issue #12, item 2)."""

    __tablename__ = "email_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    new_email: Mapped[str] = mapped_column(String(320))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None]


class RecoveryCode(Base):
    """A single-use code that stands in for the authenticator app (issue #12, item 2)."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class SignInChallenge(Base):
    """The emailed 6-digit code between the password step and a signed-in browser."""

    __tablename__ = "signin_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(MAX_NEXT_PATH))
    remembered_browser_rejected: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    consumed_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))


class WebSession(Base):
    """A browser signed in to Pitpass's own pages."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the member last proved the second factor (OIDC-style auth_time).
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # The remembered browser this session signed in from or created, so that
    # `/revoke/current?forget_browser=true` can forget it (PRODUCT.md §4).
    remembered_browser_id: Mapped[int | None] = mapped_column(
        ForeignKey("remembered_browsers.id", ondelete="SET NULL")
    )
    # The nonce of the one prompt=verify request whose emailed code opened this session;
    # cleared when that request ends (services/fresh_verification.py, PRODUCT.md §4).
    prompt_verify_nonce: Mapped[str | None] = mapped_column(String(64))
    # The same for the one prompt=login or max_age request (OpenID Connect) whose sign-in
    # opened this session (services/fresh_verification.py).
    fresh_signin_nonce: Mapped[str | None] = mapped_column(String(64))


class RememberedBrowser(Base):
    """A browser that may skip the emailed code for a while ("remember this browser")."""

    __tablename__ = "remembered_browsers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SealedKey(Base):
    """Keys that must outlive a change of PITPASS_SECRET_KEY, sealed under it: the key of
    the keyed hashes (services/data_keys.py, issue #11)."""

    __tablename__ = "sealed_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MailMessage(Base):
    """The outbox: every message is written here first, then delivered."""

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    # The body may hold a sign-in code or a one-time link: sealed at rest.
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    kind: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|logged|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only: who did what to what, when and from where."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_target", "target_type", "target_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    actor: Mapped[str] = mapped_column(String(320))  # email, "system" or "cli:<user>"
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SigningKey(Base):
    """EC P-256 keys that sign access tokens; private halves sealed at rest."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]]
    private_jwk_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A retired key signs nothing new; its public half stays published until
    # every token it signed has expired (issue #4, item 3).
    retired_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)


# ----- the developer program (PRODUCT.md §3) -------------------------------------


class Client(Base):
    """An issued OAuth client. Rows are never deleted, so a `client_id` is never reused."""

    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_id: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    name_key: Mapped[str] = mapped_column(String(64), index=True)  # client_names.name_key
    client_type: Mapped[str] = mapped_column(String(24))
    flows: Mapped[list[str]]
    description: Mapped[str] = mapped_column(String(200), default="")
    developer_name: Mapped[str | None] = mapped_column(String(100))
    developer_url: Mapped[str | None] = mapped_column(String(2000))
    developer_email: Mapped[str] = mapped_column(String(320))
    redirect_uris: Mapped[list[str]]
    audiences: Mapped[list[str]]
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_at: Mapped[datetime | None]
    # Token lifetimes (the policy's defaults, PRODUCT.md §4), configurable per client.
    access_token_seconds: Mapped[int] = mapped_column(
        Integer,
        default=policy.DEFAULT_ACCESS_TOKEN_SECONDS,
        server_default=str(policy.DEFAULT_ACCESS_TOKEN_SECONDS),
    )
    refresh_token_seconds: Mapped[int] = mapped_column(
        Integer,
        default=policy.DEFAULT_REFRESH_TOKEN_SECONDS,
        server_default=str(policy.DEFAULT_REFRESH_TOKEN_SECONDS),
    )
    # A used refresh token presented again within this many seconds is not
    # treated as theft (RFC 9700 §4.14.2 leaves the window to the server).
    refresh_grace_seconds: Mapped[int] = mapped_column(
        Integer,
        default=policy.DEFAULT_REFRESH_GRACE_SECONDS,
        server_default=str(policy.DEFAULT_REFRESH_GRACE_SECONDS),
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RegistrationRequest(Base):
    """A member's request for a new client, or for a change to one they own."""

    __tablename__ = "registration_requests"
    __table_args__ = (Index("ix_registration_requests_queue", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    # For a change request: the client to change. For a new client: set on approval.
    client_pk: Mapped[int | None] = mapped_column(ForeignKey("clients.id"), index=True)
    is_change: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(24))
    client_name: Mapped[str] = mapped_column(String(64))
    client_type: Mapped[str] = mapped_column(String(24))
    flows: Mapped[list[str]]
    description: Mapped[str] = mapped_column(String(200), default="")
    developer_name: Mapped[str | None] = mapped_column(String(100))
    developer_url: Mapped[str | None] = mapped_column(String(2000))
    developer_email: Mapped[str] = mapped_column(String(320))
    redirect_uris: Mapped[list[str]]
    audiences: Mapped[list[str]]
    submitted_at: Mapped[datetime]
    due_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    staff_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ClientSecret(Base):
    """A client secret, kept only as a keyed hash of its masked form (PRODUCT.md §3-4).

    Until its one-time view, the plaintext is also kept sealed (AES-GCM) so the
    portal or the emailed link can show it once; the view wipes it.
    """

    __tablename__ = "client_secrets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None while current; a rotated-out secret stays valid until then (grace period).
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    reveal_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    reveal_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    reveal_expires_at: Mapped[datetime | None]
    revealed_at: Mapped[datetime | None]
    revealed_via: Mapped[str | None] = mapped_column(String(16))


class AccessListEntry(Base):
    """A member allowed to use a password-limited client (at most three per client)."""

    __tablename__ = "client_access"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    accepted_at: Mapped[datetime | None]
    removed_at: Mapped[datetime | None]


# ----- the protocol (PRODUCT.md §4) -----------------------------------------------------


class OAuthSession(Base):
    """One sign-in of a member to a client; every token it issues carries its id."""

    __tablename__ = "oauth_sessions"
    __table_args__ = (Index("ix_oauth_sessions_member_client", "member_id", "client_pk"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # a UUID: the session_id
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id"), index=True)
    scope: Mapped[str] = mapped_column(String(500))
    auth_time: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    first_ip: Mapped[str | None] = mapped_column(String(64))
    last_ip: Mapped[str | None] = mapped_column(String(64))
    first_user_agent: Mapped[str | None] = mapped_column(String(512))
    last_user_agent: Mapped[str | None] = mapped_column(String(512))
    # The browser that signed in, so "forget this browser" can reach it.
    web_session_id: Mapped[int | None] = mapped_column(ForeignKey("web_sessions.id"))


class AuthorizationCode(Base):
    """Single use, 60 s (PRODUCT.md §4); stored as a keyed hash."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    session_id: Mapped[str] = mapped_column(String(36))  # the session its redemption opens
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(8))
    auth_time: Mapped[datetime]
    expires_at: Mapped[datetime]
    consumed_at: Mapped[datetime | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    web_session_id: Mapped[int | None] = mapped_column(ForeignKey("web_sessions.id"))
    # OpenID Connect: the authorization request's nonce, repeated in the ID token.
    nonce: Mapped[str | None] = mapped_column(String(255))


class RefreshToken(Base):
    """Opaque, single use, rotated on every refresh; stored as a keyed hash."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Consent(Base):
    """A member's yes to a client for a set of scopes; remembered until withdrawn."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_member_client", "member_id", "client_pk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    scope: Mapped[str] = mapped_column(String(500))  # sorted, space-separated
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_at: Mapped[datetime | None]
