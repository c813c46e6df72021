"""saved payment methods become cards or SEPA mandates; installment charges; payment reversals

A saved method gets a `kind` (card, sepa_debit) and a `status` (pending, active, revoked,
inactive): a SEPA mandate is pending from the moment the debtor is sent to the provider's page,
so its customer and payment method references are only known later and become nullable. The
mandate's provider id, its reference and text as shown to the debtor and the IBAN's last four
characters are kept; the IBAN itself never is. Existing rows are active cards.

`installment_charges` holds one row per attempt to charge an installment (claimed before the
provider call; its idempotency key is installment + attempt), whose SEPA outcome arrives days
later by webhook. A payment whose debit failed after it was recorded is marked reversed.

Revision ID: 0004_sepa_direct_debit
Revises: 0003_send_hour_experiments
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relance.db.base

revision = "0004_sepa_direct_debit"
down_revision = "0003_send_hour_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("saved_payment_methods", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="card", nullable=False)
        )
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="active", nullable=False)
        )
        batch_op.add_column(sa.Column("setup_ref", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("mandate_ref", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("mandate_reference", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("mandate_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last4", sa.String(length=4), nullable=True))
        batch_op.alter_column("customer_ref", existing_type=sa.String(length=128), nullable=True)
        batch_op.alter_column(
            "payment_method_ref", existing_type=sa.String(length=128), nullable=True
        )
        batch_op.create_index(
            batch_op.f("ix_saved_payment_methods_setup_ref"), ["setup_ref"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_saved_payment_methods_mandate_ref"), ["mandate_ref"], unique=False
        )
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reversed_at", relance.db.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("reversal_reason", sa.String(length=64), nullable=True))
    op.create_table(
        "installment_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installment_id", sa.Integer(), nullable=False),
        sa.Column("saved_method_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("settled_at", relance.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_at", relance.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", relance.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_installment_charges_debtor_id_debtors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["installments.id"],
            name=op.f("fk_installment_charges_installment_id_installments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["saved_method_id"],
            ["saved_payment_methods.id"],
            name=op.f("fk_installment_charges_saved_method_id_saved_payment_methods"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installment_charges")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_installment_charges_idempotency_key")),
        sa.UniqueConstraint(
            "installment_id", "attempt", name=op.f("uq_installment_charges_installment_id_attempt")
        ),
    )
    with op.batch_alter_table("installment_charges", schema=None) as batch_op:
        for column in ("installment_id", "saved_method_id", "debtor_id", "provider_ref", "status"):
            batch_op.create_index(
                batch_op.f(f"ix_installment_charges_{column}"), [column], unique=False
            )


def downgrade() -> None:
    op.drop_table("installment_charges")
    with op.batch_alter_table("payments", schema=None) as batch_op:
        batch_op.drop_column("reversal_reason")
        batch_op.drop_column("reversed_at")
    # Pending mandates have no references; every SEPA mandate goes with the kind it needs.
    op.execute("DELETE FROM saved_payment_methods WHERE kind != 'card'")
    with op.batch_alter_table("saved_payment_methods", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_payment_methods_mandate_ref"))
        batch_op.drop_index(batch_op.f("ix_saved_payment_methods_setup_ref"))
        batch_op.alter_column(
            "payment_method_ref", existing_type=sa.String(length=128), nullable=False
        )
        batch_op.alter_column("customer_ref", existing_type=sa.String(length=128), nullable=False)
        for column in ("last4", "mandate_text", "mandate_reference", "mandate_ref", "setup_ref"):
            batch_op.drop_column(column)
        batch_op.drop_column("status")
        batch_op.drop_column("kind")
