"""payments: how much of a payment came back (a dispute can take back part of it)

A card dispute, or a SEPA Direct Debit refund request, can be for less than the payment
(`dispute.amount`): only that part is taken back out of the ledger. `reversed_minor` says how
much came back; a payment reversed before this column existed came back whole.

Revision ID: 0009_partial_reversals
Revises: 0008_unknown_sender_retries
Create Date: 2026-12-15 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_partial_reversals"
down_revision = "0008_unknown_sender_retries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(
            sa.Column("reversed_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
    op.execute("UPDATE payments SET reversed_minor = amount_minor WHERE reversed_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("reversed_minor")
