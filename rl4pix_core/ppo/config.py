"""The PPO training configuration: one validated pydantic model with nested sections.

Defaults are the values of the InstructRL4Pix training table (seed 42, 200 epochs, 50 DDIM steps,
eta 1.0, learning rate 2e-4, clip range 1e-4 and so on). `load_config` reads a YAML file, applies
`key=value` overrides with dotted keys and turns every validation failure into a `ConfigError`
that names the key, the rejected value and the allowed range.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rl4pix_core.errors import ConfigError
from rl4pix_core.reward_defaults import DEFAULT_ATTENTION_WEIGHT, DEFAULT_MAE_THRESHOLD, DEFAULT_MAE_WEIGHT

logger = logging.getLogger(__name__)

# The original InstructPix2Pix release in diffusers format. InstructRL4Pix starts from the MagicBrush
# fine-tune, which its authors publish only as an original-format `.ckpt` (hub repository
# osunlp/InstructPix2Pix-MagicBrush). Set `model` to that file or to a diffusers folder made from it.
DEFAULT_MODEL = "timbrooks/instruct-pix2pix"


class Section(BaseModel):
    """Base of every section: unknown keys are errors and assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SampleConfig(Section):
    num_steps: int = Field(
        50, ge=1, le=1000, description="DDIM denoising steps per trajectory; integer 1..1000"
    )
    eta: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="DDIM eta while sampling; (0, 1]. PPO needs eta > 0 so that each step has a log-probability",
    )
    guidance_scale: float = Field(
        5.0, ge=0.0, le=50.0, description="text guidance scale while sampling and training; 0..50"
    )
    image_guidance_scale: float = Field(
        1.5, ge=0.0, le=50.0, description="image guidance scale while sampling and training; 0..50"
    )
    batch_size: int = Field(1, ge=1, le=1024, description="edits per sampling batch on each process; 1..1024")
    num_batches_per_epoch: int = Field(
        2, ge=1, le=100_000, description="sampling batches per epoch on each process; 1..100000"
    )


class TrainSection(Section):
    batch_size: int = Field(
        1,
        ge=1,
        le=1024,
        description="trajectories per optimizer micro-batch on each process; 1..1024, must divide the "
        "samples per epoch (sample.batch_size x sample.num_batches_per_epoch)",
    )
    use_8bit_adam: bool = Field(
        True, description="use bitsandbytes AdamW8bit on CUDA; falls back to torch AdamW, with a log line"
    )
    learning_rate: float = Field(2e-4, gt=0.0, le=1.0, description="AdamW learning rate; (0, 1]")
    adam_beta1: float = Field(0.9, ge=0.0, lt=1.0, description="AdamW beta1; [0, 1)")
    adam_beta2: float = Field(0.999, ge=0.0, lt=1.0, description="AdamW beta2; [0, 1)")
    adam_weight_decay: float = Field(1e-4, ge=0.0, le=1.0, description="AdamW decoupled weight decay; 0..1")
    adam_epsilon: float = Field(1e-8, gt=0.0, le=1e-2, description="AdamW epsilon; (0, 0.01]")
    gradient_accumulation_steps: int = Field(
        1,
        ge=1,
        le=10_000,
        description="micro-batches whose gradients are summed into one optimizer step; 1..10000. A "
        "micro-batch is train.batch_size trajectories at all their trained timesteps; must divide the "
        "micro-batches per epoch",
    )
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradient norm clipping threshold; > 0")
    num_inner_epochs: int = Field(1, ge=1, le=100, description="passes over each epoch's samples; 1..100")
    cfg: bool = Field(
        True,
        description="recompute the noise prediction with the same three-way classifier-free guidance as "
        "sampling; false uses the fully conditioned prediction only, so log-probabilities differ from sampling",
    )
    adv_clip_max: float = Field(5.0, gt=0.0, description="advantages are clipped to +-adv_clip_max; > 0")
    clip_range: float = Field(1e-4, gt=0.0, lt=1.0, description="PPO ratio clip range epsilon; (0, 1)")
    timestep_fraction: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="fraction of each trajectory's timesteps trained per inner epoch; (0, 1]",
    )


class StatTrackingConfig(Section):
    buffer_size: int = Field(
        16, ge=1, le=100_000, description="rewards kept per (image id, instruction) key; 1..100000"
    )
    min_count: int = Field(
        16,
        ge=0,
        le=100_000,
        description="rewards a key needs before its own statistics replace the batch statistics; 0..100000",
    )
    max_nonfinite_batches: int = Field(
        3,
        ge=1,
        le=1000,
        description="consecutive batches with non-finite rewards before training stops with RewardError; 1..1000",
    )


