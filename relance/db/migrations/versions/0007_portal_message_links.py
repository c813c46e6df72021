"""portal_accesses.seed: the personal link reminders and letters carry, re-derivable

The token of a message link is HMAC(secret_key, seed): the next reminder prints the same link
while it is valid, instead of a new bearer link per message. Links issued by a collector or by
the sign-in form keep a purely random token (no seed).

Revision ID: 0007_portal_message_links
Revises: 0006_reply_send_retries
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_portal_message_links"
down_revision = "0006_reply_send_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("portal_accesses") as batch:
        batch.add_column(sa.Column("seed", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("portal_accesses") as batch:
        batch.drop_column("seed")
