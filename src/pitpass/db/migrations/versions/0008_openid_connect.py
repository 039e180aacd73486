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
    with op.batch_alter_table("web_sessions") as batch:
        batch.drop_column("fresh_signin_nonce")
    with op.batch_alter_table("authorization_codes") as batch:
        batch.drop_column("nonce")