class RewardSection(Section):
    attention_weight: float = Field(
        DEFAULT_ATTENTION_WEIGHT, description="weight of the attention-mask cosine similarity in the reward; any real number"
    )
    mae_weight: float = Field(
        DEFAULT_MAE_WEIGHT, description="weight (lambda) of the clipped input/output MAE in the reward; any real number"
    )
    mae_threshold: float = Field(
        DEFAULT_MAE_THRESHOLD,
        ge=0.0,
        lt=1.0,
        description="per-pixel differences at or below this value count as 0 in the clipped MAE; "
        "image units in [0, 1]; [0, 1)",
    )


class LoraSection(Section):
    rank: int = Field(4, ge=1, le=1024, description="LoRA rank r; 1..1024")
    alpha: float = Field(4.0, gt=0.0, description="LoRA alpha; the update is scaled by alpha / rank; > 0")
    target_modules: list[str] = Field(
        default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0"],
        min_length=1,
        description="UNet attention module names that get a LoRA adapter; non-empty list",
    )

    @field_validator("target_modules")
    @classmethod
    def _names_not_blank(cls, names: list[str]) -> list[str]:
        if any(not name.strip() for name in names):
            raise ValueError("module names must not be empty")
        return names


class DataSection(Section):
    path: str = Field(
        "", description="MagicBrush folder or parquet file with the training edits; required to train"
    )
    split: str | None = Field(
        None,
        description="dataset split to read when the source has several (for example train); null reads all",
    )
    limit: int | None = Field(
        None, ge=1, description="use at most this many edit turns, in dataset order; null uses all; >= 1"
    )


class TrainConfig(Section):
    model: str = Field(
        DEFAULT_MODEL,
        min_length=1,
        description="base model: a preset (tiny, sd15-random), a hub id or a local diffusers folder",
    )
    seed: int = Field(
        42, ge=0, le=2**32 - 1, description="seed of every random choice in training; 0..2^32-1"
    )
    logdir: str = Field("logs", min_length=1, description="folder for metrics.jsonl, plots and checkpoints")
    num_epochs: int = Field(200, ge=1, le=1_000_000, description="epochs (sampling + training phases); >= 1")
    save_freq: int = Field(
        50, ge=1, description="save a checkpoint every this many epochs and after the last; >= 1"
    )
    num_checkpoint_limit: int = Field(5, ge=1, description="checkpoints kept; the oldest are deleted; >= 1")
    mixed_precision: Literal["no", "fp16", "bf16"] = Field(
        "no", description="accelerate mixed precision and model weight dtype: no, fp16 or bf16"
    )
    allow_tf32: bool = Field(True, description="allow TF32 matrix multiplies on Ampere or newer GPUs")
    resume_from: str = Field(
        "",
        description="checkpoint folder (or a logdir, for its latest checkpoint) to resume from; empty starts anew",
    )
    use_lora: bool = Field(True, description="train LoRA adapters; only true is supported")
    resolution: int = Field(
        256,
        ge=64,
        le=2048,
        description="side of the square training images in pixels; 64..2048, multiple of 8",
    )
    attention_downsample: int = Field(
        4, ge=1, le=64, description="attention maps are captured at the latent size divided by this; 1..64"
    )
    device: str | None = Field(
        None,
        pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$",
        description="cpu forces the CPU; cuda:N picks GPU N for a single process; auto, cuda or null use "
        "accelerate's device, one GPU per process when CUDA is present",
    )
    async_reward: bool = Field(
        False, description="compute rewards in a worker thread while the next batch samples"
    )
    sample: SampleConfig = Field(default_factory=SampleConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    per_prompt_stat_tracking: StatTrackingConfig = Field(default_factory=StatTrackingConfig)
    reward: RewardSection = Field(default_factory=RewardSection)
    lora: LoraSection = Field(default_factory=LoraSection)
    data: DataSection = Field(default_factory=DataSection)

    @field_validator("use_lora")
    @classmethod
    def _lora_only(cls, use_lora: bool) -> bool:
        if not use_lora:
            raise ValueError("full UNet fine-tuning is not supported; set use_lora to true")
        return use_lora

    @field_validator("resolution")
    @classmethod
    def _multiple_of_eight(cls, resolution: int) -> int:
        if resolution % 8:
            raise ValueError(f"must be a multiple of 8, for example {resolution - resolution % 8}")
        return resolution

    @model_validator(mode="after")
    def _check_batches(self) -> TrainConfig:
        samples_per_epoch = self.sample.batch_size * self.sample.num_batches_per_epoch
        if samples_per_epoch % self.train.batch_size:
            raise ValueError(
                f"train.batch_size {self.train.batch_size} must divide the samples per epoch on each process "
                f"({samples_per_epoch} = sample.batch_size x sample.num_batches_per_epoch)"
            )
        micro_batches = samples_per_epoch // self.train.batch_size
        if micro_batches % self.train.gradient_accumulation_steps:
            raise ValueError(
                f"train.gradient_accumulation_steps {self.train.gradient_accumulation_steps} must divide the "
                f"micro-batches per inner epoch ({micro_batches} = samples per epoch / train.batch_size), "
                "so that no gradient is left unapplied at the end of an epoch"
            )
        if trained_timesteps(self) < 1:
            raise ValueError(
                f"train.timestep_fraction {self.train.timestep_fraction} x sample.num_steps "
                f"{self.sample.num_steps} trains no timestep; raise one of them"
            )
        return self


def trained_timesteps(config: TrainConfig) -> int:
    """Return how many timesteps of each trajectory one inner epoch trains."""
    return int(config.sample.num_steps * config.train.timestep_fraction)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config file (or the defaults when `path` is None), then apply `key=value` overrides.

    Override keys are dotted (`train.learning_rate=1e-4`) and values are parsed as YAML scalars, so
    `true`, `1e-4` and `null` keep their types. Raises ConfigError for a missing or malformed file,
    an unknown key or an invalid value.
    """
    raw = _read_yaml(path) if path else {}
    for override in overrides or []:
        key, value = _parse_override(override)
        if _field_info(key) is None:
            valid = ", ".join(_section_keys(key.rpartition(".")[0])) or "see rl4pix train --print-config"
            raise ConfigError(
                f"unknown configuration key {key!r} in override {override!r}; valid keys here are: {valid}"
            )
        _set_dotted(raw, key, value)
    return validate_config(raw)


def validate_config(raw: dict[str, Any]) -> TrainConfig:
    """Build a TrainConfig from a nested dict, raising ConfigError for the first invalid key."""
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe_errors(error)) from None


def dump_config(config: TrainConfig) -> str:
    """Return the config as YAML, every key included, in declaration order."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _read_yaml(path: str | Path) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {str(file)!r} not found; pass an existing YAML file to --config")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {str(file)!r} is not valid YAML: {error}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {str(file)!r} must hold a mapping of keys, not {type(raw).__name__}")
    return raw


