"""The PPO trainer on the tiny preset: log-probability consistency, LoRA updates, outputs, cancellation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rl4pix_core.data.synthetic import write_synthetic_magicbrush
from rl4pix_core.ddim import ddim_step_with_log_prob
from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.errors import CheckpointError, ConfigError
from rl4pix_core.loading import load_components
from rl4pix_core.ppo import trainer as trainer_module
from rl4pix_core.ppo.checkpoint import LORA_WEIGHT_NAME
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.lora import add_lora
from rl4pix_core.ppo.trainer import TrainerCallbacks, train

# Two samples per epoch (so batch statistics give nonzero advantages), two DDIM steps, one
# trained timestep per sample: each micro-batch is one optimizer step.
TINY_RUN = [
    "model=tiny",
    "resolution=64",
    "sample.num_steps=2",
    "sample.batch_size=2",
    "sample.num_batches_per_epoch=1",
    "train.batch_size=1",
    "train.timestep_fraction=0.5",
    "train.learning_rate=1e-3",
    "num_epochs=1",
    "save_freq=1",
]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_synthetic_magicbrush(
        tmp_path_factory.mktemp("data") / "magicbrush", count=3, size=64, seed=0
    )


def _config(logdir: Path, dataset: Path, *extra: str):
    return load_config(None, [*TINY_RUN, f"data.path={dataset}", f"logdir={logdir}", *extra])


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, dataset):
    """Train one epoch, keeping the trainer's components and every progress event."""
    logdir = tmp_path_factory.mktemp("run") / "logs"
    loaded = []
    events = []

    def recording_load(*args, **kwargs):
        components = load_components(*args, **kwargs)
        loaded.append(components)
        return components

    patch = pytest.MonkeyPatch()
    patch.setattr(trainer_module, "load_components", recording_load)
    try:
        result = train(
            _config(logdir, dataset),
            TrainerCallbacks(
                on_progress=lambda epoch, step, metrics: events.append((epoch, step, dict(metrics)))
            ),
        )
    finally:
        patch.undo()
    return {"result": result, "components": loaded[0], "events": events, "logdir": logdir}


