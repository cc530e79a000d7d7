from typing import Literal

DatasetOutFormat = Literal["magicbrush-zip", "parquet"]

DATASET_OUT_FORMAT_VALUES: set[DatasetOutFormat] = {
    "magicbrush-zip",
    "parquet",
}


def check_dataset_out_format(value: str) -> DatasetOutFormat:
    if value in DATASET_OUT_FORMAT_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {DATASET_OUT_FORMAT_VALUES!r}")
