"""Experiments: define, start, assign, record exposures, stop arms, promote the winner.

An experiment varies the wording (the variants of one reminder template), the send hour (the
local hour at which the planner schedules one stage's contacts, relance/experiments/send_hour.py),
the channel order (the order a stage's channels are tried in, channel_order.py) or a stage's
offset (the day from the due date a stage is reached on, stage_offset.py). Compliance never
varies: the contact windows, caps, opt-outs, disclosure and the wording's own checks (opt-out
notice...) are applied by the dispatcher to every arm alike at the send, each variant is an
already-validated wording, and an hour outside any jurisdiction's contact windows, a channel the
policy's stage does not send by, or an offset that reorders the ladder or brings the formal
notice forward of the due date is refused when the experiment is defined.
The outcome of a debtor is read from the ledger, promises and conversations
(relance/experiments/results.py), never from the text sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast, get_args

from sqlalchemy import Integer, Table, bindparam, delete, func, insert, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from relance import audit, versioning
from relance.compliance.profiles import PROFILES, whole_hours
from relance.errors import BadInput, Conflict, NotFound
from relance.experiments.assignment import arm_of
from relance.experiments.models import Experiment, ExperimentArm, ExperimentExposure
from relance.experiments.stats import thompson_weights
from relance.policy.schema import FORMAL_NOTICE_EARLIEST_DAY, ChannelName, Policy, Track
from relance.policy.service import active_policy

WORDING, SEND_HOUR = "wording", "send_hour"
CHANNEL_ORDER, STAGE_OFFSET = "channel_order", "stage_offset"
FACTORS = (WORDING, SEND_HOUR, CHANNEL_ORDER, STAGE_OFFSET)
# What an arm names, per factor; an arm naming another factor's value is refused.
ARM_VALUES = {
    WORDING: "variant_index",
    SEND_HOUR: "hour",
    CHANNEL_ORDER: "channels",
    STAGE_OFFSET: "offset_days",
}
KNOWN_CHANNELS: tuple[str, ...] = get_args(ChannelName)
OUTCOMES = ("paid_full", "any_payment", "promise", "reply")
ALLOCATIONS = ("fixed", "thompson")
CHANNELS = ("sms", "whatsapp", "voice")
SEGMENTS = ("b2b", "consumer")
LANGUAGES = ("fr", "en")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,47}$")
RUNNING, DRAFT, STOPPED, FINISHED = "running", "draft", "stopped", "finished"


@dataclass(frozen=True)
class ArmSpec:
    """A wording arm names its variant; a send-hour arm its local hour (0-23); a channel-order
    arm the channels it tries first, in order; a stage-offset arm the day, from the due date, it
    reaches the experiment's stage on."""

    name: str
    variant_index: int | None = None
    share: float = 1.0
    hour: int | None = None
    channels: tuple[str, ...] | None = None
    offset_days: int | None = None


@dataclass(frozen=True)
class ExperimentSpec:
    """What an admin defines (console form or API body)."""

    key: str
    name: str
    template: str | None  # the wording whose variants are tested; None for the other factors
    arms: list[ArmSpec]
    factor: str = WORDING
    stage: str | None = None
    channel: str | None = None
    segment: str | None = None
    language: str | None = None
    allocation: str = "fixed"
    min_sample: int = 200
    outcome: str = "any_payment"
    window_days: int = 14
    max_opt_out_excess: float = 0.02
    max_complaint_excess: float = 0.01


@dataclass(frozen=True)
class ArmChoice:
    """The arm a contact uses: which experiment, which arm, which wording variant."""

    experiment_id: int
    arm_index: int
    variant_index: int | None  # None: the usual wording (a send-hour arm)
    exposure_id: int  # the contact's exposure row, written before the send


@dataclass
class RefreshReport:
    stopped_arms: list[tuple[str, int]] = field(default_factory=list)
    weights: dict[str, list[float]] = field(default_factory=dict)


