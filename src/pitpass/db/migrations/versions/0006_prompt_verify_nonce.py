"""prompt=verify nonce: the request an emailed code was typed for, on its web session

The proof of a fresh emailed code was a signed cookie holding a time and the web
session's integer id: any code typed after a mark any browser could mint satisfied
any later request, and a rowid can come back after deletions. The web session a code
opens now holds the random nonce of the one prompt=verify request that code was typed
for; /authorize clears it when that request ends (services/fresh_verification.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "web_sessions", sa.Column("prompt_verify_nonce", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild of a table other rows point at
    # fails with foreign keys on, as soon as there is data.
    op.drop_column("web_sessions", "prompt_verify_nonce")
