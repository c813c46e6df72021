"""Admin: policy (plan limits, contact caps, full document), wording, versions, audit log."""

from __future__ import annotations

import re

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Invoice, VersionedDocument
from relance.nlg.templates_store import active_templates
from relance.policy import service as policy_service
from tests.console.conftest import csrf_of
from tests.factories import make_debtor, make_invoice


def _limits_form(client: TestClient, **overrides: str) -> dict[str, str]:
    """The plan-limits form exactly as the browser would post it, with some fields changed."""
    html = client.get("/console/admin/policy?tab=limits").text
    form = html.split('action="/console/admin/policy/limits"')[1].split("</form>")[0]
    data: dict[str, str] = {}
    for tag in re.findall(r"<(?:input|select)[^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        if not name:
            continue
        if 'type="checkbox"' in tag:
            if "checked" in tag:
                data[name.group(1)] = "1"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        data[name.group(1)] = value.group(1) if value else ""
    for select_html in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]+)" selected', select_html[1])
        data[select_html[0]] = chosen.group(1) if chosen else "*"
    data.update(overrides)
    return data


def test_plan_limit_edit_is_active_at_once(as_admin: TestClient, db: Session) -> None:
    consumer = make_debtor(db, customer_number="PL-1", name="Plan Limit", segment="consumer")
    before = policy_service.plan_limits_for(db, consumer, 30_000)
    assert before.max_installments == 3
    data = _limits_form(as_admin, **{"band-0-max_installments": "5", "comment": "more room"})
    response = as_admin.post("/console/admin/policy/limits", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    after = policy_service.plan_limits_for(db, consumer, 30_000)
    assert after.max_installments == 5
    assert after.min_installment_minor == before.min_installment_minor  # untouched fields kept
    row = db.scalars(
        select(VersionedDocument).where(
            VersionedDocument.kind == "policy", VersionedDocument.active.is_(True)
        )
    ).one()
    assert row.comment == "more room" and row.created_by.startswith("user:")
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "policy.saved")).first()
    page = as_admin.get("/console/admin/policy?tab=limits&done=saved").text
    assert "Policy saved and active now" in page and "v1" in page


def test_inconsistent_plan_limits_are_refused_with_reasons(
    as_admin: TestClient, db: Session
) -> None:
    data = _limits_form(
        as_admin, **{"band-0-max_installments": "1", "band-1-max_duration_days": "soon"}
    )
    response = as_admin.post("/console/admin/policy/limits", data=data)
    assert response.status_code == 422
    assert "is not a number" in response.text
    data = _limits_form(as_admin, **{"band-0-max_installments": "1"})
    response = as_admin.post("/console/admin/policy/limits", data=data)
    assert response.status_code == 422
    assert "Not saved" in response.text and "max_installments" in response.text
    assert policy_service.active_version(db) == 0
    # Removing every open-ended consumer band breaks "each segment needs a band".
    data = _limits_form(as_admin, **{"band-2-remove": "1"})
    response = as_admin.post("/console/admin/policy/limits", data=data)
    assert response.status_code == 422 and "consumer" in response.text


def test_forged_band_count_is_refused_not_a_server_error(as_admin: TestClient, db: Session) -> None:
    data = _limits_form(as_admin, band_count="many")
    response = as_admin.post("/console/admin/policy/limits", data=data)
    assert response.status_code == 422
    assert "band count: &#39;many&#39; is not a number" in response.text
    assert policy_service.active_version(db) == 0


