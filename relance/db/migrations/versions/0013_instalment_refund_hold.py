"""installments: the refund dispute that holds a plan instalment

A refund the creditor makes from Stripe takes back the money of a recorded payment; what it had
settled is owed again and waits, held by an open `refunded` dispute, for a collector to decide
whether it is still owed. An instalment of a payment plan the refund reopened used to be left
out of that hold: the follow-up pass reminded it, charged the card on file again and marked it
missed. `refund_hold_id` names the dispute that holds it: while that dispute is open the
instalment is neither reminded, charged nor missed; the link stays afterwards as its history.

Revision ID: 0013_instalment_refund_hold
Revises: 0012_charge_reversed
Create Date: 2026-12-20 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_instalment_refund_hold"
down_revision = "0012_charge_reversed"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installments") as batch:
        batch.add_column(sa.Column("refund_hold_id", sa.Integer(), nullable=True))
        batch.create_index("ix_installments_refund_hold_id", ["refund_hold_id"])
        batch.create_foreign_key(
            "fk_installments_refund_hold_id_disputes",
            "disputes",
            ["refund_hold_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("installments") as batch:
        batch.drop_constraint("fk_installments_refund_hold_id_disputes", type_="foreignkey")
        batch.drop_index("ix_installments_refund_hold_id")
        batch.drop_column("refund_hold_id")
