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
    # cards: Stripe's error codes, and the issuer's decline codes under `card_declined`
    "card_declined": "Card declined",
    "generic_decline": "Card declined by its issuer, no reason given",
    "lost_card": "Card reported lost (the debtor is told only that it was declined)",
    "stolen_card": "Card reported stolen (the debtor is told only that it was declined)",
    "fraudulent": "Declined as suspected fraud (the debtor is told only that it was declined)",
    "merchant_blacklist": "Matches an entry of the Stripe account's block list",
    "expired_card": "Card expired",
    "incorrect_cvc": "Card security code (CVC) incorrect",
    "invalid_cvc": "Card security code (CVC) invalid",
    "incorrect_number": "Card number incorrect",
    "invalid_number": "Card number invalid",
    "invalid_expiry_month": "Card expiry month invalid",
    "invalid_expiry_year": "Card expiry year invalid",
    "card_velocity_exceeded": "Card balance, credit or transaction limit exceeded",
    "withdrawal_count_limit_exceeded": "Card balance or credit limit exceeded",
    "do_not_honor": "Declined by the issuer without a reason: the debtor must contact it",
    "call_issuer": "Declined by the issuer: the debtor must contact it",
    "do_not_try_again": "Declined by the issuer, not to be retried: the debtor must contact it",
    "no_action_taken": "Declined by the issuer: the debtor must contact it",
    "pickup_card": "The issuer asks to retain the card (possibly reported lost or stolen)",
    "restricted_card": "Card restricted by its issuer (possibly reported lost or stolen)",
    "transaction_not_allowed": "The issuer does not allow this kind of payment on the card",
    "not_permitted": "Payment not permitted by the issuer",
    "service_not_allowed": "The issuer does not allow this kind of payment on the card",
    "card_not_supported": "The card does not support this kind of payment",
    "currency_not_supported": "The card does not support the plan's currency",
    "issuer_not_available": "The card issuer could not be reached",
    "try_again_later": "Declined for now by the issuer: to be tried again later",
    "reenter_transaction": "The issuer could not process the payment",
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
