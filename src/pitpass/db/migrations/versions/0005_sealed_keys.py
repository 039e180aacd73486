"""sealed keys: the keyed-hash key, stored sealed so PITPASS_SECRET_KEY can rotate

The key of the keyed hashes (client secrets, refresh tokens, sessions) was derived
from PITPASS_SECRET_KEY; those hashes cannot be re-made without the values they hash,
so the key now lives here, sealed under the secret key, and `pitpass secret-key
rewrap` re-seals it. The row is written on first start (services/data_keys.py) with
the key every earlier version derived, so no existing hash changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import pitpass.db.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sealed_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", pitpass.db.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_sealed_keys")),
    )


def downgrade() -> None:
    op.drop_table("sealed_keys")
