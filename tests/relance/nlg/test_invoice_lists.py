"""Several invoices are named as a list of the debtor's language and the sentence agrees with them.

"la facture F2026-1002, F2026-1001 de 500 € arrive à échéance" read as a mistake to the debtor:
every response naming `invoice_refs` says "la facture F-1 …" for one invoice and "les factures
F-1 et F-2 …" for several, in each stage, channel variant and language.
"""

from __future__ import annotations

import pytest

from relance.languages import LANGUAGES
from relance.nlg import validation
from relance.nlg.formatting import and_list
from relance.nlg.renderer import TemplateFailed, render, render_source, runtime_variables
from relance.nlg.templates_store import bundled_templates

TEMPLATES = bundled_templates()


def _render(name: str, language: str, channel: str | None = None, **variables: object) -> str:
    return render(
        TEMPLATES,
        name,
        language=language,
        channel=channel,
        variables={"stage": "friendly", **variables},
    )


def _variant(name: str, index: int, language: str, **variables: object) -> str:
    context = {**runtime_variables(), "language": language, "stage": "friendly", **variables}
    return render_source(
        TEMPLATES[name][index][language], name=name, language=language, context=context
    )


@pytest.mark.parametrize(
    ("items", "language", "expected"),
    [
        (["F-1"], "fr", "F-1"),
        (["F-1", "F-2"], "fr", "F-1 et F-2"),
        (["F-1", "F-2", "F-3"], "fr", "F-1, F-2 et F-3"),
        (["F-1"], "en", "F-1"),
        (["F-1", "F-2"], "en", "F-1 and F-2"),
        (["F-1", "F-2", "F-3"], "en", "F-1, F-2 and F-3"),  # en_GB: no comma before "and"
        ("F-1", "fr", "F-1"),  # one number given as text is one item, not five letters
        ((1001, 1002), "fr", "1001 et 1002"),
        ([], "fr", ""),
        (None, "fr", ""),
    ],
)
def test_and_list_writes_a_list_as_the_language_does(
    items: object, language: str, expected: str
) -> None:
    assert and_list(items, language) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_filter_exists_where_templates_render_and_where_admins_edits_are_validated(
    language: str,
) -> None:
    source = "Rappel : {{ invoice_refs | and_list }}. STOP"
    joined = {"fr": "F-1 et F-2", "en": "F-1 and F-2"}[language]
    rendered = render_source(
        source, name="x", language=language, context={"invoice_refs": ["F-1", "F-2"]}
    )
    assert rendered == f"Rappel : {joined}. STOP"
    edited = {"utter_reminder_friendly": [{lang: source for lang in LANGUAGES}]}
    assert validation.wording_problems(edited) == []


def test_and_list_of_a_missing_or_empty_list_is_a_hole_not_a_sentence() -> None:
    for context in ({}, {"invoice_refs": []}):
        with pytest.raises(TemplateFailed):
            render_source(
                "la facture {{ invoice_refs | and_list }} reste due",
                name="x",
                language="fr",
                context=context,
            )


def test_validation_renders_the_one_invoice_branch_too() -> None:
    """The admin's edit is rendered with one invoice and with two: a singular branch that leaves
    a hole (an optional value printed unguarded) is refused, not found when a debtor gets it."""
    source = (
        "{% if invoice_refs | length > 1 %}Factures {{ invoice_refs | and_list }}."
        "{% else %}Facture {{ invoice_refs | and_list }} pour {{ debtor_name }}.{% endif %}"
        " Répondez STOP."
    )
    edited = {"utter_reminder_friendly": [{lang: source for lang in LANGUAGES}]}
    problems = validation.wording_problems(edited)
    assert len(problems) == len(LANGUAGES), problems
    assert all("fails when rendered with sample data" in p for p in problems), problems


REMINDER = {"amount_minor": 50000, "currency": "EUR", "due_date": "2026-03-05"}

