from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rl4pix_core.errors import InvalidInputError
from rl4pix_core.images import (
    fit_to_model,
    load_image,
    load_mask,
    pil_to_tensor,
    pil_to_vae_tensor,
    tensor_to_pil,
    vae_tensor_to_pil,
)

# Real photos with MagicBrush-style sessions, kept next to the repository checkout.
REAL_PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "cases" / "real-photos"


def _encode(image: Image.Image, image_format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _pixel(image: Image.Image, xy: tuple[int, int] = (0, 0)) -> tuple[int, int, int]:
    return tuple(int(value) for value in image.getpixel(xy))


def test_rgba_composited_on_white():
    array = np.zeros((1, 3, 4), dtype=np.uint8)
    array[0, 0] = (255, 0, 0, 0)  # fully transparent red
    array[0, 1] = (0, 0, 255, 255)  # opaque blue
    array[0, 2] = (255, 0, 0, 128)  # half-transparent red
    image = load_image(_encode(Image.fromarray(array, mode="RGBA")))
    assert image.mode == "RGB"
    assert _pixel(image, (0, 0)) == (255, 255, 255)
    assert _pixel(image, (1, 0)) == (0, 0, 255)
    assert _pixel(image, (2, 0)) == (255, 127, 127)


def test_la_composited_on_white():
    array = np.array([[[0, 0], [100, 255]]], dtype=np.uint8)
    image = load_image(_encode(Image.fromarray(array, mode="LA")))
    assert _pixel(image, (0, 0)) == (255, 255, 255)
    assert _pixel(image, (1, 0)) == (100, 100, 100)


def test_palette_transparency_composited():
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    palette_image.putdata([0, 1])
    data = _encode(palette_image, transparency=0)
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
    image = load_image(data)
    assert _pixel(image, (0, 0)) == (255, 255, 255)
    assert _pixel(image, (1, 0)) == (0, 200, 0)


def test_palette_without_transparency():
    palette_image = Image.new("P", (1, 1))
    palette_image.putpalette([10, 20, 30] + [0] * 765)
    assert _pixel(load_image(_encode(palette_image))) == (10, 20, 30)


def test_grayscale_to_rgb():
    image = load_image(_encode(Image.new("L", (3, 2), 77)))
    assert image.mode == "RGB"
    assert _pixel(image) == (77, 77, 77)


@pytest.mark.parametrize("image_format", ["PNG", "TIFF"])
def test_sixteen_bit_scaled(image_format):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image = load_image(_encode(Image.fromarray(values), image_format))
    assert [_pixel(image, (x, 0))[0] for x in range(4)] == [0, 1, 128, 255]


def test_sixteen_bit_big_endian_scaled():
    values = np.array([[0, 65535, 12850]], dtype=np.uint16)
    big_endian = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
    image = load_image(big_endian)
    assert [_pixel(image, (x, 0))[0] for x in range(3)] == [0, 255, 50]


def test_thirty_two_bit_int_scaled():
    values = np.array([[0, 65535, 25700]], dtype=np.int32)
    image = load_image(Image.fromarray(values, mode="I"))
    assert [_pixel(image, (x, 0))[0] for x in range(3)] == [0, 255, 100]


def test_one_bit_to_rgb():
    bilevel = Image.new("1", (2, 1), 0)
    bilevel.putpixel((1, 0), 1)
    image = load_image(_encode(bilevel))
    assert _pixel(image, (0, 0)) == (0, 0, 0)
    assert _pixel(image, (1, 0)) == (255, 255, 255)


def test_cmyk_to_rgb():
    cmyk = Image.new("CMYK", (1, 1), (0, 255, 255, 0))
    image = load_image(_encode(cmyk, "TIFF"))
    assert _pixel(image) == (255, 0, 0)


def test_ycbcr_to_rgb():
    ycbcr = Image.new("RGB", (1, 1), (200, 40, 40)).convert("YCbCr")
    red, green, blue = _pixel(load_image(ycbcr))
    assert abs(red - 200) <= 2
    assert abs(green - 40) <= 2
    assert abs(blue - 40) <= 2


def test_exif_orientation_applied():
    stored = Image.new("RGB", (40, 20), (255, 0, 0))
    stored.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    image = load_image(_encode(stored, "JPEG", exif=exif.tobytes(), quality=95))
    assert image.size == (20, 40)
    top_red, _, top_blue = _pixel(image, (10, 5))
    assert top_red > 200
    assert top_blue < 60
    bottom_red, _, bottom_blue = _pixel(image, (10, 35))
    assert bottom_blue > 200
    assert bottom_red < 60


def test_pil_input_left_unchanged():
    original = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    load_image(original)
    assert original.mode == "RGBA"
    assert original.getpixel((0, 0)) == (0, 0, 0, 0)


def test_truncated_file_rejected(tmp_path):
    path = tmp_path / "cut.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match="cut.png.*truncated"):
        load_image(path)


def test_empty_bytes_rejected():
    with pytest.raises(InvalidInputError, match="uploaded bytes is empty"):
        load_image(b"")


def test_empty_file_rejected(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidInputError, match="empty.png"):
        load_image(path)


def test_text_file_rejected(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="notes.png.*not a supported image file"):
        load_image(path)


def test_missing_file_rejected(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        load_image(tmp_path / "absent.png")


def _png_with_header_size(width: int, height: int) -> bytes:
    """Return a valid 1x1 PNG whose IHDR claims width x height, like a decompression bomb header."""
    data = bytearray(_encode(Image.new("L", (1, 1))))
    ihdr_start = 8 + 4  # signature, then the chunk length
    data[ihdr_start + 4 : ihdr_start + 12] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[ihdr_start : ihdr_start + 4 + 13]))
    data[ihdr_start + 17 : ihdr_start + 21] = crc.to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize("max_pixels", [6_000, 1_000])
