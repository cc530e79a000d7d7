from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.image_size import ImageSize


T = TypeVar("T", bound="EditSizes")


@_attrs_define
class EditSizes:
    """
    Attributes:
        input_ (ImageSize):
        mask (ImageSize | None | Unset): size of the uploaded mask; the worker resizes it to the input's
        output (ImageSize | None | Unset):
    """

    input_: ImageSize
    mask: ImageSize | None | Unset = UNSET
    output: ImageSize | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.image_size import ImageSize

        input_ = self.input_.to_dict()

        mask: dict[str, Any] | None | Unset
        if isinstance(self.mask, Unset):
            mask = UNSET
        elif isinstance(self.mask, ImageSize):
            mask = self.mask.to_dict()
        else:
            mask = self.mask

        output: dict[str, Any] | None | Unset
        if isinstance(self.output, Unset):
            output = UNSET
        elif isinstance(self.output, ImageSize):
            output = self.output.to_dict()
        else:
            output = self.output

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "input": input_,
            }
        )
        if mask is not UNSET:
            field_dict["mask"] = mask
        if output is not UNSET:
            field_dict["output"] = output

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.image_size import ImageSize

        d = dict(src_dict)
        input_ = ImageSize.from_dict(d.pop("input"))

        def _parse_mask(data: object) -> ImageSize | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                mask_type_0 = ImageSize.from_dict(data)

                return mask_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ImageSize | None | Unset, data)

        mask = _parse_mask(d.pop("mask", UNSET))

        def _parse_output(data: object) -> ImageSize | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                output_type_0 = ImageSize.from_dict(data)

                return output_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(ImageSize | None | Unset, data)

        output = _parse_output(d.pop("output", UNSET))

        edit_sizes = cls(
            input_=input_,
            mask=mask,
            output=output,
        )

        edit_sizes.additional_properties = d
        return edit_sizes

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
