"""Synthetic MagicBrush-format data: flat shapes on a striped, noisy background.

Each case is one session with one turn: recolor a shape ("make the red circle blue"), remove a
shape ("remove the square") or add one ("add a green triangle"). The mask marks the edited shape
(dilated by a pixel or two, like a brush stroke), and the ground-truth output applies the edit
exactly, so a model's result can be scored against it. Output is deterministic for a seed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from rl4pix_core.data.magicbrush import CAPTIONS_FILE, IMAGES_DIR, SESSIONS_FILE
from rl4pix_core.errors import InvalidInputError

logger = logging.getLogger(__name__)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 40),
    "purple": (140, 60, 180),
    "orange": (240, 130, 30),
}
SHAPES = ("circle", "square", "triangle")
EDIT_KINDS = ("recolor", "remove", "add")
GRID_CELLS = 3  # shapes sit in distinct cells of a 3x3 grid, so they never overlap
MIN_SIZE = 32


@dataclass(frozen=True)
class Shape:
    kind: str
    color: str
    center: tuple[float, float]
    radius: float


@dataclass(frozen=True)
class SyntheticCase:
    """One generated edit: input and output images, mask, instruction and output caption."""

    img_id: str
    instruction: str
    caption: str
    input_image: Image.Image
    mask: Image.Image
    output_image: Image.Image


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a uint8 [size, size, 3] background: a muted base color, diagonal stripes and noise."""
    base = rng.uniform(90, 200, size=3)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(size / 10, size / 4)
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float64)
    phase = (columns * np.cos(angle) + rows * np.sin(angle)) * (2 * np.pi / period)
    stripes = 25.0 * np.sin(phase)[..., None]
    noise = rng.normal(0.0, 8.0, size=(size, size, 3))
    return np.clip(base + stripes + noise, 0, 255).astype(np.uint8)


def _polygon(shape: Shape) -> list[tuple[float, float]]:
    x, y = shape.center
    r = shape.radius
    if shape.kind == "square":
        return [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]
    return [(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)]  # triangle, pointing up


def _draw(draw: ImageDraw.ImageDraw, shape: Shape, fill: tuple[int, ...] | int) -> None:
    if shape.kind == "circle":
        x, y = shape.center
        draw.ellipse((x - shape.radius, y - shape.radius, x + shape.radius, y + shape.radius), fill=fill)
    else:
        draw.polygon(_polygon(shape), fill=fill)


def _render(background: np.ndarray, shapes: Sequence[Shape]) -> Image.Image:
    image = Image.fromarray(background, mode="RGB")
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        _draw(draw, shape, COLORS[shape.color])
    return image


