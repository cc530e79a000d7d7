"""Validation of training-job config overrides against the PPO schema (rl4pix_core.ppo.config).

That module needs only pydantic and PyYAML, so the gateway validates with the same schema as the
trainer without importing torch. The stored overrides stay as the client sent them, and the worker
builds the real config.
"""

from __future__ import annotations

import copy
import math
import typing
from typing import Any

from service.errors import ApiError

# Keys the service sets itself: the base model comes from the request's `model` field, and the
# paths and device belong to the worker that runs the job.
SERVICE_KEYS = frozenset({"model", "logdir", "resume_from", "data.path", "device"})
# The worker trains on the whole uploaded dataset, which is stored as one archive or parquet file,
# so a split subfolder or `<split>-*.parquet` file that `data.split` selects never exists there.
SPLIT_KEY = "data.split"

# Module names in the attention blocks of diffusers' UNet2DConditionModel (the InstructPix2Pix
# UNet) that a LoRA adapter can wrap. PEFT matches a name against the end of each module path.
# proj_in and proj_out are Conv2d in the Stable Diffusion 1.5 layout and Linear in later ones.
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
LORA_TARGET_MODULES = frozenset(
    {
        *ATTENTION_PROJECTIONS,
        *(f"{block}.{name}" for block in ("attn1", "attn2") for name in ATTENTION_PROJECTIONS),
        "proj_in",
        "proj_out",
        "ff.net.0.proj",
        "ff.net.2",
    }
)
# The UNet's attention maps exist at the latent size divided by 1, 2, 4 and 8 (one level per block).
ATTENTION_DOWNSAMPLE_LEVELS = (1, 2, 4, 8)


def _invalid(message: str, field: str = "config") -> ApiError:
    return ApiError(422, "invalid_config", f"{field}: {message}", field)


def _set_twice(key: str) -> ApiError:
    return _invalid(
        f"{key!r} is set twice, for example once nested and once dotted; give each key once",
        f"config.{key}",
    )


def _merge(target: dict[str, Any], source: dict[str, Any], prefix: str) -> None:
    """Merge nested `source` into `target`, rejecting a key that both of them set."""
    for key, value in source.items():
        dotted = f"{prefix}{key}"
        if key not in target:
            target[key] = value
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge(target[key], value, dotted + ".")
        else:
            raise _set_twice(dotted)


def nest_overrides(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Merge nested and dotted keys ({'train.learning_rate': 1e-4}) into one nested dict.

    Raises ApiError when a key is given twice, for example as `train.learning_rate` and inside `train`.
    """
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        full_key = f"{prefix}{key}"
        parts = key.split(".")
        if any(not part for part in parts):
            raise _invalid(f"invalid key {full_key!r}", f"config.{full_key}")
        if isinstance(value, dict):
            value = nest_overrides(value, full_key + ".")
        branch: dict[str, Any] = {parts[-1]: value}
        for part in reversed(parts[:-1]):
            branch = {part: branch}
        _merge(nested, branch, prefix)
    return nested


def _check_finite(value: Any, key: str) -> None:
    """Reject NaN and infinity, which JSON (and so the job row) cannot store."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _invalid(f"{key!r} must be a finite number, got {value}", f"config.{key}")
    if isinstance(value, dict):
        for child_key, child in value.items():
            _check_finite(child, f"{key}.{child_key}")
    elif isinstance(value, list):
        for child in value:
            _check_finite(child, key)


def _dotted_keys(nested: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in nested.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_dotted_keys(value, dotted + "."))
    return keys


def _lookup(nested: dict[str, Any], key: str) -> Any:
    value: Any = nested
    for part in key.split("."):
        value = value[part]
    return value


def _field_annotation(key: str) -> Any:
    """Return the type annotation of TrainConfig's field at dotted `key`, or None for an unknown key."""
    from pydantic import BaseModel

    from rl4pix_core.ppo.config import TrainConfig

    model: Any = TrainConfig
    annotation = None
    for part in key.split("."):
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = annotation
    return annotation


def _check_no_bool_numbers(nested: dict[str, Any]) -> None:
    """Reject true/false for number fields: pydantic would read them as 1 and 0."""
    for key in _dotted_keys(nested):
        if not isinstance(_lookup(nested, key), bool):
            continue
        annotation = _field_annotation(key)
        accepted = {annotation, *typing.get_args(annotation)}
        if accepted & {int, float}:
            raise _invalid(
                f"{key!r} must be a number, not the boolean {str(_lookup(nested, key)).lower()}",
                f"config.{key}",
            )


def _check_service_keys(nested: dict[str, Any]) -> None:
    for key in _dotted_keys(nested):
        if key in SERVICE_KEYS:
            raise _invalid(f"{key!r} is set by the service and cannot be overridden", f"config.{key}")
        if key == SPLIT_KEY:
            raise _invalid(
                f"{key!r} is not supported: the service trains on the whole uploaded dataset; upload a "
                "dataset that holds only the split to train on",
                f"config.{key}",
            )


def _check_model_choices(nested: dict[str, Any]) -> None:
    """Check the keys whose valid values depend on the UNet, which TrainConfig cannot know."""
    lora = nested.get("lora")
    modules = lora.get("target_modules") if isinstance(lora, dict) else None
    if isinstance(modules, list):
        for name in modules:
            if isinstance(name, str) and name not in LORA_TARGET_MODULES:
                raise _invalid(
                    f"unknown LoRA target module {name!r}; valid names are "
                    f"{', '.join(sorted(LORA_TARGET_MODULES))}",
                    "config.lora.target_modules",
                )
    downsample = nested.get("attention_downsample")
    if type(downsample) is int and downsample not in ATTENTION_DOWNSAMPLE_LEVELS:
        levels = ", ".join(map(str, ATTENTION_DOWNSAMPLE_LEVELS))
        raise _invalid(
            f"invalid value {downsample} for 'attention_downsample': the UNet has attention maps "
            f"at the latent size divided by {levels}; use one of those",
            "config.attention_downsample",
        )


def validate_overrides(model: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Check the overrides against TrainConfig; return them nested, with the number of epochs.

    Raises ApiError (422 invalid_config) whose field is `config.<key>` for the first invalid key,
    or `config` for a rule across keys such as train.batch_size dividing the samples per epoch.
    """
    from pydantic import ValidationError

    from rl4pix_core.ppo.config import TrainConfig, _describe_error

    nested = nest_overrides(overrides)
    for key, value in nested.items():
        _check_finite(value, key)
    _check_service_keys(nested)
    _check_no_bool_numbers(nested)
    candidate = copy.deepcopy(nested)
    candidate["model"] = model
    candidate.setdefault("data", {})
    if isinstance(candidate["data"], dict):
        candidate["data"]["path"] = "dataset"
    try:
        config = TrainConfig.model_validate(candidate)
    except ValidationError as error:
        detail = error.errors()[0]
        key = ".".join(str(part) for part in detail["loc"])
        field = f"config.{key}" if key else "config"
        raise ApiError(422, "invalid_config", f"{field}: {_describe_error(detail)}", field) from None
    _check_model_choices(nested)
    return nested, config.num_epochs
