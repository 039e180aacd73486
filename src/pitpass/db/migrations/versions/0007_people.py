"""people: password resets, email changes, the authenticator app, deleted accounts

Issue #12 gives members a way back into their account (an emailed reset link), a
change of email confirmed by a code sent to the new address, an authenticator app
(RFC 6238) with single-use recovery codes, and deletion that keeps the audit trail
with the member pseudonymised.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 19:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pitpass.db.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC_DATETIME = pitpass.db.models.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("totp_secret_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", UTC_DATETIME(), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("deleted_at", UTC_DATETIME(), nullable=True))
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTC_DATETIME(), nullable=False),
        sa.Column("expires_at", UTC_DATETIME(), nullable=False),
        sa.Column("used_at", UTC_DATETIME(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_password_resets_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_resets")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_resets_token_hash")),
    )
    op.create_index(
        op.f("ix_password_resets_member_id"), "password_resets", ["member_id"], unique=False
    )
    op.create_table(
        "email_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("new_email", sa.String(length=320), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME(), nullable=False),
        sa.Column("expires_at", UTC_DATETIME(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("consumed_at", UTC_DATETIME(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_email_changes_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_changes")),
    )
    op.create_index(
        op.f("ix_email_changes_member_id"), "email_changes", ["member_id"], unique=False
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME(), nullable=False),
        sa.Column("used_at", UTC_DATETIME(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_recovery_codes_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_recovery_codes_code_hash")),
    )
    op.create_index(
        op.f("ix_recovery_codes_member_id"), "recovery_codes", ["member_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_table("email_changes")
    op.drop_table("password_resets")
    # Plain DROP COLUMNs (SQLite 3.35+): a batch rebuild drops `members`, and with foreign
    # keys on that deletes every row pointing at a member (their sessions, say).
    for column in ("deleted_at", "totp_last_step", "totp_enabled_at", "totp_secret_sealed"):
        op.drop_column("members", column)
