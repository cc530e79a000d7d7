from typing import Literal

EvalJobCreateSetting = Literal["multi-turn", "single-turn"]

EVAL_JOB_CREATE_SETTING_VALUES: set[EvalJobCreateSetting] = {
    "multi-turn",
    "single-turn",
}


def check_eval_job_create_setting(value: str) -> EvalJobCreateSetting:
    if value in EVAL_JOB_CREATE_SETTING_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {EVAL_JOB_CREATE_SETTING_VALUES!r}")
