"""A tiny Twilio channel built by the "Adding a channel" recipe (docs/architecture.md).

It answers an inbound text with the same text. It exists to prove the recipe: one folder, the
edge's typed form and signature check, claim-first idempotency, `relance.errors` for refusals.
"""
