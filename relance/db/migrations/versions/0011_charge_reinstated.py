"""installment_charges: a failed debit whose money came back (a SEPA dispute closed `won`)

A SEPA Direct Debit taken back by the debtor's refund request (a dispute) marks its charge
`failed`; when the bank cancels the refund request (Stripe closes the dispute `won`) the money
is recorded again as a payment referenced by the dispute id. The charge row then says so too:
status `reinstated`, with the dispute id (`reinstated_ref`) and when (`reinstated_at`), so the
portal, the console and the exports tell the same story as the ledger. The failure code and
date stay: the return did happen.

Revision ID: 0011_charge_reinstated
Revises: 0010_invoice_instalments
Create Date: 2026-12-07 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relance.db.base

revision = "0011_charge_reinstated"
down_revision = "0010_invoice_instalments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installment_charges") as batch:
        batch.add_column(sa.Column("reinstated_ref", sa.String(length=128), nullable=True))
        batch.add_column(
            sa.Column("reinstated_at", relance.db.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("installment_charges") as batch:
        batch.drop_column("reinstated_at")
        batch.drop_column("reinstated_ref")