def _parse_override(override: str) -> tuple[str, Any]:
    key, separator, text = override.partition("=")
    key = key.strip()
    if not separator or not key:
        raise ConfigError(
            f"invalid override {override!r}; write it as key=value, for example train.learning_rate=1e-4"
        )
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set `raw[a][b][c] = value` for key `a.b.c`, creating sections that are missing."""
    parts = key.split(".")
    section = raw
    for depth, part in enumerate(parts[:-1]):
        child = section.setdefault(part, {})
        if not isinstance(child, dict):
            prefix = ".".join(parts[: depth + 1])
            raise ConfigError(f"unknown configuration key {key!r}: {prefix!r} is a value, not a section")
        section = child
    section[parts[-1]] = value


def _describe_errors(error: ValidationError) -> str:
    messages = [_describe_error(detail) for detail in error.errors()]
    return "; ".join(messages)


def _describe_error(detail: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in detail["loc"])
    reason = detail["msg"].removeprefix("Value error, ")
    if not key:
        return f"invalid configuration: {reason}"
    if detail["type"] == "extra_forbidden":
        parent = key.rpartition(".")[0]
        valid = ", ".join(_section_keys(parent))
        return f"unknown configuration key {key!r}; valid keys here are: {valid}"
    allowed = _field_description(key)
    text = f"invalid value {detail.get('input')!r} for {key!r}: {reason}"
    return f"{text} (allowed: {allowed})" if allowed else text


def _field_info(key: str):
    model: type[BaseModel] = TrainConfig
    info = None
    for part in key.split("."):
        if model is None or part not in model.model_fields:
            return None
        info = model.model_fields[part]
        annotation = info.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return info


def _field_description(key: str) -> str | None:
    info = _field_info(key)
    return info.description if info is not None else None


def _section_keys(parent: str) -> list[str]:
    if not parent:
        return list(TrainConfig.model_fields)
    info = _field_info(parent)
    annotation = info.annotation if info is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def iter_config_reference(
    model: type[BaseModel] = TrainConfig, prefix: str = ""
) -> list[tuple[str, Any, str]]:
    """List (dotted key, default, description) for every leaf key, in declaration order."""
    defaults = model().model_dump(mode="json")
    rows: list[tuple[str, Any, str]] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(iter_config_reference(annotation, f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", defaults[name], info.description or ""))
    return rows


def config_reference_markdown() -> str:
    """Render the key reference table for docs/training.md."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]
    for key, default, description in iter_config_reference():
        shown = yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("...").strip()
        lines.append(f"| `{key}` | `{shown}` | {description} |")
    return "\n".join(lines) + "\n"
