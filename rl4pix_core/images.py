"""Image and mask loading, model-size fitting and tensor conversions.

Every loader returns plain RGB (images) or float32 arrays in [0, 1] (masks), whatever the file's
mode, and raises `InvalidInputError` naming the file and the fix for anything it cannot decode.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from rl4pix_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

ImageSource = str | Path | bytes | Image.Image
MaskSource = str | Path | bytes | Image.Image | np.ndarray

DEFAULT_MAX_PIXELS = 64_000_000
MODEL_MULTIPLE = 8

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_SIXTEEN_BIT_MAX = 65535.0

# Exceptions that Pillow raises for corrupt, truncated or unsupported files.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    Image.DecompressionBombError,
)

# `Image.MAX_IMAGE_PIXELS` is process-wide, so each call sets it under this lock for the header read.
_PIXEL_LIMIT_LOCK = threading.Lock()


def describe_source(source: object) -> str:
    """Name an image source for error messages: its path, "uploaded bytes" or "in-memory image"."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "uploaded bytes"
    if isinstance(source, np.ndarray):
        return "in-memory array"
    return "in-memory image"


def _read_source_bytes(source: str | Path | bytes) -> bytes:
    name = describe_source(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"image file not found: {name}; check the path")
        data = path.read_bytes()
    if not data:
        raise InvalidInputError(f"image {name} is empty (0 bytes); use a PNG or JPEG file")
    return data


def _check_pixel_count(size: tuple[int, int], max_pixels: int, name: str) -> None:
    width, height = size
    if width * height > max_pixels:
        raise InvalidInputError(
            f"image {name} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}; "
            "downscale it first or raise max_pixels"
        )


def _open_with_limit(data: bytes, max_pixels: int, name: str) -> Image.Image:
    """Decode `data` fully, rejecting images over `max_pixels` before any pixel data is read."""
    with _PIXEL_LIMIT_LOCK:
        previous_limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                # Pillow warns between 1x and 2x the limit; the explicit check below raises instead.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as error:
            raise InvalidInputError(
                f"image {name} is too large to decode safely ({error}); downscale it first"
            ) from error
        except _DECODE_ERRORS as error:
            # Pillow's message only repeats the in-memory buffer's repr, so it is left out.
            raise InvalidInputError(
                f"cannot read image {name}: not a supported image file; use a PNG, JPEG, WebP or TIFF image"
            ) from error
        finally:
            Image.MAX_IMAGE_PIXELS = previous_limit

    _check_pixel_count(image.size, max_pixels, name)
    try:
        image.load()
    except _DECODE_ERRORS as error:
        raise InvalidInputError(
            f"cannot read image {name}: the file is truncated or corrupt ({error}); re-export it as PNG or JPEG"
        ) from error
    if getattr(image, "n_frames", 1) > 1:
        logger.info("image %s has %d frames; using the first", name, image.n_frames)
    return image


def _open_any(source: ImageSource, max_pixels: int) -> Image.Image:
    """Open `source` as a decoded PIL image in its own mode, with EXIF orientation applied."""
    name = describe_source(source)
    if max_pixels < 1:
        raise InvalidInputError(f"max_pixels must be positive, got {max_pixels}")
    if isinstance(source, Image.Image):
        _check_pixel_count(source.size, max_pixels, name)
        image = source
    elif isinstance(source, (str, Path, bytes, bytearray, memoryview)):
        image = _open_with_limit(_read_source_bytes(source), max_pixels, name)
    else:
        raise InvalidInputError(
            f"unsupported image source type {type(source).__name__}; pass a path, bytes or a PIL image"
        )
    try:
        transposed = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as error:
        logger.warning("ignoring unreadable EXIF orientation of image %s: %s", name, error)
        return image
    return transposed if transposed is not None else image


def _sixteen_bit_to_uint8(image: Image.Image) -> np.ndarray:
    """Scale 0..65535 to 0..255 (value / 257, rounded); mode "I" values outside that range are clipped."""
    values = np.asarray(image).astype(np.float64)
    values = np.clip(values, 0.0, _SIXTEEN_BIT_MAX)
    return np.round(values * (255.0 / _SIXTEEN_BIT_MAX)).astype(np.uint8)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on white and scaling 16-bit data."""
    if image.mode == "RGB" and "transparency" not in image.info:
        return image.copy()
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return _composite_on_white(image)
    if image.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(_sixteen_bit_to_uint8(image), mode="L").convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise InvalidInputError(
            f"cannot convert image {name} from mode {image.mode} to RGB ({error}); save it as an RGB PNG or JPEG"
        ) from error


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Load an image as RGB from a path, encoded bytes or a PIL image.

    Transparent pixels (RGBA, LA, PA, palette or grayscale with a transparency key) are composited
    on white. 16-bit grayscale (I;16, I;16B, I) is scaled to 8 bits, not clipped. EXIF orientation
    is applied. Images over `max_pixels` are rejected from the header, before decoding. A PIL image
    passed in is never modified.
    """
    name = describe_source(source)
    image = _open_any(source, max_pixels)
    return _to_rgb(image, name)


