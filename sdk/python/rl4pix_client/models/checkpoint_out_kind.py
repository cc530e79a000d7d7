from typing import Literal

CheckpointOutKind = Literal["checkpoint", "final"]

CHECKPOINT_OUT_KIND_VALUES: set[CheckpointOutKind] = {
    "checkpoint",
    "final",
}


def check_checkpoint_out_kind(value: str) -> CheckpointOutKind:
    if value in CHECKPOINT_OUT_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {CHECKPOINT_OUT_KIND_VALUES!r}")
