"""Console authentication: password hashing, signed session cookies, CSRF, login throttling,
role dependencies, and API tokens for /api/v1."""
