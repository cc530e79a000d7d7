"""Measure the wall time of `InstructEditor.edit` against its UNet-bound limit and stock diffusers.

For each case (a preset, an image size and a step count) the script times five variants on the
same weights, interleaved round by round so that load from other processes hits each of them alike:

* `capture on`: `InstructEditor(components, max_side=size).edit(requests)`, cross-attention capture on.
* `capture off`: the same with `capture_attention=False`.
* `unet call`: one UNet call on the three-way guidance batch (3 x batch size), with diffusers'
  default `AttnProcessor2_0`. Steps x its time is the UNet-bound limit of an edit.
* `unet call, capture`: the same call with the editor's capture processors recording, which
  isolates the cost of capture from the noise of a whole edit.
* `stock`: diffusers' `StableDiffusionInstructPix2PixPipeline` built from the same modules, with a
  DDIM scheduler, the same steps, the same image size and `output_type="pil"`.

The model is loaded once per case. The UNet's attention processors are switched before each
variant: the editor's capture processors for the two capture variants, a fresh `AttnProcessor2_0`
otherwise.

Run `python bench/edit_speed.py --help` for the options. The presets have random weights, so the
outputs are noise and the numbers say nothing about edit quality.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from diffusers import DDIMScheduler, StableDiffusionInstructPix2PixPipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from PIL import Image

from rl4pix_core.editing import EditRequest, InstructEditor
from rl4pix_core.loading import EditingComponents, load_components

INSTRUCTION = "turn the sky into a sunset"
CAPTURE_OVERHEAD_GOAL = 0.05  # capture on / capture off - 1
UNET_BOUND_GOAL = 1.05  # capture-on edit time / (steps x one guided UNet call)
BUSY_MACHINE_CORES = 0.25  # other processes' mean CPU use above which the run is reported as disturbed

# Rounds per preset when --repeats is not given. A tiny edit takes under a second, so more rounds
# cost little and steady its median.
DEFAULT_REPEATS = {"tiny": 10, "sd15-random": 3}


@dataclass(frozen=True)
class Case:
    preset: str
    size: int  # input image side in pixels; the editor's max_side
    steps: int


@dataclass
class CaseResult:
    case: Case
    batch_size: int
    repeats: int
    warmup: int
    dtype: str
    seconds: dict[str, list[float]]  # variant -> wall time of each measured round
    phases: dict[str, list[float]]  # encode, denoise, decode -> the capture-on editor's timer, per round
    load_before: tuple[float, float, float]  # os.getloadavg() before the warm-up
    others_cpu: float  # mean CPU cores that other processes kept busy during the measured runs

    def derived(self) -> dict[str, float]:
        """Return the summary values: medians of times, and medians of per-round ratios.

        Each ratio pairs the runs of one round, which ran back to back, so that load from other
        processes that changes over minutes cancels out of it.
        """
        on = self.seconds["capture on"]
        off = self.seconds["capture off"]
        stock = self.seconds["stock"]
        steps = self.case.steps
        limits = [steps * call for call in self.seconds["unet call"]]
        denoise = self.phases["denoise"]
        outside = [
            total - sum(samples[index] for samples in self.phases.values()) for index, total in enumerate(on)
        ]
        capture_ratios = [a / b for a, b in zip(on, off)]
        bound_ratios = [a / b for a, b in zip(on, limits)]
        unet_capture_ratios = [
            a / b for a, b in zip(self.seconds["unet call, capture"], self.seconds["unet call"])
        ]
        median = statistics.median
        return {
            "capture_on_s": median(on),
            "capture_off_s": median(off),
            "capture_overhead": median(capture_ratios) - 1,
            "capture_overhead_min": min(capture_ratios) - 1,
            "capture_overhead_max": max(capture_ratios) - 1,
            "unet_capture_overhead": median(unet_capture_ratios) - 1,
            "unet_capture_overhead_min": min(unet_capture_ratios) - 1,
            "unet_capture_overhead_max": max(unet_capture_ratios) - 1,
            "unet_call_s": median(self.seconds["unet call"]),
            "unet_bound_limit_s": median(limits),
            "edit_over_limit": median(bound_ratios),
            "edit_over_limit_min": min(bound_ratios),
            "edit_over_limit_max": max(bound_ratios),
            "stock_s": median(stock),
            "ours_over_stock": median(a / b for a, b in zip(on, stock)),
            "encode_s": median(self.phases["encode"]),
            "denoise_s": median(denoise),
            "decode_s": median(self.phases["decode"]),
            "outside_phases_s": median(outside),
            "denoise_over_limit": median(a / b for a, b in zip(denoise, limits)),
            "per_step_overhead_s": median((a - b) / steps for a, b in zip(denoise, limits)),
        }


def parse_case(text: str) -> Case:
    try:
        preset, size, steps = text.split(":")
        return Case(preset, int(size), int(steps))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"invalid case {text!r}: write PRESET:SIZE:STEPS, such as tiny:64:20"
        ) from error


def default_cases(device: str) -> list[Case]:
    # A CPU takes minutes for a 512 px, 20-step sd15-random edit, so CPU runs use 256 px and 4 steps.
    if device.startswith("cuda"):
        return [Case("tiny", 64, 20), Case("sd15-random", 512, 20)]
    return [Case("tiny", 64, 20), Case("sd15-random", 256, 4)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--case",
        dest="cases",
        metavar="PRESET:SIZE:STEPS",
        type=parse_case,
        action="append",
        help="PRESET:SIZE:STEPS to measure, with SIZE the image side in pixels; repeat for several "
        "(default: tiny:64:20 and sd15-random:256:4 on CPU, tiny:64:20 and sd15-random:512:20 on CUDA)",
    )

    parser.add_argument("--device", default="cpu", help="torch device: cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--dtype", default=None, help="fp32, fp16 or bf16 (default: fp32 on CPU, bf16 on CUDA)"
    )

    parser.add_argument("--batch-size", type=int, default=1, help="edit requests per call (default: 1)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="measured rounds, one run of each variant per round (default: "
        + ", ".join(f"{count} for {preset}" for preset, count in DEFAULT_REPEATS.items())
        + ", else 5)",
    )
    parser.add_argument(
        "--warmup", type=int, default=1, help="unmeasured runs per variant first (default: 1)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch.set_num_threads value (default: the CPUs this process may run on)",
    )

    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after timing, profile one capture-on edit per case and print the top operators by self CPU time",
    )

    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.warmup < 0 or (args.repeats is not None and args.repeats < 1):
        parser.error("--batch-size and --repeats must be >= 1 and --warmup >= 0")
    args.cases = args.cases or default_cases(args.device)
    return args


def gradient_image(size: int) -> Image.Image:
    """Build a deterministic RGB gradient of size x size pixels."""
    ramp = torch.linspace(0, 255, size)
    red = ramp[None, :].expand(size, size)
    green = ramp[:, None].expand(size, size)
    blue = torch.full((size, size), 128.0)
    pixels = torch.stack([red, green, blue], dim=-1).round().to(torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_stock_pipeline(components: EditingComponents) -> StableDiffusionInstructPix2PixPipeline:
    """Build diffusers' own pipeline on the editor's modules, with a DDIM scheduler of its own."""
    pipeline = components.pipeline
    stock = StableDiffusionInstructPix2PixPipeline(
        vae=pipeline.vae,
        text_encoder=pipeline.text_encoder,
        tokenizer=pipeline.tokenizer,
        unet=pipeline.unet,
        scheduler=DDIMScheduler.from_config(pipeline.scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    stock.set_progress_bar_config(disable=True)
    return stock


def measure_case(case: Case, args: argparse.Namespace) -> CaseResult:
    components = load_components(case.preset, device=args.device, dtype=args.dtype)
    unet = components.unet
    device = components.device
    batch_size = args.batch_size
    repeats = args.repeats or DEFAULT_REPEATS.get(case.preset, 5)
    image = gradient_image(case.size)
    requests = [EditRequest(image, INSTRUCTION, seed=seed, steps=case.steps) for seed in range(batch_size)]

    # The editor installs its capture processors at construction; keep them to reinstall later.
    editor_on = InstructEditor(components, max_side=case.size)
    capture_processors = dict(unet.attn_processors)
    unet.set_attn_processor(AttnProcessor2_0())
    editor_off = InstructEditor(components, max_side=case.size, capture_attention=False)
    stock = build_stock_pipeline(components)

    # The guided UNet batch of one denoising step: 3 x batch size, latents plus image latents.
    latent_side = case.size // components.vae_scale_factor
    generator = torch.Generator("cpu").manual_seed(0)
    unet_input = torch.randn(
        3 * batch_size, unet.config.in_channels, latent_side, latent_side, generator=generator
    )
    unet_input = unet_input.to(device=device, dtype=components.dtype)
    embeds_shape = (3 * batch_size, components.tokenizer.model_max_length, unet.config.cross_attention_dim)
    embeds = torch.randn(embeds_shape, generator=generator).to(device=device, dtype=components.dtype)
    timesteps = torch.full((3 * batch_size,), 500, device=device, dtype=torch.long)

    phase_samples: dict[str, list[float]] = {"encode": [], "denoise": [], "decode": []}

    def run_capture_on() -> None:
        # set_attn_processor pops the entries of a dict it is given, so pass a copy.
        unet.set_attn_processor(dict(capture_processors))
        results = editor_on.edit(requests)
        for name, samples in phase_samples.items():
            samples.append(results[0].timings[name])

    def run_capture_off() -> None:
        unet.set_attn_processor(AttnProcessor2_0())
        editor_off.edit(requests)

    def run_unet_call() -> None:
        unet.set_attn_processor(AttnProcessor2_0())
        unet(unet_input, timesteps, encoder_hidden_states=embeds)

    # Uniform weights over every token position: the benchmark needs the capture work, not a real map.
    token_weights = torch.full((batch_size, embeds_shape[1]), 1.0 / embeds_shape[1], device=device)

    def run_unet_call_capture() -> None:
        unet.set_attn_processor(dict(capture_processors))
        editor_on.store.start((latent_side, latent_side), token_weights)
        try:
            unet(unet_input, timesteps, encoder_hidden_states=embeds)
        finally:
            editor_on.store.stop()

    def run_stock() -> None:
        unet.set_attn_processor(AttnProcessor2_0())
        stock(
            prompt=[INSTRUCTION] * batch_size,
            image=[image] * batch_size,
            num_inference_steps=case.steps,
            output_type="pil",
            generator=[torch.Generator("cpu").manual_seed(seed) for seed in range(batch_size)],
        )

    variants: dict[str, Callable[[], None]] = {
        "capture on": run_capture_on,
        "capture off": run_capture_off,
        "unet call": run_unet_call,
        "unet call, capture": run_unet_call_capture,
        "stock": run_stock,
    }
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    load_before = os.getloadavg()
    with torch.inference_mode():
        for _ in range(args.warmup):
            for run in variants.values():
                run()
        for samples in phase_samples.values():
            samples.clear()
        cpu_started = cpu_seconds()
        # Rotate the order each round so no variant always runs right after the same neighbor.
        names = list(variants)
        for round_index in range(repeats):
            for offset in range(len(names)):
                name = names[(round_index + offset) % len(names)]
                run = variants[name]
                synchronize(device)
                started = time.perf_counter()
                run()
                synchronize(device)
                seconds[name].append(time.perf_counter() - started)
        others_cpu = others_cpu_cores(cpu_started, cpu_seconds())
        if others_cpu > BUSY_MACHINE_CORES:
            print(
                f"warning: other processes kept {others_cpu:.2f} CPU cores busy while {case.preset} was measured, "
                "so its times are inflated: rerun on a quiet machine",
                file=sys.stderr,
            )
        if args.profile:
            print_profile(case, run_capture_on)

    dtype = str(components.dtype).removeprefix("torch.")
    return CaseResult(
        case, batch_size, repeats, args.warmup, dtype, seconds, phase_samples, load_before, others_cpu
    )


@dataclass(frozen=True)
class CpuSample:
    wall: float  # time.monotonic()
    busy_all: float  # seconds of CPU time that every process on the machine has used since boot
    busy_self: float  # seconds of CPU time that this process has used


def cpu_seconds() -> CpuSample:
    busy_all = float("nan")
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
        busy_all = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    own = os.times()
    return CpuSample(time.monotonic(), busy_all, own.user + own.system)


def others_cpu_cores(start: CpuSample, end: CpuSample) -> float:
    """Return the mean number of CPU cores that other processes used between two samples (NaN off Linux)."""
    others = (end.busy_all - start.busy_all) - (end.busy_self - start.busy_self)
    return max(others, 0.0) / (end.wall - start.wall)


def print_profile(case: Case, run: Callable[[], None]) -> None:
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as profiler:
        run()
    print(f"\n### Profile of one capture-on edit: {case.preset}, {case.size} px, {case.steps} steps\n")
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def hardware(args: argparse.Namespace) -> dict[str, object]:
    import diffusers

    info: dict[str, object] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "python": platform.python_version(),
        "device": args.device,
    }
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def format_load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def goal_word(met: bool) -> str:
    return "met" if met else "missed"


def markdown_report(results: list[CaseResult], info: dict[str, object]) -> str:
    dtype = ", ".join(sorted({result.dtype for result in results}))
    lines = [
        f"Hardware: {info['cpu']}, {info['usable_cpus']} usable CPUs, torch {info['torch']} "
        f"(torch threads: {info['torch_threads']}), diffusers {info['diffusers']}, device {info['device']}"
        + (f" ({info['gpu']})" if "gpu" in info else "")
        + f", dtype {dtype}.",
        "",
        "Times are medians in seconds per `edit` call. Ratios are medians of the per-round ratios.",
        "",
        (
            "| preset | size | steps | batch | repeats | capture on | capture off | capture overhead "
            "| UNet call | UNet-bound limit | edit / limit | stock diffusers | ours / stock |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        values = result.derived()
        case = result.case
        lines.append(
            f"| {case.preset} | {case.size} | {case.steps} | {result.batch_size} | {result.repeats} "
            f"| {values['capture_on_s']:.3f} | {values['capture_off_s']:.3f} | {values['capture_overhead']:+.1%} "
            f"| {values['unet_call_s']:.3f} | {values['unet_bound_limit_s']:.3f} | {values['edit_over_limit']:.2f} "
            f"| {values['stock_s']:.3f} | {values['ours_over_stock']:.2f} |"
        )

    lines += [
        "",
        "Where the capture-on edit spends its time (medians of the editor's own timers, seconds):",
        "",
        (
            "| preset | encode | denoise | decode | outside phases | denoise / limit | overhead per step "
            "| capture overhead per UNet call | load average before | other processes' CPU |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for result in results:
        values = result.derived()
        lines.append(
            f"| {result.case.preset} | {values['encode_s']:.3f} | {values['denoise_s']:.3f} "
            f"| {values['decode_s']:.3f} | {values['outside_phases_s']:.3f} | {values['denoise_over_limit']:.2f} "
            f"| {values['per_step_overhead_s']:+.4f} | {values['unet_capture_overhead']:+.1%} "
            f"| {format_load(result.load_before)} "
            f"| {result.others_cpu:.2f} cores |"
        )

    lines += ["", "Goals:", ""]
    for result in results:
        values = result.derived()
        overhead_met = values["capture_overhead"] <= CAPTURE_OVERHEAD_GOAL
        bound_met = values["edit_over_limit"] <= UNET_BOUND_GOAL
        lines.append(
            f"- {result.case.preset}: capture overhead {values['capture_overhead']:+.1%} "
            f"(rounds {values['capture_overhead_min']:+.1%} to {values['capture_overhead_max']:+.1%}; "
            f"per UNet call {values['unet_capture_overhead']:+.1%}, rounds "
            f"{values['unet_capture_overhead_min']:+.1%} to {values['unet_capture_overhead_max']:+.1%}; "
            f"goal <= {CAPTURE_OVERHEAD_GOAL:.0%}): {goal_word(overhead_met)}. "
            f"Edit / UNet-bound limit {values['edit_over_limit']:.2f} "
            f"(rounds {values['edit_over_limit_min']:.2f} to {values['edit_over_limit_max']:.2f}; "
            f"goal <= {UNET_BOUND_GOAL}): {goal_word(bound_met)}."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    # diffusers warns on every stock pipeline built without a safety checker; the benchmark wants none.
    warnings.filterwarnings("ignore", message=".*safety checker.*")

    results = []
    for case in args.cases:
        print(
            f"measuring {case.preset} at {case.size} px, {case.steps} steps ...", file=sys.stderr, flush=True
        )
        results.append(measure_case(case, args))

    info = hardware(args)
    print(markdown_report(results, info))

    if args.json:
        document = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(
                [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]
            ),
            "hardware": info,
            "cases": [
                {
                    "case": asdict(result.case),
                    "batch_size": result.batch_size,
                    "repeats": result.repeats,
                    "warmup": result.warmup,
                    "dtype": result.dtype,
                    "seconds": result.seconds,
                    "phases_s": result.phases,
                    "derived": result.derived(),
                    "load_before": result.load_before,
                    "others_cpu_cores": result.others_cpu,
                }
                for result in results
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
