from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from rl4pix_core.data.magicbrush import (
    MULTI_TURN,
    SINGLE_TURN,
    evaluable_turns,
    load_magicbrush,
    normalize_setting,
    source_for_turn,
    validate_magicbrush,
)
from rl4pix_core.errors import InvalidInputError

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


@pytest.fixture()
def real_photos() -> Path:
    if not (REAL_PHOTOS / "edit_sessions.json").is_file():
        pytest.skip(f"real photos not found at {REAL_PHOTOS}")
    return REAL_PHOTOS


def _png(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _mask_png(size: tuple[int, int] = (24, 16)) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def _write_multi_turn(root: Path, img_id: str = "session-a", turns: int = 3) -> Path:
    """Write one session with `turns` turns; image k has color COLORS[k] (0 = input)."""
    folder = root / "images" / img_id
    folder.mkdir(parents=True)
    (folder / f"{img_id}-input.png").write_bytes(_png(COLORS[0]))
    session = []
    for k in range(1, turns + 1):
        (folder / f"{img_id}-mask{k}.png").write_bytes(_mask_png())
        (folder / f"{img_id}-output{k}.png").write_bytes(_png(COLORS[k]))
        session.append(
            {
                "input": f"{img_id}-input.png" if k == 1 else f"{img_id}-output{k - 1}.png",
                "mask": f"{img_id}-mask{k}.png",
                "output": f"{img_id}-output{k}.png",
                "instruction": f"edit number {k}",
            }
        )
    (root / "edit_sessions.json").write_text(json.dumps({img_id: session}), encoding="utf-8")
    captions = {img_id: {f"{img_id}-output{k}.png": f"caption {k}" for k in range(1, turns + 1)}}
    (root / "local_captions.json").write_text(json.dumps(captions), encoding="utf-8")
    return root


def _color(image: Image.Image) -> tuple[int, int, int]:
    return tuple(int(value) for value in image.getpixel((0, 0)))


def _edit_sessions(root: Path) -> dict:
    return json.loads((root / "edit_sessions.json").read_text(encoding="utf-8"))


def _rewrite_sessions(root: Path, sessions: dict) -> None:
    (root / "edit_sessions.json").write_text(json.dumps(sessions), encoding="utf-8")


def test_real_photos_sessions(real_photos):
    sessions = load_magicbrush(real_photos)
    assert sorted(session.img_id for session in sessions) == [
        "astronaut-helmet",
        "cat-eyes",
        "coffee-spoon",
        "rocket-moon",
    ]
    for session in sessions:
        assert len(session.turns) == 1


def test_real_photos_turn_contents(real_photos):
    (turn,) = next(session for session in load_magicbrush(real_photos) if session.img_id == "cat-eyes").turns
    assert turn.turn_index == 1
    assert turn.instruction == "make the cat's eyes blue"
    assert turn.caption == "a tabby cat with bright blue eyes"
    assert turn.target_image() is None
    assert turn.has_target is False
    source = turn.source_image()
    assert source.size == (451, 300)
    mask = turn.mask_array(source.size)
    assert mask.shape == (300, 451)
    assert 0.0 < mask.mean() < 1.0


def test_real_photos_validate(real_photos):
    summary = validate_magicbrush(real_photos)
    assert summary.format == "folder"
    assert summary.sessions == 4
    assert summary.turns == 4
    assert summary.turns_with_target == 0
    assert summary.turns_with_caption == 4
    assert summary.warnings == []


def test_real_photos_single_turn_source(real_photos):
    session = load_magicbrush(real_photos)[0]
    source = source_for_turn(session, 1, SINGLE_TURN)
    assert source.size == session.turns[0].source_image().size


def test_multi_turn_folder(tmp_path):
    sessions = load_magicbrush(_write_multi_turn(tmp_path))
    (session,) = sessions
    assert [turn.turn_index for turn in session.turns] == [1, 2, 3]
    assert [turn.caption for turn in session.turns] == ["caption 1", "caption 2", "caption 3"]
    assert session.turns[1].source_path.name == "session-a-output1.png"
    assert _color(session.turns[2].target_image()) == COLORS[3]


def test_single_turn_uses_ground_truth(tmp_path):
    (session,) = load_magicbrush(_write_multi_turn(tmp_path))
    assert _color(source_for_turn(session, 1, SINGLE_TURN)) == COLORS[0]
    assert _color(source_for_turn(session, 3, SINGLE_TURN)) == COLORS[2]


def test_multi_turn_uses_model_outputs(tmp_path):
    (session,) = load_magicbrush(_write_multi_turn(tmp_path))
    model_outputs = [Image.new("RGB", (24, 16), (1, 2, 3)), Image.new("RGB", (24, 16), (4, 5, 6))]
    assert _color(source_for_turn(session, 1, MULTI_TURN, model_outputs)) == COLORS[0]
    assert _color(source_for_turn(session, 2, MULTI_TURN, model_outputs)) == (1, 2, 3)
    assert _color(source_for_turn(session, 3, MULTI_TURN, model_outputs)) == (4, 5, 6)


def test_multi_turn_needs_previous_outputs(tmp_path):
    (session,) = load_magicbrush(_write_multi_turn(tmp_path))
    with pytest.raises(InvalidInputError, match="model outputs of turns 1..1"):
        source_for_turn(session, 2, MULTI_TURN)


def test_missing_ground_truth_single_turn(tmp_path, caplog):
    root = _write_multi_turn(tmp_path)
    (root / "images" / "session-a" / "session-a-output1.png").unlink()
    (session,) = load_magicbrush(root)
    assert session.turns[0].target_image() is None
    with pytest.raises(InvalidInputError, match="session-a-output1.png"):
        source_for_turn(session, 2, SINGLE_TURN)
    with caplog.at_level(logging.WARNING):
        ready = evaluable_turns(session, SINGLE_TURN)
    assert [turn.turn_index for turn in ready] == [1, 3]
    assert any("skipping turns [2]" in record.getMessage() for record in caplog.records)
    assert len(evaluable_turns(session, MULTI_TURN)) == 3


def test_validate_warns_missing_ground_truth(tmp_path):
    root = _write_multi_turn(tmp_path)
    (root / "images" / "session-a" / "session-a-output2.png").unlink()
    summary = validate_magicbrush(root)
    assert summary.turns_with_target == 2
    assert summary.max_turns == 3
    assert any("turn 3" in warning for warning in summary.warnings)


def test_path_to_sessions_file(tmp_path):
    root = _write_multi_turn(tmp_path)
    assert load_magicbrush(root / "edit_sessions.json")[0].img_id == "session-a"


def test_path_to_wrapping_folder(tmp_path):
    _write_multi_turn(tmp_path / "test")
    assert load_magicbrush(tmp_path)[0].img_id == "session-a"


def test_missing_sessions_file(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(InvalidInputError, match="edit_sessions.json"):
        load_magicbrush(tmp_path)


def test_invalid_sessions_json(tmp_path):
    root = _write_multi_turn(tmp_path)
    (root / "edit_sessions.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not valid UTF-8 JSON"):
        load_magicbrush(root)


def test_missing_input_image(tmp_path):
    root = _write_multi_turn(tmp_path)
    (root / "images" / "session-a" / "session-a-input.png").unlink()
    with pytest.raises(InvalidInputError, match="session-a.*session-a-input.png"):
        load_magicbrush(root)


def test_missing_mask_file(tmp_path):
    root = _write_multi_turn(tmp_path)
    (root / "images" / "session-a" / "session-a-mask2.png").unlink()
    with pytest.raises(InvalidInputError, match="turn 2: mask image .*session-a-mask2.png"):
        load_magicbrush(root)


def test_missing_mask_entry(tmp_path):
    root = _write_multi_turn(tmp_path)
    sessions = _edit_sessions(root)
    del sessions["session-a"][0]["mask"]
    _rewrite_sessions(root, sessions)
    with pytest.raises(InvalidInputError, match="'session-a': turn 1 mask"):
        load_magicbrush(root)


def test_empty_instruction(tmp_path):
    root = _write_multi_turn(tmp_path)
    sessions = _edit_sessions(root)
    sessions["session-a"][1]["instruction"] = "   "
    _rewrite_sessions(root, sessions)
    with pytest.raises(InvalidInputError, match="'session-a' turn 2: instruction"):
        load_magicbrush(root)


def test_path_traversal_rejected(tmp_path):
    root = _write_multi_turn(tmp_path)
    sessions = _edit_sessions(root)
    sessions["session-a"][0]["input"] = "../../secret.png"
    _rewrite_sessions(root, sessions)
    with pytest.raises(InvalidInputError, match="plain file name"):
        load_magicbrush(root)


def test_validate_unreadable_mask(tmp_path):
    root = _write_multi_turn(tmp_path)
    (root / "images" / "session-a" / "session-a-mask1.png").write_bytes(b"not a png")
    with pytest.raises(InvalidInputError, match="session-a-mask1.png"):
        validate_magicbrush(root)


def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="no edit_sessions.json or .parquet"):
        load_magicbrush(tmp_path)


def test_setting_names():
    assert normalize_setting("single_turn") == SINGLE_TURN
    assert normalize_setting("Multi") == MULTI_TURN
    with pytest.raises(InvalidInputError, match="unknown evaluation setting"):
        normalize_setting("both")


def _image_cell(data: bytes | None, path: str | None = None) -> dict | None:
    return None if data is None and path is None else {"bytes": data, "path": path}


IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
PARQUET_SCHEMA = pa.schema(
    [
        ("img_id", pa.string()),
        ("turn_index", pa.int32()),
        ("source_img", IMAGE_TYPE),
        ("mask_img", IMAGE_TYPE),
        ("instruction", pa.string()),
        ("target_img", IMAGE_TYPE),
    ]
)


def _write_parquet(path: Path, rows: list[dict]) -> Path:
    table = pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA)
    pq.write_table(table, path)
    return path


