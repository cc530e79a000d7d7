"""The MagicBrush evaluation metrics: L1, L2, SSIM, PSNR and CLIP-T.

Each pair is a generated image and its ground-truth reference. As in MagicBrush's evaluation, the
generated image is resized to the reference size with PIL bicubic resampling and both are read as
RGB floats in [0, 1]. Each metric is computed per pair, and the reported value is the mean over pairs.
L1 is the mean absolute difference and L2 the mean squared difference (torch's L1Loss and MSELoss
per pair). CLIP-T is the cosine similarity between the CLIP embeddings of the generated image and
the caption of the reference.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rl4pix_core.errors import InvalidInputError, ModelNotFoundError
from rl4pix_core.images import load_image

logger = logging.getLogger(__name__)

# SSIM as Wang et al. 2004 and scikit-image's structural_similarity(gaussian_weights=True,
# sigma=1.5, use_sample_covariance=False, data_range=1): an 11-tap Gaussian (truncated at 3.5
# sigma), population covariance, and the 5-pixel border where the window leaves the image dropped.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_RADIUS = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
SSIM_WINDOW = 2 * SSIM_RADIUS + 1
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 1.0

# Identical images have infinite PSNR, which would make every mean infinite: cap each pair here.
PSNR_MAX_DB = 100.0

DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"
TINY_CLIP_MODEL = "tiny"
CLIP_MAX_TOKENS = 77
CLIP_BATCH_SIZE = 16
CLIP_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_IMAGE_SIZE = 224
TINY_CLIP_SEED = 0

RESIZE_METHOD = "generated resized to the reference size, PIL bicubic"


def prepare_pair(generated: Image.Image, reference: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert a pair to float64 tensors [3, H, W] in [0, 1] at the reference size.

    Both images are converted to RGB, with transparency composited on white. When the sizes
    differ, the generated image is resized to the reference size with PIL bicubic resampling.
    """
    generated_rgb = load_image(generated)
    reference_rgb = load_image(reference)
    if generated_rgb.size != reference_rgb.size:
        generated_rgb = generated_rgb.resize(reference_rgb.size, Image.BICUBIC)
    return _to_float64(generated_rgb), _to_float64(reference_rgb)


def _to_float64(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float64) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def _check_same_shape(generated: torch.Tensor, reference: torch.Tensor) -> None:
    if generated.shape != reference.shape:
        raise InvalidInputError(
            f"image shapes differ: {list(generated.shape)} and {list(reference.shape)}; "
            "use prepare_pair to resize the generated image to the reference size"
        )


def l1_distance(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """Return the mean absolute difference over all pixels and channels."""
    _check_same_shape(generated, reference)
    return float((generated - reference).abs().mean())


def l2_distance(generated: torch.Tensor, reference: torch.Tensor) -> float:
    """Return the mean squared difference over all pixels and channels (MagicBrush's L2)."""
    _check_same_shape(generated, reference)
    return float(((generated - reference) ** 2).mean())


def psnr(generated: torch.Tensor, reference: torch.Tensor, data_range: float = DATA_RANGE) -> float:
    """Return the PSNR in dB, capped at PSNR_MAX_DB (100 dB) so identical images stay finite."""
    mse = l2_distance(generated, reference)
    if mse == 0.0:
        return PSNR_MAX_DB
    return min(10.0 * math.log10(data_range**2 / mse), PSNR_MAX_DB)


def _gaussian_window() -> list[float]:
    offsets = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return (weights / weights.sum()).tolist()


def _filter_valid(images: np.ndarray, window: list[float]) -> np.ndarray:
    """Blur [C, H, W] with the separable window, keeping only positions where it fits inside.

    These are exactly the positions scikit-image keeps after cropping the border, so its border
    mode never matters here. NumPy sums of shifted slices run in a fraction of the time of
    float64 conv2d in torch on a busy CPU.
    """
    taps = len(window)
    height, width = images.shape[-2:]
    rows = sum(
        weight * images[..., offset : width - taps + 1 + offset] for offset, weight in enumerate(window)
    )
    return sum(
        weight * rows[..., offset : height - taps + 1 + offset, :] for offset, weight in enumerate(window)
    )


def ssim(generated: torch.Tensor, reference: torch.Tensor, data_range: float = DATA_RANGE) -> float:
    """Return the mean SSIM over channels of two [C, H, W] images (Gaussian window, see SSIM_*)."""
    _check_same_shape(generated, reference)
    if generated.ndim != 3:
        raise InvalidInputError(f"ssim expects images [C, H, W], got shape {list(generated.shape)}")
    height, width = generated.shape[-2:]
    if min(height, width) < SSIM_WINDOW:
        raise InvalidInputError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {width}x{height}; "
            "use larger images"
        )
    x = generated.detach().to("cpu", torch.float64).numpy()
    y = reference.detach().to("cpu", torch.float64).numpy()
    window = _gaussian_window()

    mean_x = _filter_valid(x, window)
    mean_y = _filter_valid(y, window)
    variance_x = _filter_valid(x * x, window) - mean_x * mean_x
    variance_y = _filter_valid(y * y, window) - mean_y * mean_y
    covariance = _filter_valid(x * y, window) - mean_x * mean_y

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * covariance + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (variance_x + variance_y + c2)
    per_channel = (numerator / denominator).reshape(x.shape[0], -1).mean(axis=1)
    return float(per_channel.mean())


