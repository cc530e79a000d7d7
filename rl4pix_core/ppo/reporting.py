"""Training outputs in the logdir: metrics.jsonl, the reward curve and sample grids."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from rl4pix_core.attention import attention_overlay
from rl4pix_core.images import tensor_to_pil

logger = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
REWARD_CURVE_FILE = "reward_curve.png"
SAMPLES_DIR = "samples"
GRID_ROWS = 4


def read_history(logdir: Path, up_to_epoch: int) -> list[dict[str, Any]]:
    """Read metrics.jsonl, keeping the epochs 1..up_to_epoch (a resumed run rewrites later ones)."""
    path = logdir / METRICS_FILE
    if not path.is_file():
        return []
    history = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("epoch", 0) <= up_to_epoch:
                history.append(record)
    return history


def write_history(logdir: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite metrics.jsonl with `history`, one JSON object per line, through a temporary file."""
    logdir.mkdir(parents=True, exist_ok=True)
    temporary = logdir / f".{METRICS_FILE}.tmp-{os.getpid()}"
    temporary.write_text("".join(json.dumps(record) + "\n" for record in history), encoding="utf-8")
    temporary.replace(logdir / METRICS_FILE)


def append_metrics(logdir: Path, record: dict[str, Any]) -> None:
    logdir.mkdir(parents=True, exist_ok=True)
    with (logdir / METRICS_FILE).open("a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def plot_reward_curve(logdir: Path, history: list[dict[str, Any]]) -> Path:
    """Plot the mean reward per epoch with a +-1 std band to reward_curve.png."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    epochs = [record["epoch"] for record in history]
    means = [record["reward_mean"] for record in history]
    stds = [record["reward_std"] for record in history]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    axes.plot(epochs, means, marker="o", markersize=3, label="reward mean")
    axes.fill_between(
        epochs,
        [m - s for m, s in zip(means, stds)],
        [m + s for m, s in zip(means, stds)],
        alpha=0.25,
        label="+-1 std",
    )
    axes.set_xlabel("epoch")
    axes.set_ylabel("reward")
    axes.legend()
    figure.tight_layout()
    path = logdir / REWARD_CURVE_FILE
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def save_sample_grid(
    logdir: Path,
    epoch: int,
    input_images: torch.Tensor,
    output_images: torch.Tensor,
    attention_maps: torch.Tensor,
    masks: torch.Tensor | None,
) -> Path:
    """Save samples/epoch-<epoch>.png: per row the input, the output, its attention overlay and the mask."""
    rows = []
    for index in range(min(GRID_ROWS, input_images.shape[0])):
        source = tensor_to_pil(input_images[index])
        output = tensor_to_pil(output_images[index])
        cells = [source, output, attention_overlay(output, attention_maps[index])]
        if masks is not None:
            mask = masks[index].clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
            cells.append(Image.fromarray(mask, mode="L").convert("RGB").resize(source.size))
        rows.append(cells)
    width, height = rows[0][0].size
    grid = Image.new("RGB", (width * max(len(row) for row in rows), height * len(rows)), "white")
    for row_index, cells in enumerate(rows):
        for column, cell in enumerate(cells):
            grid.paste(cell, (column * width, row_index * height))
    folder = logdir / SAMPLES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"epoch-{epoch}.png"
    grid.save(path)
    return path
