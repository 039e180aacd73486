"""OpenID Connect: the nonce with its code, the fresh sign-in a request asked for

An authorization request with the `openid` scope may carry a `nonce`, which the ID token
issued for its code must repeat (OpenID Connect Core §3.1.2.1): it is stored with the
code. `prompt=login` and `max_age` send the member to sign in again; the web session that
sign-in opens holds the random nonce of that one request, as `prompt=verify` does
(services/fresh_verification.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("authorization_codes", sa.Column("nonce", sa.String(length=255), nullable=True))
    op.add_column(
        "web_sessions", sa.Column("fresh_signin_nonce", sa.String(length=64), nullable=True)
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+): a batch rebuild of a table other rows point at
    # fails with foreign keys on, as soon as there is data.
    op.drop_column("web_sessions", "fresh_signin_nonce")
    op.drop_column("authorization_codes", "nonce")
