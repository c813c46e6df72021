"""Experiments, their arms, and every contact that used an arm (the first one is the debtor's
assignment: relance/experiments/service.py `expose`).

An experiment's definition is also saved as a versioned document (`experiment:<id>`) at each
change, so its history can be read and compared like the policy's (relance/versioning.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relance.db.base import Base, TimestampMixin, utcnow


class Experiment(TimestampMixin, Base):
    """What varies, for whom, and how it is judged.

    `factor` is what the arms change: `wording` (each arm a variant of `template`),
    `send_hour` (each arm a local hour at which the planner schedules the contacts of `stage`),
    `channel_order` (each arm the order the channels of `stage`, or of every message stage, are
    tried in) or `stage_offset` (each arm the day, from the due date, `stage` is reached on).
    Only a wording experiment names a template: the others send the usual wording."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(48), unique=True)  # in the assignment hash
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    factor: Mapped[str] = mapped_column(String(16), default="wording")
    template: Mapped[str | None] = mapped_column(String(120), index=True)  # wording only
    # Eligibility (None = any): the stage key, channel, segment and language of the contact.
    stage: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[str | None] = mapped_column(String(16))
    segment: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    allocation: Mapped[str] = mapped_column(String(16), default="fixed")  # fixed, thompson
    min_sample: Mapped[int] = mapped_column(default=200)
    outcome: Mapped[str] = mapped_column(String(16), default="any_payment")
    window_days: Mapped[int] = mapped_column(default=14)
    # Guard rails: an arm whose opt-out or complaint rate exceeds control's by more than this
    # (absolute, e.g. 0.02 = two points) once it has `min_sample` debtors is stopped.
    max_opt_out_excess: Mapped[float] = mapped_column(default=0.02)
    max_complaint_excess: Mapped[float] = mapped_column(default=0.01)
    weights: Mapped[list[float] | None] = mapped_column(JSON)  # current traffic shares
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str] = mapped_column(String(80))
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    promoted_arm: Mapped[int | None]

    arms: Mapped[list[ExperimentArm]] = relationship(
        back_populates="experiment",
        order_by="ExperimentArm.index",
        cascade="all, delete-orphan",
        lazy="selectin",
    )

    def definition(self) -> dict[str, Any]:
        """Everything an admin chose, as saved in the experiment's version history."""
        return {
            "key": self.key,
            "name": self.name,
            "factor": self.factor,
            "template": self.template,
            "stage": self.stage,
            "channel": self.channel,
            "segment": self.segment,
            "language": self.language,
            "allocation": self.allocation,
            "min_sample": self.min_sample,
            "outcome": self.outcome,
            "window_days": self.window_days,
            "max_opt_out_excess": self.max_opt_out_excess,
            "max_complaint_excess": self.max_complaint_excess,
            "arms": [
                {
                    "name": a.name,
                    "variant_index": a.variant_index,
                    "hour": a.hour,
                    "channels": a.channels,
                    "offset_days": a.offset_days,
                    "share": a.share,
                }
                for a in self.arms
            ],
        }


class ExperimentArm(Base):
    """One arm; arm 0 is the control. A wording arm sends the variant `variant_index`; a
    send-hour arm is sent at `hour` (0-23, the debtor's local time); a channel-order arm tries
    `channels` first, in that order; a stage-offset arm reaches the stage `offset_days` after
    the due date."""

    __tablename__ = "experiment_arms"
    __table_args__ = (UniqueConstraint("experiment_id", "index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    index: Mapped[int]
    name: Mapped[str] = mapped_column(String(60))
    variant_index: Mapped[int | None]
    hour: Mapped[int | None]
    channels: Mapped[list[str] | None] = mapped_column(JSON)
    offset_days: Mapped[int | None]
    share: Mapped[float] = mapped_column(default=1.0)  # fixed split weight
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(300))

    experiment: Mapped[Experiment] = relationship(back_populates="arms")


class ExperimentExposure(Base):
    """A contact that used an arm: the reminder sent, on which channel, when.

    A debtor's first exposure to an experiment is also their assignment: every later contact
    copies its arm, and /nlg reads it for the assistant's replies. Written just before the send
    (Rasa's /nlg needs it for the reminder's own text) and removed if the send fails."""

    __tablename__ = "experiment_exposures"
    __table_args__ = (Index("ix_experiment_exposures_exp_debtor", "experiment_id", "debtor_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    arm_index: Mapped[int]
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(40))
    # The dunning group whose contact this was: its rows (dunning_actions.group_key) carry the
    # message sent. Known before the send, so the exposure is written once, complete.
    group_key: Mapped[str | None] = mapped_column(String(80))
    invoice_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    exposed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
