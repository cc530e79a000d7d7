from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from .. import types
from ..types import UNSET, File, FileTypes, Unset

T = TypeVar("T", bound="BodyCreateEdit")


@_attrs_define
class BodyCreateEdit:
    """
    Attributes:
        image (File): PNG, JPEG or WebP image to edit
        instruction (str): edit instruction, e.g. 'make the sky purple'
        adapter_id (None | str | Unset):
        guidance_scale (float | Unset):  Default: 7.5.
        image_guidance_scale (float | Unset):  Default: 1.5.
        mask (File | None | Unset): optional mask, white = region to edit
        model (None | str | Unset):
        return_attention (bool | Unset):  Default: False.
        seed (int | None | Unset): random seed; generated when absent
        steps (int | None | Unset):
    """

    image: File
    instruction: str
    adapter_id: None | str | Unset = UNSET
    guidance_scale: float | Unset = 7.5
    image_guidance_scale: float | Unset = 1.5
    mask: File | None | Unset = UNSET
    model: None | str | Unset = UNSET
    return_attention: bool | Unset = False
    seed: int | None | Unset = UNSET
    steps: int | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        image = self.image.to_tuple()

        instruction = self.instruction

        adapter_id: None | str | Unset
        if isinstance(self.adapter_id, Unset):
            adapter_id = UNSET
        else:
            adapter_id = self.adapter_id

        guidance_scale = self.guidance_scale

        image_guidance_scale = self.image_guidance_scale

        mask: FileTypes | None | Unset
        if isinstance(self.mask, Unset):
            mask = UNSET
        elif isinstance(self.mask, File):
            mask = self.mask.to_tuple()

        else:
            mask = self.mask

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        return_attention = self.return_attention

        seed: int | None | Unset
        if isinstance(self.seed, Unset):
            seed = UNSET
        else:
            seed = self.seed

        steps: int | None | Unset
        if isinstance(self.steps, Unset):
            steps = UNSET
        else:
            steps = self.steps

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "image": image,
                "instruction": instruction,
            }
        )
        if adapter_id is not UNSET:
            field_dict["adapter_id"] = adapter_id
        if guidance_scale is not UNSET:
            field_dict["guidance_scale"] = guidance_scale
        if image_guidance_scale is not UNSET:
            field_dict["image_guidance_scale"] = image_guidance_scale
        if mask is not UNSET:
            field_dict["mask"] = mask
        if model is not UNSET:
            field_dict["model"] = model
        if return_attention is not UNSET:
            field_dict["return_attention"] = return_attention
        if seed is not UNSET:
            field_dict["seed"] = seed
        if steps is not UNSET:
            field_dict["steps"] = steps

        return field_dict

    def to_multipart(self) -> types.RequestFiles:
        files: types.RequestFiles = []

        files.append(("image", self.image.to_tuple()))

        files.append(("instruction", (None, str(self.instruction).encode(), "text/plain")))

        if not isinstance(self.adapter_id, Unset):
            if isinstance(self.adapter_id, str):
                files.append(("adapter_id", (None, str(self.adapter_id).encode(), "text/plain")))
            else:
                files.append(("adapter_id", (None, str(self.adapter_id).encode(), "text/plain")))

        if not isinstance(self.guidance_scale, Unset):
            files.append(("guidance_scale", (None, str(self.guidance_scale).encode(), "text/plain")))

        if not isinstance(self.image_guidance_scale, Unset):
            files.append(("image_guidance_scale", (None, str(self.image_guidance_scale).encode(), "text/plain")))

        if not isinstance(self.mask, Unset):
            if isinstance(self.mask, File):
                files.append(("mask", self.mask.to_tuple()))
            else:
                files.append(("mask", (None, str(self.mask).encode(), "text/plain")))

        if not isinstance(self.model, Unset):
            if isinstance(self.model, str):
                files.append(("model", (None, str(self.model).encode(), "text/plain")))
            else:
                files.append(("model", (None, str(self.model).encode(), "text/plain")))

        if not isinstance(self.return_attention, Unset):
            files.append(("return_attention", (None, str(self.return_attention).encode(), "text/plain")))

        if not isinstance(self.seed, Unset):
            if isinstance(self.seed, int):
                files.append(("seed", (None, str(self.seed).encode(), "text/plain")))
            else:
                files.append(("seed", (None, str(self.seed).encode(), "text/plain")))

        if not isinstance(self.steps, Unset):
            if isinstance(self.steps, int):
                files.append(("steps", (None, str(self.steps).encode(), "text/plain")))
            else:
                files.append(("steps", (None, str(self.steps).encode(), "text/plain")))

        for prop_name, prop in self.additional_properties.items():
            files.append((prop_name, (None, str(prop).encode(), "text/plain")))

        return files

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        image = File(payload=BytesIO(d.pop("image")))

        instruction = d.pop("instruction")

        def _parse_adapter_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id", UNSET))

        guidance_scale = d.pop("guidance_scale", UNSET)

        image_guidance_scale = d.pop("image_guidance_scale", UNSET)

        def _parse_mask(data: object) -> File | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, bytes):
                    raise TypeError()
                mask_type_0 = File(payload=BytesIO(data))

                return mask_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(File | None | Unset, data)

        mask = _parse_mask(d.pop("mask", UNSET))

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        return_attention = d.pop("return_attention", UNSET)

        def _parse_seed(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        seed = _parse_seed(d.pop("seed", UNSET))

        def _parse_steps(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        steps = _parse_steps(d.pop("steps", UNSET))

        body_create_edit = cls(
            image=image,
            instruction=instruction,
            adapter_id=adapter_id,
            guidance_scale=guidance_scale,
            image_guidance_scale=image_guidance_scale,
            mask=mask,
            model=model,
            return_attention=return_attention,
            seed=seed,
            steps=steps,
        )

        body_create_edit.additional_properties = d
        return body_create_edit

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
