"""The gateway's list of LoRA target module names matches the InstructPix2Pix UNet.

This builds the `tiny` preset, which has the same block layout as Stable Diffusion 1.5, so it
needs torch. The gateway itself only stores the names.
"""

from __future__ import annotations

import pytest

from service.train_config import LORA_TARGET_MODULES


@pytest.fixture(scope="module")
def unet():
    from rl4pix_core.loading import load_components

    return load_components("tiny", device="cpu").unet


def matching_modules(unet, name: str) -> list:
    # PEFT matches a target name against the whole module path or its end.
    return [module for path, module in unet.named_modules() if path == name or path.endswith("." + name)]


@pytest.mark.parametrize("name", sorted(LORA_TARGET_MODULES))
def test_target_name_exists_in_unet(unet, name):
    assert matching_modules(unet, name)


@pytest.mark.parametrize("name", sorted(LORA_TARGET_MODULES))
def test_target_name_is_linear_or_conv(unet, name):
    import torch

    assert all(
        isinstance(module, torch.nn.Linear | torch.nn.Conv2d) for module in matching_modules(unet, name)
    )


def test_peft_accepts_all_target_names(unet):
    from rl4pix_core.ppo.config import LoraSection
    from rl4pix_core.ppo.lora import add_lora

    assert add_lora(unet, LoraSection(target_modules=sorted(LORA_TARGET_MODULES)))
