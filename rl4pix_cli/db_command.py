"""The `rl4pix db` command: apply or revert the service's database migrations."""

from __future__ import annotations

import argparse


def _handle(args: argparse.Namespace) -> int:
    from service import migrate
    from service.settings import get_settings

    settings = get_settings()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        if not args.revision:
            raise SystemExit("error: `rl4pix db downgrade` needs a revision, for example `base` or `-1`")
        migrate.downgrade(url, args.revision)
    else:
        migrate.current(url)
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
