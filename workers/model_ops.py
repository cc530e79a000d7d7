"""The only place where workers call the model layer (rl4pix_core).

torch and rl4pix_core are imported inside these functions, never at module level: the Celery
parent process imports the task modules before it forks its pool, and CUDA must not be
initialised before a fork.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ModelLayerError(Exception):
    """A model-layer failure with the error code the job records."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def classify_error(error: BaseException) -> tuple[str, str]:
    """Map an exception from rl4pix_core to (error code, message) for the job row."""
    from rl4pix_core import errors

    table = [
        (errors.InvalidInputError, "invalid_input"),
        (errors.ModelNotFoundError, "model_not_found"),
        (errors.CheckpointError, "checkpoint_error"),
        (errors.ConfigError, "invalid_config"),
        (errors.RewardError, "reward_error"),
    ]
    for error_class, code in table:
        if isinstance(error, error_class):
            return code, str(error)
    if isinstance(error, ModelLayerError):
        return error.code, str(error)
    return "internal_error", f"{type(error).__name__}: {error}"


@dataclasses.dataclass
class EditInput:
    edit_id: str
    image: bytes
    mask: bytes | None
    instruction: str
    seed: int
    steps: int
    guidance_scale: float
    image_guidance_scale: float
    return_attention: bool


@dataclasses.dataclass
class EditOutput:
    edit_id: str
    image_png: bytes | None = None
    attention_png: bytes | None = None
    reward: dict[str, float] | None = None
    timings: dict[str, float] = dataclasses.field(default_factory=dict)
    size: tuple[int, int] | None = None
    error: tuple[str, str] | None = None


class EditorCache:
    """An LRU cache of InstructEditor objects keyed by (model, adapter id).

    NOTE: each entry keeps its own copy of the base model, so an adapter costs a full model in
    memory; sharing one base per model and switching LoRA adapters would use less.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: collections.OrderedDict[tuple[str, str | None], Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        model: str,
        adapter_id: str | None,
        adapter_path: Callable[[], Path] | None,
        device: str | None,
        dtype: str | None,
    ) -> Any:
        key = (model, adapter_id)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                logger.info("editor cache hit", extra={"model": model, "adapter_id": adapter_id})
                return self._entries[key]
            editor = load_editor(model, adapter_id, adapter_path() if adapter_path else None, device, dtype)
            self._entries[key] = editor
            while len(self._entries) > self.capacity:
                evicted, _ = self._entries.popitem(last=False)
                logger.info("editor evicted", extra={"model": evicted[0], "adapter_id": evicted[1]})
            return editor


def load_editor(
    model: str, adapter_id: str | None, adapter_path: Path | None, device: str | None, dtype: str | None
):
    from rl4pix_core.editing import InstructEditor
    from rl4pix_core.loading import load_components, load_lora

    started = time.perf_counter()
    components = load_components(model, device=device, dtype=dtype)
    if adapter_path is not None:
        load_lora(components, adapter_path, adapter_name=_adapter_name(adapter_id))
    editor = InstructEditor(components)
    logger.info(
        "editor loaded",
        extra={"model": model, "adapter_id": adapter_id, "seconds": round(time.perf_counter() - started, 3)},
    )
    return editor


def _adapter_name(adapter_id: str | None) -> str:
    # PEFT adapter names become module attribute names, so they may not contain '-'.
    return "adapter_" + (adapter_id or "none").replace("-", "")


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _prepare_request(item: EditInput, max_pixels: int):
    from rl4pix_core.editing import EditRequest
    from rl4pix_core.images import load_image, load_mask

    image = load_image(item.image, max_pixels=max_pixels)
    mask = load_mask(item.mask, image.size, max_pixels=max_pixels) if item.mask is not None else None
    return EditRequest(
        image=image,
        instruction=item.instruction,
        seed=item.seed,
        steps=item.steps,
        guidance_scale=item.guidance_scale,
        image_guidance_scale=item.image_guidance_scale,
        mask=mask,
        key=item.edit_id,
    )


def _output_for(item: EditInput, request, result) -> EditOutput:
    from rl4pix_core.attention import attention_overlay

    started = time.perf_counter()
    output = EditOutput(edit_id=item.edit_id, image_png=_png(result.image), size=result.image.size)
    if item.return_attention and result.attention_map is not None:
        output.attention_png = _png(attention_overlay(request.image, result.attention_map))
    if result.reward is not None:
        output.reward = {key: float(value) for key, value in result.reward.as_dict().items()}
    output.timings = {key: float(value) for key, value in result.timings.items()}
    output.timings["png_encode"] = time.perf_counter() - started
    return output


def run_edit_batch(editor: Any, items: list[EditInput], max_pixels: int) -> list[EditOutput]:
    """Edit `items` in one call of the editor; an item whose image cannot be decoded fails alone."""
    from rl4pix_core.errors import InvalidInputError

    outputs = {item.edit_id: EditOutput(edit_id=item.edit_id) for item in items}
    ready: list[tuple[EditInput, Any]] = []
    for item in items:
        try:
            ready.append((item, _prepare_request(item, max_pixels)))
        except InvalidInputError as error:
            logger.info("edit input rejected", extra={"edit_id": item.edit_id, "error": str(error)})
            outputs[item.edit_id].error = ("invalid_input", str(error))
    if ready:
        started = time.perf_counter()
        results = editor.edit([request for _, request in ready])
        batch_seconds = time.perf_counter() - started
        for (item, request), result in zip(ready, results):
            output = _output_for(item, request, result)
            output.timings["batch"] = batch_seconds
            outputs[item.edit_id] = output
    return [outputs[item.edit_id] for item in items]


@dataclasses.dataclass
class TrainOutcome:
    status: str  # "completed" or "cancelled"
    epochs_completed: int
    final_checkpoint: Path | None


def build_train_config(
    overrides: dict[str, Any],
    model: str,
    data_path: Path,
    logdir: Path,
    resume_from: Path | None,
    device: str | None,
):
    """Merge the job's overrides with the values the worker owns and validate them."""
    import copy

    from rl4pix_core.ppo.config import validate_config

    raw = copy.deepcopy(overrides)
    raw["model"] = model
    raw["logdir"] = str(logdir)
    raw.setdefault("data", {})["path"] = str(data_path)
    raw["resume_from"] = str(resume_from) if resume_from else ""
    if device:
        raw["device"] = device
    return validate_config(raw)