def spec_problems(spec: ExperimentSpec, templates: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every reason the definition cannot be saved, in words an admin can act on."""
    problems: list[str] = []
    if not KEY_PATTERN.match(spec.key):
        problems.append("key: 2-48 lower-case letters, digits, '-' or '_'")
    if not spec.name.strip() or len(spec.name) > 120:
        problems.append("name: 1-120 characters")
    if len(spec.arms) < 2:
        problems.append("arms: at least two (a control and one variant)")
    if len(spec.arms) > 8:
        problems.append("arms: at most eight")
    if spec.factor not in FACTORS:
        problems.append(f"factor: one of {', '.join(FACTORS)}")
    else:
        problems += _foreign_arm_values(spec)
    if spec.factor == WORDING:
        problems += _wording_problems(spec, templates)
    elif spec.factor in FACTORS:
        problems += _planned_factor_problems(spec)
    if spec.factor == SEND_HOUR:
        problems += _send_hour_problems(spec)
    elif spec.factor == CHANNEL_ORDER:
        problems += _channel_order_problems(spec)
    elif spec.factor == STAGE_OFFSET:
        problems += _stage_offset_problems(spec)
    for i, arm in enumerate(spec.arms):
        if not arm.name.strip() or len(arm.name) > 60:
            problems.append(f"arms[{i}].name: 1-60 characters")
        if not 0 < arm.share <= 100:
            problems.append(f"arms[{i}].share: a number above 0 and at most 100")
    checks = (
        ("channel", spec.channel, CHANNELS),
        ("segment", spec.segment, SEGMENTS),
        ("language", spec.language, LANGUAGES),
    )
    for label, value, allowed in checks:
        if value is not None and value not in allowed:
            problems.append(f"{label}: one of {', '.join(allowed)} or empty")
    if spec.allocation not in ALLOCATIONS:
        problems.append(f"allocation: one of {', '.join(ALLOCATIONS)}")
    if spec.outcome not in OUTCOMES:
        problems.append(f"outcome: one of {', '.join(OUTCOMES)}")
    if not 1 <= spec.window_days <= 120:
        problems.append("window_days: 1 to 120")
    if not 10 <= spec.min_sample <= 100_000:
        problems.append("min_sample: 10 to 100000")
    for label, fraction in (
        ("max_opt_out_excess", spec.max_opt_out_excess),
        ("max_complaint_excess", spec.max_complaint_excess),
    ):
        if not 0 < fraction <= 1:
            problems.append(f"{label}: a fraction above 0 and at most 1 (0.02 = two points)")
    return problems


def _wording_problems(
    spec: ExperimentSpec, templates: dict[str, list[dict[str, Any]]]
) -> list[str]:
    problems: list[str] = []
    variants = templates.get(spec.template or "")
    if not variants:
        problems.append(f"template: no wording named {spec.template!r}")
    seen: set[int] = set()
    for i, arm in enumerate(spec.arms):
        if arm.variant_index is None:
            problems.append(f"arms[{i}].variant_index: the wording variant this arm sends")
            continue
        if variants and not 0 <= arm.variant_index < len(variants):
            problems.append(
                f"arms[{i}].variant_index: {spec.template} has variants 0 to {len(variants) - 1}"
            )
        if arm.variant_index in seen:
            problems.append(f"arms[{i}].variant_index: two arms send variant {arm.variant_index}")
        seen.add(arm.variant_index)
    return problems


def _label(factor: str) -> str:
    return factor.replace("_", "-")


def _foreign_arm_values(spec: ExperimentSpec) -> list[str]:
    """An arm names its own factor's value only (a wording arm no hour, a send-hour arm no
    variant...)."""
    problems: list[str] = []
    for i, arm in enumerate(spec.arms):
        for factor, value in ARM_VALUES.items():
            if factor != spec.factor and getattr(arm, value) is not None:
                problems.append(
                    f"arms[{i}].{value}: only a {_label(factor)} experiment's arms name it "
                    f"(this is a {_label(spec.factor)} experiment)"
                )
    return problems


def _planned_factor_problems(spec: ExperimentSpec) -> list[str]:
    """The send-hour, channel-order and stage-offset factors are applied by the planner, from
    the debtor's arm, before the send; they send the usual wording."""
    label = _label(spec.factor)
    problems: list[str] = []
    if spec.template:
        problems.append(f"template: a {label} experiment sends the usual wording: leave it empty")
    if spec.allocation != "fixed":
        problems.append(
            f"allocation: fixed for a {label} experiment (the planner applies the arm when it "
            "plans the contact, hours or days before the send: moving shares would let the arm "
            "planned and the arm recorded differ)"
        )
    return problems


