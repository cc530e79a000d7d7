from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rl4pix_core.data.magicbrush import load_magicbrush, validate_magicbrush
from rl4pix_core.data.synthetic import make_synthetic_case, split_ids, write_synthetic_magicbrush
from rl4pix_core.errors import InvalidInputError

INSTRUCTION_PATTERNS = (
    r"make the \w+ (circle|square|triangle) \w+",
    r"remove the (\w+ )?(circle|square|triangle)",
    r"add an? \w+ (circle|square|triangle)",
)


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_synthetic_magicbrush(
        tmp_path_factory.mktemp("synthetic") / "data", count=12, size=64, seed=0
    )


def test_same_seed_same_files(dataset, tmp_path):
    again = write_synthetic_magicbrush(tmp_path / "again", count=12, size=64, seed=0)
    assert _file_bytes(again) == _file_bytes(dataset)


def test_other_seed_other_images(dataset, tmp_path):
    other = write_synthetic_magicbrush(tmp_path / "other", count=12, size=64, seed=1)
    name = "images/synthetic-00000/synthetic-00000-input.png"
    assert _file_bytes(other)[name] != _file_bytes(dataset)[name]


def test_readable_by_loader(dataset):
    sessions = load_magicbrush(dataset)
    assert len(sessions) == 12
    for session in sessions:
        (turn,) = session.turns
        assert turn.has_target
        assert turn.caption
        assert turn.source_image().size == (64, 64)


def test_validates_cleanly(dataset):
    summary = validate_magicbrush(dataset)
    assert summary.turns_with_target == 12
    assert summary.turns_with_caption == 12
    assert summary.warnings == []


def test_instruction_forms(dataset):
    for session in load_magicbrush(dataset):
        instruction = session.turns[0].instruction
        assert any(re.fullmatch(pattern, instruction) for pattern in INSTRUCTION_PATTERNS), instruction


def test_edit_confined_to_mask(dataset):
    for session in load_magicbrush(dataset):
        turn = session.turns[0]
        source = np.asarray(turn.source_image(), dtype=np.int16)
        target = np.asarray(turn.target_image(), dtype=np.int16)
        mask = turn.mask_array()
        changed = np.abs(source - target).max(axis=-1) > 0
        assert changed.any(), turn.img_id
        assert not (changed & (mask == 0)).any(), turn.img_id


def test_all_edit_kinds_present(dataset):
    verbs = {session.turns[0].instruction.split()[0] for session in load_magicbrush(dataset)}
    assert verbs == {"make", "remove", "add"}


def test_captions_keyed_by_output(dataset):
    captions = json.loads((dataset / "local_captions.json").read_text(encoding="utf-8"))
    assert captions["synthetic-00003"] == {"synthetic-00003-output1.png": make_synthetic_case(3).caption}


def test_existing_folder_rejected(dataset):
    with pytest.raises(InvalidInputError, match="not an empty folder"):
        write_synthetic_magicbrush(dataset, count=1)


def test_empty_folder_accepted(tmp_path):
    (tmp_path / "empty").mkdir()
    root = write_synthetic_magicbrush(tmp_path / "empty", count=1)
    assert (root / "edit_sessions.json").is_file()


def test_no_staging_left_on_error(tmp_path):
    with pytest.raises(InvalidInputError):
        write_synthetic_magicbrush(tmp_path / "small", count=2, size=8)
    assert list(tmp_path.iterdir()) == []


def test_count_zero_rejected(tmp_path):
    with pytest.raises(InvalidInputError, match="count"):
        write_synthetic_magicbrush(tmp_path / "none", count=0)


def test_split_deterministic():
    ids = [f"id-{index}" for index in range(10)]
    assert split_ids(ids, 0.3, seed=5) == split_ids(list(reversed(ids)), 0.3, seed=5)


def test_split_partitions_ids():
    ids = [f"id-{index}" for index in range(10)]
    train, held_out = split_ids(ids, 0.3, seed=5)
    assert len(held_out) == 3
    assert set(train).isdisjoint(held_out)
    assert sorted(train + held_out) == sorted(ids)


def test_split_small_keeps_both_parts():
    train, held_out = split_ids(["a", "b"], 0.1)
    assert len(train) == 1
    assert len(held_out) == 1


def test_split_fraction_rejected():
    with pytest.raises(InvalidInputError, match="held_out_fraction"):
        split_ids(["a"], 1.0)
