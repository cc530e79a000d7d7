"""The evaluation task: score a model (optionally with an adapter) on a stored dataset."""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from service import broker
from service.models import Adapter, Dataset, EvalJob, utcnow
from workers import model_ops
from workers.app import app
from workers.context import WorkerContext, get_context
from workers.datasets import local_adapter, local_dataset
from workers.jobs import Heartbeat, claim, finish

logger = logging.getLogger(__name__)


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (None if isinstance(value, float) and not math.isfinite(value) else value)
        for key, value in metrics.items()
    }


def run_eval_job(ctx: WorkerContext, job_id: uuid.UUID, attempt: int) -> None:
    with ctx.session() as session:
        job = session.get(EvalJob, job_id)
        dataset = session.get(Dataset, job.dataset_id)
        adapter = session.get(Adapter, job.adapter_id) if job.adapter_id else None
    log_ids = {"job_id": str(job_id), "tenant_id": str(job.tenant_id), "attempt": attempt}
    logger.info("evaluation started", extra=log_ids)
    settings = ctx.settings
    with Heartbeat(ctx, EvalJob, {job_id: attempt}):
        try:
            metrics = model_ops.run_evaluation(
                job.model,
                str(adapter.id) if adapter is not None else None,
                local_adapter(ctx, adapter) if adapter is not None else None,
                local_dataset(ctx, dataset),
                job.setting,
                job.limit,
                job.steps,
                job.seed,
                settings.edit_batch_size,
                settings.eval_clip_model or None,
                settings.worker_device,
                settings.worker_dtype,
                settings.allowed_models,
            )
        except Exception as error:  # every failure ends the job as failed with its classified code
            code, message = model_ops.classify_error(error)
            logger.exception("evaluation failed", extra={**log_ids, "code": code})
            finish(
                ctx,
                EvalJob,
                job_id,
                attempt,
                "failed",
                error_code=code,
                error_message=message,
                finished_at=utcnow(),
            )
            return
    finish(ctx, EvalJob, job_id, attempt, "succeeded", metrics=_finite(metrics), finished_at=utcnow())
    logger.info("evaluation succeeded", extra=log_ids)


@app.task(name=broker.EVAL_TASK, acks_late=False, ignore_result=True)
def run_eval(job_id: str) -> None:
    ctx = get_context()
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        logger.error("evaluation message with an invalid id dropped", extra={"job_id": job_id})
        return
    attempt = claim(ctx, EvalJob, parsed)
    if attempt is None:
        logger.info("evaluation message ignored: job is not queued", extra={"job_id": job_id})
        return
    run_eval_job(ctx, parsed, attempt)
