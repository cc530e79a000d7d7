"""The trainable LoRA adapter on the UNet and its optimizer."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from diffusers.training_utils import cast_training_params
from peft import LoraConfig

from rl4pix_core.errors import ConfigError
from rl4pix_core.ppo.config import LoraSection, TrainConfig

logger = logging.getLogger(__name__)

ADAPTER_NAME = "default"


def add_lora(unet: UNet2DConditionModel, lora: LoraSection) -> list[torch.nn.Parameter]:
    """Freeze the UNet, add a LoRA adapter to `lora.target_modules` and return its parameters.

    The LoRA parameters are kept in fp32 whatever the UNet's dtype, so small updates are not lost
    to fp16 or bf16 rounding. `init_lora_weights=True` starts B at zero, so the adapted UNet first
    computes exactly what the base UNet does.
    """
    unet.requires_grad_(False)
    lora_config = LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        target_modules=list(lora.target_modules),
        init_lora_weights=True,
    )
    try:
        unet.add_adapter(lora_config, adapter_name=ADAPTER_NAME)
    except ValueError as error:
        raise ConfigError(
            f"invalid value {lora.target_modules!r} for 'lora.target_modules': {error}. Use UNet attention "
            "module names such as to_q, to_k, to_v, to_out.0"
        ) from error
    cast_training_params(unet, dtype=torch.float32)
    params = [param for param in unet.parameters() if param.requires_grad]
    logger.info(
        "added LoRA rank %d alpha %g on %s: %d trainable parameters",
        lora.rank,
        lora.alpha,
        lora.target_modules,
        sum(param.numel() for param in params),
    )
    return params


def lora_adapter_metadata(unet: UNet2DConditionModel) -> dict[str, Any]:
    """Return the peft LoraConfig of the trained adapter as a dict, as diffusers stores it next to the weights.

    peft keeps `target_modules` as a set, whose order changes between processes. Sorting it makes the
    saved file, and so its hash, depend only on the weights and the configuration.
    """
    metadata = unet.peft_config[ADAPTER_NAME].to_dict()
    for key, value in metadata.items():
        if isinstance(value, (set, frozenset)):
            metadata[key] = sorted(value)
    return metadata


def make_optimizer(params: Iterable[torch.nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Build AdamW over `params`: bitsandbytes' 8-bit AdamW when requested and usable, else torch's."""
    train = config.train
    options = {
        "lr": train.learning_rate,
        "betas": (train.adam_beta1, train.adam_beta2),
        "weight_decay": train.adam_weight_decay,
        "eps": train.adam_epsilon,
    }
    params = list(params)
    adam_class = _adam_class(train.use_8bit_adam)
    logger.info("optimizer %s.%s, lr %g", adam_class.__module__, adam_class.__name__, train.learning_rate)
    return adam_class(params, **options)


def _adam_class(use_8bit_adam: bool) -> type[torch.optim.Optimizer]:
    if not use_8bit_adam:
        return torch.optim.AdamW
    if not torch.cuda.is_available():
        logger.info("train.use_8bit_adam is set but CUDA is not available; using torch AdamW")
        return torch.optim.AdamW
    try:
        import bitsandbytes
    except ImportError:
        logger.warning(
            "train.use_8bit_adam is set but bitsandbytes is not installed; using torch AdamW "
            "(install rl4pix[gpu] for 8-bit AdamW)"
        )
        return torch.optim.AdamW
    return bitsandbytes.optim.AdamW8bit
