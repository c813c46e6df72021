"""a debtor's first exposure is their experiment assignment; an exposure names its dunning group

The dispatcher wrote an assignment row before the send and an exposure row after it for every
first contact in an experiment (two tables, and a SELECT): the exposure is now written once,
before the send, and the first one carries the arm for the whole experiment
(relance/experiments/service.py `expose`). An assignment without any exposure was a send that
failed: the debtor saw nothing, so nothing is lost with it. The message is found through the
exposure's dunning group (`group_key`, known before the send) instead of `message_id`, which only
existed after it; existing exposures get the group whose rows name their message.

Revision ID: 0002_exposure_assignment
Revises: 0001_initial
Create Date: 2026-12-06 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relance.db.base

revision = "0002_exposure_assignment"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_assignments_debtor_id"))
    op.drop_table("experiment_assignments")
    with op.batch_alter_table("experiment_exposures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_key", sa.String(length=80), nullable=True))
    op.execute(
        "UPDATE experiment_exposures SET group_key = (SELECT min(d.group_key) "
        "FROM dunning_actions d WHERE d.message_id = experiment_exposures.message_id) "
        "WHERE message_id IS NOT NULL"
    )
    with op.batch_alter_table("experiment_exposures", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_experiment_exposures_message_id_messages"), type_="foreignkey"
        )
        batch_op.drop_column("message_id")


def downgrade() -> None:
    with op.batch_alter_table("experiment_exposures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("message_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_experiment_exposures_message_id_messages"),
            "messages",
            ["message_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE experiment_exposures SET message_id = (SELECT max(d.message_id) "
        "FROM dunning_actions d WHERE d.group_key = experiment_exposures.group_key "
        "AND d.stage = experiment_exposures.stage)"
    )
    with op.batch_alter_table("experiment_exposures", schema=None) as batch_op:
        batch_op.drop_column("group_key")
    op.create_table(
        "experiment_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("debtor_id", sa.Integer(), nullable=False),
        sa.Column("arm_index", sa.Integer(), nullable=False),
        sa.Column("assigned_at", relance.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["debtor_id"],
            ["debtors.id"],
            name=op.f("fk_experiment_assignments_debtor_id_debtors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_assignments_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_assignments")),
        sa.UniqueConstraint(
            "experiment_id",
            "debtor_id",
            name=op.f("uq_experiment_assignments_experiment_id_debtor_id"),
        ),
    )
    with op.batch_alter_table("experiment_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_assignments_debtor_id"), ["debtor_id"], unique=False
        )
    # Each debtor's first exposure gives back their assignment.
    op.execute(
        "INSERT INTO experiment_assignments (experiment_id, debtor_id, arm_index, assigned_at) "
        "SELECT e.experiment_id, e.debtor_id, e.arm_index, e.exposed_at "
        "FROM experiment_exposures e WHERE e.id = ("
        "SELECT min(f.id) FROM experiment_exposures f "
        "WHERE f.experiment_id = e.experiment_id AND f.debtor_id = e.debtor_id)"
    )
