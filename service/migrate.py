"""Programmatic Alembic commands, used by `rl4pix db` and embedded mode."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

logger = logging.getLogger(__name__)


def alembic_config(database_url: str) -> Config:
    # __path__ works whether the package is installed as a regular or a namespace package.
    folder = Path(next(iter(migrations.__path__))).resolve()
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    # ConfigParser treats '%' as interpolation; a URL-encoded password may contain it.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    logger.info("migrating database", extra={"revision": revision})
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    logger.info("downgrading database", extra={"revision": revision})
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> None:
    command.current(alembic_config(database_url), verbose=False)
