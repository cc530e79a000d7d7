from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.dataset_out_format import DatasetOutFormat, check_dataset_out_format
from ..types import UNSET, Unset

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
        target_count (int | None | Unset): turns with a ground-truth output image (<id>-output<k>.png or target_img),
            which evaluation needs; null for datasets stored before it was counted
    """

    created_at: datetime.datetime
    format_: DatasetOutFormat
    id: str
    name: str
    session_count: int
    sha256: str
    size_bytes: int
    turn_count: int
    target_count: int | None | Unset = UNSET
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

        target_count: int | None | Unset
        if isinstance(self.target_count, Unset):
            target_count = UNSET
        else:
            target_count = self.target_count

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
        if target_count is not UNSET:
            field_dict["target_count"] = target_count

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

        def _parse_target_count(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        target_count = _parse_target_count(d.pop("target_count", UNSET))

        dataset_out = cls(
            created_at=created_at,
            format_=format_,
            id=id,
            name=name,
            session_count=session_count,
            sha256=sha256,
            size_bytes=size_bytes,
            turn_count=turn_count,
            target_count=target_count,
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
