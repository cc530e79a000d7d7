from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from rl4pix_cli.main import main
from rl4pix_core.data.synthetic import write_synthetic_magicbrush
from rl4pix_core.errors import InvalidInputError, ModelNotFoundError
from rl4pix_core.metrics import (
    PSNR_MAX_DB,
    ClipScorer,
    clip_preprocess,
    l1_distance,
    l2_distance,
    prepare_pair,
    psnr,
    score_pairs,
    ssim,
)

REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"
REAL_IDS = ("cat-eyes", "coffee-spoon", "rocket-moon", "astronaut-helmet")


def _skimage_ssim(generated: torch.Tensor, reference: torch.Tensor) -> float:
    return structural_similarity(
        generated.permute(1, 2, 0).numpy(),
        reference.permute(1, 2, 0).numpy(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1,
    )


def _skimage_psnr(generated: torch.Tensor, reference: torch.Tensor) -> float:
    return peak_signal_noise_ratio(reference.numpy(), generated.numpy(), data_range=1.0)


def _random_pair(seed: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    reference = rng.random((3, height, width))
    generated = np.clip(reference + rng.normal(0, 0.15, reference.shape), 0, 1)
    return torch.from_numpy(generated), torch.from_numpy(reference)


def _real_photo(img_id: str) -> Image.Image:
    path = REAL_PHOTOS / "images" / img_id / f"{img_id}-input.png"
    if not path.is_file():
        pytest.skip(f"real photos not found at {REAL_PHOTOS}")
    return Image.open(path).convert("RGB")


def _noisy(image: Image.Image, seed: int) -> Image.Image:
    array = np.asarray(image, dtype=np.float64)
    noisy = array + np.random.default_rng(seed).normal(0, 12, array.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(("seed", "height", "width"), [(0, 64, 64), (1, 37, 53), (2, 11, 15), (3, 100, 23)])
def test_ssim_matches_skimage_random(seed, height, width):
    generated, reference = _random_pair(seed, height, width)
    assert ssim(generated, reference) == pytest.approx(_skimage_ssim(generated, reference), abs=1e-4)


@pytest.mark.parametrize("img_id", REAL_IDS)
def test_ssim_matches_skimage_real(img_id):
    photo = _real_photo(img_id)
    for edited in (photo.filter(ImageFilter.GaussianBlur(2)), _noisy(photo, 0)):
        generated, reference = prepare_pair(edited, photo)
        assert ssim(generated, reference) == pytest.approx(_skimage_ssim(generated, reference), abs=1e-4)


@pytest.mark.parametrize("img_id", REAL_IDS)
def test_psnr_matches_skimage_real(img_id):
    photo = _real_photo(img_id)
    generated, reference = prepare_pair(_noisy(photo, 1), photo)
    assert psnr(generated, reference) == pytest.approx(_skimage_psnr(generated, reference), abs=1e-4)


def test_psnr_matches_skimage_random():
    generated, reference = _random_pair(5, 40, 30)
    assert psnr(generated, reference) == pytest.approx(_skimage_psnr(generated, reference), abs=1e-4)


def test_psnr_identical_capped():
    image = torch.rand(3, 16, 16, dtype=torch.float64)
    assert psnr(image, image.clone()) == PSNR_MAX_DB


def test_ssim_identical_is_one():
    image = torch.rand(3, 16, 16, dtype=torch.float64)
    assert ssim(image, image.clone()) == pytest.approx(1.0)


def test_ssim_small_image_rejected():
    with pytest.raises(InvalidInputError, match="at least 11x11"):
        ssim(torch.rand(3, 10, 40), torch.rand(3, 10, 40))


def test_l1_l2_hand_computed():
    reference = torch.zeros(3, 2, 2, dtype=torch.float64)
    generated = reference.clone()
    generated[0, 0, 0] = 0.5
    generated[2, 1, 1] = -0.25
    assert l1_distance(generated, reference) == pytest.approx(0.75 / 12)
    assert l2_distance(generated, reference) == pytest.approx((0.25 + 0.0625) / 12)


def test_distance_shape_mismatch_rejected():
    with pytest.raises(InvalidInputError, match="prepare_pair"):
        l1_distance(torch.zeros(3, 4, 4), torch.zeros(3, 5, 4))


def test_prepare_pair_bicubic_resize():
    array = np.random.default_rng(7).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    generated_image = Image.fromarray(array)
    reference_image = Image.new("RGB", (64, 48), (10, 20, 30))
    generated, reference = prepare_pair(generated_image, reference_image)
    expected = np.asarray(generated_image.resize((64, 48), Image.BICUBIC), dtype=np.float64) / 255.0
    assert generated.dtype == torch.float64
    assert generated.shape == (3, 48, 64)
    assert reference.shape == (3, 48, 64)
    assert np.allclose(generated.permute(1, 2, 0).numpy(), expected)


def test_prepare_pair_converts_modes():
    generated, reference = prepare_pair(
        Image.new("L", (16, 16), 255), Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    )
    assert generated.shape == (3, 16, 16)
    assert torch.all(reference == 1.0)  # transparent composited on white


def test_clip_preprocess_matches_transformers():
    from transformers import CLIPImageProcessorPil

    processor = CLIPImageProcessorPil()
    rng = np.random.default_rng(3)
    for size in ((300, 451), (97, 40), (224, 224)):
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        expected = processor(images=[image], return_tensors="pt")["pixel_values"]
        assert torch.allclose(clip_preprocess([image]), expected, atol=1e-5)


@pytest.fixture(scope="module")
def tiny_scorer() -> ClipScorer:
    return ClipScorer("tiny", device="cpu")


def test_tiny_clip_scores(tiny_scorer):
    images = [Image.new("RGB", (64, 64), (255, 0, 0)), Image.new("RGB", (40, 80), (0, 0, 255))]
    scores = tiny_scorer.clip_t(images, ["a red square", "a blue square"])
    assert len(scores) == 2
    for score in scores:
        assert -1.0 <= score <= 1.0


def test_tiny_clip_deterministic(tiny_scorer):
    image = Image.new("RGB", (64, 64), (0, 200, 0))
    other = ClipScorer("tiny", device="cpu")
    assert other.clip_t([image], ["green"]) == pytest.approx(tiny_scorer.clip_t([image], ["green"]), abs=1e-6)


def test_tiny_clip_keeps_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    ClipScorer("tiny", device="cpu")
    assert torch.equal(torch.rand(1), expected)


def test_long_caption_warns(tiny_scorer, caplog):
    with caplog.at_level(logging.WARNING):
        scores = tiny_scorer.clip_t([Image.new("RGB", (32, 32))], ["word " * 100])
    assert math.isfinite(scores[0])
    assert any("CLIP reads only the first 77" in record.getMessage() for record in caplog.records)


def test_clip_count_mismatch_rejected(tiny_scorer):
    with pytest.raises(InvalidInputError, match="captions"):
        tiny_scorer.clip_t([Image.new("RGB", (32, 32))], [])


def test_clip_loads_saved_directory(tiny_scorer, tmp_path):
    from transformers import CLIPImageProcessorPil

    tiny_scorer.model.save_pretrained(tmp_path)
    tiny_scorer.tokenizer.save_pretrained(tmp_path)
    CLIPImageProcessorPil().save_pretrained(tmp_path)
    loaded = ClipScorer(str(tmp_path), device="cpu")
    image = Image.new("RGB", (70, 50), (30, 60, 90))
    assert loaded.clip_t([image], ["a dark blue photo"]) == pytest.approx(
        tiny_scorer.clip_t([image], ["a dark blue photo"]), abs=1e-5
    )


def test_clip_missing_directory(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        ClipScorer(str(tmp_path / "absent"), device="cpu")


def test_clip_unreachable_hub_id():
    with pytest.raises(ModelNotFoundError, match="needs network access") as caught:
        ClipScorer("rl4pix-test/no-such-clip-model", device="cpu", local_files_only=True)
    assert "rl4pix-test/no-such-clip-model" in str(caught.value)


def test_score_pairs_without_captions():
    reference = Image.new("RGB", (32, 32), (100, 100, 100))
    pairs = [(reference.copy(), reference), (Image.new("RGB", (16, 16), (110, 100, 100)), reference)]
    result = score_pairs(pairs)
    assert result.count == 2
    assert result.clip_t is None
    assert result.psnr == pytest.approx((PSNR_MAX_DB + _expected_psnr(10 / 255 / 3 * 10 / 255)) / 2)
    assert result.l1 == pytest.approx((0.0 + 10 / 255 / 3) / 2)
    assert [item["name"] for item in result.per_item] == ["0", "1"]
    assert result.settings["psnr_max_db"] == PSNR_MAX_DB
    assert result.settings["ssim_window"] == 11
    assert result.settings["clip_model"] is None


def _expected_psnr(mse: float) -> float:
    return 10 * math.log10(1 / mse)


def test_score_pairs_with_captions(tiny_scorer):
    image = Image.new("RGB", (32, 32), (10, 200, 10))
    result = score_pairs(
        [(image, image), (image, image)], ["a green square", None], tiny_scorer, names=["a", "b"]
    )
    assert result.per_item[1]["clip_t"] is None
    assert result.clip_t == pytest.approx(result.per_item[0]["clip_t"])
    assert result.settings["clip_model"] == "tiny"
    assert set(result.as_dict()) == {"count", "l1", "l2", "ssim", "psnr", "clip_t", "per_item", "settings"}


def test_score_pairs_empty_rejected():
    with pytest.raises(InvalidInputError, match="no image pairs"):
        score_pairs([])


def test_score_pairs_caption_count_rejected(tiny_scorer):
    image = Image.new("RGB", (32, 32))
    with pytest.raises(InvalidInputError, match="captions"):
        score_pairs([(image, image)], ["one", "two"], tiny_scorer)


@pytest.fixture()
def metric_folders(tmp_path) -> tuple[Path, Path, Path]:
    """Write 3 synthetic cases: generated = unedited inputs, reference = ground-truth outputs."""
    dataset = write_synthetic_magicbrush(tmp_path / "dataset", count=3, size=64, seed=4)
    generated = tmp_path / "generated"
    reference = tmp_path / "reference"
    generated.mkdir()
    reference.mkdir()
    for folder in sorted((dataset / "images").iterdir()):
        img_id = folder.name
        shutil.copy(folder / f"{img_id}-input.png", generated / f"{img_id}-output1.png")
        shutil.copy(folder / f"{img_id}-output1.png", reference / f"{img_id}-output1.png")
    return generated, reference, dataset / "local_captions.json"


def test_cli_json_without_captions(metric_folders, capsys):
    generated, reference, _ = metric_folders
    code = main(["metrics", "--generated", str(generated), "--reference", str(reference), "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["count"] == 3
    assert result["clip_t"] is None
    assert 0.0 < result["l1"] < 1.0
    assert 0.0 < result["ssim"] < 1.0
    assert math.isfinite(result["psnr"])
    assert result["settings"]["resize_method"].endswith("bicubic")


def test_cli_json_with_magicbrush_captions(metric_folders, capsys):
    generated, reference, captions = metric_folders
    argv = ["metrics", "--generated", str(generated), "--reference", str(reference)]
    code = main([*argv, "--captions", str(captions), "--clip-model", "tiny", "--device", "cpu", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert -1.0 <= result["clip_t"] <= 1.0
    assert result["settings"]["clip_model"] == "tiny"


def test_cli_flat_captions(metric_folders, capsys, tmp_path):
    generated, reference, _ = metric_folders
    stems = sorted(path.stem for path in reference.iterdir())
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps({stems[0]: "shapes"}), encoding="utf-8")
    argv = ["metrics", "--generated", str(generated), "--reference", str(reference), "--json"]
    assert main([*argv, "--captions", str(captions), "--clip-model", "tiny", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    clip_values = [item["clip_t"] for item in result["per_item"]]
    assert clip_values[0] is not None
    assert clip_values[1:] == [None, None]


def test_cli_table_output(metric_folders, capsys):
    generated, reference, _ = metric_folders
    assert main(["metrics", "--generated", str(generated), "--reference", str(reference)]) == 0
    output = capsys.readouterr().out
    assert "ssim" in output
    assert "n/a (no captions)" in output


def test_cli_unmatched_stems(metric_folders, capsys):
    generated, reference, _ = metric_folders
    Image.new("RGB", (64, 64)).save(generated / "extra-image.png")
    code = main(["metrics", "--generated", str(generated), "--reference", str(reference), "--json"])
    assert code == 2
    assert "extra-image" in capsys.readouterr().err


def test_clip_none_means_default_model():
    with pytest.raises(ModelNotFoundError, match="openai/clip-vit-base-patch32"):
        ClipScorer(None, device="cpu", local_files_only=True)
