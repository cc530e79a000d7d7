"""The `rl4pix worker` command: a Celery worker for the full service stack."""

from __future__ import annotations

import argparse


def _handle(args: argparse.Namespace) -> int:
    from workers.app import app

    argv = [
        "worker",
        f"--queues={args.queues}",
        f"--concurrency={args.concurrency}",
        f"--pool={args.pool}",
        f"--loglevel={args.log_level}",
    ]
    if args.hostname:
        argv.append(f"--hostname={args.hostname}")
    app.worker_main(argv)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker that executes edits, training and evaluation jobs",
        description="Start a Celery worker configured from RL4PIX_* variables. Run one per GPU "
        "(set CUDA_VISIBLE_DEVICES) with --concurrency 1.",
    )
    parser.add_argument(
        "--queues", default="edits,training,eval", help="comma-separated queues (default all three)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="worker processes (default 1, one per GPU)"
    )
    parser.add_argument(
        "--pool", choices=["prefork", "solo", "threads"], default="prefork", help="Celery pool"
    )
    parser.add_argument("--hostname", help="Celery node name, for example gpu0@%%h")
    parser.set_defaults(handler=_handle)
