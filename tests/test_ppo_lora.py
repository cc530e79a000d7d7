"""The LoRA adapter on the UNet and the optimizer choice."""

from __future__ import annotations

import logging

import pytest
import torch

from rl4pix_core.errors import ConfigError
from rl4pix_core.loading import load_components
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.lora import add_lora, make_optimizer


def test_lora_trainable_params_fp32_on_bf16_unet():
    config = load_config(None, ["model=tiny", "lora.rank=2"])
    unet = load_components("tiny", device="cpu", dtype="bf16").unet

    params = add_lora(unet, config.lora)

    trainable = {name for name, param in unet.named_parameters() if param.requires_grad}
    assert len(params) == len(trainable)
    assert all("lora_" in name for name in trainable)
    assert all(param.dtype == torch.float32 for param in params)
    base = [param for name, param in unet.named_parameters() if "lora_" not in name]
    assert all(param.dtype == torch.bfloat16 for param in base)


def test_lora_targets_only_listed_modules():
    config = load_config(None, ["model=tiny", "lora.target_modules=[to_q]"])
    unet = load_components("tiny", device="cpu").unet

    add_lora(unet, config.lora)

    adapted = {
        name.split(".lora_")[0].rsplit(".", 1)[-1] for name, _ in unet.named_parameters() if "lora_" in name
    }
    assert adapted == {"to_q"}


def test_lora_unknown_target_raises():
    config = load_config(None, ["model=tiny", "lora.target_modules=[not_a_layer]"])
    unet = load_components("tiny", device="cpu").unet

    with pytest.raises(ConfigError, match="lora.target_modules"):
        add_lora(unet, config.lora)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback taken without CUDA")
def test_optimizer_falls_back_without_cuda(caplog):
    config = load_config(None, ["train.use_8bit_adam=true", "train.learning_rate=1e-3"])
    params = [torch.nn.Parameter(torch.zeros(3))]

    with caplog.at_level(logging.INFO, logger="rl4pix_core.ppo.lora"):
        optimizer = make_optimizer(params, config)

    assert type(optimizer) is torch.optim.AdamW
    assert "using torch AdamW" in caplog.text
    group = optimizer.param_groups[0]
    assert group["lr"] == 1e-3
    assert group["betas"] == (0.9, 0.999)
    assert group["weight_decay"] == 1e-4
    assert group["eps"] == 1e-8