def _row(img_id: str, turn_index: int, color_index: int, target: bool = True, mask: bool = True) -> dict:
    return {
        "img_id": img_id,
        "turn_index": turn_index,
        "source_img": _image_cell(_png(COLORS[color_index - 1])),
        "mask_img": _image_cell(_mask_png() if mask else None),
        "instruction": f"{img_id} edit {turn_index}",
        "target_img": _image_cell(_png(COLORS[color_index]) if target else None),
    }


def test_parquet_file(tmp_path):
    # Rows out of order and a missing target, as a partial download may have.
    rows = [_row("b", 2, 2), _row("a", 1, 1), _row("b", 1, 1, target=False)]
    sessions = load_magicbrush(_write_parquet(tmp_path / "dev.parquet", rows))
    by_id = {session.img_id: session for session in sessions}
    assert sorted(by_id) == ["a", "b"]
    assert [turn.turn_index for turn in by_id["b"].turns] == [1, 2]
    assert by_id["b"].turns[0].target_image() is None
    assert _color(by_id["b"].turns[1].source_image()) == COLORS[1]
    assert _color(by_id["b"].turns[1].target_image()) == COLORS[2]
    assert by_id["a"].turns[0].mask_array().shape == (16, 24)
    assert by_id["a"].turns[0].instruction == "a edit 1"


