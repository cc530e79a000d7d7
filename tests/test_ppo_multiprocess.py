"""`rl4pix train` as two CPU processes with torch.distributed (gloo), as torchrun starts them.

accelerate 1.16's `accelerate launch --cpu --num_processes 2` starts several CPU processes only
through MPI, so this test uses `torch.distributed.run`. The Accelerator in each process reads the
same environment variables either way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import yaml

from rl4pix_core.data.synthetic import write_synthetic_magicbrush
from rl4pix_core.ppo.checkpoint import LORA_WEIGHT_NAME


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_process_training_on_cpu(tmp_path):
    dataset = write_synthetic_magicbrush(tmp_path / "data", count=3, size=64, seed=2)
    config = {
        "model": "tiny",
        "resolution": 64,
        "logdir": str(tmp_path / "logs"),
        "num_epochs": 1,
        "save_freq": 1,
        "device": "cpu",
        "async_reward": True,
        "sample": {"num_steps": 2, "batch_size": 1, "num_batches_per_epoch": 2},
        "train": {"timestep_fraction": 0.5, "learning_rate": 1e-3},
        "data": {"path": str(dataset)},
    }
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "rl4pix_cli.main",
        "train",
        "--config",
        str(config_file),
        "--no-progress",
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}

    completed = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=600, env=environment
    )

    assert completed.returncode == 0, completed.stderr[-4000:]
    lines = (tmp_path / "logs" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # written by the main process only
    record = json.loads(lines[0])
    assert record["samples"] == 4  # 2 per process, gathered from both
    assert record["global_step"] == 2
    assert (tmp_path / "logs" / "checkpoints" / "checkpoint-1" / LORA_WEIGHT_NAME).is_file()
    # Saving checks that both processes hold the same LoRA weights, which needs synced gradients.
    assert "LoRA weights differ" not in completed.stderr
