"""`/experiments`: define, start, stop, read results of, and promote experiments (wording
variants of a reminder, the local hour a stage's contacts are sent at, the order a stage's
channels are tried in, or the day a stage is reached on).

Reading is open to any token; changing an experiment needs an admin user's token (it changes
what debtors are sent), like the console's Admin → Experiments page.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from relance.api.auth import ApiCaller, Caller
from relance.api.privacy import require_admin_token
from relance.api.schemas import MAX_ID, ErrorOut
from relance.db.base import utcnow
from relance.experiments import promotion, results, service
from relance.experiments.models import Experiment
from relance.nlg.templates_store import active_templates
from relance.policy.service import POLICY_KIND
from relance.web.deps import DbSession

router = APIRouter(tags=["experiments"])
ExperimentId = Annotated[int, Path(ge=1, le=MAX_ID)]
Admin = Annotated[ApiCaller, Depends(require_admin_token)]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
}


class ArmIn(BaseModel):
    """A wording arm names `variant_index`, a send-hour arm `hour`, a channel-order arm
    `channels` (in order), a stage-offset arm `offset_days` (from the due date); the service
    checks them against the factor, the contact windows and the active policy, naming every
    problem (an unknown channel included)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    variant_index: int | None = Field(default=None, ge=0, le=100)
    hour: int | None = Field(default=None, ge=0, le=23)
    channels: list[Annotated[str, Field(min_length=1, max_length=16)]] | None = Field(
        default=None, min_length=1, max_length=8
    )
    offset_days: int | None = Field(default=None, ge=-60, le=365)
    share: float = Field(default=1.0, gt=0, le=100)

    def spec(self) -> service.ArmSpec:
        data = self.model_dump(exclude={"channels"})
        channels = tuple(self.channels) if self.channels is not None else None
        return service.ArmSpec(**data, channels=channels)


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,47}$")
    name: str = Field(min_length=1, max_length=120)
    factor: str = Field(
        default="wording", pattern="^(wording|send_hour|channel_order|stage_offset)$"
    )
    template: str | None = Field(default=None, pattern=r"^utter_[a-z0-9_]+$", max_length=120)
    arms: list[ArmIn] = Field(min_length=2, max_length=8)
    stage: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{1,31}$")
    channel: str | None = Field(default=None, pattern="^(sms|whatsapp|voice)$")
    segment: str | None = Field(default=None, pattern="^(b2b|consumer)$")
    language: str | None = Field(default=None, pattern="^(fr|en)$")
    allocation: str = Field(default="fixed", pattern="^(fixed|thompson)$")
    min_sample: int = Field(default=200, ge=10, le=100_000)
    outcome: str = Field(default="any_payment", pattern="^(paid_full|any_payment|promise|reply)$")
    window_days: int = Field(default=14, ge=1, le=120)
    max_opt_out_excess: float = Field(default=0.02, gt=0, le=1)
    max_complaint_excess: float = Field(default=0.01, gt=0, le=1)

    def spec(self) -> service.ExperimentSpec:
        data = self.model_dump(exclude={"arms"})
        return service.ExperimentSpec(**data, arms=[a.spec() for a in self.arms])


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=300)


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arm: int = Field(ge=0, le=7)


class ArmOut(BaseModel):
    index: int
    name: str
    variant_index: int | None
    hour: int | None
    channels: list[str] | None
    offset_days: int | None
    share: float
    stopped_at: str | None
    stop_reason: str | None


class ExperimentOut(BaseModel):
    id: int
    key: str
    name: str
    status: str
    factor: str
    template: str | None
    stage: str | None
    channel: str | None
    segment: str | None
    language: str | None
    allocation: str
    min_sample: int
    outcome: str
    window_days: int
    max_opt_out_excess: float
    max_complaint_excess: float
    version: int
    promoted_arm: int | None
    arms: list[ArmOut]


class IntervalOut(BaseModel):
    low: float
    high: float


class ArmResultOut(BaseModel):
    index: int
    name: str
    exposed: int
    n: int
    successes: int
    rate: float
    rate_interval: IntervalOut
    amount_recovered_minor: dict[str, int]
    lift: float | None
    lift_interval: IntervalOut | None
    relative_lift: float | None
    p_best: float
    traffic_share: float
    opt_out_rate: float
    complaint_rate: float
    stopped_reason: str | None


class PointOut(BaseModel):
    day: date
    rates: list[float | None]


class ResultsOut(BaseModel):
    experiment: ExperimentOut
    outcome: str
    window_days: int
    leader: int | None
    arms: list[ArmResultOut]
    series: list[PointOut]


