"""Per-process worker state: settings, database sessions, storage and the worker's identity."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from service.db import session_scope
from service.settings import Settings, get_settings
from service.storage import LocalStorage, S3Storage, get_storage


@dataclasses.dataclass
class WorkerContext:
    settings: Settings

    @property
    def storage(self) -> LocalStorage | S3Storage:
        return get_storage(self.settings)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with session_scope(self.settings.resolved_database_url) as session:
            yield session

    def work_path(self, *parts: str) -> Path:
        path = self.settings.resolved_work_dir.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


def worker_identity() -> str:
    """Return `<host>:<pid>`, stored on claimed jobs so an operator can find the process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@functools.lru_cache(maxsize=1)
def get_context() -> WorkerContext:
    return WorkerContext(get_settings())
