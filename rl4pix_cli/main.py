"""The `rl4pix` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Each module defines `register(subparsers)`, which adds its parser and sets `handler`.
# The modules import their heavy dependencies (torch, FastAPI, Celery) inside the handlers,
# so `rl4pix --help` stays fast.
COMMAND_MODULES = ("edit", "train", "eval", "metrics", "serve", "worker", "db", "keys")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl4pix",
        description="Instruction-guided image editing with InstructPix2Pix, fine-tuned by PPO (InstructRL4Pix).",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level: DEBUG, INFO, WARNING or ERROR (default INFO)")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"rl4pix_cli.{name}_command")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from rl4pix_core.errors import Rl4pixError

    try:
        return int(args.handler(args) or 0)
    except Rl4pixError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