# (response, channel, language, one invoice, several invoices): the phrase around the list.
AGREEMENT = [
    ("utter_reminder_pre_due", "sms", "fr",
     "la facture F-1 de 500,00\xa0€ arrive à échéance le 5 mars 2026",
     "les factures F-1 et F-2, d'un total de 500,00\xa0€, arrivent à échéance, la première le 5 mars 2026"),
    ("utter_reminder_pre_due", "sms", "en",
     "invoice F-1 of €500.00 is due on 5 March 2026",
     "invoices F-1 and F-2, totalling €500.00, are due, the first on 5 March 2026"),
    ("utter_reminder_pre_due", "voice", "fr",
     "la facture F-1 arrive à échéance le 5 mars 2026",
     "les factures F-1 et F-2 arrivent à échéance, la première le 5 mars 2026"),
    ("utter_reminder_pre_due", "voice", "en",
     "invoice F-1 is due on 5 March 2026", "invoices F-1 and F-2 are due, the first on 5 March 2026"),
    ("utter_reminder_friendly", "sms", "fr",
     "la facture F-1 (500,00\xa0€) a dépassé son échéance du 5 mars 2026",
     "les factures F-1 et F-2 (500,00\xa0€ au total) ont dépassé leur échéance, la plus ancienne"
     " depuis le 5 mars 2026"),
    ("utter_reminder_friendly", "sms", "en",
     "invoice F-1 (€500.00) is past its due date of 5 March 2026",
     "invoices F-1 and F-2 (€500.00 in total) are past their due dates, the oldest since"
     " 5 March 2026"),
    ("utter_reminder_friendly", "voice", "fr",
     "La facture F-1 a dépassé son échéance", "Les factures F-1 et F-2 ont dépassé leur échéance"),
    ("utter_reminder_friendly", "voice", "fr", "Pouvez-vous la régler", "Pouvez-vous les régler"),
    ("utter_reminder_friendly", "voice", "en",
     "Invoice F-1 is past its due date", "Invoices F-1 and F-2 are past their due dates"),
    ("utter_reminder_friendly", "voice", "en", "Can you pay it today", "Can you pay them today"),
    ("utter_reminder_firm", "sms", "fr",
     "la facture F-1 (500,00\xa0€, échue le 5 mars 2026) reste impayée. Merci de la régler",
     "les factures F-1 et F-2 (500,00\xa0€ au total, la plus ancienne échue le 5 mars 2026)"
     " restent impayées. Merci de les régler"),
    ("utter_reminder_firm", "sms", "en",
     "invoice F-1 (€500.00, due 5 March 2026) is still unpaid. Please settle it now",
     "invoices F-1 and F-2 (€500.00 in total, the oldest due 5 March 2026) are still unpaid."
     " Please settle them now"),
    ("utter_reminder_firm", "voice", "fr",
     "la facture F-1 reste impayée", "les factures F-1 et F-2 restent impayées"),
    ("utter_reminder_firm", "voice", "en",
     "invoice F-1 is still unpaid", "invoices F-1 and F-2 are still unpaid"),
    ("utter_reminder_final", "sms", "fr",
     "la facture F-1 (500,00\xa0€) reste impayée",
     "les factures F-1 et F-2 (500,00\xa0€ au total) restent impayées"),
    ("utter_reminder_final", "sms", "en",
     "invoice F-1 (€500.00) remains unpaid", "invoices F-1 and F-2 (€500.00 in total) remain unpaid"),
    ("utter_reminder_final", "voice", "fr",
     "relance pour la facture F-1 avant", "relance pour les factures F-1 et F-2 avant"),
    ("utter_reminder_final", "voice", "en",
     "reminder for invoice F-1 before", "reminder for invoices F-1 and F-2 before"),
    ("utter_reminder_formal_notice_announce", "sms", "fr",
     "pour la facture F-1 (500,00\xa0€) vous a été adressée",
     "pour les factures F-1 et F-2 (500,00\xa0€ au total) vous a été adressée"),
    ("utter_reminder_formal_notice_announce", "sms", "en",
     "for invoice F-1 (€500.00) has been sent to you by registered letter. You can still settle it",
     "for invoices F-1 and F-2 (€500.00 in total) has been sent to you by registered letter."
     " You can still settle them"),
    ("utter_reminder_formal_notice_announce", "voice", "fr",
     "pour la facture F-1 vous a été adressée par lettre recommandée. Vous pouvez encore la régler",
     "pour les factures F-1 et F-2 vous a été adressée par lettre recommandée. Vous pouvez encore"
     " les régler"),
    ("utter_reminder_formal_notice_announce", "voice", "en",
     "for invoice F-1 has been sent to you by registered letter. You can still settle it",
     "for invoices F-1 and F-2 has been sent to you by registered letter. You can still settle them"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "channel", "language", "one", "several"), AGREEMENT)
def test_every_reminder_agrees_with_the_number_of_invoices(
    name: str, channel: str, language: str, one: str, several: str
) -> None:
    single = _render(name, language, channel, invoice_refs=["F-1"], **REMINDER)
    double = _render(name, language, channel, invoice_refs=["F-1", "F-2"], **REMINDER)
    assert one in single, single
    assert several in double, double
    assert "F-1, F-2 " not in double and "F-1, F-2." not in double


