"""The reaper: finds running jobs whose heartbeat stopped and re-queues or fails them.

It runs as a thread in every worker's main process (started when the worker is ready), so no
extra service is needed. Several reapers may run at once: each change is a conditional UPDATE that
also matches the stale heartbeat it read, so only one of them acts on a job.

For a job whose `heartbeat_at` is older than `heartbeat_timeout_seconds`:
- cancelling: it becomes cancelled (its last stored checkpoint stays);
- fewer than `max_attempts` attempts: it goes back to queued and its message is sent again, and
  a training job resumes from its last stored checkpoint;
- otherwise: it fails with code `worker_lost`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from celery import Celery
from sqlalchemy import select

from service import broker, jobstate
from service.jobstate import JobModel
from service.models import Edit, EvalJob, JobEvent, TrainJob, utcnow
from workers.context import WorkerContext

logger = logging.getLogger(__name__)

TASKS: dict[JobModel, str] = {Edit: broker.EDIT_TASK, TrainJob: broker.TRAIN_TASK, EvalJob: broker.EVAL_TASK}


def _record(session, model: JobModel, job_id, attempt: int, message: str) -> None:
    if model is TrainJob:
        session.add(
            JobEvent(job_id=job_id, kind="state", attempt=attempt, message=message, created_at=utcnow())
        )


def _reap_job(
    ctx: WorkerContext,
    celery: Celery,
    model: JobModel,
    job_id,
    status: str,
    attempts: int,
    heartbeat_at: dt.datetime,
) -> str | None:
    settings = ctx.settings
    stale = [model.heartbeat_at == heartbeat_at, model.attempts == attempts]
    silent = f"no heartbeat since {heartbeat_at.isoformat()}"
    extra = {"updated_at": utcnow()} if model is TrainJob else {}
    with ctx.session() as session:
        if status == "cancelling":
            if jobstate.transition(
                session,
                model,
                job_id,
                "cancelling",
                "cancelled",
                extra_conditions=stale,
                finished_at=utcnow(),
                **extra,
            ):
                _record(session, model, job_id, attempts, f"cancelled: {silent}")
                return "cancelled"
            return None
        if attempts < settings.max_attempts:
            if jobstate.transition(
                session, model, job_id, "running", "queued", extra_conditions=stale, **extra
            ):
                _record(session, model, job_id, attempts, f"re-queued after attempt {attempts}: {silent}")
                session.commit()
                try:
                    broker.send_job(celery, TASKS[model], job_id)
                except broker.BrokerUnavailableError:
                    # Put the job back as it was, so that the next pass tries again.
                    jobstate.transition(session, model, job_id, "queued", "running", extra_conditions=stale)
                    return None
                return "requeued"
            return None
        message = f"worker lost: {silent}, after {attempts} attempts (max_attempts {settings.max_attempts})"
        if jobstate.transition(
            session,
            model,
            job_id,
            "running",
            "failed",
            extra_conditions=stale,
            error_code="worker_lost",
            error_message=message,
            finished_at=utcnow(),
            **extra,
        ):
            _record(session, model, job_id, attempts, message)
            return "failed"
    return None


def reap_once(ctx: WorkerContext, celery: Celery) -> dict[str, int]:
    """Check every job table once; return how many jobs were re-queued, failed or cancelled."""
    counts = {"requeued": 0, "failed": 0, "cancelled": 0}
    for model in TASKS:
        cutoff = utcnow() - dt.timedelta(seconds=ctx.settings.heartbeat_timeout_seconds)
        with ctx.session() as session:
            rows = session.execute(
                select(model.id, model.status, model.attempts, model.heartbeat_at).where(
                    model.status.in_(("running", "cancelling")), model.heartbeat_at < cutoff
                )
            ).all()
        for row in rows:
            action = _reap_job(ctx, celery, model, row.id, row.status, row.attempts, row.heartbeat_at)
            if action:
                counts[action] += 1
                logger.warning(
                    "stale job reaped",
                    extra={
                        "job_id": str(row.id),
                        "table": model.__tablename__,
                        "action": action,
                        "attempt": row.attempts,
                    },
                )
    return counts


class ReaperThread(threading.Thread):
    """Calls `reap_once` every `reaper_interval_seconds` until stopped."""

    def __init__(self, ctx: WorkerContext, celery: Celery):
        super().__init__(name="reaper", daemon=True)
        self.ctx = ctx
        self.celery = celery
        self.stopped = threading.Event()

    def run(self) -> None:
        logger.info("reaper started", extra={"interval_seconds": self.ctx.settings.reaper_interval_seconds})
        while not self.stopped.wait(self.ctx.settings.reaper_interval_seconds):
            try:
                reap_once(self.ctx, self.celery)
            except Exception as error:  # keep reaping after a database outage
                logger.error("reaper pass failed", extra={"error": f"{type(error).__name__}: {error}"})
        logger.info("reaper stopped")
