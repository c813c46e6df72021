"""installment_charges: a succeeded charge whose money went back (a card dispute lost, a refund)

A card charge made off-session for an instalment can be charged back by the debtor's bank and
the dispute lost, or refunded by the creditor from Stripe's dashboard. The payment is reversed
in the ledger; the charge row then says so too instead of `succeeded`: status `disputed_lost` or
`refunded`, with the dispute or refund id (`reversed_ref`) and when (`reversed_at`), so the
portal, the console and the exports tell the same story as the ledger.

Revision ID: 0012_charge_reversed
Revises: 0011_charge_reinstated
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relance.db.base

revision = "0012_charge_reversed"
down_revision = "0011_charge_reinstated"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installment_charges") as batch:
        batch.add_column(sa.Column("reversed_ref", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("reversed_at", relance.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("installment_charges") as batch:
        batch.drop_column("reversed_at")
        batch.drop_column("reversed_ref")