def test_decompression_bomb_rejected(max_pixels):
    bomb = _png_with_header_size(100, 100)
    with pytest.raises(InvalidInputError, match="uploaded bytes"):
        load_image(bomb, max_pixels=max_pixels)


def test_pixel_limit_restored():
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(InvalidInputError):
        load_image(_png_with_header_size(100, 100), max_pixels=1_000)
    assert Image.MAX_IMAGE_PIXELS == before


def test_pixel_limit_above_pillow_default():
    image = load_image(_encode(Image.new("RGB", (8, 8))), max_pixels=10**12)
    assert image.size == (8, 8)


def test_pil_input_over_limit_rejected():
    with pytest.raises(InvalidInputError, match="in-memory image"):
        load_image(Image.new("RGB", (100, 100)), max_pixels=100)


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1000, 500), 512, (512, 256)),
        ((100, 37), 512, (104, 40)),
        ((3, 3), 512, (8, 8)),
        ((513, 100), 512, (512, 104)),
        ((1000, 1000), 500, (496, 496)),
        ((64, 64), 512, (64, 64)),
    ],
)
def test_fit_to_model_sizes(size, max_side, expected):
    assert fit_to_model(Image.new("RGB", size), max_side).size == expected


def test_fit_to_model_keeps_aspect():
    fitted = fit_to_model(Image.new("RGB", (1280, 853)), 512)
    assert fitted.size[0] == 512
    assert abs(fitted.size[1] - 853 * 512 / 1280) <= 4


def test_fit_to_model_tiny_limit_rejected():
    with pytest.raises(InvalidInputError, match="max_side"):
        fit_to_model(Image.new("RGB", (10, 10)), 4)


def test_mask_white_region():
    mask_image = Image.new("L", (4, 2), 0)
    mask_image.putpixel((1, 0), 255)
    mask = load_mask(_encode(mask_image))
    assert mask.dtype == np.float32
    assert mask.shape == (2, 4)
    assert mask[0, 1] == 1.0
    assert mask.sum() == 1.0


def test_mask_rgb_white_region():
    mask_image = Image.new("RGB", (3, 3), (0, 0, 0))
    mask_image.putpixel((2, 2), (255, 255, 255))
    mask = load_mask(mask_image)
    assert mask[2, 2] == 1.0
    assert mask.sum() == 1.0


def test_mask_rgba_transparency_marks_region():
    array = np.full((2, 2, 4), 255, dtype=np.uint8)
    array[0, 0, 3] = 0
    array[1, 1, 3] = 64
    mask = load_mask(_encode(Image.fromarray(array, mode="RGBA")))
    assert mask[0, 0] == 1.0
    assert mask[0, 1] == 0.0
    assert mask[1, 1] == pytest.approx(1 - 64 / 255)


def test_mask_opaque_rgba_uses_luminance():
    array = np.zeros((2, 2, 4), dtype=np.uint8)
    array[..., 3] = 255
    array[0, 0, :3] = 255
    mask = load_mask(Image.fromarray(array, mode="RGBA"))
    assert mask[0, 0] == 1.0
    assert mask.sum() == 1.0


def test_mask_soft_values():
    mask = load_mask(Image.new("L", (2, 2), 128))
    assert mask[0, 0] == pytest.approx(128 / 255)


def test_mask_resized_bilinear():
    mask_image = Image.new("L", (10, 10), 0)
    mask_image.paste(255, (0, 0, 5, 10))  # left half marked
    mask = load_mask(mask_image, size=(20, 6))
    assert mask.shape == (6, 20)
    assert mask.min() >= 0.0
    assert mask.max() <= 1.0
    assert mask[:, 0].min() == pytest.approx(1.0)
    assert mask[:, -1].max() == pytest.approx(0.0)
    assert 0.0 < mask[3, 10] < 1.0


def test_mask_from_array():
    mask = load_mask(np.array([[0, 255], [128, 0]], dtype=np.uint8))
    assert mask[0, 1] == 1.0
    assert mask[1, 0] == pytest.approx(128 / 255)


def test_mask_unreadable_rejected(tmp_path):
    path = tmp_path / "mask.png"
    path.write_bytes(b"\x89PNG broken")
    with pytest.raises(InvalidInputError, match="mask.png"):
        load_mask(path)


def test_tensor_round_trip():
    array = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = pil_to_tensor(Image.fromarray(array))
    assert tensor.shape == (3, 5, 7)
    assert tensor.dtype == torch.float32
    assert np.array_equal(np.asarray(tensor_to_pil(tensor)), array)


def test_vae_tensor_range():
    tensor = pil_to_vae_tensor(Image.new("RGB", (2, 2), (0, 255, 0)))
    assert tensor.min() == -1.0
    assert tensor.max() == 1.0
    assert _pixel(vae_tensor_to_pil(tensor)) == (0, 255, 0)


def test_tensor_to_pil_nan_becomes_black():
    tensor = torch.full((3, 2, 2), float("nan"))
    assert _pixel(tensor_to_pil(tensor)) == (0, 0, 0)


def test_real_photo_loads():
    path = REAL_PHOTOS / "images" / "cat-eyes" / "cat-eyes-input.png"
    if not path.is_file():
        pytest.skip(f"real photos not found at {REAL_PHOTOS}")
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (451, 300)
