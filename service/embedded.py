"""Embedded mode: everything on one machine with no servers besides the gateway.

`rl4pix serve` with no RL4PIX_* variables uses SQLite, the kombu filesystem broker and local
artifact storage under ./.rl4pix, migrates the database, creates a tenant and an API key on
first start (kept in <data_dir>/api-key, readable by the owner only) and starts one worker process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import func, select

from service.auth import create_api_key
from service.db import session_scope
from service.models import ApiKey
from service.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_TENANT = "default"


def key_file(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "api-key"


def ensure_api_key(settings: Settings) -> str | None:
    """Create a tenant and key when the database has no key; return the key kept in the data directory."""
    path = key_file(settings)
    with session_scope(settings.resolved_database_url) as session:
        key_count = session.scalar(select(func.count()).select_from(ApiKey))
        if key_count == 0:
            _, key = create_api_key(session, DEFAULT_TENANT)
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as output:
                output.write(key + "\n")
            logger.info("created the first API key", extra={"tenant": DEFAULT_TENANT, "key_file": str(path)})
            return key
    if path.is_file():
        return path.read_text().strip()
    return None


def prepare_directories(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_work_dir.mkdir(parents=True, exist_ok=True)
    if settings.storage_backend == "local":
        settings.resolved_storage_dir.mkdir(parents=True, exist_ok=True)
