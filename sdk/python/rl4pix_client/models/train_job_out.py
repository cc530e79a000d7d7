from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.train_job_out_status import TrainJobOutStatus, check_train_job_out_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.job_error import JobError
    from ..models.progress import Progress
    from ..models.train_job_out_config import TrainJobOutConfig
    from ..models.train_job_out_latest_metrics_type_0 import TrainJobOutLatestMetricsType0


T = TypeVar("T", bound="TrainJobOut")


@_attrs_define
class TrainJobOut:
    """
    Attributes:
        attempts (int):
        config (TrainJobOutConfig):
        created_at (datetime.datetime):
        dataset_id (str):
        error (JobError | None):
        finished_at (datetime.datetime | None):
        id (str):
        latest_metrics (None | TrainJobOutLatestMetricsType0):
        model (str):
        progress (Progress):
        started_at (datetime.datetime | None):
        status (TrainJobOutStatus):
        updated_at (datetime.datetime):
        adapter_id (None | str | Unset): the final LoRA as an adapter, once the job has succeeded
    """

    attempts: int
    config: TrainJobOutConfig
    created_at: datetime.datetime
    dataset_id: str
    error: JobError | None
    finished_at: datetime.datetime | None
    id: str
    latest_metrics: None | TrainJobOutLatestMetricsType0
    model: str
    progress: Progress
    started_at: datetime.datetime | None
    status: TrainJobOutStatus
    updated_at: datetime.datetime
    adapter_id: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_error import JobError
        from ..models.train_job_out_latest_metrics_type_0 import TrainJobOutLatestMetricsType0

        attempts = self.attempts

        config = self.config.to_dict()

        created_at = self.created_at.isoformat()

        dataset_id = self.dataset_id

        error: dict[str, Any] | None
        if isinstance(self.error, JobError):
            error = self.error.to_dict()
        else:
            error = self.error

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        id = self.id

        latest_metrics: dict[str, Any] | None
        if isinstance(self.latest_metrics, TrainJobOutLatestMetricsType0):
            latest_metrics = self.latest_metrics.to_dict()
        else:
            latest_metrics = self.latest_metrics

        model = self.model

        progress = self.progress.to_dict()

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status: str = self.status

        updated_at = self.updated_at.isoformat()

        adapter_id: None | str | Unset
        if isinstance(self.adapter_id, Unset):
            adapter_id = UNSET
        else:
            adapter_id = self.adapter_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempts": attempts,
                "config": config,
                "created_at": created_at,
                "dataset_id": dataset_id,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "latest_metrics": latest_metrics,
                "model": model,
                "progress": progress,
                "started_at": started_at,
                "status": status,
                "updated_at": updated_at,
            }
        )
        if adapter_id is not UNSET:
            field_dict["adapter_id"] = adapter_id

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_error import JobError
        from ..models.progress import Progress
        from ..models.train_job_out_config import TrainJobOutConfig
        from ..models.train_job_out_latest_metrics_type_0 import TrainJobOutLatestMetricsType0

        d = dict(src_dict)
        attempts = d.pop("attempts")

        config = TrainJobOutConfig.from_dict(d.pop("config"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dataset_id = d.pop("dataset_id")

        def _parse_error(data: object) -> JobError | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = JobError.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobError | None, data)

        error = _parse_error(d.pop("error"))

        def _parse_finished_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                finished_at_type_0 = datetime.datetime.fromisoformat(data)

                return finished_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        finished_at = _parse_finished_at(d.pop("finished_at"))

        id = d.pop("id")

        def _parse_latest_metrics(data: object) -> None | TrainJobOutLatestMetricsType0:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                latest_metrics_type_0 = TrainJobOutLatestMetricsType0.from_dict(data)

                return latest_metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TrainJobOutLatestMetricsType0, data)

        latest_metrics = _parse_latest_metrics(d.pop("latest_metrics"))

        model = d.pop("model")

        progress = Progress.from_dict(d.pop("progress"))

        def _parse_started_at(data: object) -> datetime.datetime | None:
            if data is None:
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                started_at_type_0 = datetime.datetime.fromisoformat(data)

                return started_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None, data)

        started_at = _parse_started_at(d.pop("started_at"))

        status = check_train_job_out_status(d.pop("status"))

        updated_at = datetime.datetime.fromisoformat(d.pop("updated_at"))

        def _parse_adapter_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id", UNSET))

        train_job_out = cls(
            attempts=attempts,
            config=config,
            created_at=created_at,
            dataset_id=dataset_id,
            error=error,
            finished_at=finished_at,
            id=id,
            latest_metrics=latest_metrics,
            model=model,
            progress=progress,
            started_at=started_at,
            status=status,
            updated_at=updated_at,
            adapter_id=adapter_id,
        )

        train_job_out.additional_properties = d
        return train_job_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
