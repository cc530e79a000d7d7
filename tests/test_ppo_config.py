"""Loading, validating and documenting the PPO training config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rl4pix_core.errors import ConfigError
from rl4pix_core.ppo.config import TrainConfig, dump_config, iter_config_reference, load_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "training.md"

# The training table of InstructRL4Pix, which the defaults must reproduce.
PAPER_DEFAULTS = {
    "seed": 42,
    "logdir": "logs",
    "num_epochs": 200,
    "save_freq": 50,
    "num_checkpoint_limit": 5,
    "mixed_precision": "no",
    "allow_tf32": True,
    "resume_from": "",
    "use_lora": True,
    "sample.num_steps": 50,
    "sample.eta": 1.0,
    "sample.guidance_scale": 5.0,
    "sample.batch_size": 1,
    "sample.num_batches_per_epoch": 2,
    "train.batch_size": 1,
    "train.use_8bit_adam": True,
    "train.learning_rate": 2e-4,
    "train.adam_beta1": 0.9,
    "train.adam_beta2": 0.999,
    "train.adam_weight_decay": 1e-4,
    "train.adam_epsilon": 1e-8,
    "train.gradient_accumulation_steps": 1,
    "train.max_grad_norm": 1.0,
    "train.num_inner_epochs": 1,
    "train.cfg": True,
    "train.adv_clip_max": 5,
    "train.clip_range": 1e-4,
    "train.timestep_fraction": 1.0,
    "per_prompt_stat_tracking.buffer_size": 16,
    "per_prompt_stat_tracking.min_count": 16,
}


def _get(config: TrainConfig, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("key,expected", sorted(PAPER_DEFAULTS.items()))
def test_config_default_matches_paper(key, expected):
    assert _get(TrainConfig(), key) == expected


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "model: tiny\ntrain:\n  learning_rate: 1.0e-3\nsample:\n  num_steps: 8\n", encoding="utf-8"
    )

    config = load_config(str(path), ["sample.num_steps=4", "train.cfg=false", "data.limit=null"])

    assert config.model == "tiny"
    assert config.train.learning_rate == 1e-3
    assert config.sample.num_steps == 4
    assert config.train.cfg is False
    assert config.data.limit is None


def test_config_override_list_value():
    config = load_config(None, ["lora.target_modules=[to_q, to_v]"])

    assert config.lora.target_modules == ["to_q", "to_v"]


def test_config_dump_round_trip(tmp_path):
    config = load_config(None, ["model=tiny", "seed=7", "train.learning_rate=3e-5"])
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_config(config), encoding="utf-8")

    assert load_config(str(path), []) == config


def test_config_dump_lists_every_key():
    dumped = yaml.safe_load(dump_config(TrainConfig()))

    for key, _, _ in iter_config_reference():
        section = dumped
        for part in key.split("."):
            assert part in section, key
            section = section[part]


@pytest.mark.parametrize("override", ["train.learnin_rate=1e-4", "nonsense=1", "seed.value=3"])
def test_config_unknown_override_names_key(override):
    key = override.partition("=")[0]

    with pytest.raises(ConfigError, match=f"unknown configuration key '{key}'"):
        load_config(None, [override])


def test_config_unknown_file_key_names_key(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("sample:\n  num_step: 4\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config(str(path), [])

    assert "'sample.num_step'" in str(raised.value)
    assert "num_steps" in str(raised.value)  # the valid keys are listed


@pytest.mark.parametrize(
    "override,key,bad_value,allowed",
    [
        ("train.learning_rate=-1", "train.learning_rate", "-1", "(0, 1]"),
        ("sample.eta=0", "sample.eta", "0", "(0, 1]"),
        ("mixed_precision=fp8", "mixed_precision", "'fp8'", "no, fp16 or bf16"),
        ("train.clip_range=2", "train.clip_range", "2", "(0, 1)"),
        ("resolution=100", "resolution", "100", "multiple of 8"),
        ("per_prompt_stat_tracking.buffer_size=0", "per_prompt_stat_tracking.buffer_size", "0", "1..100000"),
        ("train.cfg=maybe", "train.cfg", "'maybe'", "three-way"),
    ],
)
def test_config_bad_value_names_key_value_range(override, key, bad_value, allowed):
    with pytest.raises(ConfigError) as raised:
        load_config(None, [override])

    message = str(raised.value)
    assert f"'{key}'" in message
    assert f"invalid value {bad_value}" in message
    assert allowed in message


def test_config_batch_size_must_divide_samples():
    with pytest.raises(ConfigError, match="train.batch_size 3 must divide"):
        load_config(None, ["train.batch_size=3"])


def test_config_accumulation_must_divide_micro_batches():
    with pytest.raises(ConfigError, match="gradient_accumulation_steps 3 must divide"):
        load_config(None, ["train.gradient_accumulation_steps=3"])


def test_config_no_trained_timestep():
    with pytest.raises(ConfigError, match="trains no timestep"):
        load_config(None, ["sample.num_steps=2", "train.timestep_fraction=0.2"])


def test_config_full_finetune_rejected():
    with pytest.raises(ConfigError, match="use_lora"):
        load_config(None, ["use_lora=false"])


def test_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "absent.yaml"), [])


def test_config_malformed_override():
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.learning_rate"])


def test_config_non_mapping_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(path), [])


def test_training_doc_lists_every_key():
    text = DOCS.read_text(encoding="utf-8")

    for key, _, _ in iter_config_reference():
        assert f"`{key}`" in text, key
