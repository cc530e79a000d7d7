"""Validation of uploaded images with PIL, before anything is stored.

Checks, in order: not empty, a PNG/JPEG/WebP header, width * height within the pixel limit (read
from the header, so a decompression bomb is rejected before it is decoded), then a full decode,
which catches truncated files.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import warnings

from PIL import Image

from service.errors import ApiError

logger = logging.getLogger(__name__)

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def _reject(field: str, reason: str, status: int = 400, code: str = "invalid_image") -> ApiError:
    return ApiError(status, code, f"{field}: {reason}", field)


def open_checked_image(data: bytes, field: str, max_pixels: int) -> Image.Image:
    """Decode `data` fully; raise ApiError naming `field` when it is not a usable image."""
    if not data:
        raise _reject(field, "the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as error:
        raise _reject(
            field, f"image is too large to decode safely ({error})", 413, "image_too_large"
        ) from error
    except (OSError, ValueError, SyntaxError) as error:
        raise _reject(field, "not a PNG, JPEG or WebP image") from error
    pixels = image.width * image.height
    if pixels > max_pixels:
        raise _reject(
            field,
            f"{image.width}x{image.height} has {pixels} pixels, above the limit of {max_pixels}",
            413,
            "image_too_large",
        )
    if pixels == 0:
        raise _reject(field, "image has no pixels")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    # PIL reports corrupt data through many exception classes: OSError for truncation, and
    # ValueError, SyntaxError, struct.error and others for malformed chunks. Each means a bad upload.
    except Exception as error:
        logger.info(
            "image decode failed", extra={"field": field, "error": f"{type(error).__name__}: {error}"}
        )
        raise _reject(field, "image data is truncated or corrupt") from error
    return image


def validate_image(data: bytes, field: str, max_pixels: int) -> ImageInfo:
    image = open_checked_image(data, field, max_pixels)
    return ImageInfo(width=image.width, height=image.height, format=str(image.format))
