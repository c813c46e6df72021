"""Create a PostgreSQL database if it is missing (test and e2e databases, first deployment).

Usage: python -m relance.db.provision postgresql://user@host/dbname
"""

from __future__ import annotations

import sys

from sqlalchemy.engine import make_url


def ensure_postgres_database(url: str) -> None:
    import psycopg

    parsed = make_url(url)
    admin = parsed.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.database,)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.database}"')


if __name__ == "__main__":
    ensure_postgres_database(sys.argv[1])
