"""Fixtures of the SDK tests: the generated client from sdk/python and a running service stack.

The stack matches the service tests' set-up: PostgreSQL, Redis, a moto S3 server and a Celery
worker process, built with helpers from tests/service/conftest.py. The gateway, however, listens
on a free loopback port through uvicorn, so the SDK sends real HTTP requests. The stack has its own
database, Redis key prefix and bucket, so it can run in the same pytest session as the service
tests' stack. It is module-scoped, so its worker stops before the next test module starts.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from tests.service.conftest import (
    PG_ADMIN_URL,
    PHOTOS_DIR,
    REDIS_DB,
    REDIS_HOST,
    REDIS_PORT,
    WorkerProcess,
    free_port,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `sdk` and `tests.service` when pytest is not run from the root
# The committed client, ahead of any installed copy, so the tests exercise the files in the tree.
sys.path.insert(0, str(REPO / "sdk" / "python"))

# A MagicBrush folder: PHOTOS_DIR is its images/ folder (RL4PIX_TEST_PHOTOS overrides it).
REAL_PHOTOS = PHOTOS_DIR.parent


@dataclass
class ServiceStack:
    base_url: str
    api_key: str
    settings: object
    worker: WorkerProcess


def _stack_environment(tag: str, database_url: str, s3_endpoint: str, data_dir: Path) -> dict[str, str]:
    return {
        "RL4PIX_DATA_DIR": str(data_dir),
        "RL4PIX_WORK_DIR": str(data_dir / "work"),
        "RL4PIX_DATABASE_URL": database_url,
        "RL4PIX_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        "RL4PIX_BROKER_KEY_PREFIX": f"rl4pix-sdk-test-{tag}:",
        "RL4PIX_STORAGE_BACKEND": "s3",
        "RL4PIX_S3_ENDPOINT_URL": s3_endpoint,
        "RL4PIX_S3_BUCKET": f"rl4pix-sdk-test-{tag}",
        "RL4PIX_S3_ACCESS_KEY_ID": "testing",
        "RL4PIX_S3_SECRET_ACCESS_KEY": "testing",
        "RL4PIX_ALLOWED_MODELS": "tiny",
        "RL4PIX_DEFAULT_MODEL": "tiny",
        "RL4PIX_DEFAULT_STEPS": "2",
        "RL4PIX_DEFAULT_WAIT_SECONDS": "0",
        "RL4PIX_MAX_WAIT_SECONDS": "120",
        "RL4PIX_EVAL_CLIP_MODEL": "tiny",
        "RL4PIX_WORKER_DEVICE": "cpu",
        "RL4PIX_HEARTBEAT_INTERVAL_SECONDS": "1",
        "RL4PIX_HEARTBEAT_TIMEOUT_SECONDS": "30",
        "RL4PIX_REAPER_INTERVAL_SECONDS": "1",
        "RL4PIX_CANCEL_POLL_SECONDS": "0",
        "RL4PIX_EDIT_BATCH_WINDOW_SECONDS": "0.1",
        "RL4PIX_LOG_FORMAT": "json",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture(scope="module")
def stack_database_url() -> Iterator[str]:
    name = f"rl4pix_sdk_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def stack_s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def stack_environment(stack_database_url, stack_s3_endpoint, tmp_path_factory) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    env = _stack_environment(tag, stack_database_url, stack_s3_endpoint, tmp_path_factory.mktemp("sdk-stack"))
    yield env
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(client.scan_iter(match=f"{env['RL4PIX_BROKER_KEY_PREFIX']}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="module")
def stack_settings(stack_environment):
    from service import migrate
    from service.settings import Settings
    from service.storage import S3Storage

    # Keyword arguments take precedence over RL4PIX_* variables that other tests may have set.
    values = {
        name.removeprefix("RL4PIX_").lower(): value
        for name, value in stack_environment.items()
        if name.startswith("RL4PIX_")
    }
    settings = Settings(**values)
    migrate.upgrade(settings.resolved_database_url)
    S3Storage(settings).ensure_bucket()
    return settings


@pytest.fixture(scope="module")
def gateway_url(stack_settings) -> Iterator[str]:
    """Serve the gateway with uvicorn on a free loopback port in a background thread."""
    import uvicorn

    from service.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(stack_settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="sdk-test-gateway", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 30, 0.1, "the gateway to start")
    if not server.started:
        pytest.fail(f"the gateway on port {port} did not start")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def stack_worker(stack_environment, stack_settings, tmp_path_factory) -> Iterator[WorkerProcess]:
    process = WorkerProcess(stack_environment, tmp_path_factory.mktemp("sdk-worker") / "worker.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def stack(gateway_url, stack_settings, stack_worker) -> ServiceStack:
    from service.auth import create_api_key
    from service.db import session_scope

    with session_scope(stack_settings.resolved_database_url) as session:
        _, key = create_api_key(session, f"sdk-test-{uuid.uuid4().hex[:8]}")
    return ServiceStack(base_url=gateway_url, api_key=key, settings=stack_settings, worker=stack_worker)


@pytest.fixture(scope="module")
def real_photos() -> Path:
    if not (REAL_PHOTOS / "edit_sessions.json").is_file():
        pytest.skip(f"real photos not available at {REAL_PHOTOS}")
    return REAL_PHOTOS
