"""Measure the wall time of a PPO epoch against its UNet-bound limit, and the trainer's peak memory.

The UNet-bound limit of an epoch is the time its UNet calls alone would take:

    sampling: num_batches_per_epoch x num_steps x one three-way-guided UNet call on
              sample.batch_size edits (batch 3 x sample.batch_size), without gradients;
    training: num_inner_epochs x (samples per epoch / train.batch_size) x trained timesteps x one
              three-way-guided UNet forward and backward on train.batch_size trajectories,
              with gradients flowing into the LoRA.

Both calls go through `InstructEditor.predict_noise` on the trainer's own UNet, LoRA and attention
processors, with the shapes of the configuration. They are timed after every epoch, in the
trainer's `on_progress` callback, so that load from other processes hits the epochs and the limit
alike. The callback's own time is left out of the epoch times. Epoch 1 is a warm-up and is not
counted. The goal is a measured epoch time of at most 1.15 x the limit.

Each configuration runs in its own subprocess, so that its peak resident set size
(`resource.getrusage(...).ru_maxrss`) is clean. The peak is read twice: after the model is built
and when the first epoch ends, before any limit timing. With `--breakdown`, the subprocess also
times the trainer's phases (data loading, text and VAE encoding, denoising, decoding, reward,
training steps) by wrapping the functions that run them.

The presets have random weights, so the numbers describe speed and memory, never edit quality.
Run `python bench/train_cost.py --help` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

GOAL = 1.15  # measured epoch time / UNet-bound limit
CONFIG_ARGUMENT = "--run-config"


@dataclass(frozen=True)
class CostCase:
    """One training configuration to measure."""

    preset: str
    size: int  # training resolution in pixels
    steps: int
    sample_batch: int
    batches: int  # sampling batches per epoch
    train_batch: int
    timestep_fraction: float
    epochs: int  # including the warm-up epoch
    limit_repeats: int  # timings of each UNet call per epoch
    breakdown: bool = False
    threads: int | None = None  # torch.set_num_threads value; None keeps torch's default

    def overrides(self, data: Path, logdir: Path) -> list[str]:
        return [
            f"model={self.preset}",
            "device=cpu",
            f"resolution={self.size}",
            f"sample.num_steps={self.steps}",
            f"sample.batch_size={self.sample_batch}",
            f"sample.num_batches_per_epoch={self.batches}",
            f"train.batch_size={self.train_batch}",
            f"train.timestep_fraction={self.timestep_fraction}",
            f"num_epochs={self.epochs}",
            f"save_freq={self.epochs}",
            "num_checkpoint_limit=1",
            f"data.path={data}",
            f"logdir={logdir}",
        ]

    def label(self) -> str:
        return (
            f"{self.preset} {self.size} px, {self.steps} steps, {self.batches} x {self.sample_batch} samples, "
            f"train batch {self.train_batch}, timestep_fraction {self.timestep_fraction:g}"
        )


def default_cases(breakdown: bool = False, threads: int | None = None) -> list[CostCase]:
    # sd15-random builds about 1e9 random parameters, and on a 2-core CPU one guided UNet call at
    # 256 px takes seconds and a training call about twice that. Its case therefore keeps to one
    # sample, 10 steps and one trained timestep per epoch (timestep_fraction 0.1), over 2 epochs.
    options = {"breakdown": breakdown, "threads": threads}
    return [
        CostCase("tiny", 64, 10, 4, 2, 4, 0.5, epochs=11, limit_repeats=3, **options),
        CostCase("sd15-random", 256, 10, 1, 1, 1, 0.1, epochs=2, limit_repeats=2, **options),
    ]


# --- measurement, in the subprocess ---------------------------------------------------------------


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read_cpu_seconds() -> tuple[float, float, float]:
    """Return (monotonic time, CPU seconds of every process since boot, CPU seconds of this process)."""
    busy_all = float("nan")
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy_all = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return time.monotonic(), busy_all, own.user + own.system


def other_processes_cores(start: tuple[float, float, float], end: tuple[float, float, float]) -> float:
    """Return the mean number of cores that other processes kept busy between two readings."""
    others = (end[1] - start[1]) - (end[2] - start[2])
    return max(others, 0.0) / (end[0] - start[0])


class PhaseTimer:
    """Wall seconds per named phase, summed over calls, for the current epoch."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, phase: str) -> None:
        """Replace `owner.name` by a wrapper that adds each call's wall time to `phase`.

        When the call returns an object with a `timings` dict (a `Trajectory`), its entries are
        added too, as "<phase>.<entry>".
        """
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started
            for entry, seconds in getattr(result, "timings", {}).items():
                self.seconds[f"{phase}.{entry}"] += seconds
            return result

        setattr(owner, name, timed)

    def take(self) -> dict[str, float]:
        """Return the seconds collected since the last call and start collecting anew."""
        epoch_seconds, self.seconds = dict(self.seconds), defaultdict(float)
        return epoch_seconds


