"""Training checkpoints: save, rotate, find and resume.

A checkpoint is the folder `<logdir>/checkpoints/checkpoint-<epoch>`, where epoch counts the
completed epochs, with:

* `pytorch_lora_weights.safetensors`: the UNet LoRA in diffusers format, so plain diffusers loads it
  with `StableDiffusionInstructPix2PixPipeline.load_lora_weights(folder)`;
* `optimizer.pt`: the optimizer state (`torch.save`, read back with `weights_only=True`, which
  unpickles only tensors and plain containers);
* `rng_state.pt`: the python, numpy, torch and CUDA generator states (same format). The trainer's
  per-sample generators need no state: they are seeded from the config seed, epoch and process;
* `trainer_state.json`: the epoch, the global step, the stat tracker and trainer extras;
* `config.yaml`: the full training config;
* `metadata.json`: the base model id and the LoRA targets, rank and alpha, checked on resume.

Every checkpoint is written to a hidden temporary folder and renamed into place, so a crash never
leaves a half-written `checkpoint-<epoch>`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel
from diffusers.utils import convert_state_dict_to_diffusers, convert_unet_state_dict_to_peft
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import SafetensorError
from safetensors.torch import load_file

from rl4pix_core.errors import CheckpointError
from rl4pix_core.ppo.config import TrainConfig, dump_config
from rl4pix_core.ppo.lora import ADAPTER_NAME, lora_adapter_metadata
from rl4pix_core.ppo.stat_tracking import PerPromptStatTracker

logger = logging.getLogger(__name__)

LORA_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
FORMAT_VERSION = 1


@dataclass
class ResumeState:
    """Position and extras of a loaded checkpoint, from which the trainer continues."""

    path: Path
    epoch: int  # completed epochs; training continues at this 0-based epoch index
    global_step: int
    extra: dict[str, Any] = field(default_factory=dict)


def checkpoints_root(logdir: str | Path) -> Path:
    return Path(logdir) / "checkpoints"


def checkpoint_epoch(path: Path) -> int | None:
    match = CHECKPOINT_PATTERN.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: str | Path) -> list[Path]:
    """Return the checkpoint folders under `root`, oldest epoch first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.is_dir() and checkpoint_epoch(path) is not None]
    return sorted(found, key=checkpoint_epoch)


def should_save(epoch: int, config: TrainConfig) -> bool:
    """Return whether to save after the 1-based `epoch`: every save_freq epochs and after the last."""
    return epoch % config.save_freq == 0 or epoch == config.num_epochs


# --- saving -------------------------------------------------------------------------------------


def save_checkpoint(
    logdir: str | Path,
    epoch: int,
    unet: UNet2DConditionModel,
    optimizer: torch.optim.Optimizer,
    tracker: PerPromptStatTracker,
    config: TrainConfig,
    global_step: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write `checkpoint-<epoch>` atomically, then delete the oldest beyond num_checkpoint_limit.

    `unet` must be the unwrapped UNet with the trained LoRA adapter. Call on the main process only.
    """
    root = checkpoints_root(logdir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"checkpoint-{epoch}"
    temporary = root / f".checkpoint-{epoch}.tmp-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    logger.info("saving checkpoint %s", final)

    _save_lora(temporary, unet)
    torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
    torch.save(_capture_rng_state(), temporary / "rng_state.pt")
    trainer_state = {
        "epoch": epoch,
        "global_step": global_step,
        "stat_tracker": tracker.state_dict(),
        "extra": extra or {},
    }
    _write_text(temporary / "trainer_state.json", json.dumps(trainer_state))
    _write_text(temporary / "config.yaml", dump_config(config))
    _write_text(temporary / "metadata.json", json.dumps(_metadata(config, epoch), indent=2))

    _replace_folder(temporary, final)
    prune_checkpoints(root, config.num_checkpoint_limit)
    return final


def _save_lora(folder: Path, unet: UNet2DConditionModel) -> None:
    state_dict = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    StableDiffusionInstructPix2PixPipeline.save_lora_weights(
        save_directory=str(folder),
        unet_lora_layers=state_dict,
        weight_name=LORA_WEIGHT_NAME,
        safe_serialization=True,
        unet_lora_adapter_metadata=lora_adapter_metadata(unet),
    )


def _metadata(config: TrainConfig, epoch: int) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "base_model": config.model,
        "epoch": epoch,
        "lora": {
            "rank": config.lora.rank,
            "alpha": config.lora.alpha,
            "target_modules": list(config.lora.target_modules),
        },
    }


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _replace_folder(source: Path, destination: Path) -> None:
    """Rename `source` to `destination`; an older `destination` is moved aside first, then deleted."""
    stale = destination.with_name(f".{destination.name}.old-{os.getpid()}")
    if destination.exists():
        destination.rename(stale)
    source.rename(destination)
    if stale.exists():
        shutil.rmtree(stale)


def prune_checkpoints(root: str | Path, limit: int) -> list[Path]:
    """Delete the oldest checkpoints so that at most `limit` remain; return the deleted folders."""
    checkpoints = list_checkpoints(root)
    deleted = checkpoints[: max(len(checkpoints) - limit, 0)]
    for path in deleted:
        logger.info("deleting old checkpoint %s (limit %d)", path, limit)
        shutil.rmtree(path)
    return deleted


def _capture_rng_state() -> dict[str, Any]:
    bit_generator, key, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "bit_generator": bit_generator,
            "key": torch.from_numpy(key.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


# --- resuming -----------------------------------------------------------------------------------


def find_checkpoint(resume_from: str | Path) -> Path:
    """Resolve `resume_from`: a checkpoint folder, or a logdir (or its checkpoints folder) for the latest one."""
    path = Path(resume_from).expanduser()
    if (path / "metadata.json").is_file():
        return path
    for root in (path, checkpoints_root(path)):
        checkpoints = list_checkpoints(root)
        if checkpoints:
            return checkpoints[-1]
    raise CheckpointError(
        f"no checkpoint found at resume_from {str(path)!r}: pass a checkpoint-<epoch> folder or a logdir "
        "that contains checkpoints/checkpoint-<epoch>, or set resume_from to '' to start a new run"
    )


def check_compatible(path: Path, config: TrainConfig) -> dict[str, Any]:
    """Read `metadata.json` and raise CheckpointError unless it matches the config's model and LoRA."""
    metadata = _read_json(path / "metadata.json")
    expected = _metadata(config, epoch=0)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {metadata.get('format_version')!r}, expected "
            f"{FORMAT_VERSION}: resume it with the rl4pix version that wrote it"
        )
    if metadata.get("base_model") != config.model:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was trained on base model {metadata.get('base_model')!r}, but model is "
            f"{config.model!r}: set model to {metadata.get('base_model')!r} or start a new run"
        )
    saved_lora = metadata.get("lora", {})
    for key in ("rank", "alpha"):
        if saved_lora.get(key) != expected["lora"][key]:
            raise CheckpointError(
                f"checkpoint {str(path)!r} has LoRA {key} {saved_lora.get(key)!r}, but lora.{key} is "
                f"{expected['lora'][key]!r}: set lora.{key} to {saved_lora.get(key)!r} or start a new run"
            )
    if sorted(saved_lora.get("target_modules", [])) != sorted(expected["lora"]["target_modules"]):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has LoRA target modules {saved_lora.get('target_modules')!r}, but "
            f"lora.target_modules is {expected['lora']['target_modules']!r}: set them to match or start a new run"
        )
    return metadata


