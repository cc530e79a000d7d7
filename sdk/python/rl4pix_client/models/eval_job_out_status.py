from typing import Literal

EvalJobOutStatus = Literal["cancelled", "cancelling", "failed", "queued", "running", "succeeded"]

EVAL_JOB_OUT_STATUS_VALUES: set[EvalJobOutStatus] = {
    "cancelled",
    "cancelling",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_eval_job_out_status(value: str) -> EvalJobOutStatus:
    if value in EVAL_JOB_OUT_STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {EVAL_JOB_OUT_STATUS_VALUES!r}")
