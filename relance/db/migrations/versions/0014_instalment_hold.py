"""installments: refund_hold_id becomes hold_id, any dispute that holds a plan instalment

0013 added `refund_hold_id`: the `refunded` dispute a refund by the creditor opened, which holds
the plan instalment it reopened against the follow-up pass's reminders, charges and "missed".
A debtor's own dispute on an invoice a running plan covers now holds the plan's instalments of
that invoice the same way (relance/plans/holds.py): one mechanism, one column, so it is renamed
to what it now means. The values are kept (each is a dispute id either way); its index and
foreign key are renamed with it, so the schema keeps the naming convention's names.

Revision ID: 0014_instalment_hold
Revises: 0013_instalment_refund_hold
Create Date: 2026-12-21 09:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0014_instalment_hold"
down_revision = "0013_instalment_refund_hold"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    with op.batch_alter_table("installments") as batch:
        batch.drop_constraint(f"fk_installments_{old}_disputes", type_="foreignkey")
        batch.drop_index(f"ix_installments_{old}")
        batch.alter_column(old, new_column_name=new)
    # A second batch: SQLite's copy of the table knows the new name only once it is made.
    with op.batch_alter_table("installments") as batch:
        batch.create_index(f"ix_installments_{new}", [new])
        batch.create_foreign_key(
            f"fk_installments_{new}_disputes", "disputes", [new], ["id"], ondelete="SET NULL"
        )


def upgrade() -> None:
    _rename("refund_hold_id", "hold_id")


def downgrade() -> None:
    _rename("hold_id", "refund_hold_id")