def test_parquet_directory(tmp_path):
    _write_parquet(tmp_path / "part-0.parquet", [_row("a", 1, 1)])
    _write_parquet(tmp_path / "part-1.parquet", [_row("a", 2, 2), _row("c", 1, 1)])
    sessions = load_magicbrush(tmp_path)
    assert {session.img_id: len(session.turns) for session in sessions} == {"a": 2, "c": 1}
    summary = validate_magicbrush(tmp_path)
    assert summary.format == "parquet"
    assert summary.turns == 3


def test_parquet_image_by_path(tmp_path):
    (tmp_path / "source.png").write_bytes(_png(COLORS[3]))
    row = _row("a", 1, 1)
    row["source_img"] = _image_cell(None, "source.png")
    (session,) = load_magicbrush(_write_parquet(tmp_path / "data.parquet", [row]))
    assert _color(session.turns[0].source_image()) == COLORS[3]


def test_parquet_missing_column(tmp_path):
    table = pa.table({"img_id": ["a"], "instruction": ["x"]})
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(InvalidInputError, match="lacks the columns"):
        load_magicbrush(tmp_path / "bad.parquet")


def test_parquet_turn_gap(tmp_path):
    path = _write_parquet(tmp_path / "gap.parquet", [_row("a", 1, 1), _row("a", 3, 2)])
    with pytest.raises(InvalidInputError, match="'a' has turn indices \\[1, 3\\]"):
        load_magicbrush(path)


def test_parquet_missing_mask(tmp_path):
    path = _write_parquet(tmp_path / "nomask.parquet", [_row("a", 1, 1, mask=False)])
    with pytest.raises(InvalidInputError, match="'a' turn 1: mask_img is missing"):
        load_magicbrush(path)


def test_parquet_empty_instruction(tmp_path):
    row = _row("a", 1, 1)
    row["instruction"] = ""
    with pytest.raises(InvalidInputError, match="'a' turn 1: instruction"):
        load_magicbrush(_write_parquet(tmp_path / "empty.parquet", [row]))


def test_parquet_unreadable_image(tmp_path):
    row = _row("a", 1, 1)
    row["target_img"] = _image_cell(b"broken bytes")
    path = _write_parquet(tmp_path / "broken.parquet", [row])
    with pytest.raises(InvalidInputError, match="a turn 1 target_img"):
        validate_magicbrush(path)


def test_mask_array_soft_values(tmp_path):
    root = _write_multi_turn(tmp_path, turns=1)
    (session,) = load_magicbrush(root)
    mask = session.turns[0].mask_array((12, 8))
    assert mask.shape == (8, 12)
    assert np.all((mask >= 0.0) & (mask <= 1.0))
    assert mask[:, 0].min() == pytest.approx(1.0)
