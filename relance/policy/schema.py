"""Typed, validated shape of the dunning policy document.

The document is admin-edited JSON (console) seeded from `default_policy.yml`; validating it here
means a bad edit is refused at save time with a readable message, never discovered by the worker.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from relance.compliance.profiles import PROFILES, whole_hours
from relance.languages import Language
from relance.late_reasons import Category

StageKind = Literal["message", "call", "letter", "legal"]
ChannelName = Literal["sms", "whatsapp", "voice", "letter", "email"]
Frequency = Literal["weekly", "biweekly", "monthly"]
SegmentName = Literal["b2b", "consumer", "*"]

_KIND_CHANNELS: dict[str, set[str]] = {
    # E-mail may come first at any message stage, and alongside the formal notice (the letter
    # PDF goes attached to an e-mail as well as by registered post).
    "message": {"sms", "whatsapp", "email"},
    "call": {"voice", "sms", "whatsapp"},
    "letter": {"letter", "email"},
    "legal": set(),
}


# A formal notice (mise en demeure) claims a sum already due (Code civil art. 1344): never before
# the day after the due date. Checked on every policy (Stage) and where a stage's day may be moved
# (stage-offset experiments).
FORMAL_NOTICE_EARLIEST_DAY = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Stage(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    offset_days: int = Field(ge=-60, le=365)
    kind: StageKind
    channels: list[ChannelName] = Field(default_factory=list)
    tone: str = "neutral"
    template: str = Field(pattern=r"^utter_[a-z0-9_]+$")
    bot_stage: str
    max_attempts: int = Field(default=3, ge=1, le=10)
    # The debtor's local hour a message stage's contacts are planned at (None: as soon as due).
    # Set by promoting a send-hour experiment (relance/experiments/promotion.py) or by hand;
    # an hour wholly inside every jurisdiction's contact windows only.
    send_hour: int | None = Field(default=None, ge=0, le=23)

    @model_validator(mode="after")
    def _send_hour_is_legal(self) -> Stage:
        if self.send_hour is None:
            return self
        if self.kind != "message":
            raise ValueError(f"stage {self.key}: only a message stage has a send_hour")
        for profile in PROFILES.values():
            if self.send_hour not in whole_hours(profile):
                windows = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in profile.windows)
                raise ValueError(
                    f"stage {self.key}: send_hour {self.send_hour}:00-{self.send_hour}:59 is "
                    f"outside the {profile.code} contact windows ({windows})"
                )
        return self

    @model_validator(mode="after")
    def _formal_notice_after_due(self) -> Stage:
        """A formal notice or a legal step claims a sum already due: a policy that sends one on
        or before the due date is refused whoever edits it (an admin, a promotion)."""
        if self.kind in ("letter", "legal") and self.offset_days < FORMAL_NOTICE_EARLIEST_DAY:
            raise ValueError(
                f"stage {self.key}: a {'formal notice' if self.kind == 'letter' else 'legal step'}"
                f" cannot come before the day after the due date (offset_days is"
                f" {self.offset_days}, at least {FORMAL_NOTICE_EARLIEST_DAY})"
            )
        return self

    @model_validator(mode="after")
    def _channels_fit_kind(self) -> Stage:
        allowed = _KIND_CHANNELS[self.kind]
        wrong = [c for c in self.channels if c not in allowed]
        if wrong:
            raise ValueError(f"stage {self.key}: channel(s) {wrong} not allowed for a {self.kind}")
        if self.kind in ("message", "call", "letter") and not self.channels:
            raise ValueError(f"stage {self.key}: a {self.kind} needs at least one channel")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"stage {self.key}: duplicate channel")
        return self


class Track(_Strict):
    """The stage sequence for one segment / risk class."""

    name: str
    segment: SegmentName = "*"
    risk_class: str = "*"
    stages: list[Stage] = Field(min_length=1)

    @field_validator("stages")
    @classmethod
    def _ordered_unique(cls, stages: list[Stage]) -> list[Stage]:
        keys = [s.key for s in stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique within a track")
        offsets = [s.offset_days for s in stages]
        if offsets != sorted(offsets) or len(set(offsets)) != len(offsets):
            raise ValueError("stage offsets must be strictly increasing")
        return stages

    def matches(self, segment: str, risk_class: str) -> bool:
        return self.segment in ("*", segment) and self.risk_class in ("*", risk_class)


class Priority(_Strict):
    per_thousand_euros: float = 1.0
    amount_cap: float = 50.0
    per_day_late: float = 0.5
    days_cap: int = 120
    per_broken_promise: float = 10.0
    risk_weights: dict[str, float] = Field(default_factory=dict)


class PlanBand(_Strict):
    segment: SegmentName = "*"
    max_amount_minor: int | None = Field(default=None, gt=0)
    max_installments: int = Field(ge=2, le=60)
    max_duration_days: int = Field(ge=7, le=1095)
    min_first_payment_pct: float = Field(default=0, ge=0, le=100)
    min_first_payment_minor: int = Field(default=0, ge=0)
    min_installment_minor: int = Field(default=0, ge=0)
    allowed_frequencies: list[Frequency] = Field(min_length=1)


class ContactRules(_Strict):
    max_contacts: int = Field(default=3, ge=1)
    per_days: int = Field(default=7, ge=1)
    min_gap_hours: float = Field(default=20, ge=0)
    retry_backoff_minutes: list[float] = Field(default_factory=lambda: [5.0, 30.0, 120.0])
    sender_rate_per_minute: float = Field(default=60, gt=0)
    # Send reminders at the hour debtors of the segment reply and pay most on that channel
    # (learned, relance/experiments/best_time.py), always inside the legal contact windows.
    best_time: bool = False


class LetterRules(_Strict):
    deadline_days: Literal[8, 15] = 8
    ecb_rate_pct: float = Field(default=2.15, ge=-2, le=25)
    ecb_plus_points: float = Field(default=10.0, ge=0, le=30)
    interest_rate_pct: float | None = Field(default=None, ge=0, le=50)
    consumer_interest_rate_pct: float | None = Field(default=None, ge=0, le=50)
    # D441-5: 40 euros per late B2B invoice, in euro cents. Claimed on invoices in euros only,
    # never as that number of another currency (relance.letters.amounts.fixed_indemnity_minor).
    fixed_indemnity_minor: int = Field(default=4000, ge=0)
    language: Language = "fr"

    @property
    def b2b_rate_pct(self) -> float:
        """L441-10: the contractual rate if set, else the ECB rate + 10 points."""
        if self.interest_rate_pct is not None:
            return self.interest_rate_pct
        return round(self.ecb_rate_pct + self.ecb_plus_points, 4)


class LateReasonRules(_Strict):
    """What the debtor's stated reason for paying late changes (relance/late_reasons).

    `plan_first`: after one of these reasons, every reminder ends by offering a payment plan (the
    debtor answers yes and the plan negotiation starts) until a plan exists; the reason counts for
    `remember_days` after it was stated.
    """

    plan_first: list[Category] = Field(
        default_factory=lambda: list[Category](["job_loss", "illness", "hardship", "cash_flow"])
    )
    remember_days: int = Field(default=90, ge=1, le=730)

    @field_validator("plan_first")
    @classmethod
    def _unique(cls, categories: list[str]) -> list[str]:
        if len(set(categories)) != len(categories):
            raise ValueError("a category is listed twice")
        return categories


class Policy(_Strict):
    name: str = "default"
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    tracks: list[Track] = Field(min_length=1)
    priority: Priority = Field(default_factory=Priority)
    plan_limits: list[PlanBand] = Field(min_length=1)
    contact: ContactRules = Field(default_factory=ContactRules)
    letters: LetterRules = Field(default_factory=LetterRules)
    late_reasons: LateReasonRules = Field(default_factory=LateReasonRules)

    @model_validator(mode="after")
    def _every_debtor_has_a_track(self) -> Policy:
        for segment in ("b2b", "consumer"):
            if not any(t.matches(segment, "standard") for t in self.tracks):
                raise ValueError(f"no track for segment {segment!r} (add a '*' risk class track)")
            if not any(
                b.segment in ("*", segment) and b.max_amount_minor is None for b in self.plan_limits
            ):
                raise ValueError(
                    f"plan_limits: segment {segment!r} needs a band with max_amount_minor null"
                )
        return self

    def track_for(self, segment: str, risk_class: str) -> Track:
        for track in self.tracks:
            if track.matches(segment, risk_class):
                return track
        return self.tracks[-1]

    def min_offset(self) -> int:
        return min(s.offset_days for t in self.tracks for s in t.stages)
