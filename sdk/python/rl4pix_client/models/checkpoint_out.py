from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.checkpoint_out_kind import CheckpointOutKind, check_checkpoint_out_kind

T = TypeVar("T", bound="CheckpointOut")


@_attrs_define
class CheckpointOut:
    """
    Attributes:
        created_at (datetime.datetime):
        epoch (int):
        id (str):
        kind (CheckpointOutKind):
        sha256 (str):
        size_bytes (int):
        url (str):
        url_expires_at (datetime.datetime):
    """

    created_at: datetime.datetime
    epoch: int
    id: str
    kind: CheckpointOutKind
    sha256: str
    size_bytes: int
    url: str
    url_expires_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        created_at = self.created_at.isoformat()

        epoch = self.epoch

        id = self.id

        kind: str = self.kind

        sha256 = self.sha256

        size_bytes = self.size_bytes

        url = self.url

        url_expires_at = self.url_expires_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "created_at": created_at,
                "epoch": epoch,
                "id": id,
                "kind": kind,
                "sha256": sha256,
                "size_bytes": size_bytes,
                "url": url,
                "url_expires_at": url_expires_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        epoch = d.pop("epoch")

        id = d.pop("id")

        kind = check_checkpoint_out_kind(d.pop("kind"))

        sha256 = d.pop("sha256")

        size_bytes = d.pop("size_bytes")

        url = d.pop("url")

        url_expires_at = datetime.datetime.fromisoformat(d.pop("url_expires_at"))

        checkpoint_out = cls(
            created_at=created_at,
            epoch=epoch,
            id=id,
            kind=kind,
            sha256=sha256,
            size_bytes=size_bytes,
            url=url,
            url_expires_at=url_expires_at,
        )

        checkpoint_out.additional_properties = d
        return checkpoint_out

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
