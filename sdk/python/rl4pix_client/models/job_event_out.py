from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.job_event_out_data_type_0 import JobEventOutDataType0


T = TypeVar("T", bound="JobEventOut")


@_attrs_define
class JobEventOut:
    """
    Attributes:
        attempt (int | None):
        created_at (datetime.datetime):
        data (JobEventOutDataType0 | None):
        epoch (int | None):
        id (int):
        kind (str):
        message (str):
    """

    attempt: int | None
    created_at: datetime.datetime
    data: JobEventOutDataType0 | None
    epoch: int | None
    id: int
    kind: str
    message: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.job_event_out_data_type_0 import JobEventOutDataType0

        attempt: int | None
        attempt = self.attempt

        created_at = self.created_at.isoformat()

        data: dict[str, Any] | None
        if isinstance(self.data, JobEventOutDataType0):
            data = self.data.to_dict()
        else:
            data = self.data

        epoch: int | None
        epoch = self.epoch

        id = self.id

        kind = self.kind

        message = self.message

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "attempt": attempt,
                "created_at": created_at,
                "data": data,
                "epoch": epoch,
                "id": id,
                "kind": kind,
                "message": message,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.job_event_out_data_type_0 import JobEventOutDataType0

        d = dict(src_dict)

        def _parse_attempt(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        attempt = _parse_attempt(d.pop("attempt"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        def _parse_data(data: object) -> JobEventOutDataType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                data_type_0 = JobEventOutDataType0.from_dict(data)

                return data_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobEventOutDataType0 | None, data)

        data = _parse_data(d.pop("data"))

        def _parse_epoch(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        epoch = _parse_epoch(d.pop("epoch"))

        id = d.pop("id")

        kind = d.pop("kind")

        message = d.pop("message")

        job_event_out = cls(
            attempt=attempt,
            created_at=created_at,
            data=data,
            epoch=epoch,
            id=id,
            kind=kind,
            message=message,
        )

        job_event_out.additional_properties = d
        return job_event_out

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
