"""Alembic migrations of the service database (PostgreSQL and SQLite)."""
