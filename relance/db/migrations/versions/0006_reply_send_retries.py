"""reply_retries: the assistant's replies whose send failed for a transient reason

One row per failed outbound reply (SMTP 4xx or a network error, Twilio 429/5xx or a network
error): the worker sends the same Message row again with exponential backoff, re-checking the
contact rules at each attempt, and hands the conversation to a collector after the cap.

Revision ID: 0006_reply_send_retries
Revises: 0005_exp_channel_offset
Create Date: 2026-12-06 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import relance.db.base

revision = "0006_reply_send_retries"
down_revision = "0005_exp_channel_offset"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reply_retries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", relance.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mail_key", sa.String(length=255), nullable=True),
        sa.Column("mail_rows", sa.JSON(), nullable=True),
        sa.Column("last_error_code", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", relance.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", relance.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_reply_retries_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_reply_retries_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_retries")),
        sa.UniqueConstraint("message_id", name=op.f("uq_reply_retries_message_id")),
    )
    with op.batch_alter_table("reply_retries", schema=None) as batch_op:
        for column in ("status", "next_attempt_at"):
            batch_op.create_index(batch_op.f(f"ix_reply_retries_{column}"), [column], unique=False)


def downgrade() -> None:
    op.drop_table("reply_retries")
