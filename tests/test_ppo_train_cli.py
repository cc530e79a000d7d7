"""`rl4pix train` end to end on real photos (MagicBrush layout without ground-truth outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rl4pix_cli.main import main
from rl4pix_core.data.magicbrush import EditTurn
from rl4pix_core.ppo.checkpoint import LORA_WEIGHT_NAME
from rl4pix_core.ppo.config import TrainConfig, dump_config

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"


def test_train_print_config_defaults(capsys):
    assert main(["train", "--print-config"]) == 0

    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == yaml.safe_load(dump_config(TrainConfig()))


def test_train_print_config_applies_overrides(tmp_path, capsys):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("seed: 3\nsample:\n  num_steps: 10\n", encoding="utf-8")

    code = main(
        [
            "train",
            "--config",
            str(config_file),
            "--set",
            "sample.num_steps=4",
            "--resume-from",
            "ckpt",
            "--print-config",
        ]
    )

    printed = yaml.safe_load(capsys.readouterr().out)
    assert code == 0
    assert printed["seed"] == 3
    assert printed["sample"]["num_steps"] == 4
    assert printed["resume_from"] == "ckpt"


def test_train_unknown_key_exits_2(capsys):
    assert main(["train", "--set", "train.lr=1"]) == 2

    assert "unknown configuration key 'train.lr'" in capsys.readouterr().err


@pytest.mark.skipif(
    not REAL_PHOTOS.is_dir(), reason="the real-photos cases are not checked out next to the repository"
)
def test_train_real_photos_end_to_end(tmp_path, monkeypatch, capsys):
    def fail_target_read(self):
        raise AssertionError(f"training read the ground-truth output of {self.img_id}")

    monkeypatch.setattr(EditTurn, "target_image", fail_target_read)
    logdir = tmp_path / "logs"
    overrides = [
        "model=tiny",
        "resolution=64",
        f"data.path={REAL_PHOTOS}",
        f"logdir={logdir}",
        "num_epochs=1",
        "sample.num_steps=4",
        "sample.batch_size=2",
        "train.batch_size=2",
        "train.timestep_fraction=0.5",
        "train.gradient_accumulation_steps=2",
    ]

    code = main(["train", "--no-progress", *[item for override in overrides for item in ("--set", override)]])

    assert code == 0
    assert "training completed after 1 epochs" in capsys.readouterr().out
    record = json.loads((logdir / "metrics.jsonl").read_text().splitlines()[0])
    assert record["samples"] == 4
    # 4 samples in micro-batches of 2, each trained at 2 timesteps; 2 micro-batches per optimizer step.
    assert record["global_step"] == 1
    assert (logdir / "checkpoints" / "checkpoint-1" / LORA_WEIGHT_NAME).is_file()
    assert (logdir / "samples" / "epoch-1.png").is_file()