def load_checkpoint(
    resume_from: str | Path,
    config: TrainConfig,
    unet: UNet2DConditionModel,
    optimizer: torch.optim.Optimizer,
    tracker: PerPromptStatTracker,
) -> ResumeState:
    """Restore the LoRA weights, optimizer, stat tracker and RNG states from a checkpoint.

    Raises CheckpointError when the checkpoint is missing, incomplete or trained for another base
    model or LoRA layout; it never falls back to a fresh start.
    """
    path = find_checkpoint(resume_from)
    check_compatible(path, config)
    logger.info("resuming from checkpoint %s", path)
    load_lora_weights(unet, path / LORA_WEIGHT_NAME)
    optimizer.load_state_dict(_torch_load(path / "optimizer.pt"))
    trainer_state = _read_json(path / "trainer_state.json")
    tracker.load_state_dict(trainer_state["stat_tracker"])
    _restore_rng_state(_torch_load(path / "rng_state.pt"))
    return ResumeState(
        path=path,
        epoch=int(trainer_state["epoch"]),
        global_step=int(trainer_state["global_step"]),
        extra=trainer_state.get("extra", {}),
    )


def load_lora_weights(unet: UNet2DConditionModel, weights_file: Path) -> None:
    """Copy a saved diffusers-format LoRA into the UNet's trainable adapter; every key must match."""
    try:
        state_dict = load_file(str(weights_file))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"cannot read LoRA weights {str(weights_file)!r}: {error}") from error
    state_dict = {key.removeprefix("unet."): value for key, value in state_dict.items()}
    state_dict = convert_unet_state_dict_to_peft(state_dict)
    expected = set(get_peft_model_state_dict(unet, adapter_name=ADAPTER_NAME))
    missing = expected - set(state_dict)
    unexpected = set(state_dict) - expected
    if missing or unexpected:
        raise CheckpointError(
            f"LoRA weights {str(weights_file)!r} do not match the UNet's adapter: {len(missing)} missing keys "
            f"(e.g. {sorted(missing)[:2]}), {len(unexpected)} unexpected (e.g. {sorted(unexpected)[:2]})"
        )
    set_peft_model_state_dict(unet, state_dict, adapter_name=ADAPTER_NAME)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(
            f"checkpoint file {str(path)!r} is missing: the checkpoint is incomplete"
        ) from None
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint file {str(path)!r} is not valid JSON: {error}") from None


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {str(path)!r} is missing: the checkpoint is incomplete")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError) as error:
        raise CheckpointError(f"cannot read checkpoint file {str(path)!r}: {error}") from error


def _restore_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            numpy_state["bit_generator"],
            numpy_state["key"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
