"""Train a LoRA adapter through the rl4pix service, edit a photo with it and score it.

The walkthrough of docs/quickstart.md, talking to the service only through the generated client
(`pip install ./sdk/python`):

1. upload a MagicBrush-format folder (zipped on the fly) as the training set;
2. start a PPO training job on it (small settings: 2 epochs at 64 px) and show its progress;
3. list the job's checkpoints and download the final LoRA weights;
4. edit one photo with the new adapter and with the base model at the same seed, and save both
   edits and both attention overlays;
5. upload a second MagicBrush folder that has ground-truth outputs, evaluate the adapter and the
   base model on it, and print L1, L2, CLIP-T, SSIM and PSNR as a table.

Evaluation compares edits with ground-truth outputs, so `--eval-data` must have them; a set of
photos with masks and instructions only is enough for training. Example:

    export RL4PIX_API_KEY=...   # printed by `bin/serve`
    python examples/train_then_edit.py --url http://127.0.0.1:8000 \\
        --data path/to/real-photos --eval-data path/to/synthetic --case cat-eyes --out walkthrough

Everything the run created is listed in `<out>/summary.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rl4pix_client import AuthenticatedClient
from rl4pix_client.api.eval_jobs import create_eval_job
from rl4pix_client.api.health import get_health
from rl4pix_client.api.train_jobs import create_train_job, list_train_job_checkpoints
from rl4pix_client.extras import (
    API_KEY_ENV,
    ApiError,
    JobFailedError,
    JobTimeoutError,
    connect,
    download_checkpoint,
    download_edit_attention,
    download_edit_image,
    edit_image,
    unwrap,
    upload_dataset,
    wait_for_eval_job,
    wait_for_train_job,
)
from rl4pix_client.models.eval_job_create import EvalJobCreate
from rl4pix_client.models.train_job_create import TrainJobCreate
from rl4pix_client.models.train_job_create_config import TrainJobCreateConfig
from rl4pix_client.types import UNSET

SESSIONS_FILE = "edit_sessions.json"
# Column name and metrics key of each reported metric, in the order of the InstructRL4Pix tables.
METRICS = [("L1", "l1"), ("L2", "l2"), ("CLIP-T", "clip_t"), ("SSIM", "ssim"), ("PSNR", "psnr")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the gateway")
    parser.add_argument("--api-key", help=f"API key (default: ${API_KEY_ENV})")

    parser.add_argument("--data", type=Path, required=True, help="MagicBrush folder to train on")
    parser.add_argument(
        "--eval-data",
        type=Path,
        help="MagicBrush folder with ground-truth outputs to evaluate on (default: --data)",
    )

    parser.add_argument("--case", help="img_id in --data whose input, first mask and instruction to edit")
    parser.add_argument("--photo", type=Path, help="image to edit, instead of --case")
    parser.add_argument("--mask", type=Path, help="mask of --photo, white = region to edit")
    parser.add_argument("--instruction", help="edit instruction (default: the case's)")
    parser.add_argument("--out", type=Path, default=Path("walkthrough-output"), help="folder for the results")

    parser.add_argument("--model", default="tiny", help="base model (default: tiny, which runs on a CPU)")
    parser.add_argument("--epochs", type=int, default=2, help="PPO epochs (default 2)")
    parser.add_argument(
        "--steps", type=int, default=4, help="DDIM steps of each edit and evaluation (default 4)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of both edits and the evaluations (default 0)"
    )
    parser.add_argument("--eval-limit", type=int, help="score at most this many edit turns")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for each job (default 3600)"
    )

    args = parser.parse_args(argv)
    if args.photo is None and args.mask is not None:
        parser.error("--mask needs --photo")
    if args.photo is not None and args.case is not None:
        parser.error("pass either --case or --photo, not both")
    args.eval_data = args.eval_data or args.data
    return args


def train_config(epochs: int) -> dict[str, Any]:
    """Return PPO overrides small enough for a CPU: 64 px, 4 DDIM steps, 2 samples per epoch.

    docs/training.md lists every key; the service sets the model, the data path and the device.
    """
    return {
        "num_epochs": epochs,
        "save_freq": 1,
        "resolution": 64,
        "sample": {"num_steps": 4, "batch_size": 2, "num_batches_per_epoch": 1},
        "train": {"batch_size": 2, "learning_rate": 1e-3, "use_8bit_adam": False},
    }


def read_sessions(folder: Path) -> dict[str, list[dict[str, str]]]:
    path = folder / SESSIONS_FILE
    if not path.is_file():
        sys.exit(f"error: {folder} has no {SESSIONS_FILE}; pass a MagicBrush-format folder")
    return json.loads(path.read_text(encoding="utf-8"))


def pick_photo(args: argparse.Namespace) -> tuple[Path, Path | None, str]:
    """Return the image, mask and instruction to edit, from --photo/--mask or a case of --data."""
    if args.photo is not None:
        if not args.instruction:
            sys.exit("error: --photo needs --instruction")
        return args.photo, args.mask, args.instruction
    sessions = read_sessions(args.data)
    case = args.case or next(iter(sessions))
    if case not in sessions:
        sys.exit(f"error: no case {case!r} in {args.data / SESSIONS_FILE}; cases: {', '.join(sessions)}")
    turn = sessions[case][0]
    folder = args.data / "images" / case
    return folder / turn["input"], folder / turn["mask"], args.instruction or turn["instruction"]


def check_ground_truth(folder: Path) -> None:
    """Exit with a hint unless every turn in `folder` has its ground-truth output image."""
    sessions = read_sessions(folder)
    for case, turns in sessions.items():
        for turn in turns:
            output = turn.get("output")
            if not output or not (folder / "images" / case / output).is_file():
                sys.exit(
                    f"error: {folder} has no ground-truth output for {case!r}, so it cannot be evaluated. "
                    "Pass --eval-data with a folder that has outputs; docs/quickstart.md shows how to "
                    "write a synthetic one."
                )


def print_progress(job: Any, last: dict[str, Any]) -> None:
    """Print a line whenever the job's state or epoch changes."""
    state = (job.status, job.progress.epoch)
    if state == last.get("state"):
        return
    last["state"] = state
    metrics = job.latest_metrics.to_dict() if job.latest_metrics else {}
    reward = (
        f", mean reward {metrics['reward_mean']:.4f}" if isinstance(metrics.get("reward_mean"), float) else ""
    )
    progress = job.progress
    print(f"  {job.status}: epoch {progress.epoch}/{progress.total_epochs} ({progress.fraction:.0%}){reward}")


