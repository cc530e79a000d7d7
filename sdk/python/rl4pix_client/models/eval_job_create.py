from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..models.eval_job_create_setting import EvalJobCreateSetting, check_eval_job_create_setting
from ..types import UNSET, Unset

T = TypeVar("T", bound="EvalJobCreate")


@_attrs_define
class EvalJobCreate:
    """
    Attributes:
        dataset_id (str):
        adapter_id (None | str | Unset):
        limit (int | None | Unset): most edit turns to score
        model (None | str | Unset):
        seed (int | Unset):  Default: 0.
        setting (EvalJobCreateSetting | Unset): single-turn edits each ground-truth input; multi-turn feeds back each
            output Default: 'single-turn'.
        steps (int | None | Unset):
    """

    dataset_id: str
    adapter_id: None | str | Unset = UNSET
    limit: int | None | Unset = UNSET
    model: None | str | Unset = UNSET
    seed: int | Unset = 0
    setting: EvalJobCreateSetting | Unset = "single-turn"
    steps: int | None | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dataset_id = self.dataset_id

        adapter_id: None | str | Unset
        if isinstance(self.adapter_id, Unset):
            adapter_id = UNSET
        else:
            adapter_id = self.adapter_id

        limit: int | None | Unset
        if isinstance(self.limit, Unset):
            limit = UNSET
        else:
            limit = self.limit

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        seed = self.seed

        setting: str | Unset = UNSET
        if not isinstance(self.setting, Unset):
            setting = self.setting

        steps: int | None | Unset
        if isinstance(self.steps, Unset):
            steps = UNSET
        else:
            steps = self.steps

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset_id": dataset_id,
            }
        )
        if adapter_id is not UNSET:
            field_dict["adapter_id"] = adapter_id
        if limit is not UNSET:
            field_dict["limit"] = limit
        if model is not UNSET:
            field_dict["model"] = model
        if seed is not UNSET:
            field_dict["seed"] = seed
        if setting is not UNSET:
            field_dict["setting"] = setting
        if steps is not UNSET:
            field_dict["steps"] = steps

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        dataset_id = d.pop("dataset_id")

        def _parse_adapter_id(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        adapter_id = _parse_adapter_id(d.pop("adapter_id", UNSET))

        def _parse_limit(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        limit = _parse_limit(d.pop("limit", UNSET))

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        seed = d.pop("seed", UNSET)

        _setting = d.pop("setting", UNSET)
        setting: EvalJobCreateSetting | Unset
        if isinstance(_setting, Unset):
            setting = UNSET
        else:
            setting = check_eval_job_create_setting(_setting)

        def _parse_steps(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        steps = _parse_steps(d.pop("steps", UNSET))

        eval_job_create = cls(
            dataset_id=dataset_id,
            adapter_id=adapter_id,
            limit=limit,
            model=model,
            seed=seed,
            setting=setting,
            steps=steps,
        )

        return eval_job_create
