"""Sending a new job's message, or failing the job when the broker is unreachable."""

from __future__ import annotations

from celery import Celery
from sqlalchemy.orm import Session

from service import broker, jobstate
from service.errors import ApiError
from service.jobstate import JobModel
from service.models import utcnow


def enqueue_or_fail(session: Session, celery: Celery, model: JobModel, task_name: str, job) -> None:
    """Send the job's message; on a broker failure mark the queued job failed and raise 503."""
    try:
        broker.send_job(celery, task_name, job.id, tenant_id=str(job.tenant_id))
    except broker.BrokerUnavailableError as error:
        now = utcnow()
        extra = {"updated_at": now} if hasattr(model, "updated_at") else {}
        jobstate.transition(
            session, model, job.id, "queued", "failed",
            error_code="broker_unavailable", error_message=str(error), finished_at=now, **extra,
        )  # fmt: skip
        session.commit()
        raise ApiError(503, "broker_unavailable", "the job queue is unreachable; retry later") from error
