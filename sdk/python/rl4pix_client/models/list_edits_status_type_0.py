from typing import Literal

ListEditsStatusType0 = Literal["cancelled", "failed", "queued", "running", "succeeded"]

LIST_EDITS_STATUS_TYPE_0_VALUES: set[ListEditsStatusType0] = {
    "cancelled",
    "failed",
    "queued",
    "running",
    "succeeded",
}


def check_list_edits_status_type_0(value: str) -> ListEditsStatusType0:
    if value in LIST_EDITS_STATUS_TYPE_0_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {LIST_EDITS_STATUS_TYPE_0_VALUES!r}")
