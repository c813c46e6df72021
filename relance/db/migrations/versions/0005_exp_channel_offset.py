"""channel-order and stage-offset experiments: an arm may name a channel order or a stage offset

An experiment whose factor is `channel_order` varies the order a stage's channels are tried in:
its arms carry `channels` (a JSON list). One whose factor is `stage_offset` varies the day a
stage is reached on: its arms carry `offset_days` (days from the due date). Existing arms keep
both empty.

Revision ID: 0005_exp_channel_offset
Revises: 0004_sepa_direct_debit
Create Date: 2026-12-07 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_exp_channel_offset"
down_revision = "0004_sepa_direct_debit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_arms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channels", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("offset_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    # These experiments have nothing to vary without their arms' columns: they cannot be kept.
    for table in ("experiment_exposures", "experiment_arms"):
        op.execute(
            f"DELETE FROM {table} WHERE experiment_id IN "
            "(SELECT id FROM experiments WHERE factor IN ('channel_order', 'stage_offset'))"
        )
    op.execute("DELETE FROM experiments WHERE factor IN ('channel_order', 'stage_offset')")
    with op.batch_alter_table("experiment_arms", schema=None) as batch_op:
        batch_op.drop_column("offset_days")
        batch_op.drop_column("channels")
