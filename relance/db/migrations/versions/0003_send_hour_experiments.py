"""send-hour experiments: an arm may name an hour instead of a wording variant

An experiment whose factor is `send_hour` varies the local hour at which the planner schedules a
stage's contacts: its arms carry `hour` and no `variant_index`, and it names no template.
Existing experiments are wording experiments and keep both.

Revision ID: 0003_send_hour_experiments
Revises: 0002_exposure_assignment
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_send_hour_experiments"
down_revision = "0002_exposure_assignment"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_arms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hour", sa.Integer(), nullable=True))
        batch_op.alter_column("variant_index", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.alter_column("template", existing_type=sa.String(length=120), nullable=True)


def downgrade() -> None:
    # A send-hour experiment has no wording to fall back on: it cannot be kept.
    for table in ("experiment_exposures", "experiment_arms"):
        op.execute(
            f"DELETE FROM {table} WHERE experiment_id IN "
            "(SELECT id FROM experiments WHERE factor = 'send_hour')"
        )
    op.execute("DELETE FROM experiments WHERE factor = 'send_hour'")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.alter_column("template", existing_type=sa.String(length=120), nullable=False)
    with op.batch_alter_table("experiment_arms", schema=None) as batch_op:
        batch_op.alter_column("variant_index", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("hour")