def clip_preprocess(images: Sequence[Image.Image], size: int = CLIP_IMAGE_SIZE) -> torch.Tensor:
    """Prepare images for a CLIP vision tower: float32 [B, 3, size, size].

    Resizes the shorter side to `size` (bicubic), center-crops to a square and normalizes with
    CLIP's mean and std, like transformers' CLIPImageProcessor, without torchvision.
    """
    mean = torch.tensor(CLIP_IMAGE_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(CLIP_IMAGE_STD, dtype=torch.float32).view(3, 1, 1)
    batch = []
    for image in images:
        rgb = image.convert("RGB")
        width, height = rgb.size
        short = min(width, height)
        resized_size = (max(size, int(size * width / short)), max(size, int(size * height / short)))
        rgb = rgb.resize(resized_size, Image.BICUBIC)
        left = (resized_size[0] - size) // 2
        top = (resized_size[1] - size) // 2
        rgb = rgb.crop((left, top, left + size, top + size))
        pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
        batch.append((pixels - mean) / std)
    return torch.stack(batch)


def _build_tiny_clip() -> tuple[torch.nn.Module, Any]:
    """Build a small random-weight CLIPModel (fixed seed) with the offline byte-level tokenizer."""
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    from rl4pix_core.tokenizer import offline_clip_tokenizer

    tokenizer = offline_clip_tokenizer()
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=CLIP_MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    vision_config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=CLIP_IMAGE_SIZE,
        patch_size=32,
    )
    config = CLIPConfig(
        text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), projection_dim=16
    )
    # fork_rng keeps the caller's global torch RNG untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_CLIP_SEED)
        model = CLIPModel(config)
    return model, tokenizer


def _looks_like_path(reference: str) -> bool:
    return reference.startswith((".", "/", "~")) or "\\" in reference or Path(reference).exists()


def _load_clip_image_processor(reference: str, local_files_only: bool | None) -> Any:
    # transformers 5 names its torchvision-free processor CLIPImageProcessorPil; in 4.x
    # CLIPImageProcessor itself needs only PIL and numpy.
    try:
        from transformers import CLIPImageProcessorPil as processor_class
    except ImportError:
        from transformers import CLIPImageProcessor as processor_class
    return processor_class.from_pretrained(reference, **_hub_kwargs(local_files_only))


def _hub_kwargs(local_files_only: bool | None) -> dict[str, Any]:
    return {} if local_files_only is None else {"local_files_only": local_files_only}


