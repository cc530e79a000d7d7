"""The LoRA metadata saved next to the weights must not depend on the process's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys

PRINT_METADATA = """
import json
from rl4pix_core.loading import load_components
from rl4pix_core.ppo.config import load_config
from rl4pix_core.ppo.lora import add_lora, lora_adapter_metadata

components = load_components("tiny")
add_lora(components.unet, load_config(None, ["model=tiny"]).lora)
print(json.dumps(lora_adapter_metadata(components.unet)))
"""


def metadata_with_hash_seed(seed: str) -> str:
    environment = {**os.environ, "PYTHONHASHSEED": seed}
    completed = subprocess.run(
        [sys.executable, "-c", PRINT_METADATA], env=environment, capture_output=True, text=True, check=True
    )
    return completed.stdout.strip().splitlines()[-1]


def test_metadata_same_across_hash_seeds():
    first = metadata_with_hash_seed("1")
    second = metadata_with_hash_seed("2")
    assert '"target_modules": ["to_k", "to_out.0", "to_q", "to_v"]' in first
    assert first == second
