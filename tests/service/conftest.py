"""Fixtures of the service tests: real PostgreSQL, Redis, an S3 server (moto) and a Celery worker.

Per test session this creates a fresh PostgreSQL database, which is dropped at the end. It uses
Redis database 13 with a key prefix unique to the session and deletes only those keys. It starts
moto's S3 server on a free loopback port and, for the tests that need one, a `celery worker`
subprocess. The gateway runs in-process through FastAPI's TestClient.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

# The helpers live in service_testkit.py beside this file. Putting this folder on sys.path makes
# them importable however this conftest is loaded (tests/sdk imports it as tests.service.conftest).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_testkit import (  # PHOTOS_DIR and free_port are re-exported for tests/sdk
    PHOTOS_DIR,  # noqa: F401
    REPO,
    SESSION_TAG,
    free_port,
    synthetic_zip,
    wait_until,
)

# moto's server logs every S3 request at INFO through werkzeug.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

PG_ADMIN_URL = os.environ.get("RL4PIX_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 13


# -- servers ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"rl4pix_test_{SESSION_TAG}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    yield url
    from service.db import dispose_engines

    dispose_engines()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    prefix = f"rl4pix-test-{SESSION_TAG}:"
    yield prefix
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB)
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def service_env(database_url, redis_prefix, s3_endpoint, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The RL4PIX_* variables of the test stack, also set in this process for the session."""
    data_dir = tmp_path_factory.mktemp("rl4pix-data")
    env = {
        "RL4PIX_DATA_DIR": str(data_dir),
        "RL4PIX_WORK_DIR": str(data_dir / "work"),
        "RL4PIX_DATABASE_URL": database_url,
        "RL4PIX_BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
        "RL4PIX_BROKER_KEY_PREFIX": redis_prefix,
        "RL4PIX_STORAGE_BACKEND": "s3",
        "RL4PIX_S3_ENDPOINT_URL": s3_endpoint,
        "RL4PIX_S3_BUCKET": f"rl4pix-test-{SESSION_TAG}",
        "RL4PIX_S3_ACCESS_KEY_ID": "testing",
        "RL4PIX_S3_SECRET_ACCESS_KEY": "testing",
        "RL4PIX_ALLOWED_MODELS": "tiny",
        "RL4PIX_DEFAULT_MODEL": "tiny",
        "RL4PIX_DEFAULT_STEPS": "2",
        "RL4PIX_DEFAULT_WAIT_SECONDS": "0",
        "RL4PIX_MAX_WAIT_SECONDS": "120",
        "RL4PIX_WORKER_DEVICE": "cpu",
        "RL4PIX_HEARTBEAT_INTERVAL_SECONDS": "1",
        "RL4PIX_HEARTBEAT_TIMEOUT_SECONDS": "8",
        "RL4PIX_REAPER_INTERVAL_SECONDS": "1",
        "RL4PIX_CANCEL_POLL_SECONDS": "0",
        "RL4PIX_MAX_ATTEMPTS": "3",
        "RL4PIX_EDIT_BATCH_WINDOW_SECONDS": "0.3",
        "RL4PIX_EVAL_CLIP_MODEL": "tiny",
        "RL4PIX_LOG_FORMAT": "json",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    from service.settings import get_settings

    get_settings.cache_clear()
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def settings(service_env):
    from service import migrate
    from service.settings import Settings
    from service.storage import S3Storage

    settings = Settings()
    migrate.upgrade(settings.resolved_database_url)
    S3Storage(settings).ensure_bucket()
    return settings


@pytest.fixture(scope="session")
def storage(settings):
    from service.storage import get_storage

    return get_storage(settings)


@pytest.fixture(scope="session")
def app(settings):
    from service.app import create_app

    return create_app(settings)


class SendCounter:
    """Wraps the gateway's Celery client to count the messages it sends."""

    def __init__(self, celery):
        self.count = 0
        self._send_task = celery.send_task
        celery.send_task = self

    def __call__(self, *args, **kwargs):
        self.count += 1
        return self._send_task(*args, **kwargs)


@pytest.fixture(scope="session")
def sent_messages(app) -> SendCounter:
    return SendCounter(app.state.celery)


@pytest.fixture(scope="session")
def client(app, sent_messages) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _new_key(settings, tenant: str) -> str:
    from service.auth import create_api_key
    from service.db import session_scope

    with session_scope(settings.resolved_database_url) as session:
        _, key = create_api_key(session, tenant)
    return key


@pytest.fixture(scope="session")
def auth(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {_new_key(settings, f'tenant-a-{SESSION_TAG}')}"}


@pytest.fixture(scope="session")
def other_auth(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {_new_key(settings, f'tenant-b-{SESSION_TAG}')}"}


# -- the worker process -------------------------------------------------------------------------


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--queues=edits,training,eval",
            "--concurrency=2",
            "--pool=prefork",
            "--loglevel=INFO",
            f"--hostname=test-{SESSION_TAG}@%h",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 90) -> None:
        wait_until(
            lambda: " ready." in self.output() or self.process.poll() is not None,
            timeout,
            0.5,
            "worker start",
        )
        if self.process.poll() is not None:
            pytest.fail(f"worker exited with {self.process.returncode}:\n{self.output()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            # The worker runs in its own process group: stop the parent and its pool children.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="session")
def worker(service_env, settings, tmp_path_factory) -> Iterator[WorkerProcess]:
    process = WorkerProcess(service_env, tmp_path_factory.mktemp("worker") / "worker.log")
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


# -- data ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dataset_zip(tmp_path_factory) -> bytes:
    return synthetic_zip(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def dataset_id(client, auth, dataset_zip) -> str:
    response = client.post(
        "/datasets", headers=auth, files={"file": ("dev.zip", dataset_zip, "application/zip")}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]
