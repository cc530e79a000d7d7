from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.train_job_create_config import TrainJobCreateConfig


T = TypeVar("T", bound="TrainJobCreate")


@_attrs_define
class TrainJobCreate:
    """
    Attributes:
        dataset_id (str):
        config (TrainJobCreateConfig | Unset): PPO configuration overrides, nested ({'train': {'learning_rate': 1e-4}})
            or dotted ({'train.learning_rate': 1e-4, 'num_epochs': 2})
        model (None | str | Unset): base model; default: the server's default model
    """

    dataset_id: str
    config: TrainJobCreateConfig | Unset = UNSET
    model: None | str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        dataset_id = self.dataset_id

        config: dict[str, Any] | Unset = UNSET
        if not isinstance(self.config, Unset):
            config = self.config.to_dict()

        model: None | str | Unset
        if isinstance(self.model, Unset):
            model = UNSET
        else:
            model = self.model

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "dataset_id": dataset_id,
            }
        )
        if config is not UNSET:
            field_dict["config"] = config
        if model is not UNSET:
            field_dict["model"] = model

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.train_job_create_config import TrainJobCreateConfig

        d = dict(src_dict)
        dataset_id = d.pop("dataset_id")

        _config = d.pop("config", UNSET)
        config: TrainJobCreateConfig | Unset
        if isinstance(_config, Unset):
            config = UNSET
        else:
            config = TrainJobCreateConfig.from_dict(_config)

        def _parse_model(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        model = _parse_model(d.pop("model", UNSET))

        train_job_create = cls(
            dataset_id=dataset_id,
            config=config,
            model=model,
        )

        return train_job_create
