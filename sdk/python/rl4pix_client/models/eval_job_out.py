from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.eval_job_out_status import EvalJobOutStatus, check_eval_job_out_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.eval_job_out_metrics_type_0 import EvalJobOutMetricsType0
    from ..models.job_error import JobError


T = TypeVar("T", bound="EvalJobOut")


@_attrs_define
class EvalJobOut:
    """
    Attributes:
        adapter_id (None | str):
        created_at (datetime.datetime):
        dataset_id (str):
        error (JobError | None):
        finished_at (datetime.datetime | None):
        id (str):
        limit (int | None):
        model (str):
        seed (int):
        setting (str):
        started_at (datetime.datetime | None):
        status (EvalJobOutStatus):
        steps (int):
        metrics (EvalJobOutMetricsType0 | None | Unset): means of l1, l2, ssim, psnr and clip_t, the scored turn count
            and the metric settings
    """

    adapter_id: None | str
    created_at: datetime.datetime
    dataset_id: str
    error: JobError | None
    finished_at: datetime.datetime | None
    id: str
    limit: int | None
    model: str
    seed: int
    setting: str
    started_at: datetime.datetime | None
    status: EvalJobOutStatus
    steps: int
    metrics: EvalJobOutMetricsType0 | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.eval_job_out_metrics_type_0 import EvalJobOutMetricsType0
        from ..models.job_error import JobError

        adapter_id: None | str
        adapter_id = self.adapter_id

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

        limit: int | None
        limit = self.limit

        model = self.model

        seed = self.seed

        setting = self.setting

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status: str = self.status

        steps = self.steps

        metrics: dict[str, Any] | None | Unset
        if isinstance(self.metrics, Unset):
            metrics = UNSET
        elif isinstance(self.metrics, EvalJobOutMetricsType0):
            metrics = self.metrics.to_dict()
        else:
            metrics = self.metrics

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "adapter_id": adapter_id,
                "created_at": created_at,
                "dataset_id": dataset_id,
                "error": error,
                "finished_at": finished_at,
                "id": id,
                "limit": limit,
                "model": model,
                "seed": seed,
                "setting": setting,
                "started_at": started_at,
                "status": status,
                "steps": steps,
            }
        )
        if metrics is not UNSET:
            field_dict["metrics"] = metrics

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.eval_job_out_metrics_type_0 import EvalJobOutMetricsType0
        from ..models.job_error import JobError

        d = dict(src_dict)

        def _parse_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id"))

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

        def _parse_limit(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        limit = _parse_limit(d.pop("limit"))

        model = d.pop("model")

        seed = d.pop("seed")

        setting = d.pop("setting")

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

        status = check_eval_job_out_status(d.pop("status"))

        steps = d.pop("steps")

        def _parse_metrics(data: object) -> EvalJobOutMetricsType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                metrics_type_0 = EvalJobOutMetricsType0.from_dict(data)

                return metrics_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EvalJobOutMetricsType0 | None | Unset, data)

        metrics = _parse_metrics(d.pop("metrics", UNSET))

        eval_job_out = cls(
            adapter_id=adapter_id,
            created_at=created_at,
            dataset_id=dataset_id,
            error=error,
            finished_at=finished_at,
            id=id,
            limit=limit,
            model=model,
            seed=seed,
            setting=setting,
            started_at=started_at,
            status=status,
            steps=steps,
            metrics=metrics,
        )

        eval_job_out.additional_properties = d
        return eval_job_out

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
