"""A run resumed from a checkpoint ends with the same LoRA as an uninterrupted run (CPU)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from rl4pix_core.data.synthetic import write_synthetic_magicbrush
from rl4pix_core.ppo.checkpoint import LORA_WEIGHT_NAME
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.trainer import train

RUN = [
    "model=tiny",
    "resolution=64",
    "sample.num_steps=2",
    "sample.batch_size=2",
    "sample.num_batches_per_epoch=1",
    "train.timestep_fraction=0.5",
    "train.learning_rate=1e-3",
    "save_freq=1",
    # min_count 1 switches to per-prompt statistics as soon as a prompt is seen, so the
    # tracker state carried by the checkpoint changes the second epoch's advantages.
    "per_prompt_stat_tracking.min_count=1",
]


@pytest.mark.slow
def test_resume_matches_uninterrupted(tmp_path):
    dataset = write_synthetic_magicbrush(tmp_path / "data", count=2, size=64, seed=1)

    def config(logdir, *extra):
        return load_config(None, [*RUN, f"data.path={dataset}", f"logdir={logdir}", *extra])

    straight = train(config(tmp_path / "straight", "num_epochs=2"))
    first_half = train(config(tmp_path / "resumed", "num_epochs=1"))
    resumed = train(config(tmp_path / "resumed", "num_epochs=2", f"resume_from={tmp_path / 'resumed'}"))

    assert first_half.epochs_completed == 1
    assert resumed.epochs_completed == 2
    assert resumed.global_step == straight.global_step
    straight_lora = load_file(str(straight.checkpoint / LORA_WEIGHT_NAME))
    resumed_lora = load_file(str(resumed.checkpoint / LORA_WEIGHT_NAME))
    assert straight_lora.keys() == resumed_lora.keys()
    for name in straight_lora:
        assert torch.equal(straight_lora[name], resumed_lora[name]), name
    straight_state = json.loads((straight.checkpoint / "trainer_state.json").read_text())
    resumed_state = json.loads((resumed.checkpoint / "trainer_state.json").read_text())
    assert resumed_state["stat_tracker"] == straight_state["stat_tracker"]
    resumed_lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in resumed_lines] == [1, 2]
    straight_rewards = [record["reward_mean"] for record in straight.history]
    assert [json.loads(line)["reward_mean"] for line in resumed_lines] == straight_rewards
