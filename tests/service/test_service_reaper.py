"""The reaper re-queues, fails or cancels jobs whose heartbeat stopped, and leaves live jobs alone."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from service_testkit import SESSION_TAG

from service.auth import create_api_key
from service.db import session_scope
from service.models import Dataset, JobEvent, TrainJob, utcnow
from workers.context import WorkerContext
from workers.reaper import reap_once


class RecordingBroker:
    """Stands in for the Celery app: records the messages the reaper sends."""

    def __init__(self):
        self.sent: list[tuple[str, list]] = []

    def send_task(self, name, args, **_options):
        self.sent.append((name, args))


@pytest.fixture(scope="module")
def tenant_dataset(settings):
    with session_scope(settings.resolved_database_url) as session:
        tenant, _ = create_api_key(session, f"reaper-{SESSION_TAG}")
        dataset = Dataset(
            tenant_id=tenant.id,
            name="d",
            format="magicbrush-zip",
            storage_key="k",
            size_bytes=1,
            sha256="0" * 64,
            session_count=1,
            turn_count=1,
            created_at=utcnow(),
        )
        session.add(dataset)
        session.flush()
        return tenant.id, dataset.id


def insert_job(settings, tenant_dataset, status: str, attempts: int, silent_seconds: float) -> uuid.UUID:
    tenant_id, dataset_id = tenant_dataset
    now = utcnow()
    with session_scope(settings.resolved_database_url) as session:
        job = TrainJob(
            tenant_id=tenant_id,
            dataset_id=dataset_id,
            status=status,
            model="tiny",
            config={},
            total_epochs=2,
            attempts=attempts,
            heartbeat_at=now - dt.timedelta(seconds=silent_seconds),
            created_at=now,
            updated_at=now,
        )
        session.add(job)
        session.flush()
        return job.id


def reaped(settings, tenant_dataset, status: str, attempts: int, silent_seconds: float):
    job_id = insert_job(settings, tenant_dataset, status, attempts, silent_seconds)
    broker = RecordingBroker()
    reap_once(WorkerContext(settings), broker)
    with session_scope(settings.resolved_database_url) as session:
        job = session.get(TrainJob, job_id)
        messages = [args for _, args in broker.sent if args == [str(job_id)]]
        return job, messages


def test_stale_job_is_requeued(settings, tenant_dataset):
    job, _ = reaped(settings, tenant_dataset, "running", 1, 3600)
    assert job.status == "queued"


def test_requeued_job_is_sent_again(settings, tenant_dataset):
    job, messages = reaped(settings, tenant_dataset, "running", 1, 3600)
    assert messages == [[str(job.id)]]


def test_requeue_is_recorded_as_event(settings, tenant_dataset):
    job, _ = reaped(settings, tenant_dataset, "running", 1, 3600)
    with session_scope(settings.resolved_database_url) as session:
        kinds = [event.message for event in session.query(JobEvent).filter(JobEvent.job_id == job.id)]
    assert any("re-queued" in message for message in kinds)


def test_stale_job_fails_after_last_attempt(settings, tenant_dataset):
    job, messages = reaped(settings, tenant_dataset, "running", settings.max_attempts, 3600)
    assert job.status == "failed"
    assert job.error_code == "worker_lost"
    assert messages == []


def test_stale_cancelling_job_is_cancelled(settings, tenant_dataset):
    job, _ = reaped(settings, tenant_dataset, "cancelling", 1, 3600)
    assert job.status == "cancelled"


def test_live_job_is_left_running(settings, tenant_dataset):
    job, messages = reaped(settings, tenant_dataset, "running", 1, 0)
    assert job.status == "running"
    assert messages == []