class PromotedOut(BaseModel):
    """The new version the winner became: a wording version (wording experiments) or a dunning
    policy version (send hour, channel order, stage offset); the other is null."""

    experiment: ExperimentOut
    wording_version: int | None
    policy_version: int | None


def experiment_out(e: Experiment) -> ExperimentOut:
    return ExperimentOut(
        id=e.id,
        key=e.key,
        name=e.name,
        status=e.status,
        factor=e.factor,
        template=e.template,
        stage=e.stage,
        channel=e.channel,
        segment=e.segment,
        language=e.language,
        allocation=e.allocation,
        min_sample=e.min_sample,
        outcome=e.outcome,
        window_days=e.window_days,
        max_opt_out_excess=e.max_opt_out_excess,
        max_complaint_excess=e.max_complaint_excess,
        version=e.version,
        promoted_arm=e.promoted_arm,
        arms=[
            ArmOut(
                index=a.index,
                name=a.name,
                variant_index=a.variant_index,
                hour=a.hour,
                channels=a.channels,
                offset_days=a.offset_days,
                share=a.share,
                stopped_at=a.stopped_at.isoformat() if a.stopped_at else None,
                stop_reason=a.stop_reason,
            )
            for a in e.arms
        ],
    )


def results_out(e: Experiment, r: results.Results) -> ResultsOut:
    return ResultsOut(
        experiment=experiment_out(e),
        outcome=r.outcome,
        window_days=r.window_days,
        leader=r.leader,
        arms=[
            ArmResultOut(
                index=a.index,
                name=a.name,
                exposed=a.exposed,
                n=a.n,
                successes=a.successes,
                rate=a.rate,
                rate_interval=IntervalOut(low=a.rate_interval.low, high=a.rate_interval.high),
                amount_recovered_minor=a.amount_minor,
                lift=a.lift,
                lift_interval=(
                    IntervalOut(low=a.lift_interval.low, high=a.lift_interval.high)
                    if a.lift_interval
                    else None
                ),
                relative_lift=a.relative_lift,
                p_best=a.p_best,
                traffic_share=a.share,
                opt_out_rate=a.opt_out_rate,
                complaint_rate=a.complaint_rate,
                stopped_reason=a.stopped_reason,
            )
            for a in r.arms
        ],
        series=[PointOut(day=day, rates=rates) for day, rates in r.series],
    )


@router.get("/experiments", response_model=list[ExperimentOut])
def list_experiments(db: DbSession, _caller: Caller) -> list[ExperimentOut]:
    return [experiment_out(e) for e in service.list_all(db)]


@router.post("/experiments", response_model=ExperimentOut, status_code=201, responses=ERRORS)
def create_experiment(body: ExperimentIn, db: DbSession, caller: Admin) -> ExperimentOut:
    experiment = service.create(db, body.spec(), actor=caller.actor, templates=active_templates(db))
    return experiment_out(experiment)


@router.get("/experiments/{experiment_id}", response_model=ResultsOut, responses=ERRORS)
def experiment_results(experiment_id: ExperimentId, db: DbSession, _caller: Caller) -> ResultsOut:
    experiment = service.get(db, experiment_id)
    return results_out(experiment, results.compute(db, experiment, now=utcnow()))


@router.post("/experiments/{experiment_id}/start", response_model=ExperimentOut, responses=ERRORS)
def start_experiment(experiment_id: ExperimentId, db: DbSession, caller: Admin) -> ExperimentOut:
    experiment = service.get(db, experiment_id)
    service.start(db, experiment, actor=caller.actor, now=utcnow())
    return experiment_out(experiment)


@router.post("/experiments/{experiment_id}/stop", response_model=ExperimentOut, responses=ERRORS)
def stop_experiment(
    experiment_id: ExperimentId, body: StopIn, db: DbSession, caller: Admin
) -> ExperimentOut:
    experiment = service.get(db, experiment_id)
    service.stop(db, experiment, actor=caller.actor, now=utcnow(), reason=body.reason)
    return experiment_out(experiment)


@router.post(
    "/experiments/{experiment_id}/promote",
    response_model=PromotedOut,
    # 422 invalid_policy: the winner would break the policy in force (policy factors).
    responses={**ERRORS, 422: {"model": ErrorOut}},
)
def promote_winner(
    experiment_id: ExperimentId, body: PromoteIn, db: DbSession, caller: Admin
) -> PromotedOut:
    experiment = service.get(db, experiment_id)
    version = promotion.promote(db, experiment, body.arm, actor=caller.actor, now=utcnow())
    to_policy = version.kind == POLICY_KIND
    return PromotedOut(
        experiment=experiment_out(experiment),
        wording_version=None if to_policy else version.version,
        policy_version=version.version if to_policy else None,
    )
