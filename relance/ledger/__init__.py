"""The ledger: money received, how it is allocated, what that changes (dunning, promises, plans).

Every payment source (Stripe webhook, sandbox checkout, off-session charge, bank transfer typed by a
collector or imported from CSV) goes through `relance.ledger.service.record_payment`, so the rules
live in one place.
"""
