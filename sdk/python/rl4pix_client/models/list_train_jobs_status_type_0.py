from typing import Literal

ListTrainJobsStatusType0 = Literal["cancelled", "cancelling", "failed", "queued", "running", "succeeded"]

LIST_TRAIN_JOBS_STATUS_TYPE_0_VALUES: set[ListTrainJobsStatusType0] = {
    "cancelled",
    "cancelling",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_list_train_jobs_status_type_0(value: str) -> ListTrainJobsStatusType0:
    if value in LIST_TRAIN_JOBS_STATUS_TYPE_0_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_TRAIN_JOBS_STATUS_TYPE_0_VALUES!r}")
