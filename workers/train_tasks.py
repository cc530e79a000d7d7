"""The training task: run PPO for a job, stream progress and checkpoints, publish the final adapter.

While the trainer runs, a heartbeat thread stamps the job every `heartbeat_interval_seconds`. The
reaper re-queues a job whose stamp is older than `heartbeat_timeout_seconds`, and the next attempt
resumes from the last checkpoint that reached object storage. Cancellation is cooperative: the
trainer polls `should_cancel` between PPO steps and saves a checkpoint before it returns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service import broker
from service.models import Adapter, Artifact, Dataset, JobEvent, TrainJob, utcnow
from service.storage import object_key
from workers import model_ops
from workers.app import app
from workers.context import WorkerContext, get_context
from workers.datasets import local_dataset
from workers.jobs import ACTIVE_STATUSES, Heartbeat, claim, finish

logger = logging.getLogger(__name__)

LORA_FILE = "pytorch_lora_weights.safetensors"
MANIFEST_FILE = "manifest.json"
_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _json_ready(metrics: dict[str, Any]) -> dict[str, Any]:
    """Keep numbers, strings and booleans; replace NaN and infinity by None (JSON has neither)."""
    clean: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, (bool, int, str)) or value is None:
            clean[key] = value
        elif isinstance(value, float):
            clean[key] = value if math.isfinite(value) else None
        elif hasattr(value, "item"):
            number = float(value.item())
            clean[key] = number if math.isfinite(number) else None
    return clean


class TrainRun:
    """One attempt of one training job on this worker."""

    def __init__(self, ctx: WorkerContext, job_id: uuid.UUID, attempt: int):
        self.ctx = ctx
        self.job_id = job_id
        self.attempt = attempt
        with ctx.session() as session:
            self.job = session.get(TrainJob, job_id)
            self.dataset = session.get(Dataset, self.job.dataset_id)
            self.uploaded = set(
                session.scalars(select(Artifact.epoch).where(Artifact.job_id == job_id)).all()
            )
        self.log_ids = {"job_id": str(job_id), "tenant_id": str(self.job.tenant_id), "attempt": attempt}
        self.job_dir = ctx.work_path("train", str(job_id))
        self.logdir = self.job_dir / "logs"
        self._last_cancel_check = 0.0
        self._cancel = False

    # -- database writes of this attempt -------------------------------------------------------

    def _owned(self) -> list[Any]:
        return [
            TrainJob.id == self.job_id,
            TrainJob.attempts == self.attempt,
            TrainJob.status.in_(ACTIVE_STATUSES),
        ]

    def event(
        self, kind: str, message: str, epoch: int | None = None, data: dict[str, Any] | None = None
    ) -> None:
        with self.ctx.session() as session:
            session.add(
                JobEvent(
                    job_id=self.job_id,
                    kind=kind,
                    epoch=epoch,
                    attempt=self.attempt,
                    message=message,
                    data=data,
                    created_at=utcnow(),
                )
            )

    def _update(self, **values: Any) -> None:
        with self.ctx.session() as session:
            session.execute(
                update(TrainJob)
                .where(*self._owned())
                .values(updated_at=utcnow(), **values)
                .execution_options(synchronize_session=False)
            )

    # -- trainer callbacks --------------------------------------------------------------------

    def on_progress(self, epoch: int, step: int, metrics: dict[str, Any]) -> None:
        if metrics.get("phase") == "epoch":
            clean = _json_ready(metrics)
            self._update(epoch=epoch, latest_metrics=clean)
            self.event("epoch", f"epoch {epoch} finished", epoch=epoch, data=clean)
            logger.info("training epoch finished", extra={**self.log_ids, "epoch": epoch, "step": step})
        self.sync_checkpoints()

    def should_cancel(self) -> bool:
        """Return True once the job is cancelling or this attempt no longer owns it (re-queued)."""
        now = time.monotonic()
        if self._cancel or now - self._last_cancel_check < self.ctx.settings.cancel_poll_seconds:
            return self._cancel
        self._last_cancel_check = now
        with self.ctx.session() as session:
            row = session.execute(
                select(TrainJob.status, TrainJob.attempts).where(TrainJob.id == self.job_id)
            ).one_or_none()
        self._cancel = row is None or row.status != "running" or row.attempts != self.attempt
        if self._cancel:
            logger.info(
                "training stop requested", extra={**self.log_ids, "status": row.status if row else None}
            )
        return self._cancel

    # -- checkpoints ----------------------------------------------------------------------------

    def _checkpoint_prefix(self, epoch: int) -> str:
        return object_key(self.job.tenant_id, "train-jobs", self.job_id, f"checkpoint-{epoch}")

    def _upload_checkpoint(self, epoch: int, folder: Path) -> None:
        prefix = self._checkpoint_prefix(epoch)
        files = sorted(
            path for path in folder.iterdir() if path.is_file() and _SAFE_FILE_NAME.match(path.name)
        )
        manifest = {path.name: _sha256(path) for path in files}
        for path in files:
            self.ctx.storage.put_file(f"{prefix}/{path.name}", path)
        self.ctx.storage.put_bytes(
            f"{prefix}/{MANIFEST_FILE}", json.dumps(manifest).encode(), "application/json"
        )
        lora = folder / LORA_FILE
        with self.ctx.session() as session:
            session.add(
                Artifact(
                    tenant_id=self.job.tenant_id,
                    job_id=self.job_id,
                    kind="checkpoint",
                    epoch=epoch,
                    storage_key=f"{prefix}/{LORA_FILE}",
                    size_bytes=lora.stat().st_size,
                    sha256=manifest[LORA_FILE],
                    created_at=utcnow(),
                )
            )
            try:
                session.flush()
            except IntegrityError:
                session.rollback()  # uploaded by an earlier attempt
        self._update(last_checkpoint_epoch=epoch, last_checkpoint_key=prefix)
        self.event(
            "checkpoint", f"checkpoint of epoch {epoch} stored", epoch=epoch, data={"files": sorted(manifest)}
        )
        logger.info("checkpoint uploaded", extra={**self.log_ids, "epoch": epoch})

    def owns_job(self) -> bool:
        with self.ctx.session() as session:
            return session.scalar(select(TrainJob.id).where(*self._owned())) is not None

    def sync_checkpoints(self) -> None:
        """Upload every local checkpoint folder that storage does not have yet, while this attempt owns the job."""
        pending = [
            (epoch, folder)
            for epoch, folder in model_ops.list_checkpoint_folders(self.logdir)
            if epoch not in self.uploaded and (folder / LORA_FILE).is_file()
        ]
        if not pending or not self.owns_job():
            return
        for epoch, folder in pending:
            self._upload_checkpoint(epoch, folder)
            self.uploaded.add(epoch)

    def fetch_resume_checkpoint(self) -> Path | None:
        """Download the last stored checkpoint of an earlier attempt, if there is one."""
        if not self.job.last_checkpoint_key or self.job.last_checkpoint_epoch is None:
            return None
        epoch = self.job.last_checkpoint_epoch
        target = self.job_dir / f"resume-{self.attempt}" / f"checkpoint-{epoch}"
        prefix = self.job.last_checkpoint_key
        manifest = json.loads(self.ctx.storage.get_bytes(f"{prefix}/{MANIFEST_FILE}"))
        for name, sha256 in manifest.items():
            if not _SAFE_FILE_NAME.match(name):
                raise model_ops.ModelLayerError(
                    "checkpoint_error", f"unsafe file name {name!r} in checkpoint manifest"
                )
            self.ctx.storage.download_file(f"{prefix}/{name}", target / name)
            if _sha256(target / name) != sha256:
                raise model_ops.ModelLayerError(
                    "checkpoint_error", f"checkpoint file {name} does not match its checksum"
                )
        self.uploaded.add(epoch)
        return target

    # -- outcome --------------------------------------------------------------------------------

    def publish_adapter(self, folder: Path, epoch: int) -> uuid.UUID:
        adapter_id = uuid.uuid4()
        key = object_key(self.job.tenant_id, "adapters", adapter_id, LORA_FILE)
        lora = folder / LORA_FILE
        self.ctx.storage.put_file(key, lora)
        with self.ctx.session() as session:
            session.add(
                Adapter(
                    id=adapter_id,
                    tenant_id=self.job.tenant_id,
                    train_job_id=self.job_id,
                    model=self.job.model,
                    storage_key=key,
                    created_at=utcnow(),
                )
            )
            session.flush()
            session.add(
                Artifact(
                    tenant_id=self.job.tenant_id,
                    job_id=self.job_id,
                    kind="final",
                    epoch=epoch,
                    storage_key=key,
                    size_bytes=lora.stat().st_size,
                    sha256=_sha256(lora),
                    created_at=utcnow(),
                )
            )
        return adapter_id

    def _final_folder(self, outcome: model_ops.TrainOutcome) -> tuple[Path, int]:
        folders = model_ops.list_checkpoint_folders(self.logdir)
        if outcome.final_checkpoint is not None:
            folder = Path(outcome.final_checkpoint)
            epoch = next((number for number, path in folders if path == folder), outcome.epochs_completed)
            return folder, epoch
        if not folders:
            raise model_ops.ModelLayerError("checkpoint_error", "training ended without writing a checkpoint")
        return folders[-1][1], folders[-1][0]

    def complete(self, outcome: model_ops.TrainOutcome) -> None:
        self.sync_checkpoints()
        if outcome.status == "cancelled":
            if finish(
                self.ctx,
                TrainJob,
                self.job_id,
                self.attempt,
                "cancelled",
                expected=("cancelling",),
                finished_at=utcnow(),
            ):
                self.event("state", "cancelled", epoch=outcome.epochs_completed)
                logger.info("training cancelled", extra=self.log_ids)
            else:
                logger.info("training stopped: this attempt no longer owns the job", extra=self.log_ids)
            return
        folder, epoch = self._final_folder(outcome)
        adapter_id = self.publish_adapter(folder, epoch)
        if finish(
            self.ctx,
            TrainJob,
            self.job_id,
            self.attempt,
            "succeeded",
            adapter_id=adapter_id,
            epoch=outcome.epochs_completed,
            finished_at=utcnow(),
        ):
            self.event(
                "state", "succeeded", epoch=outcome.epochs_completed, data={"adapter_id": str(adapter_id)}
            )
            logger.info("training succeeded", extra={**self.log_ids, "adapter_id": str(adapter_id)})

    def fail(self, error: BaseException) -> None:
        code, message = model_ops.classify_error(error)
        if code == "model_not_found":
            # The trainer's own message suggests presets and local paths that the service rejects.
            message = model_ops.model_load_message(self.job.model, self.ctx.settings.allowed_models)
        logger.exception("training failed", extra={**self.log_ids, "code": code})
        if finish(
            self.ctx,
            TrainJob,
            self.job_id,
            self.attempt,
            "failed",
            error_code=code,
            error_message=message,
            finished_at=utcnow(),
        ):
            self.event("error", message, data={"code": code})

    def run(self) -> None:
        self.event("state", f"attempt {self.attempt} started")
        logger.info("training started", extra=self.log_ids)
        with Heartbeat(self.ctx, TrainJob, {self.job_id: self.attempt}):
            try:
                data_path = local_dataset(self.ctx, self.dataset)
                resume_from = self.fetch_resume_checkpoint()
                if resume_from is not None:
                    self.event("state", f"resuming from checkpoint {resume_from.name}")
                config = model_ops.build_train_config(
                    self.job.config,
                    self.job.model,
                    data_path,
                    self.logdir,
                    resume_from,
                    self.ctx.settings.worker_device,
                )
                outcome = model_ops.run_training(config, self.on_progress, self.should_cancel)
                self.complete(outcome)
            except Exception as error:  # every failure ends the job as failed with its classified code
                self.fail(error)


def _note_ignored_message(ctx: WorkerContext, job_id: uuid.UUID) -> None:
    with ctx.session() as session:
        job = session.get(TrainJob, job_id)
        if job is None:
            logger.warning("training message for an unknown job dropped", extra={"job_id": str(job_id)})
            return
        session.add(
            JobEvent(
                job_id=job_id,
                kind="log",
                attempt=job.attempts,
                created_at=utcnow(),
                message=f"duplicate message ignored: job is {job.status}",
            )
        )
    logger.info(
        "training message ignored: job is not queued", extra={"job_id": str(job_id), "status": job.status}
    )


@app.task(name=broker.TRAIN_TASK, acks_late=False, ignore_result=True)
def run_train(job_id: str) -> None:
    ctx = get_context()
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        logger.error("training message with an invalid id dropped", extra={"job_id": job_id})
        return
    attempt = claim(ctx, TrainJob, parsed)
    if attempt is None:
        _note_ignored_message(ctx, parsed)
        return
    TrainRun(ctx, parsed, attempt).run()
