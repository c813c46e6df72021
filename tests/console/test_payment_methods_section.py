"""The debtor's saved cards and SEPA mandates and the installment charge attempts on the
conversation page: what a collector needs to see why a plan's debit failed, behind the login,
with the IBAN's last four only."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from console.payment_methods import failure_label
from tests.factories import (
    make_handed_off_case,
    make_installment_charge,
    make_mandate,
    make_plan,
)

CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REVOKED = datetime(2026, 4, 20, 16, 5, tzinfo=UTC)


def _case(db: Session):  # type: ignore[no-untyped-def]
    debtor, conversation, _ = make_handed_off_case(db)
    plan = make_plan(db, debtor, [10_000, 10_000, 10_000], first_due=date(2026, 3, 10))
    old = make_mandate(
        db,
        debtor,
        plan,
        mandate_reference="SBX-OLD0001",
        last4="2606",
        status="inactive",
        created_at=CREATED,
        revoked_at=REVOKED,
    )
    new = make_mandate(db, debtor, plan, mandate_reference="SBX-NEW0002", last4="3000")
    first, second, third = plan.installments
    make_installment_charge(
        db,
        first,
        old,
        status="failed",
        failure_code="account_closed",
        settled_at=datetime(2026, 3, 13, tzinfo=UTC),
        failed_at=datetime(2026, 3, 16, 10, 0, tzinfo=UTC),
    )
    make_installment_charge(db, first, new, attempt=2, status="succeeded")
    make_installment_charge(
        db, second, new, status="failed", failure_code="insufficient_funds", failed_at=REVOKED
    )
    make_installment_charge(db, third, new, status="processing")
    return debtor, conversation


def test_the_debtor_page_shows_mandates_and_charge_attempts_with_their_reasons(
    as_collector: TestClient, db: Session
) -> None:
    _, conversation = _case(db)

    page = as_collector.get(f"/console/conversations/{conversation.id}")

    assert page.status_code == 200
    section = page.text.split('id="payment-methods"')[1].split("</section>")[0]
    for expected in (
        "SEPA mandate SBX-NEW0002",
        "status-active",
        "IBAN ending 3000",
        "SEPA mandate SBX-OLD0001",
        "status-inactive",
        "IBAN ending 2606",
        "Created 2026-03-02 09:30 UTC",
        "stopped by the bank 2026-04-20 16:05 UTC",
        "No. 1",
        "due 2026-03-10",
        "attempt 2",
        "€100.00",
        "Bank account closed <code>account_closed</code>",
        "Insufficient funds on the account <code>insufficient_funds</code>",
        "status-processing",
        "status-succeeded",
    ):
        assert expected in section, expected
    # newest attempt first: the processing debit of installment 3 leads
    assert section.index("No. 3") < section.index("No. 2") < section.index("No. 1")
    assert "mandate_sandbox_" not in section and "pm_sandbox_" not in section  # provider ids


def test_a_debtor_without_cards_or_mandates_says_so(as_collector: TestClient, db: Session) -> None:
    _, conversation, _ = make_handed_off_case(db)

    html = as_collector.get(f"/console/conversations/{conversation.id}").text

    assert "No card or mandate on file." in html and "No automatic charge yet." in html


def test_the_section_is_behind_the_login(client: TestClient, db: Session) -> None:
    _, conversation = _case(db)

    page = client.get(f"/console/conversations/{conversation.id}", follow_redirects=False)

    assert page.status_code in (302, 303) and "/console/login" in page.headers["location"]
    assert "SBX-NEW0002" not in page.text


def test_failure_codes_read_as_words_and_unknown_ones_stay_visible() -> None:
    assert failure_label("debit_not_authorized") == (
        "The debtor told the bank the debit was not authorised"
    )
    assert failure_label("card_declined") == "Card declined"
    assert (
        failure_label("R99_new_code") == "Not described here: see the provider's code R99_new_code"
    )
    assert failure_label(None) == ""


def test_a_reinstated_debit_shows_its_return_and_the_dispute_that_brought_the_money_back(
    as_collector: TestClient, db: Session
) -> None:
    """A SEPA debit returned by a dispute that then closed `won`: the collector reads one story,
    the return (code and date) and the money back (the dispute id and when), not `failed`."""
    debtor, conversation, _ = make_handed_off_case(db)
    plan = make_plan(db, debtor, [10_000], first_due=date(2026, 3, 10))
    mandate = make_mandate(db, debtor, plan, mandate_reference="SBX-WON0001", last4="3000")
    make_installment_charge(
        db,
        plan.installments[0],
        mandate,
        status="reinstated",
        failure_code="dispute:debit_not_authorized",
        failed_at=datetime(2026, 3, 16, 10, 0, tzinfo=UTC),
        reinstated_ref="du_won_123",
        reinstated_at=datetime(2026, 5, 2, 8, 15, tzinfo=UTC),
    )

    page = as_collector.get(f"/console/conversations/{conversation.id}")

    section = page.text.split('id="payment-methods"')[1].split("</section>")[0]
    assert "status-reinstated" in section and "status-failed" not in section
    assert "<code>dispute:debit_not_authorized</code>" in section
    assert "Money back: dispute <code>du_won_123</code> closed won" in section
    assert "2026-05-02 08:15 UTC" in section


def test_a_charge_whose_money_went_back_says_how_and_the_refunded_payment_says_refunded(
    as_collector: TestClient, db: Session
) -> None:
    """A card charge whose dispute was lost and one the creditor refunded: each row says so,
    with the dispute or refund id, not `succeeded`; a refunded payment reads `refunded`."""
    from relance.ledger.reversal import reverse_payment
    from relance.ledger.service import record_payment

    debtor, conversation, _ = make_handed_off_case(db)
    plan = make_plan(db, debtor, [10_000, 10_000], first_due=date(2026, 3, 10))
    card = make_mandate(db, debtor, plan, kind="card", last4="4242")
    first, second = plan.installments
    when = datetime(2026, 5, 2, 8, 15, tzinfo=UTC)
    make_installment_charge(
        db, first, card, status="disputed_lost", reversed_ref="du_lost_1", reversed_at=when
    )
    make_installment_charge(
        db, second, card, status="refunded", reversed_ref="re_back_2", reversed_at=when
    )
    outcome = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=5000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_console_refunded",
        thank=False,
    )
    reverse_payment(
        db,
        outcome.payment,
        reason="refund:requested_by_customer",
        actor="stripe:webhook",
        amount_minor=2000,
        ref="re_part",
    )

    page = as_collector.get(f"/console/conversations/{conversation.id}")

    section = page.text.split('id="payment-methods"')[1].split("</section>")[0]
    assert "status-disputed_lost" in section and "status-refunded" in section
    assert "status-succeeded" not in section
    assert "Charged back: dispute <code>du_lost_1</code> lost" in section
    assert "Refunded by the creditor: <code>re_back_2</code>" in section
    assert "of it refunded" in page.text and "of it reversed" not in page.text
