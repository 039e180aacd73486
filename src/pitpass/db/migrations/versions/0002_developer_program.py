"""developer program: clients, requests, secrets, access lists

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 05:06:41.299859
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pitpass.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=64), nullable=False),
        sa.Column("client_type", sa.String(length=24), nullable=False),
        sa.Column("flows", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("developer_name", sa.String(length=100), nullable=True),
        sa.Column("developer_url", sa.String(length=2000), nullable=True),
        sa.Column("developer_email", sa.String(length=320), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("is_disabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["members.id"],
            name=op.f("fk_clients_owner_id_members"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_clients_client_id")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_clients_name_key"), ["name_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_clients_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "client_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("added_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("accepted_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("removed_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["added_by_id"], ["members.id"], name=op.f("fk_client_access_added_by_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_client_access_client_pk_clients")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_client_access_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_access")),
    )
    with op.batch_alter_table("client_access", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_access_client_pk"), ["client_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_client_access_member_id"), ["member_id"], unique=False)

    op.create_table(
        "client_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("reveal_token_hash", sa.String(length=64), nullable=True),
        sa.Column("reveal_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("reveal_expires_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("revealed_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("revealed_via", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_client_secrets_client_pk_clients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_secrets")),
        sa.UniqueConstraint("reveal_token_hash", name=op.f("uq_client_secrets_reveal_token_hash")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_client_secrets_secret_hash")),
    )
    with op.batch_alter_table("client_secrets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_secrets_client_pk"), ["client_pk"], unique=False
        )

    op.create_table(
        "registration_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester_id", sa.Integer(), nullable=False),
        sa.Column("client_pk", sa.Integer(), nullable=True),
        sa.Column("is_change", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("client_name", sa.String(length=64), nullable=False),
        sa.Column("client_type", sa.String(length=24), nullable=False),
        sa.Column("flows", sa.JSON(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("developer_name", sa.String(length=100), nullable=True),
        sa.Column("developer_url", sa.String(length=2000), nullable=True),
        sa.Column("developer_email", sa.String(length=320), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("submitted_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("due_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("decided_at", pitpass.db.models.UTCDateTime(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("staff_message", sa.Text(), nullable=True),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_pk"], ["clients.id"], name=op.f("fk_registration_requests_client_pk_clients")
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["members.id"],
            name=op.f("fk_registration_requests_decided_by_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["members.id"],
            name=op.f("fk_registration_requests_requester_id_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registration_requests")),
    )
    with op.batch_alter_table("registration_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_registration_requests_client_pk"), ["client_pk"], unique=False
        )
        batch_op.create_index("ix_registration_requests_queue", ["status", "due_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_registration_requests_requester_id"), ["requester_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("registration_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_registration_requests_requester_id"))
        batch_op.drop_index("ix_registration_requests_queue")
        batch_op.drop_index(batch_op.f("ix_registration_requests_client_pk"))

    op.drop_table("registration_requests")
    with op.batch_alter_table("client_secrets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_secrets_client_pk"))

    op.drop_table("client_secrets")
    with op.batch_alter_table("client_access", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_access_member_id"))
        batch_op.drop_index(batch_op.f("ix_client_access_client_pk"))

    op.drop_table("client_access")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_owner_id"))
        batch_op.drop_index(batch_op.f("ix_clients_name_key"))
        batch_op.drop_index(batch_op.f("ix_clients_created_at"))

    op.drop_table("clients")