def _initial_lora(config) -> dict[str, torch.Tensor]:
    components = load_components("tiny", device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        add_lora(components.unet, config.lora)
    return {
        name: param.detach().clone() for name, param in components.unet.named_parameters() if "lora_" in name
    }


def test_trainer_completes(one_epoch):
    result = one_epoch["result"]

    assert result.status == "completed"
    assert result.epochs_completed == 1
    assert result.global_step == 2


def test_trainer_first_step_ratio_is_one(one_epoch):
    train_events = [metrics for _, _, metrics in one_epoch["events"] if metrics["phase"] == "train"]

    first = train_events[0]
    assert abs(first["ratio"] - 1.0) < 1e-5
    assert first["approx_kl"] < 1e-10
    assert first["clipfrac"] == 0.0


def test_trainer_epoch_changes_lora(one_epoch, dataset):
    unet = one_epoch["components"].unet
    initial = _initial_lora(_config(one_epoch["logdir"], dataset))
    trained = {name: param for name, param in unet.named_parameters() if "lora_" in name}

    assert trained.keys() == initial.keys()
    assert any(not torch.equal(trained[name], initial[name]) for name in initial)


def test_trainer_keeps_base_weights(one_epoch):
    unet = one_epoch["components"].unet
    fresh = load_components("tiny", device="cpu").unet.state_dict()

    for name, param in unet.named_parameters():
        if "lora_" in name:
            continue
        base_name = name.replace(".base_layer", "")
        assert not param.requires_grad, name
        assert torch.equal(param, fresh[base_name]), name


def test_trainer_lora_params_fp32(one_epoch):
    unet = one_epoch["components"].unet

    for name, param in unet.named_parameters():
        if "lora_" in name:
            assert param.dtype == torch.float32, name


def test_trainer_writes_outputs(one_epoch):
    logdir = one_epoch["logdir"]
    lines = (logdir / "metrics.jsonl").read_text().splitlines()
    record = json.loads(lines[0])

    assert len(lines) == 1
    for name in (
        "reward_mean",
        "reward_std",
        "attention_similarity_mean",
        "clip_loss_mean",
        "loss",
        "approx_kl",
        "clipfrac",
        "learning_rate",
        "sampling_seconds",
        "training_seconds",
    ):
        assert np.isfinite(record[name]), name
    assert (logdir / "reward_curve.png").is_file()
    assert Image.open(logdir / "samples" / "epoch-1.png").size == (4 * 64, 2 * 64)
    assert (logdir / "checkpoints" / "checkpoint-1" / LORA_WEIGHT_NAME).is_file()


def test_trainer_lora_changes_plain_diffusers_output(one_epoch):
    pipeline = load_components("tiny", device="cpu").pipeline
    image = Image.open(one_epoch["logdir"] / "samples" / "epoch-1.png").crop((0, 0, 64, 64))

    def edit():
        generator = torch.Generator().manual_seed(0)
        return pipeline(
            "make the red square blue",
            image=image,
            num_inference_steps=2,
            generator=generator,
            output_type="np",
        ).images

    before = edit()
    pipeline.load_lora_weights(str(one_epoch["logdir"] / "checkpoints" / "checkpoint-1"))
    after = edit()

    assert not np.array_equal(before, after)


def test_trainer_resume_incompatible_raises(one_epoch, dataset, tmp_path):
    checkpoint = one_epoch["logdir"] / "checkpoints" / "checkpoint-1"
    config = _config(tmp_path / "logs", dataset, "lora.rank=8", "num_epochs=2", f"resume_from={checkpoint}")

    with pytest.raises(CheckpointError, match="LoRA rank 4"):
        train(config)


def test_trainer_resume_missing_raises(dataset, tmp_path):
    config = _config(tmp_path / "logs", dataset, f"resume_from={tmp_path / 'absent'}")

    with pytest.raises(CheckpointError, match="no checkpoint found"):
        train(config)


def test_trainer_fresh_run_rejects_used_logdir(one_epoch, dataset):
    with pytest.raises(ConfigError, match="already contains checkpoints"):
        train(_config(one_epoch["logdir"], dataset))


def test_trainer_cancel_saves_checkpoint(dataset, tmp_path):
    polls = []

    def should_cancel() -> bool:
        polls.append(1)
        return len(polls) >= 2  # after the sampling batch, before the first training step

    result = train(_config(tmp_path / "logs", dataset), TrainerCallbacks(should_cancel=should_cancel))

    assert result.status == "cancelled"
    assert result.epochs_completed == 0
    assert result.checkpoint == tmp_path / "logs" / "checkpoints" / "checkpoint-0"
    assert (result.checkpoint / LORA_WEIGHT_NAME).is_file()
    state = json.loads((result.checkpoint / "trainer_state.json").read_text())
    assert state["extra"]["partial_epoch"] is True


def test_recomputed_log_probs_match_sampling():
    """Every step of a guided trajectory re-scores to its sampling log-probability under a random LoRA."""
    config = load_config(None, ["model=tiny"])
    components = load_components("tiny", device="cpu")
    params = add_lora(components.unet, config.lora)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in params:
            param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
    editor = InstructEditor(components, attention_downsample=4, max_side=64)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    requests = [
        EditRequest(image, "make it blue", seed=seed, steps=3, guidance_scale=5.0, eta=1.0) for seed in (1, 2)
    ]
    trajectory = editor.sample_trajectories(requests)
    components.unet.train()

    rows = torch.tensor([1, 0])  # another order than sampling, as the shuffled training phase uses
    for j in range(3):
        timesteps = trajectory.timesteps[j].repeat(2)
        with torch.no_grad():
            noise_pred = editor.predict_noise(
                trajectory.latents[rows, j],
                timesteps,
                trajectory.conditioning.select(rows),
                trajectory.guidance_scale[rows],
                trajectory.image_guidance_scale[rows],
                use_guidance=True,
            )
        _, log_prob = ddim_step_with_log_prob(
            components.scheduler,
            noise_pred,
            timesteps,
            trajectory.latents[rows, j],
            1.0,
            prev_latents=trajectory.latents[rows, j + 1],
        )
        ratio = torch.exp(log_prob - trajectory.log_probs[rows, j])
        assert torch.allclose(ratio, torch.ones(2), atol=1e-5), (j, ratio)
