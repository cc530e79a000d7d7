"""Exceptions raised by rl4pix_core.

Every message names the invalid value and gives the fix, so the CLI and the
service can pass it to the user unchanged.
"""


class Rl4pixError(Exception):
    """Base class of every error that rl4pix_core raises on purpose."""


class InvalidInputError(Rl4pixError, ValueError):
    """An image, mask, instruction or parameter that cannot be used as given."""


class ModelNotFoundError(Rl4pixError, LookupError):
    """A model reference that is neither a preset, a local path nor a reachable hub id."""


class CheckpointError(Rl4pixError):
    """A LoRA or training checkpoint that is missing, unsafe or incompatible with the base model."""


class ConfigError(Rl4pixError, ValueError):
    """A training or evaluation configuration key that is unknown or out of range."""


class RewardError(Rl4pixError):
    """Too many non-finite rewards in a row to keep training."""
