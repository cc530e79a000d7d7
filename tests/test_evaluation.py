"""Evaluation waves: which image each turn starts from in the single- and multi-turn settings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rl4pix_core.data.magicbrush import load_magicbrush
from rl4pix_core.editing import InstructEditor
from rl4pix_core.errors import InvalidInputError
from rl4pix_core.evaluation import EvalSettings, evaluate
from rl4pix_core.loading import load_components
from rl4pix_core.metrics import ClipScorer


def solid(color: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", (64, 64), color)


def write_two_turn_set(root, with_targets: bool = True):
    folder = root / "images" / "s1"
    folder.mkdir(parents=True)
    solid((200, 0, 0)).save(folder / "s1-input.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    for turn in (1, 2):
        mask.save(folder / f"s1-mask{turn}.png")
    if with_targets:
        solid((0, 200, 0)).save(folder / "s1-output1.png")
        solid((0, 0, 200)).save(folder / "s1-output2.png")
    sessions = {
        "s1": [
            {"input": "s1-input.png", "mask": "s1-mask1.png", "output": "s1-output1.png", "instruction": "make it green"},
            {"input": "s1-output1.png", "mask": "s1-mask2.png", "output": "s1-output2.png", "instruction": "make it blue"},
        ]
    }
    (root / "edit_sessions.json").write_text(json.dumps(sessions))
    (root / "local_captions.json").write_text(json.dumps({"s1": {"s1-output1.png": "green", "s1-output2.png": "blue"}}))
    return root


class RecordingEditor(InstructEditor):
    """An editor that keeps the first pixel of every input it is asked to edit."""

    def __init__(self, components):
        super().__init__(components)
        self.first_pixels: list[tuple[int, int, int]] = []

    def edit(self, requests):
        self.first_pixels.extend(request.image.getpixel((0, 0)) for request in requests)
        return super().edit(requests)


@pytest.fixture(scope="module")
def tiny_clip():
    return ClipScorer("tiny")


def test_single_turn_starts_from_ground_truth(tmp_path, tiny_clip):
    sessions = load_magicbrush(write_two_turn_set(tmp_path))
    editor = RecordingEditor(load_components("tiny"))
    result = evaluate(editor, sessions, EvalSettings(setting="single-turn", steps=2), tiny_clip)
    assert editor.first_pixels == [(200, 0, 0), (0, 200, 0)]
    assert result.count == 2


def test_multi_turn_starts_from_model_output(tmp_path, tiny_clip):
    sessions = load_magicbrush(write_two_turn_set(tmp_path))
    editor = RecordingEditor(load_components("tiny"))
    output_dir = tmp_path / "generated"
    result = evaluate(editor, sessions, EvalSettings(setting="multi-turn", steps=2), tiny_clip, output_dir)
    first_output = Image.open(output_dir / "s1" / "s1-output1.png").convert("RGB")
    assert editor.first_pixels[0] == (200, 0, 0)
    assert editor.first_pixels[1] == first_output.getpixel((0, 0))
    assert result.count == 2
    assert result.settings["setting"] == "multi-turn"


def test_seed_follows_turn_position(tmp_path, tiny_clip):
    sessions = load_magicbrush(write_two_turn_set(tmp_path))
    editor = InstructEditor(load_components("tiny"))
    first = tmp_path / "first"
    second = tmp_path / "second"
    evaluate(editor, sessions, EvalSettings(steps=2, seed=3, batch_size=1), tiny_clip, first)
    evaluate(editor, sessions, EvalSettings(steps=2, seed=3, batch_size=2), tiny_clip, second)
    for name in ("s1-output1.png", "s1-output2.png"):
        a = np.asarray(Image.open(first / "s1" / name), dtype=np.int16)
        b = np.asarray(Image.open(second / "s1" / name), dtype=np.int16)
        assert np.abs(a - b).max() <= 1, name


def test_no_targets_rejected_before_editing(tmp_path, tiny_clip):
    sessions = load_magicbrush(write_two_turn_set(tmp_path, with_targets=False))
    editor = RecordingEditor(load_components("tiny"))
    with pytest.raises(InvalidInputError, match="ground-truth output"):
        evaluate(editor, sessions, EvalSettings(setting="multi-turn", steps=2), tiny_clip)
    assert editor.first_pixels == []