def _nearest_multiple(side: int, limit: int) -> int:
    """Round `side` half-up to a multiple of 8, at least 8, stepping down if that passes `limit`."""
    rounded = max(MODEL_MULTIPLE, int(side / MODEL_MULTIPLE + 0.5) * MODEL_MULTIPLE)
    if rounded > limit:
        rounded -= MODEL_MULTIPLE
    return rounded


def fit_to_model(image: Image.Image, max_side: int = 512) -> Image.Image:
    """Resize `image` for the UNet: longer side at most `max_side`, both sides multiples of 8.

    A longer side above `max_side` is first downscaled to it with Lanczos, keeping the aspect
    ratio. A second resize then rounds each side to the nearest multiple of 8, at least 8 and at
    most `max_side`. An image that already fits is returned as a copy.
    """
    if max_side < MODEL_MULTIPLE:
        raise InvalidInputError(f"max_side must be at least {MODEL_MULTIPLE}, got {max_side}")
    width, height = image.size
    longer = max(width, height)
    if longer > max_side:
        scale = max_side / longer
        width = max(1, round(width * scale))
        height = max(1, round(height * scale))
        image = image.resize((width, height), Image.LANCZOS)
    target = (_nearest_multiple(width, max_side), _nearest_multiple(height, max_side))
    if target != image.size:
        return image.resize(target, Image.LANCZOS)
    return image.copy()


def _alpha_channel(image: Image.Image) -> np.ndarray | None:
    """Return the alpha channel as float in [0, 1], or None when the image has no transparency."""
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        return alpha
    return None


def _luminance(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_uint8(image).astype(np.float32) / 255.0
    if image.mode == "F":
        return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _array_to_mask(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        array = array[..., :3].mean(axis=-1)
    if array.ndim != 2:
        raise InvalidInputError(f"mask array must have shape [H, W], got {list(array.shape)}")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        scale = 1.0 if array.dtype == np.bool_ or array.max(initial=0) <= 1 else 255.0
        array = array.astype(np.float32) / scale
    mask = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(mask, 0.0, 1.0)


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    if (mask.shape[1], mask.shape[0]) == (width, height):
        return mask
    resized = Image.fromarray(mask.astype(np.float32), mode="F").resize((width, height), Image.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def load_mask(
    source: MaskSource,
    size: tuple[int, int] | None = None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load an edit mask as float32 [H, W] in [0, 1], where 1 marks the region to edit.

    In grayscale and RGB masks white marks the region (RGB is reduced to ITU-R 601 luminance).
    A mask with transparency whose alpha is not fully opaque marks the region with its transparent
    pixels (1 - alpha), as MagicBrush masks do. A fully opaque one falls back to luminance. Gray
    values give a soft mask. `size` is (width, height): a mask of another size is resized with
    bilinear interpolation. Integer arrays with values above 1 are read as 0..255.
    """
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        mask = _array_to_mask(source)
    else:
        image = _open_any(source, max_pixels)
        alpha = _alpha_channel(image)
        if alpha is not None and float(alpha.min()) < 1.0:
            mask = 1.0 - alpha
        else:
            mask = _luminance(image)
    if size is not None:
        if len(size) != 2 or min(size) < 1:
            raise InvalidInputError(f"mask size must be (width, height) with positive sides, got {size}")
        mask = _resize_mask(mask, (int(size[0]), int(size[1])))
    logger.debug(
        "loaded mask %s: %dx%d, %.1f%% marked", name, mask.shape[1], mask.shape[0], 100 * mask.mean()
    )
    return np.ascontiguousarray(mask, dtype=np.float32)


def pil_to_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to a float32 tensor [3, H, W] in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).to(torch.float32).div_(255.0)


def tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """Convert a tensor [3, H, W] (or [1, 3, H, W]) in [0, 1] to an RGB PIL image.

    Values are clamped to [0, 1] and NaN becomes 0, so a diverged sample still yields an image.
    """
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise InvalidInputError(f"expected an image tensor [3, H, W], got shape {list(tensor.shape)}")
    values = torch.nan_to_num(tensor.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)
    array = (values * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, mode="RGB")


def pil_to_vae_tensor(image: Image.Image) -> torch.Tensor:
    """Convert a PIL image to the VAE's input range: float32 [3, H, W] in [-1, 1]."""
    return pil_to_tensor(image).mul_(2.0).sub_(1.0)


def vae_tensor_to_pil(tensor: torch.Tensor) -> Image.Image:
    """Convert a VAE output in [-1, 1] ([3, H, W] or [1, 3, H, W]) to an RGB PIL image."""
    return tensor_to_pil((tensor.detach().to(torch.float32) + 1.0) / 2.0)