class LimitTimer:
    """Time the two UNet calls of the limit on the trainer's editor, with the configuration's shapes."""

    def __init__(self, editor, config) -> None:
        components = editor.components
        self.editor = editor
        self.config = config
        side = config.resolution // components.vae_scale_factor
        channels = components.unet.config.in_channels // 2
        length = components.tokenizer.model_max_length
        width = components.text_encoder.config.hidden_size
        generator = torch.Generator().manual_seed(0)

        def inputs(batch: int):
            from rl4pix_core.editing import Conditioning

            conditioning = Conditioning(
                torch.randn(batch, length, width, generator=generator),
                torch.randn(batch, length, width, generator=generator),
                torch.randn(batch, channels, side, side, generator=generator),
                torch.full((batch, length), 1.0 / length),
            )
            latents = torch.randn(batch, channels, side, side, generator=generator)
            scales = (
                torch.full((batch,), config.sample.guidance_scale),
                torch.full((batch,), config.sample.image_guidance_scale),
            )
            return latents, conditioning, scales

        self.sample_inputs = inputs(config.sample.batch_size)
        self.train_inputs = inputs(config.train.batch_size)
        self.params = [param for param in components.unet.parameters() if param.requires_grad]

    def sampling_call(self) -> float:
        latents, conditioning, (text_scale, image_scale) = self.sample_inputs
        self.editor.components.unet.eval()
        started = time.perf_counter()
        with torch.no_grad():
            self.editor.predict_noise(latents, 500, conditioning, text_scale, image_scale)
        return time.perf_counter() - started

    def training_call(self) -> float:
        latents, conditioning, (text_scale, image_scale) = self.train_inputs
        batch = latents.shape[0]
        self.editor.components.unet.train()
        started = time.perf_counter()
        noise = self.editor.predict_noise(
            latents, torch.full((batch,), 500), conditioning, text_scale, image_scale
        )
        noise.square().mean().backward()
        seconds = time.perf_counter() - started
        for param in self.params:
            param.grad = None  # keep the trainer's next step free of these gradients
        return seconds


def run_case(case: CostCase) -> dict[str, Any]:
    """Train `case` in this process and return its timings and peak memory."""
    from rl4pix_core.data.synthetic import write_synthetic_magicbrush
    from rl4pix_core.editing import InstructEditor
    from rl4pix_core.ppo import dataset as dataset_module
    from rl4pix_core.ppo import trainer as trainer_module
    from rl4pix_core.ppo.config import load_config, trained_timesteps
    from rl4pix_core.ppo.trainer import TrainerCallbacks, train

    state: dict[str, Any] = {"epochs": []}
    phases = PhaseTimer()
    if case.breakdown:
        phases.wrap(dataset_module.TrainingSet, "requests", "data")
        phases.wrap(InstructEditor, "sample_trajectories", "sample_trajectories")
        phases.wrap(InstructEditor, "_encode_prompts", "text_encode")
        phases.wrap(trainer_module, "_reward_terms", "reward")
        phases.wrap(trainer_module, "_train_step", "train_steps")
        phases.wrap(trainer_module, "_save", "checkpoint")

    load_components = trainer_module.load_components
    original_editor = trainer_module.InstructEditor

    def recording_load(*args, **kwargs):
        started = time.perf_counter()
        components = load_components(*args, **kwargs)
        state["build_seconds"] = time.perf_counter() - started
        state["peak_rss_after_build_mib"] = peak_rss_mib()
        return components

    def recording_editor(*args, **kwargs):
        editor = original_editor(*args, **kwargs)
        state["editor"] = editor
        return editor

    trainer_module.load_components = recording_load
    trainer_module.InstructEditor = recording_editor

    def on_progress(epoch: int, step: int, metrics: dict[str, Any]) -> None:
        if metrics["phase"] != "epoch":
            return
        entered = time.perf_counter()
        record: dict[str, Any] = {
            "epoch": epoch,
            "wall_seconds": entered - state["resumed"] if "resumed" in state else None,
            "sampling_seconds": metrics["sampling_seconds"],
            "training_seconds": metrics["training_seconds"],
            "peak_rss_mib": peak_rss_mib(),
            "phases": phases.take(),
        }
        if epoch == 1:
            state["peak_rss_after_epoch_1_mib"] = record["peak_rss_mib"]
        if "limit" not in state:
            state["limit"] = LimitTimer(state["editor"], state["config"])
        limit = state["limit"]
        record["sampling_call_seconds"] = [limit.sampling_call() for _ in range(case.limit_repeats)]
        record["training_call_seconds"] = [limit.training_call() for _ in range(case.limit_repeats)]
        record["cpu"] = read_cpu_seconds()
        state["epochs"].append(record)
        state["resumed"] = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="rl4pix-cost-") as folder:
        data = write_synthetic_magicbrush(Path(folder) / "data", 8, size=max(case.size, 64), seed=0)
        config = load_config(None, case.overrides(data, Path(folder) / "logs"))
        state["config"] = config
        cpu_start = read_cpu_seconds()
        started = time.perf_counter()
        train(config, TrainerCallbacks(on_progress=on_progress))
        total_seconds = time.perf_counter() - started

    epochs = state["epochs"]
    return {
        "case": asdict(case),
        "trained_timesteps": trained_timesteps(config),
        "build_seconds": state["build_seconds"],
        "total_seconds": total_seconds,
        "peak_rss_after_build_mib": state["peak_rss_after_build_mib"],
        "peak_rss_after_epoch_1_mib": state["peak_rss_after_epoch_1_mib"],
        "peak_rss_end_mib": peak_rss_mib(),
        "other_processes_cores": other_processes_cores(cpu_start, epochs[-1]["cpu"]),
        "epochs": [{key: value for key, value in record.items() if key != "cpu"} for record in epochs],
        "torch_threads": torch.get_num_threads(),
    }


