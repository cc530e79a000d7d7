from typing import Literal

ListEvalJobsStatusType0 = Literal["cancelled", "cancelling", "failed", "queued", "running", "succeeded"]

LIST_EVAL_JOBS_STATUS_TYPE_0_VALUES: set[ListEvalJobsStatusType0] = {
    "cancelled",
    "cancelling",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_list_eval_jobs_status_type_0(value: str) -> ListEvalJobsStatusType0:
    if value in LIST_EVAL_JOBS_STATUS_TYPE_0_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_EVAL_JOBS_STATUS_TYPE_0_VALUES!r}")