def _send_hour_problems(spec: ExperimentSpec) -> list[str]:
    """A send-hour experiment times one stage's contacts, at hours every jurisdiction allows."""
    problems: list[str] = []
    if not spec.stage:
        problems.append("stage: the dunning stage whose contacts are timed")
    seen: set[int] = set()
    for i, arm in enumerate(spec.arms):
        if arm.hour is None or not 0 <= arm.hour <= 23:
            problems.append(f"arms[{i}].hour: the debtor's local hour this arm sends at, 0 to 23")
            continue
        for profile in PROFILES.values():
            if arm.hour not in whole_hours(profile):
                windows = ", ".join(f"{a:%H:%M}-{b:%H:%M}" for a, b in profile.windows)
                problems.append(
                    f"arms[{i}].hour: {arm.hour}:00-{arm.hour}:59 is outside the {profile.code} "
                    f"contact windows ({windows})"
                )
        if arm.hour in seen:
            problems.append(f"arms[{i}].hour: two arms send at {arm.hour}:00")
        seen.add(arm.hour)
    return problems


def _channel_order_problems(spec: ExperimentSpec) -> list[str]:
    """Each arm an order of known channels, no two arms the same order."""
    problems: list[str] = []
    if spec.channel is not None:
        problems.append(
            "channel: a channel-order experiment varies the channel: leave the channel empty"
        )
    orders: dict[tuple[str, ...], int] = {}
    for i, arm in enumerate(spec.arms):
        if not arm.channels:
            problems.append(f"arms[{i}].channels: the channels this arm tries, in order")
            continue
        for channel in arm.channels:
            if channel not in KNOWN_CHANNELS:
                problems.append(
                    f"arms[{i}].channels: unknown channel {channel!r} "
                    f"(one of {', '.join(KNOWN_CHANNELS)})"
                )
        for channel in dict.fromkeys(c for c in arm.channels if arm.channels.count(c) > 1):
            problems.append(f"arms[{i}].channels: {channel} is named twice")
        if arm.channels in orders:
            problems.append(f"arms[{i}].channels: the same order as arms[{orders[arm.channels]}]")
        orders.setdefault(arm.channels, i)
    return problems


def _stage_offset_problems(spec: ExperimentSpec) -> list[str]:
    """One stage, each arm a distinct day from the due date (checked against the ladder in
    `policy_problems`)."""
    problems: list[str] = []
    if not spec.stage:
        problems.append("stage: the dunning stage whose day is moved")
    if spec.channel is not None:
        problems.append(
            "channel: leave it empty (a stage-offset experiment moves the stage before its "
            "channel is known)"
        )
    seen: set[int] = set()
    for i, arm in enumerate(spec.arms):
        if arm.offset_days is None or not -60 <= arm.offset_days <= 365:
            problems.append(
                f"arms[{i}].offset_days: the day this arm reaches the stage, in days from the "
                "due date, -60 to 365"
            )
            continue
        if arm.offset_days in seen:
            problems.append(
                f"arms[{i}].offset_days: two arms reach the stage at {_day(arm.offset_days)}"
            )
        seen.add(arm.offset_days)
    return problems


