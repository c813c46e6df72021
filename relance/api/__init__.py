"""JSON API under /api/v1 (token auth): debtors, invoices, conversations, cases, policies."""
