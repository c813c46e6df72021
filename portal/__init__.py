"""The debtor self-service portal's web edge: pages, forms, session cookie (core: relance.portal)."""
