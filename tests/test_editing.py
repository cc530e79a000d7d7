"""Editing on the tiny preset: seeds, sizes, input checks, model and LoRA loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.errors import CheckpointError, InvalidInputError, ModelNotFoundError
from rl4pix_core.images import load_image, load_mask
from rl4pix_core.loading import load_components, load_lora

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"


def real_photo(case: str) -> tuple[Image.Image, np.ndarray]:
    folder = REAL_PHOTOS / "images" / case
    if not folder.is_dir():
        pytest.skip(f"real photographs not found at {folder}")
    image = load_image(folder / f"{case}-input.png")
    return image, load_mask(folder / f"{case}-mask1.png", image.size)


@pytest.fixture(scope="module")
def editor() -> InstructEditor:
    return InstructEditor(load_components("tiny"))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_output_has_input_size(editor):
    image, _ = real_photo("cat-eyes")
    result = editor.edit([EditRequest(image, "make the eyes blue", seed=1, steps=3)])[0]
    assert result.image.size == image.size


def test_same_seed_same_output(editor):
    image, _ = real_photo("coffee-spoon")
    request = EditRequest(image, "replace the spoon", seed=7, steps=3)
    first = editor.edit([request])[0].image
    second = editor.edit([request])[0].image
    assert np.array_equal(pixels(first), pixels(second))


def test_other_seed_other_output(editor):
    image, _ = real_photo("coffee-spoon")
    first = editor.edit([EditRequest(image, "replace the spoon", seed=7, steps=3)])[0].image
    second = editor.edit([EditRequest(image, "replace the spoon", seed=8, steps=3)])[0].image
    assert not np.array_equal(pixels(first), pixels(second))


def test_output_independent_of_batch(editor):
    image, _ = real_photo("rocket-moon")
    other, _ = real_photo("cat-eyes")
    request = EditRequest(image, "add a moon", seed=3, steps=3, eta=0.5)
    alone = editor.edit([request])[0].image
    batched = editor.edit(
        [
            EditRequest(image, "remove the rocket", seed=11, steps=3, eta=0.5),
            request,
            EditRequest(other, "make it night", seed=5, steps=5),
        ]
    )[1].image
    # Batched matrix products may round differently on the CPU, so allow one 8-bit level.
    assert np.abs(pixels(alone) - pixels(batched)).max() <= 1


def test_mask_gives_finite_reward(editor):
    image, mask = real_photo("rocket-moon")
    result = editor.edit([EditRequest(image, "add a full moon", seed=0, steps=3, mask=mask)])[0]
    assert result.reward is not None
    assert np.isfinite(result.reward.total)
    assert -1.0 <= result.reward.attention_similarity <= 1.0


def test_no_mask_no_reward(editor):
    image, _ = real_photo("rocket-moon")
    result = editor.edit([EditRequest(image, "add a full moon", seed=0, steps=2)])[0]
    assert result.reward is None
    assert result.attention_map is not None


def test_large_input_downscaled_then_restored(editor):
    image = Image.new("RGB", (1000, 300), (120, 40, 200))
    result = editor.edit([EditRequest(image, "make it green", seed=0, steps=2)])[0]
    assert result.image.size == (1000, 300)
    assert editor.max_side == 128


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"instruction": "  "}, "instruction is empty"),
        ({"steps": 0}, "steps=0"),
        ({"guidance_scale": float("nan")}, "guidance_scale=nan"),
        ({"image_guidance_scale": -1.0}, "image_guidance_scale=-1.0"),
        ({"seed": -1}, "seed=-1"),
        ({"seed": 2**32}, "seed=4294967296"),
        ({"eta": 1.5}, "eta=1.5"),
    ],
)
def test_invalid_request_rejected(editor, changes, message):
    request = EditRequest(Image.new("RGB", (64, 64)), "make it red", seed=0, steps=2)
    for name, value in changes.items():
        setattr(request, name, value)
    with pytest.raises(InvalidInputError, match=message):
        editor.edit([request])


def test_mask_of_other_shape_rejected(editor):
    request = EditRequest(Image.new("RGB", (64, 64)), "make it red", mask=np.ones((32, 32), np.float32))
    with pytest.raises(InvalidInputError, match="load_mask"):
        editor.edit([request])


def test_empty_batch_rejected(editor):
    with pytest.raises(InvalidInputError, match="at least one"):
        editor.edit([])


def test_trajectory_needs_positive_eta(editor):
    request = EditRequest(Image.new("RGB", (64, 64)), "make it red", steps=2, eta=0.0)
    with pytest.raises(InvalidInputError, match="eta"):
        editor.sample_trajectories([request])


def test_trajectory_shapes(editor):
    image, mask = real_photo("cat-eyes")
    requests = [EditRequest(image, "make the eyes blue", seed=s, steps=4, eta=1.0, mask=mask) for s in (0, 1)]
    trajectory = editor.sample_trajectories(requests)
    batch, steps_plus_one = trajectory.latents.shape[:2]
    assert (batch, steps_plus_one) == (2, 5)
    assert tuple(trajectory.log_probs.shape) == (2, 4)
    assert bool(torch.isfinite(trajectory.log_probs).all())
    assert trajectory.masks.shape[1:] == trajectory.images.shape[-2:]


def test_unknown_hub_id_raises(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-model"):
        load_components("no-such-org/no-such-model")


def test_directory_without_model_index_raises(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        load_components(str(tmp_path))


def test_local_diffusers_directory_loads(tmp_path):
    components = load_components("tiny")
    components.pipeline.save_pretrained(tmp_path / "tiny")
    loaded = load_components(str(tmp_path / "tiny"))
    image = Image.new("RGB", (64, 64), (10, 200, 30))
    request = EditRequest(image, "make it red", seed=4, steps=2)
    original = InstructEditor(components).edit([request])[0].image
    reloaded = InstructEditor(loaded).edit([request])[0].image
    assert json.loads((tmp_path / "tiny" / "model_index.json").read_text())["_class_name"] == (
        "StableDiffusionInstructPix2PixPipeline"
    )
    assert np.array_equal(pixels(original), pixels(reloaded))


def save_random_lora(components, directory: Path) -> None:
    from diffusers import StableDiffusionInstructPix2PixPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = components.unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_v"], init_lora_weights="gaussian"))
    with torch.no_grad():
        for name, parameter in unet.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    StableDiffusionInstructPix2PixPipeline.save_lora_weights(directory, unet_lora_layers=layers)


def test_lora_changes_output(tmp_path):
    save_random_lora(load_components("tiny"), tmp_path)
    components = load_components("tiny")
    editor = InstructEditor(components)
    request = EditRequest(Image.new("RGB", (64, 64), (10, 200, 30)), "make it red", seed=4, steps=2)
    base = editor.edit([request])[0].image
    load_lora(components, tmp_path, adapter_name="random")
    adapted = editor.edit([request])[0].image
    assert not np.array_equal(pixels(base), pixels(adapted))


def test_lora_must_be_safetensors(tmp_path):
    pickle_file = tmp_path / "weights.bin"
    pickle_file.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_lora(load_components("tiny"), pickle_file)


def test_missing_lora_raises(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_lora(load_components("tiny"), tmp_path / "nowhere")


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_broken_single_file_raises(tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checkpoint = tmp_path / f"broken{suffix}"
    checkpoint.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFoundError, match=f"broken\\{suffix}"):
        load_components(str(checkpoint))


def test_tiny_max_side_rejected():
    with pytest.raises(InvalidInputError, match="max_side=0"):
        InstructEditor(load_components("tiny"), max_side=0)
