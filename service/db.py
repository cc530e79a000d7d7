"""Database engines and sessions, one engine per process and URL.

Celery's prefork pool forks workers from a parent that may already hold connections, and a
connection must never be shared across a fork, so the engine cache is keyed by the process id.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_lock = threading.Lock()
_engines: dict[tuple[int, str], Engine] = {}
_factories: dict[tuple[int, str], sessionmaker[Session]] = {}


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the gateway read while a worker writes, and busy_timeout makes a writer wait for
    # the lock instead of failing at once with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def build_engine(url: str) -> Engine:
    """Create an engine for `url` with the pragmas or pool settings its backend needs."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def get_engine(url: str) -> Engine:
    """Return this process's engine for `url`, creating it on first use."""
    key = (os.getpid(), url)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = build_engine(url)
            _engines[key] = engine
            _factories[key] = sessionmaker(engine, expire_on_commit=False)
        return engine


def session_factory(url: str) -> sessionmaker[Session]:
    get_engine(url)
    return _factories[(os.getpid(), url)]


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on an exception."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _forget_parent_engines() -> None:
    # Runs in a forked child: drop the parent's pools without closing their connections, which
    # still belong to the parent. A lock held by another parent thread at fork time stays held
    # in the child, so the child gets a new one.
    global _lock
    _lock = threading.Lock()
    for (pid, url), engine in list(_engines.items()):
        if pid != os.getpid():
            engine.dispose(close=False)
            del _engines[(pid, url)]
            del _factories[(pid, url)]


os.register_at_fork(after_in_child=_forget_parent_engines)


def dispose_engines() -> None:
    """Close every engine of this process (tests and shutdown)."""
    with _lock:
        for (pid, url), engine in list(_engines.items()):
            if pid == os.getpid():
                engine.dispose()
                del _engines[(pid, url)]
                del _factories[(pid, url)]
