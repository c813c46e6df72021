"""Shared FastAPI plumbing: DB session dependency, error handlers, request-size limits."""