@pytest.mark.parametrize(
    ("language", "three"),
    [("fr", "les factures F-1, F-2 et F-3 restent impayées"),
     ("en", "invoices F-1, F-2 and F-3 are still unpaid")],
)  # fmt: skip
def test_three_invoices_are_a_list_with_one_conjunction(language: str, three: str) -> None:
    text = _render("utter_reminder_firm", language, "voice", invoice_refs=["F-1", "F-2", "F-3"])
    assert three in text, text


@pytest.mark.parametrize("index", range(len(TEMPLATES["utter_reminder_friendly"])))
def test_both_text_variants_of_a_stage_agree_not_only_the_first(index: int) -> None:
    """The friendly stage has a courteous and a plain SMS variant (experiments send either)."""
    text = _variant("utter_reminder_friendly", index, "fr", invoice_refs=["F-1", "F-2"])
    assert "es factures F-1 et F-2 " in text and "la facture" not in text.lower(), text


@pytest.mark.parametrize(
    ("language", "one", "two", "three"),
    [
        ("fr", "Deuxième relance : facture F-1 – ", "Deuxième relance : factures F-1 et F-2 – ",
         "Deuxième relance : factures F-1, F-2 et F-3 – "),
        ("en", "Second reminder: invoice F-1 – ", "Second reminder: invoices F-1 and F-2 – ",
         "Second reminder: invoices F-1, F-2 and F-3 – "),
    ],
)  # fmt: skip
def test_the_mail_subject_agrees(language: str, one: str, two: str, three: str) -> None:
    for refs, expected in ((["F-1"], one), (["F-1", "F-2"], two), (["F-1", "F-2", "F-3"], three)):
        subject = _render("utter_mail_subject", language, "email", stage="firm", invoice_refs=refs)
        assert subject.startswith(expected), subject
    reply = _render("utter_mail_subject", language, "email", stage=None, invoice_refs=None)
    assert "F-" not in reply


@pytest.mark.parametrize(
    ("language", "one", "two", "two_with_letter"),
    [
        ("fr", "En pièce jointe : une copie de la facture F-1.",
         "En pièce jointe : une copie des factures F-1 et F-2.",
         "En pièce jointe : une copie des factures F-1 et F-2, ainsi que la mise en demeure M-1."),
        ("en", "Attached: a copy of invoice F-1.", "Attached: copies of invoices F-1 and F-2.",
         "Attached: copies of invoices F-1 and F-2, and the formal notice M-1."),
    ],
)  # fmt: skip
def test_the_mail_attachments_note_agrees(
    language: str, one: str, two: str, two_with_letter: str
) -> None:
    def note(refs: list[str], letter: str | None = None) -> str:
        return _render(
            "utter_mail_attachments", language, "email", invoice_refs=refs, letter_reference=letter
        )

    assert note(["F-1"]) == one
    assert note(["F-1", "F-2"]) == two
    assert note(["F-1", "F-2"], "M-1") == two_with_letter
    single_with_letter = {
        "fr": " F-1 et la mise en demeure M-1.",
        "en": " F-1 and the formal notice M-1.",
    }
    assert note(["F-1"], "M-1").endswith(single_with_letter[language])


@pytest.mark.parametrize(
    ("language", "refs", "expected"),
    [
        ("fr", ["F-1"], "une copie de la facture F-1 par e-mail. Vous la recevrez"),
        ("fr", ["F-1", "F-2"], "une copie des factures F-1 et F-2 par e-mail. Vous les recevrez"),
        ("fr", ["F-1", "F-2", "F-3"],
         "une copie des factures F-1, F-2 et F-3 par e-mail. Vous les recevrez"),
        ("fr", ["F-1", "F-2", "F-3", "F-4", "F-5"],
         "une copie de vos 5 factures en cours par e-mail. Vous les recevrez"),
        ("en", ["F-1"], "a copy of invoice F-1 by email. You'll receive it"),
        ("en", ["F-1", "F-2"], "copies of invoices F-1 and F-2 by email. You'll receive them"),
        ("en", ["F-1", "F-2", "F-3"],
         "copies of invoices F-1, F-2 and F-3 by email. You'll receive them"),
        ("en", ["F-1", "F-2", "F-3", "F-4", "F-5"],
         "copies of your 5 open invoices by email. You'll receive them"),
    ],
)  # fmt: skip
def test_the_invoice_copy_reply_names_up_to_three_and_counts_beyond(
    language: str, refs: list[str], expected: str
) -> None:
    text = _render("utter_invoice_copy_requested", language, invoice_refs=refs, has_email=True)
    assert expected in text, text
