"""Training-job resources: create (idempotent), read, list, cancel, events and checkpoints."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service import broker, jobstate
from service.deps import CeleryDep, SessionDep, SettingsDep, StorageDep, TenantDep
from service.enqueue import enqueue_or_fail
from service.errors import ApiError, ErrorBody
from service.lookups import get_dataset_for, get_owned, resolve_model
from service.metrics import JOBS_CREATED
from service.models import Artifact, JobEvent, JobStatus, Tenant, TrainJob, utcnow
from service.pagination import CursorQuery, LimitQuery, newest_first_page
from service.schemas import (
    CheckpointList,
    CheckpointOut,
    JobEventPage,
    TrainJobCreate,
    TrainJobOut,
    TrainJobPage,
)
from service.train_config import validate_overrides
from service.views import job_event_out, train_job_out

logger = logging.getLogger(__name__)
router = APIRouter(tags=["train-jobs"])

ERROR_RESPONSES = {
    401: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}
StatusFilter = Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed"]


def _request_hash(model: str, dataset_id: str, config: dict) -> str:
    canonical = json.dumps({"model": model, "dataset_id": dataset_id, "config": config}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _find_by_idempotency_key(session: Session, tenant: Tenant, key: str) -> TrainJob | None:
    return session.scalar(
        select(TrainJob).where(TrainJob.tenant_id == tenant.id, TrainJob.idempotency_key == key)
    )


def _replay(job: TrainJob, request_hash: str) -> TrainJob:
    if job.request_hash != request_hash:
        raise ApiError(
            409,
            "idempotency_key_reused",
            "Idempotency-Key was already used for a different request body; use a new key",
            "Idempotency-Key",
        )
    return job


def _insert_job(
    session: Session, job: TrainJob, tenant: Tenant, idempotency_key: str | None, request_hash: str
):
    """Insert `job`; return (job, created). A concurrent insert with the same key returns that job."""
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = _find_by_idempotency_key(session, tenant, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _replay(existing, request_hash), False
    return job, True


@router.post(
    "/train-jobs",
    operation_id="create_train_job",
    response_model=TrainJobOut,
    status_code=201,
    responses=ERROR_RESPONSES,
    summary="Start a PPO training job on an uploaded dataset",
)
def create_train_job(
    body: TrainJobCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, description="a retried POST with the same key returns the same job"),
    ] = None,
) -> TrainJobOut:
    model = resolve_model(settings, body.model)
    dataset = get_dataset_for(session, tenant, body.dataset_id)
    config, total_epochs = validate_overrides(model, body.config)
    request_hash = _request_hash(model, str(dataset.id), config)
    if idempotency_key:
        existing = _find_by_idempotency_key(session, tenant, idempotency_key)
        if existing is not None:
            response.headers["Idempotent-Replayed"] = "true"
            return train_job_out(_replay(existing, request_hash))

    now = utcnow()
    job = TrainJob(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        dataset_id=dataset.id,
        status=JobStatus.queued.value,
        model=model,
        config=config,
        idempotency_key=idempotency_key or None,
        request_hash=request_hash,
        total_epochs=total_epochs,
        created_at=now,
        updated_at=now,
    )
    job, created = _insert_job(session, job, tenant, idempotency_key, request_hash)
    if not created:
        response.headers["Idempotent-Replayed"] = "true"
        return train_job_out(job)
    JOBS_CREATED.labels("train").inc()
    logger.info(
        "train job queued", extra={"job_id": str(job.id), "tenant_id": str(tenant.id), "model": model}
    )
    enqueue_or_fail(session, celery, TrainJob, broker.TRAIN_TASK, job)
    response.headers["Location"] = f"/train-jobs/{job.id}"
    return train_job_out(job)


@router.get(
    "/train-jobs/{job_id}",
    operation_id="get_train_job",
    response_model=TrainJobOut,
    responses=ERROR_RESPONSES,
)
def get_train_job(job_id: str, session: SessionDep, tenant: TenantDep) -> TrainJobOut:
    return train_job_out(get_owned(session, TrainJob, job_id, tenant, "train job"))


@router.get(
    "/train-jobs", operation_id="list_train_jobs", response_model=TrainJobPage, responses=ERROR_RESPONSES
)
def list_train_jobs(
    session: SessionDep,
    tenant: TenantDep,
    status: Annotated[StatusFilter | None, Query(description="only jobs in this state")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> TrainJobPage:
    """List the tenant's training jobs, newest first."""
    statement = select(TrainJob).where(TrainJob.tenant_id == tenant.id)
    if status is not None:
        statement = statement.where(TrainJob.status == status)
    page, next_cursor = newest_first_page(session, statement, TrainJob, limit, cursor)
    return TrainJobPage(items=[train_job_out(row) for row in page], next_cursor=next_cursor)


