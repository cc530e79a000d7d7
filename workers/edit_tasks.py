"""The edit task: claim an edit, batch it with compatible queued edits, run them, store the results.

Every message names one edit. The worker that claims it also claims other queued edits with the
same model, adapter and step count (up to `edit_batch_size`, waiting up to
`edit_batch_window_seconds` for more), so their own messages later find them no longer queued and
do nothing.
"""

from __future__ import annotations

import logging
import time
import uuid

from sqlalchemy import select

from service import broker
from service.models import Adapter, Edit, utcnow
from service.storage import StorageError, object_key
from workers import model_ops
from workers.app import app
from workers.context import WorkerContext, get_context, worker_identity
from workers.datasets import local_adapter
from workers.jobs import Heartbeat, claim, finish

logger = logging.getLogger(__name__)

_editor_cache: model_ops.EditorCache | None = None
PEER_POLL_SECONDS = 0.01


def _cache(ctx: WorkerContext) -> model_ops.EditorCache:
    global _editor_cache
    if _editor_cache is None:
        _editor_cache = model_ops.EditorCache(ctx.settings.pipeline_cache_size, ctx.settings.allowed_models)
    return _editor_cache


def _claim_peers(ctx: WorkerContext, lead: Edit, batch: dict[uuid.UUID, int]) -> None:
    """Claim queued edits that can share the lead's batch until it is full or the window closes."""
    deadline = time.monotonic() + ctx.settings.edit_batch_window_seconds
    while len(batch) < ctx.settings.edit_batch_size:
        adapter_match = (
            Edit.adapter_id.is_(None) if lead.adapter_id is None else Edit.adapter_id == lead.adapter_id
        )
        with ctx.session() as session:
            candidates = session.scalars(
                select(Edit.id)
                .where(
                    Edit.status == "queued", Edit.model == lead.model, Edit.steps == lead.steps, adapter_match
                )
                .order_by(Edit.created_at)
                .limit(ctx.settings.edit_batch_size - len(batch))
            ).all()
        for candidate in candidates:
            attempt = claim(ctx, Edit, candidate)
            if attempt is not None:
                batch[candidate] = attempt
        if len(batch) >= ctx.settings.edit_batch_size or time.monotonic() >= deadline:
            return
        time.sleep(PEER_POLL_SECONDS)


def _load_inputs(ctx: WorkerContext, edits: list[Edit]) -> list[model_ops.EditInput]:
    storage = ctx.storage
    return [
        model_ops.EditInput(
            edit_id=str(edit.id),
            image=storage.get_bytes(edit.input_key),
            mask=storage.get_bytes(edit.mask_key) if edit.mask_key else None,
            instruction=edit.instruction,
            seed=edit.seed,
            steps=edit.steps,
            guidance_scale=edit.guidance_scale,
            image_guidance_scale=edit.image_guidance_scale,
            return_attention=edit.return_attention,
        )
        for edit in edits
    ]


def _upload_images(ctx: WorkerContext, edit: Edit, output: model_ops.EditOutput) -> tuple[str, str | None]:
    output_key = object_key(edit.tenant_id, "edits", edit.id, "output.png")
    ctx.storage.put_bytes(output_key, output.image_png, "image/png")
    attention_key = None
    if output.attention_png is not None:
        attention_key = object_key(edit.tenant_id, "edits", edit.id, "attention.png")
        ctx.storage.put_bytes(attention_key, output.attention_png, "image/png")
    return output_key, attention_key


def _timings(edit: Edit, output: model_ops.EditOutput, now) -> dict[str, float]:
    timings = dict(output.timings)
    if edit.started_at is not None:
        timings["queue"] = (edit.started_at - edit.created_at).total_seconds()
    timings["total"] = (now - edit.created_at).total_seconds()
    return timings


