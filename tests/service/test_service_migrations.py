"""Alembic migrations create exactly the tables of service.models on PostgreSQL and SQLite."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from service import migrate
from service.models import Base

TABLES = {
    "tenants",
    "api_keys",
    "datasets",
    "train_jobs",
    "adapters",
    "edits",
    "job_events",
    "artifacts",
    "eval_jobs",
}


def schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_postgres_schema_matches_models(settings):
    assert schema_differences(settings.resolved_database_url) == []


def test_sqlite_schema_matches_models(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate.upgrade(url)
    assert schema_differences(url) == []


def test_sqlite_upgrade_creates_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate.upgrade(url)
    assert TABLES <= table_names(url)


def test_sqlite_downgrade_drops_tables(tmp_path):
    url = f"sqlite:///{tmp_path / 'service.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    assert table_names(url) & TABLES == set()
