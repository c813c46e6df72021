"""Database layer: declarative base, engine/session factories, models (one module per domain)."""
