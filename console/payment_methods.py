"""What a collector reads on a debtor's page about automatic collection: the provider's failure
codes of installment charges in words, so the reason a plan's debit failed needs no lookup.

The codes are Stripe's (`last_payment_error.code` / `decline_code`, SEPA Direct Debit and cards),
which the sandbox provider also uses, plus the two Relance records itself when it cannot call the
provider (`relance.ledger.ports`, `payment_links.wiring`). A code missing here is shown as it is,
marked as not described, never hidden.
"""

from __future__ import annotations

FAILURE_LABELS = {
    # SEPA Direct Debit returns (Stripe's codes for the banks' R-transactions)
    "insufficient_funds": "Insufficient funds on the account",
    "account_closed": "Bank account closed",
    "bank_account_restricted": "Account blocked or restricted for direct debits",
    "account_frozen": "Account frozen",
    "debit_not_authorized": "The debtor told the bank the debit was not authorised",
    "no_account": "No account found for this IBAN",
    "invalid_account_number": "Invalid account number",
    "incorrect_account_holder_name": "Account holder name does not match",
    "incorrect_account_holder_address": "Account holder address does not match",
    "bank_ownership_changed": "Account moved to another bank",
    "branch_does_not_exist": "Bank branch does not exist",
    "refer_to_customer": "Refused by the bank: the debtor must contact their bank",
    "charge_exceeds_source_limit": "Amount above the account's debit limit",
    "generic_could_not_process": "Refused by the bank, no reason given",
    # cards
    "card_declined": "Card declined",
    "expired_card": "Card expired",
    "authentication_required": "The card issuer asked for the cardholder's authentication",
    "processing_error": "Error at the payment provider while processing",
    # recorded by Relance before or instead of the provider call
    "provider_mismatch": "Saved with another payment provider than the one in use",
    "method_incomplete": "The saved method lacks its provider references",
    "unknown": "The provider gave no reason",
}


def failure_label(code: str | None) -> str:
    """The collector's wording for a charge's failure code ('' for a charge that did not fail)."""
    if not code:
        return ""
    return FAILURE_LABELS.get(code, f"Not described here: see the provider's code {code}")
