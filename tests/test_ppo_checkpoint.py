"""Saving, rotating and resuming PPO checkpoints, and loading their LoRA in plain diffusers."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from rl4pix_core.errors import CheckpointError
from rl4pix_core.loading import load_components
from rl4pix_core.ppo.checkpoint import (
    LORA_WEIGHT_NAME,
    find_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    should_save,
)
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.lora import add_lora, make_optimizer
from rl4pix_core.ppo.stat_tracking import PerPromptStatTracker

KEY = ("img-a", "make it blue")


def _trainable(config, seed: int = 0):
    """Return a tiny UNet with a LoRA adapter whose weights are random, and its optimizer."""
    components = load_components("tiny", device="cpu")
    params = add_lora(components.unet, config.lora)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in params:
            param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
    optimizer = make_optimizer(params, config)
    return components, params, optimizer


def _take_optimizer_step(params, optimizer):
    loss = sum((param**2).sum() for param in params)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()


@pytest.fixture
def config(tmp_path):
    return load_config(None, ["model=tiny", f"logdir={tmp_path / 'logs'}", "num_checkpoint_limit=2"])


def test_checkpoint_files(config):
    components, _, optimizer = _trainable(config)

    path = save_checkpoint(
        config.logdir, 3, components.unet, optimizer, PerPromptStatTracker(16, 16), config, 7
    )

    assert path.name == "checkpoint-3"
    for name in (
        LORA_WEIGHT_NAME,
        "optimizer.pt",
        "rng_state.pt",
        "trainer_state.json",
        "config.yaml",
        "metadata.json",
    ):
        assert (path / name).is_file(), name
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["base_model"] == "tiny"
    assert metadata["lora"] == {
        "rank": 4,
        "alpha": 4.0,
        "target_modules": ["to_q", "to_k", "to_v", "to_out.0"],
    }


def test_checkpoint_round_trip(config):
    components, params, optimizer = _trainable(config, seed=1)
    _take_optimizer_step(params, optimizer)
    tracker = PerPromptStatTracker(16, 16)
    tracker.update([KEY, KEY], [0.1, 0.5])
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    save_checkpoint(config.logdir, 2, components.unet, optimizer, tracker, config, 11, extra={"note": "x"})
    expected_draws = (random.random(), float(np.random.rand()), torch.rand(1).item())

    restored_components, restored_params, restored_optimizer = _trainable(config, seed=2)
    restored_tracker = PerPromptStatTracker(16, 16)
    state = load_checkpoint(
        config.logdir, config, restored_components.unet, restored_optimizer, restored_tracker
    )

    assert state.epoch == 2
    assert state.global_step == 11
    assert state.extra == {"note": "x"}
    for saved, restored in zip(params, restored_params):
        assert torch.equal(saved, restored)
    saved_adam = optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(restored_optimizer.state_dict()["state"][0]["exp_avg"], saved_adam)
    assert restored_tracker.state_dict() == tracker.state_dict()
    assert (random.random(), float(np.random.rand()), torch.rand(1).item()) == expected_draws


def test_checkpoint_lora_loads_in_plain_diffusers(config):
    components, _, optimizer = _trainable(config, seed=3)
    path = save_checkpoint(
        config.logdir, 1, components.unet, optimizer, PerPromptStatTracker(16, 16), config, 1
    )
    pipeline = load_components("tiny", device="cpu").pipeline
    image = torch.rand(1, 3, 64, 64)

    def edit():
        generator = torch.Generator().manual_seed(0)
        return pipeline(
            "make it blue", image=image, num_inference_steps=2, generator=generator, output_type="np"
        ).images

    before = edit()
    pipeline.load_lora_weights(str(path))
    after = edit()

    assert not np.allclose(before, after)


def test_checkpoint_limit_keeps_newest(config):
    components, _, optimizer = _trainable(config)
    tracker = PerPromptStatTracker(16, 16)

    for epoch in (1, 2, 3, 4):
        save_checkpoint(config.logdir, epoch, components.unet, optimizer, tracker, config, epoch)

    root = find_checkpoint(config.logdir).parent
    assert [path.name for path in list_checkpoints(root)] == ["checkpoint-3", "checkpoint-4"]
    assert [path.name for path in root.iterdir() if path.name.startswith(".")] == []


def test_checkpoint_failed_write_leaves_nothing(config, monkeypatch):
    components, _, optimizer = _trainable(config)

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        save_checkpoint(config.logdir, 1, components.unet, optimizer, PerPromptStatTracker(16, 16), config, 1)

    with pytest.raises(CheckpointError, match="no checkpoint found"):
        find_checkpoint(config.logdir)


def test_checkpoint_resume_latest_from_logdir(config):
    components, _, optimizer = _trainable(config)
    tracker = PerPromptStatTracker(16, 16)
    for epoch in (5, 10):
        save_checkpoint(config.logdir, epoch, components.unet, optimizer, tracker, config, epoch)

    assert find_checkpoint(config.logdir).name == "checkpoint-10"


def test_checkpoint_missing_raises(config, tmp_path):
    components, _, optimizer = _trainable(config)

    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_checkpoint(
            tmp_path / "nowhere", config, components.unet, optimizer, PerPromptStatTracker(16, 16)
        )


@pytest.mark.parametrize(
    "override,message",
    [
        ("model=sd15-random", "base model 'tiny'"),
        ("lora.rank=8", "LoRA rank 4"),
        ("lora.alpha=8", "LoRA alpha 4.0"),
        ("lora.target_modules=[to_q, to_v]", "target modules"),
    ],
)
def test_checkpoint_incompatible_raises(config, override, message):
    components, _, optimizer = _trainable(config)
    path = save_checkpoint(
        config.logdir, 1, components.unet, optimizer, PerPromptStatTracker(16, 16), config, 1
    )
    other = load_config(None, ["model=tiny", override])

    # The metadata check runs before any module is touched, so the original UNet can be passed.
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path, other, components.unet, optimizer, PerPromptStatTracker(16, 16))


def test_checkpoint_incomplete_raises(config):
    components, _, optimizer = _trainable(config)
    path = save_checkpoint(
        config.logdir, 1, components.unet, optimizer, PerPromptStatTracker(16, 16), config, 1
    )
    (path / "optimizer.pt").unlink()

    with pytest.raises(CheckpointError, match="optimizer.pt"):
        load_checkpoint(path, config, components.unet, optimizer, PerPromptStatTracker(16, 16))


@pytest.mark.parametrize(
    "epoch,expected",
    [(1, False), (2, True), (3, False), (4, True), (5, True)],
)
def test_checkpoint_save_schedule(epoch, expected):
    config = load_config(None, ["num_epochs=5", "save_freq=2"])

    assert should_save(epoch, config) is expected