def _day(offset: int) -> str:
    return f"due{offset:+d}" if offset else "the due date"


def policy_problems(spec: ExperimentSpec, policy: Policy) -> list[str]:
    """What the active policy refuses: the stage a send-hour or channel-order experiment names
    must be a message stage (calls, letters and legal steps are not timed or reordered by it);
    a channel-order arm names channels the stage sends by; a stage-offset arm keeps the stage
    between its neighbours and the formal notice after the due date."""
    if spec.factor == STAGE_OFFSET:
        return _offset_ladder_problems(spec, policy) if spec.stage else []
    if spec.factor not in (SEND_HOUR, CHANNEL_ORDER):
        return []
    tracks = _tracks_of(spec, policy)
    message_stages = list(
        dict.fromkeys(s.key for t in tracks for s in t.stages if s.kind == "message")
    )
    if spec.stage and spec.stage not in message_stages:
        return [f"stage: a message stage of the active policy ({', '.join(message_stages)})"]
    if spec.factor == SEND_HOUR:
        return []
    stages = [
        (t, s)
        for t in tracks
        for s in t.stages
        if s.kind == "message" and spec.stage in (None, s.key)
    ]
    problems: list[str] = []
    for i, arm in enumerate(spec.arms):
        for channel in arm.channels or ():
            if channel not in KNOWN_CHANNELS:
                continue  # named in spec_problems
            refusing = [f"{s.key} ({t.name} track)" for t, s in stages if channel not in s.channels]
            if spec.stage and refusing:
                problems.append(
                    f"arms[{i}].channels: the policy does not send stage {', '.join(refusing)} "
                    f"by {channel}"
                )
            elif len(refusing) == len(stages):
                problems.append(
                    f"arms[{i}].channels: no message stage of the policy sends by {channel}"
                )
    return problems


def _tracks_of(spec: ExperimentSpec, policy: Policy) -> list[Track]:
    """The tracks whose debtors the experiment may cover (its segment's, or all)."""
    return [t for t in policy.tracks if spec.segment is None or t.segment in ("*", spec.segment)]


def _offset_ladder_problems(spec: ExperimentSpec, policy: Policy) -> list[str]:
    problems: list[str] = []
    found = False
    for track in _tracks_of(spec, policy):
        for n, stage in enumerate(track.stages):
            if stage.key != spec.stage:
                continue
            found = True
            before = track.stages[n - 1] if n else None
            after = track.stages[n + 1] if n + 1 < len(track.stages) else None
            if stage.kind not in ("message", "letter"):
                problems.append(
                    f"stage: {stage.key} is a {stage.kind} stage; a stage-offset experiment moves "
                    "a message or letter stage"
                )
                continue
            for i, arm in enumerate(spec.arms):
                day = arm.offset_days
                if day is None:
                    continue
                where = f"arms[{i}].offset_days: {_day(day)} would move {stage.key}"
                if before is not None and day <= before.offset_days:
                    problems.append(
                        f"{where} to or before {before.key} ({_day(before.offset_days)}) in the "
                        f"{track.name} track"
                    )
                if after is not None and day >= after.offset_days:
                    problems.append(
                        f"{where} to or after {after.key} ({_day(after.offset_days)}) in the "
                        f"{track.name} track"
                    )
                if (day < 0) != (stage.offset_days < 0):
                    side = "before" if stage.offset_days < 0 else "after"
                    problems.append(f"{where} across the due date (it is sent {side} it)")
                if stage.kind == "letter" and day < FORMAL_NOTICE_EARLIEST_DAY:
                    problems.append(
                        f"{where} before the law allows: a formal notice (mise en demeure) "
                        f"claims a sum already due, from {_day(FORMAL_NOTICE_EARLIEST_DAY)}"
                    )
    if not found:
        keys = dict.fromkeys(
            s.key
            for t in _tracks_of(spec, policy)
            for s in t.stages
            if s.kind in ("message", "letter")
        )
        problems.append(
            f"stage: a message or letter stage of the active policy ({', '.join(keys)})"
        )
    return list(dict.fromkeys(problems))