def format_metrics_table(rows: dict[str, dict[str, Any]]) -> str:
    """Format {row name: metrics} as a Markdown table with one column per reported metric."""
    lines = [
        "| model | " + " | ".join(name for name, _ in METRICS) + " |",
        "| --- " * (len(METRICS) + 1) + "|",
    ]
    for label, metrics in rows.items():
        cells = []
        for _, key in METRICS:
            value = metrics.get(key)
            cells.append(f"{value:.4f}" if isinstance(value, int | float) else "n/a")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace, client: AuthenticatedClient) -> dict[str, Any]:
    photo, mask, instruction = pick_photo(args)
    check_ground_truth(args.eval_data)
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"instruction": instruction, "seed": args.seed, "files": {}}

    with client:
        unwrap(get_health.sync_detailed(client=client))

        print(f"1. uploading {args.data} ...")
        dataset = upload_dataset(client, args.data)
        summary["train_dataset_id"] = dataset.id
        print(f"   dataset {dataset.id}: {dataset.session_count} sessions, {dataset.turn_count} turns")

        print(f"2. training {args.model} for {args.epochs} epochs ...")
        body = TrainJobCreate(
            dataset_id=dataset.id,
            model=args.model,
            config=TrainJobCreateConfig.from_dict(train_config(args.epochs)),
        )
        job = unwrap(create_train_job.sync_detailed(client=client, body=body))
        print(f"   train job {job.id}")
        last_state: dict[str, Any] = {}
        job = wait_for_train_job(
            client, job.id, timeout=args.timeout, on_progress=lambda item: print_progress(item, last_state)
        )
        summary["train_job_id"], summary["adapter_id"] = job.id, job.adapter_id
        print(f"   adapter {job.adapter_id}")

        print("3. checkpoints:")
        checkpoints = unwrap(list_train_job_checkpoints.sync_detailed(job.id, client=client)).items
        for checkpoint in checkpoints:
            print(
                f"   epoch {checkpoint.epoch} {checkpoint.kind:<10} {checkpoint.size_bytes:>9} bytes  {checkpoint.sha256[:12]}"
            )
        final = next(item for item in checkpoints if item.kind == "final")
        weights = download_checkpoint(
            client, final, args.out / "adapter" / "pytorch_lora_weights.safetensors"
        )
        summary["files"]["adapter_weights"] = str(weights)
        print(f"   final LoRA weights saved to {weights}")

        print(f"4. editing {photo.name} ({instruction!r}), seed {args.seed} ...")
        summary["edits"] = {}
        for label, adapter_id in (("adapter", job.adapter_id), ("base", None)):
            edit = edit_image(
                client,
                photo,
                instruction,
                mask=mask,
                model=args.model,
                adapter_id=adapter_id,
                seed=args.seed,
                steps=args.steps,
                return_attention=True,
                timeout=args.timeout,
            )
            image = download_edit_image(client, edit.id, args.out / f"edit-{label}.png")
            overlay = download_edit_attention(client, edit.id, args.out / f"attention-{label}.png")
            reward = edit.reward.to_dict() if edit.reward else {}
            summary["edits"][label] = {"id": edit.id, "reward": reward}
            summary["files"][f"edit_{label}"], summary["files"][f"attention_{label}"] = (
                str(image),
                str(overlay),
            )
            total = f", reward {reward['total']:.4f}" if "total" in reward else ""
            print(f"   {label:<8} edit {edit.id} -> {image} and {overlay}{total}")

        print(f"5. evaluating on {args.eval_data} ...")
        eval_dataset = upload_dataset(client, args.eval_data)
        summary["eval_dataset_id"], summary["metrics"] = eval_dataset.id, {}
        for label, adapter_id in (("adapter", job.adapter_id), ("base", None)):
            body = EvalJobCreate(
                dataset_id=eval_dataset.id,
                model=args.model,
                adapter_id=adapter_id or UNSET,
                steps=args.steps,
                seed=args.seed,
                limit=args.eval_limit if args.eval_limit else UNSET,
            )
            evaluation = unwrap(create_eval_job.sync_detailed(client=client, body=body))
            evaluation = wait_for_eval_job(client, evaluation.id, timeout=args.timeout)
            summary["metrics"][label] = evaluation.metrics.to_dict() if evaluation.metrics else {}
        print(
            format_metrics_table(
                {
                    f"{args.model} + adapter": summary["metrics"]["adapter"],
                    args.model: summary["metrics"]["base"],
                }
            )
        )

    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"summary written to {args.out / 'summary.json'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        client = connect(args.url, args.api_key)
    except ValueError as error:  # no API key
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        run(args, client)
    except ApiError as error:
        field = f" (field {error.field})" if error.field else ""
        print(f"error: the service rejected a request: {error}{field}", file=sys.stderr)
        return 1
    except (JobFailedError, JobTimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
