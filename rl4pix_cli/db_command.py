"""The `rl4pix db` command: apply or revert the service's database migrations."""

from __future__ import annotations

import argparse
import sys


def _handle(args: argparse.Namespace) -> int:
    from rl4pix_cli.keys_command import existing_database_url, run_with_database
    from service import migrate
    from service.settings import get_settings

    if args.action == "downgrade" and not args.revision:
        print("error: `rl4pix db downgrade` needs a revision, for example `base` or `-1`", file=sys.stderr)
        return 2
    settings = get_settings()
    if args.action == "upgrade":
        # Only upgrade may create the embedded database, in ./.rl4pix of the current folder.
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        run_with_database(url, lambda database_url: migrate.upgrade(database_url, args.revision or "head"))
        return 0
    url = existing_database_url()
    if url is None:
        return 2
    if args.action == "downgrade":
        run_with_database(url, lambda database_url: migrate.downgrade(database_url, args.revision))
    else:
        run_with_database(url, migrate.current)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "db",
        help="apply or revert the service database migrations",
        description="Run the Alembic migrations against RL4PIX_DATABASE_URL (default: SQLite under ./.rl4pix).",
    )
    parser.add_argument("action", choices=["upgrade", "downgrade", "current"], help="what to do")
    parser.add_argument("revision", nargs="?", help="target revision (default head for upgrade)")
    parser.set_defaults(handler=_handle)
