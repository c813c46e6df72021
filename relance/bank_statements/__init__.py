"""Bank statements in (camt.053, MT940): credits matched to invoices and recorded in the ledger.

`rf` gives every invoice an ISO 11649 creditor reference for the debtor's transfer; `parsers`
reads the statement files; `matching` finds what each credit pays; `service` imports a file
all-or-nothing and resolves the review queue.
"""
