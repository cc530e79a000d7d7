"""Pydantic request and response bodies of the REST API."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ImageSize(BaseModel):
    width: int
    height: int


class EditSizes(BaseModel):
    input: ImageSize
    mask: ImageSize | None = Field(
        None, description="size of the uploaded mask; the worker resizes it to the input's"
    )
    output: ImageSize | None = None


class EditUrls(BaseModel):
    image: str | None = Field(None, description="GET this for the edited PNG once the edit has succeeded")
    attention: str | None = Field(None, description="attention overlay PNG, when return_attention was set")


class JobError(BaseModel):
    code: str
    message: str


class EditOut(BaseModel):
    id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    model: str
    adapter_id: str | None
    instruction: str
    seed: int
    steps: int
    guidance_scale: float
    image_guidance_scale: float
    return_attention: bool
    sizes: EditSizes
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="seconds per phase: queue, model_load (0 when the worker had the model loaded), the "
        "model phases (encode, denoise, decode), batch, png_encode, total",
    )
    urls: EditUrls
    reward: dict[str, float] | None = Field(None, description="reward components, when a mask was sent")
    batch_size: int | None = Field(None, description="number of edits the worker ran in the same batch")
    error: JobError | None = None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EditPage(BaseModel):
    items: list[EditOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class DatasetOut(BaseModel):
    id: str
    name: str
    format: Literal["magicbrush-zip", "parquet"]
    size_bytes: int
    sha256: str
    session_count: int
    turn_count: int
    target_count: int | None = Field(
        None,
        description="turns with a ground-truth output image (<id>-output<k>.png or target_img), which "
        "evaluation needs; null for datasets stored before it was counted",
    )
    created_at: dt.datetime


class DatasetPage(BaseModel):
    items: list[DatasetOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class TrainJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        None, description="base model; default: the server's default model", max_length=300
    )
    dataset_id: str = Field(..., max_length=64)
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="PPO configuration overrides, nested ({'train': {'learning_rate': 1e-4}}) or dotted "
        "({'train.learning_rate': 1e-4, 'num_epochs': 2})",
    )


class Progress(BaseModel):
    epoch: int
    total_epochs: int
    fraction: float


class TrainJobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed"]
    model: str
    dataset_id: str
    config: dict[str, Any]
    progress: Progress
    latest_metrics: dict[str, Any] | None
    attempts: int
    adapter_id: str | None = Field(
        None, description="the final LoRA as an adapter, once the job has succeeded"
    )
    error: JobError | None
    created_at: dt.datetime
    updated_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class TrainJobPage(BaseModel):
    items: list[TrainJobOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class JobEventOut(BaseModel):
    id: int
    kind: str
    epoch: int | None
    attempt: int | None
    message: str
    data: dict[str, Any] | None
    created_at: dt.datetime


class JobEventPage(BaseModel):
    items: list[JobEventOut]
    next_cursor: str | None


class CheckpointOut(BaseModel):
    id: str
    kind: Literal["checkpoint", "final"]
    epoch: int
    size_bytes: int
    sha256: str
    url: str
    url_expires_at: dt.datetime
    created_at: dt.datetime


class CheckpointList(BaseModel):
    items: list[CheckpointOut]


class AdapterOut(BaseModel):
    id: str
    model: str
    train_job_id: str | None
    created_at: dt.datetime


class AdapterList(BaseModel):
    items: list[AdapterOut]


class EvalJobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, max_length=300)
    adapter_id: str | None = Field(None, max_length=64)
    dataset_id: str = Field(..., max_length=64)
    setting: Literal["single-turn", "multi-turn"] = Field(
        "single-turn",
        description="single-turn edits each ground-truth input; multi-turn feeds back each output",
    )
    limit: int | None = Field(None, ge=1, le=100_000, description="most edit turns to score")
    steps: int | None = Field(None, ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2**32 - 1)


class EvalJobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "cancelling", "cancelled", "succeeded", "failed"]
    model: str
    adapter_id: str | None
    dataset_id: str
    setting: str
    limit: int | None
    steps: int
    seed: int
    metrics: dict[str, Any] | None = Field(
        None,
        description="means of l1, l2, ssim, psnr and clip_t, the scored turn count and the metric settings",
    )
    error: JobError | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EvalJobPage(BaseModel):
    items: list[EvalJobOut]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` to get the next page; null on the last page"
    )


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description="'ok' or the reason, for database, broker and storage")
