from typing import Literal

EditOutStatus = Literal["cancelled", "failed", "queued", "running", "succeeded"]

EDIT_OUT_STATUS_VALUES: set[EditOutStatus] = {
    "cancelled",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_edit_out_status(value: str) -> EditOutStatus:
    if value in EDIT_OUT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {EDIT_OUT_STATUS_VALUES!r}")