def test_contact_caps_edit(as_admin: TestClient, db: Session) -> None:
    token = csrf_of(as_admin, "/console/admin/policy?tab=contact")
    response = as_admin.post(
        "/console/admin/policy/contact",
        data={
            "csrf_token": token,
            "max_contacts": "2",
            "per_days": "7",
            "min_gap_hours": "24",
            "sender_rate_per_minute": "30",
            "retry_backoff_minutes": "5, 60",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    contact = policy_service.active_policy(db).contact
    assert (contact.max_contacts, contact.min_gap_hours, contact.retry_backoff_minutes) == (
        2,
        24.0,
        [5.0, 60.0],
    )
    bad = as_admin.post(
        "/console/admin/policy/contact",
        data={
            "csrf_token": token,
            "max_contacts": "0",
            "per_days": "7",
            "min_gap_hours": "24",
            "sender_rate_per_minute": "30",
        },
    )
    assert bad.status_code == 422 and "max_contacts" in bad.text
    page = as_admin.get("/console/admin/policy?tab=contact").text
    assert "10:00–13:00" in page  # the legal FR windows are shown


def test_full_document_edit_validates_yaml_schema_and_templates(
    as_admin: TestClient, db: Session
) -> None:
    token = csrf_of(as_admin, "/console/admin/policy?tab=document")
    broken = as_admin.post(
        "/console/admin/policy/document",
        data={"csrf_token": token, "document": "tracks: [unclosed"},
    )
    assert broken.status_code == 422 and "YAML syntax" in broken.text
    document = policy_service.active_document(db)
    document = yaml.safe_load(yaml.safe_dump(document))
    document["tracks"][0]["stages"][1]["template"] = "utter_does_not_exist"
    missing = as_admin.post(
        "/console/admin/policy/document",
        data={"csrf_token": token, "document": yaml.safe_dump(document)},
    )
    assert missing.status_code == 422
    assert "template utter_does_not_exist does not exist" in missing.text
    document["tracks"][0]["stages"][1]["template"] = "utter_reminder_friendly"
    document["tracks"][0]["stages"][1]["offset_days"] = -20  # before the pre-due stage
    unordered = as_admin.post(
        "/console/admin/policy/document",
        data={"csrf_token": token, "document": yaml.safe_dump(document)},
    )
    assert unordered.status_code == 422 and "strictly increasing" in unordered.text
    assert policy_service.active_version(db) == 0


def test_versions_diff_and_rollback(as_admin: TestClient, db: Session) -> None:
    for installments in ("4", "6"):
        data = _limits_form(as_admin, **{"band-0-max_installments": installments})
        assert (
            as_admin.post(
                "/console/admin/policy/limits", data=data, follow_redirects=False
            ).status_code
            == 303
        )
    versions = as_admin.get("/console/admin/policy/versions").text
    assert "v1" in versions and "v2" in versions and "Restore v1" in versions
    diff = as_admin.get("/console/admin/policy/diff?old=1&new=2").text
    assert "-  max_installments: 4" in diff and "+  max_installments: 6" in diff
    token = csrf_of(as_admin, "/console/admin/policy/versions")
    response = as_admin.post(
        "/console/admin/policy/rollback",
        data={"csrf_token": token, "version": "1"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert policy_service.active_version(db) == 3
    assert policy_service.active_policy(db).plan_limits[0].max_installments == 4
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "policy.rolled_back")).first()
    assert as_admin.get("/console/admin/policy/diff?old=99").status_code == 404


def test_policy_preview_on_a_sample_debtor(as_admin: TestClient, db: Session) -> None:
    owner = make_debtor(db, name="Preview Person", segment="consumer")
    make_invoice(db, owner, amount_minor=120_000)
    page = as_admin.get(f"/console/admin/policy?tab=preview&debtor_id={owner.id}").text
    assert "Preview Person" in page and "track consumer" in page
    assert "Max installments" in page and "<strong>6</strong>" in page  # 1,200 € band
    # The reminders name the invoice as the dispatcher's list renders it, not letter by letter.
    number = db.scalars(select(Invoice.number).where(Invoice.debtor_id == owner.id)).one()
    assert f"facture {number} " in page and ", ".join(number) not in page


def test_send_hour_is_edited_in_the_document_and_shown_in_the_preview(
    as_admin: TestClient, db: Session
) -> None:
    """A promoted send-hour experiment writes `send_hour` into a stage: the admin must see it
    in the preview and be able to change it by hand, with the contact windows enforced."""
    owner = make_debtor(db, name="Hour Person", segment="consumer")
    make_invoice(db, owner, amount_minor=50_000)
    token = csrf_of(as_admin, "/console/admin/policy?tab=document")
    document = yaml.safe_load(yaml.safe_dump(policy_service.active_document(db)))
    consumer = next(t for t in document["tracks"] if t["name"] == "consumer")
    friendly = next(s for s in consumer["stages"] if s["key"] == "friendly")
    friendly["send_hour"] = 23  # outside every contact window
    refused = as_admin.post(
        "/console/admin/policy/document",
        data={"csrf_token": token, "document": yaml.safe_dump(document)},
    )
    assert refused.status_code == 422 and "send_hour" in refused.text
    assert policy_service.active_version(db) == 0
    friendly["send_hour"] = 11
    saved = as_admin.post(
        "/console/admin/policy/document",
        data={"csrf_token": token, "document": yaml.safe_dump(document)},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert (
        policy_service.active_policy(db).track_for("consumer", "standard").stages[1].send_hour == 11
    )
    page = as_admin.get(f"/console/admin/policy?tab=preview&debtor_id={owner.id}").text

    assert "at 11:00 (debtor's local time)" in page


def _wording_post(client: TestClient, name: str, document: str, action: str = "save"):  # type: ignore[no-untyped-def]
    token = csrf_of(client, f"/console/admin/wording/edit/{name}")
    return client.post(
        f"/console/admin/wording/edit/{name}",
        data={"csrf_token": token, "document": document, "action": action},
        follow_redirects=False,
    )


def test_wording_edit_takes_effect_and_is_versioned(as_admin: TestClient, db: Session) -> None:
    make_debtor(db, name="Wording Sample")
    name = "utter_collector_payment_link"
    listing = as_admin.get("/console/admin/wording?q=payment").text
    assert name in listing
    edit = as_admin.get(f"/console/admin/wording/edit/{name}").text
    assert "Wording Sample" in edit and "Variant 1" in edit
    # An outbound text: the opt-out notice is required (Reg F §1006.6(e)).
    new = yaml.safe_dump(
        {
            name: [
                {
                    "fr": "Payez ici : {{ url }} Répondez STOP pour vous désinscrire.",
                    "en": "Pay here: {{ url }} Reply STOP to opt out.",
                }
            ]
        }
    )
    preview = _wording_post(as_admin, name, new, action="preview")
    assert preview.status_code == 200 and "Payez ici : " in preview.text
    assert not active_templates(db)[name][0]["fr"].startswith("Payez ici : {{ url }}")
    saved = _wording_post(as_admin, name, new)
    assert saved.status_code == 303
    assert active_templates(db)[name][0]["fr"].startswith("Payez ici : {{ url }}")
    assert "edited" in as_admin.get("/console/admin/wording?changed=1").text


def test_wording_validation_errors(as_admin: TestClient, db: Session) -> None:
    name = "utter_collector_payment_link"
    missing_en = _wording_post(as_admin, name, yaml.safe_dump({name: [{"fr": "Bonjour"}]}))
    assert missing_en.status_code == 422 and "missing en text" in missing_en.text
    bad_syntax = _wording_post(
        as_admin, name, yaml.safe_dump({name: [{"fr": "{{ url ", "en": "ok"}]})
    )
    assert bad_syntax.status_code == 422 and "(fr)" in bad_syntax.text
    wrong_key = _wording_post(
        as_admin, name, yaml.safe_dump({"utter_other": [{"fr": "a", "en": "b"}]})
    )
    assert wrong_key.status_code == 422 and "exactly one key" in wrong_key.text
    assert versioning_count(db) == 0


def versioning_count(db: Session) -> int:
    return len(
        list(db.scalars(select(VersionedDocument).where(VersionedDocument.kind == "wording")))
    )


def test_wording_rollback_and_reset(as_admin: TestClient, db: Session) -> None:
    name = "utter_collector_payment_link"
    bundled = active_templates(db)[name]
    for text in ("Version A {{ url }} STOP", "Version B {{ url }} STOP"):
        _wording_post(as_admin, name, yaml.safe_dump({name: [{"fr": text, "en": text}]}))
    diff = as_admin.get("/console/admin/wording/diff?old=1&new=2").text
    assert "Version A" in diff and "Version B" in diff
    token = csrf_of(as_admin, "/console/admin/wording/versions")
    as_admin.post("/console/admin/wording/rollback", data={"csrf_token": token, "version": "1"})
    assert active_templates(db)[name][0]["fr"] == "Version A {{ url }} STOP"
    reset = _wording_post(as_admin, name, "", action="reset")
    assert reset.status_code == 303
    assert active_templates(db)[name] == bundled
    assert versioning_count(db) == 4


def test_audit_log_filters_and_pages(as_admin: TestClient, db: Session) -> None:
    from relance import audit

    owner = make_debtor(db)
    for i in range(60):
        audit.record(db, actor="bot", action="message.sent", debtor_id=owner.id, n=i)
    audit.record(db, actor="user:boss@example.test", action="policy.saved", version=9)
    db.flush()
    first = as_admin.get("/console/admin/audit?action=message.sent").text
    assert "Page 1 of 2" in first and "policy.saved</span>" not in first
    by_actor = as_admin.get("/console/admin/audit?actor=boss").text
    assert "policy.saved" in by_actor and "message.sent</span>" not in by_actor
    by_debtor = as_admin.get(f"/console/admin/audit?debtor_id={owner.id}&page=2").text
    assert "Page 2 of 2" in by_debtor
    future = as_admin.get("/console/admin/audit?since=2999-01-01").text
    assert "No event matches" in future


def test_untouched_fields_do_not_show_in_the_diff(as_admin: TestClient, db: Session) -> None:
    data = _limits_form(as_admin, **{"band-0-max_installments": "4"})
    as_admin.post("/console/admin/policy/limits", data=data, follow_redirects=False)
    diff = policy_service.diff(db, 0, 1)
    changed = [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-  max_installments: 3", "+  max_installments: 4"]
    token = csrf_of(as_admin, "/console/admin/policy?tab=contact")
    contact = policy_service.active_document(db)["contact"]
    as_admin.post(
        "/console/admin/policy/contact",
        data={
            "csrf_token": token,
            **{
                k: str(contact[k])
                for k in ("max_contacts", "per_days", "min_gap_hours", "sender_rate_per_minute")
            },
            "retry_backoff_minutes": ", ".join(str(v) for v in contact["retry_backoff_minutes"]),
            "max_contacts": "4",
        },
    )
    changed = [
        line
        for line in policy_service.diff(db, 1, 2).splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == ["-  max_contacts: 3", "+  max_contacts: 4"]


def test_unknown_versions_are_a_404_page_naming_the_version(as_admin: TestClient) -> None:
    """The services say NotFound (relance/errors.py), the console route shows its message."""
    token = csrf_of(as_admin, "/console/admin/policy/versions")
    for method, url, data, message in (
        ("get", "/console/admin/policy/diff?old=999", None, "policy version 999 does not exist"),
        ("get", "/console/admin/wording/diff?old=999", None, "wording version 999 does not exist"),
        ("post", "/console/admin/policy/rollback", {"version": "999"}, "policy version 999"),
        ("post", "/console/admin/wording/rollback", {"version": "999"}, "wording version 999"),
        ("get", "/console/admin/wording/edit/greeting", None, "no response named greeting"),
    ):
        if data is not None:
            data = {**data, "csrf_token": token}
        response = as_admin.request(method, url, data=data)
        assert response.status_code == 404, url
        assert message in response.text, url
        assert "text/html" in response.headers["content-type"]
