"""reply_retries: the answer to an unknown sender's e-mail is retried too

An unknown sender (an address not on file) gets the identity-check answer, with no debt detail;
it has no conversation, Message or Contact, so its retry row names none: `message_id` and
`contact_id` become optional, `address` says whom it goes to and `mail_bytes` keeps the e-mail
as composed for its first send (sent again byte for byte, its Message-ID included).

Revision ID: 0008_unknown_sender_retries
Revises: 0007_portal_message_links
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_unknown_sender_retries"
down_revision = "0007_portal_message_links"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reply_retries") as batch:
        batch.alter_column("message_id", existing_type=sa.Integer(), nullable=True)
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("address", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("mail_bytes", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM reply_retries WHERE message_id IS NULL OR contact_id IS NULL")
    with op.batch_alter_table("reply_retries") as batch:
        batch.drop_column("mail_bytes")
        batch.drop_column("address")
        batch.alter_column("contact_id", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("message_id", existing_type=sa.Integer(), nullable=False)