# --- analysis, in the parent ----------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Derive the limit and the ratio from the measured epochs (epoch 2 onwards)."""
    case = CostCase(**result["case"])
    measured = [record for record in result["epochs"] if record["epoch"] > 1]
    sampling_call = statistics.median(
        seconds for record in result["epochs"] for seconds in record["sampling_call_seconds"]
    )
    training_call = statistics.median(
        seconds for record in result["epochs"] for seconds in record["training_call_seconds"]
    )
    samples = case.sample_batch * case.batches
    sampling_limit = case.batches * case.steps * sampling_call
    training_limit = (samples // case.train_batch) * result["trained_timesteps"] * training_call
    summary: dict[str, Any] = {
        "sampling_call_s": sampling_call,
        "training_call_s": training_call,
        "sampling_limit_s": sampling_limit,
        "training_limit_s": training_limit,
        "limit_s": sampling_limit + training_limit,
        "measured_epochs": len(measured),
    }
    if measured:
        epoch = statistics.median(record["wall_seconds"] for record in measured)
        sampling = statistics.median(record["sampling_seconds"] for record in measured)
        training = statistics.median(record["training_seconds"] for record in measured)
        summary.update(
            epoch_s=epoch,
            sampling_s=sampling,
            training_s=training,
            ratio=epoch / summary["limit_s"],
            sampling_ratio=sampling / sampling_limit,
            training_ratio=training / training_limit,
        )
        if measured[0]["phases"]:
            names = sorted({name for record in measured for name in record["phases"]})
            summary["phases_s"] = {
                name: statistics.median(record["phases"].get(name, 0.0) for record in measured)
                for name in names
            }
    return summary


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def markdown_report(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        (
            f"Hardware: {info['cpu']}, {info['usable_cpus']} usable CPUs, torch {info['torch']} with "
            f"{info['torch_threads']} threads, Python {info['python']}."
        ),
        "",
        (
            "| configuration | measured epochs | epoch s | UNet-bound limit s | ratio | goal | sampling s / limit "
            "| training s / limit | one sampling call s | one training call s | other processes, cores |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for result in results:
        summary = result["summary"]
        case = CostCase(**result["case"])
        if "ratio" not in summary:
            lines.append(f"| {case.label()} | 0 | - | {summary['limit_s']:.3f} | - | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {case.label()} | {summary['measured_epochs']} | {summary['epoch_s']:.3f} "
            f"| {summary['limit_s']:.3f} | {summary['ratio']:.2f} | {'met' if summary['ratio'] <= GOAL else 'missed'} "
            f"| {summary['sampling_s']:.3f} / {summary['sampling_limit_s']:.3f} "
            f"| {summary['training_s']:.3f} / {summary['training_limit_s']:.3f} "
            f"| {summary['sampling_call_s']:.4f} | {summary['training_call_s']:.4f} "
            f"| {result['other_processes_cores']:.2f} |"
        )
    lines += [
        "",
        (
            "| configuration | model build s | peak RSS after build MiB | peak RSS after epoch 1 MiB | "
            "peak RSS at the end MiB |"
        ),
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        lines.append(
            f"| {CostCase(**result['case']).label()} | {result['build_seconds']:.1f} "
            f"| {result['peak_rss_after_build_mib']:.0f} | {result['peak_rss_after_epoch_1_mib']:.0f} "
            f"| {result['peak_rss_end_mib']:.0f} |"
        )
    with_phases = [result for result in results if "phases_s" in result["summary"]]
    if with_phases:
        lines += [
            "",
            (
                "Median seconds per measured epoch in each phase. `sample_trajectories` contains its `.encode` "
                "(text and VAE encoding, so `text_encode` too), `.denoise` and `.decode` parts; `train_steps` "
                "contains the UNet training calls:"
            ),
            "",
        ]
        for result in with_phases:
            summary = result["summary"]
            phases = ", ".join(f"{name} {seconds:.3f}" for name, seconds in summary["phases_s"].items())
            denoise = summary["phases_s"].get("sample_trajectories.denoise")
            against_limit = (
                f"; denoise / sampling limit {denoise / summary['sampling_limit_s']:.2f}" if denoise else ""
            )
            lines.append(
                f"* {CostCase(**result['case']).label()}: {phases}; epoch {summary['epoch_s']:.3f}{against_limit}"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        choices=["tiny", "sd15-random"],
        action="append",
        help="measure only this preset's default case; repeatable (default: both)",
    )
    parser.add_argument(
        "--tiny-epochs", type=int, help="epochs of the tiny case, warm-up included (default: 11)"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the trainer's phases in each measured epoch"
    )
    parser.add_argument(
        "--threads", type=int, help="torch.set_num_threads value in each measurement (default: torch's own)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a torch.profiler table of one tiny epoch"
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(CONFIG_ARGUMENT, dest="run_config", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def child_main(case_json: str) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    case = CostCase(**json.loads(case_json))
    if case.threads is not None:
        torch.set_num_threads(case.threads)
    print(json.dumps(run_case(case)), flush=True)
    return 0


def run_in_subprocess(case: CostCase) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, CONFIG_ARGUMENT, json.dumps(asdict(case))],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"measuring {case.label()} failed with exit status {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def profile_tiny_epoch() -> None:
    """Profile the second epoch of a short tiny run and print the top operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile

    from rl4pix_core.data.synthetic import write_synthetic_magicbrush
    from rl4pix_core.ppo.config import load_config
    from rl4pix_core.ppo.trainer import TrainerCallbacks, train

    case = default_cases()[0]
    profiler = profile(activities=[ProfilerActivity.CPU])

    def on_progress(epoch: int, step: int, metrics: dict[str, Any]) -> None:
        if metrics["phase"] == "epoch" and epoch == 1:
            profiler.start()
        elif metrics["phase"] == "epoch" and epoch == 2:
            profiler.stop()

    with tempfile.TemporaryDirectory(prefix="rl4pix-profile-") as folder:
        data = write_synthetic_magicbrush(Path(folder) / "data", 8, size=case.size, seed=0)
        overrides = case.overrides(data, Path(folder) / "logs")
        train(load_config(None, [*overrides, "num_epochs=2"]), TrainerCallbacks(on_progress=on_progress))
    print(f"\n### Profile of epoch 2 of {case.label()}\n")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run_config:
        return child_main(args.run_config)

    cases = [
        case
        for case in default_cases(args.breakdown, args.threads)
        if not args.only or case.preset in args.only
    ]
    if args.tiny_epochs:
        cases = [
            CostCase(**{**asdict(case), "epochs": args.tiny_epochs}) if case.preset == "tiny" else case
            for case in cases
        ]

    results = []
    for case in cases:
        load_before = os.getloadavg()
        result = run_in_subprocess(case)
        result["load_before"] = load_before
        result["load_after"] = os.getloadavg()
        result["summary"] = summarize(result)
        results.append(result)
        print(
            f"{case.label()}: load average before {' '.join(f'{v:.2f}' for v in load_before)}, "
            f"after {' '.join(f'{v:.2f}' for v in result['load_after'])}",
            flush=True,
        )

    info = {
        "cpu": cpu_model(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "torch_threads": results[0]["torch_threads"] if results else torch.get_num_threads(),
        "python": platform.python_version(),
    }
    print()
    print(markdown_report(results, info))
    if args.profile:
        profile_tiny_epoch()
    if args.json:
        args.json.write_text(json.dumps({"info": info, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
