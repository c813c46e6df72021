"""invoices: one row per instalment of an e-invoice payable in parts

An e-invoice may be payable in instalments (CII: several SpecifiedTradePaymentTerms each with a
DueDateDateTime and a PartialPaymentAmount; UBL: several cac:PaymentTerms each with a
cbc:PaymentDueDate and a cbc:Amount). Each instalment is imported as its own invoice row, so it is
dunned only from its own due date; `instalment_of` keeps the document's number (what a bank
transfer or a credit note names), `instalment_no` its place in the schedule.

Revision ID: 0010_invoice_instalments
Revises: 0009_partial_reversals
Create Date: 2026-12-16 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_invoice_instalments"
down_revision = "0009_partial_reversals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("instalment_of", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("instalment_no", sa.Integer(), nullable=True))
        batch.create_index("ix_invoices_instalment_of", ["instalment_of"])


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_index("ix_invoices_instalment_of")
        batch.drop_column("instalment_no")
        batch.drop_column("instalment_of")
