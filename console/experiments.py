"""Admin → Experiments: define a wording, send-hour, channel-order or stage-offset experiment,
start or stop it, read its results (per arm
n, outcome rate, money recovered, lift with its 95% interval, P(best), opt-outs, complaints, a
chart over time) and promote the winner in one click: a wording arm's variant becomes the
template's wording, a send-hour, channel-order or stage-offset arm a new dunning policy version
(relance/experiments/promotion.py). Every change is audited by
relance.experiments; the same data is served as JSON under /api/v1/experiments."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from console.web import PREFIX, ConsoleRoute, redirect, render
from relance.auth.deps import AdminUser, CsrfChecked, actor_of
from relance.dashboard import charts
from relance.db.base import utcnow
from relance.errors import BadInput
from relance.experiments import promotion, results, service
from relance.nlg.templates_store import active_templates
from relance.policy.service import active_policy
from relance.web.deps import DbSession
from relance.web.ids import RowId

router = APIRouter(route_class=ConsoleRoute)
BASE = f"{PREFIX}/admin/experiments"


ARM_LINES = {
    service.WORDING: "variant index",
    service.SEND_HOUR: "hour",
    service.CHANNEL_ORDER: "channel > channel...",
    service.STAGE_OFFSET: "days from the due date",
}


def _arms(text: str, factor: str) -> list[service.ArmSpec]:
    """One arm a line, `name: value [: share]`, the value being a variant index (wording), an
    hour (send hour, 0-23 in the debtor's local time), channels in order (`sms > email`) or a
    day from the due date (stage offset, `7`); the first line is the control."""
    value = ARM_LINES.get(factor, "variant index")
    arms = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(":")]
        try:
            share = float(parts[2]) if len(parts) > 2 else 1.0
            if factor == service.CHANNEL_ORDER:
                channels = tuple(c.strip() for c in re.split(r"[>,]", parts[1]) if c.strip())
                if not channels:
                    raise ValueError("no channel")
                arms.append(service.ArmSpec(parts[0], share=share, channels=channels))
                continue
            number_given = int(parts[1])
        except (IndexError, ValueError) as exc:
            raise BadInput(
                "arms_invalid", f"arms, line {number}: write 'name: {value} [: share]'"
            ) from exc
        if factor == service.SEND_HOUR:
            arms.append(service.ArmSpec(parts[0], share=share, hour=number_given))
        elif factor == service.STAGE_OFFSET:
            arms.append(service.ArmSpec(parts[0], share=share, offset_days=number_given))
        else:
            arms.append(service.ArmSpec(parts[0], number_given, share))
    return arms


def _list_context(db: DbSession, **extra: Any) -> dict[str, Any]:
    templates = active_templates(db)
    return {
        "section": "experiments",
        "experiments": service.list_all(db),
        "templates": sorted(n for n in templates if n.startswith("utter_reminder")),
        "outcomes": service.OUTCOMES,
        "factors": service.FACTORS,
        "stages": _stages(db),
        "form": {},
        **extra,
    }


def _stages(db: DbSession) -> list[str]:
    """The policy's stage keys, every track's, in ladder order (a send-hour experiment names one)."""
    seen: dict[str, None] = {}
    for track in active_policy(db).tracks:
        for stage in track.stages:
            seen.setdefault(stage.key)
    return list(seen)


@router.get("/experiments", name="admin_experiments")
def experiments_page(request: Request, db: DbSession, user: AdminUser) -> Response:
    return render(request, "admin_experiments.html", _list_context(db))


@router.post("/experiments", dependencies=[CsrfChecked])
def create_experiment(
    request: Request,
    db: DbSession,
    user: AdminUser,
    key: Annotated[str, Form(max_length=48)],
    name: Annotated[str, Form(max_length=120)],
    arms: Annotated[str, Form(max_length=2000)],
    factor: Annotated[str, Form(max_length=16)] = service.WORDING,
    template: Annotated[str, Form(max_length=120)] = "",
    stage: Annotated[str, Form(max_length=32)] = "",
    allocation: Annotated[str, Form(max_length=16)] = "fixed",
    outcome: Annotated[str, Form(max_length=16)] = "any_payment",
    window_days: Annotated[int, Form(ge=1, le=120)] = 14,
    min_sample: Annotated[int, Form(ge=10, le=100_000)] = 200,
    channel: Annotated[str, Form(max_length=16)] = "",
    segment: Annotated[str, Form(max_length=16)] = "",
    language: Annotated[str, Form(max_length=8)] = "",
    max_opt_out_excess: Annotated[float, Form(gt=0, le=1)] = 0.02,
    max_complaint_excess: Annotated[float, Form(gt=0, le=1)] = 0.01,
) -> Response:
    form = {
        "key": key,
        "name": name,
        "factor": factor,
        "template": template,
        "stage": stage,
        "arms": arms,
        "allocation": allocation,
        "outcome": outcome,
        "window_days": window_days,
        "min_sample": min_sample,
        "channel": channel,
        "segment": segment,
        "language": language,
    }
    try:
        spec = service.ExperimentSpec(
            key=key.strip(),
            name=name,
            factor=factor,
            # Only a wording experiment names a template: the menu is ignored for the others.
            template=(template or None) if factor == service.WORDING else None,
            arms=_arms(arms, factor),
            stage=stage or None,
            channel=channel or None,
            segment=segment or None,
            language=language or None,
            allocation=allocation,
            outcome=outcome,
            window_days=window_days,
            min_sample=min_sample,
            max_opt_out_excess=max_opt_out_excess,
            max_complaint_excess=max_complaint_excess,
        )
        experiment = service.create(db, spec, actor=actor_of(user), templates=active_templates(db))
    except BadInput as exc:
        problems = exc.details.get("problems") or [exc.message]
        context = _list_context(db, problems=problems, form=form)
        return render(request, "admin_experiments.html", context, status_code=422)
    return redirect(request, f"{BASE}/{experiment.id}")


@router.get("/experiments/{experiment_id}")
def experiment_page(
    request: Request, db: DbSession, user: AdminUser, experiment_id: RowId
) -> Response:
    experiment = service.get(db, experiment_id)
    outcome = results.compute(db, experiment, now=utcnow())
    chart = charts.line_chart(
        [day.strftime("%d %b") for day, _ in outcome.series],
        [(arm.name, [rates[arm.index] for _, rates in outcome.series]) for arm in outcome.arms],
        lambda v: f"{v:.0%}",
        title="Cumulative outcome rate by day of first contact",
    )
    variants = (active_templates(db).get(experiment.template) or []) if experiment.template else []
    return render(
        request,
        "admin_experiment.html",
        {
            "section": "experiments",
            "experiment": experiment,
            "results": outcome,
            "chart": chart,
            "variants": variants,
        },
    )


@router.post("/experiments/{experiment_id}/start", dependencies=[CsrfChecked])
def start_experiment(
    request: Request, db: DbSession, user: AdminUser, experiment_id: RowId
) -> Response:
    service.start(db, service.get(db, experiment_id), actor=actor_of(user), now=utcnow())
    return redirect(request, f"{BASE}/{experiment_id}")


@router.post("/experiments/{experiment_id}/stop", dependencies=[CsrfChecked])
def stop_experiment(
    request: Request,
    db: DbSession,
    user: AdminUser,
    experiment_id: RowId,
    reason: Annotated[str, Form(min_length=1, max_length=300)],
) -> Response:
    experiment = service.get(db, experiment_id)
    service.stop(db, experiment, actor=actor_of(user), now=utcnow(), reason=reason)
    return redirect(request, f"{BASE}/{experiment_id}")


@router.post("/experiments/{experiment_id}/promote", dependencies=[CsrfChecked])
def promote_winner(
    request: Request,
    db: DbSession,
    user: AdminUser,
    experiment_id: RowId,
    arm: Annotated[int, Form(ge=0, le=7)],
) -> Response:
    experiment = service.get(db, experiment_id)
    promotion.promote(db, experiment, arm, actor=actor_of(user), now=utcnow())
    return redirect(request, f"{BASE}/{experiment_id}")