def _load_pretrained_clip(reference: str, local_files_only: bool | None) -> tuple[Any, Any, Any]:
    from transformers import AutoTokenizer, CLIPModel

    if _looks_like_path(reference) and not Path(reference).expanduser().is_dir():
        raise ModelNotFoundError(
            f"CLIP model directory not found: {reference}; pass a directory saved with "
            f"CLIPModel.save_pretrained, a hub id such as {DEFAULT_CLIP_MODEL!r}, or {TINY_CLIP_MODEL!r}"
        )
    location = str(Path(reference).expanduser()) if _looks_like_path(reference) else reference
    logger.info("loading CLIP model %s", location)
    try:
        model = CLIPModel.from_pretrained(location, **_hub_kwargs(local_files_only))
        tokenizer = AutoTokenizer.from_pretrained(location, **_hub_kwargs(local_files_only))
        processor = _load_clip_image_processor(location, local_files_only)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"cannot load CLIP model {reference!r} ({error}); a hub id needs network access to the "
            "Hugging Face Hub or a copy in the local cache, otherwise pass a local directory that "
            f"holds a saved CLIPModel, or {TINY_CLIP_MODEL!r} for a random-weight test model"
        ) from error
    return model, tokenizer, processor


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class ClipScorer:
    """CLIP image and text embeddings for CLIP-T.

    `model` is a hub id (None means DEFAULT_CLIP_MODEL), a local directory saved with
    `CLIPModel.save_pretrained`, or "tiny": a random-weight model built offline (seeded, so its
    scores are reproducible but meaningless), for tests. The hub path uses `from_pretrained`, so it needs network access or the local cache.
    `local_files_only` is passed to `from_pretrained` when set.
    """

    def __init__(
        self,
        model: str | None = DEFAULT_CLIP_MODEL,
        device: str | torch.device | None = None,
        *,
        local_files_only: bool | None = None,
    ) -> None:
        model = model or DEFAULT_CLIP_MODEL
        self.model_name = model
        self.device = torch.device(device) if device is not None else _default_device()
        if model == TINY_CLIP_MODEL:
            clip_model, self.tokenizer = _build_tiny_clip()
            self._processor = None
        else:
            clip_model, self.tokenizer, self._processor = _load_pretrained_clip(model, local_files_only)
        self.model = clip_model.to(self.device, torch.float32).eval()

    def _pixel_values(self, images: Sequence[Image.Image]) -> torch.Tensor:
        rgb_images = [image.convert("RGB") for image in images]
        if self._processor is None:
            size = int(self.model.config.vision_config.image_size)
            return clip_preprocess(rgb_images, size)
        return self._processor(images=rgb_images, return_tensors="pt")["pixel_values"]

    def _warn_long_captions(self, captions: Sequence[str], offset: int) -> None:
        for index, caption in enumerate(captions):
            # tokenize() leaves out the start and end tokens, which the encoder adds.
            token_count = len(self.tokenizer.tokenize(caption)) + 2
            if token_count > CLIP_MAX_TOKENS:
                logger.warning(
                    "caption %d has %d tokens; CLIP reads only the first %d: %r",
                    offset + index,
                    token_count,
                    CLIP_MAX_TOKENS,
                    caption[:80],
                )

    def _input_ids(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        tokens = self.tokenizer(
            list(captions),
            padding="max_length",
            truncation=True,
            max_length=CLIP_MAX_TOKENS,
            return_tensors="pt",
        )
        return {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}

    @torch.inference_mode()
    def clip_t(self, images: Sequence[Image.Image], captions: Sequence[str]) -> list[float]:
        """Return the cosine similarity of each image's and caption's CLIP embeddings."""
        if len(images) != len(captions):
            raise InvalidInputError(f"clip_t got {len(images)} images but {len(captions)} captions")
        scores: list[float] = []
        for start in range(0, len(images), CLIP_BATCH_SIZE):
            batch_captions = [str(caption) for caption in captions[start : start + CLIP_BATCH_SIZE]]
            self._warn_long_captions(batch_captions, start)
            inputs = self._input_ids(batch_captions)
            pixel_values = self._pixel_values(images[start : start + CLIP_BATCH_SIZE])
            outputs = self.model(
                input_ids=inputs["input_ids"].to(self.device),
                attention_mask=inputs["attention_mask"].to(self.device),
                pixel_values=pixel_values.to(self.device, torch.float32),
            )
            similarity = F.cosine_similarity(outputs.image_embeds, outputs.text_embeds, dim=-1)
            scores.extend(float(value) for value in similarity.cpu())
        return scores


@dataclass
class MetricsResult:
    """Means over pairs, per-pair values and the settings that produced them."""

    count: int
    l1: float
    l2: float
    ssim: float
    psnr: float
    clip_t: float | None
    per_item: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def metric_settings(clip_model: str | None) -> dict[str, Any]:
    """Describe how the metrics are computed, for reports and stored results."""
    return {
        "resize_method": RESIZE_METHOD,
        "l2": "mean squared difference",
        "ssim_window": SSIM_WINDOW,
        "ssim_sigma": SSIM_SIGMA,
        "ssim_k1": SSIM_K1,
        "ssim_k2": SSIM_K2,
        "ssim_covariance": "population",
        "data_range": DATA_RANGE,
        "psnr_max_db": PSNR_MAX_DB,
        "clip_model": clip_model,
    }


def score_pair(generated: Image.Image, reference: Image.Image) -> dict[str, float]:
    """Compute L1, L2, SSIM and PSNR of one pair (generated resized to the reference size)."""
    generated_tensor, reference_tensor = prepare_pair(generated, reference)
    return {
        "l1": l1_distance(generated_tensor, reference_tensor),
        "l2": l2_distance(generated_tensor, reference_tensor),
        "ssim": ssim(generated_tensor, reference_tensor),
        "psnr": psnr(generated_tensor, reference_tensor),
    }


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return float(sum(values) / len(values))


def score_pairs(
    pairs: Iterable[tuple[Image.Image, Image.Image]],
    captions: Sequence[str | None] | None = None,
    clip_scorer: ClipScorer | None = None,
    *,
    names: Sequence[str] | None = None,
    progress: bool = False,
) -> MetricsResult:
    """Score (generated, reference) pairs and average each metric over them.

    `pairs` may be a generator, so a caller can load images one pair at a time. `captions[i]` is
    the caption of reference i, or None; CLIP-T averages over the pairs that have one and is None
    when none has. Without `clip_scorer`, captions load the default CLIP model. `names` label the
    per-item rows. `progress` shows a tqdm bar on stderr.
    """
    if captions is not None and any(caption is not None for caption in captions) and clip_scorer is None:
        clip_scorer = ClipScorer()
    iterator: Iterable[tuple[Image.Image, Image.Image]] = pairs
    if progress:
        from tqdm import tqdm

        total = len(pairs) if isinstance(pairs, Sequence) else None
        iterator = tqdm(pairs, total=total, desc="scoring", unit="pair")

    per_item: list[dict[str, Any]] = []
    for index, (generated, reference) in enumerate(iterator):
        item: dict[str, Any] = {"name": names[index] if names is not None else str(index)}
        item.update(score_pair(generated, reference))
        caption = captions[index] if captions is not None and index < len(captions) else None
        item["clip_t"] = clip_scorer.clip_t([generated], [caption])[0] if caption is not None else None
        per_item.append(item)

    if not per_item:
        raise InvalidInputError("no image pairs to score; pass at least one (generated, reference) pair")
    if captions is not None and len(captions) != len(per_item):
        raise InvalidInputError(f"got {len(per_item)} image pairs but {len(captions)} captions")
    clip_values = [item["clip_t"] for item in per_item if item["clip_t"] is not None]
    logger.info("scored %d image pairs (%d with captions)", len(per_item), len(clip_values))
    return MetricsResult(
        count=len(per_item),
        l1=_mean(item["l1"] for item in per_item),
        l2=_mean(item["l2"] for item in per_item),
        ssim=_mean(item["ssim"] for item in per_item),
        psnr=_mean(item["psnr"] for item in per_item),
        clip_t=_mean(clip_values) if clip_values else None,
        per_item=per_item,
        settings=metric_settings(clip_scorer.model_name if clip_values and clip_scorer is not None else None),
    )
