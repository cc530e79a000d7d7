from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.edit_out_status import EditOutStatus, check_edit_out_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.edit_out_reward_type_0 import EditOutRewardType0
    from ..models.edit_out_timings import EditOutTimings
    from ..models.edit_sizes import EditSizes
    from ..models.edit_urls import EditUrls
    from ..models.job_error import JobError


T = TypeVar("T", bound="EditOut")


@_attrs_define
class EditOut:
    """
    Attributes:
        adapter_id (None | str):
        created_at (datetime.datetime):
        finished_at (datetime.datetime | None):
        guidance_scale (float):
        id (str):
        image_guidance_scale (float):
        instruction (str):
        model (str):
        return_attention (bool):
        seed (int):
        sizes (EditSizes):
        started_at (datetime.datetime | None):
        status (EditOutStatus):
        steps (int):
        urls (EditUrls):
        batch_size (int | None | Unset): number of edits the worker ran in the same batch
        error (JobError | None | Unset):
        reward (EditOutRewardType0 | None | Unset): reward components, when a mask was sent
        timings (EditOutTimings | Unset): seconds per phase: queue, model_load (0 when the worker had the model loaded),
            the model phases (encode, denoise, decode), batch, png_encode, total
    """

    adapter_id: None | str
    created_at: datetime.datetime
    finished_at: datetime.datetime | None
    guidance_scale: float
    id: str
    image_guidance_scale: float
    instruction: str
    model: str
    return_attention: bool
    seed: int
    sizes: EditSizes
    started_at: datetime.datetime | None
    status: EditOutStatus
    steps: int
    urls: EditUrls
    batch_size: int | None | Unset = UNSET
    error: JobError | None | Unset = UNSET
    reward: EditOutRewardType0 | None | Unset = UNSET
    timings: EditOutTimings | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.edit_out_reward_type_0 import EditOutRewardType0
        from ..models.job_error import JobError

        adapter_id: None | str
        adapter_id = self.adapter_id

        created_at = self.created_at.isoformat()

        finished_at: None | str
        if isinstance(self.finished_at, datetime.datetime):
            finished_at = self.finished_at.isoformat()
        else:
            finished_at = self.finished_at

        guidance_scale = self.guidance_scale

        id = self.id

        image_guidance_scale = self.image_guidance_scale

        instruction = self.instruction

        model = self.model

        return_attention = self.return_attention

        seed = self.seed

        sizes = self.sizes.to_dict()

        started_at: None | str
        if isinstance(self.started_at, datetime.datetime):
            started_at = self.started_at.isoformat()
        else:
            started_at = self.started_at

        status: str = self.status

        steps = self.steps

        urls = self.urls.to_dict()

        batch_size: int | None | Unset
        if isinstance(self.batch_size, Unset):
            batch_size = UNSET
        else:
            batch_size = self.batch_size

        error: dict[str, Any] | None | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        elif isinstance(self.error, JobError):
            error = self.error.to_dict()
        else:
            error = self.error

        reward: dict[str, Any] | None | Unset
        if isinstance(self.reward, Unset):
            reward = UNSET
        elif isinstance(self.reward, EditOutRewardType0):
            reward = self.reward.to_dict()
        else:
            reward = self.reward

        timings: dict[str, Any] | Unset = UNSET
        if not isinstance(self.timings, Unset):
            timings = self.timings.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "adapter_id": adapter_id,
                "created_at": created_at,
                "finished_at": finished_at,
                "guidance_scale": guidance_scale,
                "id": id,
                "image_guidance_scale": image_guidance_scale,
                "instruction": instruction,
                "model": model,
                "return_attention": return_attention,
                "seed": seed,
                "sizes": sizes,
                "started_at": started_at,
                "status": status,
                "steps": steps,
                "urls": urls,
            }
        )
        if batch_size is not UNSET:
            field_dict["batch_size"] = batch_size
        if error is not UNSET:
            field_dict["error"] = error
        if reward is not UNSET:
            field_dict["reward"] = reward
        if timings is not UNSET:
            field_dict["timings"] = timings

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.edit_out_reward_type_0 import EditOutRewardType0
        from ..models.edit_out_timings import EditOutTimings
        from ..models.edit_sizes import EditSizes
        from ..models.edit_urls import EditUrls
        from ..models.job_error import JobError

        d = dict(src_dict)

        def _parse_adapter_id(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id"))

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

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

        guidance_scale = d.pop("guidance_scale")

        id = d.pop("id")

        image_guidance_scale = d.pop("image_guidance_scale")

        instruction = d.pop("instruction")

        model = d.pop("model")

        return_attention = d.pop("return_attention")

        seed = d.pop("seed")

        sizes = EditSizes.from_dict(d.pop("sizes"))

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

        status = check_edit_out_status(d.pop("status"))

        steps = d.pop("steps")

        urls = EditUrls.from_dict(d.pop("urls"))

        def _parse_batch_size(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        batch_size = _parse_batch_size(d.pop("batch_size", UNSET))

        def _parse_error(data: object) -> JobError | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                error_type_0 = JobError.from_dict(data)

                return error_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(JobError | None | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_reward(data: object) -> EditOutRewardType0 | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                reward_type_0 = EditOutRewardType0.from_dict(data)

                return reward_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(EditOutRewardType0 | None | Unset, data)

        reward = _parse_reward(d.pop("reward", UNSET))

        _timings = d.pop("timings", UNSET)
        timings: EditOutTimings | Unset
        if isinstance(_timings, Unset):
            timings = UNSET
        else:
            timings = EditOutTimings.from_dict(_timings)

        edit_out = cls(
            adapter_id=adapter_id,
            created_at=created_at,
            finished_at=finished_at,
            guidance_scale=guidance_scale,
            id=id,
            image_guidance_scale=image_guidance_scale,
            instruction=instruction,
            model=model,
            return_attention=return_attention,
            seed=seed,
            sizes=sizes,
            started_at=started_at,
            status=status,
            steps=steps,
            urls=urls,
            batch_size=batch_size,
            error=error,
            reward=reward,
            timings=timings,
        )

        edit_out.additional_properties = d
        return edit_out

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
