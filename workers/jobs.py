"""Claims, heartbeats and final transitions shared by the edit, training and evaluation tasks.

A worker owns a job for one attempt: `claim` moves it from queued to running and increments
`attempts`. Every later write is conditioned on that attempt number, so after the reaper has
re-queued a job, a worker that was only slow (not dead) can no longer change it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Collection
from typing import Any

from sqlalchemy import select, update

from service import jobstate
from service.jobstate import JobModel
from service.models import utcnow
from workers.context import WorkerContext, worker_identity

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = ("running", "cancelling")


def claim(ctx: WorkerContext, model: JobModel, job_id: uuid.UUID) -> int | None:
    """Move a queued job to running for this worker; return the attempt number, or None if not queued."""
    now = utcnow()
    with ctx.session() as session:
        started_at = session.scalar(select(model.started_at).where(model.id == job_id))
        claimed = jobstate.transition(
            session,
            model,
            job_id,
            "queued",
            "running",
            attempts=model.attempts + 1,
            heartbeat_at=now,
            worker=worker_identity(),
            started_at=started_at or now,
            **({"updated_at": now} if hasattr(model, "updated_at") else {}),
        )
        if not claimed:
            return None
        return session.scalar(select(model.attempts).where(model.id == job_id))


def finish(
    ctx: WorkerContext,
    model: JobModel,
    job_id: uuid.UUID,
    attempt: int,
    new_status: str,
    expected: Collection[str] = ACTIVE_STATUSES,
    **values: Any,
) -> bool:
    """Apply a transition of this worker's attempt; False when the job was re-queued or cancelled meanwhile."""
    extra = {"updated_at": utcnow()} if hasattr(model, "updated_at") else {}
    with ctx.session() as session:
        return jobstate.transition(
            session,
            model,
            job_id,
            expected,
            new_status,
            extra_conditions=[model.attempts == attempt],
            **values,
            **extra,
        )


class Heartbeat:
    """A daemon thread that stamps `heartbeat_at` on the jobs of this attempt every interval."""

    def __init__(self, ctx: WorkerContext, model: JobModel, attempts: dict[uuid.UUID, int]):
        self.ctx = ctx
        self.model = model
        self.attempts = attempts
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def beat(self) -> None:
        now = utcnow()
        with self.ctx.session() as session:
            for job_id, attempt in self.attempts.items():
                session.execute(
                    update(self.model)
                    .where(
                        self.model.id == job_id,
                        self.model.attempts == attempt,
                        self.model.status.in_(ACTIVE_STATUSES),
                    )
                    .values(heartbeat_at=now)
                    .execution_options(synchronize_session=False)
                )

    def _run(self) -> None:
        interval = self.ctx.settings.heartbeat_interval_seconds
        while not self._stop.wait(interval):
            try:
                self.beat()
            except Exception as error:  # a lost database connection must not kill the job thread
                logger.warning(
                    "heartbeat failed; retrying next interval",
                    extra={"job_ids": [str(job_id) for job_id in self.attempts], "error": str(error)},
                )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
