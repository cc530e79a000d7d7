"""The `rl4pix keys` command: create and revoke API keys of the service."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

# Tenant names are stored in a String(100) column (service.models.Tenant.name).
MAX_TENANT_CHARS = 100


def tenant_name(value: str) -> str:
    """Parse --tenant: surrounding spaces are dropped and the name must not be empty."""
    name = value.strip()
    if not name:
        raise argparse.ArgumentTypeError("tenant name must not be empty, for example --tenant acme")
    if len(name) > MAX_TENANT_CHARS:
        raise argparse.ArgumentTypeError(
            f"tenant name has {len(name)} characters, above the limit of {MAX_TENANT_CHARS}"
        )
    return name


def existing_database_url() -> str | None:
    """Return the service's database URL, or print why it cannot be used and return None.

    The embedded SQLite database lives under RL4PIX_DATA_DIR (./.rl4pix), relative to the current
    folder, so running the command elsewhere must not create an empty database there.
    """
    from service.settings import get_settings

    settings = get_settings()
    if settings.database_url is None:
        path = (settings.data_dir / "rl4pix.db").resolve()
        if not path.is_file():
            print(
                f"error: database {path} not found: run this command in the folder where `rl4pix serve` "
                "runs, or set RL4PIX_DATABASE_URL to the service's database URL",
                file=sys.stderr,
            )
            return None
    return settings.resolved_database_url


def run_with_database(url: str, action: Callable[[str], Any]) -> Any:
    """Run `action(url)`; on a database error print what failed and raise SystemExit(2)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        return action(url)
    except (OperationalError, ProgrammingError) as error:
        shown = make_url(url).render_as_string(hide_password=True)
        print(
            f"error: cannot use database {shown}: {error.orig}; check RL4PIX_DATABASE_URL and run "
            "`rl4pix db upgrade` to create the service tables",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


def _create(args: argparse.Namespace) -> int:
    from service.auth import create_api_key
    from service.db import session_scope

    url = existing_database_url()
    if url is None:
        return 2

    def create(database_url: str):
        with session_scope(database_url) as session:
            tenant, key = create_api_key(session, args.tenant)
            return tenant.id, key

    tenant_id, key = run_with_database(url, create)
    # The key is shown once; only its SHA-256 hash is stored.
    print(key)
    print(f"tenant {args.tenant} ({tenant_id}): store this key now, it cannot be shown again", flush=True)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from service.auth import DISPLAY_PREFIX_CHARS, revoke_api_key
    from service.db import session_scope

    url = existing_database_url()
    if url is None:
        return 2
    prefix = args.key.strip()[:DISPLAY_PREFIX_CHARS]

    def revoke(database_url: str) -> int:
        with session_scope(database_url) as session:
            return revoke_api_key(session, prefix)

    count = run_with_database(url, revoke)
    if not count:
        print(
            f"error: key {prefix!r} not found: no active key starts with it; pass the key or its first "
            f"{DISPLAY_PREFIX_CHARS} characters as printed by `rl4pix keys create`",
            file=sys.stderr,
        )
        return 1
    print(f"revoked {count} key(s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="create or revoke API keys of the REST service")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key for a tenant (created if new) and print it once")
    create.add_argument("--tenant", required=True, type=tenant_name, help="tenant name, for example acme")
    create.set_defaults(handler=_create)
    revoke = actions.add_parser("revoke", help="revoke a key, given the key or its first 12 characters")
    revoke.add_argument("key", help="the key, or its first 12 characters")
    revoke.set_defaults(handler=_revoke)
