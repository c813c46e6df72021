"""Run Alembic programmatically (no alembic.ini needed): `relance migrate` and the launcher use it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from relance.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url or get_settings().effective_database_url)
    return config


def upgrade_to_head(url: str | None = None) -> None:
    settings = get_settings()
    if (url or settings.effective_database_url).startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "head")
