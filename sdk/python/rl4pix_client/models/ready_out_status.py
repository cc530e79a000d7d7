from typing import Literal

ReadyOutStatus = Literal["not_ready", "ready"]

READY_OUT_STATUS_VALUES: set[ReadyOutStatus] = {
    "not_ready",
    "ready",
}


def check_ready_out_status(value: str) -> ReadyOutStatus:
    if value in READY_OUT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {READY_OUT_STATUS_VALUES!r}")
