"""Admin → Experiments: create from the form, see results with the chart, promote in one click."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import versioning
from relance.db.base import utcnow
from relance.experiments import service
from relance.experiments.models import Experiment
from relance.nlg.templates_store import WORDING_KIND, active_templates
from tests.console.conftest import csrf_of
from tests.relance.experiments import seeded

FORM = {
    "key": "discreet-console",
    "name": "Discreet wording",
    "template": "utter_reminder_discreet",
    "arms": "plain: 1\nimportant: 0",
    "outcome": "any_payment",
    "window_days": "7",
    "min_sample": "50",
}


def test_an_admin_creates_starts_and_promotes_from_the_console(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    created = as_admin.post(
        "/console/admin/experiments", data={**FORM, "csrf_token": token}, follow_redirects=False
    )
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    page = as_admin.get(page_url)
    assert page.status_code == 200 and "<svg" in page.text and "P(best)" in page.text
    experiment = db.scalars(select(Experiment)).one()
    started = as_admin.post(f"{page_url}/start", data={"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303
    promoted = as_admin.post(
        f"{page_url}/promote", data={"csrf_token": token, "arm": "1"}, follow_redirects=False
    )
    assert promoted.status_code == 303
    db.refresh(experiment)
    assert experiment.status == "finished"
    row = versioning.active_row(db, WORDING_KIND)
    assert row is not None and "promote arm important" in (row.comment or "")


def test_a_bad_arms_line_shows_the_problem_and_stores_nothing(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    answer = as_admin.post(
        "/console/admin/experiments",
        data={**FORM, "arms": "only one arm without index", "csrf_token": token},
    )
    assert answer.status_code == 422
    assert "name: variant index" in answer.text
    assert db.scalars(select(Experiment)).first() is None


def test_collectors_cannot_see_experiments(as_collector: TestClient) -> None:
    assert as_collector.get("/console/admin/experiments").status_code == 403


def test_the_console_form_defines_a_send_hour_experiment_and_refuses_a_night_hour(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    form = {
        "key": "evening-console",
        "name": "Evening",
        "factor": "send_hour",
        "template": "utter_reminder_discreet",  # the menu's first entry, ignored for send hours
        "stage": "friendly",
        "arms": "morning: 10\nnight: 22",
        "csrf_token": token,
    }
    refused = as_admin.post("/console/admin/experiments", data=form)
    assert refused.status_code == 422
    assert "22:00-22:59 is outside the FR contact windows" in refused.text
    assert db.scalars(select(Experiment)).first() is None
    created = as_admin.post(
        "/console/admin/experiments",
        data={**form, "arms": "morning: 10\nevening: 18"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page = as_admin.get(created.headers["location"])
    assert page.status_code == 200 and "at 18:00" in page.text and "P(best)" in page.text
    experiment = db.scalars(select(Experiment)).one()
    assert (experiment.factor, experiment.template, experiment.stage) == (
        "send_hour",
        None,
        "friendly",
    )


@pytest.mark.parametrize(
    ("factor", "stage", "arms", "says"),
    [
        (
            "channel_order",
            "friendly",
            "a: sms > whatsapp\nb: fax > sms",
            "unknown channel &#39;fax&#39;",
        ),
        ("channel_order", "friendly", "a: sms\nb: email > sms", ") by email"),
        ("channel_order", "friendly", "a: sms\nb:", "write &#39;name: channel &gt; channel..."),
        (
            "stage_offset",
            "firm",
            "a: 10\nb: 25",
            "due+25 would move firm to or after call (due+20)",
        ),
        ("stage_offset", "formal_notice", "a: 30\nb: 0", "before the law allows"),
    ],
)
def test_the_console_form_refuses_a_bad_channel_order_or_offset(
    as_admin: TestClient, db: Session, factor: str, stage: str, arms: str, says: str
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    form = {"key": "factor-console", "name": "Factor", "factor": factor, "stage": stage}
    answer = as_admin.post(
        "/console/admin/experiments", data={**form, "arms": arms, "csrf_token": token}
    )
    assert answer.status_code == 422
    assert says in answer.text
    assert db.scalars(select(Experiment)).first() is None


def test_the_console_form_defines_channel_order_and_offset_experiments(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    for key, factor, stage, arms, shown in (
        (
            "order-console",
            "channel_order",
            "",
            "sms: sms > whatsapp\nwa: whatsapp > sms",
            "whatsapp &gt; sms",
        ),
        ("offset-console", "stage_offset", "firm", "later: 10\nsooner: 7", "at due+7"),
    ):
        form = {"key": key, "name": key, "factor": factor, "stage": stage, "arms": arms}
        created = as_admin.post(
            "/console/admin/experiments",
            data={**form, "template": "utter_reminder_discreet", "csrf_token": token},
            follow_redirects=False,
        )
        assert created.status_code == 303, created.text
        page = as_admin.get(created.headers["location"])
        assert page.status_code == 200 and shown in page.text
    order, offset = db.scalars(select(Experiment).order_by(Experiment.id)).all()
    assert (order.template, order.stage, [a.channels for a in order.arms]) == (
        None,
        None,
        [["sms", "whatsapp"], ["whatsapp", "sms"]],
    )
    assert (offset.stage, [a.offset_days for a in offset.arms]) == ("firm", [10, 7])


@pytest.mark.parametrize(
    ("factor", "arms", "in_policy"),
    [
        ("send_hour", "morning: 10\nevening: 18", ("send_hour", 18)),
        (
            "channel_order",
            "sms: sms > whatsapp\nwa: whatsapp > sms",
            ("channels", ["whatsapp", "sms"]),
        ),
        ("stage_offset", "later: 3\nsooner: 2", ("offset_days", 2)),
    ],
)
def test_one_click_promotes_a_policy_factor_to_a_new_policy_version(
    as_admin: TestClient, db: Session, factor: str, arms: str, in_policy: tuple[str, object]
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    form = {"key": "promote-console", "name": "Promote", "factor": factor, "stage": "friendly"}
    created = as_admin.post(
        "/console/admin/experiments",
        data={**form, "arms": arms, "template": "utter_reminder_discreet", "csrf_token": token},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    as_admin.post(f"{page_url}/start", data={"csrf_token": token}, follow_redirects=False)
    page = as_admin.get(page_url)
    assert f"{page_url}/promote" in page.text  # the button, for every factor
    promoted = as_admin.post(
        f"{page_url}/promote", data={"csrf_token": token, "arm": "1"}, follow_redirects=False
    )
    assert promoted.status_code == 303, promoted.text
    experiment = db.scalars(select(Experiment)).one()
    db.refresh(experiment)
    assert (experiment.status, experiment.promoted_arm) == ("finished", 1)
    row = versioning.active_row(db, "policy")
    assert row is not None and "promote-console: promote arm" in (row.comment or "")
    name, value = in_policy
    friendly = [s for t in row.document["tracks"] for s in t["stages"] if s["key"] == "friendly"]
    assert friendly and all(s[name] == value for s in friendly)
    assert "promoted" in as_admin.get(page_url).text


def test_a_winner_the_policy_cannot_express_is_refused_on_the_page(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/experiments")
    form = {
        "key": "fr-hours",
        "name": "French hours",
        "factor": "send_hour",
        "stage": "friendly",
        "language": "fr",
        "arms": "morning: 10\nevening: 18",
        "template": "utter_reminder_discreet",
        "csrf_token": token,
    }
    created = as_admin.post("/console/admin/experiments", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    page_url = created.headers["location"]
    as_admin.post(f"{page_url}/start", data={"csrf_token": token}, follow_redirects=False)
    refused = as_admin.post(f"{page_url}/promote", data={"csrf_token": token, "arm": "1"})
    assert refused.status_code == 409
    assert "no per-language setting" in refused.text
    assert versioning.active_row(db, "policy") is None


def test_the_results_page_charts_each_arms_cumulative_rate(
    as_admin: TestClient, db: Session
) -> None:
    spec = service.ExperimentSpec(
        key="charted",
        name="Charted",
        template="utter_reminder_discreet",
        arms=[service.ArmSpec("plain", 1), service.ArmSpec("important", 0)],
    )
    experiment = service.create(db, spec, actor="u", templates=active_templates(db))
    service.start(db, experiment, actor="u", now=utcnow())
    seeded.expose_with_outcomes(db, experiment)
    page = as_admin.get(f"/console/admin/experiments/{experiment.id}")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    for arm, name in ((0, "plain"), (1, "important")):
        assert f'points="{seeded.POINTS[arm]}"><title>{name}</title>' in svg
    assert "62.5%" in page.text and "+37.5 pts" in page.text  # the variant's rate and lift
    assert "(-9.2 to +67.3)" in page.text  # its 95% interval
