"""Conversion of database rows to API response bodies."""

from __future__ import annotations

from service.models import Adapter, Dataset, Edit, EvalJob, JobEvent, TrainJob
from service.schemas import (
    AdapterOut,
    DatasetOut,
    EditOut,
    EditSizes,
    EditUrls,
    EvalJobOut,
    ImageSize,
    JobError,
    JobEventOut,
    Progress,
    TrainJobOut,
)


def _error(code: str | None, message: str | None) -> JobError | None:
    if code is None:
        return None
    return JobError(code=code, message=message or "")


def _size(width: int | None, height: int | None) -> ImageSize | None:
    if width is None or height is None:
        return None
    return ImageSize(width=width, height=height)


def edit_out(edit: Edit) -> EditOut:
    urls = EditUrls(
        image=f"/edits/{edit.id}/image" if edit.output_key else None,
        attention=f"/edits/{edit.id}/attention" if edit.attention_key else None,
    )
    sizes = EditSizes(
        input=ImageSize(width=edit.input_width, height=edit.input_height),
        mask=_size(edit.mask_width, edit.mask_height),
        output=_size(edit.output_width, edit.output_height),
    )
    return EditOut(
        id=str(edit.id),
        status=edit.status,
        model=edit.model,
        adapter_id=str(edit.adapter_id) if edit.adapter_id else None,
        instruction=edit.instruction,
        seed=edit.seed,
        steps=edit.steps,
        guidance_scale=edit.guidance_scale,
        image_guidance_scale=edit.image_guidance_scale,
        return_attention=edit.return_attention,
        sizes=sizes,
        timings=edit.timings or {},
        urls=urls,
        reward=edit.reward,
        batch_size=edit.batch_size,
        error=_error(edit.error_code, edit.error_message),
        created_at=edit.created_at,
        started_at=edit.started_at,
        finished_at=edit.finished_at,
    )


def dataset_out(dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        id=str(dataset.id),
        name=dataset.name,
        format=dataset.format,
        size_bytes=dataset.size_bytes,
        sha256=dataset.sha256,
        session_count=dataset.session_count,
        turn_count=dataset.turn_count,
        target_count=dataset.target_count,
        created_at=dataset.created_at,
    )


def train_job_out(job: TrainJob) -> TrainJobOut:
    total = max(job.total_epochs, 1)
    progress = Progress(epoch=job.epoch, total_epochs=job.total_epochs, fraction=min(job.epoch / total, 1.0))
    return TrainJobOut(
        id=str(job.id),
        status=job.status,
        model=job.model,
        dataset_id=str(job.dataset_id),
        config=job.config,
        progress=progress,
        latest_metrics=job.latest_metrics,
        attempts=job.attempts,
        adapter_id=str(job.adapter_id) if job.adapter_id else None,
        error=_error(job.error_code, job.error_message),
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def job_event_out(event: JobEvent) -> JobEventOut:
    return JobEventOut(
        id=event.id,
        kind=event.kind,
        epoch=event.epoch,
        attempt=event.attempt,
        message=event.message,
        data=event.data,
        created_at=event.created_at,
    )


def adapter_out(adapter: Adapter) -> AdapterOut:
    return AdapterOut(
        id=str(adapter.id),
        model=adapter.model,
        train_job_id=str(adapter.train_job_id) if adapter.train_job_id else None,
        created_at=adapter.created_at,
    )


def eval_job_out(job: EvalJob) -> EvalJobOut:
    return EvalJobOut(
        id=str(job.id),
        status=job.status,
        model=job.model,
        adapter_id=str(job.adapter_id) if job.adapter_id else None,
        dataset_id=str(job.dataset_id),
        setting=job.setting,
        limit=job.limit,
        steps=job.steps,
        seed=job.seed,
        metrics=job.metrics,
        error=_error(job.error_code, job.error_message),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )
