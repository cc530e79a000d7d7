from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="AdapterOut")


@_attrs_define
class AdapterOut:
    """
    Attributes:
        created_at (datetime.datetime):
        id (str):
        model (str):
        train_job_id (None | str):
    """

    created_at: datetime.datetime
    id: str
    model: str
    train_job_id: None | str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        id = self.id

        model = self.model

        train_job_id: None | str
        train_job_id = self.train_job_id

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "id": id,
                "model": model,
                "train_job_id": train_job_id,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        model = d.pop("model")

        def _parse_train_job_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        train_job_id = _parse_train_job_id(d.pop("train_job_id"))

        adapter_out = cls(
            created_at=created_at,
            id=id,
            model=model,
            train_job_id=train_job_id,
        )

        adapter_out.additional_properties = d
        return adapter_out

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
