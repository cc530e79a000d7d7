"""Measure whether PPO raises the reward on held-out synthetic edits with the random-weight `tiny` preset.

For each learning rate and each seed, the script:

1. splits one synthetic MagicBrush set (`write_synthetic_magicbrush`) into training and held-out
   cases with `split_ids(ids, held_out_fraction, seed)`, written as the splits `train` and
   `heldout` of one folder;
2. trains the LoRA of `tiny` with `rl4pix_core.ppo.trainer.train` for `--epochs` epochs;
3. edits every held-out case `--eval-noise-seeds` times with the untrained model and with the
   trained LoRA. Both use the same noise seeds and the eta, steps and guidance scales of training
   sampling. The script compares the mean reward and its two terms (attention similarity, clipped
   MAE), and does the same for as many training cases, edited with noise seeds training never drew.

The untrained model is the preset without an adapter. A fresh LoRA starts with B = 0, so it
computes the same thing. The training reward curves come from each run's metrics.jsonl.

The preset has random weights, so a reward that rises here shows that the optimizer and the reward
plumbing work: the gradient of the PPO loss moves the LoRA in the direction that the reward
favors. It is no measure of edit quality. Run `python bench/train_learning.py --help`
for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers.utils import logging as diffusers_logging

from rl4pix_core.data.magicbrush import CAPTIONS_FILE, IMAGES_DIR, SESSIONS_FILE
from rl4pix_core.data.synthetic import split_ids, write_synthetic_magicbrush
from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.loading import load_components, load_lora
from rl4pix_core.ppo.config import DataSection, TrainConfig, load_config
from rl4pix_core.ppo.dataset import TrainingSet, derive_seed
from rl4pix_core.ppo.trainer import train
from rl4pix_core.reward import RewardConfig

PRESET = "tiny"
TRAIN_SPLIT = "train"
HELD_OUT_SPLIT = "heldout"
EVAL_STREAM = 7  # derive_seed stream of the evaluation noise seeds, apart from the trainer's streams
EVAL_BATCH = 8  # edits per InstructEditor.edit call during evaluation
CURVE_WINDOW = 5  # epochs averaged at each end of a training curve for the "first" and "last" columns
TERMS = ("total", "attention_similarity", "clip_loss")


@dataclass
class Comparison:
    """Mean reward terms of one set of edits with the untrained model and with the trained LoRA."""

    cases: int
    untrained: dict[str, float]  # mean over the edits of each term in TERMS
    trained: dict[str, float]
    improved_fraction: float  # edits whose total reward rose with the trained LoRA
    paired_stderr: float  # standard error of the mean paired difference of the total reward

    @property
    def gain(self) -> float:
        return self.trained["total"] - self.untrained["total"]


@dataclass
class RunResult:
    """One (learning rate, seed) run: rewards before and after training, and its training curve."""

    learning_rate: float
    seed: int
    train_cases: int
    held_out: Comparison
    seen: Comparison  # the first cases of the training split, edited with fresh noise seeds
    curve: list[float]  # reward_mean per epoch from metrics.jsonl
    approx_kl_mean: float
    clipfrac_mean: float
    train_seconds: float


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="training epochs per run (default: 40)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="training and split seeds (default: 0 1 2)"
    )
    parser.add_argument(
        "--learning-rates",
        type=float,
        nargs="+",
        default=[2e-4, 1e-2],
        help="AdamW learning rates, each run with every seed "
        "(default: 2e-4, the config default from the InstructRL4Pix paper, and 1e-2)",
    )
    parser.add_argument("--cases", type=int, default=48, help="synthetic cases in all (default: 48)")
    parser.add_argument(
        "--held-out-fraction", type=float, default=0.25, help="fraction of cases held out (default: 0.25)"
    )
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    parser.add_argument(
        "--steps", type=int, default=10, help="DDIM steps, training and evaluation (default: 10)"
    )
    parser.add_argument(
        "--eval-noise-seeds",
        type=int,
        default=4,
        help="edits per held-out case, each with its own noise seed (default: 4)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra training config override, applied after the script's own; repeatable",
    )
    parser.add_argument("--workdir", type=Path, help="folder for data and runs (default: a temporary folder)")
    parser.add_argument("--plot", type=Path, help="write the training reward curves to this PNG")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.cases < 4 or args.eval_noise_seeds < 1:
        parser.error("--epochs and --eval-noise-seeds must be >= 1 and --cases >= 4")
    return args


def base_overrides(args: argparse.Namespace) -> list[str]:
    """Training settings shared by every run: 8 samples and 2 optimizer steps per epoch."""
    return [
        f"model={PRESET}",
        "device=cpu",
        f"resolution={args.size}",
        f"sample.num_steps={args.steps}",
        "sample.batch_size=4",
        "sample.num_batches_per_epoch=2",
        "train.batch_size=4",
        "train.timestep_fraction=0.5",
        f"num_epochs={args.epochs}",
        f"save_freq={args.epochs}",
        "num_checkpoint_limit=1",
    ]


# --- data -----------------------------------------------------------------------------------------


def write_split(source: Path, target: Path, ids: list[str]) -> None:
    """Copy the sessions of `ids` from the MagicBrush folder `source` into a new folder `target`."""
    sessions = json.loads((source / SESSIONS_FILE).read_text(encoding="utf-8"))
    captions = json.loads((source / CAPTIONS_FILE).read_text(encoding="utf-8"))
    (target / IMAGES_DIR).mkdir(parents=True)
    for img_id in ids:
        shutil.copytree(source / IMAGES_DIR / img_id, target / IMAGES_DIR / img_id)
    (target / SESSIONS_FILE).write_text(json.dumps({i: sessions[i] for i in ids}), encoding="utf-8")
    (target / CAPTIONS_FILE).write_text(json.dumps({i: captions[i] for i in ids}), encoding="utf-8")


def make_splits(source: Path, root: Path, seed: int, held_out_fraction: float) -> None:
    """Write the splits `root/train` and `root/heldout` of the cases in `source` for `seed`."""
    ids = list(json.loads((source / SESSIONS_FILE).read_text(encoding="utf-8")))
    train_ids, held_out_ids = split_ids(ids, held_out_fraction, seed)
    write_split(source, root / TRAIN_SPLIT, train_ids)
    write_split(source, root / HELD_OUT_SPLIT, held_out_ids)


# --- evaluation -----------------------------------------------------------------------------------


def eval_requests(
    config: TrainConfig, split: str, limit: int | None, seed: int, noise_seeds: int
) -> list[EditRequest]:
    """Build `noise_seeds` requests for each of the first `limit` cases of `split`.

    The requests use the sampling settings of training: steps, eta and both guidance scales.
    """
    cases = TrainingSet(DataSection(path=config.data.path, split=split, limit=limit), config.resolution)
    sample = config.sample
    stream = EVAL_STREAM if split == HELD_OUT_SPLIT else EVAL_STREAM + 1
    requests = []
    for index in range(len(cases)):
        image, mask = cases.prepare(index)
        for repeat in range(noise_seeds):
            requests.append(
                EditRequest(
                    image=image,
                    instruction=cases.turns[index].instruction,
                    seed=derive_seed(seed, stream, index, repeat),
                    steps=sample.num_steps,
                    guidance_scale=sample.guidance_scale,
                    image_guidance_scale=sample.image_guidance_scale,
                    eta=sample.eta,
                    mask=mask,
                )
            )
    return requests


def edit_rewards(config: TrainConfig, requests: list[EditRequest], lora: Path | None) -> np.ndarray:
    """Edit every request with the base preset (`lora` None) or with the LoRA at `lora`.

    Returns the rewards as [N, 3], with the columns in TERMS order.
    """
    components = load_components(config.model, device="cpu")
    if lora is not None:
        load_lora(components, lora)
    editor = InstructEditor(
        components,
        attention_downsample=config.attention_downsample,
        max_side=config.resolution,
        reward_config=RewardConfig(**config.reward.model_dump()),
    )
    rows = []
    for start in range(0, len(requests), EVAL_BATCH):
        for result in editor.edit(requests[start : start + EVAL_BATCH]):
            reward = result.reward.as_dict()
            rows.append([reward[term] for term in TERMS])
    return np.asarray(rows, dtype=np.float64)


# --- one run --------------------------------------------------------------------------------------


def compare(untrained: np.ndarray, trained: np.ndarray, noise_seeds: int) -> Comparison:
    difference = trained[:, 0] - untrained[:, 0]
    return Comparison(
        cases=len(difference) // noise_seeds,
        untrained=dict(zip(TERMS, untrained.mean(axis=0).tolist())),
        trained=dict(zip(TERMS, trained.mean(axis=0).tolist())),
        improved_fraction=float((difference > 0).mean()),
        paired_stderr=float(difference.std(ddof=1) / np.sqrt(len(difference))),
    )


def run_one(
    args: argparse.Namespace,
    data_root: Path,
    logdir: Path,
    learning_rate: float,
    seed: int,
    untrained_cache: dict[int, np.ndarray],
) -> RunResult:
    config = load_config(
        None,
        [
            *base_overrides(args),
            f"seed={seed}",
            f"train.learning_rate={learning_rate}",
            f"data.path={data_root}",
            f"data.split={TRAIN_SPLIT}",
            f"logdir={logdir}",
            *args.overrides,
        ],
    )
    started = time.perf_counter()
    result = train(config)
    train_seconds = time.perf_counter() - started
    if result.checkpoint is None:
        raise RuntimeError(f"training with seed {seed} and learning rate {learning_rate} saved no checkpoint")

    held_out = eval_requests(config, HELD_OUT_SPLIT, None, seed, args.eval_noise_seeds)
    # As many training cases as held-out ones, so both comparisons have the same number of edits.
    seen = eval_requests(
        config, TRAIN_SPLIT, len(held_out) // args.eval_noise_seeds, seed, args.eval_noise_seeds
    )
    if seed not in untrained_cache:
        untrained_cache[seed] = edit_rewards(config, held_out + seen, lora=None)
    untrained = untrained_cache[seed]
    trained = edit_rewards(config, held_out + seen, lora=result.checkpoint)
    split = len(held_out)

    history = [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines() if line]
    return RunResult(
        learning_rate=learning_rate,
        seed=seed,
        train_cases=len(TrainingSet(config.data, config.resolution)),
        held_out=compare(untrained[:split], trained[:split], args.eval_noise_seeds),
        seen=compare(untrained[split:], trained[split:], args.eval_noise_seeds),
        curve=[record["reward_mean"] for record in history],
        approx_kl_mean=float(np.mean([record["approx_kl"] for record in history])),
        clipfrac_mean=float(np.mean([record["clipfrac"] for record in history])),
        train_seconds=train_seconds,
    )


def reward_spread(untrained: np.ndarray, cases: int, noise_seeds: int) -> dict[str, float]:
    """Split the untrained held-out reward's spread into its part across noise seeds and across cases.

    PPO learns from the reward differences that the sampling noise causes, while advantages
    normalized with batch statistics also include the differences between cases.
    """
    totals = untrained[: cases * noise_seeds, 0].reshape(cases, noise_seeds)
    return {
        "within_case_std": float(totals.std(axis=1, ddof=1).mean()) if noise_seeds > 1 else float("nan"),
        "between_case_std": float(totals.mean(axis=1).std(ddof=1)),
    }


# --- report ---------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):+.5f} ± {spread:.5f}"


def run_rows(results: list[RunResult], comparison_name: str) -> list[str]:
    rows = []
    for run in results:
        comparison: Comparison = getattr(run, comparison_name)
        before, after = comparison.untrained, comparison.trained
        rows.append(
            f"| {run.learning_rate:g} | {run.seed} | {comparison.cases} "
            f"| {before['total']:.4f} -> {after['total']:.4f} "
            f"| {before['attention_similarity']:.4f} -> {after['attention_similarity']:.4f} "
            f"| {before['clip_loss']:.4f} -> {after['clip_loss']:.4f} "
            f"| {comparison.gain:+.5f} ± {comparison.paired_stderr:.5f} | {comparison.improved_fraction:.0%} |"
        )
    return rows


def markdown_report(results: list[RunResult], info: dict[str, object]) -> str:
    header = (
        "| lr | seed | cases | reward | attention similarity | clipped MAE | gain ± s.e. | edits improved |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [
        (
            f"Hardware: {info['cpu']}, {info['usable_cpus']} usable CPUs, torch {info['torch']} with "
            f"{info['torch_threads']} threads. Load average before {info['load_before']}, after "
            f"{info['load_after']}; wall time {info['wall_seconds']:.0f} s."
        ),
        "",
        (
            f"Held-out cases, {info['eval_noise_seeds']} edits each, untrained -> trained "
            "(s.e.: standard error of the mean paired difference):"
        ),
        "",
        header,
        *run_rows(results, "held_out"),
        "",
        "Training cases, edited with noise seeds that training did not use:",
        "",
        header,
        *run_rows(results, "seen"),
        "",
        "Training runs (reward_mean from metrics.jsonl):",
        "",
        (
            f"| lr | seed | training cases | reward, first {CURVE_WINDOW} epochs | reward, last {CURVE_WINDOW} epochs "
            "| approx_kl mean | clipfrac mean | train s |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in results:
        lines.append(
            f"| {run.learning_rate:g} | {run.seed} | {run.train_cases} "
            f"| {statistics.mean(run.curve[:CURVE_WINDOW]):.4f} | {statistics.mean(run.curve[-CURVE_WINDOW:]):.4f} "
            f"| {run.approx_kl_mean:.2g} | {run.clipfrac_mean:.2f} | {run.train_seconds:.0f} |"
        )
    lines += [
        "",
        (
            "Spread of the untrained model's held-out reward: the standard deviation over one case's noise seeds "
            "(mean over cases) and the standard deviation of the case means:"
        ),
        "",
        "| seed | within a case | between cases |",
        "| --- | --- | --- |",
        *(
            f"| {seed} | {spread['within_case_std']:.4f} | {spread['between_case_std']:.4f} |"
            for seed, spread in info["reward_spread"].items()
        ),
        "",
        "Mean ± standard deviation over seeds of the change (trained - untrained):",
        "",
        (
            "| lr | cases | seeds | reward | attention similarity | clipped MAE | seeds with gain > 2 s.e. "
            "| seeds with gain < -2 s.e. |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for learning_rate in dict.fromkeys(run.learning_rate for run in results):
        runs = [run for run in results if run.learning_rate == learning_rate]
        for comparison_name, label in (("held_out", "held-out"), ("seen", "training")):
            comparisons: list[Comparison] = [getattr(run, comparison_name) for run in runs]
            changes = {term: [c.trained[term] - c.untrained[term] for c in comparisons] for term in TERMS}
            rose = sum(c.gain > 2 * c.paired_stderr for c in comparisons)
            fell = sum(c.gain < -2 * c.paired_stderr for c in comparisons)
            lines.append(
                f"| {learning_rate:g} | {label} | {len(runs)} | {mean_std(changes['total'])} "
                f"| {mean_std(changes['attention_similarity'])} | {mean_std(changes['clip_loss'])} "
                f"| {rose} of {len(runs)} | {fell} of {len(runs)} |"
            )
    return "\n".join(lines) + "\n"


def plot_curves(results: list[RunResult], path: Path) -> None:
    """Plot reward_mean per epoch, one panel per learning rate and one line per seed."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    learning_rates = list(dict.fromkeys(run.learning_rate for run in results))
    figure, axes = pyplot.subplots(
        1, len(learning_rates), figsize=(4.2 * len(learning_rates), 3.2), sharey=True, squeeze=False
    )
    for panel, learning_rate in zip(axes[0], learning_rates):
        for run in (run for run in results if run.learning_rate == learning_rate):
            panel.plot(range(1, len(run.curve) + 1), run.curve, linewidth=1, label=f"seed {run.seed}")
        panel.set_title(f"tiny preset, lr {learning_rate:g}", fontsize=9)
        panel.set_xlabel("epoch")
        panel.legend(fontsize=7)
    axes[0][0].set_ylabel("training reward (mean of 8 samples)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    pyplot.close(figure)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # diffusers warns on every load_lora that the LoRA has no text-encoder keys, which is expected here.
    diffusers_logging.set_verbosity_error()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="rl4pix-learning-"))
        )
        source = write_synthetic_magicbrush(workdir / "all", args.cases, size=args.size, seed=0)
        results: list[RunResult] = []
        untrained_cache: dict[int, np.ndarray] = {}
        for seed in args.seeds:
            data_root = workdir / f"split-{seed}"
            make_splits(source, data_root, seed, args.held_out_fraction)
            for learning_rate in args.learning_rates:
                logdir = workdir / "runs" / f"lr{learning_rate:g}-seed{seed}"
                run = run_one(args, data_root, logdir, learning_rate, seed, untrained_cache)
                print(
                    f"lr {learning_rate:g} seed {seed}: held-out reward {run.held_out.untrained['total']:.4f} -> "
                    f"{run.held_out.trained['total']:.4f} ({run.held_out.gain:+.4f}), "
                    f"trained in {run.train_seconds:.0f} s",
                    flush=True,
                )
                results.append(run)

    spreads = {}
    for run in results:
        if run.seed not in spreads:
            spreads[run.seed] = reward_spread(
                untrained_cache[run.seed], run.held_out.cases, args.eval_noise_seeds
            )
    info = {
        "cpu": cpu_model(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_before": " ".join(f"{value:.2f}" for value in load_before),
        "load_after": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "wall_seconds": time.perf_counter() - started,
        "training_overrides": base_overrides(args) + args.overrides,
        "cases": args.cases,
        "held_out_fraction": args.held_out_fraction,
        "eval_noise_seeds": args.eval_noise_seeds,
        "reward_spread": spreads,
    }
    print()
    print(markdown_report(results, info))
    if args.plot:
        plot_curves(results, args.plot)
    if args.json:
        args.json.write_text(
            json.dumps({"info": info, "runs": [asdict(run) for run in results]}, indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
