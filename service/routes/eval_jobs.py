"""Evaluation-job resources: L1, L2, CLIP-T, SSIM and PSNR of a model on a dataset."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from service import broker
from service.deps import CeleryDep, SessionDep, SettingsDep, TenantDep
from service.enqueue import enqueue_or_fail
from service.errors import ApiError, ErrorBody
from service.lookups import get_dataset_for, get_owned, resolve_adapter
from service.metrics import JOBS_CREATED
from service.models import EvalJob, JobStatus, utcnow
from service.pagination import CursorQuery, LimitQuery, newest_first_page
from service.schemas import EvalJobCreate, EvalJobOut, EvalJobPage
from service.views import eval_job_out

logger = logging.getLogger(__name__)
router = APIRouter(tags=["eval-jobs"])

ERROR_RESPONSES = {
    401: {"model": ErrorBody},
    404: {"model": ErrorBody},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
    503: {"model": ErrorBody},
}


@router.post(
    "/eval-jobs",
    operation_id="create_eval_job",
    response_model=EvalJobOut,
    status_code=201,
    responses=ERROR_RESPONSES,
    summary="Score a model, optionally with an adapter, on an uploaded dataset",
)
def create_eval_job(
    body: EvalJobCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    tenant: TenantDep,
) -> EvalJobOut:
    model, adapter = resolve_adapter(session, settings, tenant, body.adapter_id, body.model)
    dataset = get_dataset_for(session, tenant, body.dataset_id)
    if dataset.target_count == 0:
        raise ApiError(
            422,
            "invalid_dataset",
            f"dataset_id: dataset {dataset.id} has no ground-truth output images, and evaluation scores "
            "each edit against one; upload a dataset with images/<id>/<id>-output<k>.png files (or a "
            "target_img column in parquet)",
            "dataset_id",
        )

    steps = body.steps if body.steps is not None else settings.default_steps
    if steps > settings.max_steps:
        raise ApiError(
            422, "invalid_steps", f"steps: {steps} is above the limit of {settings.max_steps}", "steps"
        )

    job = EvalJob(
        id=uuid.uuid4(),
        tenant_id=tenant.id,
        dataset_id=dataset.id,
        adapter_id=adapter.id if adapter else None,
        status=JobStatus.queued.value,
        model=model,
        setting=body.setting,
        limit=body.limit,
        steps=steps,
        seed=body.seed,
        created_at=utcnow(),
    )
    session.add(job)
    session.commit()

    JOBS_CREATED.labels("eval").inc()
    logger.info("eval job queued", extra={"job_id": str(job.id), "tenant_id": str(tenant.id), "model": model})
    enqueue_or_fail(session, celery, EvalJob, broker.EVAL_TASK, job)

    response.headers["Location"] = f"/eval-jobs/{job.id}"
    return eval_job_out(job)


@router.get(
    "/eval-jobs/{job_id}", operation_id="get_eval_job", response_model=EvalJobOut, responses=ERROR_RESPONSES
)
def get_eval_job(job_id: str, session: SessionDep, tenant: TenantDep) -> EvalJobOut:
    return eval_job_out(get_owned(session, EvalJob, job_id, tenant, "eval job"))


@router.get(
    "/eval-jobs", operation_id="list_eval_jobs", response_model=EvalJobPage, responses=ERROR_RESPONSES
)
def list_eval_jobs(
    session: SessionDep,
    tenant: TenantDep,
    status: Annotated[
        Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed"] | None,
        Query(description="only jobs in this state"),
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> EvalJobPage:
    """List the tenant's evaluation jobs, newest first."""
    statement = select(EvalJob).where(EvalJob.tenant_id == tenant.id)
    if status is not None:
        statement = statement.where(EvalJob.status == status)
    page, next_cursor = newest_first_page(session, statement, EvalJob, limit, cursor)
    return EvalJobPage(items=[eval_job_out(row) for row in page], next_cursor=next_cursor)
