"""The edit and eval commands, run through the `rl4pix` entry point in this process."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from rl4pix_cli.main import main
from rl4pix_core.data.synthetic import write_synthetic_magicbrush

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"


def real_case(case: str) -> tuple[Path, Path]:
    folder = REAL_PHOTOS / "images" / case
    if not folder.is_dir():
        pytest.skip(f"real photographs not found at {folder}")
    return folder / f"{case}-input.png", folder / f"{case}-mask1.png"


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_edit_json_with_mask(tmp_path, capsys):
    image, mask = real_case("cat-eyes")
    output = tmp_path / "out" / "edited.png"
    attention = tmp_path / "attention.png"
    summary = run_json(
        capsys,
        [
            "edit", "--model", "tiny", "--image", str(image), "--mask", str(mask),
            "--instruction", "make the eyes blue", "--output", str(output),
            "--attention-output", str(attention), "--steps", "3", "--seed", "5", "--json",
        ],
    )
    assert summary["output"] == str(output)
    assert summary["seed"] == 5
    assert (summary["width"], summary["height"]) == Image.open(image).size
    assert Image.open(output).size == Image.open(image).size
    assert Image.open(attention).size == Image.open(image).size
    assert set(summary["reward"]) == {"attention_similarity", "clip_loss", "total"}
    assert all(math.isfinite(value) for value in summary["reward"].values())


def test_edit_without_seed_reports_one(tmp_path, capsys):
    image, _ = real_case("rocket-moon")
    summary = run_json(
        capsys,
        ["edit", "--model", "tiny", "--image", str(image), "--instruction", "add a moon",
         "--output", str(tmp_path / "edited.jpg"), "--steps", "2", "--json"],
    )
    assert isinstance(summary["seed"], int)
    assert "reward" not in summary
    assert Image.open(tmp_path / "edited.jpg").format == "JPEG"


def test_edit_truncated_image_fails_cleanly(tmp_path, capsys):
    image, _ = real_case("rocket-moon")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image.read_bytes()[:2000])
    output = tmp_path / "edited.png"
    code = main(["edit", "--model", "tiny", "--image", str(truncated), "--instruction", "add a moon", "--output", str(output)])
    assert code == 2
    assert "truncated.png" in capsys.readouterr().err
    assert not output.exists()


def test_edit_unknown_suffix_rejected_before_editing(tmp_path, capsys):
    image, _ = real_case("rocket-moon")
    code = main(["edit", "--model", "tiny", "--image", str(image), "--instruction", "add a moon", "--output", str(tmp_path / "edited.xyz")])
    assert code == 2
    assert ".xyz" in capsys.readouterr().err


def test_eval_scores_synthetic_set(tmp_path, capsys):
    data = write_synthetic_magicbrush(tmp_path / "synthetic", count=3, size=64, seed=1)
    report_path = tmp_path / "report.json"
    report = run_json(
        capsys,
        ["eval", "--model", "tiny", "--data", str(data), "--clip-model", "tiny", "--steps", "2",
         "--output", str(report_path), "--images-dir", str(tmp_path / "generated"), "--json"],
    )
    assert report["count"] == 3
    for name in ("l1", "l2", "ssim", "psnr", "clip_t"):
        assert math.isfinite(report[name]), name
    assert report["settings"]["setting"] == "single-turn"
    assert json.loads(report_path.read_text())["count"] == 3
    assert len(list((tmp_path / "generated").glob("*/*-output1.png"))) == 3


def test_eval_limit_and_table(tmp_path, capsys):
    data = write_synthetic_magicbrush(tmp_path / "synthetic", count=3, size=64, seed=2)
    assert main(["eval", "--model", "tiny", "--data", str(data), "--clip-model", "tiny", "--steps", "2", "--limit", "2"]) == 0
    table = capsys.readouterr().out
    assert "| turns | L1 | L2 | CLIP-T | SSIM | PSNR |" in table
    assert "| 2 |" in table


def test_eval_without_ground_truth_fails(capsys):
    if not REAL_PHOTOS.is_dir():
        pytest.skip("real photographs not found")
    code = main(["eval", "--model", "tiny", "--data", str(REAL_PHOTOS), "--clip-model", "tiny", "--steps", "2"])
    assert code == 2
    assert "ground-truth output" in capsys.readouterr().err


def test_eval_multi_turn(tmp_path, capsys):
    data = write_synthetic_magicbrush(tmp_path / "synthetic", count=2, size=64, seed=3)
    report = run_json(
        capsys,
        ["eval", "--model", "tiny", "--data", str(data), "--clip-model", "tiny", "--steps", "2",
         "--setting", "multi-turn", "--json"],
    )
    assert report["settings"]["setting"] == "multi-turn"
    assert report["count"] == 2


def test_eval_images_score_again_with_metrics(tmp_path, capsys):
    data = write_synthetic_magicbrush(tmp_path / "synthetic", count=2, size=64, seed=4)
    generated = tmp_path / "generated"
    assert main(["eval", "--model", "tiny", "--data", str(data), "--clip-model", "tiny", "--steps", "2",
                 "--images-dir", str(generated), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    second = run_json(capsys, ["metrics", "--generated", str(generated), "--reference", str(data / "images"), "--json"])
    assert second["count"] == 2
    assert abs(second["l1"] - first["l1"]) < 1e-9


def test_edit_seed_out_of_range(tmp_path, capsys):
    image, _ = real_case("rocket-moon")
    code = main(["edit", "--model", "tiny", "--image", str(image), "--instruction", "add a moon",
                 "--output", str(tmp_path / "edited.png"), "--seed", "99999999999999999999"])
    assert code == 2
    assert "seed=99999999999999999999" in capsys.readouterr().err
