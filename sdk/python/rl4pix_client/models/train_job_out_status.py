from typing import Literal

TrainJobOutStatus = Literal["cancelled", "cancelling", "failed", "queued", "running", "succeeded"]

TRAIN_JOB_OUT_STATUS_VALUES: set[TrainJobOutStatus] = {
    "cancelled",
    "cancelling",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_train_job_out_status(value: str) -> TrainJobOutStatus:
    if value in TRAIN_JOB_OUT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {TRAIN_JOB_OUT_STATUS_VALUES!r}")
