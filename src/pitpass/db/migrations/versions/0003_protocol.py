"""protocol: sessions, codes, refresh tokens, consents, lifetimes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 05:55:19.035264
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pitpass.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("granted_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("withdrawn_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_consents_client_pk_clients")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_consents_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_member_client", ["member_id", "client_pk"], unique=False)

    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=8), nullable=True),
        sa.Column("auth_time", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("consumed_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("web_session_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_authorization_codes_client_pk_clients")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_authorization_codes_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["web_session_id"],
            ["web_sessions.id"],
            name=op.f("fk_authorization_codes_web_session_id_web_sessions"),
        ),
        sa.PrimaryKeyConstraint("code_hash", name=op.f("pk_authorization_codes")),
    )
    op.create_table(
        "oauth_sessions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("auth_time", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("last_activity_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("first_ip", sa.String(length=64), nullable=True),
        sa.Column("last_ip", sa.String(length=64), nullable=True),
        sa.Column("first_user_agent", sa.String(length=512), nullable=True),
        sa.Column("last_user_agent", sa.String(length=512), nullable=True),
        sa.Column("web_session_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_oauth_sessions_client_pk_clients")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_oauth_sessions_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["web_session_id"],
            ["web_sessions.id"],
            name=op.f("fk_oauth_sessions_web_session_id_web_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_sessions")),
    )
    with op.batch_alter_table("oauth_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_sessions_client_pk"), ["client_pk"], unique=False
        )
        batch_op.create_index(
            "ix_oauth_sessions_member_client", ["member_id", "client_pk"], unique=False
        )

    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["oauth_sessions.id"],
            name=op.f("fk_refresh_tokens_session_id_oauth_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_tokens")),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_refresh_tokens_session_id"), ["session_id"], unique=False
        )

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("access_token_seconds", sa.Integer(), server_default="600", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "refresh_token_seconds", sa.Integer(), server_default="604800", nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("refresh_grace_seconds", sa.Integer(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("remembered_browser_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_web_sessions_remembered_browser_id_remembered_browsers"),
            "remembered_browsers",
            ["remembered_browser_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_web_sessions_remembered_browser_id_remembered_browsers"),
            type_="foreignkey",
        )
        batch_op.drop_column("remembered_browser_id")

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("refresh_grace_seconds")
        batch_op.drop_column("refresh_token_seconds")
        batch_op.drop_column("access_token_seconds")

    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refresh_tokens_session_id"))

    op.drop_table("refresh_tokens")
    with op.batch_alter_table("oauth_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_oauth_sessions_member_client")
        batch_op.drop_index(batch_op.f("ix_oauth_sessions_client_pk"))

    op.drop_table("oauth_sessions")
    op.drop_table("authorization_codes")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index("ix_consents_member_client")

    op.drop_table("consents")
