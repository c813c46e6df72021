"""Alembic environment: migrations are written against `Base.metadata` (all models)."""

from __future__ import annotations

from alembic import context

import relance.db.models  # noqa: F401  (fills Base.metadata)
from relance.db.base import Base
from relance.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.driver_connection
        if sqlite and driver is not None:
            # Batch mode rebuilds a SQLite table (copy, drop, rename): with foreign keys on,
            # dropping a parent table (experiments) deleted its children's rows (arms,
            # exposures) through ON DELETE CASCADE. Off for the migration, on the driver's
            # connection before any transaction (SQLite ignores the pragma inside one), and
            # every reference checked at the end instead.
            driver.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing nowhere: {broken[:5]}")
        if sqlite and driver is not None:
            driver.execute("PRAGMA foreign_keys=ON")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