def run_training(
    config: Any,
    on_progress: Callable[[int, int, dict[str, Any]], None],
    should_cancel: Callable[[], bool],
) -> TrainOutcome:
    from rl4pix_core.ppo.trainer import TrainerCallbacks, train

    result = train(config, callbacks=TrainerCallbacks(on_progress=on_progress, should_cancel=should_cancel))
    return TrainOutcome(
        status=result.status, epochs_completed=result.epochs_completed, final_checkpoint=result.checkpoint
    )


def list_checkpoint_folders(logdir: Path) -> list[tuple[int, Path]]:
    from rl4pix_core.ppo.checkpoint import checkpoint_epoch, checkpoints_root, list_checkpoints

    return [(checkpoint_epoch(path), path) for path in list_checkpoints(checkpoints_root(logdir))]


def run_evaluation(
    model: str,
    adapter_path: Path | None,
    data_path: Path,
    setting: str,
    limit: int | None,
    steps: int,
    seed: int,
    batch_size: int,
    clip_model: str | None,
    device: str | None,
    dtype: str | None,
) -> dict[str, Any]:
    """Score the model on a MagicBrush dataset; return the mean metrics and their settings."""
    from rl4pix_core.data.magicbrush import load_magicbrush
    from rl4pix_core.evaluation import EvalSettings, evaluate
    from rl4pix_core.metrics import ClipScorer

    editor = load_editor(model, "eval", adapter_path, device, dtype)
    sessions = load_magicbrush(data_path)
    clip_scorer = ClipScorer(clip_model, device=device) if clip_model else None
    settings = EvalSettings(setting=setting, limit=limit, steps=steps, seed=seed, batch_size=batch_size)
    result = evaluate(editor, sessions, settings, clip_scorer=clip_scorer).as_dict()
    # Per-pair values can run to thousands of rows; the job keeps the means.
    result.pop("per_item", None)
    return result
