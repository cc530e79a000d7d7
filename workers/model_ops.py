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
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class ModelLayerError(Exception):
    """A model-layer failure with the error code the job records."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# A quoted absolute path, which may contain spaces.
_QUOTED_PATH_PATTERN = re.compile(r"""(['"])/[^'"]*\1""")
# An absolute POSIX path that starts a word or follows a quote, bracket, '=' or ':' (so URLs such
# as https://... keep their host), up to the next space, quote, bracket or comma.
_PATH_PATTERN = re.compile(r"(?:(?<=^)|(?<=[\s'\"(\[=]))/[^\s'\"()\[\],;]*")
# Lines that libraries append to their own errors and that mean nothing to an API client.
_LIBRARY_NOISE = ("Please check out the root cause in the stacktrace above.",)


def clean_message(message: str) -> str:
    """Remove server paths and library boilerplate from an error message that a client will read."""
    for noise in _LIBRARY_NOISE:
        message = message.replace(noise + ".", "").replace(noise, "")
    message = _QUOTED_PATH_PATTERN.sub(r"\1<server path>\1", message)
    message = _PATH_PATTERN.sub("<server path>", message)
    return " ".join(message.split())


def classify_error(error: BaseException) -> tuple[str, str]:
    """Map an exception from rl4pix_core to (error code, message) for the job row.

    The message never contains a server filesystem path: each one becomes `<server path>`.
    """
    code, message = _classify(error)
    return code, clean_message(message)


def _classify(error: BaseException) -> tuple[str, str]:
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
    memory. Sharing one base per model and switching LoRA adapters would use less.
    """

    def __init__(self, capacity: int, allowed_models: Sequence[str] = ()):
        self.capacity = capacity
        self.allowed_models = tuple(allowed_models)
        self._entries: collections.OrderedDict[tuple[str, str | None], Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(
        self,
        model: str,
        adapter_id: str | None,
        adapter_path: Callable[[], Path] | None,
        device: str | None,
        dtype: str | None,
    ) -> tuple[Any, float]:
        """Return the editor and the seconds spent loading it, 0.0 on a cache hit."""
        key = (model, adapter_id)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                logger.info("editor cache hit", extra={"model": model, "adapter_id": adapter_id})
                return self._entries[key], 0.0
            started = time.perf_counter()
            editor = load_editor(
                model,
                adapter_id,
                adapter_path() if adapter_path else None,
                device,
                dtype,
                self.allowed_models,
            )
            load_seconds = time.perf_counter() - started
            self._entries[key] = editor
            while len(self._entries) > self.capacity:
                evicted, _ = self._entries.popitem(last=False)
                logger.info("editor evicted", extra={"model": evicted[0], "adapter_id": evicted[1]})
            return editor, load_seconds


def model_load_message(model: str, allowed_models: Sequence[str]) -> str:
    """Describe a base model that the worker failed to load, for the job's error message."""
    allowed = ", ".join(allowed_models) if allowed_models else "the server's RL4PIX_ALLOWED_MODELS"
    return (
        f"the worker could not load model {model!r}: a Hugging Face Hub model needs network access from "
        "the worker or a copy in the worker's hub cache (HF_HOME); ask the operator to provide it, or "
        f"use another allowed model: {allowed}"
    )


def load_editor(
    model: str,
    adapter_id: str | None,
    adapter_path: Path | None,
    device: str | None,
    dtype: str | None,
    allowed_models: Sequence[str] = (),
):
    """Load the base model and optional LoRA adapter, named after `adapter_id`, into an editor.

    Raises ModelLayerError (model_not_found) with a message for API clients when the base model
    cannot be loaded. The library's own error names server paths, so it goes only to the log.
    """
    from rl4pix_core.editing import InstructEditor
    from rl4pix_core.loading import load_components, load_lora

    started = time.perf_counter()
    try:
        components = load_components(model, device=device, dtype=dtype)
    except Exception as error:  # hub, file and format errors all mean this worker cannot use the model
        logger.warning("model load failed", extra={"model": model, "error": str(error)})
        raise ModelLayerError("model_not_found", model_load_message(model, allowed_models)) from error
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


def _adapter_ids(names: Sequence[str], adapter_id: str | None) -> list[str]:
    """Replace the adapter's PEFT name in `names` with its API id."""
    internal = _adapter_name(adapter_id)
    return [adapter_id if name == internal and adapter_id else name for name in names]


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
    adapter_id: str | None,
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
    allowed_models: Sequence[str] = (),
) -> dict[str, Any]:
    """Score the model on a MagicBrush dataset; return the mean metrics and their settings.

    `settings.adapters` in the result lists adapter ids, not the names the adapters were loaded under.
    """
    from rl4pix_core.data.magicbrush import load_magicbrush
    from rl4pix_core.evaluation import EvalSettings, evaluate
    from rl4pix_core.metrics import ClipScorer

    editor = load_editor(model, adapter_id, adapter_path, device, dtype, allowed_models)
    sessions = load_magicbrush(data_path)
    clip_scorer = ClipScorer(clip_model, device=device) if clip_model else None
    settings = EvalSettings(setting=setting, limit=limit, steps=steps, seed=seed, batch_size=batch_size)
    result = evaluate(editor, sessions, settings, clip_scorer=clip_scorer).as_dict()
    # Per-pair values can run to thousands of rows; the job keeps the means.
    result.pop("per_item", None)
    metric_settings = result.get("settings")
    if isinstance(metric_settings, dict) and isinstance(metric_settings.get("adapters"), list):
        metric_settings["adapters"] = _adapter_ids(metric_settings["adapters"], adapter_id)
    return result
