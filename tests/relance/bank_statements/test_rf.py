"""RF creditor references (ISO 11649): derived from the invoice id, checked by stdnum."""

from __future__ import annotations

import pytest
from stdnum import iso11649

from relance.bank_statements import rf


@pytest.mark.parametrize("invoice_id", [1, 42, 99_999_999, 123_456_789])
def test_every_reference_is_valid_and_names_its_invoice(invoice_id: int) -> None:
    reference = rf.for_invoice(invoice_id)
    assert iso11649.is_valid(reference)
    assert reference.startswith("RF") and reference[4:6] == "RL"
    assert rf.invoice_id(reference) == invoice_id
    assert rf.invoice_id(rf.printable(reference)) == invoice_id  # as typed, in groups of four


def test_reference_is_deterministic_and_grouped() -> None:
    assert rf.for_invoice(42) == rf.for_invoice(42)
    assert rf.printable(rf.for_invoice(42)).split(" ")[0] == rf.for_invoice(42)[:4]
    assert len(rf.for_invoice(42)) == 14


def test_mistyped_or_foreign_references_name_no_invoice() -> None:
    good = rf.for_invoice(42)
    wrong_check = good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]
    assert rf.invoice_id(wrong_check) is None
    assert rf.invoice_id(good[:-1] + "3") is None  # a wrong digit breaks mod 97
    assert rf.invoice_id("RF18539007547034") is None  # valid ISO 11649, someone else's
    with pytest.raises(ValueError):
        rf.for_invoice(0)


def test_found_in_free_text_whatever_the_case_and_spacing() -> None:
    a, b = rf.for_invoice(7), rf.for_invoice(8)
    text = f"Virement {rf.printable(a).lower()} MERCI et {b}/facture"
    assert rf.find_in_text(text) == [7, 8]
    assert rf.find_in_text("RF00 nothing here, RF99ABC") == []
