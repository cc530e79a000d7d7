"""Validation of training-job config overrides against the PPO schema (rl4pix_core.ppo.config).

That module needs only pydantic and PyYAML, so the gateway validates with the same schema as the
trainer without importing torch. The stored overrides stay as the client sent them, and the worker
builds the real config.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from service.errors import ApiError

# Keys the service sets itself: the base model comes from the request's `model` field, and the
# paths and device belong to the worker that runs the job.
SERVICE_KEYS = frozenset({"model", "logdir", "resume_from", "data.path", "device"})


def _invalid(message: str, field: str = "config") -> ApiError:
    return ApiError(422, "invalid_config", f"{field}: {message}", field)


def nest_overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Merge nested and dotted keys ({'train.learning_rate': 1e-4}) into one nested dict."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        parts = key.split(".")
        if any(not part for part in parts):
            raise _invalid(f"invalid key {key!r}", f"config.{key}")
        section = nested
        for depth, part in enumerate(parts[:-1]):
            child = section.setdefault(part, {})
            if not isinstance(child, dict):
                raise _invalid(f"{'.'.join(parts[: depth + 1])!r} is a value, not a section", f"config.{key}")
            section = child
        leaf = parts[-1]
        if isinstance(value, dict):
            existing = section.setdefault(leaf, {})
            if not isinstance(existing, dict):
                raise _invalid(f"{key!r} is set twice", f"config.{key}")
            existing.update(nest_overrides(value))
        else:
            section[leaf] = value
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


def validate_overrides(model: str, overrides: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Check the overrides against TrainConfig; return them nested, with the number of epochs."""
    from rl4pix_core.errors import ConfigError
    from rl4pix_core.ppo.config import validate_config

    nested = nest_overrides(overrides)
    for key, value in nested.items():
        _check_finite(value, key)
    for key in _dotted_keys(nested):
        if key in SERVICE_KEYS:
            raise _invalid(f"{key!r} is set by the service and cannot be overridden", f"config.{key}")
    candidate = copy.deepcopy(nested)
    candidate["model"] = model
    candidate.setdefault("data", {})
    if isinstance(candidate["data"], dict):
        candidate["data"]["path"] = "dataset"
    try:
        config = validate_config(candidate)
    except ConfigError as error:
        raise _invalid(str(error)) from error
    return nested, config.num_epochs