def _render_mask(shape: Shape, size: int) -> Image.Image:
    mask = Image.new("L", (size, size), 0)
    _draw(ImageDraw.Draw(mask), shape, 255)
    dilation = max(1, size // 64)
    return mask.filter(ImageFilter.MaxFilter(2 * dilation + 1))


def _new_shape(rng: np.random.Generator, cell_choice: int, size: int, placed: Sequence[Shape]) -> Shape:
    """Place a shape in a free grid cell with a (kind, color) pair no other shape has."""
    cell_size = size / GRID_CELLS
    taken_cells = {(int(s.center[0] // cell_size), int(s.center[1] // cell_size)) for s in placed}
    free = [
        index
        for index in range(GRID_CELLS**2)
        if (index % GRID_CELLS, index // GRID_CELLS) not in taken_cells
    ]
    free_index = free[cell_choice % len(free)]
    column, row = free_index % GRID_CELLS, free_index // GRID_CELLS
    jitter = rng.uniform(-0.1, 0.1, size=2) * cell_size
    center = ((column + 0.5) * cell_size + jitter[0], (row + 0.5) * cell_size + jitter[1])
    taken_pairs = {(s.kind, s.color) for s in placed}
    options = [(kind, color) for kind in SHAPES for color in COLORS if (kind, color) not in taken_pairs]
    kind, color = options[int(rng.integers(len(options)))]
    return Shape(kind, color, center, radius=cell_size * 0.35)


def _name(shape: Shape, others: Sequence[Shape]) -> str:
    """Name a shape by kind alone when that is unique in the scene, else by color and kind."""
    if sum(other.kind == shape.kind for other in others) == 1:
        return shape.kind
    return f"{shape.color} {shape.kind}"


def _with_article(words: str) -> str:
    return f"an {words}" if words[0] in "aeiou" else f"a {words}"


def _caption(shapes: Sequence[Shape]) -> str:
    if not shapes:
        return "a striped background"
    described = [_with_article(f"{shape.color} {shape.kind}") for shape in shapes]
    return " and ".join(described) + " on a striped background"


def _make_edit(rng: np.random.Generator, shapes: list[Shape], size: int) -> tuple[str, list[Shape], Shape]:
    """Choose and apply an edit; return the instruction, the output's shapes and the edited shape."""
    kind = EDIT_KINDS[int(rng.integers(len(EDIT_KINDS)))]
    if kind == "add":
        added = _new_shape(rng, int(rng.integers(GRID_CELLS**2)), size, shapes)
        return f"add {_with_article(f'{added.color} {added.kind}')}", [*shapes, added], added
    target_index = int(rng.integers(len(shapes)))
    target = shapes[target_index]
    if kind == "remove":
        remaining = [shape for index, shape in enumerate(shapes) if index != target_index]
        return f"remove the {_name(target, shapes)}", remaining, target
    used = {(shape.kind, shape.color) for shape in shapes}
    new_colors = [color for color in COLORS if (target.kind, color) not in used]
    new_color = new_colors[int(rng.integers(len(new_colors)))]
    recolored = replace(target, color=new_color)
    output_shapes = [recolored if index == target_index else shape for index, shape in enumerate(shapes)]
    return f"make the {target.color} {target.kind} {new_color}", output_shapes, target


def make_synthetic_case(index: int, size: int = 64, seed: int = 0) -> SyntheticCase:
    """Generate case `index` of the dataset for `seed`; the same arguments give the same case."""
    if size < MIN_SIZE:
        raise InvalidInputError(f"synthetic image size must be at least {MIN_SIZE} pixels, got {size}")
    rng = np.random.default_rng([seed, index])
    background = _background(rng, size)
    shapes: list[Shape] = []
    for _ in range(int(rng.integers(1, 3))):
        shapes.append(_new_shape(rng, int(rng.integers(GRID_CELLS**2)), size, shapes))
    instruction, output_shapes, edited = _make_edit(rng, shapes, size)
    return SyntheticCase(
        img_id=f"synthetic-{index:05d}",
        instruction=instruction,
        caption=_caption(output_shapes),
        input_image=_render(background, shapes),
        mask=_render_mask(edited, size),
        output_image=_render(background, output_shapes),
    )


def _write_case(images_root: Path, case: SyntheticCase) -> dict[str, str]:
    folder = images_root / case.img_id
    folder.mkdir(parents=True)
    turn = {
        "input": f"{case.img_id}-input.png",
        "mask": f"{case.img_id}-mask1.png",
        "output": f"{case.img_id}-output1.png",
        "instruction": case.instruction,
    }
    case.input_image.save(folder / turn["input"])
    case.mask.save(folder / turn["mask"])
    case.output_image.save(folder / turn["output"])
    return turn


def write_synthetic_magicbrush(root: str | Path, count: int, size: int = 64, seed: int = 0) -> Path:
    """Write `count` synthetic cases as a MagicBrush folder at `root` and return `root`.

    `root` must not exist or be an empty folder. The files are written to a temporary folder next
    to it and renamed into place, so an error leaves nothing half-written.
    """
    root = Path(root)
    if count < 1:
        raise InvalidInputError(f"count must be at least 1, got {count}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InvalidInputError(f"{root} already exists and is not an empty folder; choose a new path")
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        sessions: dict[str, list[dict[str, str]]] = {}
        captions: dict[str, dict[str, str]] = {}
        for index in range(count):
            case = make_synthetic_case(index, size, seed)
            turn = _write_case(staging / IMAGES_DIR, case)
            sessions[case.img_id] = [turn]
            captions[case.img_id] = {turn["output"]: case.caption}
        (staging / SESSIONS_FILE).write_text(json.dumps(sessions, indent=2), encoding="utf-8")
        (staging / CAPTIONS_FILE).write_text(json.dumps(captions, indent=2), encoding="utf-8")
        if root.exists():
            root.rmdir()
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("wrote %d synthetic MagicBrush cases (%dx%d, seed %d) to %s", count, size, size, seed, root)
    return root


def split_ids(
    ids: Sequence[str], held_out_fraction: float = 0.2, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Split ids into (train, held_out) by a seeded shuffle; each list is returned sorted.

    With a fraction above 0 and at least two ids, both parts get at least one id.
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise InvalidInputError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}")
    unique = sorted(set(ids))
    held_out_count = round(len(unique) * held_out_fraction)
    if held_out_fraction > 0 and len(unique) >= 2:
        held_out_count = min(max(held_out_count, 1), len(unique) - 1)
    order = np.random.default_rng(seed).permutation(len(unique))
    held_out = sorted(unique[i] for i in order[:held_out_count])
    train = sorted(unique[i] for i in order[held_out_count:])
    return train, held_out