def _save_history(session: Session, experiment: Experiment, *, actor: str, comment: str) -> None:
    versioning.save_version(
        session,
        f"experiment:{experiment.id}",
        experiment.definition(),
        actor=actor,
        comment=comment,
    )


def create(
    session: Session,
    spec: ExperimentSpec,
    *,
    actor: str,
    templates: dict[str, list[dict[str, Any]]],
) -> Experiment:
    """A new experiment in draft (nobody is assigned before it is started)."""
    problems = spec_problems(spec, templates) + policy_problems(spec, active_policy(session))
    if problems:
        raise BadInput("experiment_invalid", "; ".join(problems), problems=problems)
    if session.scalar(select(Experiment.id).where(Experiment.key == spec.key)) is not None:
        raise Conflict("experiment_exists", f"an experiment with key {spec.key!r} exists")
    experiment = Experiment(
        key=spec.key,
        name=spec.name.strip(),
        factor=spec.factor,
        template=spec.template or None,
        stage=spec.stage or None,
        channel=spec.channel or None,
        segment=spec.segment or None,
        language=spec.language or None,
        allocation=spec.allocation,
        min_sample=spec.min_sample,
        outcome=spec.outcome,
        window_days=spec.window_days,
        max_opt_out_excess=spec.max_opt_out_excess,
        max_complaint_excess=spec.max_complaint_excess,
        created_by=actor,
        status=DRAFT,
        arms=[
            ExperimentArm(
                index=i,
                name=a.name.strip(),
                variant_index=a.variant_index,
                hour=a.hour,
                channels=list(a.channels) if a.channels is not None else None,
                offset_days=a.offset_days,
                share=a.share,
            )
            for i, a in enumerate(spec.arms)
        ],
    )
    session.add(experiment)
    session.flush()
    _save_history(session, experiment, actor=actor, comment="created")
    audit.record(
        session, actor=actor, action="experiment.created", entity=experiment, **spec_details(spec)
    )
    return experiment


def spec_details(spec: ExperimentSpec) -> dict[str, Any]:
    return {
        "key": spec.key,
        "factor": spec.factor,
        "template": spec.template,
        "allocation": spec.allocation,
        "outcome": spec.outcome,
        "stage": spec.stage,
        "arms": [
            [
                a.name,
                a.variant_index,
                a.hour,
                list(a.channels or []) or None,
                a.offset_days,
                a.share,
            ]
            for a in spec.arms
        ],
    }


