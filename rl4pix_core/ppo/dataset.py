"""The training edits: MagicBrush turns turned into PPO sampling requests.

Each turn contributes its source image and its edit mask. Its ground-truth output is never read:
the reward needs only the mask, the input and the model's own output. A later turn's source is
the image MagicBrush gives that turn as input, which is the previous turn's ground-truth output.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from rl4pix_core.data.magicbrush import EditTurn, load_magicbrush
from rl4pix_core.editing import EditRequest
from rl4pix_core.errors import ConfigError, InvalidInputError
from rl4pix_core.images import fit_to_model
from rl4pix_core.ppo.config import DataSection, SampleConfig

logger = logging.getLogger(__name__)

# Streams of `derive_seed`, so sampling and shuffling never share random numbers.
SAMPLING_STREAM = 0
SHUFFLE_STREAM = 1


def derive_seed(*parts: int) -> int:
    """Return a 31-bit seed that depends only on `parts` (config seed, epoch, process, ...).

    Every random choice of the trainer is drawn from such a seed, so a resumed run repeats the
    choices of an uninterrupted one without restoring any generator state.
    """
    return int(np.random.SeedSequence([int(part) for part in parts]).generate_state(1)[0] & 0x7FFFFFFF)


class TrainingSet:
    """MagicBrush turns with a source image and a mask, prepared at one square working size."""

    def __init__(self, data: DataSection, resolution: int) -> None:
        self.resolution = resolution
        self.turns = _load_turns(data)
        logger.info("training on %d edit turns from %s at %d px", len(self.turns), data.path, resolution)

    def __len__(self) -> int:
        return len(self.turns)

    def key(self, index: int) -> tuple[str, str]:
        """Return the stat-tracking key of a turn: (image id, instruction)."""
        turn = self.turns[index]
        return f"{turn.img_id}/{turn.turn_index}", turn.instruction

    def prepare(self, index: int) -> tuple[Image.Image, np.ndarray]:
        """Load a turn's source and mask, center-cropped to a square and resized to `resolution`."""
        turn = self.turns[index]
        image = turn.source_image()
        mask = turn.mask_array(image.size)
        box = _center_square(image.size)
        side = self.resolution
        square = image.crop(box)
        if square.size != (side, side):
            square = square.resize((side, side), Image.Resampling.LANCZOS)
        square = fit_to_model(square, side)
        mask_image = Image.fromarray(mask, mode="F").crop(box).resize(square.size, Image.Resampling.BILINEAR)
        return square, np.clip(np.asarray(mask_image, dtype=np.float32), 0.0, 1.0)

    def requests(
        self, sample: SampleConfig, seed: int, epoch: int, process_index: int, batch_index: int
    ) -> tuple[list[EditRequest], list[tuple[str, str]]]:
        """Draw one sampling batch: turns with replacement, and one noise seed per request."""
        rng = np.random.default_rng(derive_seed(seed, SAMPLING_STREAM, epoch, process_index, batch_index))
        indices = rng.integers(0, len(self.turns), size=sample.batch_size)
        noise_seeds = rng.integers(0, 2**31 - 1, size=sample.batch_size)
        requests, keys = [], []
        for index, noise_seed in zip(indices.tolist(), noise_seeds.tolist()):
            image, mask = self.prepare(index)
            key = self.key(index)
            requests.append(
                EditRequest(
                    image=image,
                    instruction=self.turns[index].instruction,
                    seed=int(noise_seed),
                    steps=sample.num_steps,
                    guidance_scale=sample.guidance_scale,
                    image_guidance_scale=sample.image_guidance_scale,
                    eta=sample.eta,
                    mask=mask,
                    key=key[0],
                )
            )
            keys.append(key)
        return requests, keys


def _center_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _load_turns(data: DataSection) -> list[EditTurn]:
    if not data.path:
        raise ConfigError(
            "data.path is empty: set it to a MagicBrush folder or parquet file, e.g. --set data.path=DIR"
        )
    sessions = []
    for source in _split_sources(Path(data.path), data.split):
        sessions.extend(load_magicbrush(source))
    turns = [turn for session in sessions for turn in session.turns]
    usable = [turn for turn in turns if turn.mask is not None and turn.source.available()]
    if len(usable) < len(turns):
        logger.warning(
            "skipping %d of %d turns without a source image or mask", len(turns) - len(usable), len(turns)
        )
    if data.limit is not None:
        usable = usable[: data.limit]
    if not usable:
        raise InvalidInputError(f"no usable edit turns in {data.path}: each needs a source image and a mask")
    return usable


def _split_sources(path: Path, split: str | None) -> list[Path]:
    """Return what to load for `split`: the subfolder `<path>/<split>`, or the `<split>-*.parquet` files."""
    if split is None:
        return [path]
    if (path / split).is_dir():
        return [path / split]
    parquet_files = sorted(path.glob(f"{split}-*.parquet")) or sorted(path.glob(f"**/{split}-*.parquet"))
    if parquet_files:
        return parquet_files
    raise ConfigError(
        f"invalid value {split!r} for 'data.split': {path} has no folder {split!r} and no {split}-*.parquet files; "
        "set data.split to null to read the whole of data.path"
    )
