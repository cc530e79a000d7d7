from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.dataset_out_format import DatasetOutFormat, check_dataset_out_format

T = TypeVar("T", bound="DatasetOut")


@_attrs_define
class DatasetOut:
    """
    Attributes:
        created_at (datetime.datetime):
        format_ (DatasetOutFormat):
        id (str):
        name (str):
        session_count (int):
        sha256 (str):
        size_bytes (int):
        turn_count (int):
    """

    created_at: datetime.datetime
    format_: DatasetOutFormat
    id: str
    name: str
    session_count: int
    sha256: str
    size_bytes: int
    turn_count: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        format_: str = self.format_

        id = self.id

        name = self.name

        session_count = self.session_count

        sha256 = self.sha256

        size_bytes = self.size_bytes

        turn_count = self.turn_count

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "format": format_,
                "id": id,
                "name": name,
                "session_count": session_count,
                "sha256": sha256,
                "size_bytes": size_bytes,
                "turn_count": turn_count,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        format_ = check_dataset_out_format(d.pop("format"))

        id = d.pop("id")

        name = d.pop("name")

        session_count = d.pop("session_count")

        sha256 = d.pop("sha256")

        size_bytes = d.pop("size_bytes")

        turn_count = d.pop("turn_count")

        dataset_out = cls(
            created_at=created_at,
            format_=format_,
            id=id,
            name=name,
            session_count=session_count,
            sha256=sha256,
            size_bytes=size_bytes,
            turn_count=turn_count,
        )

        dataset_out.additional_properties = d
        return dataset_out

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