@router.post(
    "/train-jobs/{job_id}/cancel",
    operation_id="cancel_train_job",
    response_model=TrainJobOut,
    responses=ERROR_RESPONSES,
)
def cancel_train_job(job_id: str, session: SessionDep, tenant: TenantDep) -> TrainJobOut:
    """Cancel a job: a queued job is cancelled at once, a running one stops after its current PPO step."""
    job = get_owned(session, TrainJob, job_id, tenant, "train job")
    now = utcnow()
    changed = jobstate.transition(
        session,
        TrainJob,
        job.id,
        JobStatus.queued.value,
        JobStatus.cancelled.value,
        finished_at=now,
        updated_at=now,
    ) or jobstate.transition(
        session, TrainJob, job.id, JobStatus.running.value, JobStatus.cancelling.value, updated_at=now
    )
    if changed:
        session.add(JobEvent(job_id=job.id, kind="state", message="cancel requested", created_at=now))
    session.commit()
    session.expire_all()
    job = session.get(TrainJob, job.id)
    if job.status in (JobStatus.succeeded.value, JobStatus.failed.value):
        raise ApiError(409, "not_cancellable", f"train job {job.id} already {job.status}")
    logger.info("train job cancel requested", extra={"job_id": str(job.id), "tenant_id": str(tenant.id)})
    return train_job_out(job)


@router.get(
    "/train-jobs/{job_id}/events",
    operation_id="list_train_job_events",
    response_model=JobEventPage,
    responses=ERROR_RESPONSES,
)
def list_train_job_events(
    job_id: str,
    session: SessionDep,
    tenant: TenantDep,
    cursor: Annotated[
        int | None, Query(ge=0, le=2**62, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JobEventPage:
    """List the job's per-epoch metrics, state changes and log events, oldest first."""
    job = get_owned(session, TrainJob, job_id, tenant, "train job")
    statement = select(JobEvent).where(JobEvent.job_id == job.id)
    if cursor is not None:
        statement = statement.where(JobEvent.id > cursor)
    rows = session.scalars(statement.order_by(JobEvent.id).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = str(page[-1].id) if len(rows) > limit else None
    return JobEventPage(items=[job_event_out(row) for row in page], next_cursor=next_cursor)


@router.get(
    "/train-jobs/{job_id}/checkpoints",
    operation_id="list_train_job_checkpoints",
    response_model=CheckpointList,
    responses=ERROR_RESPONSES,
)
def list_train_job_checkpoints(
    job_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> CheckpointList:
    """List stored checkpoints with presigned download links and the time each link expires."""
    job = get_owned(session, TrainJob, job_id, tenant, "train job")
    rows = session.scalars(
        select(Artifact).where(Artifact.job_id == job.id).order_by(Artifact.epoch, Artifact.kind)
    ).all()
    items = []
    for artifact in rows:
        link = storage.presign(artifact.storage_key, settings.presign_expiry_seconds, str(request.base_url))
        items.append(
            CheckpointOut(
                id=str(artifact.id),
                kind=artifact.kind,
                epoch=artifact.epoch,
                size_bytes=artifact.size_bytes,
                sha256=artifact.sha256,
                url=link.url,
                url_expires_at=link.expires_at,
                created_at=artifact.created_at,
            )
        )
    return CheckpointList(items=items)
