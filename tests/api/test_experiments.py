"""`/api/v1/experiments`: admins define and start experiments; any token reads results as JSON."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import versioning
from relance.auth.tokens import create_token
from relance.db.models import AuditEvent
from relance.experiments.models import Experiment
from tests.factories import make_user
from tests.relance.experiments import seeded

BODY = {
    "key": "discreet-api",
    "name": "Discreet wording",
    "template": "utter_reminder_discreet",
    "arms": [{"name": "plain", "variant_index": 1}, {"name": "important", "variant_index": 0}],
    "allocation": "thompson",
    "min_sample": 50,
}


def _admin_auth(db: Session) -> dict[str, str]:
    admin = make_user(db, "admin")
    _row, plaintext = create_token(db, "admin-tool", user=admin)
    db.flush()
    return {"Authorization": f"Bearer {plaintext}"}


def test_an_admin_creates_starts_and_reads_an_experiment(client: TestClient, db: Session) -> None:
    auth = _admin_auth(db)
    created = client.post("/api/v1/experiments", json=BODY, headers=auth)
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    started = client.post(f"/api/v1/experiments/{experiment_id}/start", headers=auth)
    assert started.status_code == 200 and started.json()["status"] == "running"
    results = client.get(f"/api/v1/experiments/{experiment_id}", headers=auth).json()
    assert [a["name"] for a in results["arms"]] == ["plain", "important"]
    assert results["arms"][1]["lift"] is None  # nobody exposed yet: no lift claimed
    assert results["arms"][0]["traffic_share"] == 0.5
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"experiment.created", "experiment.started"} <= actions


def test_a_token_without_an_admin_may_not_create(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    assert client.post("/api/v1/experiments", json=BODY, headers=auth).status_code == 403
    assert db.scalars(select(Experiment)).first() is None


def test_a_variant_the_template_lacks_is_a_400_and_nothing_is_stored(
    client: TestClient, db: Session
) -> None:
    body = {**BODY, "arms": [{"name": "a", "variant_index": 0}, {"name": "b", "variant_index": 9}]}
    answer = client.post("/api/v1/experiments", json=body, headers=_admin_auth(db))
    assert answer.status_code == 400, answer.text
    assert "variants 0 to 2" in answer.text
    assert db.scalars(select(Experiment)).first() is None


def test_an_unknown_experiment_is_a_404(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/api/v1/experiments/999", headers=auth).status_code == 404


def test_the_api_refuses_an_hour_outside_the_windows_with_a_400(
    client: TestClient, db: Session
) -> None:
    body = {
        "key": "evening-api",
        "name": "Evening",
        "factor": "send_hour",
        "stage": "friendly",
        "arms": [{"name": "a", "hour": 10}, {"name": "b", "hour": 21}],
    }
    answer = client.post("/api/v1/experiments", json=body, headers=_admin_auth(db))
    assert answer.status_code == 400, answer.text
    assert "21:00-21:59 is outside the FR contact windows" in answer.text
    assert db.scalars(select(Experiment)).first() is None
    body["arms"] = [{"name": "a", "hour": 10}, {"name": "b", "hour": 18}]
    created = client.post("/api/v1/experiments", json=body, headers=_admin_auth(db))
    assert created.status_code == 201, created.text
    assert [a["hour"] for a in created.json()["arms"]] == [10, 18]


@pytest.mark.parametrize(
    ("factor", "stage", "arms", "says"),
    [
        (
            "channel_order",
            "friendly",
            [{"name": "a", "channels": ["sms", "whatsapp"]}, {"name": "b", "channels": ["fax"]}],
            "unknown channel 'fax'",
        ),
        (
            "channel_order",
            "friendly",
            [{"name": "a", "channels": ["sms"]}, {"name": "b", "channels": ["email", "sms"]}],
            ") by email",
        ),
        (
            "stage_offset",
            "firm",
            [{"name": "a", "offset_days": 10}, {"name": "b", "offset_days": 2}],
            "due+2 would move firm to or before friendly (due+3)",
        ),
        (
            "stage_offset",
            "formal_notice",
            [{"name": "a", "offset_days": 30}, {"name": "b", "offset_days": 0}],
            "before the law allows",
        ),
    ],
)
def test_the_api_refuses_a_bad_channel_order_or_offset_with_a_400(
    client: TestClient, db: Session, factor: str, stage: str, arms: list[object], says: str
) -> None:
    body = {"key": "factor-api", "name": "Factor", "factor": factor, "stage": stage, "arms": arms}
    answer = client.post("/api/v1/experiments", json=body, headers=_admin_auth(db))
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "experiment_invalid" and says in answer.json()["detail"]
    assert db.scalars(select(Experiment)).first() is None


def test_the_api_creates_channel_order_and_offset_experiments(
    client: TestClient, db: Session
) -> None:
    auth = _admin_auth(db)
    order = {
        "key": "order-api",
        "name": "Order",
        "factor": "channel_order",
        "arms": [
            {"name": "a", "channels": ["sms", "whatsapp"]},
            {"name": "b", "channels": ["whatsapp", "sms"]},
        ],
    }
    created = client.post("/api/v1/experiments", json=order, headers=auth)
    assert created.status_code == 201, created.text
    assert [a["channels"] for a in created.json()["arms"]] == [
        ["sms", "whatsapp"],
        ["whatsapp", "sms"],
    ]
    offset = {
        "key": "offset-api",
        "name": "Offset",
        "factor": "stage_offset",
        "stage": "firm",
        "arms": [{"name": "a", "offset_days": 10}, {"name": "b", "offset_days": 7}],
    }
    created = client.post("/api/v1/experiments", json=offset, headers=auth)
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    assert [a["offset_days"] for a in created.json()["arms"]] == [10, 7]
    history = versioning.list_versions(db, f"experiment:{experiment_id}")
    assert [a["offset_days"] for a in history[0].document["arms"]] == [10, 7]


def _start(client: TestClient, auth: dict[str, str], body: dict[str, object]) -> int:
    created = client.post("/api/v1/experiments", json=body, headers=auth)
    assert created.status_code == 201, created.text
    experiment_id: int = created.json()["id"]
    assert client.post(f"/api/v1/experiments/{experiment_id}/start", headers=auth).is_success
    return experiment_id


PLANNED_BODY: dict[str, object] = {"template": None, "allocation": "fixed", "stage": "friendly"}


@pytest.mark.parametrize(
    ("factor", "arms", "in_policy"),
    [
        (
            "send_hour",
            [{"name": "morning", "hour": 10}, {"name": "evening", "hour": 18}],
            ("send_hour", 18),
        ),
        (
            "channel_order",
            [
                {"name": "sms first", "channels": ["sms", "whatsapp"]},
                {"name": "whatsapp first", "channels": ["whatsapp", "sms"]},
            ],
            ("channels", ["whatsapp", "sms"]),
        ),
        (
            "stage_offset",
            [{"name": "due+3", "offset_days": 3}, {"name": "due+5", "offset_days": 5}],
            ("offset_days", 5),
        ),
    ],
)
def test_promoting_a_policy_factor_is_one_call_that_saves_a_policy_version(
    client: TestClient,
    db: Session,
    factor: str,
    arms: list[dict[str, object]],
    in_policy: tuple[str, object],
) -> None:
    auth = _admin_auth(db)
    body = {**BODY, **PLANNED_BODY, "key": f"api-{factor}".replace("_", "-"), "factor": factor}
    experiment_id = _start(client, auth, {**body, "arms": arms})
    answer = client.post(
        f"/api/v1/experiments/{experiment_id}/promote", json={"arm": 1}, headers=auth
    )
    assert answer.status_code == 200, answer.text
    promoted = answer.json()
    assert promoted["wording_version"] is None and promoted["policy_version"] == 1
    assert promoted["experiment"]["status"] == "finished"
    assert promoted["experiment"]["promoted_arm"] == 1
    row = versioning.active_row(db, "policy")
    assert row is not None and row.version == 1
    name, value = in_policy
    friendly = [s for t in row.document["tracks"] for s in t["stages"] if s["key"] == "friendly"]
    assert friendly and all(s[name] == value for s in friendly)
    actions = set(db.scalars(select(AuditEvent.action)))
    assert {"policy.saved", "experiment.promoted"} <= actions


def test_a_winner_the_policy_cannot_express_is_a_409_and_nothing_is_saved(
    client: TestClient, db: Session
) -> None:
    auth = _admin_auth(db)
    arms = [{"name": "morning", "hour": 10}, {"name": "evening", "hour": 18}]
    body = {**BODY, **PLANNED_BODY, "key": "api-en-hours", "factor": "send_hour"}
    experiment_id = _start(client, auth, {**body, "arms": arms, "language": "en"})
    answer = client.post(
        f"/api/v1/experiments/{experiment_id}/promote", json={"arm": 1}, headers=auth
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "policy_cannot_express"
    assert versioning.active_row(db, "policy") is None


def test_a_wording_promotion_answers_its_wording_version(client: TestClient, db: Session) -> None:
    auth = _admin_auth(db)
    experiment_id = _start(client, auth, BODY)
    answer = client.post(
        f"/api/v1/experiments/{experiment_id}/promote", json={"arm": 1}, headers=auth
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["wording_version"] == 1 and answer.json()["policy_version"] is None


def test_the_results_json_has_each_arms_figures_and_the_series(
    client: TestClient, db: Session, auth: dict[str, str]
) -> None:
    experiment_id = _start(client, _admin_auth(db), {**BODY, "allocation": "fixed"})
    experiment = db.get(Experiment, experiment_id)
    assert experiment is not None
    seeded.expose_with_outcomes(db, experiment)
    answer = client.get(f"/api/v1/experiments/{experiment_id}", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    control, variant = body["arms"]
    assert (control["exposed"], control["n"], control["successes"]) == (8, 8, 2)
    assert (variant["exposed"], variant["n"], variant["successes"]) == (9, 8, 5)
    assert (control["rate"], variant["rate"]) == (0.25, 0.625)
    assert variant["amount_recovered_minor"] == {"EUR": 5 * seeded.PAID_MINOR}
    assert control["lift"] is None and variant["lift"] == pytest.approx(0.375)
    assert variant["lift_interval"] == {
        "low": pytest.approx(seeded.LIFT_LOW, abs=1e-6),
        "high": pytest.approx(seeded.LIFT_HIGH, abs=1e-6),
    }
    assert variant["relative_lift"] == pytest.approx(1.5)
    assert variant["p_best"] > 0.9 and body["leader"] == 1
    assert [point["rates"] for point in body["series"]] == [[0.25, 0.5], [0.25, 0.625]]
    days = [point["day"] for point in body["series"]]
    assert days == sorted(days) and len(set(days)) == 2