def get(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound("experiment_not_found", f"no experiment {experiment_id}")
    return experiment


def list_all(session: Session) -> list[Experiment]:
    return list(session.scalars(select(Experiment).order_by(Experiment.id.desc())))


def start(session: Session, experiment: Experiment, *, actor: str, now: datetime) -> None:
    if experiment.status != DRAFT:
        raise Conflict("experiment_not_draft", f"the experiment is {experiment.status}")
    for other in running(session):
        if overlap(experiment, other):
            raise Conflict(
                "experiment_clash",
                f"experiment {other.key!r} is running on the same contacts: stop it first",
            )
    experiment.status, experiment.started_at = RUNNING, now
    experiment.weights = fixed_weights(experiment)
    experiment.version += 1
    _save_history(session, experiment, actor=actor, comment="started")
    audit.record(session, actor=actor, action="experiment.started", entity=experiment)


def stop(
    session: Session, experiment: Experiment, *, actor: str, now: datetime, reason: str
) -> None:
    if experiment.status != RUNNING:
        raise Conflict("experiment_not_running", f"the experiment is {experiment.status}")
    experiment.status, experiment.stopped_at = STOPPED, now
    experiment.version += 1
    _save_history(session, experiment, actor=actor, comment=f"stopped: {reason}"[:500])
    audit.record(
        session, actor=actor, action="experiment.stopped", entity=experiment, reason=reason[:300]
    )


def overlap(a: Experiment, b: Experiment) -> bool:
    """Whether one contact could be in both: two wording experiments on one template, or a
    send-hour experiment and any experiment that may cover its stage. Each contact is in one
    experiment at most, so its outcome is attributed to one arm."""
    if a.factor == WORDING and b.factor == WORDING:
        return a.template == b.template
    return a.stage is None or b.stage is None or a.stage == b.stage


def fixed_weights(experiment: Experiment) -> list[float]:
    """The admin's split, stopped arms removed."""
    return [0.0 if a.stopped_at is not None else a.share for a in experiment.arms]


# -- assignment and exposure (the dispatcher and /nlg) -----------------------------------------


def running(session: Session) -> list[Experiment]:
    return list(session.scalars(select(Experiment).where(Experiment.status == RUNNING)))


@dataclass(frozen=True)
class RunningExperiment:
    """What a send needs of a running experiment, detached from any session: the dispatcher
    reads these once a minute instead of twice per contact (bench/experiments)."""

    id: int
    key: str
    factor: str
    template: str | None
    stage: str | None
    channel: str | None
    segment: str | None
    language: str | None
    weights: tuple[float, ...]
    variants: tuple[int | None, ...]  # variant index per arm (None: other factors' arms)
    hours: tuple[int | None, ...]  # local send hour per arm (None: other factors' arms)
    channel_orders: tuple[tuple[str, ...] | None, ...]  # channels first tried, per arm
    offsets: tuple[int | None, ...]  # the stage's day from the due date, per arm
    stopped: frozenset[int]  # arms stopped by a guard rail

    @classmethod
    def of(cls, experiment: Experiment) -> RunningExperiment:
        return cls(
            id=experiment.id,
            key=experiment.key,
            factor=experiment.factor,
            template=experiment.template,
            stage=experiment.stage,
            channel=experiment.channel,
            segment=experiment.segment,
            language=experiment.language,
            weights=tuple(experiment.weights or fixed_weights(experiment)),
            variants=tuple(a.variant_index for a in experiment.arms),
            hours=tuple(a.hour for a in experiment.arms),
            channel_orders=tuple(
                tuple(a.channels) if a.channels is not None else None for a in experiment.arms
            ),
            offsets=tuple(a.offset_days for a in experiment.arms),
            stopped=frozenset(a.index for a in experiment.arms if a.stopped_at is not None),
        )


def running_snapshot(session: Session) -> list[RunningExperiment]:
    return [RunningExperiment.of(e) for e in running(session)]


def eligible(
    experiment: Experiment | RunningExperiment,
    *,
    template: str,
    stage: str | None,
    channel: str,
    segment: str,
    language: str,
    kind: str = "message",
) -> bool:
    """Whether the contact about to send `template` at `stage` is in the experiment; the other
    factors take their stage's contacts whatever their wording. `kind` is the lead stage's kind
    (`message`, `call`, `letter`, or `notice` for a letter's announcement): a channel-order
    experiment covers message stages only, those the planner ordered."""
    if experiment.factor == WORDING:
        covered = experiment.template == template
    elif experiment.factor == CHANNEL_ORDER:
        covered = kind == "message"
    else:
        covered = True
    return (
        covered
        and experiment.stage in (None, stage)
        and experiment.channel in (None, channel)
        and experiment.segment in (None, segment)
        and experiment.language in (None, language)
    )


@lru_cache(maxsize=64)
def _exposure_insert(stopped: frozenset[int]) -> ReturningInsert[tuple[int, int]]:
    """INSERT an exposure whose arm is the debtor's first exposure's, else `:hashed_arm`;
    nothing when that arm is in `stopped`. Built once per set of stopped arms (the dispatcher
    runs it for every contact in an experiment; only the values change)."""
    experiment_id = bindparam("experiment_id", type_=Integer())
    debtor_id = bindparam("debtor_id", type_=Integer())
    stored = (
        select(ExperimentExposure.arm_index)
        .where(
            ExperimentExposure.experiment_id == experiment_id,
            ExperimentExposure.debtor_id == debtor_id,
        )
        .order_by(ExperimentExposure.id)
        .limit(1)
        .scalar_subquery()
    )
    arm = func.coalesce(stored, bindparam("hashed_arm", type_=Integer()))
    table = cast(Table, ExperimentExposure.__table__)
    columns = table.c
    chosen = select(
        experiment_id,
        arm,
        debtor_id,
        bindparam("channel", type_=columns.channel.type),
        bindparam("stage", type_=columns.stage.type),
        bindparam("group_key", type_=columns.group_key.type),
        bindparam("invoice_ids", type_=columns.invoice_ids.type),
        bindparam("exposed_at", type_=columns.exposed_at.type),
    )
    if stopped:
        chosen = chosen.where(arm.not_in(sorted(stopped)))
    names = ["experiment_id", "arm_index", "debtor_id", "channel", "stage", "group_key"]
    # The table, not the mapped class: an ORM insert given a dict of values would take it for
    # a bulk insert of rows.
    return (
        insert(table)
        .from_select([*names, "invoice_ids", "exposed_at"], chosen)
        .returning(columns.id, columns.arm_index)
    )


def expose(
    session: Session,
    experiment: RunningExperiment,
    *,
    debtor_id: int,
    channel: str,
    stage: str | None,
    group_key: str | None,
    invoice_ids: list[int],
    now: datetime,
) -> ArmChoice | None:
    """Record that this contact uses the debtor's arm, before it is sent; None when that arm
    was stopped (the usual wording then, and no exposure).

    One INSERT ... SELECT, with no look-up before it: the arm is the one of the debtor's first
    exposure to this experiment if there is one (kept for the whole experiment, even after
    Thompson sampling moved the shares), else the slice of the current shares holding the
    debtor's hash. The first exposure is the assignment: no table of its own, so a contact in an
    experiment writes one row and runs one statement more than a contact outside it
    (bench/experiments). It is written before the send because Rasa's /nlg call for the
    reminder's text reads it (`variant_for_reply`); the dispatcher withdraws it if the send fails.
    """
    weights = [0.0 if i in experiment.stopped else w for i, w in enumerate(experiment.weights)]
    if sum(weights) <= 0:
        return None
    row = session.execute(
        _exposure_insert(experiment.stopped),
        {
            "experiment_id": experiment.id,
            "debtor_id": debtor_id,
            "hashed_arm": arm_of(experiment.key, debtor_id, weights),
            "channel": channel,
            "stage": stage,
            "group_key": group_key,
            "invoice_ids": invoice_ids,
            "exposed_at": now,
        },
    ).first()
    if row is None:  # the debtor's arm was stopped by a guard rail
        return None
    return ArmChoice(experiment.id, row.arm_index, experiment.variants[row.arm_index], row.id)


def expose_contact(
    session: Session,
    experiments: list[RunningExperiment],
    *,
    debtor_id: int,
    template: str,
    stage: str | None,
    channel: str,
    segment: str,
    language: str,
    group_key: str | None,
    invoice_ids: list[int],
    now: datetime,
    kind: str = "message",
) -> ArmChoice | None:
    """The arm this reminder uses, its exposure recorded, if a running experiment covers it.

    `experiments` is the caller's recent snapshot of the running ones (`running_snapshot`);
    `kind` the lead stage's (see `eligible`)."""
    for experiment in experiments:
        if eligible(
            experiment,
            template=template,
            stage=stage,
            channel=channel,
            segment=segment,
            language=language,
            kind=kind,
        ):
            return expose(
                session,
                experiment,
                debtor_id=debtor_id,
                channel=channel,
                stage=stage,
                group_key=group_key,
                invoice_ids=invoice_ids,
                now=now,
            )
    return None


def withdraw(session: Session, choice: ArmChoice) -> None:
    """The send failed: the debtor saw nothing, so the contact is no exposure (and, if it was
    their first, no assignment either)."""
    session.execute(
        delete(ExperimentExposure).where(ExperimentExposure.id == choice.exposure_id),
        execution_options={"synchronize_session": False},
    )


def variant_for_reply(session: Session, *, template: str, sender_id: str) -> int | None:
    """For /nlg: the variant a debtor already in an experiment on `template` gets; else None.

    Never assigns: only a contact the dispatcher sends enters a debtor in an experiment, so the
    assistant's replies follow the arm of the reminder they answer. One indexed query, which
    finds nothing at once when no experiment runs on `template`.
    """
    from relance.db.models import Conversation

    row = session.execute(
        select(ExperimentArm.variant_index, ExperimentArm.stopped_at)
        .join(Experiment, Experiment.id == ExperimentArm.experiment_id)
        .join(
            ExperimentExposure,
            (ExperimentExposure.experiment_id == Experiment.id)
            & (ExperimentExposure.arm_index == ExperimentArm.index),
        )
        .join(Conversation, Conversation.debtor_id == ExperimentExposure.debtor_id)
        .where(
            Experiment.status == RUNNING,
            Experiment.template == template,
            Conversation.sender_id == sender_id,
        )
        .limit(1)
    ).first()
    if row is None or row.stopped_at is not None or row.variant_index is None:
        return None
    return int(row.variant_index)


# -- the hourly job: guard rails, then traffic shares ------------------------------------------


def refresh(session: Session, *, now: datetime) -> RefreshReport:
    """Stop arms that raise opt-outs or complaints past the threshold, then move the shares."""
    from relance.experiments.results import compute

    report = RefreshReport()
    for experiment in running(session):
        results = compute(session, experiment, now=now)
        control = results.arms[0]
        for arm, row in zip(experiment.arms[1:], results.arms[1:], strict=True):
            if arm.stopped_at is not None or row.exposed < experiment.min_sample:
                continue
            reason = guard_rail_breach(
                experiment,
                opt_out=(row.opt_out_rate, control.opt_out_rate),
                complaint=(row.complaint_rate, control.complaint_rate),
            )
            if reason is None:
                continue
            arm.stopped_at, arm.stop_reason = now, reason
            report.stopped_arms.append((experiment.key, arm.index))
            audit.record(
                session,
                actor="system",
                action="experiment.arm_stopped",
                entity=experiment,
                arm=arm.index,
                arm_name=arm.name,
                reason=reason,
            )
        weights = fixed_weights(experiment)
        if experiment.allocation == "thompson":
            live = [a.index for a in experiment.arms if a.stopped_at is None]
            counts = [(results.arms[i].successes, results.arms[i].n) for i in live]
            shares = thompson_weights(counts, min_sample=experiment.min_sample)
            weights = [0.0] * len(experiment.arms)
            for i, share in zip(live, shares, strict=True):
                weights[i] = share
        experiment.weights = weights
        report.weights[experiment.key] = weights
    return report


def guard_rail_breach(
    experiment: Experiment, *, opt_out: tuple[float, float], complaint: tuple[float, float]
) -> str | None:
    """Why an arm must stop, or None: its rate minus control's above the experiment's limit."""
    if opt_out[0] - opt_out[1] > experiment.max_opt_out_excess:
        return (
            f"opt-out rate {opt_out[0]:.1%} vs control {opt_out[1]:.1%} "
            f"(limit +{experiment.max_opt_out_excess:.1%})"
        )
    if complaint[0] - complaint[1] > experiment.max_complaint_excess:
        return (
            f"complaint rate {complaint[0]:.1%} vs control {complaint[1]:.1%} "
            f"(limit +{experiment.max_complaint_excess:.1%})"
        )
    return None
