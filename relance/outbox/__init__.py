"""Outbound events: an outbox written with each domain change, delivered as signed webhooks."""
