"""What the runtime gives each response: the contract between the code and the wording.

A template may only print what its callers always pass (`required`); what they pass only
sometimes (`optional`, often `None`) must be guarded (`{% if pay_url %}`). Every template also
gets `RUNTIME` (the renderer adds the creditor's identity from settings; `language` is the one
rendered). The wording editor refuses a variant that names anything else, or that leaves a hole
when rendered with `sample_contexts`: once with only the required values, once with all of them
(one invoice named in the first, two in the second, so both numbers of a sentence are rendered).
`tests/relance/nlg/test_every_template.py` renders every bundled response the same way.

Keep this next to the callers: when an action or a job starts passing a new value to a response,
add it here (a response not listed gets `RUNTIME` only, and a template that needs more fails the
test with a message pointing here). Stage templates named by a dunning policy get `REMINDER`.

`OUTBOUND` lists the responses sent on our own initiative over a text channel (reminders,
follow-ups, links, first contacts), as opposed to replies inside a turn the debtor started; the
opt-out notice rule applies to them (`relance.nlg.validation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any


@dataclass(frozen=True)
class Provided:
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()

    @property
    def names(self) -> frozenset[str]:
        return RUNTIME | self.required | self.optional


def _p(required: str = "", optional: str = "") -> Provided:
    return Provided(frozenset(required.split()), frozenset(optional.split()))


RUNTIME = frozenset({"creditor_name", "creditor_phone", "language"})

# action_send_reminder passes all of these; the dunning dispatcher, when the assistant is down,
# renders locally with the required ones only.
REMINDER = _p(
    "invoice_refs stage",
    "debtor_name amount_minor currency due_date pay_url segment formal_notice_date first_contact"
    " payment_reference indemnity",
)
# relance/followups and the ledger send through relance/ledger/notify.py, which adds debtor_name.
_INSTALLMENT = _p("debtor_name amount_minor currency due_date number total", "pay_url")
# A failed charge also names its reason (`relance.followups.charges.FAILURE_REASONS`).
_CHARGE_FAILED = _p(
    "debtor_name amount_minor currency due_date number total failure_reason", "pay_url"
)
_PROMISE = _p("debtor_name amount_minor currency promise_date", "pay_url")

PROVIDED: dict[str, Provided] = {
    # actions/ (through the NLG endpoint)
    "utter_ask_identity_answer": _p("identity_kind attempts_left"),
    "utter_identity_mismatch": _p("attempts_left"),
    "utter_identity_why": _p("identity_kind", "verified"),
    "utter_balance": _p(
        "balance_minor currency invoice_count oldest_due_date",
        "next_installment_minor next_installment_date form_active later_minor later_count"
        " later_due_date",
    ),
    "utter_debt_details": _p("invoices currency", "next_installment_minor next_installment_date"),
    "utter_invoice_copy_requested": _p("invoice_refs has_email"),
    "utter_fees": _p("segment currency", "fees_minor interest_minor indemnity_minor"),
    "utter_payment_link": _p("pay_url amount_minor currency expires_at", "installment_date"),
    "utter_already_paid_recorded": _p("pause_until", "paid_date"),
    "utter_payment_detail_noted": _p(""),
    "utter_invalid_answer": _p("field", "currency"),
    "utter_dispute_created": _p("dispute_reference", "plan_held held_minor currency"),
    "utter_ask_plan_installments": _p("", "max_installments"),
    "utter_plan_within_limits": _p(
        "installments frequency first_minor installment_minor first_date last_date currency"
    ),
    "utter_plan_counter_offer": _p(
        "installments frequency first_minor installment_minor first_date last_date currency",
        "requested_installments",
    ),
    "utter_plan_in_place": _p(
        "currency", "pending_approval next_installment_minor next_installment_date"
    ),
    "utter_confirmation_declined": _p("", "resume"),
    "utter_reminder_affirmed": _p(),
    "utter_balance_disputed": _p("invoice_refs balance_minor currency"),
    "utter_balance_not_yet_due": _p("invoice_refs amount_minor currency due_date", "instalment"),
    "utter_please_rephrase": _p("", "currency next_installment_minor next_installment_date"),
    "utter_out_of_scope": _p(
        "", "currency next_installment_minor next_installment_date question_follows requested_slot"
    ),
    "utter_plan_created": _p("installments first_minor first_date currency", "pay_url"),
    "utter_ask_promise_date": _p("max_date"),
    "utter_ask_promise_amount": _p("", "balance_minor currency"),
    "utter_promise_too_late": _p("max_date"),
    "utter_promise_amount_too_high": _p("balance_minor currency"),
    "utter_promise_amount_needs_currency": _p("amount_minor currency", "balance_minor"),
    "utter_promise_amount_wrong_currency": _p("amount_minor currency"),
    "utter_promise_recorded": _p("amount_minor currency promise_date"),
    "utter_handoff": _p("", "reason business_hours"),
    "utter_callback_scheduled": _p("", "callback_at"),
    "utter_reminder_discreet": _p("stage", "first_contact"),
    "utter_reminder_pre_due": REMINDER,
    "utter_reminder_friendly": REMINDER,
    "utter_reminder_firm": REMINDER,
    "utter_reminder_final": REMINDER,
    "utter_reminder_formal_notice_announce": REMINDER,
    # relance/followups, relance/ledger (through ledger/notify.py)
    "utter_payment_thanks": _p("debtor_name amount_minor currency remaining_minor credit_minor"),
    "utter_installment_reminder": _INSTALLMENT,
    "utter_installment_card_notice": _INSTALLMENT,
    "utter_installment_charge_failed": _CHARGE_FAILED,
    "utter_installment_debit_notice": _INSTALLMENT,
    "utter_installment_debit_failed": _CHARGE_FAILED,
    "utter_installment_missed": _INSTALLMENT,
    "utter_promise_reminder": _PROMISE,
    "utter_promise_broken": _PROMISE,
    "utter_promise_due": _p("debtor_name amount_minor currency pay_url"),
    "utter_plan_broken": _p("debtor_name currency", "pay_url"),
    # console/casework.py, voice/service.py
    "utter_collector_payment_link": _p("url link amount currency"),
    "utter_collector_portal_link": _p("url days"),
    "utter_link_sms": _p("url"),
    # mail/ (the parts around an e-mail's body)
    "utter_mail_subject": _p("", "stage invoice_refs"),
    "utter_mail_pay_button": _p(),
    "utter_mail_portal": _p("portal_url"),
    "utter_mail_attachments": _p("invoice_refs", "letter_reference"),
    "utter_mail_legal": _p("segment", "indemnity"),
    "utter_mail_footer": _p("", "creditor_address creditor_siren"),
    "utter_mail_unsubscribe": _p("unsubscribe_url"),
    "utter_mail_unsubscribed": _p(),
    "utter_mail_unsubscribe_button": _p(),
}

OUTBOUND: frozenset[str] = frozenset(
    {
        "utter_reminder_discreet",
        "utter_reminder_pre_due",
        "utter_reminder_friendly",
        "utter_reminder_firm",
        "utter_reminder_final",
        "utter_reminder_formal_notice_announce",
        "utter_payment_thanks",
        "utter_installment_reminder",
        "utter_installment_card_notice",
        "utter_installment_charge_failed",
        "utter_installment_debit_notice",
        "utter_installment_debit_failed",
        "utter_installment_missed",
        "utter_promise_reminder",
        "utter_promise_broken",
        "utter_promise_due",
        "utter_plan_broken",
        "utter_collector_payment_link",
        "utter_collector_portal_link",
        "utter_whatsapp_first_contact",
        "utter_voice_sms_followup",
        "utter_link_sms",
    }
)


def provided(name: str, stage_templates: frozenset[str] = frozenset()) -> Provided:
    """What the runtime passes to `name` (a policy stage template gets the reminder's values)."""
    if name in PROVIDED:
        return PROVIDED[name]
    return REMINDER if name in stage_templates else Provided()


def _samples(today: date) -> dict[str, Any]:
    """Realistic values, as the callers pass them (dates as ISO strings, money in minor units)."""
    url = "https://pay.example.test/pay/Zq8sample"
    return {
        "identity_kind": "postcode",
        "attempts_left": 2,
        "balance_minor": 123456,
        "currency": "EUR",
        "invoice_count": 2,
        "oldest_due_date": (today - timedelta(30)).isoformat(),
        "invoices": [
            {
                "number": "F-2026-001",
                "amount_minor": 45000,
                "currency": "EUR",
                "due_date": (today - timedelta(30)).isoformat(),
                "days_late": 30,
            },
            {
                "number": "F-2026-014",
                "amount_minor": 78456,
                "currency": "EUR",
                "due_date": (today - timedelta(10)).isoformat(),
                "days_late": 10,
            },
        ],
        "has_email": True,
        "segment": "b2b",
        "fees_minor": 1500,
        "interest_minor": 2311,
        "indemnity_minor": 8000,
        "indemnity": True,
        "pay_url": url,
        "portal_url": "https://relance.example.test/portal/Zq8sample",
        "url": url,
        "link": url,
        "amount_minor": 45000,
        "amount": 45000,
        "expires_at": (today + timedelta(7)).isoformat(),
        "installment_date": (today + timedelta(3)).isoformat(),
        "next_installment_date": (today + timedelta(3)).isoformat(),
        "next_installment_minor": 16_066,
        "later_minor": 50_000,
        "later_count": 1,
        "later_due_date": (today + timedelta(30)).isoformat(),
        "paid_date": (today - timedelta(2)).isoformat(),
        "pause_until": (today + timedelta(10)).isoformat(),
        "field": "date",
        "dispute_reference": "D-7F3K2",
        "plan_held": "part",
        "held_minor": 40000,
        "max_installments": 6,
        "installments": 3,
        "frequency": "monthly",
        "first_minor": 41152,
        "installment_minor": 41152,
        "first_date": (today + timedelta(3)).isoformat(),
        "last_date": (today + timedelta(63)).isoformat(),
        "requested_installments": 12,
        "max_date": (today + timedelta(30)).isoformat(),
        "promise_date": (today + timedelta(1)).isoformat(),
        "reason": "asked_for_human",
        "business_hours": "9h-18h",
        "callback_at": (today + timedelta(1)).isoformat() + "T09:00:00",
        "stage": "friendly",
        "first_contact": True,
        "invoice_refs": ["F-2026-001", "F-2026-014"],
        "payment_reference": "RF38 RL00 0000 01",
        "debtor_name": "Camille Martin",
        "due_date": (today - timedelta(5)).isoformat(),
        "formal_notice_date": (today + timedelta(8)).isoformat(),
        "remaining_minor": 78456,
        "credit_minor": 0,
        "number": 2,
        "total": 3,
        "failure_reason": "insufficient_funds",
        "unsubscribe_url": "https://relance.example.test/mail/unsubscribe/Zq8sample",
        "letter_reference": "MED-2026-000042",
        "creditor_address": "12 rue de la Paix, 75002 Paris, France",
        "creditor_siren": "000 000 000",
    }


# The required-only context names a single invoice (the usual case), the full one several: a
# sentence agrees in number with its invoices ("la facture F-1 reste impayée", "les factures F-1
# et F-2 restent impayées") and an edit must render in both branches.
_SINGLE = {"invoice_refs": ["F-2026-001"]}


def sample_contexts(
    name: str, stage_templates: frozenset[str] = frozenset(), today: date | None = None
) -> list[dict[str, Any]]:
    """Two contexts a variant of `name` must render in: required values only (the optional
    ones `None`, as callers pass them), then every value. `RUNTIME` values are the renderer's."""
    contract = provided(name, stage_templates)
    values = _samples(today or date.today())
    required = {k: values.get(k, f"sample {k}") for k in contract.required}
    single = {k: v for k, v in _SINGLE.items() if k in contract.required}
    return [
        {**required, **dict.fromkeys(contract.optional), **single},
        {**required, **{k: values.get(k, f"sample {k}") for k in contract.optional}},
    ]