def _store_output(
    ctx: WorkerContext, edit: Edit, attempt: int, output: model_ops.EditOutput, batch_size: int
) -> None:
    log_ids = {"edit_id": str(edit.id), "tenant_id": str(edit.tenant_id)}
    now = utcnow()
    if output.error is not None:
        code, message = output.error
        finish(ctx, Edit, edit.id, attempt, "failed", expected=("running",), error_code=code,
               error_message=message, finished_at=now, batch_size=batch_size)  # fmt: skip
        logger.info("edit failed", extra={**log_ids, "code": code})
        return

    output_key, attention_key = _upload_images(ctx, edit, output)
    finish(
        ctx, Edit, edit.id, attempt, "succeeded", expected=("running",),
        output_key=output_key, attention_key=attention_key,
        output_width=output.size[0], output_height=output.size[1],
        timings=_timings(edit, output, now), reward=output.reward, batch_size=batch_size, finished_at=now,
    )  # fmt: skip
    logger.info("edit succeeded", extra={**log_ids, "batch_size": batch_size})


def _retry_or_fail(
    ctx: WorkerContext, edits: list[Edit], batch: dict[uuid.UUID, int], error: Exception
) -> None:
    """Re-queue the batch after a storage failure, or fail it once the attempts are used up."""
    for edit in edits:
        attempt = batch[edit.id]
        if attempt < ctx.settings.max_attempts and finish(
            ctx, Edit, edit.id, attempt, "queued", expected=("running",)
        ):
            logger.warning(
                "edit re-queued after storage error",
                extra={"edit_id": str(edit.id), "attempt": attempt, "error": str(error)},
            )
            broker.send_job(app, broker.EDIT_TASK, edit.id)
        else:
            finish(
                ctx,
                Edit,
                edit.id,
                attempt,
                "failed",
                expected=("running",),
                error_code="storage_unavailable",
                error_message=str(error),
                finished_at=utcnow(),
            )


def _fail_batch(
    ctx: WorkerContext, edits: list[Edit], batch: dict[uuid.UUID, int], error: BaseException
) -> None:
    code, message = model_ops.classify_error(error)
    logger.exception("edit batch failed", extra={"edit_ids": [str(edit.id) for edit in edits], "code": code})
    for edit in edits:
        finish(
            ctx,
            Edit,
            edit.id,
            batch[edit.id],
            "failed",
            expected=("running",),
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
        )


def run_batch(ctx: WorkerContext, batch: dict[uuid.UUID, int]) -> None:
    with ctx.session() as session:
        edits = session.scalars(select(Edit).where(Edit.id.in_(list(batch))).order_by(Edit.created_at)).all()
        lead = edits[0]
        adapter = session.get(Adapter, lead.adapter_id) if lead.adapter_id else None
    logger.info(
        "edit batch started",
        extra={
            "edit_ids": [str(edit.id) for edit in edits],
            "model": lead.model,
            "adapter_id": str(lead.adapter_id) if lead.adapter_id else None,
        },
    )
    settings = ctx.settings
    with Heartbeat(ctx, Edit, batch):
        try:
            inputs = _load_inputs(ctx, edits)
            adapter_path = (lambda: local_adapter(ctx, adapter)) if adapter is not None else None
            editor, load_seconds = _cache(ctx).get(
                lead.model,
                str(adapter.id) if adapter else None,
                adapter_path,
                settings.worker_device,
                settings.worker_dtype,
            )
            outputs = model_ops.run_edit_batch(editor, inputs, settings.max_image_pixels)
            for output in outputs:
                if output.error is None:
                    output.timings["model_load"] = load_seconds
            for edit, output in zip(edits, outputs):
                _store_output(ctx, edit, batch[edit.id], output, len(edits))
        except StorageError as error:
            _retry_or_fail(ctx, edits, batch, error)
        except Exception as error:  # any model-layer failure fails the batch with its classified code
            _fail_batch(ctx, edits, batch, error)


@app.task(name=broker.EDIT_TASK, acks_late=True, ignore_result=True)
def run_edit(edit_id: str) -> None:
    ctx = get_context()
    try:
        job_id = uuid.UUID(edit_id)
    except ValueError:
        logger.error("edit message with an invalid id dropped", extra={"edit_id": edit_id})
        return
    attempt = claim(ctx, Edit, job_id)
    if attempt is None:
        logger.info("edit message ignored: edit is not queued", extra={"edit_id": edit_id})
        return
    batch = {job_id: attempt}
    with ctx.session() as session:
        lead = session.get(Edit, job_id)
    _claim_peers(ctx, lead, batch)
    logger.info(
        "edit batch claimed",
        extra={"edit_id": edit_id, "batch_size": len(batch), "worker": worker_identity()},
    )
    run_batch(ctx, batch)
